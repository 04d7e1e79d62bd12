/*
 * libFuzzer driver for common/admin/http.c. The input is what a client sends the admin
 * listener; max is taken from its first byte (so small limits are exercised too).
 * Properties, abort() on any violation:
 *   - the answer is 0 or one of the statuses http.h names;
 *   - 0 only while fewer than max bytes came;
 *   - a GET's path lies inside the input, starts with '/' (or is the literal "/"), has no
 *     '?', and its request ends within the input and within max;
 *   - an answer given for a prefix is final: the whole input gets the same answer (and a
 *     GET the same path and length), so reading more never changes a decision.
 */
#include "common/admin/http.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool known(int st)
{
    return st == 0 || st == 200 || st == 400 || st == 405 || st == 414 || st == 431 || st == 505;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 16 + (size_t)data[0] * 8;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    struct http_request r, q;
    int st = http_parse(p, n, max, &r);
    FUZZ_CHECK(known(st));
    FUZZ_CHECK(st != 0 || n < max);
    if (st == 200) {
        bool literal = r.path_len == 1 && !strcmp(r.path, "/");
        FUZZ_CHECK(literal || (r.path >= p && r.path + r.path_len <= p + n));
        FUZZ_CHECK(r.path_len >= 1 && r.path[0] == '/');
        FUZZ_CHECK(!memchr(r.path, '?', r.path_len));
        FUZZ_CHECK(r.len <= n && r.len <= max);
        FUZZ_CHECK(r.minor <= 1);
    }
    for (size_t k = 0; k < n; k += 1 + k / 4) {
        int sk = http_parse(p, k, max, &q);
        if (sk == 0)
            continue;
        FUZZ_CHECK(sk == st);
        if (st == 200)
            FUZZ_CHECK(q.len == r.len && q.path_len == r.path_len && q.minor == r.minor &&
                       !memcmp(q.path, r.path, r.path_len));
    }
    return 0;
}
