/*
 * route.c: where a stanza goes (RFC 6120 §10, RFC 6121 §8). The frame arrives at the
 * shard that owns its destination's bare JID (or the sender's, for stanzas to the
 * server), with kind, type and normalised addresses already known.
 *
 * Delivery rules applied here, for a local destination:
 *   full JID, session exists        deliver
 *   full JID, no such session       message normal/chat/headline: as to the bare JID;
 *                                   groupchat: service-unavailable; presence: drop;
 *                                   iq get/set: service-unavailable (§8.5.3.2)
 *   bare JID, message chat/normal   the available resources of highest non-negative
 *                                   priority, every one of them when tied (§8.5.2.1.1)
 *   bare JID, message headline      every available resource of non-negative priority
 *   bare JID, message groupchat     service-unavailable
 *   bare JID, presence              every available resource
 *   bare JID, iq                    answered by the server for the account (iq.c)
 *   nobody available                chat/normal/groupchat: service-unavailable (no
 *                                   offline storage yet); headline, error: dropped
 * Errors are never answered with errors; iq results and errors that find nobody are
 * dropped.
 */
#include "router/router.h"
#include "common/log.h"
#include "common/xmlw.h"

#include <errno.h>
#include <string.h>

#define MAX_TARGETS 64

static void deliver_to(struct shard *s, struct session *const *t, unsigned n,
                       const struct stanza *st)
{
    uint64_t conns[MAX_TARGETS];
    for (unsigned i = 0; i < n; i++)
        conns[i] = t[i]->conn;
    out_deliver(s, conns, n, st->raw, st->raw_len);
}

/* Available resources with the highest non-negative priority (all when `all`). */
static unsigned pick(struct user *u, struct session **t, bool all)
{
    unsigned n = 0;
    int best = -1;
    for (struct session *ss = u ? u->sessions : NULL; ss; ss = ss->next) {
        if (!ss->available || ss->priority < 0)
            continue;
        if (all) {
            if (n < MAX_TARGETS)
                t[n++] = ss;
            continue;
        }
        if (ss->priority > best) {
            best = ss->priority;
            n = 0;
        }
        if (ss->priority == best && n < MAX_TARGETS)
            t[n++] = ss;
    }
    return n;
}

static void message_to_bare(struct shard *s, struct user *u, const struct stanza *st)
{
    struct session *t[MAX_TARGETS];
    uint8_t type = st->h->type;
    if (type == PROTO_MSG_GROUPCHAT) {
        out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    unsigned n = pick(u, t, type == PROTO_MSG_HEADLINE);
    if (n) {
        deliver_to(s, t, n, st);
        return;
    }
    if (type == PROTO_MSG_NORMAL || type == PROTO_MSG_CHAT)
        out_error(s, st, "cancel", "service-unavailable");
}

static void presence_to_user(struct shard *s, struct user *u, const struct stanza *st)
{
    struct session *t[MAX_TARGETS];
    unsigned n = 0;
    for (struct session *ss = u ? u->sessions : NULL; ss && n < MAX_TARGETS; ss = ss->next)
        if (ss->available)
            t[n++] = ss;
    if (n)
        deliver_to(s, t, n, st);
}

/* Broadcast presence (no `to`): the session's availability, then every available
 * resource of the user hears it, the sender included (RFC 6121 §4.2.2, §4.5.2). */
static void presence_broadcast(struct shard *s, const struct stanza *st)
{
    struct user *u = user_find(&s->users, st->h->key, st->from, st->from_bare_len);
    struct session *me = u ? session_by_conn(u, st->h->conn) : NULL;
    if (!me)
        return;
    uint8_t type = st->h->type;
    if (type == PROTO_PRES_AVAILABLE) {
        if (session_set_presence(me, st->raw, st->raw_len, st->h->priority) < 0)
            return;
    } else if (type == PROTO_PRES_UNAVAILABLE) {
        me->available = false;
    } else {
        return; /* subscription management and probes: RFC 6121 §3, not yet */
    }
    struct session *t[MAX_TARGETS];
    unsigned n = 0;
    for (struct session *ss = u->sessions; ss && n < MAX_TARGETS; ss = ss->next)
        if (ss->available || ss == me)
            t[n++] = ss;
    deliver_to(s, t, n, st);
}

void route_frame_stanza(struct shard *s, const struct stanza *st)
{
    const struct proto_stanza *h = st->h;

    if (h->flags & PROTO_STANZA_TO_SERVER) {
        if (h->kind == PROTO_PRESENCE && !st->to_len)
            presence_broadcast(s, st);
        else if (h->kind == PROTO_IQ)
            iq_to_server(s, st);
        else if (h->kind == PROTO_MESSAGE &&
                 (h->type == PROTO_MSG_NORMAL || h->type == PROTO_MSG_CHAT))
            out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    if (!(h->flags & PROTO_STANZA_LOCAL)) {
        /* Federation comes with s2s; until then no remote server is reachable. */
        if (!(h->kind == PROTO_IQ && h->type >= PROTO_IQ_RESULT) &&
            !(h->kind == PROTO_MESSAGE && h->type == PROTO_MSG_ERROR) &&
            !(h->kind == PROTO_PRESENCE && h->type == PROTO_PRES_ERROR))
            out_error(s, st, "cancel", "remote-server-not-found");
        return;
    }

    struct user *u = user_find(&s->users, h->key, st->to, st->to_bare_len);
    bool full = st->to_len > st->to_bare_len;
    if (full) {
        const char *res = st->to + st->to_bare_len + 1;
        size_t rlen = st->to_len - st->to_bare_len - 1;
        struct session *ss = u ? session_find(u, res, rlen) : NULL;
        if (ss) {
            deliver_to(s, &ss, 1, st);
            return;
        }
        if (h->kind == PROTO_MESSAGE) {
            if (h->type == PROTO_MSG_GROUPCHAT)
                out_error(s, st, "cancel", "service-unavailable");
            else if (h->type != PROTO_MSG_ERROR)
                message_to_bare(s, u, st);
        } else if (h->kind == PROTO_IQ && h->type <= PROTO_IQ_SET) {
            out_error(s, st, "cancel", "service-unavailable");
        }
        return;
    }
    switch (h->kind) {
    case PROTO_MESSAGE:
        if (h->type != PROTO_MSG_ERROR)
            message_to_bare(s, u, st);
        break;
    case PROTO_PRESENCE:
        presence_to_user(s, u, st);
        break;
    default:
        iq_to_server(s, st); /* the server answers for the account (RFC 6120 §10.5.3.1) */
        break;
    }
}

void route_bind(struct shard *s, const struct proto_session *b, const char *jid,
                const char *presence)
{
    struct user *u = user_get(&s->users, b->key, jid, b->bare_len);
    if (!u) {
        if (!(b->flags & PROTO_SESSION_REREGISTER))
            out_bind_result(s, b->conn, -ENOMEM, NULL, 0);
        return;
    }
    const char *res = jid + b->bare_len + 1;
    size_t rlen = b->jid_len - b->bare_len - 1u;
    struct session *old = session_find(u, res, rlen);
    if (old && !(b->flags & PROTO_SESSION_REREGISTER)) {
        if (s->cfg->c2s.resource_conflict == CONFIG_CONFLICT_REFUSE) {
            out_bind_result(s, b->conn, -EEXIST, NULL, 0);
            return;
        }
        /* RFC 6120 §7.7.2.2: the new session wins; the old one gets <conflict/>. */
        out_close(s, old->conn, PROTO_SE_CONFLICT);
        route_end_session(s, u, old);
    } else if (old) {
        session_remove(u, old);
    }
    struct session *ss = session_add(u, b->conn, jid, b->jid_len);
    if (!ss) {
        user_drop_if_empty(&s->users, u);
        if (!(b->flags & PROTO_SESSION_REREGISTER))
            out_bind_result(s, b->conn, -ENOMEM, NULL, 0);
        return;
    }
    if (b->flags & PROTO_SESSION_REREGISTER) {
        if (b->presence_len)
            session_set_presence(ss, presence, b->presence_len, b->priority);
        return;
    }
    out_bind_result(s, b->conn, 0, jid, b->jid_len);
}

void route_end_session(struct shard *s, struct user *u, struct session *ss)
{
    if (ss->available) {
        /* RFC 6121 §4.5.2: the user's other resources learn the session is gone. */
        struct buf b = {0};
        buf_puts(&b, "<presence type='unavailable'");
        xmlw_attr(&b, "from", ss->jid, ss->jid_len);
        buf_puts(&b, "/>");
        uint64_t conns[MAX_TARGETS];
        unsigned k = 0;
        for (struct session *o = u->sessions; o && k < MAX_TARGETS; o = o->next)
            if (o != ss && o->available)
                conns[k++] = o->conn;
        if (k && buf_used(&b))
            out_deliver(s, conns, k, buf_data(&b), buf_used(&b));
        buf_free(&b);
    }
    session_remove(u, ss);
}

void route_unbind(struct shard *s, const struct proto_session *b, const char *jid)
{
    struct user *u = user_find(&s->users, b->key, jid, b->bare_len);
    struct session *ss = u ? session_by_conn(u, b->conn) : NULL;
    if (ss) {
        route_end_session(s, u, ss);
        user_drop_if_empty(&s->users, u);
    }
}
