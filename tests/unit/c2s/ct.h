/*
 * ct.h: one c2s thread driven in-process, for unit tests of the stream state machine
 * (stream.c, auth.c, bind.c, route.c). The thread is set up as main.c and the layer's
 * loop (common/fe/loop.c) set it up, without sockets or an event loop:
 *
 *   config    config_defaults(), no TLS context (STARTTLS is not offered), plain PLAIN
 *             allowed, and no pacing or failure limits on logins unless a test sets them
 *             (the limit tables are process-wide: each ct gets its own client address)
 *   store     a real SQLite file in a temporary folder; accounts by ct_account()
 *   worker    the PLAIN verifier, as auth.c uses it
 *   rings     to and from one or two router shards, in private memory: the test plays
 *             the router, reading the frames c2s writes (ct_frame()) and answering
 *             (ct_bind_result(), ct_deliver(), ct_close_conn(), ct_session_state()),
 *             and dies and comes back (ct_router_down(), ct_router_up())
 *   io_uring  t->fe.ring exists for the loop calls a stream makes (fe_arm_recv(),
 *             fe_cancel_recv(), fe_want_send(), fe_kick_send(), fe_wake_at()), which
 *             take SQEs from it; nothing waits on it and no completion is ever handled.
 *             Only fe_wake_at() submits, and what it submits with its timer (receives
 *             and sends on /dev/null) fails at once, unread. A send is "in flight" once
 *             fe_close() kicks it and stays so: what the server wrote to a client is in
 *             c->fe.out and c->fe.next (ct_out()).
 *
 * Connections get /dev/null as their socket (nothing reads or writes it) and the ct's
 * client address as their peer. Client bytes go in through fe_input(), as the loop
 * hands them over once decrypted (ct_send()); ct_settle() then runs the store's and the
 * worker's completions until none is due, as the loop's eventfd reads would. A login
 * paced by c2s.login_rate waits on the loop's wake-up timer, which never fires here:
 * ct_wake() does what its completion does, once its time has come.
 *
 * Everything ct_open() makes, ct_close() frees. One struct ct at a time (fe_current).
 */
#ifndef STARLING_TEST_CT_H
#define STARLING_TEST_CT_H

#include "c2s/c2s.h"
#include "c2s/limit.h"
#include "common/auth/creds.h"
#include "common/core/log.h"
#include "common/auth/sasl.h"
#include "common/store/store.h"
#include "common/core/worker.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"
#include "shm/port.h"
#include "shm/proto.h"
#include "shm/topo.h"
#include "test.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/base64.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>


#define CT_DOMAIN     "localhost"
#define CT_PASSWORD   "secret"
#define CT_MAX_SHARDS 2

/* The header a client opens its stream with. */
#define CT_HEADER                                                                                  \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='" CT_DOMAIN "' version='1.0'>"
#define CT_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define CT_NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"

/* The router's end of the rings to and from one shard. */
struct ct_shard {
    void *up_mem, *down_mem;
    struct ring up;   /* consumer: what c2s writes to this shard */
    struct ring down; /* producer: what this shard writes to c2s */
    struct port_rx rx;
    struct backlog q;
    struct bell bell; /* the shard's: c2s rings it */
};

/* A frame c2s wrote, copied out of its ring and decoded. */
struct ct_frame {
    unsigned shard;
    uint16_t kind;           /* PROTO_BIND, PROTO_UNBIND, PROTO_STANZA */
    struct decode_session s; /* BIND, UNBIND */
    struct decode_stanza st; /* STANZA */
    struct buf bytes;        /* the payload the spans point into */
};

struct ct {
    struct c2s_thread t;
    struct config *cfg; /* t.cfg; change it before ct_conn() for limits read at start */
    struct store *store;
    struct worker *verify;
    struct sasl_config sasl;
    struct ct_shard sh[CT_MAX_SHARDS];
    uint32_t peer; /* limit_peer_of() of the client address every ct_conn() gets */
    struct buf out;
    struct ct_frame f;
    char dir[64];
};

/* The thread's bell, or a shard's: a flag in private memory and an eventfd. */
static inline void ct_bell(struct bell *b)
{
    struct shm_bell *sh = aligned_alloc(SHM_SLOT, SHM_SLOT);
    int fd = bell_eventfd();
    if (!sh || fd < 0)
        abort();
    bell_format(sh);
    if (bell_attach(b, sh, fd) < 0)
        abort();
}

static inline void ct_bell_free(struct bell *b)
{
    close(bell_fd(b));
    free(b->sh);
    b->sh = NULL;
}

/* A client address no other ct of this process had: the limit tables are process-wide. */
static inline uint32_t ct_fresh_peer(void)
{
    static uint32_t n;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(0x0a000000u + ++n); /* 10.0.0.1, 10.0.0.2... */
    return limit_peer_of((struct sockaddr *)&sa);
}

/* A thread with rings to nshards (1 or 2) shards. Rings are sized as topo_plan() sizes
 * them unless ring_data (a power of two) is given: small rings fill, to test
 * back-pressure. */
static inline void ct_open_ex(struct ct *ct, unsigned nshards, uint32_t ring_data)
{
    struct c2s_thread *t = &ct->t;
    memset(ct, 0, sizeof *ct);
    log_set_level(LOG_LEVEL_ERROR);
    snprintf(ct->dir, sizeof ct->dir, "/tmp/starling-ct-XXXXXX");
    if (!mkdtemp(ct->dir))
        abort();
    char path[128];
    snprintf(path, sizeof path, "%s/t.db", ct->dir);
    struct store_opts so = {.backend = STORE_BACKEND_SQLITE, .path = path};
    if (store_open(&so, &ct->store) < 0 || worker_start(&ct->verify) < 0)
        abort();

    struct config *cfg = ct->cfg = config_defaults();
    if (!cfg)
        abort();
    cfg->c2s.threads = 1;
    cfg->router.shards = nshards;
    cfg->c2s.require_encryption = false;
    cfg->c2s.allow_plain_without_tls = true;
    cfg->c2s.login_rate = 0;
    cfg->c2s.auth_failures_per_account = 0;
    cfg->c2s.auth_failures_per_address = 0;
    ct->peer = ct_fresh_peer();

    /* As main.c fills it. */
    ct->sasl.domain = cfg->domain;
    ct->sasl.mechs = (1u << SASL_MECH_COUNT) - 1 - 1;
    ct->sasl.fake_iterations = cfg->c2s.scram_iterations;
    memset(ct->sasl.secret, 0x5a, sizeof ct->sasl.secret);

    /* As main.c's attach() and the loop's setup() make it, less listeners and buffers. */
    t->fe.idx = 0;
    t->fe.cfg = cfg;
    t->fe.tls = NULL;
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t->fe.lfd[i] = -1;
    t->sasl_cfg = &ct->sasl;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    t->fe.now = (uint32_t)ts.tv_sec;
    t->fe.tick.tv_sec = 1;
    if (io_uring_queue_init(1024, &t->fe.ring, 0) < 0)
        abort();
    ct_bell(&t->fe.bell);
    t->fe.nshards = nshards;
    t->fe.to_shard = calloc(nshards, sizeof *t->fe.to_shard);
    t->fe.from_shard = calloc(nshards, sizeof *t->fe.from_shard);
    t->fe.dirty = calloc(nshards, sizeof *t->fe.dirty);
    t->fe.backlog = calloc(nshards, sizeof *t->fe.backlog);
    t->fe.broken = calloc(nshards, sizeof *t->fe.broken);
    t->fe.rx = calloc(nshards, sizeof *t->fe.rx);
    t->fe.replay = calloc(nshards, sizeof *t->fe.replay);
    if (nshards < 1 || nshards > CT_MAX_SHARDS || !t->fe.to_shard || !t->fe.from_shard || !t->fe.dirty ||
        !t->fe.backlog || !t->fe.broken || !t->fe.rx || !t->fe.replay)
        abort();
    uint32_t frame = cfg->c2s.max_stanza_size + TOPO_FRAME_SLACK;
    uint32_t data = ring_data;
    if (!data)
        for (data = RING_MIN_DATA; data < 2 * frame; data *= 2)
            ;
    if (frame > data / 2)
        frame = data / 2;
    for (unsigned s = 0; s < nshards; s++) {
        struct ct_shard *sh = &ct->sh[s];
        ct_bell(&sh->bell);
        sh->up_mem = aligned_alloc(SHM_SLOT, ring_footprint(data));
        sh->down_mem = aligned_alloc(SHM_SLOT, ring_footprint(data));
        if (!sh->up_mem || !sh->down_mem || ring_format(sh->up_mem, data, frame) ||
            ring_format(sh->down_mem, data, frame) ||
            ring_attach(&t->fe.to_shard[s], sh->up_mem, &sh->bell, PROTO_KIND_MAX - 1) ||
            ring_attach(&sh->up, sh->up_mem, &t->fe.bell, PROTO_KIND_MAX - 1) ||
            ring_attach(&sh->down, sh->down_mem, &t->fe.bell, PROTO_KIND_MAX - 1) ||
            ring_attach(&t->fe.from_shard[s], sh->down_mem, &sh->bell, PROTO_KIND_MAX - 1))
            abort();
        t->fe.rx[s].max = TOPO_MAX_MESSAGE;
        sh->rx.max = TOPO_MAX_MESSAGE;
    }
    t->fe.ops = &c2s_ops;
    t->fe.fe = PROTO_FE_C2S;
    t->fe.ctl_fd = -1;
    if (fe_pool_init(&t->fe, cfg->c2s.max_connections) < 0 ||
        store_client_new(ct->store, &t->store) < 0 || worker_client_new(ct->verify, &t->verify) < 0)
        abort();
    arena_init(&t->fe.arena, 8192);
    fe_current = &t->fe;
}

static inline void ct_open(struct ct *ct, unsigned nshards)
{
    ct_open_ex(ct, nshards, 0);
}

/* An account whose password is CT_PASSWORD. */
static inline void ct_account(struct ct *ct, const char *user)
{
    struct store_creds c;
    if (creds_make(CT_PASSWORD, 4096, &c) < 0 || store_account_create_sync(ct->store, user, &c) < 0)
        abort();
}

/* Runs the store's and the worker's completions until none is due (5 s at most), then
 * publishes what c2s wrote to the rings, as one turn of the loop does. */
static inline void ct_settle(struct ct *ct)
{
    struct c2s_thread *t = &ct->t;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int n = store_poll(t->store) + (int)worker_poll(t->verify);
        if (!n && !store_client_pending(t->store) && !t->verify_pending)
            break;
        if (!n)
            usleep(100);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 5) {
            TEST_FAIL("the store or the worker never answered");
            break;
        }
    }
    fe_port_flush(&t->fe);
}

/* A client connects, as conn.c's accepted() takes it on the plain listener, but with its
 * address from ct->peer. */
static inline struct conn *ct_conn(struct ct *ct)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        abort();
    struct fe_conn *f = fe_conn_new(&ct->t.fe, fd, false);
    if (!f) {
        close(fd);
        TEST_FAIL("no connection slot");
        return NULL;
    }
    struct conn *c = (struct conn *)f;
    stream_start(f);
    c->peer_hash = ct->peer;
    if (!limit_conn_open(c->peer_hash, ct->cfg->c2s.max_connections_per_address))
        f->flags |= CONN_F_REFUSED;
    fe_arm_recv(f);
    return c;
}

/* Bytes from the client, as the loop hands plaintext over; then settles. */
static inline void ct_send_n(struct ct *ct, struct conn *c, const char *p, size_t n)
{
    c->fe.last_rx = ct->t.fe.now;
    c->fe.flags &= (uint16_t)~CONN_F_PINGED;
    fe_input(&c->fe, p, n);
    ct_settle(ct);
}

static inline void ct_send(struct ct *ct, struct conn *c, const char *xml)
{
    ct_send_n(ct, c, xml, strlen(xml));
}

/* What the server wrote to c since the last call, NUL-terminated; valid until the next
 * call. The bytes are taken: the next call returns only newer ones. */
static inline const char *ct_out(struct ct *ct, struct conn *c)
{
    struct buf *b = &ct->out;
    b->off = b->len = 0;
    buf_append(b, buf_data(&c->fe.out), buf_used(&c->fe.out));
    buf_append(b, buf_data(&c->fe.next), buf_used(&c->fe.next));
    buf_append(b, "", 1);
    buf_consume(&c->fe.out, buf_used(&c->fe.out));
    buf_consume(&c->fe.next, buf_used(&c->fe.next));
    return buf_data(b);
}

/* The connection went away, as the loop sees a receive of 0 bytes: closed now, released
 * once its operations are done (here at once). Its id names nothing afterwards. */
static inline void ct_drop(struct conn *c)
{
    fe_close(&c->fe);
    c->fe.ops = 0;
    fe_maybe_release(&c->fe);
}

/* What the loop does after a turn's completions: resumes paused connections when a
 * shard made room (the bell rang) or a ring had room already, takes frames from the
 * router, publishes what c2s wrote. */
static inline void ct_step(struct ct *ct)
{
    struct c2s_thread *t = &ct->t;
    struct pollfd pf = {.fd = bell_fd(&t->fe.bell), .events = POLLIN};
    bool rang = false;
    if (poll(&pf, 1, 0) == 1) {
        uint64_t v;
        rang = read(pf.fd, &v, sizeof v) == (ssize_t)sizeof v;
    }
    if (t->fe.resume_now || (rang && t->fe.paused))
        fe_port_resume(&t->fe);
    fe_port_drain(&t->fe);
    fe_port_flush(&t->fe);
}

/* The next frame c2s published to any shard, copied into ct->f: true, or false when
 * there is none. Released as a shard releases what it has finished, unless `keep`: a
 * router that dies then has not finished it. */
static inline bool ct_frame_ex(struct ct *ct, bool keep)
{
    struct ct_frame *f = &ct->f;
    fe_port_flush(&ct->t.fe);
    for (unsigned s = 0; s < ct->t.fe.nshards; s++) {
        struct ct_shard *sh = &ct->sh[s];
        struct ring_frame rf;
        int rc = port_recv(&sh->up, &sh->rx, &rf);
        if (rc < 0)
            TEST_FAIL("a corrupt ring to shard %u", s);
        if (rc != 1)
            continue;
        f->bytes.off = f->bytes.len = 0;
        buf_append(&f->bytes, rf.payload, rf.len);
        /* As a shard does: the producer may be waiting for this room. */
        if (!keep && ring_release(&sh->up))
            bell_ring(&ct->t.fe.bell);
        f->shard = s;
        f->kind = rf.kind;
        memset(&f->s, 0, sizeof f->s);
        memset(&f->st, 0, sizeof f->st);
        int bad = 0;
        if (f->kind == PROTO_BIND || f->kind == PROTO_UNBIND)
            bad = decode_session(buf_data(&f->bytes), rf.len, &f->s);
        else if (f->kind == PROTO_STANZA)
            bad = decode_stanza(buf_data(&f->bytes), rf.len, &f->st);
        else
            bad = -1;
        if (bad)
            TEST_FAIL("an undecodable frame of kind %u to shard %u", f->kind, s);
        return true;
    }
    return false;
}

static inline bool ct_frame(struct ct *ct)
{
    return ct_frame_ex(ct, false);
}

/* How many frames c2s published, all of them read and dropped. */
static inline unsigned ct_frames_skip(struct ct *ct)
{
    unsigned n = 0;
    while (ct_frame(ct))
        n++;
    return n;
}

/* The shard of a bare JID, as c2s computes it. */
static inline unsigned ct_shard_of(const struct ct *ct, uint64_t key)
{
    return (unsigned)(key % ct->t.fe.nshards);
}

/* A frame from shard s to c2s, published, and the loop turned once. */
static inline void ct_to_c2s(struct ct *ct, unsigned s, uint16_t kind, const void *p, uint32_t len)
{
    int rc = port_send(&ct->sh[s].down, &ct->sh[s].q, kind, p, len, NULL);
    if (rc != 0)
        TEST_FAIL("the ring from shard %u refused a frame (%d)", s, rc);
    ring_publish(&ct->sh[s].down);
    ct_step(ct);
    ct_settle(ct);
}

/* The shard's answer to a bind: 0 with the bound JID (n bytes), or -EEXIST, -EDQUOT... */
static inline void ct_bind_result(struct ct *ct, unsigned s, uint64_t conn, int result,
                                  const char *jid, size_t n)
{
    char p[sizeof(struct proto_bind_result) + 3072];
    struct proto_bind_result h = {.conn = conn, .result = result};
    if (result != 0)
        n = 0;
    if (n > sizeof p - sizeof h)
        abort();
    h.jid_len = (uint16_t)n;
    memcpy(p, &h, sizeof h);
    if (n)
        memcpy(p + sizeof h, jid, n);
    ct_to_c2s(ct, s, PROTO_BIND_RESULT, p, (uint32_t)(sizeof h + n));
}

static inline void ct_close_conn(struct ct *ct, unsigned s, uint64_t conn, uint8_t condition)
{
    struct proto_close h = {.conn = conn, .condition = condition};
    ct_to_c2s(ct, s, PROTO_CLOSE, &h, sizeof h);
}

/* A delivery of stanza to n connections of the thread; tos[i] is recipient i's `to`
 * (NULL: the stanza as is), inserted at to_at as the router lays it out. */
static inline void ct_deliver(struct ct *ct, unsigned s, const uint64_t *conns,
                              const char *const *tos, uint32_t n, const char *stanza,
                              uint32_t to_at)
{
    struct buf attrs = {0}, rcpts = {0}, p = {0};
    for (uint32_t i = 0; i < n; i++) {
        struct proto_rcpt r = {.conn = conns[i], .to_off = buf_used(&attrs)};
        if (tos && tos[i])
            xmlw_attr(&attrs, "to", tos[i], strlen(tos[i]));
        r.to_len = buf_used(&attrs) - r.to_off;
        buf_append(&rcpts, &r, sizeof r);
    }
    struct proto_deliver h = {.nrcpt = n,
                              .stanza_len = (uint32_t)strlen(stanza),
                              .to_at = to_at,
                              .attr_len = buf_used(&attrs)};
    buf_append(&p, &h, sizeof h);
    buf_append(&p, buf_data(&rcpts), buf_used(&rcpts));
    buf_append(&p, stanza, h.stanza_len);
    buf_append(&p, buf_data(&attrs), buf_used(&attrs));
    ct_to_c2s(ct, s, PROTO_DELIVER, buf_data(&p), buf_used(&p));
    buf_free(&attrs);
    buf_free(&rcpts);
    buf_free(&p);
}

/* PROTO_SESSION_STATE: the router's flags for a session and its directed presences
 * (n JIDs), which c2s keeps to hand back at re-registration. */
static inline void ct_session_state(struct ct *ct, unsigned s, uint64_t conn, uint8_t flags,
                                    const char *const *jids, unsigned n)
{
    struct buf list = {0}, p = {0};
    for (unsigned i = 0; i < n; i++) {
        uint16_t len = (uint16_t)strlen(jids[i]);
        buf_append(&list, &len, sizeof len);
        buf_append(&list, jids[i], len);
    }
    struct proto_session_state h = {.conn = conn, .flags = flags, .directed_len = buf_used(&list)};
    buf_append(&p, &h, sizeof h);
    buf_append(&p, buf_data(&list), buf_used(&list));
    ct_to_c2s(ct, s, PROTO_SESSION_STATE, buf_data(&p), buf_used(&p));
    buf_free(&list);
    buf_free(&p);
}

/* The router died and was reaped: c2s does what the main thread asks its threads. */
static inline void ct_router_down(struct ct *ct)
{
    fe_control(&ct->t.fe, FE_CTL_ROUTER_DOWN);
}

/* A new router attaches to the rings c2s reset, and c2s registers its sessions again. */
static inline void ct_router_up(struct ct *ct)
{
    struct c2s_thread *t = &ct->t;
    for (unsigned s = 0; s < t->fe.nshards; s++) {
        struct ct_shard *sh = &ct->sh[s];
        port_rx_reset(&sh->rx);
        backlog_clear(&sh->q);
        if (ring_attach(&sh->up, sh->up_mem, &t->fe.bell, PROTO_KIND_MAX - 1) ||
            ring_attach(&sh->down, sh->down_mem, &t->fe.bell, PROTO_KIND_MAX - 1))
            abort();
    }
    fe_control(&t->fe, FE_CTL_ROUTER_UP);
    ct_step(ct);
}

/* <auth/> for PLAIN with user's password (or another). */
static inline const char *ct_plain(const char *user, const char *password)
{
    static char xml[512];
    uint8_t raw[256], b64[360];
    size_t ul = strlen(user), pl = strlen(password);
    if (ul + pl + 2 > sizeof raw)
        abort();
    raw[0] = 0;
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = 0;
    memcpy(raw + 2 + ul, password, pl);
    EVP_EncodeBlock(b64, raw, ul + pl + 2);
    snprintf(xml, sizeof xml, "<auth xmlns='" CT_NS_SASL "' mechanism='PLAIN'>%s</auth>",
             (const char *)b64);
    return xml;
}

/* A connection authenticated as user, its stream restarted with `header` (CT_HEADER
 * when NULL): features read. */
static inline struct conn *ct_authed_ex(struct ct *ct, const char *user, const char *header)
{
    struct conn *c = ct_conn(ct);
    if (!c)
        return NULL;
    ct_send(ct, c, CT_HEADER);
    ct_send(ct, c, ct_plain(user, CT_PASSWORD));
    ct_send(ct, c, header ? header : CT_HEADER);
    const char *out = ct_out(ct, c);
    if (!(c->fe.flags & CONN_F_AUTHED) || !strstr(out, "<bind "))
        TEST_FAIL("%s did not log in: %s", user, out);
    return c;
}

static inline struct conn *ct_authed(struct ct *ct, const char *user)
{
    return ct_authed_ex(ct, user, NULL);
}

/* Binds resource on an authenticated connection: the request read off its ring and
 * answered with success. */
static inline void ct_bind(struct ct *ct, struct conn *c, const char *resource)
{
    char iq[256];
    snprintf(iq, sizeof iq,
             "<iq type='set' id='b1'><bind xmlns='" CT_NS_BIND
             "'><resource>%s</resource></bind></iq>",
             resource);
    ct_send(ct, c, iq);
    if (!ct_frame(ct) || ct->f.kind != PROTO_BIND) {
        TEST_FAIL("no bind request for %s", resource);
        return;
    }
    ct_bind_result(ct, ct->f.shard, ct->f.s.h.conn, 0, ct->f.s.jid, ct->f.s.h.jid_len);
    ct_out(ct, c);
    if (!(c->fe.flags & CONN_F_BOUND))
        TEST_FAIL("%s is not bound", resource);
}

/* A connection bound as user/resource. */
static inline struct conn *ct_bound(struct ct *ct, const char *user, const char *resource)
{
    struct conn *c = ct_authed(ct, user);
    if (c)
        ct_bind(ct, c, resource);
    return c;
}

/* What the loop does when its wake-up timer fires (OP_WAKE), once the time it is armed
 * for has come (waited for here, 1 s at most). */
static inline void ct_wake(struct ct *ct)
{
    struct c2s_thread *t = &ct->t;
    if (!t->fe.wake_at) {
        TEST_FAIL("no wake-up is armed");
        return;
    }
    for (int i = 0; i < 1000 && limit_now_us() < t->fe.wake_at; i++)
        usleep(1000);
    t->fe.wake_at = 0;
    auth_wake(&t->fe);
    ct_settle(ct);
}

static inline void ct_close(struct ct *ct)
{
    struct c2s_thread *t = &ct->t;
    ct_settle(ct);
    for (uint32_t i = 0; i < t->fe.nslots; i++) {
        struct conn *c = (struct conn *)fe_slot(&t->fe, i);
        if (c->fe.state != FE_FREE)
            ct_drop(c);
    }
    fe_pool_free(&t->fe);
    for (unsigned s = 0; s < t->fe.nshards; s++) {
        struct ct_shard *sh = &ct->sh[s];
        backlog_clear(&t->fe.backlog[s]);
        port_rx_free(&t->fe.rx[s]);
        buf_free(&t->fe.replay[s]);
        backlog_clear(&sh->q);
        port_rx_free(&sh->rx);
        free(sh->up_mem);
        free(sh->down_mem);
        ct_bell_free(&sh->bell);
    }
    free(t->fe.to_shard);
    free(t->fe.from_shard);
    free(t->fe.dirty);
    free(t->fe.backlog);
    free(t->fe.broken);
    free(t->fe.rx);
    free(t->fe.replay);
    auth_waits_free(t);
    buf_free(&t->fe.tmp);
    arena_free(&t->fe.arena);
    io_uring_queue_exit(&t->fe.ring);
    ct_bell_free(&t->fe.bell);
    store_client_free(t->store);
    worker_client_free(t->verify);
    worker_stop(ct->verify);
    store_close(ct->store);
    config_free(ct->cfg);
    buf_free(&ct->out);
    buf_free(&ct->f.bytes);
    fe_current = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", ct->dir);
    if (system(cmd) != 0)
        TEST_FAIL("cannot remove %s", ct->dir);
}

/* The first fields of a table's row: where it is, so a failure names the row as well as
 * the check. */
#define CT_ROW __FILE__, __LINE__

/* Does s contain needle? A failure names both, at the caller's line. */
#define CT_HAS(s, needle)                                                                          \
    do {                                                                                           \
        const char *ct_s_ = (s), *ct_n_ = (needle);                                                \
        if (!strstr(ct_s_, ct_n_))                                                                 \
            TEST_FAIL("expected '%s' in '%s'", ct_n_, ct_s_);                                      \
    } while (0)

#define CT_LACKS(s, needle)                                                                        \
    do {                                                                                           \
        const char *ct_s_ = (s), *ct_n_ = (needle);                                                \
        if (strstr(ct_s_, ct_n_))                                                                  \
            TEST_FAIL("did not expect '%s' in '%s'", ct_n_, ct_s_);                                \
    } while (0)

/* Did the client get the stream error cond, and the end of the stream after it? */
static inline bool ct_stream_error(const char *out, const char *cond)
{
    char want[128];
    snprintf(want, sizeof want, "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
             cond);
    return strstr(out, want) && strstr(out, "</stream:stream>");
}

#endif
