/*
 * dns_srv: what an SRV answer says (RFC 2782), read from the DNS message itself, and the
 * order in which its targets are tried. No I/O: dns.c hands it the answers c-ares
 * received; the fuzz driver (fuzz/dns_srv.c) hands it anything.
 *
 * Reading. c-ares 1.18 parses SRV records but drops their TTLs, which the cache needs, so
 * the answer section is read here: every SRV record of class IN (whatever its owner: a
 * recursive server puts the CNAMEs it followed first), the least TTL of those and of the
 * CNAMEs (RFC 2181 §8: a TTL with the top bit set counts as 0). A target that is not a
 * plain host name (letters, digits, '-' and '_' in labels of 1..63 bytes, at most
 * DNS_NAME_MAX bytes; as RFC 2782 asks) is skipped, as is a record with port 0; a target
 * of "." is RFC 2782's "the service is decidedly not available" and is reported apart.
 * The answer is untrusted: every offset is checked against its length, a compression
 * pointer must point backwards (so names cannot loop), and the number of records
 * considered is bounded by what fits in the message (at most 65535 bytes).
 *
 * Order (RFC 2782, "Usage rules"): by priority, lowest first; within a priority, each
 * next target is drawn at random with a chance proportional to its weight (weight 0
 * only when the draw is exactly 0, "a very small chance"; uniformly when every weight
 * left is 0). Only the first `max` targets are kept: the draw stops there.
 *
 * Memory: dns_srv_parse() allocates a scratch array of one small entry per record
 * while it runs and frees it before it returns. Any thread may call either function.
 */
#ifndef STARLING_DNS_SRV_H
#define STARLING_DNS_SRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 253 /* bytes of a host name in text form, without the final dot */

/* Record types and the class (RFC 1035 §3.2, RFC 3596, RFC 2782). */
#define DNS_T_A     1
#define DNS_T_CNAME 5
#define DNS_T_AAAA  28
#define DNS_T_SRV   33
#define DNS_C_IN    1

/* One SRV record as it is kept: a target to try. */
struct dns_srv {
    uint16_t priority, weight, port;
    char target[DNS_NAME_MAX + 1]; /* lower case, no final dot */
};

/* What one answer held. */
struct dns_srv_answer {
    size_t n;     /* records written to the caller's array, in the order to try them */
    bool dot;     /* a record had the target "." */
    uint32_t ttl; /* least TTL of the SRV and CNAME records; UINT32_MAX when none */
};

/*
 * Reads the answer section of msg[0..len), a whole DNS response, into out[0..max) in
 * the order to try them, drawing the weighted order from *rng (any state; advanced).
 * Returns 0 (a response with no SRV record is n = 0), -EBADMSG when the message is
 * malformed (then out holds nothing useful) or -ENOMEM.
 */
int dns_srv_parse(const uint8_t *msg, size_t len, struct dns_srv *out, size_t max, uint64_t *rng,
                  struct dns_srv_answer *ans);

/* One record while it is being ordered. */
struct dns_srv_rr {
    uint16_t priority, weight, port;
    uint16_t target; /* offset of the target name in the message */
};

/*
 * Puts rr[0..n) in RFC 2782 order, as above; only rr[0..min(n, keep)) is meaningful
 * afterwards. Draws from *rng.
 */
void dns_srv_order(struct dns_srv_rr *rr, size_t n, size_t keep, uint64_t *rng);

/* The next number of a splitmix64 sequence whose state is *s. */
uint64_t dns_srv_rand(uint64_t *s);

#endif
