/*
 * store: persistent data (accounts; rosters, subscription requests, offline messages and
 * blocklists for instant messaging) behind one asynchronous interface, whatever the
 * back end: an SQLite file (the embedded default) or a PostgreSQL database shared by a
 * cluster. Nothing in this header is specific to a back end; errors are
 * -errno.
 *
 * Shape. A process that uses storage opens one struct store at start-up (store_open()
 * connects, creates or migrates the schema, and starts the store's worker thread; it
 * blocks, so call it before the event loops run). Each thread that submits requests
 * (an io_uring thread, a shard worker) makes its own struct store_client: a completion
 * queue with an eventfd. Submitting never blocks: the request is copied, queued (a
 * pointer append under a mutex no one holds across I/O) and the call returns at once.
 * The worker runs it against the back end and pushes the completion onto the client's
 * queue (lock-free), signalling the eventfd when the queue was empty. The client's
 * thread waits on the eventfd among its other events (an io_uring read or poll) and
 * calls store_poll(), which runs the callbacks there, on the client's thread: a
 * callback may touch that thread's data freely and may submit new requests.
 *
 * Order. Requests about one user complete in the order they were submitted (every
 * request does: one worker, one connection, first in first out, pipelined or not).
 *
 * Reachability. A back end on a server (PostgreSQL) may lose its connection: it
 * reconnects by itself, with backoff. A request whose result the loss made unknown
 * completes with -EIO; one not yet sent waits for the connection up to opts.timeout_ms,
 * then completes with -EIO. store_reachable() says whether the database is reachable
 * now, so that a node can refuse work (logins) it could not complete.
 *
 * Back-pressure. At most opts.queue_max requests may be outstanding in a store
 * (submitted and not yet delivered by store_poll()); beyond that a submission returns
 * -EAGAIN, as it returns -ENOMEM when memory is short: the caller stops taking work
 * (stops reading the socket that asked) and retries after its next completions.
 *
 * Synchronous path. The *_sync functions submit the same requests and block until
 * they complete; they are for the admin tool (starlingctl, a separate process that
 * opens the same database while the server runs) and for start-up, never for an
 * event loop. With SQLite, both processes share the file in WAL mode and wait for each
 * other's write locks (busy timeout) instead of failing.
 *
 * Threads. store_open()/store_close() from one thread, once, with every client freed
 * before store_close(). A client belongs to the thread that made it: submit, poll and
 * free it there. The *_sync functions may be called from any thread.
 *
 * Names. `user` is an account's normalised localpart (RFC 7622 nodeprep, done by the
 * caller): 1..STORE_USER_MAX bytes of UTF-8 without NUL; anything else is -EINVAL.
 * Deleting an account deletes every piece of data stored for it. A request about a user
 * who has no account completes with -ENOENT, whatever it asks.
 *
 * Results. What a callback receives (a roster, a list) points into memory the store
 * owns, valid only until the callback returns: copy what must outlive it. What a
 * *_sync call fills belongs to the caller, who releases it with the matching *_free().
 */
#ifndef STARLING_STORE_H
#define STARLING_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_USER_MAX      1023  /* bytes of a localpart (RFC 7622 §3.3.1) */
#define STORE_SALT_MAX      32    /* bytes of a SCRAM salt */
#define STORE_LIST_MAX      10000 /* names one list request returns at most */
#define STORE_QUEUE_DEFAULT 65536 /* outstanding requests when opts.queue_max is 0 */

/* Bounds of the instant-messaging requests; beyond them a request is -EINVAL. */
#define STORE_JID_MAX    3071        /* bytes of a contact's JID: the longest RFC 7622 allows */
#define STORE_TEXT_MAX   1023        /* bytes of a roster item's name, or of one group name */
#define STORE_GROUPS_MAX 1000        /* groups of one roster item */
#define STORE_JIDS_MAX   1000        /* JIDs one block or unblock request carries */
#define STORE_STANZA_MAX (16u << 20) /* bytes of a stored stanza */
/* offline_fetch() stops adding messages past this many stanza bytes (it always returns
 * at least one when there is one), so that a fetch allocates about this much at most. */
#define STORE_FETCH_BYTES (1u << 20)

enum store_backend {
    STORE_BACKEND_SQLITE,
    STORE_BACKEND_POSTGRESQL,
};

#define STORE_TIMEOUT_DEFAULT 10000 /* ms when opts.timeout_ms is 0 */

struct store_opts {
    enum store_backend backend;
    const char *path; /* SQLite: the database file, created when missing */
    const char *dsn;  /* PostgreSQL: the connection string (a libpq conninfo or URI) */
    /* PostgreSQL: a file whose first line is the password (a mounted secret), read at
     * every connection; NULL or "": the DSN's, or libpq's usual places. */
    const char *password_file;
    uint64_t cache;      /* SQLite: bytes of page cache at most; 0 means SQLite's default */
    unsigned queue_max;  /* outstanding requests at most; 0 means STORE_QUEUE_DEFAULT */
    unsigned timeout_ms; /* PostgreSQL: how long a request waits for a connection, and
                          * store_open() for the first; 0: STORE_TIMEOUT_DEFAULT */
};

/*
 * Credentials: what SCRAM (RFC 5802, RFC 7677) needs to verify a password without
 * knowing it. Never a plaintext password. A mechanism whose iterations is 0 is absent
 * for the account; at least one must be present, with a salt of 1..STORE_SALT_MAX
 * bytes, or the request is -EINVAL.
 */
struct store_scram_sha1 {
    uint32_t iterations;
    uint8_t salt_len;
    uint8_t salt[STORE_SALT_MAX];
    uint8_t stored_key[20];
    uint8_t server_key[20];
};

struct store_scram_sha256 {
    uint32_t iterations;
    uint8_t salt_len;
    uint8_t salt[STORE_SALT_MAX];
    uint8_t stored_key[32];
    uint8_t server_key[32];
};

struct store_creds {
    struct store_scram_sha1 sha1;
    struct store_scram_sha256 sha256;
};

/* A page of account names in byte order, or a blocklist. Given to a callback, it belongs
 * to the store and lives until the callback returns; filled by a *_sync call, it belongs
 * to the caller, who releases it with store_list_free(). */
struct store_list {
    size_t n;
    char **names;
};

/* A contact's subscription state (RFC 6121 §2.1.2.5 and Appendix A). */
enum store_sub {
    STORE_SUB_NONE,
    STORE_SUB_TO,   /* the user receives the contact's presence */
    STORE_SUB_FROM, /* the contact receives the user's presence */
    STORE_SUB_BOTH,
};

/*
 * One roster item (RFC 6121 §2.1). The states of RFC 6121 Appendix A are sub plus the
 * two pending flags: "None + Pending In" is {STORE_SUB_NONE, pending_in}, "To + Pending
 * In" is {STORE_SUB_TO, pending_in}, "None + Pending Out" is {STORE_SUB_NONE, ask}, and
 * so on. Strings are UTF-8 without NUL: jid has 1..STORE_JID_MAX bytes, name
 * 0..STORE_TEXT_MAX ("" is a name, NULL is none), each group 1..STORE_TEXT_MAX. A
 * roster comes back with its items in byte order of jid and each item's groups in byte
 * order of name.
 */
struct store_roster_item {
    const char *jid;  /* the contact's normalised bare JID */
    const char *name; /* NULL: none */
    uint8_t sub;      /* enum store_sub */
    bool ask;         /* pending-out: we asked for the contact's presence */
    bool pending_in;  /* pending-in: the contact asked for ours */
    bool approved;    /* pre-approved (RFC 6121 §3.4) */
    /* Exists only for subscription state, not part of the visible roster (e.g. "None +
     * Pending In" for someone the user never added). */
    bool hidden;
    const char *const *groups; /* ngroups distinct names */
    size_t ngroups;            /* at most STORE_GROUPS_MAX */
    uint64_t ver;              /* roster version at which it last changed; roster_put ignores it */
};

/* A whole roster: every item, hidden ones too, and the roster's version (0 for a user
 * who never had an item); with it, read in the same transaction, what else a router
 * loads with a user: the blocklist, and whether offline messages wait. One request
 * instead of three at every login. Filled by a *_sync call, one store_roster_free()
 * frees it. */
struct store_roster {
    uint64_t ver;
    size_t n;
    struct store_roster_item *items;
    struct store_list blocked; /* the blocklist, in byte order */
    bool offline;              /* at least one offline message is stored */
};

/* A subscription request waiting for the user's answer (RFC 6121 §3.1.3): the stanza as
 * it arrived, to be delivered again at each login until answered. */
struct store_subreq {
    const char *jid; /* who asked */
    const char *stanza;
    size_t len;
};

struct store_subreqs {
    size_t n;
    struct store_subreq *items; /* in the order the requests first arrived */
};

/* A message kept for a user who was offline (XEP-0160). */
struct store_offline_msg {
    uint64_t seq;      /* increases with every message stored; never reused */
    int64_t stamp_s;   /* when the store accepted it, UTC: seconds since the Unix epoch */
    uint32_t stamp_us; /* and microseconds, for XEP-0203's stamp */
    const char *stanza;
    size_t len;
};

struct store_offline {
    size_t n;
    struct store_offline_msg *msgs; /* oldest first */
};

struct store;
struct store_client;

/* Completion callbacks, run by store_poll() on the client's thread. res is 0 (or a count,
 * where a request says so) or -errno; the pointer arguments are valid (non-NULL) only
 * when res is not negative, and only until the callback returns. ver is a roster
 * version, valid when res is 0. */
typedef void (*store_done_fn)(void *arg, int res);
typedef void (*store_creds_fn)(void *arg, int res, const struct store_creds *creds);
typedef void (*store_list_fn)(void *arg, int res, const struct store_list *list);
typedef void (*store_ver_fn)(void *arg, int res, uint64_t ver);
typedef void (*store_roster_fn)(void *arg, int res, const struct store_roster *roster);
typedef void (*store_subreqs_fn)(void *arg, int res, const struct store_subreqs *reqs);
typedef void (*store_offline_fn)(void *arg, int res, const struct store_offline *msgs);

/*
 * Opens the store and starts its worker. Errors: -ENOTSUP for a back end this build
 * does not have (or a PostgreSQL DSN asking for TLS, which this build cannot do),
 * -EPROTO when the database's schema is newer than this program's, -EINVAL for missing
 * options, -ECONNREFUSED when the database stayed unreachable for opts.timeout_ms, an
 * -errno of the file system or the connection.
 * Details go to the log.
 */
int store_open(const struct store_opts *opts, struct store **out);

/* Runs what is queued, stops the worker, disconnects. Every client must be freed. */
void store_close(struct store *st);

/* Whether the database is reachable now (always, for SQLite). Any thread; a load of an
 * atomic the worker keeps. */
bool store_reachable(const struct store *st);

/* A completion queue for the calling thread. -ENOMEM, -EMFILE (no eventfd). */
int store_client_new(struct store *st, struct store_client **out);

/* The same without an eventfd: the store's worker calls notify(arg) instead when
 * completions start waiting (an empty queue got one), e.g. to ring the owner's doorbell.
 * The owner checks store_client_ready() before it sleeps; store_poll() then makes no
 * system call when nothing waits. notify runs on the worker's thread. */
int store_client_new_notify(struct store *st, void (*notify)(void *arg), void *arg,
                            struct store_client **out);

/* Completions are waiting (a hint: store_poll() takes them). */
bool store_client_ready(const struct store_client *cl);

/*
 * Waits until the client's outstanding requests have completed and frees it; their
 * callbacks are not run (the thread is shutting down). Blocks: call it at shutdown.
 */
void store_client_free(struct store_client *cl);

/* The client's eventfd (non-blocking): readable when completions are waiting. Reading
 * it (or not) is up to the caller; store_poll() resets it either way. -1 for a client
 * made by store_client_new_notify(). */
int store_client_fd(const struct store_client *cl);

/* Runs the callbacks of every completion waiting; returns how many ran. */
int store_poll(struct store_client *cl);

/* Requests outstanding on this client: submitted, callback not yet run. */
unsigned store_client_pending(const struct store_client *cl);

/* Counts the client's requests in the owner thread's stats slot (shm/stats.h): each one's
 * time from submission to callback (STAT_STORE_TIME_US and its histogram) and the
 * requests outstanding (STAT_STORE_QUEUE). Before the first request; NULL: none. */
struct shm_stats;
void store_client_stats(struct store_client *cl, struct shm_stats *slot);

/* A tag the owner attaches to each request: take() gives it when the request is queued
 * (with a reference, if tags are counted); enter() and leave() run around its callback
 * in store_poll(). The router keeps the work a request carries on, its "ticket", this
 * way, for every request without a word at each call. All run on the owner's thread. */
struct store_tag_ops {
    void *(*take)(void *arg);
    void (*enter)(void *arg, void *tag);
    void (*leave)(void *arg, void *tag);
};
/* Installs them (before the first request); ops and arg must outlive the client. */
void store_client_tags(struct store_client *cl, const struct store_tag_ops *ops, void *arg);

/*
 * Asynchronous requests. Each returns 0 when the request is queued, and its callback
 * then runs exactly once, from a later store_poll(); or -errno (-EINVAL, -ENOMEM,
 * -EAGAIN) and the callback never runs. Arguments are copied before returning.
 */

/* A new account. Completes with -EEXIST when the user exists. */
int store_account_create(struct store_client *cl, const char *user, const struct store_creds *creds,
                         store_done_fn done, void *arg);

/* Deletes an account and everything stored for it. -ENOENT when there is none. */
int store_account_delete(struct store_client *cl, const char *user, store_done_fn done, void *arg);

/* An account's credentials. -ENOENT when there is no such account. */
int store_creds_get(struct store_client *cl, const char *user, store_creds_fn done, void *arg);

/* Replaces an account's credentials (a password change). -ENOENT when there is none. */
int store_creds_set(struct store_client *cl, const char *user, const struct store_creds *creds,
                    store_done_fn done, void *arg);

/* Up to `limit` (1..STORE_LIST_MAX) account names greater than `after` (NULL or "" to
 * start), in byte order: pass the last name of a page to get the next one. */
int store_account_list(struct store_client *cl, const char *after, size_t limit, store_list_fn done,
                       void *arg);

/* Synchronous twins: the same requests and results, blocking the caller. */
int store_account_create_sync(struct store *st, const char *user, const struct store_creds *creds);
int store_account_delete_sync(struct store *st, const char *user);
int store_creds_get_sync(struct store *st, const char *user, struct store_creds *out);
int store_creds_set_sync(struct store *st, const char *user, const struct store_creds *creds);
int store_account_list_sync(struct store *st, const char *after, size_t limit,
                            struct store_list *out);

/* One account of an import. */
struct store_account {
    const char *user;
    struct store_creds creds;
};

/*
 * Creates n accounts (1..INT_MAX) in one transaction: every one of them, or none when
 * anything fails. An account that exists, or a name given twice, is -EEXIST; with
 * `replace`, an existing account's credentials are replaced instead (its rosters and
 * other data kept) and of a name given twice the last credentials stand. An invalid
 * name or credentials is -EINVAL. Returns how many accounts were created (not
 * replaced), or -errno with the index of the account at fault in *failed (when not
 * NULL), or n when no single one is (a full disk). Synchronous only: it is the admin
 * tool's bulk import, and holds the store's worker for its whole transaction.
 */
int store_account_import_sync(struct store *st, const struct store_account *accounts, size_t n,
                              bool replace, size_t *failed);

/*
 * The cluster's membership through the database (cluster.discovery = "postgresql",
 * router/link.h): the node's heartbeat, which writes its row (name, link address,
 * shards, incarnation, the database's time) and reads back the other nodes whose
 * heartbeat is within fresh_ms. *slot: the node's index in the cluster, the same for
 * good (below STORE_CLUSTER_SLOTS); *live: "slot name address" lines, freed with
 * store_list_free(). Synchronous (the router's discovery thread). -ENOTSUP on SQLite,
 * -ENOSPC when every slot is taken, -EIO when the database is unreachable.
 */
#define STORE_CLUSTER_SLOTS 64
int store_cluster_beat_sync(struct store *st, const char *name, const char *addr,
                            unsigned shards, uint64_t incarnation, unsigned fresh_ms,
                            unsigned *slot, struct store_list *live);

/* Frees the names of a list filled by store_account_list_sync() or store_block_list_sync();
 * leaves it empty. */
void store_list_free(struct store_list *list);

/*
 * Instant messaging (RFC 6121) and blocking (XEP-0191), asynchronous as above. `jid` is
 * a contact's normalised JID, 1..STORE_JID_MAX bytes of UTF-8; a stanza is 1..
 * STORE_STANZA_MAX bytes, stored and returned as given. Every request completes with
 * -ENOENT when the user has no account; the router learns that a bare JID has no
 * account from that, or asks store_account_exists().
 */

/* 0 when the user has an account, -ENOENT when not; one index lookup. */
int store_account_exists(struct store_client *cl, const char *user, store_done_fn done, void *arg);

/* The user's whole roster, hidden items too, its version, blocklist and whether offline
 * messages wait (struct store_roster). */
int store_roster_get(struct store_client *cl, const char *user, store_roster_fn done, void *arg);

/* Inserts the item or replaces the one with the same jid (groups included). In one
 * transaction the user's roster version goes up by one and the item gets it; the new
 * version is the callback's ver. item->ver is ignored. */
int store_roster_put(struct store_client *cl, const char *user,
                     const struct store_roster_item *item, store_ver_fn done, void *arg);

/* Deletes the contact's item; the version goes up as for a put. -ENOENT when there is
 * no such item (and then the version does not change). */
int store_roster_delete(struct store_client *cl, const char *user, const char *jid,
                        store_ver_fn done, void *arg);

/* Completes with the number of items in the roster, hidden ones too (they take room as
 * much as visible ones do, and a stranger can make them: the limit counts them). */
int store_roster_count(struct store_client *cl, const char *user, store_done_fn done, void *arg);

/* Keeps the contact's subscription request, replacing an earlier one from the same jid
 * (which keeps its place in the order). */
int store_subreq_put(struct store_client *cl, const char *user, const char *jid, const char *stanza,
                     size_t len, store_done_fn done, void *arg);

/* Forgets the contact's request: completes with 1, or 0 when there was none (answering
 * a request that was never stored is not an error). */
int store_subreq_delete(struct store_client *cl, const char *user, const char *jid,
                        store_done_fn done, void *arg);

/* Every request waiting for the user. How many there can be is the router's to bound
 * (a request comes with a hidden roster item, which store_roster_count() counts). */
int store_subreq_list(struct store_client *cl, const char *user, store_subreqs_fn done, void *arg);

/* What a user's offline messages may take: in all, and those of any one sender. A
 * push that would go past any of the four is refused. */
struct store_offline_quota {
    size_t messages, bytes;               /* stanza bytes */
    size_t sender_messages, sender_bytes; /* of those, from one sender */
};

/* Stores a message for the user from `sender` (a normalised bare JID, as jid above),
 * stamped with the time of this call. Completes with 0, or -EDQUOT when the message
 * would take the user's messages, or the sender's among them, past the quota (all zero:
 * never stores, but still tells -ENOENT from -EDQUOT). The check and the insert are one
 * transaction. */
int store_offline_push(struct store_client *cl, const char *user, const char *sender,
                       const char *stanza, size_t len, const struct store_offline_quota *q,
                       store_done_fn done, void *arg);

/*
 * The user's oldest messages, up to `limit` (1..STORE_LIST_MAX) and about
 * STORE_FETCH_BYTES of stanzas; an empty list means there are none. Fetching deletes
 * nothing: deliver, then store_offline_delete() up to the last seq delivered, so a
 * process that dies in between delivers them again rather than losing them.
 */
int store_offline_fetch(struct store_client *cl, const char *user, size_t limit,
                        store_offline_fn done, void *arg);

/* Deletes the user's messages whose seq <= upto; completes with how many. */
int store_offline_delete(struct store_client *cl, const char *user, uint64_t upto,
                         store_done_fn done, void *arg);

/* Completes with the number of messages stored for the user. */
int store_offline_count(struct store_client *cl, const char *user, store_done_fn done, void *arg);

/* Adds 1..STORE_JIDS_MAX JIDs (any JID: domain, bare or full) to the blocklist, all or
 * none. Completes with how many were not blocked before: blocking again is no error. */
int store_block_add(struct store_client *cl, const char *user, const char *const *jids, size_t n,
                    store_done_fn done, void *arg);

/* Removes 1..STORE_JIDS_MAX JIDs, all or none; completes with how many were blocked. */
int store_block_remove(struct store_client *cl, const char *user, const char *const *jids, size_t n,
                       store_done_fn done, void *arg);

/* Empties the blocklist; completes with how many JIDs it held. */
int store_block_clear(struct store_client *cl, const char *user, store_done_fn done, void *arg);

/* Synchronous twins. A count comes back as the return value; ver may be NULL; an out
 * structure is filled only on success (left empty otherwise) and is the caller's. */
int store_account_exists_sync(struct store *st, const char *user);
int store_roster_get_sync(struct store *st, const char *user, struct store_roster *out);
int store_roster_put_sync(struct store *st, const char *user, const struct store_roster_item *item,
                          uint64_t *ver);
int store_roster_delete_sync(struct store *st, const char *user, const char *jid, uint64_t *ver);
int store_roster_count_sync(struct store *st, const char *user);
int store_subreq_put_sync(struct store *st, const char *user, const char *jid, const char *stanza,
                          size_t len);
int store_subreq_delete_sync(struct store *st, const char *user, const char *jid);
int store_subreq_list_sync(struct store *st, const char *user, struct store_subreqs *out);
int store_offline_push_sync(struct store *st, const char *user, const char *sender,
                            const char *stanza, size_t len, const struct store_offline_quota *q);
int store_offline_fetch_sync(struct store *st, const char *user, size_t limit,
                             struct store_offline *out);
int store_offline_delete_sync(struct store *st, const char *user, uint64_t upto);
int store_offline_count_sync(struct store *st, const char *user);
int store_block_add_sync(struct store *st, const char *user, const char *const *jids, size_t n);
int store_block_remove_sync(struct store *st, const char *user, const char *const *jids, size_t n);
int store_block_clear_sync(struct store *st, const char *user);
int store_block_list_sync(struct store *st, const char *user, struct store_list *out);

/* Free what a *_sync call filled; each leaves its argument empty. */
void store_roster_free(struct store_roster *roster);
void store_subreqs_free(struct store_subreqs *reqs);
void store_offline_free(struct store_offline *msgs);

/*
 * A user's own data the router serves (store_pep.c): PEP nodes (XEP-0163) with their
 * configuration and items, private XML (XEP-0049) and the vCard (XEP-0054), as rows of
 * one kind each, keyed by (kind, node, id):
 *   STORE_PEP_CONFIG   node, id "": the node's configuration, as the router writes it
 *   STORE_PEP_ITEM     node, id: one published item's payload
 *   STORE_PEP_PRIVATE  node "", id: the element's namespace; the element
 *   STORE_PEP_VCARD    node "", id "": the <vCard/> element
 * node and id are 0..STORE_PEP_NAME_MAX bytes of UTF-8 (a PEP node's name is never
 * empty: the router refuses it); data is 1..STORE_STANZA_MAX bytes, kept as given.
 * A load returns every row of the user, oldest first (a put makes its row the newest).
 */
#define STORE_PEP_NAME_MAX 1023
enum store_pep_kind { STORE_PEP_CONFIG, STORE_PEP_ITEM, STORE_PEP_PRIVATE, STORE_PEP_VCARD };

struct store_pep_row {
    uint8_t kind; /* enum store_pep_kind */
    const char *node, *id;
    const char *data;
    size_t len;
};

struct store_pep {
    size_t n;
    struct store_pep_row *rows; /* oldest first */
};

typedef void (*store_pep_fn)(void *arg, int res, const struct store_pep *rows);

/* Every row of the user. */
int store_pep_load(struct store_client *cl, const char *user, store_pep_fn done, void *arg);
/* Inserts or replaces the row (kind, node, id), which becomes the newest; with keep > 0
 * and an item, the node's items past the newest `keep` are deleted in the same
 * transaction. */
int store_pep_put(struct store_client *cl, const char *user, enum store_pep_kind kind,
                  const char *node, const char *id, const char *data, size_t len, size_t keep,
                  store_done_fn done, void *arg);
/* Deletes the row (kind, node, id), or with id NULL and kind STORE_PEP_CONFIG the node
 * whole: its configuration and items. Completes with the rows deleted. */
int store_pep_delete(struct store_client *cl, const char *user, enum store_pep_kind kind,
                     const char *node, const char *id, store_done_fn done, void *arg);
int store_pep_load_sync(struct store *st, const char *user, struct store_pep *out);
int store_pep_put_sync(struct store *st, const char *user, enum store_pep_kind kind,
                       const char *node, const char *id, const char *data, size_t len,
                       size_t keep);
int store_pep_delete_sync(struct store *st, const char *user, enum store_pep_kind kind,
                          const char *node, const char *id);
void store_pep_free(struct store_pep *rows);

#endif
