/* The store's queues and worker, and the account requests; the instant-messaging
 * requests are in store_im.c; what a request does is the back end's business
 * (store_backend.h). */
#include "common/store/store.h"
#include "common/core/log.h"
#include "common/store/store_backend.h"
#include "shm/stats.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

/*
 * Request flow and who touches what:
 *
 *   client thread            worker thread                 client thread
 *   submit() ──mu──► st->head..tail ──► ops->run() ──CAS──► cl->done ──xchg──► store_poll()
 *                    (FIFO, mutex)   or ops->serve()  (LIFO stack, lock-free)  callbacks, free
 *
 * A run() worker sleeps on cv; a serve() back end sleeps in its own poll(), on the
 * bell among its sockets: submit() signals both, and only a serve() store has a bell.
 *
 * A request is malloc'd by the submitting thread and freed by it in store_poll(), so
 * memory returns to the thread cache it came from. Between submit() and the push onto
 * cl->done it belongs to the worker alone.
 */
struct store {
    const struct store_backend_ops *ops;
    void *be;
    pthread_t worker;

    pthread_mutex_t mu; /* guards head, tail, stop; held only to link or unlink a list */
    pthread_cond_t cv;  /* a run() worker waits here for head != NULL or stop */
    struct store_req *head, *tail;
    bool stop;
    int bell; /* a serve() worker's wake-up (an eventfd, written as cv is signalled); or -1 */

    pthread_mutex_t sync_mu; /* guards req->done of synchronous requests */
    pthread_cond_t sync_cv;

    unsigned queue_max;
    _Atomic unsigned outstanding; /* async requests submitted and not yet delivered */
    _Atomic unsigned clients;     /* only to catch store_close() with clients left */
};

struct store_client {
    struct store *st;
    int efd;                   /* -1 with notify */
    void (*notify)(void *arg); /* store_client_new_notify() */
    void *notify_arg;
    /* Completions, newest first: pushed by the worker, taken whole by store_poll(). */
    _Atomic(struct store_req *) done;
    /* Requests the worker still holds. The worker's last access to the client is its
     * decrement (release); store_client_free() waits for zero (acquire) before freeing,
     * so the worker never writes a closed eventfd or freed memory. */
    _Atomic unsigned inflight;
    unsigned pending; /* owner thread only: submitted, callback not yet run */
    struct shm_stats *stats; /* store_client_stats() */
    const struct store_tag_ops *tags;
    void *tags_arg;
};

static const struct store_backend_ops *const store_backends[] = {
    [STORE_BACKEND_SQLITE] = &store_sqlite_ops,
    [STORE_BACKEND_POSTGRESQL] = &store_pgsql_ops,
};

const char *store_op_name(enum store_op op)
{
    static const char *const names[STORE_OP_COUNT_] = {
        [STORE_OP_ACCOUNT_CREATE] = "account create", [STORE_OP_ACCOUNT_DELETE] = "account delete",
        [STORE_OP_CREDS_GET] = "creds get",           [STORE_OP_CREDS_SET] = "creds set",
        [STORE_OP_ACCOUNT_LIST] = "account list",     [STORE_OP_ACCOUNT_EXISTS] = "account exists",
        [STORE_OP_ROSTER_GET] = "roster get",         [STORE_OP_ROSTER_PUT] = "roster put",
        [STORE_OP_ROSTER_DELETE] = "roster delete",   [STORE_OP_ROSTER_COUNT] = "roster count",
        [STORE_OP_SUBREQ_PUT] = "subreq put",         [STORE_OP_SUBREQ_DELETE] = "subreq delete",
        [STORE_OP_SUBREQ_LIST] = "subreq list",       [STORE_OP_OFFLINE_PUSH] = "offline push",
        [STORE_OP_OFFLINE_FETCH] = "offline fetch",   [STORE_OP_OFFLINE_DELETE] = "offline delete",
        [STORE_OP_OFFLINE_COUNT] = "offline count",   [STORE_OP_BLOCK_ADD] = "block add",
        [STORE_OP_BLOCK_REMOVE] = "block remove",     [STORE_OP_BLOCK_CLEAR] = "block clear",
        [STORE_OP_BLOCK_LIST] = "block list",         [STORE_OP_ACCOUNT_IMPORT] = "account import",
        [STORE_OP_CLUSTER_BEAT] = "cluster beat",
        [STORE_OP_PEP_LOAD] = "pep load",             [STORE_OP_PEP_PUT] = "pep put",
        [STORE_OP_PEP_DELETE] = "pep delete",
        [STORE_OP_MAM_APPEND] = "mam append",         [STORE_OP_MAM_QUERY] = "mam query",
        [STORE_OP_MAM_PREFS_GET] = "mam prefs get",   [STORE_OP_MAM_PREFS_SET] = "mam prefs set",
        [STORE_OP_MAM_EXPIRE] = "mam expire",         [STORE_OP_MAM_LAST] = "mam last",
        [STORE_OP_MUC_PUT] = "muc put",               [STORE_OP_MUC_LOAD] = "muc load",
        [STORE_OP_MUC_DELETE] = "muc delete",         [STORE_OP_MUC_LIST] = "muc list",
    };
    return (unsigned)op < STORE_OP_COUNT_ ? names[op] : "?";
}

/* ---- the worker -------------------------------------------------------------------------- */

static void deliver(struct store *st, struct store_req *req)
{
    if (!req->client) {
        pthread_mutex_lock(&st->sync_mu);
        req->done = true; /* the waiter may return and free req once we unlock */
        pthread_cond_broadcast(&st->sync_cv);
        pthread_mutex_unlock(&st->sync_mu);
        return;
    }
    struct store_client *cl = req->client;
    struct store_req *old = atomic_load_explicit(&cl->done, memory_order_relaxed);
    do {
        req->next = old;
        /* Release: publishes the request's results; pairs with the acquire exchange in
         * store_poll() and drain(). */
    } while (!atomic_compare_exchange_weak_explicit(&cl->done, &old, req, memory_order_release,
                                                    memory_order_relaxed));
    /* Only the push onto an empty stack signals: a non-empty stack has been signalled
     * already and not yet taken (store_poll() resets the eventfd before taking). */
    if (!old && cl->notify) {
        cl->notify(cl->notify_arg);
    } else if (!old) {
        uint64_t one = 1;
        while (write(cl->efd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    /* Release: our last access to cl; pairs with the acquire load in store_client_free(). */
    atomic_fetch_sub_explicit(&cl->inflight, 1, memory_order_release);
}

static void *store_worker(void *arg)
{
    struct store *st = arg;
    log_thread_set("store");
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->stop)
            pthread_cond_wait(&st->cv, &st->mu);
        struct store_req *batch = st->head;
        if (!batch)
            break; /* stopping, and everything queued has run */
        st->head = st->tail = NULL;
        pthread_mutex_unlock(&st->mu);
        while (batch) {
            struct store_req *req = batch;
            batch = req->next;
            st->ops->run(st->be, req);
            deliver(st, req);
        }
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* struct store_serve's two: a serve() back end's way into the queue. */
static struct store_req *serve_take(struct store *st, bool *stop)
{
    uint64_t count;
    /* Reset before taking, as drain() does: a submit after this read either lands in
     * what we take or finds the queue empty and rings again. */
    while (read(st->bell, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&st->mu);
    struct store_req *batch = st->head;
    st->head = st->tail = NULL;
    *stop = st->stop;
    pthread_mutex_unlock(&st->mu);
    return batch;
}

static void *store_server(void *arg)
{
    struct store *st = arg;
    log_thread_set("store");
    struct store_serve sv = {.st = st, .bell = st->bell, .take = serve_take, .done = deliver};
    st->ops->serve(st->be, &sv);
    return NULL;
}

static void ring_bell(struct store *st)
{
    uint64_t one = 1;
    if (st->bell >= 0)
        while (write(st->bell, &one, sizeof one) < 0 && errno == EINTR)
            ;
}

static void submit(struct store *st, struct store_req *req)
{
    req->next = NULL;
    pthread_mutex_lock(&st->mu);
    bool was_empty = !st->head;
    if (st->tail)
        st->tail->next = req;
    else
        st->head = req;
    st->tail = req;
    pthread_mutex_unlock(&st->mu);
    /* The worker sleeps only on an empty queue; a non-empty one it will come back to. */
    if (was_empty) {
        pthread_cond_signal(&st->cv);
        ring_bell(st);
    }
}

/* ---- opening and closing ----------------------------------------------------------------- */

int store_open(const struct store_opts *opts, struct store **out)
{
    int rc;
    *out = NULL;
    if ((unsigned)opts->backend >= sizeof store_backends / sizeof store_backends[0] ||
        !store_backends[opts->backend]) {
        LOG_ERROR("store: back end %d is not built into this program", (int)opts->backend);
        return -ENOTSUP;
    }
    struct store *st = calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    st->ops = store_backends[opts->backend];
    st->bell = -1;
    st->queue_max = opts->queue_max ? opts->queue_max : STORE_QUEUE_DEFAULT;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_mutex_init(&st->sync_mu, NULL);
    pthread_cond_init(&st->sync_cv, NULL);

    if (st->ops->serve && (st->bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        rc = -errno;
        goto fail_bell;
    }
    rc = st->ops->open(opts, &st->be);
    if (rc < 0)
        goto fail_open;

    /* The worker takes no signals: they belong to the process's main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&st->worker, NULL, st->ops->serve ? store_server : store_worker, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0)
        goto fail_thread;
    pthread_setname_np(st->worker, "store");
    *out = st;
    return 0;

fail_thread:
    st->ops->close(st->be);
fail_open:
    if (st->bell >= 0)
        close(st->bell);
fail_bell:
    pthread_cond_destroy(&st->sync_cv);
    pthread_mutex_destroy(&st->sync_mu);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
    return rc;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    if (atomic_load(&st->clients) != 0)
        LOG_ERROR("store: closed with %u clients left", atomic_load(&st->clients));
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_mutex_unlock(&st->mu);
    pthread_cond_signal(&st->cv);
    ring_bell(st);
    pthread_join(st->worker, NULL);
    st->ops->close(st->be);
    if (st->bell >= 0)
        close(st->bell);
    pthread_cond_destroy(&st->sync_cv);
    pthread_mutex_destroy(&st->sync_mu);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

bool store_reachable(const struct store *st)
{
    return !st->ops->reachable || st->ops->reachable(st->be);
}

/* ---- clients ----------------------------------------------------------------------------- */

int store_client_new(struct store *st, struct store_client **out)
{
    *out = NULL;
    struct store_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    cl->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (cl->efd < 0) {
        int err = -errno;
        free(cl);
        return err;
    }
    cl->st = st;
    atomic_fetch_add(&st->clients, 1);
    *out = cl;
    return 0;
}

int store_client_new_notify(struct store *st, void (*notify)(void *arg), void *arg,
                            struct store_client **out)
{
    *out = NULL;
    struct store_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    cl->efd = -1;
    cl->notify = notify;
    cl->notify_arg = arg;
    cl->st = st;
    atomic_fetch_add(&st->clients, 1);
    *out = cl;
    return 0;
}

int store_client_fd(const struct store_client *cl)
{
    return cl->efd;
}

bool store_client_ready(const struct store_client *cl)
{
    return atomic_load_explicit(&cl->done, memory_order_relaxed) != NULL;
}

unsigned store_client_pending(const struct store_client *cl)
{
    return cl->pending;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* Takes every completion waiting, oldest first. */
static struct store_req *drain(struct store_client *cl)
{
    uint64_t count;
    /* Reset the eventfd before taking the stack: a push after this read either lands in
     * what we take now or finds the stack empty and signals again. Never a lost wake-up.
     * Without an eventfd an empty stack costs nothing to look at. */
    if (cl->efd < 0) {
        if (!atomic_load_explicit(&cl->done, memory_order_relaxed))
            return NULL;
    } else {
        while (read(cl->efd, &count, sizeof count) < 0 && errno == EINTR)
            ;
    }
    /* Acquire: pairs with the release CAS in deliver(); the results are visible. */
    struct store_req *lifo = atomic_exchange_explicit(&cl->done, NULL, memory_order_acquire);
    struct store_req *fifo = NULL;
    while (lifo) {
        struct store_req *r = lifo;
        lifo = r->next;
        r->next = fifo;
        fifo = r;
    }
    return fifo;
}

static void req_release(struct store_client *cl, struct store_req *req)
{
    store_list_free(&req->list);
    store_roster_free(&req->roster);
    store_subreqs_free(&req->subreqs);
    store_offline_free(&req->offline);
    store_pep_free(&req->pep);
    store_mam_page_free(&req->mam_page);
    store_mam_prefs_free(&req->mam_prefs_out);
    store_muc_room_free(&req->muc_out);
    store_muc_list_free(&req->muc_list);
    free(req);
    cl->pending--;
    atomic_fetch_sub_explicit(&cl->st->outstanding, 1, memory_order_relaxed);
}

int store_poll(struct store_client *cl)
{
    int n = 0;
    struct store_req *req = drain(cl);
    uint64_t now = req && cl->stats ? now_us() : 0;
    while (req) {
        struct store_req *next = req->next;
        bool ok = req->res >= 0;
        if (cl->stats)
            stats_store_done(cl->stats, now > req->queued_us ? now - req->queued_us : 0);
        if (cl->tags)
            cl->tags->enter(cl->tags_arg, req->tag);
        switch (req->op) {
        case STORE_OP_CREDS_GET:
            req->cb.creds(req->arg, req->res, ok ? &req->creds : NULL);
            break;
        case STORE_OP_ACCOUNT_LIST:
        case STORE_OP_BLOCK_LIST:
            req->cb.list(req->arg, req->res, ok ? &req->list : NULL);
            break;
        case STORE_OP_ROSTER_GET:
            req->cb.roster(req->arg, req->res, ok ? &req->roster : NULL);
            break;
        case STORE_OP_ROSTER_PUT:
        case STORE_OP_ROSTER_DELETE:
            req->cb.ver(req->arg, req->res, ok ? req->ver : 0);
            break;
        case STORE_OP_SUBREQ_LIST:
            req->cb.subreqs(req->arg, req->res, ok ? &req->subreqs : NULL);
            break;
        case STORE_OP_OFFLINE_FETCH:
            req->cb.offline(req->arg, req->res, ok ? &req->offline : NULL);
            break;
        case STORE_OP_PEP_LOAD:
            req->cb.pep(req->arg, req->res, ok ? &req->pep : NULL);
            break;
        case STORE_OP_MAM_QUERY:
            req->cb.mam(req->arg, req->res, ok ? &req->mam_page : NULL);
            break;
        case STORE_OP_MAM_PREFS_GET:
            req->cb.mam_prefs(req->arg, req->res, ok ? &req->mam_prefs_out : NULL);
            break;
        case STORE_OP_MUC_LOAD:
            req->cb.muc(req->arg, req->res, ok ? &req->muc_out : NULL);
            break;
        case STORE_OP_MUC_LIST:
            req->cb.muc_list(req->arg, req->res, ok ? &req->muc_list : NULL);
            break;
        default:
            req->cb.done(req->arg, req->res);
            break;
        }
        if (cl->tags)
            cl->tags->leave(cl->tags_arg, req->tag);
        req_release(cl, req);
        req = next;
        n++;
    }
    if (n)
        stats_set(cl->stats, STAT_STORE_QUEUE, cl->pending);
    return n;
}

void store_client_free(struct store_client *cl)
{
    if (!cl)
        return;
    for (;;) {
        /* Acquire: pairs with the worker's release decrement, after which it no longer
         * touches cl. Read before draining: at zero, everything the worker pushed is in
         * the stack this drain takes. */
        bool idle = atomic_load_explicit(&cl->inflight, memory_order_acquire) == 0;
        for (struct store_req *req = drain(cl), *next; req; req = next) {
            next = req->next;
            req_release(cl, req);
        }
        if (idle)
            break;
        /* The eventfd may fire just before the decrement: a short timeout, not a spin
         * (without one, poll() just sleeps). */
        poll(&(struct pollfd){.fd = cl->efd, .events = POLLIN}, 1, 10);
    }
    atomic_fetch_sub(&cl->st->clients, 1);
    if (cl->efd >= 0)
        close(cl->efd);
    free(cl);
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), checked
 * here so that every back end accepts exactly the same names. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

size_t store_text_len(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max + 1) : 0;
    if (n == 0 || n > max || !utf8_valid((const unsigned char *)s, n))
        return 0;
    return n;
}

/* Length of a valid user name, or 0. */
static size_t name_len(const char *s)
{
    return store_text_len(s, STORE_USER_MAX);
}

static bool creds_valid(const struct store_creds *c)
{
    if (!c)
        return false;
    if (c->sha1.iterations && (!c->sha1.salt_len || c->sha1.salt_len > STORE_SALT_MAX))
        return false;
    if (c->sha256.iterations && (!c->sha256.salt_len || c->sha256.salt_len > STORE_SALT_MAX))
        return false;
    return c->sha1.iterations || c->sha256.iterations;
}

/* Checks the arguments every request shares. `after` is only for list requests. */
static int req_check(enum store_op op, const char *user, const char *after, size_t limit,
                     const struct store_creds *creds)
{
    switch (op) {
    case STORE_OP_ACCOUNT_CREATE:
    case STORE_OP_CREDS_SET:
        if (!creds_valid(creds))
            return -EINVAL;
        /* fall through */
    case STORE_OP_ACCOUNT_DELETE:
    case STORE_OP_CREDS_GET:
        return name_len(user) ? 0 : -EINVAL;
    case STORE_OP_ACCOUNT_LIST:
        if (limit < 1 || limit > STORE_LIST_MAX)
            return -EINVAL;
        return !after || !after[0] || name_len(after) ? 0 : -EINVAL;
    default:
        return -EINVAL;
    }
}

/* Counts the request against queue_max before allocating it, so that concurrent
 * submitters never overshoot together. */
int store_req_new(struct store_client *cl, enum store_op op, size_t extra, void *arg,
                  struct store_req **out)
{
    struct store *st = cl->st;
    int rc;
    if (atomic_fetch_add_explicit(&st->outstanding, 1, memory_order_relaxed) >= st->queue_max) {
        rc = -EAGAIN;
        goto fail_count;
    }
    struct store_req *req = malloc(sizeof *req + extra);
    if (!req) {
        rc = -ENOMEM;
        goto fail_count;
    }
    memset(req, 0, sizeof *req);
    req->client = cl;
    req->op = op;
    req->arg = arg;
    *out = req;
    return 0;

fail_count:
    atomic_fetch_sub_explicit(&st->outstanding, 1, memory_order_relaxed);
    return rc;
}

void store_client_tags(struct store_client *cl, const struct store_tag_ops *ops, void *arg)
{
    cl->tags = ops;
    cl->tags_arg = arg;
}

void store_client_stats(struct store_client *cl, struct shm_stats *slot)
{
    cl->stats = slot;
}

void store_req_queue(struct store_client *cl, struct store_req *req)
{
    if (cl->tags)
        req->tag = cl->tags->take(cl->tags_arg);
    if (cl->stats)
        req->queued_us = now_us();
    cl->pending++;
    stats_set(cl->stats, STAT_STORE_QUEUE, cl->pending);
    atomic_fetch_add_explicit(&cl->inflight, 1, memory_order_relaxed);
    submit(cl->st, req);
}

/* Allocates an account request for the wrappers below, which set its callback and
 * queue it with queue_async(). */
static int req_new(struct store_client *cl, enum store_op op, const char *user, const char *after,
                   size_t limit, const struct store_creds *creds, bool has_cb, void *arg,
                   struct store_req **out)
{
    int rc = req_check(op, user, after, limit, creds);
    if (rc < 0)
        return rc;
    if (!has_cb)
        return -EINVAL;
    size_t ulen = user ? strlen(user) + 1 : 0, alen = after && after[0] ? strlen(after) + 1 : 0;
    struct store_req *req;
    rc = store_req_new(cl, op, ulen + alen, arg, &req);
    if (rc < 0)
        return rc;
    req->limit = limit;
    if (creds)
        req->creds = *creds;
    if (ulen)
        req->user = memcpy(req->text, user, ulen);
    if (alen)
        req->after = memcpy(req->text + ulen, after, alen);
    *out = req;
    return 0;
}

static int queue_async(struct store_client *cl, struct store_req *req)
{
    store_req_queue(cl, req);
    return 0;
}

int store_account_create(struct store_client *cl, const char *user, const struct store_creds *creds,
                         store_done_fn done, void *arg)
{
    struct store_req *req;
    int rc = req_new(cl, STORE_OP_ACCOUNT_CREATE, user, NULL, 0, creds, done, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.done = done;
    return queue_async(cl, req);
}

int store_account_delete(struct store_client *cl, const char *user, store_done_fn done, void *arg)
{
    struct store_req *req;
    int rc = req_new(cl, STORE_OP_ACCOUNT_DELETE, user, NULL, 0, NULL, done, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.done = done;
    return queue_async(cl, req);
}

int store_creds_get(struct store_client *cl, const char *user, store_creds_fn done, void *arg)
{
    struct store_req *req;
    int rc = req_new(cl, STORE_OP_CREDS_GET, user, NULL, 0, NULL, done, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.creds = done;
    return queue_async(cl, req);
}

int store_creds_set(struct store_client *cl, const char *user, const struct store_creds *creds,
                    store_done_fn done, void *arg)
{
    struct store_req *req;
    int rc = req_new(cl, STORE_OP_CREDS_SET, user, NULL, 0, creds, done, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.done = done;
    return queue_async(cl, req);
}

int store_account_list(struct store_client *cl, const char *after, size_t limit, store_list_fn done,
                       void *arg)
{
    struct store_req *req;
    int rc = req_new(cl, STORE_OP_ACCOUNT_LIST, NULL, after, limit, NULL, done, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.list = done;
    return queue_async(cl, req);
}

/* Runs an account request on the worker and waits for it. */
static int run_sync(struct store *st, struct store_req *req)
{
    int rc = req_check(req->op, req->user, req->after, req->limit, &req->creds);
    if (rc < 0)
        return rc;
    if (req->after && !req->after[0])
        req->after = NULL;
    return store_req_sync(st, req);
}

/* req lives on the caller's stack and points at the caller's arguments, which outlive
 * the call. */
int store_req_sync(struct store *st, struct store_req *req)
{
    submit(st, req);
    pthread_mutex_lock(&st->sync_mu);
    while (!req->done)
        pthread_cond_wait(&st->sync_cv, &st->sync_mu);
    pthread_mutex_unlock(&st->sync_mu);
    return req->res;
}

int store_account_create_sync(struct store *st, const char *user, const struct store_creds *creds)
{
    if (!creds)
        return -EINVAL;
    struct store_req req = {.op = STORE_OP_ACCOUNT_CREATE, .user = user, .creds = *creds};
    return run_sync(st, &req);
}

int store_account_delete_sync(struct store *st, const char *user)
{
    struct store_req req = {.op = STORE_OP_ACCOUNT_DELETE, .user = user};
    return run_sync(st, &req);
}

int store_creds_get_sync(struct store *st, const char *user, struct store_creds *out)
{
    struct store_req req = {.op = STORE_OP_CREDS_GET, .user = user};
    int rc = run_sync(st, &req);
    if (rc == 0)
        *out = req.creds;
    return rc;
}

int store_creds_set_sync(struct store *st, const char *user, const struct store_creds *creds)
{
    if (!creds)
        return -EINVAL;
    struct store_req req = {.op = STORE_OP_CREDS_SET, .user = user, .creds = *creds};
    return run_sync(st, &req);
}

int store_account_list_sync(struct store *st, const char *after, size_t limit,
                            struct store_list *out)
{
    struct store_req req = {.op = STORE_OP_ACCOUNT_LIST, .after = after, .limit = limit};
    int rc = run_sync(st, &req);
    *out = req.list; /* empty unless rc == 0 */
    return rc;
}

int store_account_import_sync(struct store *st, const struct store_account *accounts, size_t n,
                              bool replace, size_t *failed)
{
    size_t ignored;
    if (!failed)
        failed = &ignored;
    *failed = n;
    if (!accounts || n < 1 || n > INT_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!name_len(accounts[i].user) || !creds_valid(&accounts[i].creds)) {
            *failed = i;
            return -EINVAL;
        }
    }
    struct store_req req = {
        .op = STORE_OP_ACCOUNT_IMPORT, .accounts = accounts, .naccounts = n, .replace = replace};
    int rc = store_req_sync(st, &req);
    if (rc < 0)
        *failed = req.failed;
    return rc;
}

void store_list_free(struct store_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->names[i]);
    free(list->names);
    list->names = NULL;
    list->n = 0;
}
