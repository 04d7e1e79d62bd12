/*
 * sm.c: the router's part of stream management (XEP-0198). c2s keeps a stream's counts
 * and the stanzas its client has not acknowledged, and keeps a session whose connection
 * dropped (c2s/sm.c); the router keeps what must be found from any c2s thread: which
 * session a resumption token names, and where the session is.
 *
 * A resumption, all through the user's shard, so that each step is ordered behind
 * what came before it on the same rings:
 *   1. the new connection B sends PROTO_SM_RESUME with the token, for its user;
 *   2. the shard finds the user's session of that token (none, or one already moving:
 *      a PROTO_SM_RESUMED with -ENOENT goes back to B), gives the session to B at once
 *      (what is routed to it from now on goes to B, which holds it) and sends
 *      PROTO_SM_TAKEOVER to the old connection A's thread, behind every delivery to A;
 *   3. A's thread answers with the session's stream state and unacknowledged stanzas
 *      (PROTO_SM_HANDOFF), which the shard passes to B's thread unchanged
 *      (PROTO_SM_RESUMED).
 * The session never leaves the router meanwhile: its contacts see nothing. In a cluster
 * the frames of steps 1 and 3 go to the user's home (node_relay()), and those for A and B
 * to their nodes, which hand them to the connections' threads (sm_conn_frame_in()): A,
 * B and the home may be three nodes. A re-homed user's sessions (node.c) come without
 * their tokens, so they can no longer be resumed.
 *
 * A session that ends for good with stanzas never acknowledged gets them back as
 * PROTO_SM_ORPHAN frames after its unbind: each takes the recipient's step again, to a
 * full JID that has no session now (route.c: a message goes to another resource or to
 * offline storage; an iq is answered service-unavailable), errors going to the original
 * sender by JID, as for a stanza from another server.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "shm/decode.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* The user's resumable sessions (its MOD_SLOT_SM): few, so a small array. */
struct sm_entry {
    uint64_t conn;
    bool moving; /* given to conn by a resumption; the old connection's state is due */
    uint8_t token[PROTO_SM_TOKEN_LEN];
};
struct sm_user {
    uint32_t n, cap;
    struct sm_entry e[];
};

static struct sm_entry *entry_of(const struct user *u, uint64_t conn)
{
    struct sm_user *su = u->mod[MOD_SLOT_SM];
    for (uint32_t i = 0; su && i < su->n; i++)
        if (su->e[i].conn == conn)
            return &su->e[i];
    return NULL;
}

bool sm_token_set(struct user *u, uint64_t conn, const uint8_t *token)
{
    struct sm_entry *e = entry_of(u, conn);
    if (!e) {
        struct sm_user *su = u->mod[MOD_SLOT_SM];
        if (!su || su->n == su->cap) {
            uint32_t cap = su ? 2 * su->cap : 2;
            struct sm_user *b = realloc(su, sizeof *su + cap * sizeof su->e[0]);
            if (!b)
                return false;
            if (!su)
                b->n = 0;
            b->cap = cap;
            u->mod[MOD_SLOT_SM] = su = b;
        }
        e = &su->e[su->n++];
    }
    e->conn = conn;
    e->moving = false;
    memcpy(e->token, token, sizeof e->token);
    return true;
}

const uint8_t *sm_token_of(const struct user *u, uint64_t conn)
{
    const struct sm_entry *e = entry_of(u, conn);
    return e ? e->token : NULL;
}

static void session_end(struct shard *s, struct user *u, struct session *ss)
{
    (void)s;
    struct sm_user *su = u->mod[MOD_SLOT_SM];
    struct sm_entry *e = entry_of(u, ss->conn);
    if (e)
        *e = su->e[--su->n];
}

static void user_free(struct shard *s, struct user *u)
{
    (void)s;
    free(u->mod[MOD_SLOT_SM]);
    u->mod[MOD_SLOT_SM] = NULL;
}

const struct module mod_sm = {
    .name = "sm",
    .session_end = session_end,
    .user_free = user_free,
};

/* A token compared in constant time: how far a guess got must not show in the timing. */
static bool token_is(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (unsigned i = 0; i < PROTO_SM_TOKEN_LEN; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static struct user *token_user(struct shard *s, const struct proto_sm_token *t, uint32_t len)
{
    if (len < sizeof *t || t->bare_len > len - sizeof *t || !t->bare_len)
        return NULL;
    return user_find(&s->users, t->key, (const char *)(t + 1), t->bare_len);
}

/* A frame for the thread of connection `conn`, on this node or another. */
static void to_conn(struct shard *s, uint64_t conn, uint16_t kind, const void *p, uint32_t len)
{
    if (conn_here(s, conn))
        out_fe_frame(s, shard_fe(s, conn), kind, p, len, NULL, 0);
    else if (s->cl)
        node_send(s, PROTO_CONN_NODE(conn), node_peer_shard(s, PROTO_CONN_NODE(conn)), kind, p,
                  len, NULL, 0);
}

static void resume_failed(struct shard *s, uint64_t conn, uint64_t key)
{
    struct proto_sm_state f = {.conn = conn, .to = conn, .key = key, .result = -ENOENT};
    to_conn(s, conn, PROTO_SM_RESUMED, &f, sizeof f);
}

static void resume(struct shard *s, const struct proto_sm_token *t, uint32_t len)
{
    struct user *u = token_user(s, t, len);
    struct sm_user *su = u ? u->mod[MOD_SLOT_SM] : NULL;
    struct sm_entry *e = NULL;
    struct session *ss = NULL;
    for (uint32_t i = 0; su && i < su->n; i++)
        if (token_is(su->e[i].token, t->token) && (ss = session_by_conn(u, su->e[i].conn))) {
            e = &su->e[i];
            break;
        }
    if (!e || e->moving || ss->conn == t->conn) {
        resume_failed(s, t->conn, t->key);
        return;
    }
    struct proto_sm_takeover tk = {.conn = ss->conn, .to = t->conn, .key = t->key};
    ss->conn = e->conn = t->conn;
    e->moving = true;
    to_conn(s, tk.conn, PROTO_SM_TAKEOVER, &tk, sizeof tk);
}

/* The session that connection `conn` of a user of this key has (any user of the key: the
 * connection tells them apart), or NULL. */
static struct session *session_of(struct shard *s, uint64_t key, uint64_t conn, struct user **up)
{
    struct user_table *t = &s->users;
    for (struct user *u = t->buckets ? t->buckets[key & t->mask] : NULL; u; u = u->next) {
        struct session *ss = u->key == key ? session_by_conn(u, conn) : NULL;
        if (ss) {
            *up = u;
            return ss;
        }
    }
    return NULL;
}

static bool handoff(struct shard *s, const struct proto_sm_state *h, uint32_t len)
{
    if (len < sizeof *h)
        return false;
    struct user *u;
    struct session *ss = session_of(s, h->key, h->to, &u);
    struct sm_entry *e = ss ? entry_of(u, h->to) : NULL;
    if (!e || !e->moving) {
        /* The session ended meanwhile (another took its resource, or the new connection
         * went away): the new connection's thread gets what the old one held, marked
         * so, to hand it back as at any end. */
        if (h->result < 0) {
            resume_failed(s, h->to, h->key);
            return true;
        }
        char *copy = malloc(len);
        if (!copy) {
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a session's queue is lost", s->idx);
            return true;
        }
        memcpy(copy, h, len);
        ((struct proto_sm_state *)(void *)copy)->result = -ESRCH;
        to_conn(s, h->to, PROTO_SM_RESUMED, copy, len);
        free(copy);
        return true;
    }
    if (h->result < 0) {
        /* The old connection had nothing to give (it was gone, its end on its way): the
         * session ends here, and the new connection hears item-not-found. */
        struct {
            struct proto_session b;
            char jid[JID_BUF];
        } m = {.b = {.conn = ss->conn, .key = u->key, .bare_len = u->bare_len}};
        size_t n = ss->jid_len < sizeof m.jid ? ss->jid_len : 0;
        memcpy(m.jid, ss->jid, n);
        m.b.jid_len = (uint16_t)n;
        resume_failed(s, h->to, h->key);
        if (n)
            route_unbind(s, &m.b, m.jid);
        return true;
    }
    e->moving = false;
    to_conn(s, h->to, PROTO_SM_RESUMED, h, len);
    return true;
}

/* The key a frame of ours is routed by (the user's): its home decides. */
static bool frame_key(uint16_t kind, const void *payload, uint32_t len, uint64_t *key)
{
    if (kind == PROTO_SM_HANDOFF ? len < sizeof(struct proto_sm_state)
                                 : len < sizeof(struct proto_sm_token))
        return false;
    /* Copied: a frame from a link may sit at any alignment. */
    size_t at = kind == PROTO_SM_HANDOFF ? offsetof(struct proto_sm_state, key)
                                         : offsetof(struct proto_sm_token, key);
    memcpy(key, (const char *)payload + at, sizeof *key);
    return true;
}

bool sm_frame(struct shard *s, uint16_t kind, void *payload, uint32_t len)
{
    struct user *u;
    const struct proto_sm_token *t = payload;
    uint64_t key;
    unsigned dst;
    if (kind != PROTO_SM_ORPHAN) {
        if (!frame_key(kind, payload, len, &key))
            return false;
        if ((dst = shard_of(s, key)) != s->idx) {
            if (s->cl)
                node_relay(s, dst, key, kind, payload, len);
            return s->cl != NULL; /* one node: the front end chose this shard */
        }
    }
    switch (kind) {
    case PROTO_SM_ENABLE:
        if (!(u = token_user(s, t, len)))
            return len >= sizeof *t && t->bare_len <= len - sizeof *t;
        if (session_by_conn(u, t->conn) && !sm_token_set(u, t->conn, t->token))
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a session cannot be resumed",
                   s->idx);
        return true;
    case PROTO_SM_RESUME:
        if (len < sizeof *t || t->bare_len > len - sizeof *t)
            return false;
        resume(s, t, len);
        return true;
    case PROTO_SM_HANDOFF:
        return handoff(s, payload, len);
    case PROTO_SM_ORPHAN:
        if (len < sizeof(struct proto_stanza))
            return false;
        /* Errors go back by JID: the sender's connection is not this one. */
        ((struct proto_stanza *)payload)->flags |= PROTO_STANZA_REMOTE;
        shard_frame(s, RK_INBOUND, payload, len);
        return true;
    }
    return false;
}

void sm_conn_frame_in(struct shard *s, uint16_t kind, const void *payload, uint32_t len)
{
    uint64_t conn;
    if (kind == PROTO_SM_TAKEOVER ? len < sizeof(struct proto_sm_takeover)
                                  : len < sizeof(struct proto_sm_state)) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: malformed frame of kind %u from another node", s->idx,
               kind);
        return;
    }
    size_t at = kind == PROTO_SM_TAKEOVER ? offsetof(struct proto_sm_takeover, conn)
                                          : offsetof(struct proto_sm_state, to);
    memcpy(&conn, (const char *)payload + at, sizeof conn);
    if (conn_here(s, conn))
        out_fe_frame(s, shard_fe(s, conn), kind, payload, len, NULL, 0);
}
