/*
 * test.h: the whole unit-test framework, in the spirit of Redis' testhelp.h.
 *
 * A test is a function; CHECK* macros record a failure with file and line and let the
 * test go on, so one run shows every broken case of a table. RUN() counts a test as
 * passed when none of its checks failed. test_done() prints the line CI reads,
 * "N passed, N failed", and returns the process exit status.
 *
 * Single-threaded; include it from exactly one test file per binary.
 */
#ifndef STARLING_TEST_H
#define STARLING_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int test_passed, test_failed, test_cur_failed;
static const char *test_cur_name;

#define TEST_FAIL(...)                                                                             \
    do {                                                                                           \
        test_cur_failed++;                                                                         \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, test_cur_name);                         \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            TEST_FAIL("check failed: %s", #cond);                                                  \
    } while (0)

/* Integers compared as intmax_t so the message shows both values. */
#define CHECK_INT(a, op, b)                                                                        \
    do {                                                                                           \
        intmax_t test_a_ = (intmax_t)(a), test_b_ = (intmax_t)(b);                                 \
        if (!(test_a_ op test_b_))                                                                 \
            TEST_FAIL("%s %s %s: %jd vs %jd", #a, #op, #b, test_a_, test_b_);                      \
    } while (0)

/* A byte span (p, n) equal to the NUL-terminated string s. */
#define CHECK_SPAN(p, n, s)                                                                        \
    do {                                                                                           \
        const char *test_p_ = (const char *)(p), *test_s_ = (s);                                   \
        size_t test_n_ = (size_t)(n);                                                              \
        if (test_n_ != strlen(test_s_) || (test_n_ && memcmp(test_p_, test_s_, test_n_)))          \
            TEST_FAIL("%s is '%.*s', expected '%s'", #p, (int)test_n_, test_p_ ? test_p_ : "",     \
                      test_s_);                                                                    \
    } while (0)

/* A NUL-terminated string a (evaluated once) equal to b. */
#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *test_str_ = (a);                                                               \
        CHECK_SPAN(test_str_, test_str_ ? strlen(test_str_) : 0, (b));                             \
    } while (0)

static inline void test_run(const char *name, void (*fn)(void))
{
    test_cur_name = name;
    test_cur_failed = 0;
    fn();
    if (test_cur_failed)
        test_failed++;
    else
        test_passed++;
}

#define RUN(fn) test_run(#fn, fn)

static inline int test_done(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
