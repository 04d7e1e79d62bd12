/*
 * bid: the stamp starling-bench puts in the id attribute of every message and presence
 * it sends for measuring: what kind of stanza, which connection sent it, its sequence
 * number on that connection, and the CLOCK_MONOTONIC time (ns) it was due.
 *
 * Why the id: every server must hand a stanza's id to the recipient unchanged (RFC 6120
 * §8.1.3), and the stream parser (common/xmpp/xml.h) decodes it with no extra work, so the
 * receiver reads the stamp without looking into the body. Sender and receiver share one
 * host and therefore one monotonic clock.
 *
 * The text is fixed-width lowercase hex, so a sender patches it into a prebuilt stanza
 * in place:  b<kind><idx:8>.<seq:8>.<time:16>   e.g. bm0000002a.00000007.000001c9a3f1e2d0
 */
#ifndef STARLING_BENCH_BID_H
#define STARLING_BENCH_BID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BID_LEN 36

enum bid_kind {
    BID_MESSAGE = 'm',
    BID_PRESENCE = 'p',
};

struct bid {
    char kind;    /* enum bid_kind */
    uint32_t idx; /* the sender's connection index (its account number - first) */
    uint32_t seq; /* per sender and kind, from 0 */
    uint64_t t;   /* CLOCK_MONOTONIC ns the stanza was due (open loop) or sent */
};

/* Writes exactly BID_LEN bytes (no NUL). */
void bid_write(char *out, const struct bid *b);

/* Parses p[0..n); false when it is not a stamp (another client's id, say). */
bool bid_parse(const char *p, size_t n, struct bid *b);

#endif
