/*
 * store_muc: the multi-user chat service's part of the store (XEP-0045): its persistent
 * rooms, each one row keyed by the room's bare JID, with the room's configuration, its
 * subject and its affiliations. What a room's occupants and history are is not stored
 * (the router keeps them in memory). Same rules as store.h (asynchronous requests copied
 * at submission, callbacks on the client's thread, results valid until the callback
 * returns, *_sync twins for start-up, tools and tests).
 *
 * A room's JID is 1..STORE_JID_MAX bytes of UTF-8 (room@conference.example, normalised
 * by the caller); it is no account's, so no request checks an account. A put replaces
 * the room's row whole (configuration, subject, affiliations: one transaction), so the
 * row is always one state of the room the router had. Rooms are few and change seldom:
 * a whole row per change costs less than keeping rows in step.
 *
 * Affiliations travel as an array and are kept as one text column, a line per JID ('0'
 * outcast, '2' member, '3' admin, '4' owner, then the bare JID), as the archive keeps
 * its preferences (store_mam.h): a room reads them all at once and never one alone.
 */
#ifndef STARLING_STORE_MUC_H
#define STARLING_STORE_MUC_H

#include "common/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_MUC_TEXT_MAX (1u << 20) /* bytes of a name, description, password or subject */
#define STORE_MUC_AFFS_MAX 1000000    /* affiliations of one room (muc.max_affiliations') */
#define STORE_MUC_LIST_MAX 1000       /* rooms of one list */

/* Configuration flags (muc#roomconfig's booleans). */
enum store_muc_flag {
    STORE_MUC_PERSISTENT = 1u << 0,
    STORE_MUC_MEMBERSONLY = 1u << 1,
    STORE_MUC_MODERATED = 1u << 2,
    STORE_MUC_PUBLIC = 1u << 3,
    STORE_MUC_WHOIS_ANYONE = 1u << 4,
    STORE_MUC_CHANGESUBJECT = 1u << 5,
    STORE_MUC_ALLOW_INVITES = 1u << 6,
};
#define STORE_MUC_FLAGS_ALL 0x7fu

/* The affiliations a room keeps (none is no entry); the numbers are router/muc.h's. */
enum store_muc_aff_kind {
    STORE_MUC_OUTCAST = 0,
    STORE_MUC_MEMBER = 2,
    STORE_MUC_ADMIN = 3,
    STORE_MUC_OWNER = 4,
};

struct store_muc_aff {
    const char *jid; /* a bare JID (or a domain), 1..STORE_JID_MAX bytes, no control chars */
    uint8_t aff;     /* enum store_muc_aff_kind */
};

/* A room. Strings are NULL for none (an empty one is stored as none), at most
 * STORE_MUC_TEXT_MAX bytes of UTF-8 each. */
struct store_muc_room {
    const char *jid;
    const char *name, *desc, *password;
    uint32_t maxusers; /* 0: no bound */
    uint32_t flags;    /* enum store_muc_flag */
    const char *subject, *subject_nick;
    size_t naffs;
    const struct store_muc_aff *affs;
};

/* A public room, as a list gives it. */
struct store_muc_item {
    const char *jid, *name; /* name NULL: none */
};

struct store_muc_list {
    size_t n;
    struct store_muc_item *items; /* by JID in byte order; one malloc'd block */
};

typedef void (*store_muc_fn)(void *arg, int res, const struct store_muc_room *room);
typedef void (*store_muc_list_fn)(void *arg, int res, const struct store_muc_list *list);

/* Stores the room (a new row, or the old one replaced). */
int store_muc_put(struct store_client *cl, const struct store_muc_room *room, store_done_fn done,
                  void *arg);

/* The room stored under jid; -ENOENT when there is none. */
int store_muc_load(struct store_client *cl, const char *jid, store_muc_fn done, void *arg);

/* Deletes the room: completes with 1, or 0 when there was none. */
int store_muc_delete(struct store_client *cl, const char *jid, store_done_fn done, void *arg);

/* Up to `limit` (1..STORE_MUC_LIST_MAX) public rooms (STORE_MUC_PUBLIC) whose JID is
 * greater than `after` (NULL or "": from the first), in JID order. */
int store_muc_list_public(struct store_client *cl, const char *after, size_t limit,
                          store_muc_list_fn done, void *arg);

/* Synchronous twins; a room or list filled belongs to the caller, freed with
 * store_muc_room_free() and store_muc_list_free(). */
int store_muc_put_sync(struct store *st, const struct store_muc_room *room);
int store_muc_load_sync(struct store *st, const char *jid, struct store_muc_room *out);
int store_muc_delete_sync(struct store *st, const char *jid);
int store_muc_list_public_sync(struct store *st, const char *after, size_t limit,
                               struct store_muc_list *out);

/* A loaded room is one malloc'd block (its affs array first, then its strings). */
void store_muc_room_free(struct store_muc_room *room);
void store_muc_list_free(struct store_muc_list *list);

/* For the back ends (store_sqlite_muc.c, store_pgsql_muc.c): a room from its stored
 * columns (each NULL for SQL NULL; affs the stored lines) as one block into out.
 * -ENOMEM, or -EIO when the stored affiliations are not lines as above. */
int store_muc_room_build(const char *jid, const char *const text[5], uint32_t maxusers,
                         uint32_t flags, const char *affs, struct store_muc_room *out);

#endif
