/*
 * route.c: where a stanza goes (RFC 6120 §10, RFC 6121 §8), in two steps. The features
 * on the way are modules (module.h): the core asks them at each point, in table order,
 * and routes what none of them took.
 *
 * The sender's step (route_outbound, in the sender's shard): stanzas for the server go
 * to iq.c and presence.c; then the modules' outbound hooks: the user's own blocklist
 * stops stanzas to blocked JIDs (block.c, XEP-0191 §3.4: not-acceptable with
 * <blocked/>), sent carbons go out (carbons.c), subscription presence updates the
 * sender's roster (sub.c); directed presence is remembered (presence.c); then the stanza
 * is forwarded to its recipient's shard.
 *
 * The recipient's step (route_inbound, in the recipient's shard), once the recipient's
 * state is loaded:
 *   no such account                 message, iq get/set: service-unavailable; subscribe:
 *                                   unsubscribed back (RFC 6121 §3.1.3); else dropped
 *   (modules' inbound hooks)        sender blocked by recipient (block.c): message, iq
 *                                   get/set: service-unavailable; else dropped;
 *                                   subscription presence (sub.c)
 *   full JID, session exists        deliver (then the delivered hooks: received carbons)
 *   full JID, no such session       message normal/chat/headline: as to the bare JID;
 *                                   groupchat: service-unavailable; presence: dropped;
 *                                   iq get/set: service-unavailable (§8.5.3.2)
 *   bare JID, message chat/normal   the available resources of highest non-negative
 *                                   priority, every one of them when tied (§8.5.2.1.1);
 *                                   none: the undeliverable hooks (stored offline,
 *                                   XEP-0160), service-unavailable when none takes it
 *   bare JID, message headline      every available resource of non-negative priority
 *   bare JID, message groupchat     service-unavailable
 *   bare JID, presence              every available resource
 *   bare JID, iq                    answered by the server for the account (iq.c)
 * Errors are never answered with errors; results and errors that find nobody are dropped.
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t frame_len(const struct stanza *st)
{
    return (uint32_t)(sizeof *st->h + st->from_len + st->to_len + st->raw_len);
}

void route_forward(struct shard *s, const struct stanza *st)
{
    const struct proto_stanza *h = st->h;
    if (!(h->flags & PROTO_STANZA_LOCAL)) {
        /* Another domain's: to the s2s thread that owns it, as it is. */
        out_remote(s, st);
        return;
    }
    if (!memchr(st->to, '@', st->to_bare_len))
        return; /* our own domain with a resource: nothing lives there */
    unsigned dst = shard_of(s, h->to_key);
    if (dst == s->idx)
        route_inbound(s, st);
    else if (dst < s->nshards)
        out_to_shard(s, dst, RK_INBOUND, st->frame, frame_len(st));
    else /* the recipient's home is another node: straight to its shard there */
        node_send(s, dst - s->nshards, node_home_shard(s, dst - s->nshards, h->to_key),
                  RK_INBOUND, st->frame, frame_len(st), NULL, 0);
}

void route_outbound(struct shard *s, const struct stanza *in)
{
    const struct proto_stanza *h = in->h;
    struct user *u = user_find(&s->users, h->key, in->from, in->from_bare_len);
    struct session *ss = u ? session_by_conn(u, h->conn) : NULL;
    if (!ss)
        return;
    struct stanza m = *in; /* a module may point raw at a changed copy */
    const struct stanza *st = &m;

    if (h->flags & PROTO_STANZA_TO_SERVER) {
        if (h->kind == PROTO_PRESENCE && !st->to_len)
            presence_broadcast(s, u, ss, st);
        else if (h->kind == PROTO_IQ)
            iq_to_server(s, u, ss, st);
        else if (h->kind == PROTO_MESSAGE &&
                 (h->type == PROTO_MSG_NORMAL || h->type == PROTO_MSG_CHAT))
            out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    if (mod_outbound(s, u, ss, &m))
        return; /* blocked (block.c), a subscription (sub.c), or another module's */
    if (h->kind == PROTO_PRESENCE &&
        (h->type == PROTO_PRES_AVAILABLE || h->type == PROTO_PRES_UNAVAILABLE))
        presence_directed(s, u, ss, st);
    else
        route_forward(s, st);
}

/* Available sessions with the highest non-negative priority (all when `all`), into the
 * shard's target list (as long as the user has sessions: none is left out). */
static unsigned pick(struct shard *s, struct user *u, bool all)
{
    size_t count = 0;
    for (struct session *ss = u->sessions; ss; ss = ss->next)
        count++;
    if (count > s->targets_cap) {
        struct session **t = realloc(s->targets, count * sizeof *t);
        if (!t)
            return 0; /* as if nobody were there: stored, or the sender told */
        s->targets = t;
        s->targets_cap = count;
    }
    struct session **t = s->targets;
    unsigned n = 0;
    int best = -1;
    for (struct session *ss = u->sessions; ss; ss = ss->next) {
        if (!ss->available || ss->priority < 0)
            continue;
        if (!all && ss->priority > best) {
            best = ss->priority;
            n = 0;
        }
        if (all || ss->priority == best)
            t[n++] = ss;
    }
    return n;
}

static void deliver_sessions(struct shard *s, struct session *const *t, unsigned n,
                             const struct stanza *st)
{
    uint64_t conns[64];
    for (unsigned done = 0; done < n;) {
        unsigned k = n - done < 64 ? n - done : 64;
        for (unsigned i = 0; i < k; i++)
            conns[i] = t[done + i]->conn;
        out_deliver(s, conns, k, st->raw, st->raw_len);
        done += k;
    }
}

void route_message_to_user(struct shard *s, struct user *u, const struct stanza *st)
{
    uint8_t type = st->h->type;
    if (type == PROTO_MSG_ERROR)
        return;
    if (type == PROTO_MSG_GROUPCHAT) {
        out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    unsigned n = pick(s, u, type == PROTO_MSG_HEADLINE);
    if (n) {
        deliver_sessions(s, s->targets, n, st);
        mod_delivered(s, u, st, s->targets, n); /* received carbons */
    } else if ((type == PROTO_MSG_NORMAL || type == PROTO_MSG_CHAT) &&
               !mod_undeliverable(s, u, st)) { /* offline storage */
        out_error(s, st, "cancel", "service-unavailable");
    }
}

/* RFC 6121 §8.5.1: the account does not exist. */
static void no_account(struct shard *s, const struct stanza *st)
{
    const struct proto_stanza *h = st->h;
    if (h->kind == PROTO_PRESENCE && h->type == PROTO_PRES_SUBSCRIBE) {
        struct buf b = {0};
        buf_puts(&b, "<presence type='unsubscribed'");
        xmlw_attr(&b, "from", st->to, st->to_bare_len);
        xmlw_attr(&b, "to", st->from, st->from_bare_len);
        buf_puts(&b, "/>");
        route_generated(s, st->to, st->to_bare_len, st->to_bare_len, st->from, st->from_bare_len,
                        st->from_bare_len, PROTO_PRESENCE, PROTO_PRES_UNSUBSCRIBED, buf_data(&b),
                        buf_used(&b));
        buf_free(&b);
    } else if ((h->kind == PROTO_MESSAGE && h->type != PROTO_MSG_HEADLINE) ||
               h->kind == PROTO_IQ) {
        out_error(s, st, "cancel", "service-unavailable");
    }
}

void route_inbound(struct shard *s, const struct stanza *in)
{
    const struct proto_stanza *h = in->h;
    if (mod_home(s, in))
        return; /* not an account's: a room's, say */
    struct user *u = user_get(&s->users, h->to_key, in->to, in->to_bare_len);
    if (!u)
        return;
    if ((h->flags & ROUTE_GENERATED) && h->kind == PROTO_MESSAGE &&
        h->type == PROTO_MSG_HEADLINE && !u->sessions) {
        /* A notification the server made (PEP) for a user with nobody online: a headline
         * is not stored (§8.5.2.1.1 and XEP-0160), so its state need not be loaded. */
        user_release(&s->users, u);
        return;
    }
    if (!load_ready(s, u, RK_INBOUND, in->frame, frame_len(in)))
        return; /* processed again once u's state is here */
    struct stanza m = *in; /* a module may point raw at a changed copy */
    const struct stanza *st = &m;

    if (!u->exists) {
        no_account(s, st);
    } else if (mod_inbound(s, u, &m)) {
        /* blocked (block.c), a subscription (sub.c), or another module's */
    } else if (h->kind == PROTO_PRESENCE) {
        presence_inbound(s, u, st);
    } else {
        bool full = st->to_len > st->to_bare_len;
        struct session *ss = NULL;
        if (full)
            ss = session_find(u, st->to + st->to_bare_len + 1, st->to_len - st->to_bare_len - 1);
        if (ss) {
            deliver_sessions(s, &ss, 1, st);
            if (h->kind == PROTO_MESSAGE)
                mod_delivered(s, u, st, &ss, 1);
        } else if (h->kind == PROTO_MESSAGE) {
            if (full && h->type == PROTO_MSG_GROUPCHAT)
                out_error(s, st, "cancel", "service-unavailable");
            else
                route_message_to_user(s, u, st);
        } else if (full) {
            if (h->type <= PROTO_IQ_SET)
                out_error(s, st, "cancel", "service-unavailable");
        } else {
            iq_to_account(s, u, st); /* the server answers for the account (§10.5.3.1) */
        }
    }
    user_release(&s->users, u);
}

void route_remote(struct shard *s, const struct stanza *st)
{
    const struct proto_stanza *h = st->h;
    if (!(h->flags & PROTO_STANZA_TO_SERVER)) {
        route_inbound(s, st);
    } else if (mod_home(s, st)) {
        /* a domain of a module's own (the chat service's): its answer, not the server's */
    } else if (h->kind == PROTO_IQ) {
        iq_to_server(s, NULL, NULL, st); /* disco, ping, version: what a server may ask */
    } else if (h->kind == PROTO_MESSAGE &&
               (h->type == PROTO_MSG_NORMAL || h->type == PROTO_MSG_CHAT)) {
        out_error(s, st, "cancel", "service-unavailable");
    }
    /* presence to the server itself: nothing to do (§4.3.2 probes go to accounts) */
}

void route_generated(struct shard *s, const char *from, size_t from_len, size_t from_bare_len,
                     const char *to, size_t to_len, size_t to_bare_len, uint8_t kind, uint8_t type,
                     const char *stanza, size_t len)
{
    size_t total = sizeof(struct proto_stanza) + from_len + to_len + len;
    _Alignas(8) char small[1024];
    char *buf = total <= sizeof small ? small : malloc(total);
    if (!buf)
        return;
    struct proto_stanza *h = (struct proto_stanza *)buf;
    memset(h, 0, sizeof *h);
    h->key = jid_hash(from, from_bare_len);
    h->to_key = jid_hash(to, to_bare_len);
    h->kind = kind;
    h->type = type;
    h->flags = ROUTE_GENERATED;
    const char *at = memchr(to, '@', to_bare_len);
    const char *dom = at ? at + 1 : to;
    size_t dlen = (size_t)(to + to_bare_len - dom);
    if ((dlen == strlen(s->cfg->domain) && !memcmp(dom, s->cfg->domain, dlen)) ||
        config_is_muc(s->cfg, dom, dlen))
        h->flags |= PROTO_STANZA_LOCAL;
    h->to_domain_off = (uint16_t)(dom - to);
    h->to_domain_len = (uint16_t)dlen;
    h->from_len = (uint16_t)from_len;
    h->from_bare_len = (uint16_t)from_bare_len;
    h->to_len = (uint16_t)to_len;
    h->to_bare_len = (uint16_t)to_bare_len;
    h->stanza_len = (uint32_t)len;
    h->head_len = (uint32_t)len; /* generated stanzas are never answered with errors */
    char *p = (char *)(h + 1);
    memcpy(p, from, from_len);
    memcpy(p + from_len, to, to_len);
    memcpy(p + from_len + to_len, stanza, len);
    struct stanza st;
    if (stanza_parse(h, (uint32_t)total, &st))
        route_forward(s, &st);
    if (buf != small)
        free(buf);
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
    /* Frames of this user wait for its state (an unbind among them, say): a bind goes
     * behind them, or it would find a session that is already on its way out. */
    if (u->pend_head && !load_ready(s, u, PROTO_BIND, b, decode_session_len(b)))
        return;
    const char *res = jid + b->bare_len + 1;
    size_t rlen = b->jid_len - b->bare_len - 1u;
    struct session *old = session_find(u, res, rlen);
    if (!old && !(b->flags & PROTO_SESSION_REREGISTER)) {
        /* RFC 6120 §7.6.2.1. A re-registration is a session that existed already, and
         * one that replaces another adds none. */
        unsigned n = 0;
        for (struct session *ss = u->sessions; ss; ss = ss->next)
            n++;
        if (n >= s->cfg->router.max_sessions) { /* so u has sessions: it stays */
            out_bind_result(s, b->conn, -EDQUOT, NULL, 0);
            return;
        }
    }
    if (old && !(b->flags & PROTO_SESSION_REREGISTER)) {
        if (s->cfg->c2s.resource_conflict == CONFIG_CONFLICT_REFUSE) {
            out_bind_result(s, b->conn, -EEXIST, NULL, 0);
            return;
        }
        /* RFC 6120 §7.7.2.2: the new session wins; the old one gets <conflict/>. */
        out_close(s, old->conn, PROTO_SE_CONFLICT);
        presence_end_session(s, u, old);
    } else if (old) {
        session_remove(u, old);
    }
    struct session *ss = session_add(u, b->conn, jid, b->jid_len);
    if (!ss) {
        user_release(&s->users, u);
        if (!(b->flags & PROTO_SESSION_REREGISTER))
            out_bind_result(s, b->conn, -ENOMEM, NULL, 0);
        return;
    }
    load_start(s, u); /* the roster is on its way before the client asks for it */
    if (b->flags & PROTO_SESSION_REREGISTER) {
        /* The router restarted: contacts already have this presence, and the front end
         * kept what the session had set up here. */
        if (b->presence_len)
            session_set_presence(ss, presence, b->presence_len, b->priority);
        session_restore(ss, b->flags, presence + b->presence_len, b->directed_len,
                        s->cfg->router.max_directed);
        /* decode_session() counted the token in. */
        if ((b->flags & PROTO_SESSION_SM) &&
            !sm_token_set(u, b->conn, (const uint8_t *)presence + b->presence_len + b->directed_len))
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a session cannot be resumed", s->idx);
        if (s->cl)
            node_rehomed(s, u);
        /* What was stored while it was away from this router (load.c does it for a user
         * still loading). */
        if (u->state == USER_READY && ss->available && ss->priority >= 0)
            mod_receiving(s, u, ss);
        return;
    }
    out_bind_result(s, b->conn, 0, jid, b->jid_len);
}

void route_unbind(struct shard *s, const struct proto_session *b, const char *jid)
{
    struct user *u = user_find(&s->users, b->key, jid, b->bare_len);
    struct session *ss = u ? session_by_conn(u, b->conn) : NULL;
    if (!ss)
        return;
    /* The goodbye broadcast needs the roster: wait for it like any other frame. */
    if (!load_ready(s, u, PROTO_UNBIND, b, decode_session_len(b)))
        return;
    presence_end_session(s, u, ss);
    user_release(&s->users, u);
}
