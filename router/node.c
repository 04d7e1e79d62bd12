/*
 * node.c: a shard's side of the cluster (link.h has the links, home.h the rule).
 *
 * Out: node_send() writes a struct link_hdr and the frame into the shard's ring to the
 * link thread (its backlog when full, in order), which puts it on the destination
 * node's socket. In: node_drain() reads what the link thread brought, for this shard or
 * to be sorted out here: frames for users (a stanza, a bind, RK_INBOUND, fan-out and
 * probe lists) go where shard_frame() finds their home now, frames for connections go
 * to this node's front-end threads, frames for remote domains to s2s.
 *
 * A membership change (node_view_check(), at the top of each round of the loop):
 *   - a user whose home moved to another shard or node leaves this one: each of its
 *     sessions goes to the new home as a re-registration (PROTO_SESSION_REREGISTER, with
 *     its presence and what the front end would hand back), the frames queued for it
 *     follow, and the copy here is dropped; the new home loads its state from the store.
 *   - a session whose connection was on a node that went down ends as a closed one does
 *     (unavailable to its contacts and directed-presence recipients).
 *   - a user of ours with available sessions gets unavailable presence from each contact
 *     it subscribes to whose home was on a node that went down (that home held the
 *     contact's sessions, and nobody else can say they ended); a contact with sessions on
 *     nodes still up comes back with them: their c2s registers them again (CTL_REHOME)
 *     at the new home, which broadcasts their presence once the state is there.
 *   - a user whose home was on a lost node, and whose sessions on nodes still up register
 *     again at its new home, is told there the same of its contacts homed on lost nodes
 *     (node_rehomed()), then its contacts get its presence again.
 * What is left: when a user and a contact with sessions on nodes still up were both
 * homed on the lost node, the contact's presence sent again may reach the user before
 * the goodbye made for the contact's lost sessions: the user then sees the contact
 * unavailable until its next presence.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 256

unsigned node_home_shard(const struct shard *s, unsigned node, uint64_t key)
{
    unsigned n = node < HOME_NODES_MAX && s->view ? s->view->shards[node] : 0;
    return topo_shard_of(key, n ? n : 1);
}

unsigned node_peer_shard(const struct shard *s, unsigned node)
{
    unsigned n = node < HOME_NODES_MAX && s->view ? s->view->shards[node] : 0;
    return n ? s->idx % n : 0;
}

static void send_hops(struct shard *s, unsigned node, unsigned shard, uint8_t hops, uint16_t kind,
                      const void *a, uint32_t alen, const void *b, uint32_t blen)
{
    struct link_hdr h = {
        .magic = LINK_MAGIC,
        .kind = kind,
        .shard = (uint16_t)shard,
        .src = (uint8_t)s->node,
        .dst = (uint8_t)node,
        .hops = hops,
        .len = alen + blen,
    };
    uint32_t len = (uint32_t)sizeof h + alen + blen;
    char *d = malloc(len);
    if (!d) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame for node %u is lost", s->idx,
               node);
        return;
    }
    memcpy(d, &h, sizeof h);
    if (alen)
        memcpy(d + sizeof h, a, alen);
    if (blen)
        memcpy(d + sizeof h + alen, b, blen);
    /* Like a frame to another shard: what waits in the backlog keeps the ticket. */
    struct ticket *t = ticket_hold(s->cur);
    int rc = port_send(&s->to_link, &s->link_backlog, kind, d, len, t);
    if (rc != 1)
        ticket_unhold(t);
    if (rc < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a frame for node %u is lost: %s", s->idx, node,
               strerror(-rc));
    else
        s->link_dirty = true;
    free(d);
    s->stats.frames_out++;
    s->stats.link_frames++;
    s->stats.link_bytes += len;
}

void node_send(struct shard *s, unsigned node, unsigned shard, uint16_t kind, const void *a,
               uint32_t alen, const void *b, uint32_t blen)
{
    send_hops(s, node, shard, 0, kind, a, alen, b, blen);
}

/* What no node could take, and nobody may answer for: said in the log and counted. A
 * stanza gets an error instead. */
static void undeliverable(struct shard *s, uint16_t kind, const void *payload, uint32_t len,
                          const char *why)
{
    struct stanza st;
    s->stats.link_bounced++;
    if ((kind == PROTO_STANZA || kind == RK_INBOUND) && stanza_parse(payload, len, &st)) {
        out_error(s, &st, "wait", "remote-server-timeout");
        return;
    }
    LOG_RL(LOG_LEVEL_WARN, "shard %u: a frame of kind %u for another node is lost: %s", s->idx,
           kind, why);
}

void node_relay(struct shard *s, unsigned dst, uint64_t key, uint16_t kind, const void *payload,
                uint32_t len)
{
    if (dst < s->nshards) {
        out_to_shard(s, dst, kind, payload, len);
        return;
    }
    if (s->link_hops) { /* it came from another node, which took us for its home */
        s->stats.link_forwarded++;
        if (s->link_hops > LINK_MAX_HOPS) {
            undeliverable(s, kind, payload, len, "the nodes disagree on its home");
            return;
        }
    }
    unsigned node = dst - s->nshards;
    send_hops(s, node, node_home_shard(s, node, key), s->link_hops, kind, payload, len, NULL, 0);
}

/* A delivery from another node's shard to connections of ours. */
static void deliver_in(struct shard *s, const void *p, uint32_t len)
{
    struct decode_deliver d;
    if (decode_deliver(p, len, &d) < 0)
        goto bad;
    struct out_rcpt small[64], *r = d.h.nrcpt <= 64 ? small : malloc(d.h.nrcpt * sizeof *r);
    if (!r) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a delivery is lost", s->idx);
        return;
    }
    unsigned n = 0;
    for (uint32_t i = 0; i < d.h.nrcpt; i++) {
        struct proto_rcpt rc;
        if (decode_rcpt(&d, i, &rc) < 0) {
            if (r != small)
                free(r);
            goto bad;
        }
        if (conn_here(s, rc.conn)) /* never back out: the sender sorted them by node */
            r[n++] = (struct out_rcpt){rc.conn, d.attrs + rc.to_off, (uint16_t)rc.to_len};
    }
    out_deliver_to(s, r, n, d.stanza, d.h.stanza_len, d.h.to_at);
    if (r != small)
        free(r);
    return;
bad:
    LOG_RL(LOG_LEVEL_ERROR, "shard %u: malformed delivery from another node", s->idx);
}

/* A bind result, close or session state for a connection of ours: to its thread as is. */
static void conn_frame_in(struct shard *s, uint16_t kind, const void *p, uint32_t len)
{
    struct decode_bind_result br;
    struct decode_session_state ss;
    struct proto_close cl;
    int rc = kind == PROTO_BIND_RESULT     ? decode_bind_result(p, len, &br)
             : kind == PROTO_SESSION_STATE ? decode_session_state(p, len, &ss)
                                           : decode_close(p, len, &cl);
    uint64_t conn;
    if (rc < 0 || len < sizeof conn) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: malformed frame of kind %u from another node", s->idx,
               kind);
        return;
    }
    memcpy(&conn, p, sizeof conn); /* first in each of them */
    if (conn_here(s, conn))
        out_fe_frame(s, shard_fe(s, conn), kind, p, len, NULL, 0);
}

static void frame_in(struct shard *s, uint16_t kind, const void *p, uint32_t len)
{
    struct stanza st;
    struct decode_remote_fanout rf;
    switch (kind) {
    case PROTO_DELIVER:
        deliver_in(s, p, len);
        return;
    case PROTO_BIND_RESULT:
    case PROTO_CLOSE:
    case PROTO_SESSION_STATE:
        conn_frame_in(s, kind, p, len);
        return;
    case PROTO_SM_TAKEOVER:
    case PROTO_SM_RESUMED:
        sm_conn_frame_in(s, kind, p, len);
        return;
    case PROTO_REMOTE: /* this node owns the domain's streams (or knows who does) */
        if (stanza_parse(p, len, &st))
            out_remote(s, &st);
        return;
    case PROTO_REMOTE_FANOUT:
        if (decode_remote_fanout(p, len, &rf) == 0)
            out_remote_fanout(s, rf.domain, rf.h.domain_len, rf.stanza, rf.h.stanza_len,
                              rf.h.to_at, rf.list, (size_t)(rf.end - rf.list), rf.h.nrcpt,
                              rf.h.flags);
        return;
    default:
        shard_frame(s, kind, p, len);
    }
}

/* A frame the link thread could not send. When its node left the view, it goes where its
 * home is now; otherwise (the link is full) it is undeliverable. */
static void bounced(struct shard *s, const struct link_hdr *h, const void *p, uint32_t len)
{
    node_view_check(s); /* the view that dropped the node came before the bounce */
    if (!home_up(s->view, h->dst) || h->dst == s->node) {
        switch (h->kind) {
        case PROTO_STANZA:
        case PROTO_BIND:
        case PROTO_UNBIND:
        case RK_INBOUND:
        case RK_FANOUT:
        case RK_PROBE:
        case PROTO_REMOTE:
        case PROTO_REMOTE_FANOUT:
            frame_in(s, h->kind, p, len);
            return;
        }
        /* Frames for its connections: those sessions end with the node (node_view_check). */
        s->stats.link_bounced++;
        return;
    }
    undeliverable(s, h->kind, p, len, "its link is full (cluster.max_link_bytes)");
}

unsigned node_drain(struct shard *s)
{
    struct ring_frame f;
    unsigned n = 0;
    int rc = 0;
    while (n < BATCH && (rc = port_recv(&s->from_link, &s->rx_link, &f)) == 1) {
        struct link_hdr h;
        n++;
        s->stats.frames_in++;
        if (f.len < sizeof h) {
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: a frame from the link thread without its header",
                   s->idx);
            continue;
        }
        memcpy(&h, f.payload, sizeof h);
        const char *p = (const char *)f.payload + sizeof h;
        uint32_t len = f.len - (uint32_t)sizeof h;
        if (f.kind == RK_BOUNCE) {
            bounced(s, &h, p, len);
            continue;
        }
        s->link_hops = (uint8_t)(h.hops + 1);
        frame_in(s, f.kind, p, len);
        s->link_hops = 0;
    }
    if (ring_release(&s->from_link))
        bell_ring(s->from_link.peer);
    if (rc < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: the ring from the link thread is corrupt", s->idx);
    return n;
}

/* A session of a user that leaves this shard, as its front end would register it again. */
static void hand_over(struct shard *s, struct user *u, struct session *ss, unsigned dst)
{
    const uint8_t *token = sm_token_of(u, ss->conn);
    struct proto_session b = {
        .conn = ss->conn,
        .key = u->key,
        .jid_len = ss->jid_len,
        .bare_len = u->bare_len,
        .flags = (uint8_t)(PROTO_SESSION_REREGISTER |
                           (ss->interested ? PROTO_SESSION_ROSTER : 0) |
                           (ss->blocklist_req ? PROTO_SESSION_BLOCKLIST : 0) |
                           (ss->carbons ? PROTO_SESSION_CARBONS : 0) |
                           (token ? PROTO_SESSION_SM : 0)),
        .priority = ss->priority,
        .presence_len = ss->available ? ss->presence_len : 0,
        .directed_len = ss->directed_bytes,
    };
    struct buf fr = {0};
    int rc = buf_append(&fr, &b, sizeof b);
    if (!rc)
        rc = buf_append(&fr, ss->jid, ss->jid_len);
    if (!rc && b.presence_len)
        rc = buf_append(&fr, ss->presence, ss->presence_len);
    for (const struct directed *d = ss->directed; d && !rc; d = d->next)
        if (!(rc = buf_append(&fr, &d->len, sizeof d->len)))
            rc = buf_append(&fr, d->jid, d->len);
    if (!rc && token) /* its resumption token (XEP-0198, sm.c) */
        rc = buf_append(&fr, token, PROTO_SM_TOKEN_LEN);
    if (!rc)
        node_relay(s, dst, u->key, PROTO_BIND, buf_data(&fr), (uint32_t)buf_used(&fr));
    else
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a session of %s is lost", s->idx,
               u->bare);
    buf_free(&fr);
}

/* u moves to dst: its sessions, then the frames that waited for its state. */
static void move_user(struct shard *s, struct user *u, unsigned dst)
{
    while (u->sessions) {
        hand_over(s, u, u->sessions, dst);
        session_remove(u, u->sessions);
    }
    struct pending *p = u->pend_head;
    u->pend_head = u->pend_tail = NULL;
    u->pend_bytes = 0;
    while (p) {
        struct pending *next = p->next;
        struct ticket *was = s->cur;
        s->cur = p->t;
        shard_frame(s, p->kind, p->payload, p->len); /* not ours now: shard_frame() relays */
        s->cur = was;
        ticket_defer(s, p->t);
        free(p);
        p = next;
    }
}

static bool sub_to(const struct roster_item *it)
{
    return it->sub == 1 || it->sub == 3; /* STORE_SUB_TO, STORE_SUB_BOTH */
}

/* Unavailable, from each contact u subscribes to whose home was on a node now gone. */
static void contacts_gone(struct shard *s, struct user *u, const struct home_view *old,
                          uint64_t gone)
{
    bool any = false;
    for (struct session *ss = u->sessions; ss && !any; ss = ss->next)
        any = ss->available;
    if (!any || u->state != USER_READY)
        return;
    size_t dlen = strlen(s->cfg->domain);
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next) {
            const char *at = memchr(it->jid, '@', it->jid_len);
            if (!sub_to(it) || !at || (size_t)(it->jid + it->jid_len - at - 1) != dlen ||
                memcmp(at + 1, s->cfg->domain, dlen))
                continue; /* not subscribed, or not one of ours */
            if (!(gone >> home_node(old, it->hash) & 1))
                continue;
            struct buf b = {0};
            buf_puts(&b, "<presence type='unavailable'");
            xmlw_attr(&b, "from", it->jid, it->jid_len);
            buf_puts(&b, "/>");
            out_to_available(s, u, buf_data(&b), buf_used(&b));
            buf_free(&b);
        }
}

void node_rehomed(struct shard *s, struct user *u)
{
    if (!s->lost_mask || !(s->lost_mask >> home_node(s->lost_view, u->key) & 1))
        return;
    if (u->state != USER_READY) {
        u->rehome_due = true; /* load.c calls again */
        return;
    }
    u->rehome_due = false;
    if (!u->rehome_done) {
        u->rehome_done = true;
        contacts_gone(s, u, s->lost_view, s->lost_mask);
    }
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next)
            if ((it->sub == 2 || it->sub == 3) && !block_blocks(&u->block, it->jid, it->jid_len))
                presence_send_all(s, u, it->jid, it->jid_len, false);
}

void node_view_check(struct shard *s)
{
    const struct home_view *v = cluster_view(s->cl), *old = s->view;
    if (v == old)
        return;
    s->view = v;
    uint64_t gone = old ? old->up & ~v->up : 0;
    if (gone) {
        s->lost_view = old;
        s->lost_mask = gone;
    }
    struct user_table *t = &s->users;
    /* What follows may add users to the table (a goodbye to a contact of this shard) and
     * so grow it: the users are listed first, each held until its turn. */
    struct user **all = old && t->count ? malloc(t->count * sizeof *all) : NULL;
    size_t n = 0;
    for (size_t i = 0; all && t->buckets && i <= t->mask; i++)
        for (struct user *u = t->buckets[i]; u; u = u->next) {
            u->busy++;
            all[n++] = u;
        }
    if (old && t->count && !all)
        LOG_ERROR("shard %u: out of memory: the users whose home moved stay", s->idx);
    for (size_t i = 0; i < n; i++) {
        struct user *u = all[i];
        u->busy--;
        unsigned dst = shard_of(s, u->key);
        if (dst != s->idx) {
            move_user(s, u, dst);
        } else if (gone) {
            struct session **pp = &u->sessions;
            while (*pp) {
                struct session *ss = *pp;
                if (!(gone >> PROTO_CONN_NODE(ss->conn) & 1))
                    pp = &ss->next;
                else if (u->state == USER_READY)
                    presence_end_session(s, u, ss); /* takes it off the list */
                else
                    session_remove(u, ss);
            }
            contacts_gone(s, u, old, gone);
        }
        user_release(t, u);
    }
    free(all);
    /* Pairs with the link thread's acquire: what this view moved is on its way. */
    atomic_store_explicit(&s->view_seen, v->epoch, memory_order_release);
}

void node_publish(struct shard *s)
{
    struct shard_pub *p = &s->pub;
    const struct shard_stats *n = &s->stats;
    atomic_store_explicit(&p->sessions, s->nsessions, memory_order_relaxed);
    atomic_store_explicit(&p->link_frames, n->link_frames, memory_order_relaxed);
    atomic_store_explicit(&p->link_bytes, n->link_bytes, memory_order_relaxed);
    atomic_store_explicit(&p->link_fanout_frames, n->link_fanout_frames, memory_order_relaxed);
    atomic_store_explicit(&p->link_fanout_contacts, n->link_fanout_contacts,
                          memory_order_relaxed);
    atomic_store_explicit(&p->link_deliver_frames, n->link_deliver_frames, memory_order_relaxed);
    atomic_store_explicit(&p->link_deliveries, n->link_deliveries, memory_order_relaxed);
    atomic_store_explicit(&p->link_bytes_saved, n->link_bytes_saved, memory_order_relaxed);
    atomic_store_explicit(&p->link_forwarded, n->link_forwarded, memory_order_relaxed);
    atomic_store_explicit(&p->link_bounced, n->link_bounced, memory_order_relaxed);
}
