/*
 * loop.c: one front-end thread's io_uring (SINGLE_ISSUER | DEFER_TASKRUN).
 *
 * Operations in flight and how they come back:
 *   accept  multishot on each listener; re-armed when IORING_CQE_F_MORE is clear
 *   recv    multishot per connection into the thread's provided-buffer ring; each
 *           buffer goes back to the ring as soon as its bytes are parsed (leftovers of
 *           an incomplete stanza are copied to the connection)
 *   send    one per connection at a time, over the frozen `out` buffer
 *   connect an outbound connection's (s2s), cancelled if it closes first
 *   read    on the bell's eventfd (frames from shards; room in a ring) and on every
 *           watched eventfd (the store's, the worker's)
 *   timeout the 1 s sweep: deadlines, idle pings, keepalives, closing stragglers; and
 *           the front end's wake-up (fe_wake_at()), absolute; and the earliest of the
 *           front end's timers (fe_timer_at()), absolute
 *   poll    one-shot, on a front end's own fds (fe_poll_add())
 *
 * user_data packs op (8 bits), slot (24) and generation (32), so a completion for a
 * slot reused since is recognised and ignored (its buffer still goes back).
 *
 * The loop sleeps in io_uring_submit_and_wait only after telling the shards so through
 * the doorbell (ring.h) and re-checking its inbound rings: a frame published meanwhile
 * either is seen by the re-check or rings the bell.
 */
#include "common/fe/fe.h"
#include "common/auth/tls.h"
#include "common/core/log.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_BELL, OP_WATCH, OP_TIMER, OP_CANCEL, OP_WAKE,
       OP_POLL, OP_TIMERS, OP_CONNECT };

_Thread_local struct fe_thread *fe_current;

#define BGID        1
#define QUEUE_DEPTH 4096

static inline uint64_t ud_pack(unsigned op, uint32_t slot, uint32_t gen)
{
    return (uint64_t)op << 56 | (uint64_t)(slot & 0xFFFFFFu) << 32 | gen;
}

static struct io_uring_sqe *sqe_get(struct fe_thread *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    if (!sqe) {
        /* The submission queue is full: hand it to the kernel and take a fresh one. */
        io_uring_submit(&t->ring);
        sqe = io_uring_get_sqe(&t->ring);
    }
    return sqe;
}

void fe_arm_recv(struct fe_conn *c)
{
    if ((c->ops & FE_OP_RECV) || c->state == FE_CLOSING || c->state == FE_FREE)
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, c->slot, c->gen));
    c->ops |= FE_OP_RECV;
}

void fe_cancel_recv(struct fe_conn *c)
{
    if (!(c->ops & FE_OP_RECV) || (c->flags & FE_F_RECV_OFF))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    c->flags |= FE_F_RECV_OFF;
    io_uring_prep_cancel64(sqe, ud_pack(OP_RECV, c->slot, c->gen), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
}

void fe_cancel_connect(struct fe_conn *c)
{
    if (!(c->ops & FE_OP_CONNECT))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (sqe) {
        io_uring_prep_cancel64(sqe, ud_pack(OP_CONNECT, c->slot, c->gen), 0);
        io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
    }
}

struct fe_conn *fe_connect(struct fe_thread *t, const struct sockaddr *sa, socklen_t len, int *err)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct io_uring_sqe *sqe = sqe_get(t);
    struct fe_conn *c = sqe ? fe_conn_new(t, fd, false) : NULL;
    if (!c) {
        close(fd);
        *err = sqe ? -EMFILE : -EBUSY;
        return NULL;
    }
    if (len <= sizeof c->peer)
        memcpy(&c->peer, sa, len);
    io_uring_prep_connect(sqe, fd, sa, len);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CONNECT, c->slot, c->gen));
    c->ops |= FE_OP_CONNECT;
    return c;
}

static void on_connect(struct fe_conn *c, const struct io_uring_cqe *cqe)
{
    c->ops &= (uint8_t)~FE_OP_CONNECT;
    if (c->state == FE_CLOSING) {
        c->flags |= FE_F_DEAD;
    } else {
        if (cqe->res < 0)
            c->flags |= FE_F_DEAD;
        c->t->ops->connected(c, cqe->res);
    }
    fe_maybe_release(c);
}

void fe_kick_send(struct fe_conn *c)
{
    if (c->ops & FE_OP_SEND)
        return;
    if (!buf_used(&c->out) && buf_used(&c->next)) {
        struct buf tmp = c->out;
        c->out = c->next;
        c->next = tmp;
    }
    if (!buf_used(&c->out) || (c->flags & FE_F_DEAD))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    io_uring_prep_send(sqe, c->fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, c->slot, c->gen));
    c->ops |= FE_OP_SEND;
}

void fe_want_send(struct fe_conn *c)
{
    if (c->flags & (FE_F_SEND_Q | FE_F_DEAD))
        return;
    c->flags |= FE_F_SEND_Q;
    c->next_send = c->t->to_send;
    c->t->to_send = c;
}

/* Starts the sends queued this iteration: one per connection, whatever was written to
 * it since its previous one. On loopback a send costs the receiver's TCP work too, so
 * fewer, fuller sends are most of what batching saves. */
static void flush_sends(struct fe_thread *t)
{
    struct fe_conn *c = t->to_send;
    t->to_send = NULL;
    while (c) {
        struct fe_conn *next = c->next_send;
        c->flags &= (uint16_t)~FE_F_SEND_Q;
        if (c->state != FE_FREE)
            fe_kick_send(c);
        c = next;
    }
}

static void arm_accept(struct fe_thread *t, unsigned which)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe || t->lfd[which] < 0)
        return;
    io_uring_prep_multishot_accept(sqe, t->lfd[which], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, which, 0));
}

static void arm_read(struct fe_thread *t, unsigned op, unsigned idx, int fd, uint64_t *val)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, fd, val, sizeof *val, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(op, idx, 0));
}

static void arm_timer(struct fe_thread *t)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    io_uring_prep_timeout(sqe, &t->tick, 0, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER, 0, 0));
}

int fe_watch(struct fe_thread *t, int fd, void (*fn)(void *arg), void *arg)
{
    if (t->nwatch == FE_WATCHES)
        return -ENOSPC;
    t->watch[t->nwatch++] = (struct fe_watch){fd, fn, arg, 0};
    return 0;
}

uint64_t fe_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* One wake-up armed at a time, for the earliest; an earlier one arms another, and the
 * later one then fires for nothing. The kernel reads wake_ts when the timeout is
 * submitted, so it is submitted at once: the next call may change wake_ts. */
void fe_wake_at(struct fe_thread *t, uint64_t at)
{
    if (t->wake_at && t->wake_at <= at)
        return;
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    t->wake_ts.tv_sec = (long long)(at / 1000000);
    t->wake_ts.tv_nsec = (long long)(at % 1000000) * 1000;
    io_uring_prep_timeout(sqe, &t->wake_ts, 0, IORING_TIMEOUT_ABS); /* CLOCK_MONOTONIC */
    io_uring_sqe_set_data64(sqe, ud_pack(OP_WAKE, 0, 0));
    io_uring_submit(&t->ring);
    t->wake_at = at;
}

/* ---- a front end's own fds and timers ---------------------------------------------------- */

int fe_poll_add(struct fe_thread *t, int fd, unsigned events, uint64_t tag, fe_poll_fn *fn)
{
    uint32_t i = 0;
    while (i < t->npolls && t->polls[i].fn)
        i++;
    if (i == t->npolls) {
        uint32_t n = t->npolls ? 2 * t->npolls : 8;
        struct fe_poll *p = n <= 0xFFFFFFu ? realloc(t->polls, n * sizeof *p) : NULL;
        if (!p)
            return -ENOMEM;
        memset(p + t->npolls, 0, (n - t->npolls) * sizeof *p);
        t->polls = p;
        t->npolls = n;
    }
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return -ENOMEM;
    struct fe_poll *p = &t->polls[i];
    p->fn = fn;
    p->tag = tag;
    io_uring_prep_poll_add(sqe, fd, events);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_POLL, i, p->gen));
    return (int)i;
}

void fe_poll_remove(struct fe_thread *t, int id)
{
    if (id < 0 || (uint32_t)id >= t->npolls || !t->polls[id].fn)
        return;
    struct fe_poll *p = &t->polls[id];
    struct io_uring_sqe *sqe = sqe_get(t);
    if (sqe) {
        io_uring_prep_poll_remove(sqe, ud_pack(OP_POLL, (uint32_t)id, p->gen));
        io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
    }
    /* A new generation: the removed poll's completion, if it comes, finds nobody. */
    p->fn = NULL;
    p->gen++;
}

static void on_poll(struct fe_thread *t, uint32_t slot, uint32_t gen, int res)
{
    if (slot >= t->npolls || !t->polls[slot].fn || t->polls[slot].gen != gen)
        return;
    struct fe_poll *p = &t->polls[slot];
    fe_poll_fn *fn = p->fn;
    uint64_t tag = p->tag;
    p->fn = NULL; /* over before fn runs, which may add it again */
    p->gen++;
    fn(t, tag, res);
}

/* The timers' io_uring timeout is for the earliest; an earlier one arms another, and the
 * later one then fires for nothing (as fe_wake_at() does). */
static void timers_arm(struct fe_thread *t)
{
    struct fe_timer *tm = t->timers;
    if (!tm || (t->timers_at && t->timers_at <= tm->at))
        return;
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    t->timers_ts.tv_sec = (long long)(tm->at / 1000000);
    t->timers_ts.tv_nsec = (long long)(tm->at % 1000000) * 1000;
    io_uring_prep_timeout(sqe, &t->timers_ts, 0, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMERS, 0, 0));
    io_uring_submit(&t->ring); /* the kernel reads timers_ts now */
    t->timers_at = tm->at;
}

void fe_timer_cancel(struct fe_timer *tm)
{
    if (!tm->pprev_)
        return;
    *tm->pprev_ = tm->next_;
    if (tm->next_)
        tm->next_->pprev_ = tm->pprev_;
    tm->next_ = NULL;
    tm->pprev_ = NULL;
}

void fe_timer_at(struct fe_thread *t, struct fe_timer *tm, uint64_t at,
                 void (*fn)(struct fe_thread *t, struct fe_timer *tm))
{
    fe_timer_cancel(tm);
    tm->at = at;
    tm->fn = fn;
    struct fe_timer **pp = &t->timers;
    while (*pp && (*pp)->at <= at)
        pp = &(*pp)->next_;
    tm->next_ = *pp;
    tm->pprev_ = pp;
    if (*pp)
        (*pp)->pprev_ = &tm->next_;
    *pp = tm;
    timers_arm(t);
}

static void on_timers(struct fe_thread *t)
{
    uint64_t now = fe_now_us();
    if (t->timers_at <= now)
        t->timers_at = 0; /* the armed timeout is the one that fired */
    for (struct fe_timer *tm; (tm = t->timers) && tm->at <= now;) {
        fe_timer_cancel(tm);
        tm->fn(t, tm);
    }
    timers_arm(t);
}

static uint32_t clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* Plaintext, to the stream or to the WebSocket transport under it. */
static void plain_input(struct fe_conn *c, const char *data, size_t n)
{
    if (c->ws)
        fe_ws_input(c, data, n);
    else
        fe_input(c, data, n);
}

void fe_conn_input(struct fe_conn *c, const char *data, size_t n)
{
    c->last_rx = c->t->now;
    if (c->state == FE_PROXY) {
        fe_proxy_input(c, data, n);
        return;
    }
    if (!c->tls) {
        plain_input(c, data, n);
        return;
    }
    if (tls_feed(c->tls, data, n) < 0) {
        c->flags |= FE_F_DEAD;
        fe_close(c);
        return;
    }
    for (;;) {
        if (c->state == FE_CLOSING || c->state == FE_FREE)
            return;
        int r = tls_read(c->tls, c->t->plain, sizeof c->t->plain);
        if (c->state == FE_TLS && tls_handshake_done(c->tls)) {
            /* A new stream over TLS (RFC 6120 §5.4.3.3). */
            c->flags |= FE_F_TLS;
            xml_free(&c->xp);
            c->t->ops->stream_start(c);
            fe_kick_send(c); /* the handshake's last flight */
        }
        if (r > 0) {
            plain_input(c, c->t->plain, (size_t)r);
            continue;
        }
        if (r == 0 || r == -EAGAIN) {
            fe_kick_send(c); /* handshake records */
            return;
        }
        LOG_RL(LOG_LEVEL_INFO, "conn %u: TLS failed (%d)", c->slot, r);
        fe_kick_send(c); /* a TLS alert, if BoringSSL wrote one */
        fe_close(c);
        return;
    }
}

static void recycle(struct fe_thread *t, unsigned bid)
{
    io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * t->bufsize, t->bufsize,
                          (unsigned short)bid, io_uring_buf_ring_mask(t->nbufs), 0);
    io_uring_buf_ring_advance(t->br, 1);
}

static void on_accept(struct fe_thread *t, unsigned which, const struct io_uring_cqe *cqe)
{
    if (!(cqe->flags & IORING_CQE_F_MORE) && !t->stopping)
        arm_accept(t, which);
    if (cqe->res < 0) {
        LOG_RL(LOG_LEVEL_WARN, "accept: %s", strerror(-cqe->res));
        return;
    }
    int fd = cqe->res;
    if (t->stopping) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct fe_conn *c = fe_conn_new(t, fd, false);
    if (!c) {
        LOG_RL(LOG_LEVEL_WARN, "front-end thread %u: connection limit reached or out of memory",
               t->idx);
        close(fd);
        return;
    }
    fe_accepted(c, which);
    fe_maybe_release(c);
}

static void on_recv(struct fe_thread *t, struct fe_conn *c, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c && cqe->res > 0 && c->state != FE_CLOSING)
            fe_conn_input(c, t->bufs + (size_t)bid * t->bufsize, (size_t)cqe->res);
        recycle(t, bid);
    }
    if (!c)
        return;
    if (!more) {
        c->ops &= (uint8_t)~FE_OP_RECV;
        c->flags &= (uint16_t)~FE_F_RECV_OFF;
    }
    if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED)) {
        /* The peer went away without closing its stream. */
        if (cqe->res < 0)
            c->flags |= FE_F_DEAD;
        fe_close(c);
    } else if (!more && !fe_held(c)) {
        fe_arm_recv(c); /* multishot ended (buffers ran out, or a cancel overtaken) */
    }
    fe_maybe_release(c);
}

static void on_send(struct fe_conn *c, const struct io_uring_cqe *cqe)
{
    c->ops &= (uint8_t)~FE_OP_SEND;
    if (cqe->res < 0) {
        c->flags |= FE_F_DEAD;
        buf_free(&c->out);
        buf_free(&c->next);
        fe_close(c);
    } else {
        buf_consume(&c->out, (size_t)cqe->res);
        fe_kick_send(c);
    }
    fe_maybe_release(c);
}

static void sweep(struct fe_thread *t)
{
    t->now = clock_s();
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct fe_conn *c = fe_slot(t, i);
        if (c->state == FE_FREE)
            continue;
        if (c->state == FE_CLOSING) {
            if (t->now >= c->deadline && !(c->flags & FE_F_DEAD)) {
                /* It would not read: stop waiting, the pending ops fail now. */
                c->flags |= FE_F_DEAD;
                shutdown(c->fd, SHUT_RDWR);
            }
            fe_maybe_release(c);
            continue;
        }
        if (c->state == FE_PROXY)
            fe_proxy_tick(c);
        else
            t->ops->tick(c);
        if (c->state != FE_CLOSING && !(c->ops & FE_OP_SEND))
            fe_trim(c);
    }
    fe_port_trim(t);
    uint64_t waiting = 0;
    for (unsigned s = 0; s < t->nshards; s++)
        waiting += t->backlog[s].bytes;
    stats_set(t->stats, STAT_FE_BACKLOG, waiting);
}

int fe_listen(const struct config_addr *a)
{
    int fd = socket(a->addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Every thread binds its own listener; the kernel spreads connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, &a->addr.sa, a->len) < 0 || listen(fd, 4096) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* SO_REUSEPORT lets every thread bind the same address, but it would also let a second
 * node (same user) join ours and silently take half of its clients. A bind without
 * SO_REUSEPORT fails while anyone listens there, so it tells us the address is free.
 * A predecessor killed a moment ago still listens for a few milliseconds: the kernel
 * tears its io_uring down asynchronously, and the armed accept holds the socket until
 * then. So the address gets two seconds to become free. */
int fe_address_free(const struct config_addr *a)
{
    for (int attempt = 0;; attempt++) {
        int fd = socket(a->addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -errno;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int rc = bind(fd, &a->addr.sa, a->len) < 0 ? -errno : 0;
        close(fd);
        if (rc != -EADDRINUSE || attempt == 40)
            return rc;
        usleep(50 * 1000);
    }
}

static int setup(struct fe_thread *t)
{
    struct io_uring_params p;
    int err;

    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = QUEUE_DEPTH * 4;
    if ((err = io_uring_queue_init_params(QUEUE_DEPTH, &t->ring, &p)) < 0) {
        LOG_ERROR("front-end thread %u: io_uring: %s", t->idx, strerror(-err));
        return err;
    }
    /* Provided buffers: shared by every connection of the thread, so an idle
     * connection holds no receive buffer at all. Each goes back to the ring as soon as
     * its bytes are parsed, so a few hundred serve thousands of connections. Small ones
     * keep the pool's resident size small; a TLS record larger than one simply arrives
     * in several (BoringSSL reassembles it). */
    t->nbufs = 256;
    t->bufsize = 4096;
    size_t ring_bytes = t->nbufs * sizeof(struct io_uring_buf);
    t->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    t->bufs = malloc((size_t)t->nbufs * t->bufsize);
    if (t->br == MAP_FAILED || !t->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)t->br, .ring_entries = t->nbufs, .bgid = BGID};
    io_uring_buf_ring_init(t->br);
    if ((err = io_uring_register_buf_ring(&t->ring, &reg, 0)) < 0) {
        LOG_ERROR("front-end thread %u: provided buffers: %s", t->idx, strerror(-err));
        return err;
    }
    for (unsigned i = 0; i < t->nbufs; i++)
        io_uring_buf_ring_add(t->br, t->bufs + (size_t)i * t->bufsize, t->bufsize,
                              (unsigned short)i, io_uring_buf_ring_mask(t->nbufs), (int)i);
    io_uring_buf_ring_advance(t->br, (int)t->nbufs);

    for (unsigned i = 0; i < FE_LISTENERS; i++)
        if (t->lfd[i] >= 0)
            arm_accept(t, i);
    t->now = clock_s();
    t->tick.tv_sec = 1;
    arm_read(t, OP_BELL, 0, bell_fd(&t->bell), &t->bell_val);
    for (unsigned i = 0; i < t->nwatch; i++)
        arm_read(t, OP_WATCH, i, t->watch[i].fd, &t->watch[i].val);
    arm_timer(t);
    return 0;
}

/* Stops accepting and tells every peer the server is going down (RFC 6120 §4.9.3.20). */
static void begin_stop(struct fe_thread *t)
{
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        if (t->lfd[i] >= 0) {
            close(t->lfd[i]);
            t->lfd[i] = -1;
        }
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct fe_conn *c = fe_slot(t, i);
        if (c->state != FE_FREE && c->state != FE_CLOSING)
            fe_stream_error(c, "system-shutdown");
    }
}

int fe_run(struct fe_thread *t)
{
    fe_current = t;
    int err = setup(t);
    if (err < 0)
        return err;
    bool stop_begun = false;
    for (;;) {
        unsigned req = atomic_load_explicit(&t->ctl, memory_order_acquire);
        if (req != FE_CTL_NONE)
            fe_control(t, req);
        if (t->stopping && !stop_begun) {
            begin_stop(t);
            stop_begun = true;
        }
        if (stop_begun && t->live == 0)
            break;
        if (t->resume_now)
            fe_port_resume(t);
        fe_port_drain(t);
        fe_port_flush(t);
        flush_sends(t);
        /* One system call per iteration: the sends go out and, unless frames are already
         * waiting, the thread sleeps in the same io_uring_enter (it returns at once when
         * completions are there). At low rates this is most of the cost of a message. */
        int r;
        bell_prepare_sleep(&t->bell);
        if (t->resume_now || fe_port_pending(t) ||
            atomic_load_explicit(&t->ctl, memory_order_acquire) != FE_CTL_NONE) {
            bell_cancel_sleep(&t->bell);
            r = io_uring_submit_and_get_events(&t->ring);
        } else {
            r = io_uring_submit_and_wait(&t->ring, 1);
            bell_cancel_sleep(&t->bell);
        }
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
            LOG_ERROR("front-end thread %u: io_uring_submit: %s", t->idx, strerror(-r));
            return r;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&t->ring, head, cqe)
        {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            unsigned op = (unsigned)(ud >> 56);
            uint32_t slot = (uint32_t)(ud >> 32) & 0xFFFFFFu, gen = (uint32_t)ud;
            struct fe_conn *c = NULL;
            if (op == OP_RECV || op == OP_SEND || op == OP_CONNECT) {
                c = fe_slot(t, slot);
                if (c && (c->state == FE_FREE || c->gen != gen))
                    c = NULL;
            }
            switch (op) {
            case OP_ACCEPT:
                on_accept(t, slot, cqe);
                break;
            case OP_RECV:
                on_recv(t, c, cqe);
                break;
            case OP_SEND:
                if (c)
                    on_send(c, cqe);
                break;
            case OP_CONNECT:
                if (c)
                    on_connect(c, cqe);
                break;
            case OP_BELL:
                /* Frames, or room in a ring some connection waits on. */
                arm_read(t, OP_BELL, 0, bell_fd(&t->bell), &t->bell_val);
                if (t->paused)
                    fe_port_resume(t);
                break;
            case OP_WATCH:
                if (slot < t->nwatch) {
                    struct fe_watch *w = &t->watch[slot];
                    arm_read(t, OP_WATCH, slot, w->fd, &w->val);
                    w->fn(w->arg);
                }
                break;
            case OP_POLL:
                on_poll(t, slot, gen, cqe->res);
                break;
            case OP_TIMERS:
                on_timers(t);
                break;
            case OP_WAKE:
                t->wake_at = 0;
                t->ops->wake(t);
                break;
            case OP_TIMER:
                arm_timer(t);
                sweep(t);
                if (t->paused)
                    fe_port_resume(t);
                break;
            default:
                break;
            }
        }
        io_uring_cq_advance(&t->ring, seen);
    }
    io_uring_queue_exit(&t->ring);
    buf_free(&t->ws_out);
    free(t->polls);
    t->polls = NULL;
    t->npolls = 0;
    return 0;
}

void fe_control(struct fe_thread *t, unsigned req)
{
    if (req == FE_CTL_STOP) {
        t->stopping = true;
    } else if (req == FE_CTL_ROUTER_DOWN) {
        /* The router is dead and reaped: we are the survivor that resets (ring.h). */
        fe_port_down(t);
    } else if (req == FE_CTL_RELOAD) {
        /* New connections use the new certificate; established ones keep theirs. */
        t->cfg = t->next_cfg;
        if (t->next_tls)
            t->tls = t->next_tls;
    } else if (req == FE_CTL_ROUTER_UP) {
        t->router_down = false;
    } else if (req == FE_CTL_DRAIN) {
        t->drain = t->next_drain;
    }
    /* The front end's part: after the router's return, its sessions registered again,
     * then what the old router had not finished, then held input flows. */
    t->ops->control(t, req);
    atomic_store_explicit(&t->ctl, FE_CTL_NONE, memory_order_relaxed);
    /* Pairs with the main thread's acquire load of ctl_done. */
    atomic_fetch_add_explicit(&t->ctl_done, 1, memory_order_release);
}

void fe_request(struct fe_thread *const *ts, unsigned n, unsigned req)
{
    unsigned before[256];
    for (unsigned i = 0; i < n && i < 256; i++) {
        before[i] = atomic_load_explicit(&ts[i]->ctl_done, memory_order_acquire);
        /* Pairs with the thread's acquire load in fe_run(). */
        atomic_store_explicit(&ts[i]->ctl, req, memory_order_release);
        bell_ring(&ts[i]->bell);
    }
    if (req == FE_CTL_STOP)
        return;
    for (unsigned i = 0; i < n && i < 256; i++)
        while (atomic_load_explicit(&ts[i]->ctl_done, memory_order_acquire) == before[i])
            usleep(1000);
}
