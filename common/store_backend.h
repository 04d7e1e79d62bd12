/*
 * store_backend: the seam between store.c (queues, threads, callbacks) and a storage
 * back end (store_sqlite.c; a PostgreSQL one later). Only those files include it.
 *
 * A back end is an ops table. open() connects and brings the schema up to date; run()
 * executes one request; close() disconnects. All three are called from one thread at
 * a time (open and close by store_open/store_close, run by the store's worker only),
 * so a back end needs no locks of its own. run() may block as long as it needs to: it
 * is on the worker thread, never on an event loop.
 *
 * A new kind of request adds a value to enum store_op and its fields to struct
 * store_req; every back end handles it in run(). The ops table does not grow.
 */
#ifndef STARLING_STORE_BACKEND_H
#define STARLING_STORE_BACKEND_H

#include "common/store.h"

#include <stdbool.h>

enum store_op {
    STORE_OP_ACCOUNT_CREATE, /* in: user, creds */
    STORE_OP_ACCOUNT_DELETE, /* in: user */
    STORE_OP_CREDS_GET,      /* in: user; out: creds */
    STORE_OP_CREDS_SET,      /* in: user, creds */
    STORE_OP_ACCOUNT_LIST,   /* in: after (maybe NULL), limit; out: list */
    STORE_OP_COUNT_,
};

struct store_req {
    struct store_req *next;      /* link in the submission queue or a completion stack */
    struct store_client *client; /* where the completion goes; NULL: a *_sync caller */
    enum store_op op;
    int res; /* set by run(): 0 or -errno */
    bool done;

    union {
        store_done_fn done;
        store_creds_fn creds;
        store_list_fn list;
    } cb;
    void *arg;

    const char *user;
    const char *after;
    size_t limit;
    struct store_creds creds;
    struct store_list list; /* run() fills it, with malloc'd names */

    char text[]; /* an async request's copies of user and after */
};

struct store_backend_ops {
    const char *name;
    /* Connects and migrates. Returns 0 and the back end's state in *be, or -errno. */
    int (*open)(const struct store_opts *opts, void **be);
    /* Executes req->op; sets req->res and the request's out fields. */
    void (*run)(void *be, struct store_req *req);
    void (*close)(void *be);
};

extern const struct store_backend_ops store_sqlite_ops;

/* "account create", ... for logs. */
const char *store_op_name(enum store_op op);

/*
 * From store.c, for request files beside it, which check a request's arguments before
 * making it. store_req_new() counts an async request against
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
