/* Unit tests of common/core/log.c. stderr is captured through a pipe (dup2 onto fd 2, a
 * reader thread draining it) only around the logging calls, so that the framework's
 * own failure messages still reach the terminal. */
#include "common/core/log.h"
#include "test.h"

#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct {
    int saved, rd;
    pthread_t reader;
    char *buf;
    size_t len, cap;
} cap;

static void *cap_reader(void *unused)
{
    (void)unused;
    for (;;) {
        if (cap.cap - cap.len < 4096) {
            cap.cap = cap.cap ? cap.cap * 2 : 65536;
            cap.buf = realloc(cap.buf, cap.cap);
        }
        ssize_t n = read(cap.rd, cap.buf + cap.len, cap.cap - cap.len - 1);
        if (n <= 0)
            break;
        cap.len += (size_t)n;
    }
    cap.buf[cap.len] = '\0';
    return NULL;
}

static void capture_begin(void)
{
    int p[2];
    if (pipe(p) != 0)
        abort();
    fflush(stderr);
    cap.saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    cap.rd = p[0];
    cap.len = 0;
    pthread_create(&cap.reader, NULL, cap_reader, NULL);
}

/* Restores stderr and returns everything written to it since capture_begin(). */
static const char *capture_end(void)
{
    dup2(cap.saved, STDERR_FILENO); /* closes the pipe's last write end: reader sees EOF */
    close(cap.saved);
    pthread_join(cap.reader, NULL);
    close(cap.rd);
    return cap.buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void level_filter_skips_arguments(void)
{
    int evaluated = 0;
    log_init("test", LOG_LEVEL_INFO);
    capture_begin();
    LOG_DEBUG("debug %d", ++evaluated);
    LOG_INFO("info %d", ++evaluated);
    log_set_level(LOG_LEVEL_WARN);
    LOG_INFO("info %d", ++evaluated);
    LOG_WARN("warn %d", ++evaluated);
    LOG_ERROR("error %d", ++evaluated);
    log_set_level(LOG_LEVEL_ERROR);
    LOG_WARN("warn %d", ++evaluated);
    const char *out = capture_end();

    /* Only the three enabled calls evaluated their arguments. */
    CHECK_INT(evaluated, ==, 3);
    CHECK_INT(count_lines(out), ==, 3);
    CHECK(strstr(out, "info: info 1\n"));
    CHECK(strstr(out, "warn: warn 2\n"));
    CHECK(strstr(out, "error: error 3\n"));
    CHECK(!strstr(out, "debug"));
    CHECK(!log_enabled(LOG_LEVEL_WARN));
    CHECK(log_enabled(LOG_LEVEL_ERROR));
    log_set_level(LOG_LEVEL_DEBUG);
    CHECK(log_enabled(LOG_LEVEL_DEBUG));
}

static bool matches(const char *pattern, const char *s)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    bool ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void line_format_and_context(void)
{
    char want[256];
    log_init("c2s", LOG_LEVEL_INFO);
    log_thread_set("2");
    capture_begin();
    CHECK(log_ctx_set("conn 42 (negotiating SASL)") == NULL);
    LOG_INFO("auth %s", "ok");
    const char *prev = log_ctx_set(NULL);
    LOG_WARN("no context");
    log_thread_set(NULL);
    LOG_ERROR("tid");
    const char *out = capture_end();

    CHECK_STR(prev, "conn 42 (negotiating SASL)");
    CHECK_INT(count_lines(out), ==, 3);
    snprintf(want, sizeof want,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "c2s\\[%d/2\\] info: conn 42 \\(negotiating SASL\\): auth ok\n",
             (int)getpid());
    CHECK(matches(want, out));
    snprintf(want, sizeof want, "Z c2s\\[%d/2\\] warn: no context\n", (int)getpid());
    CHECK(matches(want, out));
    /* Without a label, the kernel's thread id. */
    snprintf(want, sizeof want, "Z c2s\\[%d/%d\\] error: tid\n$", (int)getpid(), (int)gettid());
    CHECK(matches(want, out));
}

static void control_bytes_escaped(void)
{
    log_init("test", LOG_LEVEL_INFO);
    log_thread_set("t");
    capture_begin();
    LOG_INFO("a\nb\rc\x01\x7f\td%s", "\n");
    const char *out = capture_end();
    CHECK_INT(count_lines(out), ==, 1);
    CHECK(strstr(out, "info: a\\x0ab\\x0dc\\x01\\x7f\td\\x0a\n"));
}

static void long_message_cut(void)
{
    static char big[3 * LOG_LINE_MAX];
    memset(big, 'x', sizeof big - 1);
    log_init("test", LOG_LEVEL_INFO);
    capture_begin();
    LOG_INFO("%s", big);
    const char *out = capture_end();
    size_t n = strlen(out);
    CHECK_INT(count_lines(out), ==, 1);
    CHECK_INT(n, <=, LOG_LINE_MAX);
    CHECK_INT(n, >, LOG_LINE_MAX - 8);
    CHECK(n > 4 && !strcmp(out + n - 4, "...\n"));
}

static void flood(int i)
{
    LOG_RL(LOG_LEVEL_WARN, "flood %d", i);
}

static void other_site(void)
{
    LOG_RL(LOG_LEVEL_WARN, "other site");
}

static void quiet_site(int i)
{
    LOG_RL(LOG_LEVEL_WARN, "quiet %d", i);
}

static void rate_limit_suppresses_and_reports(void)
{
    log_init("test", LOG_LEVEL_INFO);
    struct timespec t0, t1;
    capture_begin();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        flood(i);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    other_site(); /* a bucket of its own: not suppressed */
    const char *out = capture_end();
    int burst = count_lines(out) - 1;
    /* LOG_RL_BURST at once, plus what refilled while the loop ran (on a loaded machine). */
    long long ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK_INT(burst, >=, LOG_RL_BURST);
    CHECK_INT(burst, <=, LOG_RL_BURST + 1 + ms * LOG_RL_PER_SEC / 1000);
    CHECK(strstr(out, "warn: flood 0\n"));
    CHECK(!strstr(out, "flood 99"));
    CHECK(strstr(out, "warn: other site\n"));
    CHECK(!strstr(out, "suppressed"));

    /* After a refill, the next line reports exactly what was dropped. */
    nanosleep(&(struct timespec){.tv_nsec = 2 * 1000000000L / LOG_RL_PER_SEC}, NULL);
    char want[128];
    snprintf(want, sizeof want, "warn: flood 100 [%d similar lines suppressed]\n", 100 - burst);
    capture_begin();
    flood(100);
    flood(101);
    out = capture_end();
    CHECK(strstr(out, want));
    CHECK(strstr(out, "warn: flood 101\n"));

    /* Below the level, a rate-limited site spends no tokens and counts nothing. */
    log_set_level(LOG_LEVEL_ERROR);
    capture_begin();
    for (int i = 0; i < 100; i++)
        quiet_site(i);
    log_set_level(LOG_LEVEL_WARN);
    quiet_site(100);
    out = capture_end();
    CHECK_INT(count_lines(out), ==, 1);
    CHECK(strstr(out, "warn: quiet 100\n"));
}

struct writer_arg {
    char label[16];
    int lines;
};

static void *writer(void *p)
{
    struct writer_arg *a = p;
    char ctx[32];
    snprintf(ctx, sizeof ctx, "conn %s", a->label);
    log_thread_set(a->label);
    log_ctx_set(ctx);
    /* Long lines, built from prefix, context and message: a logger that wrote them in
     * pieces would interleave them. */
    for (int i = 0; i < a->lines; i++)
        LOG_INFO("%0900d|%s", i, a->label);
    log_ctx_set(NULL);
    return NULL;
}

static void lines_never_interleave(void)
{
    enum { THREADS = 4, LINES = 300 };
    struct writer_arg args[THREADS];
    pthread_t t[THREADS];
    log_init("test", LOG_LEVEL_INFO);
    capture_begin();
    for (int i = 0; i < THREADS; i++) {
        snprintf(args[i].label, sizeof args[i].label, "w%d", i);
        args[i].lines = LINES;
        pthread_create(&t[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    const char *out = capture_end();

    int per[THREADS] = {0}, bad = 0;
    regex_t re;
    CHECK(regcomp(&re,
                  "^[^ ]+Z test\\[[0-9]+/w([0-9])\\] info: conn w([0-9]): [0-9]{900}\\|w([0-9])$",
                  REG_EXTENDED) == 0);
    char *copy = strdup(out), *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        regmatch_t m[4];
        if (regexec(&re, l, 4, m, 0) != 0 || l[m[1].rm_so] != l[m[2].rm_so] ||
            l[m[1].rm_so] != l[m[3].rm_so]) {
            bad++;
            continue;
        }
        per[l[m[1].rm_so] - '0']++;
    }
    regfree(&re);
    free(copy);
    CHECK_INT(bad, ==, 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_INT(per[i], ==, LINES);
}

int main(void)
{
    RUN(level_filter_skips_arguments);
    RUN(line_format_and_context);
    RUN(control_bytes_escaped);
    RUN(long_message_cut);
    RUN(rate_limit_suppresses_and_reports);
    RUN(lines_never_interleave);
    free(cap.buf);
    return test_done("log");
}
