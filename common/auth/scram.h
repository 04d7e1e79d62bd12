/*
 * scram: SCRAM credentials (RFC 5802, RFC 7677) and the cryptography built on them: what
 * the account store keeps per account and hash, how it is made from a password, and the
 * password check PLAIN needs. The exchange itself (parsing client messages, nonces, proofs
 * checked against these credentials) is the SASL machine's, in sasl.h.
 *
 * Stored credentials never include the password or anything a client could log in with:
 * only salt, iteration count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and
 * ServerKey = HMAC(SaltedPassword, "Server Key").
 *
 * Cost: scram_creds_make(), scram_creds_derive() and scram_verify_plain() run PBKDF2 with
 * the iteration count (milliseconds): keep them off I/O threads. Everything else is cheap.
 * All functions are reentrant and may be called from any thread.
 */
#ifndef STARLING_SCRAM_H
#define STARLING_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum scram_hash {
    SCRAM_SHA1 = 1, /* SCRAM-SHA-1, RFC 5802 */
    SCRAM_SHA256,   /* SCRAM-SHA-256, RFC 7677 */
};

#define SCRAM_KEY_MAX        32       /* longest hash output: SHA-256 */
#define SCRAM_SALT_LEN       16       /* salt bytes scram_creds_make() draws */
#define SCRAM_SALT_MAX       64       /* longest salt accepted from storage */
#define SCRAM_MIN_ITERATIONS 4096     /* RFC 7677 §4: at least 4096 for new credentials */
#define SCRAM_MAX_ITERATIONS 10000000 /* bounds the PBKDF2 work a stored value can ask for */
#define SCRAM_PASSWORD_MAX   1023     /* bytes of a password before SASLprep */
#define SCRAM_TEXT_MAX       208      /* scram_creds_format() output, NUL included */

/* What the store keeps for one account and one hash. */
struct scram_creds {
    enum scram_hash hash;
    uint32_t iterations;
    uint8_t salt_len;
    uint8_t salt[SCRAM_SALT_MAX];
    uint8_t stored_key[SCRAM_KEY_MAX]; /* first scram_hash_len() bytes used */
    uint8_t server_key[SCRAM_KEY_MAX];
};

/* Output length of the hash: 20 or 32; 0 for a value outside the enum. */
size_t scram_hash_len(enum scram_hash h);

/*
 * Credentials for password with a fresh random salt (RAND_bytes) of SCRAM_SALT_LEN bytes.
 * The password is UTF-8, prepared with SASLprep (RFC 4013) as a stored string. 0; -EINVAL
 * for an unknown hash, an iteration count outside [SCRAM_MIN_ITERATIONS,
 * SCRAM_MAX_ITERATIONS] or a password that SASLprep rejects or leaves empty.
 */
int scram_creds_make(enum scram_hash hash, const char *password, uint32_t iterations,
                     struct scram_creds *out);

/*
 * The same with a given salt (1..SCRAM_SALT_MAX bytes) and any iteration count from 1 to
 * SCRAM_MAX_ITERATIONS: for importing accounts and reproducing the RFCs' examples.
 */
int scram_creds_derive(enum scram_hash hash, const char *password, const uint8_t *salt,
                       size_t salt_len, uint32_t iterations, struct scram_creds *out);

/*
 * Whether password (UTF-8, NUL-terminated, prepared here with SASLprep as a query) is the
 * one c was made from. Runs PBKDF2; the final comparison takes constant time.
 */
bool scram_verify_plain(const struct scram_creds *c, const char *password);

/* Whether c could have come from scram_creds_derive(): known hash, sane lengths and count. */
bool scram_creds_valid(const struct scram_creds *c);

/*
 * RFC 5803 text form, for storage: "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
 * with base64 fields. format: the length written (without the NUL) or -ENOSPC; out must
 * hold SCRAM_TEXT_MAX bytes to never fail. parse: 0 or -EINVAL.
 */
int scram_creds_format(const struct scram_creds *c, char *out, size_t cap);
int scram_creds_parse(const char *s, size_t len, struct scram_creds *out);

/*
 * SASLprep (RFC 4013) of in[0..len) into out (NUL-terminated): its length, or -EINVAL for
 * invalid UTF-8, prohibited or (when stored) unassigned code points, an empty result;
 * -ENOSPC when out is too small. stored: the rules for stored strings (no unassigned code
 * points) rather than queries.
 */
int scram_saslprep(const char *in, size_t len, char *out, size_t cap, bool stored);

/* The primitives, for the SASL machine and for tests that play the client. */
void scram_hmac(enum scram_hash h, const void *key, size_t key_len, const void *msg, size_t msg_len,
                uint8_t out[SCRAM_KEY_MAX]);
void scram_digest(enum scram_hash h, const void *p, size_t n, uint8_t out[SCRAM_KEY_MAX]);
/* Hi(password, salt, i) of RFC 5802 §2.2 on an already prepared password. 0 or -EINVAL. */
int scram_salted_password(enum scram_hash h, const char *prepared, size_t len, const uint8_t *salt,
                          size_t salt_len, uint32_t iterations, uint8_t out[SCRAM_KEY_MAX]);

#endif
