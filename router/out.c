/*
 * out.c: frames from a shard to front-end threads and to other shards.
 *
 * Delivery is deduplicated per destination thread: a stanza for n connections spread
 * over k threads becomes k PROTO_DELIVER frames, each listing its thread's connections
 * and, for a broadcast, each recipient's `to` (filled in by c2s), not n frames. A ring
 * that is full keeps later frames in order in a backlog; the shard stops reading its
 * inbound rings while backlogs are large, which pushes back on the front ends in turn.
 *
 * In a cluster, what goes to a connection of another node (PROTO_CONN_NODE) crosses that
 * node's link: a delivery once per node, listing every recipient there (the node splits
 * it per thread), and a stanza for a remote domain goes to the node that owns the
 * domain's streams. Single-node paths only pay conn_here(): an and and a compare.
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A frame being written: reserved in its ring, or a temporary buffer that goes out with
 * port_send() when the ring is full, its backlog not empty, or the frame larger than a
 * ring frame (then in pieces). */
struct slot {
    int node; /* >= 0: a frame for a connection of that node, built in dst */
    uint64_t conn;
    struct ring *ring;
    struct backlog *backlog;
    bool *dirty;
    uint16_t kind;
    uint32_t len;
    void *dst;
    bool queued;
};

static void *slot_open(struct shard *s, struct slot *o, struct ring *r, struct backlog *q,
                       bool *dirty, uint16_t kind, uint32_t len)
{
    o->node = -1;
    o->ring = r;
    o->backlog = q;
    o->dirty = dirty;
    o->kind = kind;
    o->len = len;
    o->queued = false;
    o->dst = NULL;
    if (len > ring_max_payload(r) || !backlog_empty(q) ||
        ring_reserve(r, len, kind, 0, &o->dst) < 0) {
        o->queued = true;
        if (!(o->dst = malloc(len)))
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame is lost", s->idx);
    }
    return o->dst;
}

/* false when the frame is lost (out of memory, said in the log). */
static bool slot_close(struct shard *s, struct slot *o)
{
    if (!o->dst)
        return false;
    if (o->node >= 0) {
        node_send(s, (unsigned)o->node, node_peer_shard(s, (unsigned)o->node), o->kind, o->dst,
                  o->len, NULL, 0);
        free(o->dst);
        return true;
    }
    *o->dirty = true;
    s->stats.frames_out++;
    if (!o->queued) {
        ring_commit(o->ring);
        return true;
    }
    /* What waits in the backlog keeps the current work's ticket until it is out. */
    struct ticket *t = ticket_hold(s->cur);
    int rc = port_send(o->ring, o->backlog, o->kind, o->dst, o->len, t);
    if (rc != 1)
        ticket_unhold(t); /* not waiting after all */
    if (rc < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a frame is lost: %s", s->idx, strerror(-rc));
    free(o->dst);
    return rc >= 0;
}

static void *fe_open(struct shard *s, struct slot *o, unsigned fe, uint16_t kind, uint32_t len)
{
    if (fe >= s->nfe) { /* an id no front end of this node made */
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a frame for front-end thread %u, which is not",
               s->idx, fe);
        o->dst = NULL;
        return NULL;
    }
    return slot_open(s, o, &s->to_fe[fe], &s->backlog[fe], &s->dirty[fe], kind, len);
}

/* A frame for a connection, of this node or another. */
static void *conn_open(struct shard *s, struct slot *o, uint64_t conn, uint16_t kind, uint32_t len)
{
    if (conn_here(s, conn))
        return fe_open(s, o, shard_fe(s, conn), kind, len);
    o->node = (int)PROTO_CONN_NODE(conn);
    o->kind = kind;
    o->len = len;
    if (!(o->dst = malloc(len)))
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame is lost", s->idx);
    return o->dst;
}

/* The node that owns a remote domain's streams, when it is not this one (or -1). */
static int domain_elsewhere(const struct shard *s, const char *domain, size_t dlen)
{
    if (!s->view)
        return -1;
    unsigned n = home_node(s->view, jid_hash(domain, dlen));
    return n == s->node ? -1 : (int)n;
}

bool out_fe_frame(struct shard *s, unsigned fe, uint16_t kind, const void *a, uint32_t alen,
                  const void *b, uint32_t blen)
{
    struct slot o;
    char *d = fe_open(s, &o, fe, kind, alen + blen);
    if (d) {
        memcpy(d, a, alen);
        if (blen)
            memcpy(d + alen, b, blen);
    }
    return slot_close(s, &o);
}

static unsigned s2s_thread_of(const struct shard *s, const char *domain, size_t dlen)
{
    return topo_fe_index(s->cfg, PROTO_FE_S2S, topo_s2s_of(s->cfg, jid_hash(domain, dlen)));
}

void out_remote(struct shard *s, const struct stanza *st)
{
    const struct proto_stanza *h = st->h;
    uint32_t len = (uint32_t)(sizeof *h + st->from_len + st->to_len + st->raw_len);
    char *d = malloc(len);
    if (!d) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a stanza for s2s is lost", s->idx);
        return;
    }
    /* The checked header, then the rest as it came (one frame: from, to, stanza). */
    memcpy(d, h, sizeof *h);
    memcpy(d + sizeof *h, st->from, st->from_len);
    memcpy(d + sizeof *h + st->from_len, st->to, st->to_len);
    memcpy(d + sizeof *h + st->from_len + st->to_len, st->raw, st->raw_len);
    int owner = domain_elsewhere(s, st->to + h->to_domain_off, h->to_domain_len);
    if (owner >= 0) {
        node_send(s, (unsigned)owner, node_peer_shard(s, (unsigned)owner), PROTO_REMOTE, d, len,
                  NULL, 0);
        free(d);
        return;
    }
    rlog_send(s, s2s_thread_of(s, st->to + h->to_domain_off, h->to_domain_len), PROTO_REMOTE, d,
              len);
}

void out_remote_fanout(struct shard *s, const char *domain, size_t dlen, const char *stanza,
                       size_t len, uint32_t to_at, const char *list, size_t list_len,
                       uint32_t count, uint16_t flags)
{
    struct proto_remote_fanout h = {
        .stanza_len = (uint32_t)len,
        .to_at = to_at,
        .nrcpt = count,
        .domain_len = (uint16_t)dlen,
        .flags = flags,
    };
    uint32_t total = (uint32_t)(sizeof h + dlen + len + list_len);
    char *d = malloc(total);
    if (!d) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: presence for s2s is lost", s->idx);
        return;
    }
    memcpy(d, &h, sizeof h);
    memcpy(d + sizeof h, domain, dlen);
    memcpy(d + sizeof h + dlen, stanza, len);
    memcpy(d + sizeof h + dlen + len, list, list_len);
    int owner = domain_elsewhere(s, domain, dlen);
    if (owner >= 0) {
        node_send(s, (unsigned)owner, node_peer_shard(s, (unsigned)owner), PROTO_REMOTE_FANOUT,
                  d, total, NULL, 0);
        free(d);
        return;
    }
    rlog_send(s, s2s_thread_of(s, domain, dlen), PROTO_REMOTE_FANOUT, d, total);
    s->stats.remote_fanout_frames++;
    s->stats.remote_fanout_contacts += count;
}

void out_to_shard(struct shard *s, unsigned dst, uint16_t kind, const void *payload, uint32_t len)
{
    if (dst >= s->nshards) { /* another node's (shard_of()): it finds the shard */
        unsigned node = dst - s->nshards;
        node_send(s, node, node_peer_shard(s, node), kind, payload, len, NULL, 0);
        return;
    }
    struct ticket *t = ticket_hold(s->cur);
    struct slot o;
    char *d = slot_open(s, &o, &s->to_shard[dst], &s->shard_backlog[dst], &s->shard_dirty[dst],
                        kind, (uint32_t)sizeof t + len);
    if (d) {
        memcpy(d, &t, sizeof t); /* the envelope: shard_drain_shards() takes it off */
        memcpy(d + sizeof t, payload, len);
    }
    if (!slot_close(s, &o))
        ticket_unhold(t);
}

/* One frame for thread fe: the recipients of rcpt[first..n) that live there, as many as
 * fit in `room` payload bytes (at least one). Returns the index after the last one taken. */
static unsigned deliver_batch(struct shard *s, unsigned fe, const struct out_rcpt *rcpt,
                              unsigned first, unsigned n, size_t room, const char *stanza,
                              size_t len, uint32_t to_at)
{
    unsigned k = 0, end = first;
    size_t attrs = 0, used = sizeof(struct proto_deliver) + len;
    for (; end < n; end++) {
        if (shard_fe(s, rcpt[end].conn) != fe || !conn_here(s, rcpt[end].conn))
            continue;
        size_t cost = sizeof(struct proto_rcpt) + rcpt[end].to_len;
        if (k && used + cost > room)
            break;
        used += cost;
        attrs += rcpt[end].to_len;
        k++;
    }
    struct slot o;
    uint32_t plen = (uint32_t)(sizeof(struct proto_deliver) + k * sizeof(struct proto_rcpt) + len +
                               attrs);
    struct proto_deliver *d = fe_open(s, &o, fe, PROTO_DELIVER, plen);
    if (d) {
        d->nrcpt = k;
        d->stanza_len = (uint32_t)len;
        d->to_at = to_at;
        d->attr_len = (uint32_t)attrs;
        struct proto_rcpt *r = (struct proto_rcpt *)(d + 1);
        char *st = (char *)(r + k), *at = st + len;
        memcpy(st, stanza, len);
        uint32_t aoff = 0;
        for (unsigned i = first, m = 0; i < end; i++) {
            if (shard_fe(s, rcpt[i].conn) != fe || !conn_here(s, rcpt[i].conn))
                continue;
            r[m].conn = rcpt[i].conn;
            r[m].to_off = aoff;
            r[m].to_len = rcpt[i].to_len;
            if (rcpt[i].to_len)
                memcpy(at + aoff, rcpt[i].to_attr, rcpt[i].to_len);
            aoff += rcpt[i].to_len;
            m++;
        }
    }
    slot_close(s, &o);
    s->stats.deliveries += k;
    s->stats.deliver_frames++;
    return end;
}

/* The recipients of other nodes: one PROTO_DELIVER per node, listing all of its own. */
static void deliver_remote(struct shard *s, const struct out_rcpt *rcpt, unsigned n,
                           const char *stanza, size_t len, uint32_t to_at)
{
    uint64_t nodes = 0;
    for (unsigned i = 0; i < n; i++)
        if (!conn_here(s, rcpt[i].conn))
            nodes |= 1ull << PROTO_CONN_NODE(rcpt[i].conn);
    while (nodes) {
        unsigned node = (unsigned)__builtin_ctzll(nodes);
        nodes &= nodes - 1;
        uint32_t k = 0, attrs = 0;
        for (unsigned i = 0; i < n; i++)
            if (PROTO_CONN_NODE(rcpt[i].conn) == node) {
                k++;
                attrs += rcpt[i].to_len;
            }
        uint32_t plen = (uint32_t)(sizeof(struct proto_deliver) + k * sizeof(struct proto_rcpt) +
                                   len + attrs);
        struct proto_deliver *d = malloc(plen);
        if (!d) {
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a delivery is lost", s->idx);
            continue;
        }
        *d = (struct proto_deliver){k, (uint32_t)len, to_at, attrs};
        struct proto_rcpt *r = (struct proto_rcpt *)(d + 1);
        char *at = (char *)(r + k) + len;
        memcpy(r + k, stanza, len);
        uint32_t aoff = 0, m = 0;
        for (unsigned i = 0; i < n; i++) {
            if (PROTO_CONN_NODE(rcpt[i].conn) != node)
                continue;
            r[m++] = (struct proto_rcpt){rcpt[i].conn, aoff, rcpt[i].to_len};
            if (rcpt[i].to_len)
                memcpy(at + aoff, rcpt[i].to_attr, rcpt[i].to_len);
            aoff += rcpt[i].to_len;
        }
        node_send(s, node, node_peer_shard(s, node), PROTO_DELIVER, d, plen, NULL, 0);
        free(d);
        s->stats.link_deliver_frames++;
        s->stats.link_deliveries += k;
        s->stats.link_bytes_saved += (uint64_t)(k - 1) * (sizeof(struct link_hdr) +
                                                          sizeof *d + len);
    }
}

void out_deliver_to(struct shard *s, const struct out_rcpt *rcpt, unsigned n, const char *stanza,
                    size_t len, uint32_t to_at)
{
    if (s->cl)
        deliver_remote(s, rcpt, n, stanza, len, to_at);
    /* One frame per destination thread; front-end threads are few, so a pass per thread
     * costs less than sorting. A thread with more recipients than a frame holds gets
     * several frames. */
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        size_t room = ring_max_payload(&s->to_fe[fe]);
        unsigned i = 0;
        while (i < n) {
            /* Another node's connection may map to this thread's index too: it went in
             * its node's list above, and a frame must not start at it (it would list
             * nobody when none of ours follows). */
            while (i < n && (shard_fe(s, rcpt[i].conn) != fe || !conn_here(s, rcpt[i].conn)))
                i++;
            if (i == n)
                break;
            i = deliver_batch(s, fe, rcpt, i, n, room, stanza, len, to_at);
        }
    }
}

void out_push_id(struct shard *s, struct buf *b)
{
    char id[40];
    snprintf(id, sizeof id, "push-%u-%" PRIu64, s->idx, ++s->push_seq);
    xmlw_attr(b, "id", id, strlen(id));
}

void out_list_add(struct out_list *l, uint64_t conn, const char *jid, size_t len)
{
    if (l->n == l->cap) {
        unsigned cap = l->cap ? l->cap * 2 : 16;
        struct out_rcpt *r = realloc(l->r, cap * sizeof *r);
        if (!r)
            return;
        l->r = r;
        size_t *off = realloc(l->off, cap * sizeof *off);
        if (!off)
            return;
        l->off = off;
        l->cap = cap;
    }
    size_t at = buf_used(&l->attrs);
    if (xmlw_attr(&l->attrs, "to", jid, len) < 0)
        return;
    l->off[l->n] = at;
    l->r[l->n] = (struct out_rcpt){conn, NULL, (uint16_t)(buf_used(&l->attrs) - at)};
    l->n++;
}

void out_list_send(struct shard *s, struct out_list *l, const char *stanza, size_t len,
                   uint32_t to_at)
{
    /* The attribute buffer may have moved while it grew: point into it only now. */
    for (unsigned i = 0; i < l->n; i++)
        l->r[i].to_attr = buf_data(&l->attrs) + l->off[i];
    if (l->n)
        out_deliver_to(s, l->r, l->n, stanza, len, to_at);
}

void out_list_free(struct out_list *l)
{
    free(l->r);
    free(l->off);
    buf_free(&l->attrs);
    memset(l, 0, sizeof *l);
}

void out_deliver(struct shard *s, const uint64_t *conns, unsigned n, const char *stanza,
                 size_t len)
{
    /* In batches: no allocation, however many recipients. */
    struct out_rcpt r[64];
    for (unsigned done = 0; done < n;) {
        unsigned k = n - done < 64 ? n - done : 64;
        for (unsigned i = 0; i < k; i++)
            r[i] = (struct out_rcpt){conns[done + i], NULL, 0};
        out_deliver_to(s, r, k, stanza, len, 0);
        done += k;
    }
}

void out_to_available(struct shard *s, const struct user *u, const char *stanza, size_t len)
{
    uint64_t conns[64];
    unsigned n = 0;
    for (const struct session *ss = u->sessions; ss; ss = ss->next) {
        if (!ss->available)
            continue;
        conns[n++] = ss->conn;
        if (n == 64) {
            out_deliver(s, conns, n, stanza, len);
            n = 0;
        }
    }
    if (n)
        out_deliver(s, conns, n, stanza, len);
}

void out_bind_result(struct shard *s, uint64_t conn, int result, const char *jid, size_t len)
{
    struct slot o;
    struct proto_bind_result *b =
        conn_open(s, &o, conn, PROTO_BIND_RESULT, (uint32_t)(sizeof *b + len));
    if (b) {
        memset(b, 0, sizeof *b);
        b->conn = conn;
        b->result = result;
        b->jid_len = (uint16_t)len;
        if (len)
            memcpy(b + 1, jid, len);
    }
    slot_close(s, &o);
}

void out_close(struct shard *s, uint64_t conn, uint8_t condition)
{
    struct slot o;
    struct proto_close *c = conn_open(s, &o, conn, PROTO_CLOSE, (uint32_t)sizeof *c);
    if (c) {
        memset(c, 0, sizeof *c);
        c->conn = conn;
        c->condition = condition;
    }
    slot_close(s, &o);
}

void out_session_state(struct shard *s, const struct session *ss)
{
    uint32_t dlen = ss->directed_bytes;
    struct slot o;
    struct proto_session_state *st =
        conn_open(s, &o, ss->conn, PROTO_SESSION_STATE, (uint32_t)sizeof *st + dlen);
    if (st) {
        memset(st, 0, sizeof *st);
        st->conn = ss->conn;
        st->flags = (uint8_t)((ss->interested ? PROTO_SESSION_ROSTER : 0) |
                              (ss->blocklist_req ? PROTO_SESSION_BLOCKLIST : 0) |
                              (ss->carbons ? PROTO_SESSION_CARBONS : 0));
        st->directed_len = dlen;
        char *p = (char *)(st + 1);
        for (const struct directed *d = ss->directed; d; d = d->next) {
            memcpy(p, &d->len, 2);
            memcpy(p + 2, d->jid, d->len);
            p += 2 + d->len;
        }
    }
    slot_close(s, &o);
}

void out_error_extra(struct shard *s, const struct stanza *st, const char *type,
                     const char *condition, const char *extra)
{
    static const char *const names[] = {"message", "presence", "iq"};
    const struct proto_stanza *h = st->h;
    if (h->flags & ROUTE_GENERATED)
        return; /* nobody to tell: the server made it */
    if ((h->kind == PROTO_MESSAGE && h->type == PROTO_MSG_ERROR) ||
        (h->kind == PROTO_PRESENCE && h->type == PROTO_PRES_ERROR) ||
        (h->kind == PROTO_IQ && h->type >= PROTO_IQ_RESULT))
        return; /* never an error for an error or a result (RFC 6120 §8.3.1) */

    /* The id is in the start tag: read just that much. It goes back decoded and escaped
     * again by xmlw: what the client wrote may use either quote. */
    struct xml_parser p;
    struct xml_event ev;
    char small[128], *id = NULL;
    size_t id_len = 0;
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    if (xml_next(&p, st->raw, st->head_len, &ev) == XML_EV_START) {
        struct xml_attr a;
        for (unsigned i = 0; xml_attr_at(&p, st->raw, i, &a); i++)
            if (!a.ns.len && a.name.len == 2 && !memcmp(a.name.p, "id", 2)) {
                id = a.raw.len <= sizeof small ? small : malloc(a.raw.len);
                if (id)
                    id_len = xml_decode(a.raw.p, a.raw.len, true, id);
                break;
            }
    }
    xml_free(&p);

    struct buf b = {0};
    buf_puts(&b, "<");
    buf_puts(&b, names[h->kind]);
    buf_puts(&b, " type='error'");
    if (id)
        xmlw_attr(&b, "id", id, id_len);
    if (id != small)
        free(id);
    if (st->to_len)
        xmlw_attr(&b, "from", st->to, st->to_len);
    else
        xmlw_attr(&b, "from", s->cfg->domain, strlen(s->cfg->domain));
    xmlw_attr(&b, "to", st->from, st->from_len);
    buf_puts(&b, "><error type='");
    buf_puts(&b, type);
    buf_puts(&b, "'><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
    if (extra)
        buf_puts(&b, extra);
    buf_puts(&b, "</error></");
    buf_puts(&b, names[h->kind]);
    buf_puts(&b, ">");
    if (h->flags & PROTO_STANZA_REMOTE) {
        /* A remote sender hears it through our stream to its server, not the stream
         * its stanza came in on (server streams go one way). */
        const char *from = st->to_len ? st->to : s->cfg->domain;
        size_t flen = st->to_len ? st->to_len : strlen(s->cfg->domain);
        route_generated(s, from, flen, st->to_len ? st->to_bare_len : flen, st->from,
                        st->from_len, st->from_bare_len, h->kind,
                        h->kind == PROTO_MESSAGE ? PROTO_MSG_ERROR
                        : h->kind == PROTO_PRESENCE ? PROTO_PRES_ERROR
                                                    : PROTO_IQ_ERROR,
                        buf_data(&b), buf_used(&b));
    } else {
        out_deliver(s, &h->conn, 1, buf_data(&b), buf_used(&b));
    }
    buf_free(&b);
}

void out_error(struct shard *s, const struct stanza *st, const char *type, const char *condition)
{
    out_error_extra(s, st, type, condition, NULL);
}

static void flush_ring(struct shard *s, struct ring *r, struct backlog *q, bool *dirty)
{
    if (!backlog_empty(q) && backlog_flush(q, r))
        *dirty = true;
    if (*dirty) {
        *dirty = false;
        if (ring_publish(r))
            bell_ring(r->peer);
    }
    /* Room already there means no bell will come: go round again instead. */
    if (!backlog_empty(q) && ring_wait_prepare(r) == 0)
        s->retry_out = true;
}

void out_flush(struct shard *s)
{
    for (unsigned fe = 0; fe < s->nfe; fe++)
        flush_ring(s, &s->to_fe[fe], &s->backlog[fe], &s->dirty[fe]);
    for (unsigned t = 0; t < s->nshards; t++)
        if (t != s->idx)
            flush_ring(s, &s->to_shard[t], &s->shard_backlog[t], &s->shard_dirty[t]);
    if (s->cl)
        flush_ring(s, &s->to_link, &s->link_backlog, &s->link_dirty);
}
