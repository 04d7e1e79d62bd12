/*
 * route.c: c2s's side of the rings. Outbound, a stanza is stamped and copied once, from
 * the receive buffer into the ring of the shard that owns its destination; inbound,
 * frames from shards are written to the connections they name.
 *
 * Stamping (RFC 6120 §8.1.2.1): the client's own `from`, if any, is cut out and
 * ` from='<full JID>'` goes right after the element name, so no client can speak for
 * another. A stanza using prefixes bound on the client's stream header gets the
 * declarations of those it uses (never of one it declares itself: that would be a
 * duplicate attribute), so that it stands alone once it leaves this stream.
 *
 * Back-pressure: when the shard's ring is full, the stamped frame waits in the
 * connection (held), the connection stops reading, and the thread's bell wakes us once
 * the shard has made room (ring_wait_prepare). Session frames (bind, unbind), which
 * cannot wait on a socket, queue in the thread's per-shard backlog instead.
 */
#include "c2s/c2s.h"
#include "common/core/ctl.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"
#include "shm/port.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const stream_errors[] = {
    [PROTO_SE_CONFLICT] = "conflict",
    [PROTO_SE_SYSTEM_SHUTDOWN] = "system-shutdown",
    [PROTO_SE_POLICY_VIOLATION] = "policy-violation",
    [PROTO_SE_RESET] = "reset",
};

static unsigned shard_of(const struct c2s_thread *t, uint64_t key)
{
    return (unsigned)(key % t->nshards);
}

/* <priority/> of an available presence (RFC 6121 §4.7.2.3), clamped; 0 when absent. */
static int8_t presence_priority(struct conn *c, const struct xml_event *ev)
{
    int8_t prio = 0;
    if (!memmem(ev->raw.p, ev->raw.len, "priority", 8))
        return 0;
    struct xml_node *p = xml_tree_parse(&c->xp, ev->raw.p, ev->raw.len, &c->t->arena, c->t->scratch,
                                        sizeof c->t->scratch);
    struct xml_node *n = p ? xml_node_child(p, "priority", XML_NS_CLIENT) : NULL;
    const char *txt = n ? xml_node_text(n, &c->t->arena) : NULL;
    if (txt) {
        long v = strtol(txt, NULL, 10);
        prio = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    arena_reset(&c->t->arena);
    return prio;
}

/* Asks the shard to ring our bell once the ring has room; when it has room already no
 * bell will come, so the loop resumes at once. */
static void wait_for_room(struct c2s_thread *t, unsigned shard)
{
    if (ring_wait_prepare(&t->to_shard[shard]) == 0)
        t->resume_now = true;
}

static void pause_conn(struct conn *c, unsigned shard)
{
    struct c2s_thread *t = c->t;
    c->held_shard = (uint16_t)shard;
    c->flags |= CONN_F_PAUSED;
    conn_paused_add(&t->paused, c);
    route_flush(t); /* ring_wait_prepare() wants everything published */
    wait_for_room(t, shard);
}

void route_stanza(struct conn *c, const struct xml_event *ev, uint8_t kind, uint8_t type)
{
    struct c2s_thread *t = c->t;
    const char *domain = t->cfg->domain;
    size_t dlen = strlen(domain);
    struct xml_str to = ev->attr[XML_ATTR_TO];
    char tobuf[JID_BUF];
    struct jid j = {0};
    uint8_t flags = 0;

    if (!to.p && kind == PROTO_MESSAGE) {
        /* RFC 6120 §10.3.1: a message without `to` is for the sender's bare JID. */
        j.str = c->jid;
        j.len = c->bare_len;
        j.local_len = (uint16_t)strlen(c->user);
        j.domain_off = (uint16_t)(j.local_len + 1);
        j.domain_len = (uint16_t)(c->bare_len - j.domain_off);
        j.res_off = j.len;
        flags |= PROTO_STANZA_LOCAL;
    } else if (to.p) {
        if (jid_parse(&j, to.p, to.len, tobuf, sizeof tobuf) < 0) {
            stream_stanza_error(c, ev, "modify", "jid-malformed");
            return;
        }
        bool local = j.domain_len == dlen && memcmp(j.str + j.domain_off, domain, dlen) == 0;
        if (local)
            flags |= PROTO_STANZA_LOCAL;
        if (local && !j.local_len && !j.res_len)
            flags |= PROTO_STANZA_TO_SERVER;
        else if (kind == PROTO_IQ && jid_bare_len(&j) == c->bare_len &&
                 !memcmp(j.str, c->jid, c->bare_len) && !j.res_len)
            flags |= PROTO_STANZA_TO_SERVER; /* the account's own bare JID */

    } else {
        flags |= PROTO_STANZA_TO_SERVER | PROTO_STANZA_LOCAL;
    }

    int8_t prio = 0;
    if (kind == PROTO_PRESENCE && !to.p) {
        if (type == PROTO_PRES_AVAILABLE)
            prio = presence_priority(c, ev);
        c->priority = prio;
    }

    /* The stamped stanza: name, our `from`, the stream's prefix declarations when the
     * stanza needs them, then the rest without the client's own `from`. */
    uint32_t name_end = 1 + ev->name.len;
    uint32_t cut_off = ev->attr_raw[XML_ATTR_FROM].off, cut_len = ev->attr_raw[XML_ATTR_FROM].len;
    char decls[1024];
    size_t dl = (ev->flags & XML_F_STREAM_BIND)
                    ? xml_stream_decls(&c->xp, ev->stream_binds, decls, sizeof decls)
                    : 0;
    if (dl > sizeof decls) {
        stream_stanza_error(c, ev, "modify", "policy-violation");
        return;
    }
    /* Subscription requests and answers carry the account's bare JID (RFC 6121 §3.1.2):
     * ` from='bare` plus the closing quote. */
    bool bare_from = kind == PROTO_PRESENCE && type >= PROTO_PRES_SUBSCRIBE &&
                     type <= PROTO_PRES_UNSUBSCRIBED;
    size_t stamp_len = bare_from ? c->from_bare_len + 1u : c->from_attr_len;
    size_t slen = ev->raw.len - cut_len + stamp_len + dl;
    size_t tolen = j.str ? j.len : 0;
    size_t plen = sizeof(struct proto_stanza) + c->jid_len + tolen + slen;

    struct buf *held = &c->held;
    unsigned shard = shard_of(t, c->key);
    struct ring *r = &t->to_shard[shard];
    void *dst = NULL;
    int err = (t->router_down || !backlog_empty(&t->backlog[shard]))
                  ? -ENOBUFS
                  : ring_reserve(r, (uint32_t)plen, PROTO_STANZA, 0, &dst);
    if (err == -EMSGSIZE) {
        stream_stanza_error(c, ev, "modify", "policy-violation");
        return;
    }
    if (err < 0) {
        /* Full (or the router is away): the frame waits in the connection. */
        buf_free(held);
        if (buf_reserve(held, plen) < 0) {
            stream_error(c, "resource-constraint");
            return;
        }
        dst = buf_end(held);
        held->len += (uint32_t)plen;
    }

    struct proto_stanza *h = dst;
    memset(h, 0, sizeof *h);
    h->conn = conn_id(c);
    h->key = c->key;
    h->to_key = j.str ? jid_hash(j.str, jid_bare_len(&j)) : 0;
    h->kind = kind;
    h->type = type;
    h->flags = flags;
    h->priority = prio;
    h->from_len = c->jid_len;
    h->from_bare_len = c->bare_len;
    h->to_len = (uint16_t)tolen;
    h->to_bare_len = j.str ? (uint16_t)jid_bare_len(&j) : 0;
    h->to_domain_off = j.str ? j.domain_off : 0;
    h->to_domain_len = j.str ? j.domain_len : 0;
    h->head_len = ev->head_len - cut_len + (uint32_t)stamp_len + (uint32_t)dl;
    h->stanza_len = (uint32_t)slen;
    char *o = (char *)(h + 1);
    memcpy(o, c->jid, c->jid_len);
    o += c->jid_len;
    if (tolen) {
        memcpy(o, j.str, tolen);
        o += tolen;
    }
    char *stanza = o;
    memcpy(o, ev->raw.p, name_end);
    o += name_end;
    if (bare_from) {
        memcpy(o, c->from_attr, c->from_bare_len);
        o[c->from_bare_len] = '\'';
    } else {
        memcpy(o, c->from_attr, c->from_attr_len);
    }
    o += stamp_len;
    memcpy(o, decls, dl);
    o += dl;
    if (cut_len) {
        memcpy(o, ev->raw.p + name_end, cut_off - name_end);
        o += cut_off - name_end;
        memcpy(o, ev->raw.p + cut_off + cut_len, ev->raw.len - cut_off - cut_len);
    } else {
        memcpy(o, ev->raw.p + name_end, ev->raw.len - name_end);
    }

    if (kind == PROTO_PRESENCE && !to.p) {
        /* Kept to re-register the session if the router restarts. */
        free(c->presence);
        c->presence = NULL;
        c->presence_len = 0;
        if (type == PROTO_PRES_AVAILABLE) {
            c->flags |= CONN_F_AVAILABLE;
            if ((c->presence = malloc(slen))) {
                memcpy(c->presence, stanza, slen);
                c->presence_len = (uint32_t)slen;
            }
        } else if (type == PROTO_PRES_UNAVAILABLE) {
            c->flags &= (uint16_t)~CONN_F_AVAILABLE;
        }
    }
    if (err < 0) {
        pause_conn(c, shard);
        return;
    }
    ring_commit(r);
    t->dirty[shard] = true;
}

/* A session frame: written now, or queued in order behind others for that shard. */
static int session_frame(struct c2s_thread *t, uint16_t kind, const struct proto_session *s,
                         const char *jid, const char *presence, const char *directed)
{
    unsigned shard = shard_of(t, s->key);
    uint32_t len = (uint32_t)(sizeof *s + s->jid_len + s->presence_len + s->directed_len);
    char *tmp = malloc(len);
    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, s, sizeof *s);
    memcpy(tmp + sizeof *s, jid, s->jid_len);
    if (s->presence_len)
        memcpy(tmp + sizeof *s + s->jid_len, presence, s->presence_len);
    if (s->directed_len)
        memcpy(tmp + sizeof *s + s->jid_len + s->presence_len, directed, s->directed_len);
    int err = backlog_push(&t->backlog[shard], kind, tmp, len);
    free(tmp);
    if (err)
        return err;
    if (!t->router_down && backlog_flush(&t->backlog[shard], &t->to_shard[shard]))
        t->dirty[shard] = true;
    return 0;
}

int route_bind(struct conn *c, const char *jid, size_t len, size_t bare_len, bool rereg)
{
    /* ` from='...'` for every stanza of the session, escaped once here. */
    if (!rereg) {
        struct buf b = {0};
        if (xmlw_attr(&b, "from", jid, len) < 0 || buf_append(&b, "", 1) < 0) {
            buf_free(&b);
            return -ENOMEM;
        }
        /* The buffer's allocation becomes the string, cut to size: every session keeps
         * it, and the buffer reserved 256 bytes. */
        char *attr = realloc(b.p, b.len);
        free(c->from_attr);
        c->from_attr = attr ? attr : b.p;
        c->from_attr_len = (uint16_t)(b.len - 1);
        /* The bare JID (no quote can occur in it) is the same text up to the '/'. */
        c->from_bare_len = (uint16_t)(7 + bare_len);
    }
    struct proto_session s = {
        .conn = conn_id(c),
        .key = c->key,
        .jid_len = (uint16_t)len,
        .bare_len = (uint16_t)bare_len,
    };
    const char *presence = NULL;
    if (rereg) {
        s.flags = PROTO_SESSION_REREGISTER | c->router_flags;
        s.directed_len = c->directed_len;
        if (c->flags & CONN_F_AVAILABLE) {
            s.priority = c->priority;
            s.presence_len = c->presence_len;
            presence = c->presence;
        }
    }
    return session_frame(c->t, PROTO_BIND, &s, jid, presence, c->directed);
}

void route_unbind(struct conn *c)
{
    struct proto_session s = {
        .conn = conn_id(c),
        .key = c->key,
        .jid_len = c->jid_len,
        .bare_len = c->bare_len,
    };
    if (session_frame(c->t, PROTO_UNBIND, &s, c->jid, NULL, NULL) < 0)
        LOG_ERROR("conn %u: out of memory reporting its end to the router", c->slot);
}

bool route_pending(struct c2s_thread *t)
{
    if (t->router_down)
        return false;
    for (unsigned s = 0; s < t->nshards; s++)
        if (!t->broken[s] && !ring_empty(&t->from_shard[s]))
            return true;
    return false;
}

/* Kept to the byte, and only when there is something: most sessions have no list. */
static void keep_state(struct conn *c, const struct decode_session_state *ps)
{
    char *d = NULL;
    if (ps->h.directed_len) {
        if (!(d = malloc(ps->h.directed_len))) {
            LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory keeping its session state", c->slot);
            return;
        }
        memcpy(d, ps->directed, ps->h.directed_len);
    }
    free(c->directed);
    c->directed = d;
    c->directed_len = ps->h.directed_len;
    c->router_flags = ps->h.flags;
}

/* Writes a delivery to its recipients. Every length in it was checked by decode_deliver();
 * each recipient's entry is copied out and checked before use (decode_rcpt()). */
static int deliver(struct c2s_thread *t, const struct decode_deliver *d)
{
    for (uint32_t i = 0; i < d->h.nrcpt; i++) {
        struct proto_rcpt rc;
        if (decode_rcpt(d, i, &rc) < 0)
            return -EBADMSG;
        struct conn *c = conn_by_id(t, rc.conn);
        if (!c || !(c->flags & CONN_F_BOUND))
            continue;
        if (!rc.to_len) {
            conn_write(c, d->stanza, d->h.stanza_len);
            continue;
        }
        /* One write, so TLS makes one record of it. */
        struct buf *b = &t->tmp;
        b->off = b->len = 0;
        if (buf_reserve(b, d->h.stanza_len + rc.to_len) < 0)
            continue;
        buf_append(b, d->stanza, d->h.to_at);
        buf_append(b, d->attrs + rc.to_off, rc.to_len);
        buf_append(b, d->stanza + d->h.to_at, d->h.stanza_len - d->h.to_at);
        conn_write(c, buf_data(b), buf_used(b));
    }
    return 0;
}

static void on_frame(struct c2s_thread *t, const struct ring_frame *f)
{
    struct decode_deliver d;
    struct decode_bind_result br;
    struct decode_session_state ss;
    struct proto_close cl;
    struct conn *c;

    switch (f->kind) {
    case PROTO_DELIVER:
        if (decode_deliver(f->payload, f->len, &d) == 0 && deliver(t, &d) == 0)
            return;
        break;
    case PROTO_BIND_RESULT:
        if (decode_bind_result(f->payload, f->len, &br) == 0) {
            if ((c = conn_by_id(t, br.h.conn)))
                bind_result(c, br.h.result, br.jid, br.h.jid_len);
            return;
        }
        break;
    case PROTO_SESSION_STATE:
        if (decode_session_state(f->payload, f->len, &ss) == 0) {
            if ((c = conn_by_id(t, ss.h.conn)) && (c->flags & CONN_F_BOUND))
                keep_state(c, &ss);
            return;
        }
        break;
    case PROTO_CLOSE:
        if (decode_close(f->payload, f->len, &cl) == 0) {
            if ((c = conn_by_id(t, cl.conn)))
                stream_error(c, stream_errors[cl.condition]);
            return;
        }
        break;
    }
    LOG_RL(LOG_LEVEL_ERROR, "c2s thread %u: malformed frame of kind %u from the router", t->idx,
           f->kind);
}

unsigned route_drain(struct c2s_thread *t)
{
    unsigned handled = 0;
    if (t->router_down)
        return 0;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct ring *r = &t->from_shard[s];
        struct ring_frame f;
        unsigned n = 0;
        int rc = 0;
        if (t->broken[s])
            continue;
        /* A bounded batch per ring keeps one busy shard from starving the others. */
        while (n < 256 && (rc = port_recv(r, &t->rx[s], &f)) == 1) {
            on_frame(t, &f);
            n++;
        }
        if (ring_release(r))
            bell_ring(r->peer);
        if (rc < 0) {
            /* The router process is broken; the supervisor replaces it and we reset. */
            LOG_ERROR("c2s thread %u: ring from shard %u is corrupt", t->idx, s);
            t->broken[s] = true;
            ctl_tell(c2s_ctl_fd, CTL_PEER_BROKEN, CTL_ROLE_ROUTER);
        }
        handled += n;
    }
    return handled;
}

void route_flush(struct c2s_thread *t)
{
    if (t->router_down)
        return;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct ring *r = &t->to_shard[s];
        if (!backlog_empty(&t->backlog[s]) && backlog_flush(&t->backlog[s], r))
            t->dirty[s] = true;
        if (t->dirty[s]) {
            t->dirty[s] = false;
            if (ring_publish(r))
                bell_ring(r->peer);
        }
        if (!backlog_empty(&t->backlog[s]))
            wait_for_room(t, s);
    }
}

void route_resume(struct c2s_thread *t)
{
    t->resume_now = false;
    if (t->router_down)
        return;
    /* One pass over the connections paused now. Each is taken off this list before it
     * resumes: one paused again inside stream_input() goes on t->paused anew, and one
     * that closes meanwhile leaves whichever list it is on (conn_close). */
    struct conn *list = t->paused, *still = NULL;
    t->paused = NULL;
    if (list)
        list->pprev_paused = &list;
    while (list) {
        struct conn *c = list;
        conn_paused_del(c);
        struct ring *r = &t->to_shard[c->held_shard];
        void *dst;
        if (!backlog_empty(&t->backlog[c->held_shard]) ||
            ring_reserve(r, buf_used(&c->held), PROTO_STANZA, 0, &dst) < 0) {
            conn_paused_add(&still, c);
            continue;
        }
        memcpy(dst, buf_data(&c->held), buf_used(&c->held));
        ring_commit(r);
        t->dirty[c->held_shard] = true;
        buf_free(&c->held);
        c->flags &= (uint16_t)~CONN_F_PAUSED;
        stream_input(c, NULL, 0); /* what arrived while it waited; reading resumes */
    }
    while (still) {
        struct conn *c = still;
        conn_paused_del(c);
        conn_paused_add(&t->paused, c);
    }
    route_flush(t);
    for (struct conn *c = t->paused; c; c = c->next_paused)
        wait_for_room(t, c->held_shard);
}

/* A stanza frame the dead router had not finished: kept to hand to the next one. Frames
 * of sessions (bind, unbind) are not: re-registration replaces them. */
static int keep_unfinished(void *arg, const struct ring_frame *f)
{
    struct buf *b = arg;
    uint32_t len = f->len;
    if (f->kind != PROTO_STANZA || (f->flags & (PORT_F_MORE | PORT_F_CONT)) ||
        len < sizeof(struct proto_stanza))
        return 0;
    if (buf_append(b, &len, sizeof len) < 0 || buf_append(b, f->payload, len) < 0)
        return -ENOMEM;
    return 0;
}

void route_router_down(struct c2s_thread *t)
{
    /* What the dead router published is whole: its clients get it. */
    route_drain(t);
    t->router_down = true;
    for (unsigned s = 0; s < t->nshards; s++) {
        /* The router gave back only what it had finished: the rest goes to the next one
         * (route_reregister()). */
        int rc = ring_unreleased(&t->to_shard[s], keep_unfinished, &t->replay[s]);
        if (rc < 0)
            LOG_ERROR("c2s thread %u: stanzas for shard %u are lost: %s", t->idx, s,
                      strerror(-rc));
        ring_reset(&t->to_shard[s]);
        ring_reset(&t->from_shard[s]);
        backlog_clear(&t->backlog[s]);
        port_rx_reset(&t->rx[s]);
        t->dirty[s] = false;
        t->broken[s] = false;
    }
}

void route_reregister(struct c2s_thread *t)
{
    for (uint32_t i = 0; i < t->nslots; i++) {
        struct conn *c = conn_slot(t, i);
        if (c->state == CONN_FREE || c->state == CONN_CLOSING)
            continue;
        if (c->flags & CONN_F_BOUND)
            route_bind(c, c->jid, c->jid_len, c->bare_len, true);
        else if (c->state == CONN_BINDING)
            route_bind(c, c->jid, c->jid_len, c->bare_len, false); /* its request was lost */
    }
    /* Then what the old router had not finished, behind the sessions it needs and ahead of
     * everything held since. A stanza may so be handled twice; none is lost. */
    for (unsigned s = 0; s < t->nshards; s++) {
        struct buf *b = &t->replay[s];
        const char *p = buf_data(b), *end = p + buf_used(b);
        uint32_t len;
        uint64_t conn;
        for (; end - p >= (ptrdiff_t)sizeof len; p += sizeof len + len) {
            memcpy(&len, p, sizeof len);
            memcpy(&conn, p + sizeof len, sizeof conn); /* the first field of proto_stanza */
            struct conn *c = conn_by_id(t, conn);
            if (c && (c->flags & CONN_F_BOUND) &&
                backlog_push(&t->backlog[s], PROTO_STANZA, p + sizeof len, len) < 0)
                LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory: a stanza is lost", c->slot);
        }
        buf_free(b);
    }
}
