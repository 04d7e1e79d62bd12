/*
 * log: one line per event on stderr, for every process and thread of starling.
 *
 * A line reads
 *     2026-11-25T13:09:40.123Z c2s[1234/2] info: conn 42 (negotiating SASL): message
 * time in UTC, the process name given to log_init(), the pid, the thread's label
 * (log_thread_set(), else its kernel tid), the level, the thread's current context
 * (log_ctx_set(), omitted when NULL) and the message.
 *
 * Cost: the LOG_* macros test the level before anything else, so below the level the
 * format arguments are not even evaluated. Above it, a line is formatted on the stack
 * and written with one write(2) of at most LOG_LINE_MAX bytes (<= PIPE_BUF), so lines
 * of processes sharing one stderr pipe never interleave. Control characters in the
 * message (a peer's bytes may end up there) are written as \xNN, so one event is
 * always one line. A longer message is cut and ends in "...".
 *
 * Rate limits: anything a remote peer can trigger is logged with LOG_RL(), which gives
 * each call site a token bucket of LOG_RL_BURST lines refilled at LOG_RL_PER_SEC; the
 * first line let through after a suppression says how many lines that site dropped.
 *
 * Threads: every function may be called from any thread. log_init() is called once
 * by main() before threads start; log_set_level() at any time (a config reload). The
 * context and the thread label belong to the calling thread.
 */
#ifndef STARLING_LOG_H
#define STARLING_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum log_level {
    LOG_LEVEL_ERROR, /* something failed that an operator must look at */
    LOG_LEVEL_WARN,  /* something odd that starling handled */
    LOG_LEVEL_INFO,  /* start, stop, reload, connections opened and closed */
    LOG_LEVEL_DEBUG, /* per-stanza detail: never on in production */
};

#define LOG_LINE_MAX   4096 /* bytes of one line, newline included */
#define LOG_RL_PER_SEC 10   /* lines per second a LOG_RL() call site keeps */
#define LOG_RL_BURST   10   /* lines a quiet LOG_RL() call site may write at once */

/* Names this process in every line ("c2s"; cut to 31 bytes) and sets the level. */
void log_init(const char *process, enum log_level level);

/* Changes the level of every thread of the process. */
void log_set_level(enum log_level level);

/* True when a line at `level` would be written. */
static inline bool log_enabled(enum log_level level);

/* "error", "warn", "info", "debug"; "?" for anything else. */
const char *log_level_name(enum log_level level);

/* Labels the calling thread's lines ("2", "store"; cut to 15 bytes). */
void log_thread_set(const char *label);

/*
 * Makes `ctx` the calling thread's context and returns the previous one, so a caller
 * can restore it. The string is not copied: it must stay valid (and may change, e.g. a
 * connection's "conn 42 (negotiating SASL)" buffer updated as its state moves) until it
 * is replaced. An event loop sets it to the connection it is about to serve: a pointer
 * store, no formatting. NULL means no context.
 */
const char *log_ctx_set(const char *ctx);

#define LOG_ERROR(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARN(...)  LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...)  LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* printf-style arguments are evaluated only when the level is enabled. */
#define LOG_AT(level, ...)                                                                         \
    do {                                                                                           \
        if (log_enabled(level))                                                                    \
            log_write((level), 0, __VA_ARGS__);                                                    \
    } while (0)

/* LOG_AT() with a token bucket of its own for this call site (see the top comment). */
#define LOG_RL(level, ...)                                                                         \
    do {                                                                                           \
        static struct log_rl log_rl_site_;                                                         \
        uint32_t log_rl_dropped_;                                                                  \
        if (log_enabled(level) && log_rl_take(&log_rl_site_, &log_rl_dropped_))                    \
            log_write((level), log_rl_dropped_, __VA_ARGS__);                                      \
    } while (0)

/* ---- used by the macros ------------------------------------------------------------------ */

/* One call site's bucket, as a GCRA: a zeroed struct is a full bucket. */
struct log_rl {
    _Atomic uint64_t tat;        /* "theoretical arrival time" of the next line, ns */
    _Atomic uint32_t suppressed; /* lines dropped since the last one written */
};

/* True when the call site may write a line; *dropped is then the count to report. */
bool log_rl_take(struct log_rl *rl, uint32_t *dropped);

/* Formats and writes one line unconditionally; `dropped` > 0 appends the count. */
void log_write(enum log_level level, uint32_t dropped, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

extern _Atomic int log_cur_level;

static inline bool log_enabled(enum log_level level)
{
    /* Relaxed: a thread seeing a level change a little late is harmless. */
    return (int)level <= atomic_load_explicit(&log_cur_level, memory_order_relaxed);
}

#endif
