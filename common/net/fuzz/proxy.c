/*
 * libFuzzer driver for common/net/proxy.c: the input is what a connection from a load
 * balancer (or whoever took its address) sent first. The first byte picks the bound on a
 * v2 header (16 + 8 * byte, up to PROXY_V2_MAX), the rest is the bytes. Properties,
 * abort() on any violation:
 *   - proxy_parse() answers one of its three statuses, never reads outside the input
 *     (ASan) and gives a reason with PROXY_INVALID;
 *   - PROXY_DONE: the header is within the input and its version's bound (107 bytes for
 *     v1, the caller's for v2); with has_addr, src and dst are of one family, IPv4 or
 *     IPv6; without, both are AF_UNSPEC;
 *   - the answer depends on the header's bytes only: the header alone gives the same,
 *     and every shorter prefix of it is PROXY_INCOMPLETE (as a header cut anywhere
 *     arrives); a prefix of an incomplete input is incomplete too.
 */
#include "common/net/proxy.h"

#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max = PROXY_V2_FIXED + 8 * (size_t)data[0];
    data++, size--;
    struct proxy_header h, g;
    enum proxy_status st = proxy_parse(data, size, max, &h);
    FUZZ_CHECK(st == PROXY_INCOMPLETE || st == PROXY_DONE || st == PROXY_INVALID);
    FUZZ_CHECK((st == PROXY_INVALID) == (h.why != NULL));
    size_t end = size;
    if (st == PROXY_DONE) {
        FUZZ_CHECK(h.len > 0 && h.len <= size);
        FUZZ_CHECK(h.version == 1 ? h.len <= PROXY_V1_MAX : h.version == 2 && h.len <= max);
        if (h.has_addr)
            FUZZ_CHECK((h.src.sa.sa_family == AF_INET || h.src.sa.sa_family == AF_INET6) &&
                       h.dst.sa.sa_family == h.src.sa.sa_family);
        else
            FUZZ_CHECK(h.src.sa.sa_family == AF_UNSPEC && h.dst.sa.sa_family == AF_UNSPEC);
        FUZZ_CHECK(proxy_parse(data, h.len, max, &g) == PROXY_DONE && g.len == h.len &&
                   g.has_addr == h.has_addr && !memcmp(&g.src, &h.src, sizeof g.src) &&
                   !memcmp(&g.dst, &h.dst, sizeof g.dst));
        end = h.len;
    }
    if (st != PROXY_INVALID) /* every shorter prefix (a bounded number: the header's) */
        for (size_t k = 0; k < end; k++)
            FUZZ_CHECK(proxy_parse(data, k, max, &g) == PROXY_INCOMPLETE);
    return 0;
}
