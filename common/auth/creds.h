/*
 * creds: between the SCRAM core's credentials (scram.h, one hash at a time) and the
 * store's record of an account (store.h, both hashes). Stored keys and salts only:
 * no plaintext password ever reaches either side.
 */
#ifndef STARLING_CREDS_H
#define STARLING_CREDS_H

#include "common/auth/scram.h"
#include "common/store/store.h"

#include <errno.h>
#include <string.h>

/* Copies one hash's credentials into the account record. -EINVAL if they do not fit. */
static inline int creds_put(struct store_creds *st, const struct scram_creds *c)
{
    if (c->salt_len > STORE_SALT_MAX)
        return -EINVAL;
    if (c->hash == SCRAM_SHA1) {
        st->sha1.iterations = c->iterations;
        st->sha1.salt_len = c->salt_len;
        memcpy(st->sha1.salt, c->salt, c->salt_len);
        memcpy(st->sha1.stored_key, c->stored_key, sizeof st->sha1.stored_key);
        memcpy(st->sha1.server_key, c->server_key, sizeof st->sha1.server_key);
    } else {
        st->sha256.iterations = c->iterations;
        st->sha256.salt_len = c->salt_len;
        memcpy(st->sha256.salt, c->salt, c->salt_len);
        memcpy(st->sha256.stored_key, c->stored_key, sizeof st->sha256.stored_key);
        memcpy(st->sha256.server_key, c->server_key, sizeof st->sha256.server_key);
    }
    return 0;
}

/* The credentials of one hash out of the account record. */
static inline void creds_get(const struct store_creds *st, enum scram_hash h, struct scram_creds *c)
{
    memset(c, 0, sizeof *c);
    c->hash = h;
    if (h == SCRAM_SHA1) {
        c->iterations = st->sha1.iterations;
        c->salt_len = st->sha1.salt_len;
        memcpy(c->salt, st->sha1.salt, st->sha1.salt_len);
        memcpy(c->stored_key, st->sha1.stored_key, sizeof st->sha1.stored_key);
        memcpy(c->server_key, st->sha1.server_key, sizeof st->sha1.server_key);
    } else {
        c->iterations = st->sha256.iterations;
        c->salt_len = st->sha256.salt_len;
        memcpy(c->salt, st->sha256.salt, st->sha256.salt_len);
        memcpy(c->stored_key, st->sha256.stored_key, sizeof st->sha256.stored_key);
        memcpy(c->server_key, st->sha256.server_key, sizeof st->sha256.server_key);
    }
}

/* Both hashes' credentials for a new password. 0 or -errno. */
static inline int creds_make(const char *password, uint32_t iterations, struct store_creds *st)
{
    struct scram_creds c;
    int err;
    memset(st, 0, sizeof *st);
    if ((err = scram_creds_make(SCRAM_SHA1, password, iterations, &c)) < 0 ||
        (err = creds_put(st, &c)) < 0 ||
        (err = scram_creds_make(SCRAM_SHA256, password, iterations, &c)) < 0 ||
        (err = creds_put(st, &c)) < 0)
        return err;
    memset(&c, 0, sizeof c);
    return 0;
}

#endif
