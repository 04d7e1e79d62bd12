#include "bench/load.h"
#include "common/auth/tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { OP_CONNECT = 1, OP_RECV, OP_SEND, OP_WAKE, OP_CANCEL };

/* load_conn.ops */
#define LOAD_OP_CONNECT 0x1
#define LOAD_OP_RECV    0x2
#define LOAD_OP_SEND    0x4

#define BGID        1
#define QUEUE_DEPTH 4096
#define NBUFS       512
#define BUFSIZE     (16384 + 512) /* a whole TLS record and its overhead */

#define MS              1000000ull
#define HOUSEKEEPING_NS (100 * MS)
/* A server that does not echo initial presence (RFC 6121 §4.2.2 says it must) gets this
 * long before the client counts as online anyway; the miss is counted as an error, since
 * it also means the server may not consider the client available. */
#define ECHO_WAIT_NS (2000 * MS)
/* How long a server has to answer our </stream:stream> before the socket is cut. */
#define CLOSE_WAIT_NS (2000 * MS)
/* At the end, how long the workers wait for every stream to close cleanly. */
#define QUIT_WAIT_NS (3000 * MS)
/* Waits shorter than this are not worth a sleep: the loop goes round at once. */
#define SPIN_NS 10000

uint64_t load_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t ud_pack(unsigned op, uint32_t slot, uint32_t gen)
{
    return (uint64_t)op << 56 | (uint64_t)(slot & 0xFFFFFFu) << 32 | gen;
}

static struct io_uring_sqe *sqe_get(struct load_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (!sqe) {
        /* The submission queue is full: hand it to the kernel and take a fresh one. */
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

static void mark_dirty(struct load_conn *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->dirty_next = c->w->dirty;
    c->w->dirty = c;
}

static uint32_t queued(const struct load_conn *c)
{
    return buf_used(&c->out) + buf_used(&c->next) + buf_used(&c->ptx);
}

/* xmppc's output: plaintext, encrypted at the flush under TLS. */
static int write_plain(void *ud, const char *p, size_t n)
{
    struct load_conn *c = ud;
    if (queued(c) + n > 2 * LOAD_QUEUE_MAX)
        return -ENOBUFS;
    int err = buf_append(c->tls ? &c->ptx : &c->next, p, n);
    mark_dirty(c);
    return err;
}

/* TLS records for the socket. */
static int tls_sink(void *ud, const void *p, size_t n)
{
    struct load_conn *c = ud;
    int err = buf_append(&c->next, p, n);
    mark_dirty(c);
    return err;
}

char *load_reserve(struct load_conn *c, size_t n)
{
    if (c->state != LC_ONLINE || queued(c) + n > LOAD_QUEUE_MAX)
        return NULL;
    struct buf *b = c->tls ? &c->ptx : &c->next;
    if (buf_reserve(b, n) < 0)
        return NULL;
    return buf_end(b);
}

void load_commit(struct load_conn *c, size_t n)
{
    struct buf *b = c->tls ? &c->ptx : &c->next;
    b->len += (uint32_t)n;
    mark_dirty(c);
}

bool load_send(struct load_conn *c, const char *p, size_t n)
{
    char *d = load_reserve(c, n);
    if (!d)
        return false;
    memcpy(d, p, n);
    load_commit(c, n);
    return true;
}

static void arm_recv(struct load_conn *c)
{
    if (c->ops & LOAD_OP_RECV)
        return;
    struct io_uring_sqe *sqe = sqe_get(c->w);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV, c->slot, c->gen));
    c->ops |= LOAD_OP_RECV;
}

static void cancel_op(struct load_conn *c, unsigned op)
{
    struct io_uring_sqe *sqe = sqe_get(c->w);
    if (!sqe)
        return;
    io_uring_prep_cancel64(sqe, ud_pack(op, c->slot, c->gen), 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CANCEL, 0, 0));
}

static void kick_send(struct load_conn *c)
{
    if (c->ops & LOAD_OP_SEND || c->fd < 0)
        return;
    if (!buf_used(&c->out) && buf_used(&c->next)) {
        struct buf tmp = c->out;
        c->out = c->next;
        c->next = tmp;
    }
    if (!buf_used(&c->out))
        return;
    struct io_uring_sqe *sqe = sqe_get(c->w);
    if (!sqe)
        return;
    io_uring_prep_send(sqe, c->fd, buf_data(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_SEND, c->slot, c->gen));
    c->ops |= LOAD_OP_SEND;
}

static void maybe_release(struct load_conn *c)
{
    if (c->state != LC_DEAD || c->ops)
        return;
    struct load_worker *w = c->w;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    tls_free(c->tls);
    c->tls = NULL;
    xmppc_free(&c->xc);
    buf_free(&c->out);
    buf_free(&c->next);
    buf_free(&c->ptx);
    c->state = LC_DOWN;
    c->gen++;
    w->live--;
    scen_down(c, w->now);
    c->failed = false;
}

/* Ends the connection now: counts why (stat, or -1 for an orderly end), cancels what is
 * in flight and releases the slot once nothing is. */
static void conn_abort(struct load_conn *c, int stat)
{
    struct load_worker *w = c->w;
    if (c->state == LC_DEAD || c->state == LC_DOWN)
        return;
    if (stat >= 0) {
        stats_add(&w->st, (enum stats_id)stat, 1);
        c->failed = true;
    }
    if (c->state == LC_CONNECTING || c->state == LC_TLS || c->state == LC_LOGIN)
        w->connecting--;
    if (c->was_online) {
        stats_add(&w->st, ST_ONLINE, (uint64_t)-1);
        atomic_store_explicit(&w->run->online[c->home], 0, memory_order_relaxed);
        c->was_online = false;
    }
    c->state = LC_DEAD;
    if (c->ops & LOAD_OP_RECV)
        cancel_op(c, OP_RECV);
    if (c->ops & LOAD_OP_CONNECT)
        cancel_op(c, OP_CONNECT);
    /* A send still in flight fails at once instead of waiting for a peer that may never
     * read again. */
    if (c->fd >= 0 && (c->ops & LOAD_OP_SEND))
        shutdown(c->fd, SHUT_RDWR);
    maybe_release(c);
}

void load_logout(struct load_conn *c)
{
    if (c->state != LC_ONLINE)
        return;
    xmppc_close(&c->xc);
    stats_add(&c->w->st, ST_LOGOUTS, 1);
    c->state = LC_CLOSING;
    c->t_phase = c->w->now;
}

static void start_login(struct load_conn *c)
{
    const struct opts *o = c->w->run->o;
    char user[512], pw[512];
    opts_expand(o->user, o->first + c->account, user, sizeof user);
    opts_expand(o->password, o->first + c->account, pw, sizeof pw);
    struct saslc_keys *keys = c->account < c->w->run->nkeys ? &c->w->run->keys[c->account] : NULL;
    c->state = LC_LOGIN;
    c->t_phase = 0;
    if (xmppc_start(&c->xc, user, pw, keys) < 0)
        conn_abort(c, ST_ERR_XMPP + XMPPC_FAIL_MEMORY);
}

/* No socket could be made: counted like a refused connection; the slot stays DOWN. */
static void start_failed(struct load_conn *c)
{
    stats_add(&c->w->st, ST_ERR_CONNECT, 1);
    c->failed = true;
    scen_down(c, c->w->now);
    c->failed = false;
}

static void conn_start(struct load_worker *w, struct load_conn *c)
{
    const struct opts *o = w->run->o;
    stats_add(&w->st, ST_CONNECTS, 1);
    bool peer = opts_on_peer(o, c->account);
    const struct sockaddr_storage *to = peer ? &o->peer_addr : &o->addr;
    int fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        start_failed(c);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o->nsources) {
        /* The port is picked at connect() time, per destination: each source address
         * gives a full ephemeral range toward the server (IP_BIND_ADDRESS_NO_PORT). */
        const struct sockaddr_storage *src = &o->sources[c->home % o->nsources];
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        socklen_t sl =
            src->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        if (bind(fd, (const struct sockaddr *)src, sl) < 0) {
            close(fd);
            start_failed(c);
            return;
        }
    }
    struct io_uring_sqe *sqe = sqe_get(w);
    if (!sqe) {
        close(fd);
        start_failed(c);
        return;
    }
    c->fd = fd;
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)to,
                          peer ? o->peer_addr_len : o->addr_len);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_CONNECT, c->slot, c->gen));
    c->ops |= LOAD_OP_CONNECT;
    c->state = LC_CONNECTING;
    c->t_start = c->t_rx = w->now;
    w->connecting++;
    w->live++;
    xmppc_init(&c->xc, peer ? &w->run->xcfg_peer : &w->run->xcfg, &w->xs, write_plain, c);
}

/* The client's first flight (ClientHello) goes out with the next flush. */
static int begin_tls(struct load_conn *c)
{
    c->tls = tls_new(c->w->run->tls, opts_domain_of(c->w->run->o, c->account), tls_sink, c);
    if (!c->tls)
        return -ENOMEM;
    int r = tls_handshake(c->tls);
    return r == -EAGAIN ? 0 : r;
}

static void on_connect(struct load_conn *c, int res)
{
    struct load_worker *w = c->w;
    c->ops &= (uint8_t)~LOAD_OP_CONNECT;
    if (c->state != LC_CONNECTING) {
        maybe_release(c);
        return;
    }
    if (res < 0) {
        conn_abort(c, ST_ERR_CONNECT);
        return;
    }
    arm_recv(c);
    if (w->run->o->tls == XMPPC_TLS_DIRECT) {
        c->state = LC_TLS;
        if (begin_tls(c) < 0)
            conn_abort(c, ST_ERR_TLS);
        return;
    }
    start_login(c);
}

static void on_online(struct load_conn *c)
{
    struct load_worker *w = c->w;
    c->state = LC_ONLINE;
    w->connecting--;
    c->was_online = true;
    stats_add(&w->st, ST_LOGINS, 1);
    stats_add(&w->st, ST_ONLINE, 1);
    atomic_store_explicit(&w->run->online[c->home], 1, memory_order_relaxed);
    hist_record(&w->h_login, w->now - c->t_start);
    scen_online(c, w->now);
}

/* Plaintext from the server. */
static void stream_input(struct load_conn *c, const char *p, size_t n, uint64_t now)
{
    struct xmppc_ev ev;
    xmppc_feed(&c->xc, p, n);
    for (;;) {
        enum xmppc_ev_kind k = xmppc_next(&c->xc, &ev);
        switch (k) {
        case XMPPC_EV_NONE:
            return;
        case XMPPC_EV_STARTTLS:
            if (begin_tls(c) < 0) {
                conn_abort(c, ST_ERR_TLS);
                return;
            }
            break;
        case XMPPC_EV_ONLINE:
            on_online(c);
            break;
        case XMPPC_EV_CLOSED:
            conn_abort(c, -1);
            return;
        case XMPPC_EV_FAILED:
            if (c->state == LC_CLOSING)
                conn_abort(c, -1); /* the server's words at the end do not matter */
            else
                conn_abort(c, c->state == LC_ONLINE && ev.fail == XMPPC_FAIL_CLOSED
                                  ? ST_ERR_DROPPED
                                  : ST_ERR_XMPP + (int)ev.fail);
            return;
        default:
            scen_event(c, &ev, now);
            break;
        }
        if (c->state == LC_DEAD || c->state == LC_DOWN)
            return;
    }
}

/* Bytes from the socket. */
static void conn_input(struct load_conn *c, const char *p, size_t n, uint64_t now)
{
    struct load_worker *w = c->w;
    c->t_rx = now;
    stats_add(&w->st, ST_BYTES_IN, n);
    if (!c->tls) {
        stream_input(c, p, n, now);
        return;
    }
    if (tls_feed(c->tls, p, n) < 0) {
        conn_abort(c, ST_ERR_TLS);
        return;
    }
    for (;;) {
        bool was_done = tls_handshake_done(c->tls);
        ssize_t r = tls_read(c->tls, w->plain, sizeof w->plain);
        if (!was_done && tls_handshake_done(c->tls)) {
            /* The stream starts, or restarts, over TLS (RFC 6120 §5.4.3.3). */
            if (c->state == LC_TLS)
                start_login(c);
            else
                xmppc_tls_ready(&c->xc);
        }
        if (r > 0) {
            stream_input(c, w->plain, (size_t)r, now);
            if (c->state == LC_DEAD || c->state == LC_DOWN)
                return;
            continue;
        }
        if (r == -EAGAIN)
            return;
        /* 0: close_notify; otherwise the handshake or a record failed. */
        conn_abort(c, r == 0                       ? (c->state == LC_CLOSING  ? -1
                                                      : c->state == LC_ONLINE ? ST_ERR_DROPPED
                                                                              : ST_ERR_IO)
                      : tls_handshake_done(c->tls) ? ST_ERR_IO
                                                   : ST_ERR_TLS);
        return;
    }
}

static void recycle(struct load_worker *w, unsigned bid)
{
    io_uring_buf_ring_add(w->br, w->bufs + (size_t)bid * w->bufsize, w->bufsize,
                          (unsigned short)bid, io_uring_buf_ring_mask(w->nbufs), 0);
    io_uring_buf_ring_advance(w->br, 1);
}

/* The socket ended or failed: why depends on what the connection was doing. */
static void conn_eof(struct load_conn *c)
{
    conn_abort(c, c->state == LC_CLOSING ? -1 : c->state == LC_ONLINE ? ST_ERR_DROPPED : ST_ERR_IO);
}

static void on_recv(struct load_worker *w, struct load_conn *c, const struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (c && cqe->res > 0 && c->state != LC_DEAD)
            conn_input(c, w->bufs + (size_t)bid * w->bufsize, (size_t)cqe->res, load_clock());
        recycle(w, bid);
    }
    if (!c)
        return;
    if (!more)
        c->ops &= (uint8_t)~LOAD_OP_RECV;
    if (c->state != LC_DEAD) {
        if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS && cqe->res != -ECANCELED))
            conn_eof(c);
        else if (!more)
            arm_recv(c); /* multishot ended: the buffers ran out for a moment */
    }
    maybe_release(c);
}

static void on_send(struct load_conn *c, const struct io_uring_cqe *cqe)
{
    c->ops &= (uint8_t)~LOAD_OP_SEND;
    if (cqe->res < 0) {
        buf_free(&c->out);
        buf_free(&c->next);
        conn_eof(c);
    } else {
        stats_add(&c->w->st, ST_BYTES_OUT, (uint64_t)cqe->res);
        buf_consume(&c->out, (size_t)cqe->res);
        if (c->state != LC_DEAD)
            kick_send(c);
    }
    maybe_release(c);
}

/* Encrypts what was written this iteration and starts one send per connection. */
static void flush(struct load_worker *w)
{
    while (w->dirty) {
        struct load_conn *c = w->dirty;
        w->dirty = c->dirty_next;
        c->dirty = false;
        if (c->state == LC_DEAD || c->state == LC_DOWN)
            continue;
        if (c->tls && buf_used(&c->ptx) && tls_handshake_done(c->tls)) {
            int err = tls_write(c->tls, buf_data(&c->ptx), buf_used(&c->ptx));
            if (err < 0) {
                conn_abort(c, ST_ERR_TLS);
                continue;
            }
            buf_consume(&c->ptx, buf_used(&c->ptx));
        }
        kick_send(c);
    }
}

void load_connect_at(struct load_conn *c, uint32_t account, uint64_t when)
{
    struct load_worker *w = c->w;
    if (c->state != LC_DOWN || w->sq_len == w->nconns)
        return;
    c->account = account;
    c->t_retry = when;
    w->startq[(w->sq_head + w->sq_len) % w->nconns] = c->slot;
    w->sq_len++;
}

/* Starts the connections whose turn it is; returns when the next one may start. */
static uint64_t start_more(struct load_worker *w)
{
    if (w->phase >= LOAD_STOP)
        return UINT64_MAX;
    /* At most one pass over the queue: a connection that fails at once is queued again
     * behind the others (with a back-off), not retried in a loop. */
    for (uint32_t n = w->sq_len; n && w->sq_len && w->connecting < w->pending; n--) {
        struct load_conn *c = &w->conns[w->startq[w->sq_head]];
        uint64_t at = c->t_retry > w->ramp_due ? c->t_retry : w->ramp_due;
        if (at > w->now)
            return at;
        w->sq_head = (w->sq_head + 1) % w->nconns;
        w->sq_len--;
        if (c->state != LC_DOWN)
            continue;
        conn_start(w, c);
        if (w->ramp_ns)
            w->ramp_due = (w->ramp_due > w->now ? w->ramp_due : w->now) + w->ramp_ns;
    }
    return UINT64_MAX;
}

static void housekeeping(struct load_worker *w)
{
    const struct opts *o = w->run->o;
    uint64_t now = w->now, timeout = (uint64_t)(o->timeout * 1e9);
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct load_conn *c = &w->conns[i];
        switch (c->state) {
        case LC_CONNECTING:
        case LC_TLS:
        case LC_LOGIN:
            if (now - c->t_start > timeout) {
                conn_abort(c, ST_ERR_TIMEOUT);
                break;
            }
            if (c->state == LC_LOGIN && xmppc_state(&c->xc) == XMPPC_PRESENCE) {
                if (!c->t_phase)
                    c->t_phase = now;
                else if (now - c->t_phase > ECHO_WAIT_NS && xmppc_force_online(&c->xc)) {
                    stats_add(&w->st, ST_ERR_NO_ECHO, 1);
                    on_online(c);
                }
            }
            break;
        case LC_CLOSING:
            if (now - c->t_phase > CLOSE_WAIT_NS)
                conn_abort(c, -1);
            break;
        case LC_ONLINE:
            /* A quiet client gives its buffers back, as an idle server connection would. */
            if (now - c->t_rx > 1000 * MS && !c->dirty) {
                xmppc_trim(&c->xc);
                if (!(c->ops & LOAD_OP_SEND))
                    buf_trim(&c->out);
                buf_trim(&c->next);
                buf_trim(&c->ptx);
            }
            break;
        default:
            break;
        }
    }
    scen_housekeeping(w, now);
}

static void arm_wake(struct load_worker *w)
{
    struct io_uring_sqe *sqe = sqe_get(w);
    if (!sqe)
        return;
    io_uring_prep_read(sqe, w->efd, &w->efd_val, sizeof w->efd_val, 0);
    io_uring_sqe_set_data64(sqe, ud_pack(OP_WAKE, 0, 0));
}

static int setup_ring(struct load_worker *w)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
              IORING_SETUP_CQSIZE;
    p.cq_entries = QUEUE_DEPTH * 4;
    int err = io_uring_queue_init_params(QUEUE_DEPTH, &w->ring, &p);
    if (err < 0)
        return err;
    /* Provided buffers shared by all of the worker's connections: an idle connection
     * holds no receive buffer. */
    w->nbufs = NBUFS;
    w->bufsize = BUFSIZE;
    size_t ring_bytes = w->nbufs * sizeof(struct io_uring_buf);
    w->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (w->br == MAP_FAILED) {
        w->br = NULL;
        return -ENOMEM;
    }
    w->bufs = malloc((size_t)w->nbufs * w->bufsize);
    if (!w->bufs)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)w->br, .ring_entries = w->nbufs, .bgid = BGID};
    io_uring_buf_ring_init(w->br);
    if ((err = io_uring_register_buf_ring(&w->ring, &reg, 0)) < 0)
        return err;
    for (unsigned i = 0; i < w->nbufs; i++)
        io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * w->bufsize, w->bufsize,
                              (unsigned short)i, io_uring_buf_ring_mask(w->nbufs), (int)i);
    io_uring_buf_ring_advance(w->br, (int)w->nbufs);
    arm_wake(w);
    return 0;
}

static void dispatch(struct load_worker *w, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    unsigned op = (unsigned)(ud >> 56);
    uint32_t slot = (uint32_t)(ud >> 32) & 0xFFFFFFu, gen = (uint32_t)ud;
    struct load_conn *c = NULL;
    if (op == OP_CONNECT || op == OP_RECV || op == OP_SEND) {
        c = slot < w->nconns ? &w->conns[slot] : NULL;
        if (c && (c->state == LC_DOWN || c->gen != gen))
            c = NULL;
    }
    switch (op) {
    case OP_CONNECT:
        if (c)
            on_connect(c, cqe->res);
        break;
    case OP_RECV:
        on_recv(w, c, cqe);
        break;
    case OP_SEND:
        if (c)
            on_send(c, cqe);
        break;
    case OP_WAKE:
        arm_wake(w);
        break;
    default:
        break;
    }
}

/* The control thread moved the run on. */
static void enter_phase(struct load_worker *w, enum load_phase p)
{
    w->phase = p;
    if (p == LOAD_QUIT) {
        /* No reconnects; online streams close cleanly, the rest are cut. */
        w->sq_len = 0;
        for (uint32_t i = 0; i < w->nconns; i++) {
            struct load_conn *c = &w->conns[i];
            if (c->state == LC_ONLINE)
                load_logout(c);
            else if (c->state != LC_CLOSING)
                conn_abort(c, -1);
        }
    }
    scen_phase(w, p, w->now);
}

static void *worker_main(void *arg)
{
    struct load_worker *w = arg;
    int err = setup_ring(w);
    if (err < 0) {
        /* Pairs with the control thread's acquire load in load_start(). */
        atomic_store_explicit(&w->ready, err, memory_order_release);
        return NULL;
    }
    w->now = load_clock();
    w->housekeeping = w->now + HOUSEKEEPING_NS;
    atomic_store_explicit(&w->ready, 1, memory_order_release);
    uint64_t quit_by = UINT64_MAX;
    for (;;) {
        w->now = load_clock();
        enum load_phase p =
            (enum load_phase)atomic_load_explicit(&w->run->phase, memory_order_acquire);
        while (w->phase < p) {
            enter_phase(w, w->phase + 1);
            if (w->phase == LOAD_QUIT)
                quit_by = w->now + QUIT_WAIT_NS;
        }
        if (w->phase == LOAD_QUIT && (w->live == 0 || w->now >= quit_by))
            break;
        uint64_t next = start_more(w);
        uint64_t due = scen_tick(w, w->now);
        if (due < next)
            next = due;
        if (w->now >= w->housekeeping) {
            housekeeping(w);
            w->housekeeping = w->now + HOUSEKEEPING_NS;
        }
        if (w->housekeeping < next)
            next = w->housekeeping;
        flush(w);
        int r;
        if (next <= w->now + SPIN_NS) {
            r = io_uring_submit_and_get_events(&w->ring);
        } else {
            uint64_t d = next - w->now;
            struct __kernel_timespec ts = {.tv_sec = (long long)(d / 1000000000ull),
                                           .tv_nsec = (long long)(d % 1000000000ull)};
            struct io_uring_cqe *cqe;
            r = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
        }
        if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) {
            w->err = r;
            break;
        }
        w->now = load_clock();
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe)
        {
            seen++;
            dispatch(w, cqe);
        }
        io_uring_cq_advance(&w->ring, seen);
    }
    /* Whatever did not close in time is cut; the ring's teardown cancels what is left. */
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct load_conn *c = &w->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        tls_free(c->tls);
        c->tls = NULL;
        xmppc_free(&c->xc);
        buf_free(&c->out);
        buf_free(&c->next);
        buf_free(&c->ptx);
    }
    io_uring_queue_exit(&w->ring);
    return NULL;
}

int load_init(struct load_run *run)
{
    const struct opts *o = run->o;
    unsigned T = o->threads;
    uint32_t pairs = (o->clients + 1) / 2;
    run->nworkers = T;
    run->t_start = load_clock();
    run->workers = calloc(T, sizeof *run->workers);
    run->online = calloc(o->clients, sizeof *run->online);
    if (!run->workers || !run->online)
        return -ENOMEM;
    for (unsigned k = 0; k < T; k++) {
        struct load_worker *w = &run->workers[k];
        w->idx = k;
        w->run = run;
        w->efd = -1;
        /* Pairs k, k + T, k + 2T...: local pair lp holds slots 2lp and 2lp + 1. */
        uint32_t np = pairs / T + (k < pairs % T);
        w->nconns = 2 * np;
        w->conns = calloc(w->nconns ? w->nconns : 1, sizeof *w->conns);
        w->startq = calloc(w->nconns ? w->nconns : 1, sizeof *w->startq);
        if (!w->conns || !w->startq)
            return -ENOMEM;
        for (uint32_t s = 0; s < w->nconns; s++) {
            struct load_conn *c = &w->conns[s];
            c->w = w;
            c->slot = s;
            c->fd = -1;
            c->state = LC_DOWN;
            c->home = 2 * ((s / 2) * T + k) + s % 2;
            c->account = c->home;
        }
        w->pending = o->pending / T ? o->pending / T : 1;
        w->ramp_ns = o->ramp > 0 ? (uint64_t)(T * 1e9 / o->ramp) : 0;
        hist_init(&w->h_msg);
        hist_init(&w->h_pres);
        hist_init(&w->h_login);
        xmppc_shared_init(&w->xs);
        w->efd = eventfd(0, EFD_CLOEXEC);
        if (w->efd < 0)
            return -errno;
        int err = scen_init(w);
        if (err < 0)
            return err;
        /* Everybody logs in, in order; the ramp and --pending pace it. */
        for (uint32_t s = 0; s < w->nconns; s++)
            if (w->conns[s].home < o->clients)
                load_connect_at(&w->conns[s], w->conns[s].home, 0);
    }
    return 0;
}

int load_start(struct load_run *run)
{
    for (unsigned k = 0; k < run->nworkers; k++) {
        int err = pthread_create(&run->workers[k].thread, NULL, worker_main, &run->workers[k]);
        if (err)
            return -err;
    }
    /* Pairs with the release store in worker_main: the ring is ready or failed. */
    for (unsigned k = 0; k < run->nworkers; k++) {
        int r;
        while (!(r = atomic_load_explicit(&run->workers[k].ready, memory_order_acquire)))
            usleep(1000);
        if (r < 0)
            return r;
    }
    return 0;
}

void load_set_phase(struct load_run *run, enum load_phase p)
{
    /* Pairs with the workers' acquire load of run->phase. */
    atomic_store_explicit(&run->phase, (unsigned)p, memory_order_release);
    uint64_t one = 1;
    for (unsigned k = 0; k < run->nworkers; k++)
        if (write(run->workers[k].efd, &one, sizeof one) < 0)
            continue; /* the worker also looks at the phase every 100 ms */
}

void load_join(struct load_run *run)
{
    for (unsigned k = 0; k < run->nworkers; k++)
        pthread_join(run->workers[k].thread, NULL);
}

void load_free(struct load_run *run)
{
    for (unsigned k = 0; run->workers && k < run->nworkers; k++) {
        struct load_worker *w = &run->workers[k];
        scen_free(w);
        xmppc_shared_free(&w->xs);
        if (w->efd >= 0)
            close(w->efd);
        free(w->conns);
        free(w->startq);
        free(w->bufs);
        if (w->br)
            munmap(w->br, w->nbufs * sizeof(struct io_uring_buf));
    }
    free(run->workers);
    free((void *)run->online);
    run->workers = NULL;
    run->online = NULL;
}
