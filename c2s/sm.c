/*
 * sm.c: stream management (XEP-0198, urn:xmpp:sm:3): acknowledgements both ways, the
 * stanzas a client has not acknowledged, sessions kept when their connection drops, and
 * their resumption on a new connection, on any c2s thread.
 *
 * Counts. in_h counts the stanzas the client sent since <enable/> that the server
 * handled (on_stanza() calls sm_handled() for each); out_sent those written to it (or
 * that would have been: a parked session's), out_acked the client's last <a h=.../>.
 * Both are 32-bit and wrap (XEP-0198 §4). The stanzas from out_acked + 1 to out_sent wait
 * in sm.q as written, each a uint32_t length and its bytes, at most c2s.sm_max_unacked
 * of them and c2s.sm_max_unacked_bytes; one more ends the session (policy-violation). A
 * stanza CSI holds is not sent yet, so not counted (csi.c hands it here when it goes).
 * We ask <r/> once SM_R_EVERY stanzas wait, and at the sweep while any does.
 *
 * Parking. A resumable session whose connection drops without a close of its stream
 * (the socket failed, ended, or the idle ping got nothing back) is not ended: its struct
 * conn is copied into a struct sm_park (the connection's own parts left behind, the
 * session's moved) kept in the thread's table under the connection id the router knows,
 * and the router hears nothing (the session stays, available to its contacts). What the
 * router delivers to that id waits in the queue. c2s.resume_timeout (or the client's
 * shorter max) later, or past the queue's bounds, the session ends: unbind, then the
 * stanzas never acknowledged (sm_orphans(): messages and iq requests) go back to the
 * router, which stores the messages offline (or gives them to another resource) and
 * answers the iqs with errors. A session that ends any other way (the client's close, a
 * stream error) does the same at once. Parked sessions are registered again with a
 * restarted router, with their tokens, so they survive it.
 *
 * Resumption (router/sm.c has the protocol): <resume/> on a new connection B asks the
 * user's shard, which moves the session to B and asks the old connection's thread for
 * its state (PROTO_SM_TAKEOVER); the answer (PROTO_SM_HANDOFF: the counts, the queue,
 * the JID, presence and router state) comes back through the shard (PROTO_SM_RESUMED).
 * In a cluster the three may be on three nodes: the shard's frames cross the links. Meanwhile B keeps
 * what is delivered to it (CONN_RESUMING). B then writes <resumed/> and every stanza the
 * client's h says it did not get, in order, then what it kept. An old connection still
 * open is closed with <conflict/>.
 */
#include "c2s/c2s.h"
#include "common/core/log.h"
#include "common/xmpp/stanza.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_SM         "urn:xmpp:sm:3"
#define NS_STANZA_ERR "urn:ietf:params:xml:ns:xmpp-stanzas"
/* Stanzas waiting for their ack before we ask for it. */
#define SM_R_EVERY 8

struct sm {
    uint8_t token[PROTO_SM_TOKEN_LEN];
    bool enabled;  /* <enabled/> sent: counting */
    bool resume;   /* ... with an id: the session may be resumed */
    bool r_out;    /* our <r/> awaits its <a/> */
    uint32_t max;  /* seconds a parked session waits */
    uint32_t in_h, out_acked, out_sent;
    uint32_t qn;   /* stanzas queued: out_sent - out_acked */
    struct buf q;  /* [uint32_t length][stanza], oldest first */
    /* A resumption under way (CONN_RESUMING): the client's h, and what the router
     * delivered meanwhile (kept as q keeps, not counted yet). */
    uint32_t want_h;
    uint32_t pn;
    struct buf pend;
};

struct sm_park {
    struct sm_park *next; /* hash chain */
    uint64_t id;          /* the connection id the router knows the session by */
    uint32_t expires;     /* thread clock */
    struct conn c;        /* the session's parts; its fe part only names the old slot */
};

static void reply(struct conn *c, const char *s)
{
    fe_puts(&c->fe, s);
}

static void failed(struct conn *c, const char *condition)
{
    struct buf b = {0};
    buf_puts(&b, "<failed xmlns='" NS_SM "'><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='" NS_STANZA_ERR "'/></failed>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void sm_features(struct conn *c, struct buf *b)
{
    (void)c;
    buf_puts(b, "<sm xmlns='" NS_SM "'/>");
}

void sm_handled(struct conn *c)
{
    if (c->sm && c->sm->enabled)
        c->sm->in_h++;
}

bool sm_resumable(const struct conn *c)
{
    return c->sm && c->sm->resume && (c->fe.flags & CONN_F_BOUND) &&
           c->fe.t->cfg->c2s.resume_timeout;
}

const uint8_t *sm_token(const struct conn *c)
{
    return c->sm && c->sm->resume ? c->sm->token : NULL;
}

static void sm_struct_free(struct sm *sm)
{
    if (!sm)
        return;
    buf_free(&sm->q);
    buf_free(&sm->pend);
    free(sm);
}

void sm_free(struct conn *c)
{
    sm_struct_free(c->sm);
    c->sm = NULL;
}

static int q_push(struct buf *q, const char *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    if (buf_reserve(q, sizeof len + n) < 0)
        return -ENOMEM;
    buf_append(q, &len, sizeof len);
    buf_append(q, p, n);
    return 0;
}

/* The first of q's entries: its bytes in *p, its whole size returned (0: empty). */
static size_t q_first(const struct buf *q, const char **p, uint32_t *n)
{
    if (buf_used(q) < sizeof *n)
        return 0;
    memcpy(n, buf_data(q), sizeof *n);
    *p = buf_data(q) + sizeof *n;
    return sizeof *n + *n;
}

static void q_drop(struct sm *sm, uint32_t k)
{
    const char *p;
    uint32_t n;
    for (; k && sm->qn; k--, sm->qn--) {
        size_t sz = q_first(&sm->q, &p, &n);
        if (!sz)
            break;
        buf_consume(&sm->q, sz);
    }
    if (!sm->qn)
        buf_trim(&sm->q);
}

static void request_ack(struct conn *c)
{
    if (c->fe.flags & CONN_F_PARKED)
        return;
    c->sm->r_out = true;
    reply(c, "<r xmlns='" NS_SM "'/>");
}

void sm_tick(struct conn *c)
{
    if (c->sm && c->sm->enabled && c->sm->qn && !c->sm->r_out)
        request_ack(c);
}

static void park_end(struct sm_park *p);
static struct sm_park *park_of(struct conn *c)
{
    return (struct sm_park *)(void *)((char *)c - offsetof(struct sm_park, c));
}

/* Past the queue's bounds (or out of memory): the session ends, and what it holds goes
 * to offline storage. */
static void overflow(struct conn *c)
{
    LOG_RL(LOG_LEVEL_WARN, "conn %u: %u stanzas unacknowledged: the session ends", c->fe.slot,
           c->sm->qn);
    if (c->fe.fd < 0)
        park_end(park_of(c)); /* a parked session (no connection) */
    else if (!(c->fe.flags & CONN_F_PARKED))
        fe_stream_error(&c->fe, "policy-violation");
    /* else it is being parked or handed over: the one more goes with the rest */
}

void sm_out(struct conn *c, const char *p, size_t n)
{
    struct sm *sm = c->sm;
    if (c->fe.state == CONN_RESUMING && sm) {
        /* The session's old connection still has its queue: this goes behind it. */
        if (q_push(&sm->pend, p, n) < 0)
            LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory: a stanza is lost", c->fe.slot);
        sm->pn++;
        return;
    }
    if (!sm || !sm->enabled) {
        fe_write(&c->fe, p, n);
        return;
    }
    const struct config *cfg = c->fe.t->cfg;
    bool full = q_push(&sm->q, p, n) < 0;
    if (!full) {
        sm->out_sent++;
        sm->qn++;
    }
    if (!(c->fe.flags & CONN_F_PARKED))
        fe_write(&c->fe, p, n);
    if (full || sm->qn > cfg->c2s.sm_max_unacked || buf_used(&sm->q) > cfg->c2s.sm_max_unacked_bytes)
        overflow(c);
    else if (!sm->r_out && sm->qn >= SM_R_EVERY)
        request_ack(c);
}

/* h from the client: how many of ours it has. false when it claims more than we sent. */
static bool take_ack(struct sm *sm, uint32_t h)
{
    uint32_t k = h - sm->out_acked; /* wraps as the counts do */
    if (k > sm->qn)
        return false;
    q_drop(sm, k);
    sm->out_acked = h;
    return true;
}

static bool parse_u32(const char *s, uint32_t *out)
{
    if (!s || !*s)
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > UINT32_MAX || *s == '-' || *s == '+' || *s == ' ')
        return false;
    *out = (uint32_t)v;
    return true;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", in[i]);
}

static bool unhex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* SM_ENABLE / SM_RESUME: a token for this user's shard. */
static int send_token(struct conn *c, uint16_t kind, const uint8_t *token)
{
    const char *dom = c->fe.t->cfg->domain;
    char bare[JID_BUF];
    int bl = snprintf(bare, sizeof bare, "%s@%s", c->user, dom);
    if (bl < 0 || (size_t)bl >= sizeof bare)
        return -EINVAL;
    struct {
        struct proto_sm_token h;
        char bare[JID_BUF];
    } m = {.h = {.conn = fe_conn_id(&c->fe), .key = jid_hash(bare, (size_t)bl),
                 .bare_len = (uint16_t)bl}};
    memcpy(m.h.token, token, PROTO_SM_TOKEN_LEN);
    memcpy(m.bare, bare, (size_t)bl);
    return fe_port_send(c->fe.t, fe_shard_of(c->fe.t, m.h.key), kind, &m,
                        (uint32_t)(sizeof m.h + (size_t)bl));
}

static void on_enable(struct conn *c, const struct xml_node *e)
{
    const struct config *cfg = c->fe.t->cfg;
    if (!(c->fe.flags & CONN_F_BOUND) || c->sm) {
        failed(c, "unexpected-request"); /* XEP-0198 §3: after binding, once */
        return;
    }
    struct sm *sm = calloc(1, sizeof *sm);
    if (!sm) {
        failed(c, "resource-constraint");
        return;
    }
    const char *r = xml_node_attr(e, "resume");
    bool want = r && (!strcmp(r, "true") || !strcmp(r, "1"));
    sm->max = cfg->c2s.resume_timeout;
    uint32_t max;
    if (parse_u32(xml_node_attr(e, "max"), &max) && max && max < sm->max)
        sm->max = max;
    if (want && sm->max &&
        getrandom(sm->token, sizeof sm->token, 0) == (ssize_t)sizeof sm->token &&
        send_token(c, PROTO_SM_ENABLE, sm->token) == 0)
        sm->resume = true;
    sm->enabled = true;
    c->sm = sm;
    struct buf b = {0};
    buf_puts(&b, "<enabled xmlns='" NS_SM "'");
    if (sm->resume) {
        char id[2 * PROTO_SM_TOKEN_LEN + 1], mx[16];
        hex(sm->token, sizeof sm->token, id);
        snprintf(mx, sizeof mx, "%u", sm->max);
        xmlw_attr(&b, "id", id, strlen(id));
        buf_puts(&b, " resume='true'");
        xmlw_attr(&b, "max", mx, strlen(mx));
    }
    buf_puts(&b, "/>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void on_ack(struct conn *c, const struct xml_node *e)
{
    uint32_t h;
    if (!c->sm || !c->sm->enabled)
        return; /* nothing was asked: ignored */
    if (!parse_u32(xml_node_attr(e, "h"), &h)) {
        fe_stream_error(&c->fe, "invalid-xml");
        return;
    }
    if (!take_ack(c->sm, h)) {
        /* XEP-0198 §4: the client acknowledges more than it was sent. */
        LOG_RL(LOG_LEVEL_INFO, "conn %u: <a h='%u'/> beyond the %u stanzas sent", c->fe.slot, h,
               c->sm->out_sent);
        fe_stream_error(&c->fe, "undefined-condition");
        return;
    }
    c->sm->r_out = false;
}

static void on_resume(struct conn *c, const struct xml_node *e)
{
    uint8_t token[PROTO_SM_TOKEN_LEN];
    uint32_t h;
    if (!(c->fe.flags & CONN_F_AUTHED) || (c->fe.flags & CONN_F_BOUND) ||
        c->fe.state != FE_OPEN || c->sm) {
        failed(c, "unexpected-request");
        return;
    }
    if (!unhex(xml_node_attr(e, "previd"), token, sizeof token) ||
        !parse_u32(xml_node_attr(e, "h"), &h)) {
        failed(c, "item-not-found");
        return;
    }
    struct sm *sm = calloc(1, sizeof *sm);
    if (!sm) {
        failed(c, "resource-constraint");
        return;
    }
    sm->want_h = h;
    memcpy(sm->token, token, sizeof token);
    c->sm = sm;
    c->fe.state = CONN_RESUMING;
    if (send_token(c, PROTO_SM_RESUME, token) < 0) {
        sm_free(c);
        c->fe.state = FE_OPEN;
        failed(c, "internal-server-error");
        return;
    }
    c->fe.flags |= FE_F_WAIT; /* what the client sends next waits for the answer */
}

void sm_element(struct conn *c, const struct xml_event *ev)
{
    struct fe_thread *t = c->fe.t;
    struct xml_node *e = xml_tree_parse(&c->fe.xp, ev->raw.p, ev->raw.len, &t->arena, t->scratch,
                                        sizeof t->scratch);
    if (!e) {
        fe_stream_error(&c->fe, "resource-constraint");
        goto out;
    }
    if (ev->name.len == 1 && ev->name.p[0] == 'r') {
        if (c->sm && c->sm->enabled) {
            char a[64];
            snprintf(a, sizeof a, "<a xmlns='" NS_SM "' h='%u'/>", c->sm->in_h);
            reply(c, a);
        } else {
            failed(c, "unexpected-request");
        }
    } else if (ev->name.len == 1 && ev->name.p[0] == 'a') {
        on_ack(c, e);
    } else if (ev->name.len == 6 && !memcmp(ev->name.p, "enable", 6)) {
        on_enable(c, e);
    } else if (ev->name.len == 6 && !memcmp(ev->name.p, "resume", 6)) {
        on_resume(c, e);
    } else {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
    }
out:
    arena_reset(&t->arena);
}

/* ---- the start tag of a stanza we wrote ---- */

static size_t norm_jid(const char *raw, size_t len, bool dec, char *out, size_t *bare)
{
    char tmp[JID_BUF];
    struct jid j;
    if (len >= sizeof tmp)
        return 0;
    size_t n = dec ? xml_decode(raw, len, true, tmp) : (memcpy(tmp, raw, len), len);
    if (jid_parse(&j, tmp, n, out, JID_BUF) < 0)
        return 0;
    *bare = jid_bare_len(&j);
    return j.len;
}

void stanza_head(struct c2s_thread *t, const char *p, size_t n, struct stanza_head *h)
{
    struct xml_parser xp;
    struct xml_event ev;
    h->kind = h->type = -1;
    h->from_len = h->to_len = h->from_bare_len = h->to_bare_len = 0;
    xml_init_fragment(&xp, NULL, t->fe.scratch, sizeof t->fe.scratch);
    if (xml_next(&xp, p, n, &ev) == XML_EV_START && (h->kind = stanza_kind(ev.name)) >= 0) {
        struct xml_attr a;
        struct xml_str type = {NULL, 0};
        char tb[16];
        for (unsigned i = 0; xml_attr_at(&xp, p, i, &a); i++) {
            if (a.ns.len)
                continue;
            if (a.name.len == 4 && !memcmp(a.name.p, "from", 4))
                h->from_len = norm_jid(a.raw.p, a.raw.len, a.decode, h->from, &h->from_bare_len);
            else if (a.name.len == 2 && !memcmp(a.name.p, "to", 2))
                h->to_len = norm_jid(a.raw.p, a.raw.len, a.decode, h->to, &h->to_bare_len);
            else if (a.name.len == 4 && !memcmp(a.name.p, "type", 4) && a.raw.len < sizeof tb) {
                type.len = a.decode ? xml_decode(a.raw.p, a.raw.len, true, tb) : a.raw.len;
                type.p = a.decode ? tb : a.raw.p;
            }
        }
        h->type = stanza_type(h->kind, type);
    }
    xml_free(&xp);
}

/* ---- the end of a session ---- */

/* Whose stanzas they are: the user's bare JID (the first bare_len bytes of jid) and key. */
struct owner {
    uint64_t conn, key;
    const char *jid;
    size_t bare_len, local_len;
};

/* One stanza the client never acknowledged, to the router for its recipient's step again
 * (router/sm.c): messages (but errors) and iq requests; presence and answers have nothing
 * to go back to, and what came from the server itself (no `from`) nobody to go back to.
 * Only stanzas addressed to this user are ours to hand back. */
static void orphan(struct c2s_thread *t, const struct owner *o, const char *p, uint32_t n)
{
    struct stanza_head h;
    stanza_head(t, p, n, &h);
    if (h.kind == PROTO_MESSAGE ? h.type == PROTO_MSG_ERROR
                                : h.kind != PROTO_IQ || h.type > PROTO_IQ_SET)
        return;
    if (!h.from_len || !h.to_len || h.to_bare_len != o->bare_len ||
        memcmp(h.to, o->jid, o->bare_len))
        return;
    size_t len = sizeof(struct proto_stanza) + h.from_len + h.to_len + n;
    char *f = malloc(len);
    struct proto_stanza *s = (struct proto_stanza *)f;
    if (f) {
        memset(s, 0, sizeof *s);
        s->conn = o->conn;
        s->key = s->to_key = o->key;
        s->kind = (uint8_t)h.kind;
        s->type = (uint8_t)h.type;
        s->flags = PROTO_STANZA_LOCAL;
        s->from_len = (uint16_t)h.from_len;
        s->from_bare_len = (uint16_t)h.from_bare_len;
        s->to_len = (uint16_t)h.to_len;
        s->to_bare_len = (uint16_t)h.to_bare_len;
        s->to_domain_off = (uint16_t)(o->local_len + 1);
        s->to_domain_len = (uint16_t)(h.to_bare_len - s->to_domain_off);
        s->head_len = n; /* out_error() reads as far as the start tag goes */
        s->stanza_len = n;
        char *d = (char *)(s + 1);
        memcpy(d, h.from, h.from_len);
        memcpy(d + h.from_len, h.to, h.to_len);
        memcpy(d + h.from_len + h.to_len, p, n);
    }
    if (!f || fe_port_send(&t->fe, fe_shard_of(&t->fe, o->key), PROTO_SM_ORPHAN, f,
                           (uint32_t)len) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "c2s thread %u: out of memory: an unacknowledged stanza is lost",
               t->fe.idx);
    free(f);
}

static void orphans_of(struct c2s_thread *t, const struct owner *o, struct buf *q)
{
    const char *p;
    uint32_t n;
    size_t sz;
    while ((sz = q_first(q, &p, &n))) {
        orphan(t, o, p, n);
        buf_consume(q, sz);
    }
}

/* c's user: c->jid once bound; a connection that is resuming knows only its login. */
static bool owner_of(struct conn *c, struct owner *o, char *bare)
{
    int bl = snprintf(bare, JID_BUF, "%s@%s", c->user ? c->user : "", c->fe.t->cfg->domain);
    if (!c->user || bl < 0 || bl >= JID_BUF)
        return false;
    *o = (struct owner){.conn = fe_conn_id(&c->fe), .key = jid_hash(bare, (size_t)bl),
                        .jid = bare, .bare_len = (size_t)bl, .local_len = strlen(c->user)};
    return true;
}

void sm_orphans(struct conn *c)
{
    struct owner o;
    char bare[JID_BUF];
    if (!c->sm)
        return;
    if (owner_of(c, &o, bare)) {
        orphans_of(conn_thread(c), &o, &c->sm->q);
        orphans_of(conn_thread(c), &o, &c->sm->pend);
    }
    c->sm->qn = c->sm->pn = 0;
}

/* ---- parked sessions ---- */

static struct sm_park **park_bucket(struct c2s_thread *t, uint64_t id)
{
    uint64_t h = id * 0x9E3779B97F4A7C15ull;
    return &t->parks[(h >> 32) & t->parks_mask];
}

struct conn *sm_parked(struct c2s_thread *t, uint64_t id)
{
    if (!t->nparks)
        return NULL;
    id &= ~PROTO_CONN_NODE_MASK; /* the router's copies carry its node (proto.h) */
    for (struct sm_park *p = *park_bucket(t, id); p; p = p->next)
        if (p->id == id)
            return &p->c;
    return NULL;
}

static void park_unlink(struct sm_park *p)
{
    struct c2s_thread *t = conn_thread(&p->c);
    struct sm_park **pp = park_bucket(t, p->id);
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = p->next;
        t->nparks--;
    }
}

static void park_free(struct sm_park *p)
{
    struct conn *c = &p->c;
    sm_free(c);
    csi_free(c);
    free(c->presence);
    free(c->directed);
    free(c->user);
    free(c->jid);
    free(c->from_attr);
    free(p);
}

/* The session ends for good: the router hears of it, then gets what the client never
 * acknowledged. */
static void park_end(struct sm_park *p)
{
    park_unlink(p);
    route_unbind(&p->c);
    sm_orphans(&p->c);
    park_free(p);
}

void sm_park_closed(struct conn *c)
{
    park_end(park_of(c)); /* the unbind finds no session: the router ended it */
}

static void park_sweep(struct fe_thread *ft, struct fe_timer *tm)
{
    struct c2s_thread *t = (struct c2s_thread *)ft;
    (void)tm;
    for (uint32_t i = 0; t->parks && i <= t->parks_mask; i++)
        for (struct sm_park *p = t->parks[i], *next; p; p = next) {
            next = p->next;
            if ((int32_t)(ft->now - p->expires) >= 0) {
                LOG_DEBUG("%.*s: not resumed in time: the session ends", (int)p->c.jid_len,
                          p->c.jid);
                park_end(p);
            }
        }
    if (t->nparks)
        fe_timer_at(ft, &t->park_timer, fe_now_us() + 1000000, park_sweep);
}

static int parks_grow(struct c2s_thread *t)
{
    uint32_t n = t->parks ? (t->parks_mask + 1) * 2 : 64;
    struct sm_park **b = calloc(n, sizeof *b);
    if (!b)
        return t->parks ? 0 : -ENOMEM; /* longer chains, still correct */
    struct sm_park **old = t->parks;
    uint32_t old_n = old ? t->parks_mask + 1 : 0;
    t->parks = b;
    t->parks_mask = n - 1;
    for (uint32_t i = 0; i < old_n; i++)
        for (struct sm_park *p = old[i], *next; p; p = next) {
            next = p->next;
            struct sm_park **pp = park_bucket(t, p->id);
            p->next = *pp;
            *pp = p;
        }
    free(old);
    return 0;
}

/* What CSI holds for c goes in the queue, unwritten: the client's, not sent yet, for
 * its session's next connection (sm_out() writes nothing for a parked one). */
static void held_to_queue(struct conn *c)
{
    c->fe.flags |= CONN_F_PARKED;
    csi_flush(c);
    csi_free(c);
    c->fe.flags &= (uint16_t)~CONN_F_PARKED;
}

/* c's session leaves its connection for a park; c keeps none of it. */
static bool park(struct conn *c)
{
    struct c2s_thread *t = conn_thread(c);
    if ((!t->parks || t->nparks > t->parks_mask) && parks_grow(t) < 0)
        return false;
    struct sm_park *p = malloc(sizeof *p);
    if (!p)
        return false;
    held_to_queue(c);
    memcpy(&p->c, c, sizeof *c);
    c->fe.flags &= (uint16_t)~CONN_F_BOUND;
    /* The copy keeps only what names the old slot (its id) and the session. */
    struct fe_conn *f = &p->c.fe;
    memset(f, 0, sizeof *f);
    f->t = c->fe.t;
    f->slot = c->fe.slot;
    f->gen = c->fe.gen;
    f->fd = -1;
    f->state = FE_OPEN;
    f->flags = (uint16_t)((c->fe.flags & (CONN_F_AUTHED | CONN_F_AVAILABLE)) | CONN_F_BOUND |
                          CONN_F_PARKED);
    p->c.iq_id = NULL;
    p->c.sasl = NULL;
    p->id = fe_conn_id(&c->fe);
    p->expires = t->fe.now + c->sm->max;
    c->sm = NULL;
    c->user = c->jid = c->from_attr = c->presence = c->directed = NULL;
    c->presence_len = c->directed_len = 0;
    struct sm_park **pp = park_bucket(t, p->id);
    p->next = *pp;
    *pp = p;
    t->nparks++;
    if (t->nparks == 1) /* the first: the sweep starts (it stops when none is left) */
        fe_timer_at(&t->fe, &t->park_timer, fe_now_us() + 1000000, park_sweep);
    LOG_DEBUG("conn %u: %.*s parked for %u s", c->fe.slot, (int)p->c.jid_len, p->c.jid,
              p->c.sm->max);
    return true;
}

/* A connection that asked to resume ends: the router may have moved the session to it
 * already, so the session ends with it (the unbind names the connection; the router
 * reads only the bare JID of the JID it carries), and what it was given goes back. */
static void resume_abandoned(struct conn *c)
{
    struct owner o;
    char bare[JID_BUF];
    if (!owner_of(c, &o, bare))
        return;
    struct {
        struct proto_session h;
        char jid[JID_BUF + 2];
    } m = {.h = {.conn = o.conn, .key = o.key, .jid_len = (uint16_t)(o.bare_len + 2),
                 .bare_len = (uint16_t)o.bare_len}};
    memcpy(m.jid, bare, o.bare_len);
    memcpy(m.jid + o.bare_len, "/r", 2);
    if (fe_port_send(c->fe.t, fe_shard_of(c->fe.t, o.key), PROTO_UNBIND, &m,
                     (uint32_t)(sizeof m.h + o.bare_len + 2)) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory reporting its end to the router", c->fe.slot);
    sm_orphans(c);
}

bool sm_closing(struct conn *c)
{
    if (c->fe.state == CONN_RESUMING) {
        resume_abandoned(c);
        return false;
    }
    /* A stream that ended (the client's close, our error) ends its session; one whose
     * connection failed under it waits for its client. */
    if (!sm_resumable(c) || c->fe.ended || c->fe.t->stopping)
        return false;
    return park(c);
}

void sm_reregister(struct c2s_thread *t)
{
    for (uint32_t i = 0; t->parks && i <= t->parks_mask; i++)
        for (struct sm_park *p = t->parks[i]; p; p = p->next)
            route_bind(&p->c, p->c.jid, p->c.jid_len, p->c.bare_len, true);
}

void sm_parks_free(struct c2s_thread *t)
{
    for (uint32_t i = 0; t->parks && i <= t->parks_mask; i++)
        for (struct sm_park *p = t->parks[i], *next; p; p = next) {
            next = p->next;
            park_free(p);
        }
    free(t->parks);
    t->parks = NULL;
    t->nparks = 0;
    fe_timer_cancel(&t->park_timer);
}

/* ---- resumption ---- */

static void send_handoff(struct c2s_thread *t, const struct proto_sm_takeover *tk,
                         struct conn *c)
{
    struct proto_sm_state h = {.conn = tk->conn, .to = tk->to, .key = tk->key,
                               .result = -ENOENT};
    struct buf b = {0};
    if (c) {
        struct sm *sm = c->sm;
        h.result = 0;
        h.in_h = sm->in_h;
        h.out_acked = sm->out_acked;
        h.out_sent = sm->out_sent;
        h.jid_len = c->jid_len;
        h.bare_len = c->bare_len;
        h.priority = c->priority;
        h.router_flags = c->router_flags;
        h.available = (c->fe.flags & CONN_F_AVAILABLE) != 0;
        h.presence_len = c->presence ? c->presence_len : 0;
        h.directed_len = c->directed_len;
        h.queue_len = buf_used(&sm->q);
    }
    if (buf_append(&b, &h, sizeof h) < 0 ||
        (c && (buf_append(&b, c->jid, c->jid_len) < 0 ||
               buf_append(&b, c->presence, h.presence_len) < 0 ||
               buf_append(&b, c->directed, h.directed_len) < 0 ||
               buf_append(&b, buf_data(&c->sm->q), h.queue_len) < 0)) ||
        fe_port_send(&t->fe, fe_shard_of(&t->fe, tk->key), PROTO_SM_HANDOFF, buf_data(&b),
                     buf_used(&b)) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "c2s thread %u: out of memory handing a session over",
               t->fe.idx);
    buf_free(&b);
}

void sm_takeover(struct c2s_thread *t, const void *frame, uint32_t len)
{
    struct proto_sm_takeover tk;
    if (len < sizeof tk)
        return;
    memcpy(&tk, frame, sizeof tk);
    struct conn *c = sm_parked(t, tk.conn);
    bool parked = c != NULL;
    if (!c)
        c = conn_by_id(t, tk.conn);
    if (c && (!(c->fe.flags & CONN_F_BOUND) || !c->sm || !c->sm->resume))
        c = NULL;
    if (c && !parked)
        held_to_queue(c); /* its connection is still open: the client saw it fail first */
    send_handoff(t, &tk, c);
    if (!c)
        return;
    if (parked) {
        park_unlink(park_of(c));
        park_free(park_of(c));
        return;
    }
    /* The session lives on elsewhere: this connection ends without telling the router. */
    c->fe.flags &= (uint16_t)~CONN_F_BOUND;
    sm_free(c);
    fe_stream_error(&c->fe, "conflict");
}

static void adopt_failed(struct conn *c)
{
    /* The router ended the session it had moved here, if it had: what it delivered
     * meanwhile goes back as at any end. */
    sm_orphans(c);
    sm_free(c);
    c->fe.state = FE_OPEN;
    c->fe.flags &= (uint16_t)~FE_F_WAIT;
    failed(c, "item-not-found");
    fe_input(&c->fe, NULL, 0);
}

void sm_handoff(struct c2s_thread *t, const void *frame, uint32_t len)
{
    struct proto_sm_state h;
    if (len < sizeof h)
        return;
    memcpy(&h, frame, sizeof h);
    struct conn *c = conn_by_id(t, h.to);
    const char *jid = (const char *)frame + sizeof h;
    uint64_t need = sizeof h + (uint64_t)h.jid_len + h.presence_len + h.directed_len + h.queue_len;
    bool whole = need <= len && h.bare_len && h.bare_len < h.jid_len && jid[h.bare_len] == '/';
    if (c && (c->fe.state != CONN_RESUMING || !c->sm))
        c = NULL;
    if (!c || h.result == -ESRCH) {
        /* It went away (its unbind ended the session the router had moved to it), or
         * the session ended meanwhile: what the old connection handed over goes back as
         * at any end. */
        if (h.result != -ENOENT && whole) {
            struct owner o = {.conn = h.to, .key = h.key, .jid = jid, .bare_len = h.bare_len};
            const char *at = memchr(jid, '@', h.bare_len);
            o.local_len = at ? (size_t)(at - jid) : 0;
            struct buf q = {0};
            if (buf_append(&q, jid + need - sizeof h - h.queue_len, h.queue_len) == 0)
                orphans_of(t, &o, &q);
            buf_free(&q);
        }
        if (c)
            adopt_failed(c);
        return;
    }
    if (h.result < 0) {
        adopt_failed(c);
        return;
    }
    if (!whole || route_set_jid(c, jid, h.jid_len, h.bare_len) < 0) {
        LOG_RL(LOG_LEVEL_ERROR, "c2s thread %u: a session handoff malformed or out of memory",
               t->fe.idx);
        resume_abandoned(c); /* the router gave the session to us: it ends here */
        adopt_failed(c);
        return;
    }
    const char *pres = jid + h.jid_len, *dir = pres + h.presence_len, *q = dir + h.directed_len;
    struct sm *sm = c->sm;
    free(c->presence);
    free(c->directed);
    c->presence = h.presence_len ? malloc(h.presence_len) : NULL;
    c->directed = h.directed_len ? malloc(h.directed_len) : NULL;
    if (c->presence)
        memcpy(c->presence, pres, h.presence_len);
    if (c->directed)
        memcpy(c->directed, dir, h.directed_len);
    c->presence_len = c->presence ? h.presence_len : 0;
    c->directed_len = c->directed ? h.directed_len : 0;
    c->priority = h.priority;
    c->router_flags = h.router_flags;
    if (h.available)
        c->fe.flags |= CONN_F_AVAILABLE;
    sm->enabled = sm->resume = true;
    sm->in_h = h.in_h;
    sm->out_acked = h.out_acked;
    sm->out_sent = h.out_sent;
    sm->qn = h.out_sent - h.out_acked;
    sm->max = t->fe.cfg->c2s.resume_timeout;
    buf_append(&sm->q, q, h.queue_len);
    c->fe.state = FE_OPEN;
    c->fe.flags = (uint16_t)((c->fe.flags & ~FE_F_WAIT) | CONN_F_BOUND);
    c->fe.deadline = 0;
    c->fe.last_rx = t->fe.now;

    /* A client that claims more than was sent gets everything again. */
    if (!take_ack(sm, sm->want_h))
        LOG_RL(LOG_LEVEL_INFO, "conn %u: resumed with h='%u' beyond the %u sent", c->fe.slot,
               sm->want_h, sm->out_sent);
    char id[2 * PROTO_SM_TOKEN_LEN + 1], a[160];
    hex(sm->token, sizeof sm->token, id);
    snprintf(a, sizeof a, "<resumed xmlns='" NS_SM "' previd='%s' h='%u'/>", id, sm->in_h);
    reply(c, a);
    /* What it missed, as it was written, then what came since. */
    const char *p;
    uint32_t n;
    size_t off = 0;
    while (off + sizeof n <= buf_used(&sm->q)) {
        memcpy(&n, buf_data(&sm->q) + off, sizeof n);
        p = buf_data(&sm->q) + off + sizeof n;
        fe_write(&c->fe, p, n);
        off += sizeof n + n;
    }
    struct buf pend = sm->pend;
    sm->pend = (struct buf){0};
    sm->pn = 0;
    size_t sz;
    while ((sz = q_first(&pend, &p, &n))) {
        sm_out(c, p, n);
        buf_consume(&pend, sz);
    }
    buf_free(&pend);
    LOG_DEBUG("conn %u: %.*s resumed, %u stanzas again", c->fe.slot, (int)c->jid_len, c->jid,
              sm->qn);
    if (c->sm && sm->qn)
        request_ack(c);
    fe_input(&c->fe, NULL, 0);
}
