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

/* <priority/> of an available presence (RFC 6121 §4.7.2.3), clamped; 0 when absent. */
static int8_t presence_priority(struct conn *c, const struct xml_event *ev)
{
    int8_t prio = 0;
    if (!memmem(ev->raw.p, ev->raw.len, "priority", 8))
        return 0;
    struct xml_node *p = xml_tree_parse(&c->fe.xp, ev->raw.p, ev->raw.len, &c->fe.t->arena, c->fe.t->scratch,
                                        sizeof c->fe.t->scratch);
    struct xml_node *n = p ? xml_node_child(p, "priority", XML_NS_CLIENT) : NULL;
    const char *txt = n ? xml_node_text(n, &c->fe.t->arena) : NULL;
    if (txt) {
        long v = strtol(txt, NULL, 10);
        prio = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
    }
    arena_reset(&c->fe.t->arena);
    return prio;
}

void route_stanza(struct conn *c, const struct xml_event *ev, uint8_t kind, uint8_t type)
{
    struct c2s_thread *t = conn_thread(c);
    const char *domain = t->fe.cfg->domain;
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
        if (local || config_is_muc(t->fe.cfg, j.str + j.domain_off, j.domain_len))
            flags |= PROTO_STANZA_LOCAL; /* the chat service is the router's too */
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
                    ? xml_stream_decls(&c->fe.xp, ev->stream_binds, decls, sizeof decls)
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

    unsigned shard = fe_shard_of(&t->fe, c->key);
    bool held;
    int err;
    void *dst = fe_port_reserve(&c->fe, shard, (uint32_t)plen, PROTO_STANZA, &held, &err);
    if (!dst) {
        if (err == -ENOMEM)
            fe_stream_error(&c->fe, "resource-constraint");
        else
            stream_stanza_error(c, ev, "modify", "policy-violation");
        return;
    }

    struct proto_stanza *h = dst;
    memset(h, 0, sizeof *h);
    h->conn = fe_conn_id(&c->fe);
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
            c->fe.flags |= CONN_F_AVAILABLE;
            if ((c->presence = malloc(slen))) {
                memcpy(c->presence, stanza, slen);
                c->presence_len = (uint32_t)slen;
            }
        } else if (type == PROTO_PRES_UNAVAILABLE) {
            c->fe.flags &= (uint16_t)~CONN_F_AVAILABLE;
        }
    }
    fe_port_commit(&c->fe, shard, held);
    stats_add(t->fe.stats, (enum stats_id)(STAT_C2S_IN_MESSAGE + kind), 1);
}

/* A session frame (bind, unbind): any size, written now or queued in order behind
 * others for that shard. */
static int session_frame(struct c2s_thread *t, uint16_t kind, const struct proto_session *s,
                         const char *jid, const char *presence, const char *directed,
                         const uint8_t *token)
{
    size_t tlen = (s->flags & PROTO_SESSION_SM) ? PROTO_SM_TOKEN_LEN : 0;
    uint32_t len = (uint32_t)(sizeof *s + s->jid_len + s->presence_len + s->directed_len + tlen);
    char *tmp = malloc(len), *o = tmp;
    if (!tmp)
        return -ENOMEM;
    memcpy(o, s, sizeof *s);
    memcpy(o += sizeof *s, jid, s->jid_len);
    o += s->jid_len;
    if (s->presence_len)
        memcpy(o, presence, s->presence_len);
    o += s->presence_len;
    if (s->directed_len)
        memcpy(o, directed, s->directed_len);
    if (tlen)
        memcpy(o + s->directed_len, token, tlen);
    int err = fe_port_send(&t->fe, fe_shard_of(&t->fe, s->key), kind, tmp, len);
    free(tmp);
    return err;
}

int route_set_jid(struct conn *c, const char *jid, size_t len, size_t bare_len)
{
    /* ` from='...'` for every stanza of the session, escaped once here. */
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
    if (c->jid != jid) {
        char *j = malloc(len + 1);
        if (!j)
            return -ENOMEM;
        memcpy(j, jid, len);
        j[len] = '\0';
        free(c->jid);
        c->jid = j;
    }
    c->jid_len = (uint16_t)len;
    c->bare_len = (uint16_t)bare_len;
    c->key = jid_hash(jid, bare_len);
    return 0;
}

int route_bind(struct conn *c, const char *jid, size_t len, size_t bare_len, bool rereg)
{
    if (!rereg && route_set_jid(c, jid, len, bare_len) < 0)
        return -ENOMEM;
    struct proto_session s = {
        .conn = fe_conn_id(&c->fe),
        .key = c->key,
        .jid_len = (uint16_t)len,
        .bare_len = (uint16_t)bare_len,
    };
    const char *presence = NULL;
    const uint8_t *token = NULL;
    if (rereg) {
        s.flags = PROTO_SESSION_REREGISTER | c->router_flags;
        s.directed_len = c->directed_len;
        if (c->fe.flags & CONN_F_AVAILABLE) {
            s.priority = c->priority;
            s.presence_len = c->presence_len;
            presence = c->presence;
        }
        if ((token = sm_token(c)))
            s.flags |= PROTO_SESSION_SM;
    }
    return session_frame(conn_thread(c), PROTO_BIND, &s, jid, presence, c->directed, token);
}

void route_unbind(struct conn *c)
{
    struct proto_session s = {
        .conn = fe_conn_id(&c->fe),
        .key = c->key,
        .jid_len = c->jid_len,
        .bare_len = c->bare_len,
    };
    if (session_frame(conn_thread(c), PROTO_UNBIND, &s, c->jid, NULL, NULL, NULL) < 0)
        LOG_ERROR("conn %u: out of memory reporting its end to the router", c->fe.slot);
}

/* Kept to the byte, and only when there is something: most sessions have no list. */
static void keep_state(struct conn *c, const struct decode_session_state *ps)
{
    char *d = NULL;
    if (ps->h.directed_len) {
        if (!(d = malloc(ps->h.directed_len))) {
            LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory keeping its session state", c->fe.slot);
            return;
        }
        memcpy(d, ps->directed, ps->h.directed_len);
    }
    free(c->directed);
    c->directed = d;
    c->directed_len = ps->h.directed_len;
    c->router_flags = ps->h.flags;
}

/* The stats row of a stanza the router wrote: its kind from its name, which it starts
 * with ('<' and the name: the router's own serialisation). */
static enum stats_id out_stat(const struct decode_deliver *d)
{
    char c = d->h.stanza_len > 1 ? d->stanza[1] : 0;
    return c == 'm' ? STAT_C2S_OUT_MESSAGE : c == 'p' ? STAT_C2S_OUT_PRESENCE : STAT_C2S_OUT_IQ;
}

/* Writes a delivery to its recipients. Every length in it was checked by decode_deliver();
 * each recipient's entry is copied out and checked before use (decode_rcpt()). */
static int deliver(struct c2s_thread *t, const struct decode_deliver *d)
{
    uint64_t sent = 0;
    for (uint32_t i = 0; i < d->h.nrcpt; i++) {
        struct proto_rcpt rc;
        if (decode_rcpt(d, i, &rc) < 0)
            return -EBADMSG;
        /* A parked session first: its old slot may still be closing under the same id. */
        struct conn *c = sm_parked(t, rc.conn); /* its client may resume it: the stanza waits */
        if (!c)
            c = conn_by_id(t, rc.conn);
        if (!c || !(c->fe.flags & CONN_F_BOUND || c->fe.state == CONN_RESUMING))
            continue;
        sent++;
        if (!rc.to_len) {
            conn_stanza(c, d->stanza, d->h.stanza_len);
            continue;
        }
        /* One write, so TLS makes one record of it. */
        struct buf *b = &t->fe.tmp;
        b->off = b->len = 0;
        if (buf_reserve(b, d->h.stanza_len + rc.to_len) < 0)
            continue;
        buf_append(b, d->stanza, d->h.to_at);
        buf_append(b, d->attrs + rc.to_off, rc.to_len);
        buf_append(b, d->stanza + d->h.to_at, d->h.stanza_len - d->h.to_at);
        conn_stanza(c, buf_data(b), buf_used(b));
    }
    if (sent)
        stats_add(t->fe.stats, out_stat(d), sent);
    return 0;
}

void route_frame(struct fe_thread *ft, const struct ring_frame *f)
{
    struct c2s_thread *t = (struct c2s_thread *)ft;
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
            if (!(c = sm_parked(t, ss.h.conn)))
                c = conn_by_id(t, ss.h.conn);
            if (c && (c->fe.flags & CONN_F_BOUND))
                keep_state(c, &ss);
            return;
        }
        break;
    case PROTO_CLOSE:
        if (decode_close(f->payload, f->len, &cl) == 0) {
            if ((c = sm_parked(t, cl.conn)))
                sm_park_closed(c);
            else if ((c = conn_by_id(t, cl.conn)))
                fe_stream_error(&c->fe, stream_errors[cl.condition]);
            return;
        }
        break;
    case PROTO_SM_TAKEOVER:
        sm_takeover(t, f->payload, f->len);
        return;
    case PROTO_SM_RESUMED:
        sm_handoff(t, f->payload, f->len);
        return;
    }
    LOG_RL(LOG_LEVEL_ERROR, "c2s thread %u: malformed frame of kind %u from the router", t->fe.idx,
           f->kind);
}

void route_reregister(struct c2s_thread *t, bool restarted)
{
    for (uint32_t i = 0; i < t->fe.nslots; i++) {
        struct conn *c = (struct conn *)fe_slot(&t->fe, i);
        if (c->fe.state == FE_FREE || c->fe.state == FE_CLOSING)
            continue;
        if (c->fe.flags & CONN_F_BOUND)
            route_bind(c, c->jid, c->jid_len, c->bare_len, true);
        else if (restarted && c->fe.state == CONN_BINDING)
            route_bind(c, c->jid, c->jid_len, c->bare_len, false); /* its request was lost */
    }
    sm_reregister(t);
    if (!restarted)
        return;
    /* Then what the old router had not finished, behind the sessions it needs. */
    fe_port_replay(&t->fe);
}
