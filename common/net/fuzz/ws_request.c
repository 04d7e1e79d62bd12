/*
 * libFuzzer driver for ws_request_parse() (common/net/ws.c): the input is what a client
 * sent first on a WebSocket listener. The first byte picks the bound (64 * (1 + byte)
 * bytes), the rest is the bytes. Properties, abort() on any violation:
 *   - one of the three statuses; never a read outside the input (ASan);
 *   - WS_INVALID gives an HTTP status of 400, 405, 426, 431 or 505 and a reason;
 *   - WS_DONE: the request is within the input and the bound, ends with its blank line,
 *     the key is 24 characters, every span lies inside the request, and the request
 *     alone gives the same answer (what follows it is not its business);
 *   - an answer other than 431 depends on the request's bytes only: every prefix
 *     shorter than its blank line is WS_INCOMPLETE.
 */
#include "common/net/ws.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(struct ws_span s, const char *p, size_t n)
{
    return !s.p || (s.p >= p && s.p + s.len <= p + n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = 64 * (1 + (size_t)data[0]);
    const char *p = (const char *)data + 1;
    size--;
    struct ws_request r, g;
    enum ws_status st = ws_request_parse(p, size, max, &r);
    FUZZ_CHECK(st == WS_INCOMPLETE || st == WS_DONE || st == WS_INVALID);
    if (st == WS_INVALID) {
        FUZZ_CHECK(r.why != NULL);
        FUZZ_CHECK(r.status == 400 || r.status == 405 || r.status == 426 || r.status == 431 ||
                   r.status == 505);
    }
    if (st == WS_DONE) {
        FUZZ_CHECK(r.len >= 4 && r.len <= size && r.len <= max);
        FUZZ_CHECK(!memcmp(p + r.len - 4, "\r\n\r\n", 4));
        FUZZ_CHECK(r.key.p && r.key.len == 24);
        FUZZ_CHECK(inside(r.key, p, r.len) && inside(r.origin, p, r.len) &&
                   inside(r.target, p, r.len));
        FUZZ_CHECK(ws_request_parse(p, r.len, max, &g) == WS_DONE && g.len == r.len &&
                   g.xmpp == r.xmpp && g.key.p == r.key.p && g.origin.p == r.origin.p);
    }
    if (st == WS_DONE || (st == WS_INVALID && r.status != 431)) {
        for (size_t k = 0; k + 1 < r.len; k++)
            FUZZ_CHECK(ws_request_parse(p, k, max, &g) == WS_INCOMPLETE);
        if (st == WS_INVALID) /* the same answer for the request alone */
            FUZZ_CHECK(ws_request_parse(p, r.len, max, &g) == WS_INVALID && g.status == r.status);
    }
    return 0;
}
