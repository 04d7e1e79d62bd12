/*
 * saslc: the client side of SASL PLAIN (RFC 4616) and SCRAM-SHA-1 / SCRAM-SHA-256
 * (RFC 5802, RFC 7677) for starling-bench, built on common/auth/scram.h's primitives. No
 * channel binding: the GS2 header is always "n,," (the client does not support it),
 * which every server accepts on any transport.
 *
 * The module does no I/O and knows nothing of XMPP: it turns the base64 text of one
 * <challenge/> into the base64 text of the next <response/>, and checks the server's
 * signature in <success/> (SCRAM is mutual: a server that cannot prove it knows the
 * credentials is refused even when it says success).
 *
 * Cost: the SCRAM client must run PBKDF2 (the iteration count the server asks for) to
 * get SaltedPassword. Like a real client, it caches the result: a struct saslc_keys per
 * account, owned by the caller, keeps ClientKey and ServerKey for the salt and count
 * last seen, so only an account's first login pays for PBKDF2 (about 1 ms at 4096
 * iterations); later ones cost a few HMACs.
 *
 * Threads: a struct saslc belongs to the connection's thread; functions are reentrant.
 */
#ifndef STARLING_BENCH_SASLC_H
#define STARLING_BENCH_SASLC_H

#include "common/auth/scram.h"

#include <stddef.h>
#include <stdint.h>

enum saslc_mech {
    SASLC_PLAIN = 1,
    SASLC_SCRAM_SHA1,
    SASLC_SCRAM_SHA256,
};

#define SASLC_NONCE_RAW 18   /* random bytes of a client nonce: 24 base64 characters */
#define SASLC_BARE_MAX  384  /* client-first-message-bare: "n=<escaped user>,r=<nonce>" */
#define SASLC_OUT_MAX   1024 /* base64 text of any message this module writes, NUL included */

/* An account's cached SCRAM keys; zero-initialised means empty. */
struct saslc_keys {
    uint8_t hash; /* enum scram_hash; 0: nothing cached */
    uint8_t salt_len;
    uint32_t iterations;
    uint8_t salt[SCRAM_SALT_MAX];
    uint8_t client_key[SCRAM_KEY_MAX];
    uint8_t server_key[SCRAM_KEY_MAX];
};

struct saslc {
    uint8_t mech;  /* enum saslc_mech */
    uint8_t state; /* private: where the exchange is */
    uint16_t bare_len;
    uint16_t nonce_off; /* where the client nonce starts in bare */
    char bare[SASLC_BARE_MAX];
    uint8_t server_sig[SCRAM_KEY_MAX]; /* the v= the server must send */
};

/* "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256". */
const char *saslc_mech_name(enum saslc_mech m);

/* The mechanism named (case-sensitive, as on the wire), or -EINVAL. */
int saslc_mech_parse(const char *name);

/*
 * Starts an exchange as user (the localpart, UTF-8) and writes the initial response, in
 * base64 and NUL-terminated, to out (cap >= SASLC_OUT_MAX is always enough). nonce: the
 * client nonce to use (printable ASCII without ','), or NULL for a random one; tests give
 * RFC examples' nonces. Returns the length of out, or -EINVAL when user or password is
 * empty, too long or rejected by SASLprep, -ENOSPC when cap is too small.
 */
int saslc_start(struct saslc *s, enum saslc_mech m, const char *user, const char *password,
                const char *nonce, char *out, size_t cap);

/*
 * The server's challenge in[0..n) (base64) gives the next response, written like
 * saslc_start's. For SCRAM the first challenge is server-first-message; password must be
 * the one given to saslc_start; keys (may be NULL) is the account's cache, used when its
 * salt and count match and refilled otherwise. A server-final-message sent as a
 * challenge (some servers do) is verified here and answered with an empty response
 * (length 0). Returns the length, or -EBADMSG for a malformed challenge, -EPROTO when
 * the server's nonce does not extend ours, its signature is wrong or it sent an error,
 * -EINVAL for an iteration count out of [1, SCRAM_MAX_ITERATIONS], -ENOSPC.
 */
int saslc_step(struct saslc *s, const char *password, struct saslc_keys *keys, const char *in,
               size_t n, char *out, size_t cap);

/*
 * The additional data of <success/> in[0..n) (base64, n may be 0). 0 when the exchange
 * is complete and, for SCRAM, the server proved it knows the credentials (v= here or in
 * an earlier challenge); -EPROTO otherwise; -EBADMSG when malformed.
 */
int saslc_success(struct saslc *s, const char *in, size_t n);

#endif
