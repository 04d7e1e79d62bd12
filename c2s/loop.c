/*
 * loop.c: one c2s thread's io_uring (SINGLE_ISSUER | DEFER_TASKRUN).
 *
 * Operations in flight and how they come back:
 *   accept  multishot on each listener; re-armed when IORING_CQE_F_MORE is clear
 *   recv    multishot per connection into the thread's provided-buffer ring; each
 *           buffer goes back to the ring as soon as its bytes are parsed (leftovers of
 *           an incomplete stanza are copied to the connection)
 *   send    one per connection at a time, over the frozen `out` buffer
 *   read    on the two doorbell eventfds (frames from shards; room in a ring)
 *   timeout the 1 s sweep: deadlines, idle pings, keepalives, closing stragglers; and
 *           the wake-up for logins waiting for their turn (auth.c), absolute
 *
 * user_data packs op (8 bits), slot (24) and generation (32), so a completion for a
 * slot reused since is recognised and ignored (its buffer still goes back).
 *
 * The loop sleeps in io_uring_submit_and_wait only after telling the shards so through
 * the doorbell (ring.h) and re-checking its inbound rings: a frame published meanwhile
 * either is seen by the re-check or rings the bell.
 */
#include "c2s/c2s.h"
#include "c2s/limit.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/auth/tls.h"
#include "common/core/worker.h"
#include "shm/ring.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
    OP_ACCEPT = 1,
    OP_RECV,
    OP_SEND,
    OP_BELL,
    OP_STORE,
    OP_VERIFY,
    OP_TIMER,
    OP_CANCEL,
    OP_WAKE
};

_Thread_local struct c2s_thread *c2s_current;

#define BGID        1
#define QUEUE_DEPTH 4096

static inline uint64_t ud_pack(unsigned op, uint32_t slot, uint32_t gen)
{
    return (uint64_t)op << 56 | (uint64_t)(slot & 0xFFFFFFu) << 32 | gen;
}

static struct io_uring_sqe *sqe_get(struct c2s_thread *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    if (!sqe) {
        /* The submission queue is full: hand it to the kernel and take a fresh one. */
        io_uring_submit(&t->ring);
        sqe = io_uring_get_sqe(&t->ring);
    }
    return sqe;
}

void loop_arm_recv(struct conn *c)
{
    if ((c->ops & CONN_OP_RECV) || c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, c->slot, c->gen));
    c->ops |= CONN_OP_RECV;
}

void loop_cancel_recv(struct conn *c)
{
    if (!(c->ops & CONN_OP_RECV) || (c->flags & CONN_F_RECV_OFF))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    c->flags |= CONN_F_RECV_OFF;
    io_uring_prep_cancel64(sqe, ud_pack(OP_RECV, c->slot, c->gen), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
}

void loop_kick_send(struct conn *c)
{
    if (c->ops & CONN_OP_SEND)
        return;
    if (!buf_used(&c->out) && buf_used(&c->next)) {
        struct buf tmp = c->out;
        c->out = c->next;
        c->next = tmp;
    }
    if (!buf_used(&c->out) || (c->flags & CONN_F_DEAD))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->t);
    if (!sqe)
        return;
    io_uring_prep_send(sqe, c->fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, c->slot, c->gen));
    c->ops |= CONN_OP_SEND;
}

void loop_want_send(struct conn *c)
{
    if (c->flags & (CONN_F_SEND_Q | CONN_F_DEAD))
        return;
    c->flags |= CONN_F_SEND_Q;
    c->next_send = c->t->to_send;
    c->t->to_send = c;
}

/* Starts the sends queued this iteration: one per connection, whatever was written to
 * it since its previous one. On loopback a send costs the receiver's TCP work too, so
 * fewer, fuller sends are most of what batching saves. */
static void flush_sends(struct c2s_thread *t)
{
    struct conn *c = t->to_send;
    t->to_send = NULL;
    while (c) {
        struct conn *next = c->next_send;
        c->flags &= (uint16_t)~CONN_F_SEND_Q;
        if (c->state != CONN_FREE)
            loop_kick_send(c);
        c = next;
    }
}

static void arm_accept(struct c2s_thread *t, unsigned which)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe || t->lfd[which] < 0)
        return;
    io_uring_prep_multishot_accept(sqe, t->lfd[which], NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_ACCEPT, which, 0));
}

static void arm_read(struct c2s_thread *t, unsigned op, int fd, uint64_t *val)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, fd, val, sizeof *val, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(op, 0, 0));
}

static void arm_timer(struct c2s_thread *t)
{
    struct io_uring_sqe *sqe = sqe_get(t);
    if (!sqe)
        return;
    io_uring_prep_timeout(sqe, &t->tick, 0, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_TIMER, 0, 0));
}

/* One wake-up armed at a time, for the earliest; an earlier one arms another, and the
 * later one then fires for nothing. The kernel reads wake_ts when the timeout is
 * submitted, so it is submitted at once: the next call may change wake_ts. */
void loop_wake_at(struct c2s_thread *t, uint64_t at)
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

static uint32_t clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* Ciphertext or plaintext from the socket. */
static void conn_input(struct conn *c, const char *data, size_t n)
{
    c->last_rx = c->t->now;
    c->flags &= (uint16_t)~CONN_F_PINGED;
    if (!c->tls) {
        stream_input(c, data, n);
        return;
    }
    if (tls_feed(c->tls, data, n) < 0) {
        c->flags |= CONN_F_DEAD;
        conn_close(c);
        return;
    }
    for (;;) {
        if (c->state == CONN_CLOSING || c->state == CONN_FREE)
            return;
        int r = tls_read(c->tls, c->t->plain, sizeof c->t->plain);
        if (c->state == CONN_TLS && tls_handshake_done(c->tls)) {
            stream_tls_ready(c);
            loop_kick_send(c); /* the handshake's last flight */
        }
        if (r > 0) {
            stream_input(c, c->t->plain, (size_t)r);
            continue;
        }
        if (r == 0 || r == -EAGAIN) {
            loop_kick_send(c); /* handshake records */
            return;
        }
        LOG_RL(LOG_LEVEL_INFO, "conn %u: TLS failed (%d)", c->slot, r);
        loop_kick_send(c); /* a TLS alert, if BoringSSL wrote one */
        conn_close(c);
        return;
    }
}

static void maybe_release(struct conn *c)
{
    if (c->state == CONN_CLOSING && !c->ops && (!buf_used(&c->out) || (c->flags & CONN_F_DEAD)) &&
        !buf_used(&c->next))
        conn_release(c);
}

static void recycle(struct c2s_thread *t, unsigned bid)
{
    io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * t->bufsize, t->bufsize,
                          (unsigned short)bid, io_uring_buf_ring_mask(t->nbufs), 0);
    io_uring_buf_ring_advance(t->br, 1);
}

static void on_accept(struct c2s_thread *t, unsigned which, const struct io_uring_cqe *cqe)
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
    struct conn *c = conn_new(t, fd, which == 1);
    if (!c) {
        LOG_RL(LOG_LEVEL_WARN, "c2s thread %u: connection limit reached", t->idx);
        close(fd);
        return;
    }
    /* Over its address's limit, a client still hears why, at its stream header (after
     * the TLS handshake on the Direct TLS port). */
    c->peer_hash = limit_peer(fd);
    if (!limit_conn_open(c->peer_hash, t->cfg->c2s.max_connections_per_address))
        c->flags |= CONN_F_REFUSED;
    if (which == 1 && conn_start_tls(c) < 0) {
        conn_close(c);
        maybe_release(c);
        return;
    }
    if (which == 1)
        c->state = CONN_TLS;
    loop_arm_recv(c);
}

static void on_recv(struct c2s_thread *t, struct conn *c, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c && cqe->res > 0 && c->state != CONN_CLOSING)
            conn_input(c, t->bufs + (size_t)bid * t->bufsize, (size_t)cqe->res);
        recycle(t, bid);
    }
    if (!c)
        return;
    if (!more) {
        c->ops &= (uint8_t)~CONN_OP_RECV;
        c->flags &= (uint16_t)~CONN_F_RECV_OFF;
    }
    if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED)) {
        /* The client went away without closing its stream. */
        if (cqe->res < 0)
            c->flags |= CONN_F_DEAD;
        conn_close(c);
    } else if (!more && !stream_held(c)) {
        loop_arm_recv(c); /* multishot ended (buffers ran out, or a cancel overtaken) */
    }
    maybe_release(c);
}

static void on_send(struct conn *c, const struct io_uring_cqe *cqe)
{
    c->ops &= (uint8_t)~CONN_OP_SEND;
    if (cqe->res < 0) {
        c->flags |= CONN_F_DEAD;
        buf_free(&c->out);
        buf_free(&c->next);
        conn_close(c);
    } else {
        buf_consume(&c->out, (size_t)cqe->res);
        loop_kick_send(c);
    }
    maybe_release(c);
}

static void sweep(struct c2s_thread *t)
{
    t->now = clock_s();
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct conn *c = conn_slot(t, i);
        if (c->state == CONN_FREE)
            continue;
        if (c->state == CONN_CLOSING) {
            if (t->now >= c->deadline && !(c->flags & CONN_F_DEAD)) {
                /* It would not read: stop waiting, the pending ops fail now. */
                c->flags |= CONN_F_DEAD;
                shutdown(c->fd, SHUT_RDWR);
            }
            maybe_release(c);
            continue;
        }
        stream_tick(c);
        if (c->state != CONN_CLOSING && !(c->ops & CONN_OP_SEND))
            conn_trim(c);
    }
    /* Rings to the router that stayed quiet since the last sweep give their pages back
     * (a corrupt tail, the only error, is found again when a frame is next reserved). */
    if (!t->router_down)
        for (unsigned s = 0; s < t->nshards; s++)
            ring_trim(&t->to_shard[s]);
}

static int listen_on(const struct config_addr *a)
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

static int setup(struct c2s_thread *t)
{
    const struct config *cfg = t->cfg;
    struct io_uring_params p;
    int err;

    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = QUEUE_DEPTH * 4;
    if ((err = io_uring_queue_init_params(QUEUE_DEPTH, &t->ring, &p)) < 0) {
        LOG_ERROR("c2s thread %u: io_uring: %s", t->idx, strerror(-err));
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
        LOG_ERROR("c2s thread %u: provided buffers: %s", t->idx, strerror(-err));
        return err;
    }
    for (unsigned i = 0; i < t->nbufs; i++)
        io_uring_buf_ring_add(t->br, t->bufs + (size_t)i * t->bufsize, t->bufsize,
                              (unsigned short)i, io_uring_buf_ring_mask(t->nbufs), (int)i);
    io_uring_buf_ring_advance(t->br, (int)t->nbufs);

    t->lfd[0] = t->lfd[1] = -1;
    const struct config_addr *addrs[2] = {&cfg->c2s.listen, &cfg->c2s.listen_tls};
    for (unsigned i = 0; i < 2; i++) {
        if (!addrs[i]->len || (i == 1 && !t->tls))
            continue;
        t->lfd[i] = listen_on(addrs[i]);
        if (t->lfd[i] < 0) {
            LOG_ERROR("cannot listen on %s: %s", addrs[i]->text, strerror(-t->lfd[i]));
            return t->lfd[i];
        }
        arm_accept(t, i);
    }
    t->now = clock_s();
    t->tick.tv_sec = 1;
    arm_read(t, OP_BELL, bell_fd(&t->bell), &t->bell_val);
    arm_read(t, OP_STORE, store_client_fd(t->store), &t->store_val);
    arm_read(t, OP_VERIFY, worker_client_fd(t->verify), &t->verify_val);
    arm_timer(t);
    return 0;
}

/* Stops accepting and tells every client the server is going down (RFC 6120 §4.9.3.20). */
static void begin_stop(struct c2s_thread *t)
{
    for (unsigned i = 0; i < 2; i++)
        if (t->lfd[i] >= 0) {
            close(t->lfd[i]);
            t->lfd[i] = -1;
        }
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct conn *c = conn_slot(t, i);
        if (c->state != CONN_FREE && c->state != CONN_CLOSING)
            stream_error(c, "system-shutdown");
    }
}

void loop_control(struct c2s_thread *t, unsigned req)
{
    if (req == C2S_CTL_STOP) {
        t->stopping = true;
    } else if (req == C2S_CTL_ROUTER_DOWN) {
        /* The router is dead and reaped: we are the survivor that resets (ring.h). */
        route_router_down(t);
    } else if (req == C2S_CTL_RELOAD) {
        /* New connections use the new certificate; established ones keep theirs. */
        t->cfg = t->next_cfg;
        if (t->next_tls)
            t->tls = t->next_tls;
    } else if (req == C2S_CTL_ROUTER_UP) {
        t->router_down = false;
        route_reregister(t);
        route_resume(t);
        /* Held input flows again and reading resumes. */
        for (uint32_t i = 0; i < t->nslots; i++) {
            struct conn *c = conn_slot(t, i);
            if (c->state != CONN_FREE && c->state != CONN_CLOSING && c->state != CONN_TLS &&
                !(c->flags & CONN_F_PAUSED))
                stream_input(c, NULL, 0);
        }
    }
    atomic_store_explicit(&t->ctl, C2S_CTL_NONE, memory_order_relaxed);
    /* Pairs with the main thread's acquire load of ctl_done. */
    atomic_fetch_add_explicit(&t->ctl_done, 1, memory_order_release);
}

int loop_run(struct c2s_thread *t)
{
    c2s_current = t;
    int err = setup(t);
    if (err < 0)
        return err;
    bool stop_begun = false;
    for (;;) {
        unsigned req = atomic_load_explicit(&t->ctl, memory_order_acquire);
        if (req != C2S_CTL_NONE)
            loop_control(t, req);
        if (t->stopping && !stop_begun) {
            begin_stop(t);
            stop_begun = true;
        }
        if (stop_begun && t->live == 0)
            break;
        if (t->resume_now)
            route_resume(t);
        route_drain(t);
        route_flush(t);
        flush_sends(t);
        /* One system call per iteration: the sends go out and, unless frames are already
         * waiting, the thread sleeps in the same io_uring_enter (it returns at once when
         * completions are there). At low rates this is most of the cost of a message. */
        int r;
        bell_prepare_sleep(&t->bell);
        if (t->resume_now || route_pending(t) ||
            atomic_load_explicit(&t->ctl, memory_order_acquire) != C2S_CTL_NONE) {
            bell_cancel_sleep(&t->bell);
            r = io_uring_submit_and_get_events(&t->ring);
        } else {
            r = io_uring_submit_and_wait(&t->ring, 1);
            bell_cancel_sleep(&t->bell);
        }
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY) {
            LOG_ERROR("c2s thread %u: io_uring_submit: %s", t->idx, strerror(-r));
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
            struct conn *c = NULL;
            if (op == OP_RECV || op == OP_SEND) {
                c = conn_slot(t, slot);
                if (c && (c->state == CONN_FREE || c->gen != gen))
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
            case OP_BELL:
                /* Frames, or room in a ring some connection waits on. */
                arm_read(t, OP_BELL, bell_fd(&t->bell), &t->bell_val);
                if (t->paused)
                    route_resume(t);
                break;
            case OP_STORE:
                arm_read(t, OP_STORE, store_client_fd(t->store), &t->store_val);
                store_poll(t->store);
                break;
            case OP_VERIFY:
                arm_read(t, OP_VERIFY, worker_client_fd(t->verify), &t->verify_val);
                worker_poll(t->verify);
                break;
            case OP_WAKE:
                t->wake_at = 0;
                auth_wake(t);
                break;
            case OP_TIMER:
                arm_timer(t);
                sweep(t);
                if (t->paused)
                    route_resume(t);
                break;
            default:
                break;
            }
        }
        io_uring_cq_advance(&t->ring, seen);
    }
    io_uring_queue_exit(&t->ring);
    auth_waits_free(t);
    return 0;
}
