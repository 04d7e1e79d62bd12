/*
 * store_mam: the message archive's part of the store (XEP-0313): archived stanzas by
 * owner, and each owner's archiving preferences. Same rules as store.h (asynchronous
 * requests copied at submission, callbacks on the client's thread, results valid until
 * the callback returns, *_sync twins for start-up and tools).
 *
 * Owner. An archive's owner is a string of 1..STORE_MAM_OWNER_MAX bytes: an account's
 * localpart (as store.h's `user`; deleting the account deletes its archive and its
 * preferences), or a room's bare JID (`room@conference.example`, which a localpart
 * can never be: RFC 7622 forbids '@' in one). The store does not check that the owner
 * exists: a room has no account, and archive rows for a user are written after the
 * user's server decided the account exists.
 *
 * Ids. The caller gives each row its id (the XEP-0359 stanza-id it added to the
 * stanza), unique within the owner's archive and increasing with time: queries sort
 * and page by it, and retention deletes by it, so the id is the archiving time in
 * UTC microseconds since the Unix epoch (made strictly increasing by the caller). A
 * row whose id the owner's archive has already is not stored (the append's count says
 * how many were).
 */
#ifndef STARLING_STORE_MAM_H
#define STARLING_STORE_MAM_H

#include "common/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_MAM_OWNER_MAX 3071 /* a room's bare JID at most */
#define STORE_MAM_BATCH_MAX 4096 /* rows of one append */
#define STORE_MAM_PAGE_MAX  1000 /* messages of one page */
#define STORE_MAM_PREFS_MAX 1000 /* JIDs of one owner's always and never lists together */

/* One archived stanza, to append. */
struct store_mam_row {
    const char *owner;
    uint64_t id;          /* 1..INT64_MAX; the archiving time (see above) */
    const char *with;     /* the peer's full JID (or bare, without resource) */
    size_t with_bare_len; /* bytes of with that are its bare JID */
    const char *stanza;
    size_t len; /* 1..STORE_STANZA_MAX */
};

/* A query: the owner's messages matching every filter given, in id order. */
struct store_mam_query {
    const char *owner;
    const char *with; /* NULL: any; a bare JID matches its resources too, a full one
                       * only itself (XEP-0313 §4.1.1) */
    uint64_t start, end;       /* ids (times) at least and at most; 0: no bound */
    uint64_t after, before;    /* ids strictly after and before; 0: no bound */
    size_t max;                /* messages at most, 0..STORE_MAM_PAGE_MAX */
    bool last; /* the newest `max` (an RSM <before/> page) instead of the oldest */
};

struct store_mam_msg {
    uint64_t id;
    const char *stanza;
    size_t len;
};

/* A page: messages oldest first; count is how many match the filters without
 * after/before, index how many of those come before the page's first message;
 * complete says no message matches beyond the page in the direction asked (after the
 * page, or before it when `last`). */
struct store_mam_page {
    size_t n;
    struct store_mam_msg *msgs;
    size_t count, index;
    bool complete;
};

/* Preferences (XEP-0313 §6.1): the default, then JIDs (bare) always or never archived. */
enum store_mam_default { STORE_MAM_ALWAYS, STORE_MAM_NEVER, STORE_MAM_ROSTER };

struct store_mam_prefs {
    uint8_t dflt; /* enum store_mam_default */
    bool stored;  /* a get: the owner has set them (else they are the caller's default) */
    size_t n;
    const char *const *jids; /* n JIDs, 1..STORE_JID_MAX bytes each */
    const bool *always;      /* jids[i] is in the always list (else never) */
};

typedef void (*store_mam_fn)(void *arg, int res, const struct store_mam_page *page);
typedef void (*store_mam_prefs_fn)(void *arg, int res, const struct store_mam_prefs *prefs);

/* Appends 1..STORE_MAM_BATCH_MAX rows (any owners) in one transaction; completes with
 * how many were stored (a row whose id its owner has is skipped). */
int store_mam_append(struct store_client *cl, const struct store_mam_row *rows, size_t n,
                     store_done_fn done, void *arg);

/* A page of the owner's archive. */
int store_mam_query(struct store_client *cl, const struct store_mam_query *q, store_mam_fn done,
                    void *arg);

/* The owner's preferences; none stored: res 0, stored false, no JIDs. */
int store_mam_prefs_get(struct store_client *cl, const char *owner, store_mam_prefs_fn done,
                        void *arg);

/* Replaces the owner's preferences. */
int store_mam_prefs_set(struct store_client *cl, const char *owner,
                        const struct store_mam_prefs *prefs, store_done_fn done, void *arg);

/* Deletes up to `limit` (1..STORE_LIST_MAX * 10) rows of any archive whose id is below
 * `before`; completes with how many (the retention sweep calls again while that is
 * `limit`, so one call never holds the database for long). */
int store_mam_expire(struct store_client *cl, uint64_t before, size_t limit, store_done_fn done,
                     void *arg);

/* Synchronous twins; a page or preferences filled belong to the caller, freed with
 * store_mam_page_free() and store_mam_prefs_free(). store_mam_last_sync() gives the
 * highest id of every archive (0: none), with which a router starts its ids. */
int store_mam_append_sync(struct store *st, const struct store_mam_row *rows, size_t n);
int store_mam_query_sync(struct store *st, const struct store_mam_query *q,
                         struct store_mam_page *out);
int store_mam_prefs_get_sync(struct store *st, const char *owner, struct store_mam_prefs *out);
int store_mam_prefs_set_sync(struct store *st, const char *owner,
                             const struct store_mam_prefs *prefs);
int store_mam_expire_sync(struct store *st, uint64_t before, size_t limit);
int store_mam_last_sync(struct store *st, uint64_t *id);

void store_mam_page_free(struct store_mam_page *page);
void store_mam_prefs_free(struct store_mam_prefs *prefs);

#endif
