/*
 * store_backend: the seam between the store's front end (store.c: queues, threads,
 * callbacks; store_im.c: the instant-messaging requests) and a storage back end
 * (store_sqlite.c and store_sqlite_im.c; store_pgsql.c and store_pgsql_req.c). Only
 * those files include it.
 *
 * A back end is an ops table. open() connects and brings the schema up to date; close()
 * disconnects; in between, the store's worker thread hands it the requests in one of
 * two ways:
 *
 *  - run() executes one request and returns when it is done (SQLite: a request is a
 *    few calls into a library on the same thread). The worker takes the queue, runs
 *    each request in turn and completes it.
 *  - serve() is the worker's whole loop, for a back end that talks to a server and
 *    keeps many requests in flight at once (PostgreSQL's pipeline): it takes what is
 *    queued whenever it likes (struct store_serve's take(), which never blocks),
 *    completes each request with done() in any order it likes (but in submission order
 *    for requests about one user), sleeps in poll() on its own descriptors and on
 *    `bell`, which is readable when take() has more, and returns once take() has said
 *    stop and every request taken is done.
 *
 * All are called from one thread at a time (open and close by store_open/store_close,
 * run or serve by the store's worker only), so a back end needs no locks of its own.
 * run() may block as long as it needs to: it is on the worker thread, never on an
 * event loop. reachable() is the exception: any thread may call it, so it reads an
 * atomic the worker keeps; NULL means always (a file is always there).
 *
 * A new kind of request adds a value to enum store_op and its fields to struct
 * store_req; every back end handles it (in run(), or in what serve() sends). The ops
 * table does not grow.
 */
#ifndef STARLING_STORE_BACKEND_H
#define STARLING_STORE_BACKEND_H

#include "common/store/store.h"
#include "common/store/store_mam.h"
#include "common/store/store_muc.h"

#include <stdbool.h>

enum store_op {
    STORE_OP_ACCOUNT_CREATE, /* in: user, creds */
    STORE_OP_ACCOUNT_DELETE, /* in: user */
    STORE_OP_CREDS_GET,      /* in: user; out: creds */
    STORE_OP_CREDS_SET,      /* in: user, creds */
    STORE_OP_ACCOUNT_LIST,   /* in: after (maybe NULL), limit; out: list */
    STORE_OP_ACCOUNT_IMPORT, /* in: accounts, naccounts, replace; res: created; out: failed */
    /* The instant-messaging requests. Each completes with -ENOENT when user has no
     * account; "res: n" means it completes with a count. */
    STORE_OP_ACCOUNT_EXISTS, /* in: user */
    STORE_OP_ROSTER_GET,     /* in: user; out: roster */
    STORE_OP_ROSTER_PUT,     /* in: user, item; out: ver (one transaction) */
    STORE_OP_ROSTER_DELETE,  /* in: user, jid; out: ver; -ENOENT without the item */
    STORE_OP_ROSTER_COUNT,   /* in: user; res: items */
    STORE_OP_SUBREQ_PUT,     /* in: user, jid, data, len */
    STORE_OP_SUBREQ_DELETE,  /* in: user, jid; res: 1 or 0 */
    STORE_OP_SUBREQ_LIST,    /* in: user; out: subreqs */
    STORE_OP_OFFLINE_PUSH,   /* in: user, jid (the sender), data, len, quota, stamp_us */
    STORE_OP_OFFLINE_FETCH,  /* in: user, limit; out: offline */
    STORE_OP_OFFLINE_DELETE, /* in: user, seq (up to); res: deleted */
    STORE_OP_OFFLINE_COUNT,  /* in: user; res: messages */
    STORE_OP_BLOCK_ADD,      /* in: user, jids, njids; res: added (all or none) */
    STORE_OP_BLOCK_REMOVE,   /* in: user, jids, njids; res: removed (all or none) */
    STORE_OP_BLOCK_CLEAR,    /* in: user; res: removed */
    STORE_OP_BLOCK_LIST,     /* in: user; out: list */
    /* cluster.discovery = "postgresql": in: user (the node's name), jid (its link address),
     * limit (shards), seq (incarnation), stamp_us (how fresh a live row is, in ms);
     * out: ver (its slot), list ("slot name address" of the other live nodes). SQLite:
     * -ENOTSUP. */
    STORE_OP_CLUSTER_BEAT,
    /* store_pep.c. in: user, pep_kind, node, id; put: data, len, limit (keep); out: pep */
    STORE_OP_PEP_LOAD,
    STORE_OP_PEP_PUT,
    STORE_OP_PEP_DELETE,
    /* The message archive (store_mam.h); owner in `user`, not an account's. */
    STORE_OP_MAM_APPEND,    /* in: mam_rows, mam_nrows; res: stored (one transaction) */
    STORE_OP_MAM_QUERY,     /* in: user, mam_query; out: mam_page */
    STORE_OP_MAM_PREFS_GET, /* in: user; out: mam_prefs */
    STORE_OP_MAM_PREFS_SET, /* in: user, mam_prefs */
    STORE_OP_MAM_EXPIRE,    /* in: seq (ids below), limit; res: deleted */
    STORE_OP_MAM_LAST,      /* out: seq (the highest id, 0: none) */
    /* The chat service's rooms (store_muc.h); the room's JID in `user`. */
    STORE_OP_MUC_PUT,    /* in: muc (its strings), data (the affiliation lines, NUL-ended) */
    STORE_OP_MUC_LOAD,   /* in: user; out: muc_out */
    STORE_OP_MUC_DELETE, /* in: user; res: deleted */
    STORE_OP_MUC_LIST,   /* in: after, limit; out: muc_list */
    STORE_OP_COUNT_,
};

struct store_req {
    struct store_req *next;      /* link in the submission queue or a completion stack */
    struct store_client *client; /* where the completion goes; NULL: a *_sync caller */
    void *tag;                   /* store_tag_ops.take() at submission */
    enum store_op op;
    uint64_t queued_us; /* CLOCK_MONOTONIC at store_req_queue(), for the client's stats */
    int res; /* set by run(): 0 or -errno */
    bool done;

    union {
        store_done_fn done;
        store_creds_fn creds;
        store_list_fn list;
        store_ver_fn ver;
        store_roster_fn roster;
        store_subreqs_fn subreqs;
        store_offline_fn offline;
        store_pep_fn pep;
        store_mam_fn mam;
        store_mam_prefs_fn mam_prefs;
        store_muc_fn muc;
        store_muc_list_fn muc_list;
    } cb;
    void *arg;

    /* In. An async request points them into its own text[]; a sync one, at the caller's
     * arguments. run() only reads them. */
    const char *user;
    const char *after;
    size_t limit; /* a page's or a fetch's size */
    struct store_offline_quota quota;
    struct store_creds creds;
    const char *jid;
    struct store_roster_item item;
    const char *const *jids;
    size_t njids;
    const char *data; /* a stanza */
    size_t len;
    uint64_t seq;
    int64_t stamp_us; /* UTC microseconds since the Unix epoch */
    /* An import's accounts, checked by the front end. */
    const struct store_account *accounts;
    size_t naccounts;
    bool replace;
    uint8_t pep_kind;
    const char *node, *id; /* id NULL: a whole node (pep delete) */
    /* The archive's (store_mam.c copies them into text[]). */
    const struct store_mam_row *mam_rows;
    size_t mam_nrows;
    struct store_mam_query mam_query;
    struct store_mam_prefs mam_prefs;
    struct store_muc_room muc; /* a put's; affs unused (data has them as text) */

    /* Out, filled by run() when res >= 0. list has malloc'd names; roster, subreqs and
     * offline are each one malloc'd block (their array, with every string in its
     * tail), so that the matching store_*_free() releases them. */
    struct store_list list;
    uint64_t ver;
    struct store_roster roster;
    struct store_subreqs subreqs;
    struct store_offline offline;
    struct store_pep pep;
    size_t failed; /* an import's: the index of the account at fault, or naccounts */
    struct store_mam_page mam_page; /* one malloc'd block, as offline */
    struct store_mam_prefs mam_prefs_out; /* one malloc'd block */
    struct store_muc_room muc_out;        /* one malloc'd block (store_muc.h) */
    struct store_muc_list muc_list;       /* one malloc'd block */

    /* An async request's copies of its in-arguments: pointer arrays first, which this
     * alignment keeps aligned, then strings and bytes. */
    _Alignas(void *) char text[];
};

/* What serve() gets from the front end. take() resets the bell and returns the requests
 * queued, oldest first, linked by next (NULL when none), and sets *stop once
 * store_close() has begun (the queue is then only ever emptied). done() completes one
 * request (its res and out fields set): its callback will run, or its sync caller
 * return. Both only from serve(). */
struct store_serve {
    struct store *st;
    int bell;
    struct store_req *(*take)(struct store *st, bool *stop);
    void (*done)(struct store *st, struct store_req *req);
};

struct store_backend_ops {
    const char *name;
    /* Connects and migrates. Returns 0 and the back end's state in *be, or -errno. */
    int (*open)(const struct store_opts *opts, void **be);
    /* One of the two. Executes req->op; sets req->res and the request's out fields. */
    void (*run)(void *be, struct store_req *req);
    void (*serve)(void *be, const struct store_serve *sv);
    /* Whether the back end can reach its database now; NULL: always. Any thread. */
    bool (*reachable)(void *be);
    void (*close)(void *be);
};

extern const struct store_backend_ops store_sqlite_ops;
extern const struct store_backend_ops store_pgsql_ops;

/* "account create", ... for logs. */
const char *store_op_name(enum store_op op);

/*
 * From store.c, for the front end's request files (store_im.c), which check a request's
 * arguments before making it. store_req_new() counts an async request against
 * queue_max and allocates it with `extra` bytes of text[] (uninitialised); the rest is
 * zero but client, op and arg. -EAGAIN, -ENOMEM. store_req_queue() hands it to the
 * worker once the caller has filled it and set its callback. store_req_sync() runs a
 * request that lives on the caller's stack and waits for its result.
 */
int store_req_new(struct store_client *cl, enum store_op op, size_t extra, void *arg,
                  struct store_req **out);
void store_req_queue(struct store_client *cl, struct store_req *req);
int store_req_sync(struct store *st, struct store_req *req);

/* Length of s when it is 1..max bytes of well-formed UTF-8 without NUL, else 0. */
size_t store_text_len(const char *s, size_t max);

#endif
