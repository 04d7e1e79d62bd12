/*
 * store: persistent data (accounts now; rosters, offline messages and blocklists next)
 * behind one asynchronous interface, whatever the back end: an SQLite file (the
 * embedded default) or, later, a PostgreSQL database shared by a cluster. Nothing in
 * this header is specific to a back end; errors are -errno.
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
 * Order. Requests about one user complete in the order they were submitted (today
 * every request does: one worker, first in first out).
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
 * Deleting an account deletes every piece of data stored for it.
 */
#ifndef STARLING_STORE_H
#define STARLING_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_USER_MAX      1023  /* bytes of a localpart (RFC 7622 §3.3.1) */
#define STORE_SALT_MAX      32    /* bytes of a SCRAM salt */
#define STORE_LIST_MAX      10000 /* names one list request returns at most */
#define STORE_QUEUE_DEFAULT 65536 /* outstanding requests when opts.queue_max is 0 */

enum store_backend {
    STORE_BACKEND_SQLITE,
    STORE_BACKEND_POSTGRESQL,
};

struct store_opts {
    enum store_backend backend;
    const char *path;   /* SQLite: the database file, created when missing */
    const char *dsn;    /* PostgreSQL: the connection string */
    unsigned queue_max; /* outstanding requests at most; 0 means STORE_QUEUE_DEFAULT */
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

/* A page of account names in byte order. Given to a callback, it belongs to the store
 * and lives until the callback returns; filled by a *_sync call, it belongs to the
 * caller, who releases it with store_list_free(). */
struct store_list {
    size_t n;
    char **names;
};

struct store;
struct store_client;

/* Completion callbacks, run by store_poll() on the client's thread. res is 0 or -errno;
 * the creds and list arguments are valid (non-NULL) only when res is 0. */
typedef void (*store_done_fn)(void *arg, int res);
typedef void (*store_creds_fn)(void *arg, int res, const struct store_creds *creds);
typedef void (*store_list_fn)(void *arg, int res, const struct store_list *list);

/*
 * Opens the store and starts its worker. Errors: -ENOTSUP for a back end this build
 * does not have, -EPROTO when the database's schema is newer than this program's,
 * -EINVAL for missing options, an -errno of the file system or the connection.
 * Details go to the log.
 */
int store_open(const struct store_opts *opts, struct store **out);

/* Runs what is queued, stops the worker, disconnects. Every client must be freed. */
void store_close(struct store *st);

/* A completion queue for the calling thread. -ENOMEM, -EMFILE (no eventfd). */
int store_client_new(struct store *st, struct store_client **out);

/*
 * Waits until the client's outstanding requests have completed and frees it; their
 * callbacks are not run (the thread is shutting down). Blocks: call it at shutdown.
 */
void store_client_free(struct store_client *cl);

/* The client's eventfd (non-blocking): readable when completions are waiting. Reading
 * it (or not) is up to the caller; store_poll() resets it either way. */
int store_client_fd(const struct store_client *cl);

/* Runs the callbacks of every completion waiting; returns how many ran. */
int store_poll(struct store_client *cl);

/* Requests outstanding on this client: submitted, callback not yet run. */
unsigned store_client_pending(const struct store_client *cl);

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

/* Frees the names of a list filled by store_account_list_sync(); leaves it empty. */
void store_list_free(struct store_list *list);

#endif
