/*
 * out.c: outbound server streams, one per (local domain, remote domain) pair, on the
 * thread that owns the remote domain: the local one is the main domain, or the chat
 * service's for stanzas from it (s2s.h), and the stream's header, SASL EXTERNAL authzid
 * and dialback are all for that local domain (Prosody and ejabberd open one stream per
 * pair as well, and never multiplex).
 *
 * A remote domain's entry goes idle -> resolving -> connecting -> ready:
 *   resolving   s2s_resolve() (routes, SRV with _xmpps-server first, A/AAAA, the
 *               domain on 5269; dns.h), answered at once from its cache or later;
 *   connecting  the addresses in order, each with s2s.connect_timeout, and the stream on
 *               the first that answers: Direct TLS at once or STARTTLS after the
 *               peer's features (SNI: the domain), our header again, then
 *               authentication: SASL EXTERNAL when the peer offers it and its
 *               certificate verifies for the domain (XEP-0178), else dialback
 *               (XEP-0220), the whole within s2s.auth_timeout. XEP-0288's <bidi/> is
 *               sent when the peer offers it, so its stanzas for us may come back on
 *               this stream (in.c reads them);
 *   ready       stanzas go out as they come; after s2s.idle_timeout without traffic the
 *               stream is closed and the entry goes idle again.
 * A peer's inbound stream with XEP-0288 may be the ready stream instead (out_attach()):
 * once it is authenticated for (peer -> us) on the thread that owns the peer's domain,
 * it takes an entry that has no ready stream and no stream of ours being made for
 * stanzas (a lookup is cancelled; a stream made only for <db:verify/>s is superseded
 * and closed once they are answered), or an idle entry about to make one (dom_adopt()),
 * and carries the queue and what follows: the peer needs no second connection. The
 * peer closes it when idle; it leaves the entry as an outbound stream does
 * (out_detach()), and also when a <db:verify/> is due, which goes over a stream of ours.
 * Stanzas that arrive before `ready` wait in the entry's queue (s2s.max_queue stanzas,
 * s2s.max_queue_bytes; past it: resource-constraint). A failure of one address tries the
 * next; when none is left, or the peer refused us (dialback, no TLS where TLS is
 * required), every queued stanza goes back to its sender with remote-server-timeout (a
 * deadline passed somewhere) or remote-server-not-found (RFC 6120 §8.3.3.16-17), and the
 * entry goes idle. The next stanza tries again at once; a domain that failed twice in a
 * row waits 1, 2, 4 ... 60 s between attempts, its stanzas queued meanwhile.
 *
 * The same entry carries our <db:verify/> requests to the domain's authoritative server
 * for inbound streams of this thread (in.c), sent once the stream is encrypted (or
 * would not be), authenticated or not; their answers go back to in.c.
 */
#include "s2s/s2s.h"
#include "common/auth/tls.h"
#include "common/core/log.h"
#include "common/net/dns.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"
#include "s2s/bidi.h"
#include "s2s/resolve.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"
#include "shm/proto.h"
#include "shm/topo.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NS_TLS    "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL   "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAM "http://etherx.jabber.org/streams"
#define BACKOFF_MAX 60 /* seconds between attempts at most */
#define FAIL_MEMORY 60 /* seconds a failure is remembered (for the backoff) */

enum dom_state { D_IDLE, D_RESOLVING, D_CONNECTING, D_READY };

struct verify_req {
    struct verify_req *next;
    char *sender, *target, *id, *key;
    size_t key_len;
};

struct qhead {
    uint32_t len;
    uint16_t kind;  /* PROTO_REMOTE, PROTO_REMOTE_FANOUT */
    uint16_t shard; /* ... from this shard, which waits for the acknowledgement of seq */
    uint64_t seq;
};

struct s2s_domain {
    struct s2s_domain *next; /* hash chain */
    char *name;
    uint64_t hash;
    uint8_t local;          /* enum s2s_local: the domain of ours the stream is from */
    uint8_t state;          /* enum dom_state */
    bool timed_out;         /* an attempt of this round ran into a deadline */
    bool can_verify;        /* the stream may carry <db:verify/> now */
    struct s2s_conn *conn;  /* connecting or ready */
    struct dns_lookup lookup;
    struct dns_result *res;
    uint32_t next_addr;
    struct buf q; /* queued frames, each a struct qhead and the frame */
    uint32_t qn;
    struct verify_req *verifies;
    uint32_t fails;    /* attempts failed in a row */
    uint64_t retry_at; /* fe_now_us() before which no attempt starts */
    uint64_t keep_until; /* fe_now_us() until which a failed entry is remembered */
    struct s2s_mcast mc; /* XEP-0033: what this stream found (multicast.c) */
};

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

/* ---- the table ---- */

int out_init(struct s2s_thread *t)
{
    t->domains_mask = 63;
    t->domains = calloc(t->domains_mask + 1, sizeof *t->domains);
    return t->domains ? 0 : -ENOMEM;
}

static void verify_free(struct verify_req *v)
{
    free(v->sender);
    free(v->target);
    free(v->id);
    free(v->key);
    free(v);
}

static void dom_free(struct s2s_domain *d)
{
    dns_cancel(&d->lookup);
    dns_result_free(d->res);
    buf_free(&d->q);
    while (d->verifies) {
        struct verify_req *v = d->verifies;
        d->verifies = v->next;
        verify_free(v);
    }
    mcast_reset(&d->mc);
    free(d->name);
    free(d);
}

void out_free(struct s2s_thread *t)
{
    for (uint32_t i = 0; t->domains && i <= t->domains_mask; i++)
        while (t->domains[i]) {
            struct s2s_domain *d = t->domains[i];
            t->domains[i] = d->next;
            dom_free(d);
        }
    free(t->domains);
    t->domains = NULL;
}

static struct s2s_domain *dom_find(struct s2s_thread *t, unsigned local, const char *name,
                                   size_t len, uint64_t h)
{
    for (struct s2s_domain *d = t->domains[h & t->domains_mask]; d; d = d->next)
        if (d->hash == h && d->local == local && !strncmp(d->name, name, len) && !d->name[len])
            return d;
    return NULL;
}

static void grow(struct s2s_thread *t)
{
    uint32_t nmask = t->domains_mask * 2 + 1;
    struct s2s_domain **nb = calloc(nmask + 1, sizeof *nb);
    if (!nb)
        return; /* longer chains, no harm */
    for (uint32_t i = 0; i <= t->domains_mask; i++)
        while (t->domains[i]) {
            struct s2s_domain *d = t->domains[i];
            t->domains[i] = d->next;
            d->next = nb[d->hash & nmask];
            nb[d->hash & nmask] = d;
        }
    free(t->domains);
    t->domains = nb;
    t->domains_mask = nmask;
}

struct s2s_mcast *out_mcast(struct s2s_thread *t, unsigned local, const char *name, size_t len,
                            struct s2s_conn **conn)
{
    struct s2s_domain *d = dom_find(t, local, name, len, jid_hash(name, len));
    *conn = d && d->state == D_READY ? d->conn : NULL;
    return d ? &d->mc : NULL;
}

static struct s2s_domain *dom_get(struct s2s_thread *t, unsigned local, const char *name,
                                  size_t len)
{
    uint64_t h = jid_hash(name, len);
    struct s2s_domain *d = dom_find(t, local, name, len, h);
    if (d)
        return d;
    if (!(d = calloc(1, sizeof *d)) || !(d->name = strndup(name, len))) {
        free(d);
        return NULL;
    }
    d->hash = h;
    d->local = (uint8_t)local;
    if (t->ndomains > t->domains_mask)
        grow(t);
    d->next = t->domains[h & t->domains_mask];
    t->domains[h & t->domains_mask] = d;
    t->ndomains++;
    return d;
}

static void dom_remove(struct s2s_thread *t, struct s2s_domain *d)
{
    struct s2s_domain **pp = &t->domains[d->hash & t->domains_mask];
    while (*pp != d)
        pp = &(*pp)->next;
    *pp = d->next;
    t->ndomains--;
    dom_free(d);
}

/* An idle entry that remembers nothing worth keeping goes away (the table is bounded by
 * what is in progress, not by every domain ever written to). */
static void dom_maybe_forget(struct s2s_thread *t, struct s2s_domain *d)
{
    if (d->state == D_IDLE && !d->qn && !d->verifies && !d->conn && d->keep_until <= fe_now_us())
        dom_remove(t, d);
}

/* ---- failures ---- */

static void fail_verifies(struct s2s_thread *t, struct s2s_domain *d)
{
    while (d->verifies) {
        struct verify_req *v = d->verifies;
        d->verifies = v->next;
        /* XEP-0220 §2.4.2: we could not reach the authoritative server. */
        in_verified(t, v->id, v->sender, v->target, DIALBACK_ERROR,
                    DIALBACK_REMOTE_CONNECTION_FAILED);
        verify_free(v);
    }
}

/* d's queue is done with: sent or returned. */
static void queue_gone(struct s2s_thread *t, struct s2s_domain *d)
{
    stats_sub(t->fe.stats, STAT_S2S_QUEUED, d->qn);
    stats_sub(t->fe.stats, STAT_S2S_QUEUED_BYTES, buf_used(&d->q));
    buf_free(&d->q);
    d->qn = 0;
}

/* Stanzas go back to their senders, and a room's fan-out to the room for each occupant
 * (it removes them); presence fan-out has nobody to tell (RFC 6121 §4.2.2 lets the
 * server say nothing) and is counted. */
static void bounce_queue(struct s2s_thread *t, struct s2s_domain *d, const char *cond)
{
    const char *p = buf_data(&d->q), *end = p + buf_used(&d->q);
    while ((size_t)(end - p) >= sizeof(struct qhead)) {
        struct qhead q;
        memcpy(&q, p, sizeof q);
        p += sizeof q;
        if (q.kind == PROTO_REMOTE) {
            remote_bounce(t, p, q.len, cond);
            t->bounced++;
        } else {
            remote_bounce_fanout(t, p, q.len, cond);
        }
        remote_ack(t, q.shard, q.seq);
        p += q.len;
    }
    queue_gone(t, d);
}

static void dom_start(struct s2s_thread *t, struct s2s_domain *d);

/* Every attempt of this round failed: the queue goes back, and the next round waits. */
static void dom_fail(struct s2s_thread *t, struct s2s_domain *d, const char *cond)
{
    LOG_RL(LOG_LEVEL_INFO, "s2s: %s cannot be reached (%s): %u stanzas returned", d->name, cond,
           d->qn);
    bounce_queue(t, d, cond);
    fail_verifies(t, d);
    dns_result_free(d->res);
    d->res = NULL;
    d->state = D_IDLE;
    d->timed_out = false;
    d->fails++;
    uint64_t now = fe_now_us();
    if (d->fails >= 2) {
        uint32_t wait = d->fails - 2 >= 6 ? BACKOFF_MAX : 1u << (d->fails - 2);
        d->retry_at = now + (uint64_t)wait * 1000000;
        fe_wake_at(&t->fe, d->retry_at);
    }
    d->keep_until = (d->retry_at > now ? d->retry_at : now) + (uint64_t)FAIL_MEMORY * 1000000;
    fe_wake_at(&t->fe, d->keep_until);
}

static const char *dns_cond(int err)
{
    return err == -ETIMEDOUT || err == -EAGAIN ? "remote-server-timeout"
                                               : "remote-server-not-found";
}

/* ---- connecting ---- */

static void connect_next(struct s2s_thread *t, struct s2s_domain *d)
{
    while (d->res && d->next_addr < d->res->n) {
        const struct dns_addr *a = &d->res->addr[d->next_addr++];
        int err;
        struct fe_conn *f = fe_connect(&t->fe, &a->addr.sa, a->len, &err);
        if (!f) {
            LOG_RL(LOG_LEVEL_WARN, "s2s: no connection to %s: %s", d->name, strerror(-err));
            continue;
        }
        struct s2s_conn *c = (struct s2s_conn *)f;
        f->flags |= S2S_F_OUTBOUND | (a->direct_tls ? FE_F_DIRECT : 0);
        stats_add(t->fe.stats, STAT_S2S_CONN_OUT, 1);
        f->deadline = t->fe.now + t->fe.cfg->s2s.connect_timeout;
        c->phase = OUT_CONNECTING;
        c->dom = d;
        c->local = d->local;
        if (!(c->remote = strdup(d->name))) {
            fe_close(f);
            continue;
        }
        d->conn = c;
        d->state = D_CONNECTING;
        return;
    }
    dom_fail(t, d, d->timed_out ? "remote-server-timeout" : "remote-server-not-found");
}

static void on_resolved(struct dns_lookup *l, int err, struct dns_result *res)
{
    struct s2s_domain *d = (struct s2s_domain *)((char *)l - offsetof(struct s2s_domain, lookup));
    struct s2s_thread *t = (struct s2s_thread *)fe_current;
    if (err < 0) {
        dom_fail(t, d, dns_cond(err));
        return;
    }
    d->res = res;
    d->next_addr = 0;
    connect_next(t, d);
}

static bool dom_adopt(struct s2s_thread *t, struct s2s_domain *d);

static void dom_start(struct s2s_thread *t, struct s2s_domain *d)
{
    if (d->state != D_IDLE || dom_adopt(t, d) || d->retry_at > fe_now_us())
        return;
    struct dns_result *res = NULL;
    d->state = D_RESOLVING;
    int rc = s2s_resolve(t, d->name, &d->lookup, on_resolved, &res);
    if (rc == 0)
        on_resolved(&d->lookup, 0, res);
    else if (rc < 0)
        dom_fail(t, d, dns_cond(rc));
}

void out_connected(struct s2s_conn *c, int res)
{
    struct fe_conn *f = &c->fe;
    struct s2s_thread *t = s2s_thread(f);
    if (res < 0) {
        LOG_RL(LOG_LEVEL_INFO, "s2s: connecting to %s: %s", c->remote, strerror(-res));
        fe_close(f);
        return;
    }
    f->deadline = t->fe.now + t->fe.cfg->s2s.auth_timeout;
    fe_arm_recv(f);
    s2s_stream_start(f); /* the parser; the header too unless TLS comes first */
    if (f->flags & FE_F_DIRECT) {
        LOG_INFO("s2s: to %s over Direct TLS (XEP-0368)", c->remote);
        if (fe_start_tls_client(f, t->client_tls, c->remote) < 0) {
            fe_close(f);
            return;
        }
        f->state = FE_TLS;
    }
}

/* ---- sending ---- */

/* A fan-out frame becomes one stanza per recipient, here at the last hop. */
static void send_fanout(struct s2s_conn *c, const void *frame, uint32_t len)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    struct decode_remote_fanout d;
    if (decode_remote_fanout(frame, len, &d) < 0 || (c->dom && mcast_fanout(c, &c->dom->mc, &d)))
        return;
    struct buf *b = &t->fe.tmp;
    const char *p = d.list, *jid;
    uint16_t jl;
    uint32_t n = 0;
    while (decode_fanout_next(&p, d.end, &jid, &jl)) {
        buf_consume(b, buf_used(b));
        buf_append(b, d.stanza, d.h.to_at);
        xmlw_attr(b, "to", jid, jl);
        buf_append(b, d.stanza + d.h.to_at, d.h.stanza_len - d.h.to_at);
        fe_write(&c->fe, buf_data(b), buf_used(b));
        n++;
    }
    t->sent += n;
    /* Presence broadcasts, or a room's messages (groupchat) and presence. */
    bool msg = d.h.stanza_len > 1 && d.stanza[1] == 'm';
    stats_add(t->fe.stats, msg ? STAT_S2S_OUT_MESSAGE : STAT_S2S_OUT_PRESENCE, n);
    t->fanout_frames++;
    t->fanout_stanzas += n;
}

static void send_frame(struct s2s_conn *c, uint16_t kind, const void *frame, uint32_t len)
{
    if (kind == PROTO_REMOTE_FANOUT) {
        send_fanout(c, frame, len);
        return;
    }
    struct decode_stanza d;
    if (decode_stanza(frame, len, &d) < 0)
        return;
    fe_write(&c->fe, d.raw, d.h.stanza_len);
    s2s_thread(&c->fe)->sent++;
    if (d.h.kind <= PROTO_IQ)
        stats_add(c->fe.t->stats, (enum stats_id)(STAT_S2S_OUT_MESSAGE + d.h.kind), 1);
}

static void send_verifies(struct s2s_conn *c)
{
    struct s2s_domain *d = c->dom;
    struct s2s_thread *t = s2s_thread(&c->fe);
    struct buf b = {0};
    d->can_verify = true;
    while (d->verifies) {
        struct verify_req *v = d->verifies;
        d->verifies = v->next;
        int rc = dialback_verify_send(&c->db, v->sender, v->target, v->id, v->key, v->key_len,
                                      t->fe.now, &b);
        if (rc < 0 && rc != -EEXIST)
            in_verified(t, v->id, v->sender, v->target, DIALBACK_ERROR,
                        rc == -ENOSPC ? DIALBACK_RESOURCE_CONSTRAINT
                                      : DIALBACK_INTERNAL_SERVER_ERROR);
        verify_free(v);
    }
    if (buf_used(&b))
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* c (authenticated) is d's ready stream from now on: the queue goes out on it. */
static void dom_use(struct s2s_domain *d, struct s2s_conn *c)
{
    d->conn = c;
    c->dom = d;
    d->state = D_READY;
    d->fails = 0;
    d->retry_at = d->keep_until = 0;
    mcast_discover(c, &d->mc);
    const char *p = buf_data(&d->q), *end = p + buf_used(&d->q);
    while ((size_t)(end - p) >= sizeof(struct qhead)) {
        struct qhead q;
        memcpy(&q, p, sizeof q);
        send_frame(c, q.kind, p + sizeof q, q.len);
        remote_ack(s2s_thread(&c->fe), q.shard, q.seq);
        p += sizeof q + q.len;
    }
    queue_gone(s2s_thread(&c->fe), d);
}

static void dom_ready(struct s2s_conn *c)
{
    struct s2s_domain *d = c->dom;
    c->phase = OUT_READY;
    s2s_authed(c);
    dom_use(d, c);
    if (d->verifies)
        send_verifies(c);
}

/* An outbound stream that out_attach() superseded ends once no <db:verify/> of ours on
 * it awaits its answer (the inbound streams that asked still hear it). */
static void retire(struct s2s_conn *c)
{
    if (c->dom || c->fe.state == FE_CLOSING || c->fe.state == FE_FREE ||
        (c->db_ready && c->db.nverify))
        return;
    if (c->phase == OUT_CONNECTING)
        fe_close(&c->fe);
    else
        fe_stream_close(&c->fe);
}

static void bidi_use(struct s2s_domain *d, struct s2s_conn *c)
{
    LOG_INFO("s2s: bidi stream with %s: it carries our stanzas too (XEP-0288)", d->name);
    dom_use(d, c);
}

/* Whether inbound stream c may carry our stanzas to `remote` (len rl): bidi, and a pair
 * (remote, us) authenticated on it, on the thread that owns remote (the only one its
 * stanzas reach). */
static bool bidi_usable(struct s2s_conn *c, const char *remote, size_t rl)
{
    const struct config *cfg = c->fe.t->cfg;
    return cfg->s2s.bidi && !(c->fe.flags & S2S_F_OUTBOUND) && (c->fe.flags & S2S_F_BIDI) &&
           !c->dom && c->db_ready && c->fe.state != FE_CLOSING && c->fe.state != FE_FREE &&
           topo_s2s_of(cfg, jid_hash(remote, rl)) == c->fe.t->idx &&
           authz_may_send(&c->authz, s2s_me(c), strlen(s2s_me(c)), remote, rl);
}

/* An idle entry about to make a stream: an inbound bidi stream of the thread that may
 * carry its stanzas does instead. Not for <db:verify/>s (they go over a stream of ours). */
static bool dom_adopt(struct s2s_thread *t, struct s2s_domain *d)
{
    size_t rl = strlen(d->name);
    if (!t->fe.cfg->s2s.bidi || d->verifies)
        return false;
    for (uint32_t i = 0; i < t->fe.nslots; i++) {
        struct s2s_conn *c = (struct s2s_conn *)fe_slot(&t->fe, i);
        if (c->fe.state != FE_FREE && c->local == d->local && bidi_usable(c, d->name, rl)) {
            bidi_use(d, c);
            return true;
        }
    }
    return false;
}

void out_attach(struct s2s_conn *c, const char *remote)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    size_t rl = strlen(remote);
    if (!bidi_usable(c, remote, rl))
        return;
    struct s2s_domain *d = dom_get(t, c->local, remote, rl);
    /* Not when a ready stream serves it; nor when questions are due that only an
     * outbound stream may ask; nor over a stream of ours being made for stanzas (both
     * sides would drop their own for the other's when both spoke first). */
    if (!d || d->state == D_READY || d->verifies || (d->conn && d->qn))
        return;
    struct s2s_conn *old = d->conn; /* one for <db:verify/>s only */
    if (old) {
        d->conn = NULL;
        old->dom = NULL;
        d->can_verify = false;
        retire(old);
    }
    dns_cancel(&d->lookup);
    dns_result_free(d->res);
    d->res = NULL;
    d->timed_out = false;
    bidi_use(d, c);
}

void out_frame(struct s2s_thread *t, uint16_t kind, const void *frame, uint32_t len,
               unsigned shard, uint64_t seq)
{
    const char *name;
    size_t nlen;
    unsigned local = S2S_LOCAL_MAIN;
    if (kind == PROTO_REMOTE_FANOUT) {
        struct decode_remote_fanout f;
        if (decode_remote_fanout(frame, len, &f) < 0) {
            remote_ack(t, shard, seq); /* nothing to do with it, ever */
            return;
        }
        name = f.domain;
        nlen = f.h.domain_len;
        if (f.h.flags & PROTO_FANOUT_FROM_MUC)
            local = S2S_LOCAL_MUC;
    } else {
        struct decode_stanza s;
        if (decode_stanza(frame, len, &s) < 0 || !s.h.to_domain_len) {
            remote_ack(t, shard, seq);
            return;
        }
        name = s.to + s.h.to_domain_off;
        nlen = s.h.to_domain_len;
        /* The stream from the sender's domain: a room's stanzas leave as the chat
         * service, whose pair the peer authenticates on its own. */
        const char *at = memchr(s.from, '@', s.h.from_bare_len);
        const char *fd = at ? at + 1 : s.from;
        if (s2s_local_of(t->fe.cfg, fd, (size_t)(s.from + s.h.from_bare_len - fd)) ==
            S2S_LOCAL_MUC)
            local = S2S_LOCAL_MUC;
    }
    if (local == S2S_LOCAL_MUC && !t->fe.cfg->muc.enabled)
        local = S2S_LOCAL_MAIN;
    struct s2s_domain *d = dom_get(t, local, name, nlen);
    if (d && d->state == D_READY && d->conn) {
        send_frame(d->conn, kind, frame, len);
        remote_ack(t, shard, seq);
        return;
    }
    const struct config *cfg = t->fe.cfg;
    struct qhead q = {len, kind, (uint16_t)shard, seq};
    if (!d || d->qn >= cfg->s2s.max_queue ||
        buf_used(&d->q) + sizeof q + len > cfg->s2s.max_queue_bytes ||
        buf_reserve(&d->q, sizeof q + len) < 0) {
        if (kind == PROTO_REMOTE)
            remote_bounce(t, frame, len, "resource-constraint");
        else
            remote_bounce_fanout(t, frame, len, "resource-constraint");
        remote_ack(t, shard, seq);
        return;
    }
    buf_append(&d->q, &q, sizeof q); /* reserved: these cannot fail */
    buf_append(&d->q, frame, len);
    d->qn++;
    stats_add(t->fe.stats, STAT_S2S_QUEUED, 1);
    stats_add(t->fe.stats, STAT_S2S_QUEUED_BYTES, sizeof q + len);
    dom_start(t, d);
}

void out_verify(struct s2s_thread *t, const char *sender, const char *target, const char *id,
                const char *key, size_t key_len)
{
    /* Asked from the domain the inbound stream is for (the target), so that the
     * <db:verify/> travels on a stream of the pair it is about. */
    int local = s2s_local_of(t->fe.cfg, target, strlen(target));
    struct s2s_domain *d = dom_get(t, local < 0 ? S2S_LOCAL_MAIN : (unsigned)local, sender,
                                   strlen(sender));
    struct verify_req *v = calloc(1, sizeof *v);
    if (!d || !v || !(v->sender = strdup(sender)) || !(v->target = strdup(target)) ||
        !(v->id = strdup(id)) || !(v->key = strndup(key, key_len))) {
        if (v)
            verify_free(v);
        in_verified(t, id, sender, target, DIALBACK_ERROR, DIALBACK_INTERNAL_SERVER_ERROR);
        return;
    }
    v->key_len = key_len;
    v->next = d->verifies;
    d->verifies = v;
    if (d->conn && !(d->conn->fe.flags & S2S_F_OUTBOUND))
        out_detach(d->conn); /* the peer's bidi stream: dialback requests go our way only */
    else if (d->conn && d->can_verify)
        send_verifies(d->conn);
    else
        dom_start(t, d);
}

/* ---- the stream ---- */

static void refuse(struct s2s_conn *c, const char *why)
{
    LOG_RL(LOG_LEVEL_INFO, "s2s: %s: %s", c->remote, why);
    if (c->dom)
        c->dom->next_addr = c->dom->res ? c->dom->res->n : 0; /* no other address will do */
    fe_stream_close(&c->fe);
}

void out_open(struct s2s_conn *c, const struct xml_event *ev)
{
    struct xml_str id = ev->attr[XML_ATTR_ID], ver = ev->attr[XML_ATTR_VERSION];
    if (id.p && id.len > DIALBACK_ID_MAX) {
        fe_stream_error(&c->fe, "policy-violation");
        return;
    }
    c->id_len = id.p ? (uint16_t)id.len : 0;
    memcpy(c->id, id.p ? id.p : "", c->id_len);
    c->id[c->id_len] = 0;
    c->fe.state = FE_OPEN;
    s2s_auth_reset(c);
    if (c->fe.flags & S2S_F_SASL_OK) {
        const char *dom = s2s_me(c);
        authz_add(&c->authz, AUTHZ_OUT, dom, strlen(dom), c->remote, strlen(c->remote), false,
                  c->fe.t->now);
        if (c->dom)
            dom_ready(c);
        return;
    }
    if (!ver.p || ver.len < 1 || ver.p[0] < '1' || ver.p[0] > '9') {
        /* An RFC 3920 peer: no features, dialback at once (TLS never comes). */
        if (c->fe.t->cfg->s2s.require_encryption && !(c->fe.flags & FE_F_TLS)) {
            refuse(c, "offers no TLS");
            return;
        }
        if (c->dom)
            send_verifies(c);
        if (c->dom && c->dom->qn) {
            struct buf b = {0};
            const char *me = s2s_me(c);
            if (dialback_start(&c->db, me, c->remote, c->fe.t->now, &b) == 0)
                c->phase = OUT_DIALBACK;
            fe_write(&c->fe, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
    }
}

static void start_dialback(struct s2s_conn *c)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    const char *me = s2s_me(c);
    struct buf b = {0};
    int rc = dialback_start(&c->db, me, c->remote, t->fe.now, &b);
    if (rc == 0) {
        c->phase = OUT_DIALBACK;
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
    } else if (rc != -EEXIST) {
        refuse(c, "dialback cannot start");
    }
    buf_free(&b);
}

/* The certificate decides between EXTERNAL and dialback (XEP-0178, XEP-0220). */
static void authenticate(struct s2s_conn *c, const struct xml_node *features)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    bool verified = c->fe.tls && tls_peer_verified(c->fe.tls, c->remote);
    if (verified && external_client_offered(features)) {
        struct buf b = {0};
        if (external_client_auth(&b, s2s_me(c)) == 0) {
            fe_write(&c->fe, buf_data(&b), buf_used(&b));
            c->phase = OUT_SASL;
        }
        buf_free(&b);
        return;
    }
    if (!verified && t->fe.cfg->s2s.secure_auth) {
        refuse(c, "its certificate does not verify (s2s.secure_auth)");
        return;
    }
    start_dialback(c);
}

static void on_features(struct s2s_conn *c, const struct xml_event *ev)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    struct xml_node *n = s2s_tree(c, ev);
    if (!n) {
        fe_stream_error(&c->fe, "bad-format");
        return;
    }
    bool tls = c->fe.flags & FE_F_TLS;
    if (!tls && xml_node_child(n, "starttls", NS_TLS) && t->client_tls) {
        fe_puts(&c->fe, "<starttls xmlns='" NS_TLS "'/>");
        c->phase = OUT_STARTTLS;
        return;
    }
    if (!tls && t->fe.cfg->s2s.require_encryption) {
        refuse(c, "offers no TLS");
        return;
    }
    if (c->fe.flags & S2S_F_SASL_OK)
        return; /* the features after SASL's restart: nothing more to negotiate */
    if (t->fe.cfg->s2s.bidi && bidi_offered(n) && !(c->fe.flags & S2S_F_BIDI)) {
        struct buf b = {0};
        if (bidi_request(&b) == 0) {
            fe_write(&c->fe, buf_data(&b), buf_used(&b));
            c->fe.flags |= S2S_F_BIDI;
            authz_set_bidi(&c->authz);
        }
        buf_free(&b);
    }
    if (c->dom)
        send_verifies(c);
    authenticate(c, n);
}

static void on_sasl(struct s2s_conn *c, const struct xml_event *ev)
{
    struct xml_node *n = s2s_tree(c, ev);
    enum sasl_cond cond = SASL_COND_NONE;
    enum sasl_ev k = n ? external_client_answer(n, &cond) : 0;
    if (k == SASL_EV_SUCCESS) {
        LOG_INFO("s2s: authenticated to %s with our certificate (SASL EXTERNAL)", c->remote);
        c->fe.flags |= S2S_F_SASL_OK;
        fe_restart(&c->fe);
    } else if (k == SASL_EV_CHALLENGE) {
        struct buf b = {0};
        external_client_abort(&b);
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
        buf_free(&b);
    } else {
        /* XEP-0178 step 11b: dialback may follow on the same stream. */
        if (s2s_thread(&c->fe)->fe.cfg->s2s.secure_auth)
            refuse(c, "SASL EXTERNAL failed (s2s.secure_auth)");
        else
            start_dialback(c);
    }
}

void out_element(struct s2s_conn *c, const struct xml_event *ev)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    if (str_is(ev->ns, NS_STREAM) && str_is(ev->name, "features")) {
        on_features(c, ev);
    } else if (str_is(ev->ns, NS_TLS) && c->phase == OUT_STARTTLS) {
        if (!str_is(ev->name, "proceed")) {
            refuse(c, "STARTTLS failed");
            return;
        }
        if (fe_start_tls_client(&c->fe, t->client_tls, c->remote) < 0) {
            fe_close(&c->fe);
            return;
        }
        c->fe.state = FE_TLS;
    } else if (str_is(ev->ns, NS_SASL) && c->phase == OUT_SASL) {
        on_sasl(c, ev);
    } else if (str_is(ev->ns, DIALBACK_NS)) {
        s2s_dialback_recv(c, ev);
        retire(c);
    } else if (c->db_ready && authz_valid(&c->authz, AUTHZ_OUT) && (c->fe.flags & S2S_F_BIDI)) {
        in_stanza(c, ev); /* the peer's stanzas on our bidirectional stream */
    } else {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
    }
}

void out_dialback(struct s2s_conn *c, enum dialback_ev k, const struct dialback_event *ev)
{
    if (k == DIALBACK_EV_ALLOWED_OUT) {
        LOG_INFO("s2s: %s accepted us as %s (dialback)", ev->target, ev->sender);
        if (c->dom)
            dom_ready(c);
        return;
    }
    LOG_INFO("s2s: %s refused us as %s (dialback: %s)", ev->target, ev->sender,
             dialback_cond_name(ev->peer_cond));
    if (c->dom) {
        struct s2s_domain *d = c->dom;
        bounce_queue(s2s_thread(&c->fe), d, dialback_cond_name(ev->bounce));
        refuse(c, "dialback refused");
    }
}

void out_closing(struct s2s_conn *c)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    if (c->db_ready) {
        /* Our <db:verify/>s on it fail; the inbound streams waiting for them hear so. */
        struct dialback_event de;
        enum dialback_ev k;
        while ((k = dialback_drain(&c->db, &de)) != DIALBACK_EV_NONE)
            if (k == DIALBACK_EV_VERIFIED)
                in_verified(t, de.id, de.sender, de.target, de.result, de.cond);
    }
    out_detach(c);
}

void out_detach(struct s2s_conn *c)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    struct s2s_domain *d = c->dom;
    if (!d || d->conn != c)
        return;
    d->conn = NULL;
    c->dom = NULL;
    d->can_verify = false;
    if (d->state == D_READY) {
        d->state = D_IDLE;
        if (d->qn || d->verifies)
            dom_start(t, d);
        else
            dom_maybe_forget(t, d);
        return;
    }
    d->timed_out |= c->timed_out;
    connect_next(t, d);
}

void out_tick(struct s2s_conn *c)
{
    struct fe_conn *f = &c->fe;
    const struct config *cfg = f->t->cfg;
    retire(c); /* its last <db:verify/> may have expired */
    if (f->state == FE_CLOSING)
        return;
    if (f->deadline && f->t->now >= f->deadline) {
        c->timed_out = true;
        if (c->phase == OUT_CONNECTING)
            fe_close(f);
        else
            fe_stream_error(f, "connection-timeout");
        return;
    }
    uint32_t last = f->last_rx > f->last_tx ? f->last_rx : f->last_tx;
    if (c->phase == OUT_READY && f->t->now - last >= cfg->s2s.idle_timeout &&
        !(c->db_ready && dialback_deadline(&c->db)))
        fe_stream_close(f);
}

void out_wake(struct s2s_thread *t)
{
    uint64_t now = fe_now_us();
    for (uint32_t i = 0; i <= t->domains_mask; i++)
        for (struct s2s_domain *d = t->domains[i], *next; d; d = next) {
            next = d->next;
            if (d->state != D_IDLE)
                continue;
            if (d->retry_at > now && (d->qn || d->verifies)) {
                fe_wake_at(&t->fe, d->retry_at);
            } else if (d->qn || d->verifies) {
                d->retry_at = 0;
                dom_start(t, d);
            } else {
                dom_maybe_forget(t, d);
            }
        }
}
