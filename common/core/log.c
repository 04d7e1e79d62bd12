#include "common/core/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int log_cur_level = LOG_LEVEL_INFO;

/* Written by log_init() before other threads exist, read-only afterwards. */
static char log_process[32] = "starling";

static _Thread_local const char *log_ctx;
static _Thread_local char log_thread[16];

/* The formatted "YYYY-MM-DDTHH:MM:SS" of the last second this thread logged in:
 * gmtime_r() once a second instead of once a line. */
static _Thread_local time_t log_ts_sec = -1;
static _Thread_local char log_ts[24];

static const char *const log_names[] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

void log_init(const char *process, enum log_level level)
{
    snprintf(log_process, sizeof log_process, "%s", process);
    log_set_level(level);
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&log_cur_level, (int)level, memory_order_relaxed);
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof log_names / sizeof log_names[0])
        return "?";
    return log_names[level];
}

void log_thread_set(const char *label)
{
    snprintf(log_thread, sizeof log_thread, "%s", label ? label : "");
}

const char *log_ctx_set(const char *ctx)
{
    const char *prev = log_ctx;
    log_ctx = ctx;
    return prev;
}

bool log_rl_take(struct log_rl *rl, uint32_t *dropped)
{
    const uint64_t interval = 1000000000u / LOG_RL_PER_SEC;
    const uint64_t window = interval * LOG_RL_BURST;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;

    /* GCRA: each line pushes tat one interval into the future; a line is allowed while
     * tat stays within `window` of now. Relaxed throughout: the counters publish no
     * other data, and a race only moves one line between two threads' decisions. */
    uint64_t tat = atomic_load_explicit(&rl->tat, memory_order_relaxed);
    for (;;) {
        uint64_t next = (tat > now ? tat : now) + interval;
        if (next - now > window) {
            atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&rl->tat, &tat, next, memory_order_relaxed,
                                                  memory_order_relaxed))
            break;
    }
    *dropped = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
    return true;
}

/* Appends s[0..n) to out[*len..cap), writing control bytes as \xNN. Stops, without
 * splitting an escape, where the next byte would not fit; returns false then. */
static bool put_escaped(char *out, size_t *len, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = *len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != 0x7f) {
            if (o + 1 > cap)
                goto full;
            out[o++] = (char)c;
        } else if (c == '\t') {
            if (o + 1 > cap)
                goto full;
            out[o++] = '\t';
        } else {
            if (o + 4 > cap)
                goto full;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    *len = o;
    return true;
full:
    *len = o;
    return false;
}

static size_t put_prefix(char *line, enum log_level level)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != log_ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(log_ts, sizeof log_ts, "%Y-%m-%dT%H:%M:%S", &tm);
        log_ts_sec = ts.tv_sec;
    }
    char tid[16];
    const char *thread = log_thread;
    if (!thread[0]) {
        snprintf(tid, sizeof tid, "%d", (int)gettid());
        thread = tid;
    }
    /* getpid() each line rather than a cached pid: a forked child logs its own. */
    int n = snprintf(line, LOG_LINE_MAX, "%s.%03ldZ %s[%d/%s] %s: ", log_ts, ts.tv_nsec / 1000000,
                     log_process, (int)getpid(), thread, log_level_name(level));
    return n < 0 ? 0 : (size_t)n < LOG_LINE_MAX ? (size_t)n : LOG_LINE_MAX - 1;
}

void log_write(enum log_level level, uint32_t dropped, const char *fmt, ...)
{
    char line[LOG_LINE_MAX], msg[LOG_LINE_MAX];
    /* Keep room for the cut marker and the newline at the end. */
    const size_t cap = LOG_LINE_MAX - 4;
    size_t len = put_prefix(line, level);

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t mlen = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;

    bool whole = true;
    if (log_ctx) {
        whole = put_escaped(line, &len, cap, log_ctx, strlen(log_ctx)) &&
                put_escaped(line, &len, cap, ": ", 2);
    }
    whole = whole && put_escaped(line, &len, cap, msg, mlen) && mlen == (size_t)n;
    if (whole && dropped) {
        char tail[64];
        int t = snprintf(tail, sizeof tail, " [%u similar lines suppressed]", dropped);
        whole = put_escaped(line, &len, cap, tail, (size_t)t);
    }
    if (!whole) {
        memcpy(line + len, "...", 3);
        len += 3;
    }
    line[len++] = '\n';

    /* One write(2) per line; a short write (stderr is a full pipe being drained, a
     * signal) is finished so that the line is never lost half-way. */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDERR_FILENO, line + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        off += (size_t)w;
    }
}
