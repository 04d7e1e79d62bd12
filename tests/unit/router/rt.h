/*
 * rt.h: the router's shards driven in-process, for unit tests of its rules. The real
 * shard code runs (rings to front-end threads and between shards, tickets, a real SQLite
 * store in a temporary folder); this file plays c2s: it binds sessions, sends stanzas
 * stamped as c2s stamps them, and reads what the shards write back, per connection, as a
 * client would see it (each recipient's `to` filled in). rt_settle() runs every shard's
 * loop (shard_step()) and the store until nothing moves.
 *
 * One struct rt per test; single-threaded but for the store's worker.
 */
#ifndef STARLING_TEST_RT_H
#define STARLING_TEST_RT_H

#include "common/auth/creds.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xmlw.h"
#include "router/router.h"
#include "shm/decode.h"
#include "shm/port.h"
#include "shm/topo.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define RT_MAX_CONNS 512
#define RT_DOMAIN    "localhost"

/* A client connection as c2s keeps it. */
struct rt_conn {
    uint64_t id;
    unsigned fe;
    char jid[JID_BUF];
    size_t jid_len, bare_len;
    uint64_t key;
    int bind_result; /* 1: none yet */
    int closed;      /* enum proto_stream_error + 1, 0: open */
    struct buf out;  /* every stanza written to it, in order */
    struct buf last; /* what rt_take() returned last */
};

struct rt {
    struct config *cfg;
    struct store *store;
    struct shard *shards;
    unsigned nshards, nfe;
    struct ring *up, *down; /* [fe * nshards + s], c2s's ends */
    struct port_rx *rx;
    struct bell *fe_bells;
    char dir[64];
    struct rt_conn conns[RT_MAX_CONNS];
    unsigned nconns;
};

static inline void *rt_ring_mem(uint32_t data)
{
    void *mem = aligned_alloc(SHM_SLOT, ring_footprint(data));
    if (!mem)
        abort();
    return mem;
}

static inline void rt_bell(struct bell *b)
{
    struct shm_bell *sh = aligned_alloc(SHM_SLOT, SHM_SLOT);
    if (!sh)
        abort();
    bell_format(sh);
    if (bell_attach(b, sh, bell_eventfd()) < 0)
        abort();
}

/* nshards shards, nfe front-end threads, rings of ring_data bytes with frames of at most
 * max_frame bytes (small ones make every message of a test a large one). cfg may be
 * changed before rt_open() returns to the caller's first call: it is the rt's. */
static inline void rt_open(struct rt *rt, unsigned nshards, unsigned nfe, uint32_t ring_data,
                    uint32_t max_frame)
{
    memset(rt, 0, sizeof *rt);
    log_set_level(LOG_LEVEL_WARN);
    snprintf(rt->dir, sizeof rt->dir, "/tmp/starling-rt-XXXXXX");
    if (!mkdtemp(rt->dir))
        abort();
    char path[128];
    snprintf(path, sizeof path, "%s/t.db", rt->dir);
    struct store_opts so = {.backend = STORE_BACKEND_SQLITE, .path = path};
    if (store_open(&so, &rt->store) < 0)
        abort();
    rt->cfg = config_defaults();
    rt->cfg->router.shards = nshards;
    rt->cfg->c2s.threads = nfe;
    rt->nshards = nshards;
    rt->nfe = nfe;
    rt->shards = calloc(nshards, sizeof *rt->shards);
    rt->up = calloc((size_t)nfe * nshards, sizeof *rt->up);
    rt->down = calloc((size_t)nfe * nshards, sizeof *rt->down);
    rt->rx = calloc((size_t)nfe * nshards, sizeof *rt->rx);
    rt->fe_bells = calloc(nfe, sizeof *rt->fe_bells);
    for (unsigned t = 0; t < nfe; t++)
        rt_bell(&rt->fe_bells[t]);
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &rt->shards[i];
        s->idx = i;
        s->nshards = nshards;
        s->nfe = nfe;
        s->cfg = rt->cfg;
        s->from_fe = calloc(nfe, sizeof *s->from_fe);
        s->to_fe = calloc(nfe, sizeof *s->to_fe);
        s->dirty = calloc(nfe, sizeof *s->dirty);
        s->backlog = calloc(nfe, sizeof *s->backlog);
        s->broken = calloc(nfe, sizeof *s->broken);
        rt_bell(&s->bell);
    }
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &rt->shards[i];
        for (unsigned t = 0; t < nfe; t++) {
            unsigned k = t * nshards + i;
            void *up = rt_ring_mem(ring_data), *down = rt_ring_mem(ring_data);
            if (ring_format(up, ring_data, max_frame) || ring_format(down, ring_data, max_frame) ||
                ring_attach(&rt->up[k], up, &s->bell, PROTO_KIND_MAX - 1) ||
                ring_attach(&s->from_fe[t], up, &rt->fe_bells[t], PROTO_KIND_MAX - 1) ||
                ring_attach(&s->to_fe[t], down, &rt->fe_bells[t], PROTO_KIND_MAX - 1) ||
                ring_attach(&rt->down[k], down, &s->bell, PROTO_KIND_MAX - 1))
                abort();
            rt->rx[k].max = TOPO_MAX_MESSAGE;
        }
        if (store_client_new_notify(rt->store, shard_store_notify, s, &s->store) < 0)
            abort();
    }
    if (shard_link(rt->shards, nshards, ring_data, max_frame) < 0)
        abort();
    for (unsigned i = 0; i < nshards; i++)
        if (shard_init(&rt->shards[i]) < 0)
            abort();
}

static inline void rt_account(struct rt *rt, const char *user)
{
    struct store_creds c;
    if (creds_make(user, 4096, &c) < 0 || store_account_create_sync(rt->store, user, &c) < 0)
        abort();
}

static inline struct rt_conn *rt_find(struct rt *rt, uint64_t id)
{
    for (unsigned i = 0; i < rt->nconns; i++)
        if (rt->conns[i].id == id)
            return &rt->conns[i];
    return NULL;
}

/* What c2s does with a frame from a shard. */
static inline void rt_frame(struct rt *rt, const struct ring_frame *f)
{
    struct decode_deliver d;
    struct decode_bind_result br;
    struct proto_close cl;
    struct decode_session_state ss;
    struct rt_conn *c;
    if (f->kind == PROTO_DELIVER && decode_deliver(f->payload, f->len, &d) == 0) {
        for (uint32_t i = 0; i < d.h.nrcpt; i++) {
            struct proto_rcpt r;
            if (decode_rcpt(&d, i, &r) < 0)
                TEST_FAIL("a recipient beyond its delivery frame");
            else if (!(c = rt_find(rt, r.conn)))
                TEST_FAIL("a delivery to an unknown connection");
            else if (c->closed)
                ; /* c2s drops what comes for a closed connection */
            else if (!r.to_len)
                buf_append(&c->out, d.stanza, d.h.stanza_len);
            else {
                buf_append(&c->out, d.stanza, d.h.to_at);
                buf_append(&c->out, d.attrs + r.to_off, r.to_len);
                buf_append(&c->out, d.stanza + d.h.to_at, d.h.stanza_len - d.h.to_at);
            }
        }
    } else if (f->kind == PROTO_BIND_RESULT && decode_bind_result(f->payload, f->len, &br) == 0) {
        if ((c = rt_find(rt, br.h.conn)))
            c->bind_result = br.h.result;
    } else if (f->kind == PROTO_CLOSE && decode_close(f->payload, f->len, &cl) == 0) {
        if ((c = rt_find(rt, cl.conn)))
            c->closed = cl.condition + 1;
    } else if (f->kind == PROTO_SESSION_STATE &&
               decode_session_state(f->payload, f->len, &ss) == 0) {
        /* kept by c2s for a router restart: nothing to check here */
    } else {
        TEST_FAIL("a malformed frame of kind %u from a shard", f->kind);
    }
}

/* Runs every shard and the store until nothing moves (5 s at most). */
static inline void rt_settle(struct rt *rt)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int quiet = 0; quiet < 3;) {
        unsigned work = 0;
        for (unsigned k = 0; k < rt->nfe * rt->nshards; k++)
            ring_publish(&rt->up[k]);
        for (unsigned i = 0; i < rt->nshards; i++) {
            shard_current = &rt->shards[i];
            work += shard_step(&rt->shards[i]);
            work += store_client_pending(rt->shards[i].store) > 0;
        }
        shard_current = NULL;
        for (unsigned k = 0; k < rt->nfe * rt->nshards; k++) {
            struct ring_frame f;
            int rc;
            uint64_t from = ring_consumed(&rt->down[k]);
            while ((rc = port_recv(&rt->down[k], &rt->rx[k], &f)) == 1)
                rt_frame(rt, &f);
            if (rc < 0)
                TEST_FAIL("a corrupt ring from a shard");
            work += ring_consumed(&rt->down[k]) != from; /* pieces too: the rest follows */
            ring_release(&rt->down[k]);
        }
        quiet = work ? 0 : quiet + 1;
        if (work)
            usleep(200); /* the store's worker runs meanwhile */
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec > 5) {
            TEST_FAIL("the shards never settled");
            return;
        }
    }
}

/* Writes a frame into the ring of c2s thread fe to shard s, as c2s would. */
static inline void rt_put(struct rt *rt, unsigned fe, unsigned s, uint16_t kind, const void *p, uint32_t len)
{
    struct backlog none = {0};
    int rc = port_send(&rt->up[fe * rt->nshards + s], &none, kind, p, len, NULL);
    if (rc != 0)
        TEST_FAIL("the ring to shard %u is full (%d): settle more often", s, rc);
    backlog_clear(&none);
}

/* A session frame (bind, unbind) for c, as c2s writes it, not yet handled. */
static inline void rt_put_session(struct rt *rt, struct rt_conn *c, uint16_t kind)
{
    char frame[sizeof(struct proto_session) + JID_BUF];
    struct proto_session h = {.conn = c->id,
                              .key = c->key,
                              .jid_len = (uint16_t)c->jid_len,
                              .bare_len = (uint16_t)c->bare_len};
    memcpy(frame, &h, sizeof h);
    memcpy(frame + sizeof h, c->jid, c->jid_len);
    rt_put(rt, c->fe, (unsigned)(c->key % rt->nshards), kind, frame,
           (uint32_t)(sizeof h + c->jid_len));
}

static inline void rt_session(struct rt *rt, struct rt_conn *c, uint16_t kind)
{
    rt_put_session(rt, c, kind);
    rt_settle(rt);
}

/* A connection of thread fe for jid (a full JID), not bound yet. */
static inline struct rt_conn *rt_conn_new(struct rt *rt, unsigned fe, const char *jid)
{
    if (rt->nconns == RT_MAX_CONNS)
        abort();
    struct rt_conn *c = &rt->conns[rt->nconns];
    memset(c, 0, sizeof *c);
    c->id = proto_conn_id(PROTO_FE_C2S, fe, rt->nconns, 1);
    c->fe = fe;
    c->jid_len = strlen(jid);
    memcpy(c->jid, jid, c->jid_len + 1);
    c->bare_len = (size_t)(strchr(jid, '/') - jid);
    c->key = jid_hash(jid, c->bare_len);
    c->bind_result = 1;
    rt->nconns++;
    return c;
}

/* A session for jid (a full JID of an account) on thread fe; the bind must succeed. */
static inline struct rt_conn *rt_bind(struct rt *rt, unsigned fe, const char *jid)
{
    struct rt_conn *c = rt_conn_new(rt, fe, jid);
    rt_session(rt, c, PROTO_BIND);
    if (c->bind_result != 0)
        TEST_FAIL("binding %s: %d", jid, c->bind_result);
    return c;
}

static inline void rt_unbind(struct rt *rt, struct rt_conn *c)
{
    c->closed = PROTO_SE_RESET + 2; /* c2s forgets it first */
    rt_session(rt, c, PROTO_UNBIND);
}

/* A stanza from c, as c2s hands it over (rt_send_later: written into the ring, not yet
 * handled): `from` stamped after the element name, the
 * routing fields filled in. to (normalised) may be NULL. xml is the stanza as the client
 * wrote it, without `from`; kind and type as c2s classified it. */
static inline void rt_send_later(struct rt *rt, struct rt_conn *c, uint8_t kind, uint8_t type,
                                 const char *to, const char *xml)
{
    struct buf st = {0}, fr = {0};
    const char *name_end = xml + 1 + strcspn(xml + 1, " />");
    buf_append(&st, xml, (size_t)(name_end - xml));
    bool bare_from = kind == PROTO_PRESENCE && type >= PROTO_PRES_SUBSCRIBE &&
                     type <= PROTO_PRES_UNSUBSCRIBED;
    xmlw_attr(&st, "from", c->jid, bare_from ? c->bare_len : c->jid_len);
    buf_puts(&st, name_end);
    const char *gt = strchr(buf_data(&st), '>');
    struct proto_stanza h = {.conn = c->id, .key = c->key, .kind = kind, .type = type};
    size_t to_len = to ? strlen(to) : 0, to_bare = to ? strcspn(to, "/") : 0;
    const char *at = to ? memchr(to, '@', to_bare) : NULL;
    size_t doff = at ? (size_t)(at + 1 - to) : 0;
    bool local = !to || (to_bare - doff == strlen(RT_DOMAIN) && !memcmp(to + doff, RT_DOMAIN, to_bare - doff)) ||
                 config_is_muc(rt->cfg, to + doff, to_bare - doff);
    h.flags = local ? PROTO_STANZA_LOCAL : 0;
    if (!to || (local && !at && to_len == to_bare) ||
        (kind == PROTO_IQ && to_len == c->bare_len && !memcmp(to, c->jid, c->bare_len)))
        h.flags |= PROTO_STANZA_TO_SERVER;
    if (!to && kind == PROTO_MESSAGE) { /* RFC 6120 §10.3.1: for the sender's bare JID */
        to = c->jid;
        to_len = to_bare = c->bare_len;
        doff = (size_t)(strchr(c->jid, '@') + 1 - c->jid);
        h.flags = PROTO_STANZA_LOCAL;
    }
    const char *prio = strstr(xml, "<priority>");
    if (kind == PROTO_PRESENCE && type == PROTO_PRES_AVAILABLE && prio)
        h.priority = (int8_t)atoi(prio + 10);
    h.to_key = to ? jid_hash(to, to_bare) : 0;
    h.from_len = (uint16_t)c->jid_len;
    h.from_bare_len = (uint16_t)c->bare_len;
    h.to_len = (uint16_t)to_len;
    h.to_bare_len = (uint16_t)to_bare;
    h.to_domain_off = (uint16_t)doff;
    h.to_domain_len = (uint16_t)(to_bare - doff);
    h.head_len = (uint32_t)(gt - buf_data(&st) + 1);
    h.stanza_len = buf_used(&st);
    buf_append(&fr, &h, sizeof h);
    buf_append(&fr, c->jid, c->jid_len);
    if (to_len)
        buf_append(&fr, to, to_len);
    buf_append(&fr, buf_data(&st), buf_used(&st));
    rt_put(rt, c->fe, (unsigned)(c->key % rt->nshards), PROTO_STANZA, buf_data(&fr),
           buf_used(&fr));
    buf_free(&st);
    buf_free(&fr);
}

/* rt_send_later(), then everything settled. */
static inline void rt_send(struct rt *rt, struct rt_conn *c, uint8_t kind, uint8_t type, const char *to,
                    const char *xml)
{
    rt_send_later(rt, c, kind, type, to, xml);
    rt_settle(rt);
}

/* Everything c received since the last call, NUL-terminated (valid until the next). */
static inline const char *rt_take(struct rt_conn *c)
{
    buf_free(&c->last);
    c->last = c->out;
    memset(&c->out, 0, sizeof c->out);
    buf_append(&c->last, "", 1);
    return buf_data(&c->last);
}

/* How many times needle occurs in haystack. */
static inline unsigned rt_count(const char *haystack, const char *needle)
{
    unsigned n = 0;
    for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static inline void rt_close(struct rt *rt)
{
    for (unsigned i = 0; i < rt->nshards; i++) {
        struct shard *s = &rt->shards[i];
        shard_free(s);
        for (unsigned t = 0; t < rt->nfe; t++)
            backlog_clear(&s->backlog[t]);
        free(s->from_fe);
        free(s->to_fe);
        free(s->dirty);
        free(s->backlog);
        free(s->broken);
        close(bell_fd(&s->bell));
        free(s->bell.sh);
    }
    shard_unlink(rt->shards, rt->nshards);
    for (unsigned k = 0; k < rt->nfe * rt->nshards; k++) {
        free(rt->up[k].sh);
        free(rt->down[k].sh);
        port_rx_free(&rt->rx[k]);
    }
    for (unsigned t = 0; t < rt->nfe; t++) {
        close(bell_fd(&rt->fe_bells[t]));
        free(rt->fe_bells[t].sh);
    }
    for (unsigned i = 0; i < rt->nconns; i++) {
        buf_free(&rt->conns[i].out);
        buf_free(&rt->conns[i].last);
    }
    free(rt->shards);
    free(rt->up);
    free(rt->down);
    free(rt->rx);
    free(rt->fe_bells);
    store_close(rt->store);
    config_free(rt->cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", rt->dir);
    if (system(cmd) != 0)
        TEST_FAIL("cannot remove %s", rt->dir);
}

#endif
