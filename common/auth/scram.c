/*
 * scram: SCRAM credentials on BoringSSL's HMAC and PBKDF2, SASLprep from libidn.
 */
#include "common/auth/scram.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>
#include <openssl/digest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <stringprep.h>

/* SASLprep can grow a string (NFKC), so its output gets room beyond the input's limit. */
#define PREP_MAX (4 * SCRAM_PASSWORD_MAX + 1)

static const EVP_MD *md_of(enum scram_hash h)
{
    switch (h) {
    case SCRAM_SHA1:
        return EVP_sha1();
    case SCRAM_SHA256:
        return EVP_sha256();
    }
    return NULL;
}

size_t scram_hash_len(enum scram_hash h)
{
    const EVP_MD *md = md_of(h);
    return md ? EVP_MD_size(md) : 0;
}

void scram_hmac(enum scram_hash h, const void *key, size_t key_len, const void *msg, size_t msg_len,
                uint8_t out[SCRAM_KEY_MAX])
{
    unsigned n;
    if (!HMAC(md_of(h), key, key_len, msg, msg_len, out, &n))
        abort(); /* only fails on allocation, which HMAC with a known MD never does */
}

void scram_digest(enum scram_hash h, const void *p, size_t n, uint8_t out[SCRAM_KEY_MAX])
{
    if (!EVP_Digest(p, n, out, NULL, md_of(h), NULL))
        abort();
}

int scram_salted_password(enum scram_hash h, const char *prepared, size_t len, const uint8_t *salt,
                          size_t salt_len, uint32_t iterations, uint8_t out[SCRAM_KEY_MAX])
{
    const EVP_MD *md = md_of(h);
    if (!md || iterations == 0 || iterations > SCRAM_MAX_ITERATIONS)
        return -EINVAL;
    if (!PKCS5_PBKDF2_HMAC(prepared, len, salt, salt_len, iterations, md, EVP_MD_size(md), out))
        return -EINVAL;
    return 0;
}

int scram_saslprep(const char *in, size_t len, char *out, size_t cap, bool stored)
{
    /* libidn works on a NUL-terminated string in place, validating UTF-8 as it goes; a NUL
     * inside would silently cut the password short. */
    if (len > SCRAM_PASSWORD_MAX || memchr(in, 0, len))
        return -EINVAL;
    if (cap < len + 1)
        return -ENOSPC;
    memcpy(out, in, len);
    out[len] = 0;
    int rc = stringprep(out, cap, stored ? STRINGPREP_NO_UNASSIGNED : 0, stringprep_saslprep);
    if (rc == STRINGPREP_TOO_SMALL_BUFFER)
        return -ENOSPC;
    if (rc != STRINGPREP_OK || out[0] == 0)
        return -EINVAL;
    return (int)strlen(out);
}

/* SaltedPassword -> StoredKey, ServerKey (RFC 5802 §3). */
static void keys_from_salted(enum scram_hash h, const uint8_t *salted, struct scram_creds *out)
{
    size_t hl = scram_hash_len(h);
    uint8_t client_key[SCRAM_KEY_MAX];
    scram_hmac(h, salted, hl, "Client Key", 10, client_key);
    scram_digest(h, client_key, hl, out->stored_key);
    scram_hmac(h, salted, hl, "Server Key", 10, out->server_key);
    OPENSSL_cleanse(client_key, sizeof client_key);
}

static int derive(enum scram_hash hash, const char *password, bool stored, const uint8_t *salt,
                  size_t salt_len, uint32_t iterations, struct scram_creds *out)
{
    char prep[PREP_MAX];
    uint8_t salted[SCRAM_KEY_MAX];
    int n, rc;

    if (!md_of(hash) || salt_len == 0 || salt_len > SCRAM_SALT_MAX || iterations == 0 ||
        iterations > SCRAM_MAX_ITERATIONS)
        return -EINVAL;
    n = scram_saslprep(password, strlen(password), prep, sizeof prep, stored);
    if (n < 0) {
        rc = n == -ENOSPC ? -EINVAL : n;
        goto out_prep;
    }
    rc = scram_salted_password(hash, prep, (size_t)n, salt, salt_len, iterations, salted);
    if (rc < 0)
        goto out_prep;
    memset(out, 0, sizeof *out);
    out->hash = hash;
    out->iterations = iterations;
    out->salt_len = (uint8_t)salt_len;
    memcpy(out->salt, salt, salt_len);
    keys_from_salted(hash, salted, out);
    OPENSSL_cleanse(salted, sizeof salted);
out_prep:
    OPENSSL_cleanse(prep, sizeof prep);
    return rc;
}

int scram_creds_derive(enum scram_hash hash, const char *password, const uint8_t *salt,
                       size_t salt_len, uint32_t iterations, struct scram_creds *out)
{
    return derive(hash, password, true, salt, salt_len, iterations, out);
}

int scram_creds_make(enum scram_hash hash, const char *password, uint32_t iterations,
                     struct scram_creds *out)
{
    uint8_t salt[SCRAM_SALT_LEN];
    if (iterations < SCRAM_MIN_ITERATIONS)
        return -EINVAL;
    RAND_bytes(salt, sizeof salt);
    return derive(hash, password, true, salt, sizeof salt, iterations, out);
}

bool scram_creds_valid(const struct scram_creds *c)
{
    return md_of(c->hash) && c->salt_len > 0 && c->salt_len <= SCRAM_SALT_MAX &&
           c->iterations > 0 && c->iterations <= SCRAM_MAX_ITERATIONS;
}

bool scram_verify_plain(const struct scram_creds *c, const char *password)
{
    struct scram_creds mine;
    if (!scram_creds_valid(c))
        return false;
    /* A query, not a stored string: unassigned code points pass (RFC 4013 §2.5 and RFC 3454
     * §7); a password holding them could never have been stored, so it fails below. */
    if (derive(c->hash, password, false, c->salt, c->salt_len, c->iterations, &mine) < 0)
        return false;
    bool ok = CRYPTO_memcmp(mine.stored_key, c->stored_key, scram_hash_len(c->hash)) == 0;
    OPENSSL_cleanse(&mine, sizeof mine);
    return ok;
}

/* ---- RFC 5803 text form ---------------------------------------------------------------- */

static const char *mech_name(enum scram_hash h)
{
    return h == SCRAM_SHA1 ? "SCRAM-SHA-1" : h == SCRAM_SHA256 ? "SCRAM-SHA-256" : NULL;
}

int scram_creds_format(const struct scram_creds *c, char *out, size_t cap)
{
    char salt[4 * SCRAM_SALT_MAX / 3 + 4], sk[4 * SCRAM_KEY_MAX / 3 + 4],
        svk[4 * SCRAM_KEY_MAX / 3 + 4];
    size_t hl = scram_hash_len(c->hash);

    if (!scram_creds_valid(c))
        return -EINVAL;
    EVP_EncodeBlock((uint8_t *)salt, c->salt, c->salt_len);
    EVP_EncodeBlock((uint8_t *)sk, c->stored_key, hl);
    EVP_EncodeBlock((uint8_t *)svk, c->server_key, hl);
    int n = snprintf(out, cap, "%s$%u:%s$%s:%s", mech_name(c->hash), c->iterations, salt, sk, svk);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}

/* Decodes base64 s[0..n) into exactly want bytes (or, when want is 0, up to max bytes). */
static int b64_field(const char *s, size_t n, uint8_t *out, size_t max, size_t want)
{
    uint8_t buf[128];
    size_t len;
    if (n == 0 || n > 4 * sizeof buf / 3 ||
        !EVP_DecodeBase64(buf, &len, sizeof buf, (const uint8_t *)s, n))
        return -EINVAL;
    if ((want && len != want) || len == 0 || len > max)
        return -EINVAL;
    memcpy(out, buf, len);
    return (int)len;
}

int scram_creds_parse(const char *s, size_t len, struct scram_creds *out)
{
    const char *end = s + len, *p, *dollar, *colon;
    struct scram_creds c = {0};
    unsigned long it = 0;
    int n;

    dollar = memchr(s, '$', len);
    if (!dollar)
        return -EINVAL;
    if ((size_t)(dollar - s) == 11 && memcmp(s, "SCRAM-SHA-1", 11) == 0)
        c.hash = SCRAM_SHA1;
    else if ((size_t)(dollar - s) == 13 && memcmp(s, "SCRAM-SHA-256", 13) == 0)
        c.hash = SCRAM_SHA256;
    else
        return -EINVAL;
    size_t hl = scram_hash_len(c.hash);

    /* <iterations>:<salt>$ */
    p = dollar + 1;
    if (p == end || *p < '1' || *p > '9')
        return -EINVAL;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        it = it * 10 + (unsigned long)(*p - '0');
        if (it > SCRAM_MAX_ITERATIONS)
            return -EINVAL;
    }
    if (p == end || *p != ':')
        return -EINVAL;
    c.iterations = (uint32_t)it;
    p++;
    dollar = memchr(p, '$', (size_t)(end - p));
    if (!dollar || (n = b64_field(p, (size_t)(dollar - p), c.salt, SCRAM_SALT_MAX, 0)) < 0)
        return -EINVAL;
    c.salt_len = (uint8_t)n;

    /* <StoredKey>:<ServerKey> */
    p = dollar + 1;
    colon = memchr(p, ':', (size_t)(end - p));
    if (!colon || b64_field(p, (size_t)(colon - p), c.stored_key, hl, hl) < 0 ||
        b64_field(colon + 1, (size_t)(end - colon - 1), c.server_key, hl, hl) < 0)
        return -EINVAL;
    *out = c;
    return 0;
}
