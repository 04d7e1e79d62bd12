/*
 * presence.c: presence (RFC 6121 §4).
 *
 * Broadcast (a presence without `to`, from session ss of user u, in u's shard):
 *   - available: ss becomes available with this presence and priority; it goes to every
 *     contact with a subscription from or both (not blocked by u), and to u's own
 *     available resources. The first one (initial presence, §4.2) also probes the
 *     contacts u subscribes to (to or both), shows ss its sibling resources, delivers
 *     offline messages (priority >= 0) and unanswered subscription requests.
 *   - unavailable: the same audience, plus the JIDs ss sent directed presence to (§4.6).
 * Directed presence: a session remembers router.max_directed JIDs it sent available
 * presence to (each costs an unavailable at its end); one more is refused with
 * resource-constraint and not sent.
 * Fan-out travels once per destination: contacts are grouped by shard, one RK_FANOUT
 * frame per other shard (in a cluster, one per other node, with every contact homed
 * there: that node's receiving shard splits it among its shards); each shard then writes one PROTO_DELIVER per front-end thread
 * listing its recipients, each recipient's `to` (the contact's bare JID, §4.2.2) filled
 * in by c2s. A contact that is offline costs nothing: its shard skips it.
 *
 * Probes (§4.3): answered by the contact's shard when the prober is subscribed (the
 * contact's roster has it as from or both), with each available resource's last
 * presence, straight to the prober's connection.
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/xmpp/xmlw.h"

#include <stdlib.h>
#include <string.h>

/* Where a presence's `to` goes: right after "<presence". */
#define TO_AT 9

static bool sub_from(const struct roster_item *it)
{
    return it->sub == 2 || it->sub == 3; /* STORE_SUB_FROM, STORE_SUB_BOTH */
}

static bool sub_to(const struct roster_item *it)
{
    return it->sub == 1 || it->sub == 3; /* STORE_SUB_TO, STORE_SUB_BOTH */
}

/* Contacts grouped per destination shard, written as RK_FANOUT / RK_PROBE bodies. */
struct groups {
    struct buf *per; /* [nshards]: uint16_t len + bare JID, per contact */
    uint32_t *count;
};

/* Destinations: the shards, then in a cluster the other nodes (shard_of()). */
static unsigned ngroups(const struct shard *s)
{
    return s->cl ? s->nshards + HOME_NODES_MAX : s->nshards;
}

static bool groups_init(struct groups *g, unsigned nshards)
{
    g->per = calloc(nshards, sizeof *g->per);
    g->count = calloc(nshards, sizeof *g->count);
    return g->per && g->count;
}

static void groups_free(struct groups *g, unsigned nshards)
{
    for (unsigned i = 0; g->per && i < nshards; i++)
        buf_free(&g->per[i]);
    free(g->per);
    free(g->count);
}

static void groups_put(struct groups *g, unsigned dst, const char *jid, uint16_t len)
{
    if (buf_append(&g->per[dst], &len, sizeof len) == 0 && buf_append(&g->per[dst], jid, len) == 0)
        g->count[dst]++;
}

static void groups_add(struct shard *s, struct groups *g, const struct roster_item *it)
{
    groups_put(g, shard_of(s, it->hash), it->jid, it->jid_len);
}

/* Contacts on other servers, grouped per domain: one PROTO_REMOTE_FANOUT frame each. A
 * roster names few remote domains, so a list walked for each contact does. */
struct remote_group {
    const char *dom; /* inside a roster item's JID */
    size_t dlen;
    uint32_t count;
    struct buf list;
};

struct remotes {
    struct remote_group *v;
    unsigned n, cap;
};

/* The contact's domain, when it is not ours. */
static bool remote_domain(const struct shard *s, const struct roster_item *it, const char **dom,
                          size_t *dlen)
{
    const char *at = memchr(it->jid, '@', it->jid_len);
    *dom = at ? at + 1 : it->jid;
    *dlen = (size_t)(it->jid + it->jid_len - *dom);
    return !(*dlen == strlen(s->cfg->domain) && !memcmp(*dom, s->cfg->domain, *dlen));
}

static void remotes_add(struct remotes *r, const char *dom, size_t dlen,
                        const struct roster_item *it)
{
    unsigned i = 0;
    while (i < r->n && !(r->v[i].dlen == dlen && !memcmp(r->v[i].dom, dom, dlen)))
        i++;
    if (i == r->n) {
        if (r->n == r->cap) {
            unsigned cap = r->cap ? 2 * r->cap : 4;
            struct remote_group *v = realloc(r->v, cap * sizeof *v);
            if (!v)
                return;
            r->v = v;
            r->cap = cap;
        }
        r->v[r->n++] = (struct remote_group){.dom = dom, .dlen = dlen};
    }
    uint16_t len = it->jid_len;
    if (buf_append(&r->v[i].list, &len, sizeof len) == 0 &&
        buf_append(&r->v[i].list, it->jid, len) == 0)
        r->v[i].count++;
}

/* Sends stanza to every group, then forgets them. */
static void remotes_send(struct shard *s, struct remotes *r, const char *stanza, size_t len)
{
    for (unsigned i = 0; i < r->n; i++) {
        struct remote_group *g = &r->v[i];
        if (g->count)
            out_remote_fanout(s, g->dom, g->dlen, stanza, len, TO_AT, buf_data(&g->list),
                              buf_used(&g->list), g->count, 0);
        buf_free(&g->list);
    }
    free(r->v);
    *r = (struct remotes){0};
}

/* Walks an RK_FANOUT/RK_PROBE contact list: the next bare JID, or false at the end. */
static bool next_contact(const char **p, const char *end, const char **jid, uint16_t *len)
{
    if (end - *p < 2)
        return false;
    memcpy(len, *p, 2);
    if ((size_t)(end - *p - 2) < *len)
        return false;
    *jid = *p + 2;
    *p += 2 + *len;
    return true;
}

/* Delivers a broadcast presence to the available sessions of the listed contacts of
 * this shard that do not block the sender: one frame per front-end thread. */
static void fanout_local(struct shard *s, const char *from, size_t from_len, const char *list,
                         size_t list_len, const char *stanza, size_t len, uint32_t to_at,
                         const char *exclude, size_t exclude_len)
{
    struct out_list l = {0};
    const char *p = list, *end = list + list_len, *jid;
    uint16_t jl;
    while (next_contact(&p, end, &jid, &jl)) {
        struct user *c = user_find(&s->users, jid_hash(jid, jl), jid, jl);
        if (!c || c->state != USER_READY || !c->sessions)
            continue; /* offline: presence is not stored (§4.2.4) */
        if (block_blocks(&c->block, from, from_len))
            continue;
        bool got = false;
        for (struct session *ss = c->sessions; ss; ss = ss->next)
            if (ss->available &&
                !(exclude_len && block_list_matches(exclude, exclude_len, ss->jid, ss->jid_len))) {
                out_list_add(&l, ss->conn, c->bare, c->bare_len);
                got = true;
            }
        if (got)
            mod_presence_in(s, c, from, from_len, stanza, len);
    }
    out_list_send(s, &l, stanza, len, to_at);
    out_list_free(&l);
}

/* A contact list from another node names contacts of every shard of this one (and, while
 * the nodes' views of the cluster differ, of other nodes): split by home, the part of
 * each other shard goes on as a frame of its own (head: what comes before the list, whose
 * uint32_t at count_at is the count). The contacts of this shard are left in *mine. True
 * when the list had contacts of other shards. */
static bool split_list(struct shard *s, uint16_t kind, const void *head, size_t head_len,
                       size_t count_at, const char *list, size_t list_len, struct buf *mine)
{
    const char *p = list, *end = list + list_len, *jid;
    uint16_t jl;
    bool all_mine = true;
    while (all_mine && next_contact(&p, end, &jid, &jl))
        all_mine = shard_of(s, jid_hash(jid, jl)) == s->idx;
    if (all_mine)
        return false;
    struct groups g;
    unsigned ng = ngroups(s);
    if (!groups_init(&g, ng)) {
        groups_free(&g, ng);
        return true;
    }
    for (p = list; next_contact(&p, end, &jid, &jl);)
        groups_put(&g, shard_of(s, jid_hash(jid, jl)), jid, jl);
    for (unsigned dst = 0; dst < ng; dst++) {
        if (!g.count[dst])
            continue;
        if (dst == s->idx) {
            buf_append(mine, buf_data(&g.per[dst]), buf_used(&g.per[dst]));
            continue;
        }
        struct buf fr = {0};
        if (buf_append(&fr, head, head_len) == 0 &&
            buf_append(&fr, buf_data(&g.per[dst]), buf_used(&g.per[dst])) == 0) {
            memcpy(buf_data(&fr) + count_at, &g.count[dst], sizeof g.count[dst]);
            node_relay(s, dst, 0, kind, buf_data(&fr), (uint32_t)buf_used(&fr));
        }
        buf_free(&fr);
    }
    groups_free(&g, ng);
    return true;
}

void presence_fanout_in(struct shard *s, const struct rk_fanout *f, uint32_t len)
{
    const char *p = (const char *)(f + 1);
    uint64_t need = sizeof *f + (uint64_t)f->from_len + f->stanza_len + f->exclude_len;
    if (need > len || f->to_at > f->stanza_len)
        return;
    const char *from = p, *stanza = p + f->from_len, *exclude = stanza + f->stanza_len;
    const char *list = exclude + f->exclude_len;
    size_t list_len = len - (size_t)need;
    struct buf mine = {0};
    if (s->cl && split_list(s, RK_FANOUT, f, (size_t)need, offsetof(struct rk_fanout, ncontacts),
                            list, list_len, &mine)) {
        list = buf_data(&mine);
        list_len = buf_used(&mine);
    }
    if (list_len)
        fanout_local(s, from, f->from_len, list, list_len, stanza, f->stanza_len, f->to_at,
                     exclude, f->exclude_len);
    buf_free(&mine);
}

/* Sends a presence stanza (without `to`) from u to its contacts matching the filter. */
static void fanout(struct shard *s, struct user *u, const char *from, size_t from_len,
                   const char *stanza, size_t len, bool unavailable)
{
    struct groups g;
    struct buf ex = {0}; /* blocked resources: sessions that do not get it (XEP-0191 §3.3) */
    unsigned ng = ngroups(s);
    if (!groups_init(&g, ng) || block_resources(&u->block, &ex) < 0) {
        groups_free(&g, ng);
        buf_free(&ex);
        return;
    }
    struct remotes r = {0};
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next) {
            const char *dom;
            size_t dlen;
            if (!sub_from(it) || block_blocks(&u->block, it->jid, it->jid_len))
                continue;
            if (remote_domain(s, it, &dom, &dlen))
                remotes_add(&r, dom, dlen, it);
            else
                groups_add(s, &g, it);
        }
    (void)unavailable;
    remotes_send(s, &r, stanza, len);
    for (unsigned dst = 0; dst < ng; dst++) {
        if (!g.count[dst])
            continue;
        if (dst == s->idx) {
            fanout_local(s, from, from_len, buf_data(&g.per[dst]), buf_used(&g.per[dst]),
                         stanza, len, TO_AT, buf_data(&ex), buf_used(&ex));
            continue;
        }
        struct rk_fanout f = {
            .from_key = u->key,
            .stanza_len = (uint32_t)len,
            .to_at = TO_AT,
            .from_len = (uint16_t)from_len,
            .from_bare_len = u->bare_len,
            .ncontacts = g.count[dst],
            .exclude_len = (uint32_t)buf_used(&ex),
        };
        struct buf fr = {0};
        if (buf_append(&fr, &f, sizeof f) == 0 && buf_append(&fr, from, from_len) == 0 &&
            buf_append(&fr, stanza, len) == 0 &&
            buf_append(&fr, buf_data(&ex), buf_used(&ex)) == 0 &&
            buf_append(&fr, buf_data(&g.per[dst]), buf_used(&g.per[dst])) == 0)
            out_to_shard(s, dst, RK_FANOUT, buf_data(&fr), buf_used(&fr));
        if (dst >= s->nshards) { /* to another node: once for all its contacts */
            s->stats.link_fanout_frames++;
            s->stats.link_fanout_contacts += g.count[dst];
            s->stats.link_bytes_saved += (uint64_t)(g.count[dst] - 1) *
                                         (sizeof(struct link_hdr) + buf_used(&fr) -
                                          buf_used(&g.per[dst]));
        } else {
            s->stats.fanout_frames++;
            s->stats.fanout_contacts += g.count[dst];
        }
        buf_free(&fr);
    }
    groups_free(&g, ng);
    buf_free(&ex);
}

/* The user's own available sessions hear it too (§4.2.2, §4.5.2). */
static void to_own(struct shard *s, struct user *u, const char *stanza, size_t len,
                   const struct session *also)
{
    uint64_t conns[64];
    unsigned n = 0;
    for (struct session *o = u->sessions; o; o = o->next) {
        if (!o->available && o != also)
            continue;
        conns[n++] = o->conn;
        if (n == 64) {
            out_deliver(s, conns, n, stanza, len);
            n = 0;
        }
    }
    if (n)
        out_deliver(s, conns, n, stanza, len);
}

static void probe(struct shard *s, struct user *u, struct session *ss)
{
    struct groups g;
    unsigned ng = ngroups(s);
    if (!groups_init(&g, ng)) {
        groups_free(&g, ng);
        return;
    }
    struct remotes r = {0};
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next) {
            const char *dom;
            size_t dlen;
            if (!sub_to(it) || block_blocks(&u->block, it->jid, it->jid_len))
                continue;
            if (remote_domain(s, it, &dom, &dlen))
                remotes_add(&r, dom, dlen, it);
            else
                groups_add(s, &g, it);
        }
    if (r.n) {
        /* Remote contacts get a probe from the bare JID (§4.3.1), one frame per server. */
        struct buf b = {0};
        buf_puts(&b, "<presence type='probe'");
        xmlw_attr(&b, "from", u->bare, u->bare_len);
        buf_puts(&b, "/>");
        remotes_send(s, &r, buf_data(&b), buf_used(&b));
        buf_free(&b);
    }
    for (unsigned dst = 0; dst < ng; dst++) {
        if (!g.count[dst])
            continue;
        struct rk_probe p = {
            .conn = ss->conn,
            .from_len = ss->jid_len,
            .from_bare_len = u->bare_len,
            .ncontacts = g.count[dst],
        };
        struct buf fr = {0};
        if (buf_append(&fr, &p, sizeof p) == 0 && buf_append(&fr, ss->jid, ss->jid_len) == 0 &&
            buf_append(&fr, buf_data(&g.per[dst]), buf_used(&g.per[dst])) == 0) {
            if (dst == s->idx)
                presence_probe_in(s, (const struct rk_probe *)buf_data(&fr), buf_used(&fr));
            else
                out_to_shard(s, dst, RK_PROBE, buf_data(&fr), buf_used(&fr));
        }
        buf_free(&fr);
    }
    groups_free(&g, ng);
}

void presence_probe_in(struct shard *s, const struct rk_probe *pr, uint32_t len)
{
    const char *p = (const char *)(pr + 1);
    if (sizeof *pr + (uint64_t)pr->from_len > len || pr->from_bare_len > pr->from_len)
        return;
    const char *prober = p, *end = (const char *)pr + len, *jid;
    uint16_t jl;
    p += pr->from_len;
    struct buf mine = {0};
    if (s->cl && split_list(s, RK_PROBE, pr, sizeof *pr + pr->from_len,
                            offsetof(struct rk_probe, ncontacts), p, (size_t)(end - p), &mine)) {
        if (!buf_used(&mine))
            return;
        p = buf_data(&mine);
        end = p + buf_used(&mine);
    }
    while (next_contact(&p, end, &jid, &jl)) {
        struct user *c = user_find(&s->users, jid_hash(jid, jl), jid, jl);
        if (!c || c->state != USER_READY)
            continue; /* nobody online there: nothing to answer (§4.3.2) */
        struct roster_item *it = roster_find(&c->roster, prober, pr->from_bare_len);
        if (!it || !sub_from(it) || block_blocks(&c->block, prober, pr->from_len))
            continue;
        if (PROTO_CONN_FE(pr->conn) == PROTO_FE_S2S) {
            /* A remote server asked: the answers go back over federation (§4.3.2). */
            presence_send_all(s, c, prober, pr->from_len, false);
            continue;
        }
        for (struct session *cs = c->sessions; cs; cs = cs->next) {
            if (!cs->available || !cs->presence)
                continue;
            struct out_rcpt r = {pr->conn, NULL, 0};
            struct buf a = {0};
            xmlw_attr(&a, "to", prober, pr->from_len);
            r.to_attr = buf_data(&a);
            r.to_len = (uint16_t)buf_used(&a);
            out_deliver_to(s, &r, 1, cs->presence, cs->presence_len, TO_AT);
            buf_free(&a);
        }
    }
    buf_free(&mine);
}

void presence_broadcast(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st)
{
    uint8_t type = st->h->type;
    if (type == PROTO_PRES_AVAILABLE) {
        bool initial = !ss->available;
        bool was_negative = ss->priority < 0;
        if (session_set_presence(ss, st->raw, st->raw_len, st->h->priority) < 0)
            return;
        fanout(s, u, ss->jid, ss->jid_len, st->raw, st->raw_len, false);
        to_own(s, u, st->raw, st->raw_len, ss);
        if (!initial) {
            /* A resource that stops refusing messages gets the stored ones (XEP-0160 §3). */
            if (was_negative && ss->priority >= 0)
                mod_receiving(s, u, ss);
            mod_presence_own(s, u, ss, st);
            return;
        }
        probe(s, u, ss);
        /* The new resource learns about its siblings. */
        for (struct session *o = u->sessions; o; o = o->next)
            if (o != ss && o->available && o->presence)
                out_deliver(s, &ss->conn, 1, o->presence, o->presence_len);
        if (ss->priority >= 0)
            mod_receiving(s, u, ss); /* stored messages (offline.c) */
        mod_initial_presence(s, u, ss); /* unanswered subscription requests (offline.c) */
        mod_presence_own(s, u, ss, st);
    } else if (type == PROTO_PRES_UNAVAILABLE) {
        bool was = ss->available;
        ss->available = false;
        free(ss->presence);
        ss->presence = NULL;
        ss->presence_len = 0;
        if (was)
            fanout(s, u, ss->jid, ss->jid_len, st->raw, st->raw_len, true);
        to_own(s, u, st->raw, st->raw_len, ss);
        /* Directed presence is undone (§4.6.3). */
        bool had_directed = ss->directed;
        while (ss->directed) {
            struct directed *d = ss->directed;
            struct buf b = {0};
            buf_puts(&b, "<presence type='unavailable'");
            xmlw_attr(&b, "from", ss->jid, ss->jid_len);
            xmlw_attr(&b, "to", d->jid, d->len);
            buf_puts(&b, "/>");
            const char *slash = memchr(d->jid, '/', d->len);
            size_t blen = slash ? (size_t)(slash - d->jid) : d->len;
            route_generated(s, ss->jid, ss->jid_len, u->bare_len, d->jid, d->len, blen,
                            PROTO_PRESENCE, PROTO_PRES_UNAVAILABLE, buf_data(&b), buf_used(&b));
            buf_free(&b);
            session_directed_drop(ss, &ss->directed);
        }
        if (had_directed)
            out_session_state(s, ss);
        mod_presence_own(s, u, ss, st);
    }
}

void presence_directed(struct shard *s, struct user *u, struct session *ss,
                       const struct stanza *st)
{
    /* Remembered only while the session is available and the target would not hear of
     * the session's end anyway (a subscriber gets the broadcast). */
    struct roster_item *it = roster_find(&u->roster, st->to, st->to_bare_len);
    struct directed **pp = &ss->directed;
    while (*pp && !((*pp)->len == st->to_len && !memcmp((*pp)->jid, st->to, st->to_len)))
        pp = &(*pp)->next;
    if (st->h->type == PROTO_PRES_AVAILABLE) {
        if (!*pp && ss->available && !(it && sub_from(it))) {
            /* Every JID remembered costs an unavailable at the end: a bounded list,
             * and over it the presence does not go (its end could not be told). */
            if (ss->ndirected >= s->cfg->router.max_directed ||
                !session_directed_add(ss, st->to, st->to_len)) {
                out_error(s, st, "wait", "resource-constraint");
                return;
            }
            out_session_state(s, ss);
        }
    } else if (*pp) {
        session_directed_drop(ss, pp);
        out_session_state(s, ss);
    }
    route_forward(s, st);
}

void presence_inbound(struct shard *s, struct user *v, const struct stanza *st)
{
    uint8_t type = st->h->type;
    if (type == PROTO_PRES_PROBE) {
        /* A probe a client sent: answered like a server's (§4.3.2). */
        struct rk_probe p = {.conn = st->h->conn,
                             .from_len = (uint16_t)st->from_len,
                             .from_bare_len = (uint16_t)st->from_bare_len,
                             .ncontacts = 1};
        struct buf fr = {0};
        uint16_t l = v->bare_len;
        if (!(st->h->flags & ROUTE_GENERATED) && buf_append(&fr, &p, sizeof p) == 0 &&
            buf_append(&fr, st->from, st->from_len) == 0 && buf_append(&fr, &l, 2) == 0 &&
            buf_append(&fr, v->bare, l) == 0)
            presence_probe_in(s, (const struct rk_probe *)buf_data(&fr), buf_used(&fr));
        buf_free(&fr);
        return;
    }
    if (st->to_len > st->to_bare_len) {
        struct session *ss = session_find(v, st->to + st->to_bare_len + 1,
                                          st->to_len - st->to_bare_len - 1);
        if (!ss)
            return; /* no such resource: dropped (§8.5.3.2.3) */
        out_deliver(s, &ss->conn, 1, st->raw, st->raw_len);
    } else {
        out_to_available(s, v, st->raw, st->raw_len);
    }
    if ((type == PROTO_PRES_AVAILABLE || type == PROTO_PRES_UNAVAILABLE) &&
        st->from_len > st->from_bare_len)
        mod_presence_in(s, v, st->from, st->from_len, st->raw, st->raw_len);
}

void presence_send_all(struct shard *s, struct user *u, const char *to, size_t to_len,
                       bool unavailable)
{
    for (struct session *ss = u->sessions; ss; ss = ss->next) {
        if (!ss->available)
            continue;
        struct buf b = {0};
        if (unavailable || !ss->presence) {
            buf_puts(&b, "<presence type='unavailable'");
            xmlw_attr(&b, "from", ss->jid, ss->jid_len);
            xmlw_attr(&b, "to", to, to_len);
            buf_puts(&b, "/>");
        } else {
            /* The last presence with a `to`, inserted where broadcasts get theirs. */
            buf_append(&b, ss->presence, TO_AT);
            xmlw_attr(&b, "to", to, to_len);
            buf_append(&b, ss->presence + TO_AT, ss->presence_len - TO_AT);
        }
        const char *slash = memchr(to, '/', to_len);
        route_generated(s, ss->jid, ss->jid_len, u->bare_len, to, to_len,
                        slash ? (size_t)(slash - to) : to_len, PROTO_PRESENCE,
                        unavailable || !ss->presence ? PROTO_PRES_UNAVAILABLE : PROTO_PRES_AVAILABLE,
                        buf_data(&b), buf_used(&b));
        buf_free(&b);
    }
}

void presence_end_session(struct shard *s, struct user *u, struct session *ss)
{
    if (ss->available) {
        struct buf b = {0};
        buf_puts(&b, "<presence type='unavailable'");
        xmlw_attr(&b, "from", ss->jid, ss->jid_len);
        buf_puts(&b, "/>");
        if (buf_used(&b)) {
            struct proto_stanza h = {.kind = PROTO_PRESENCE, .type = PROTO_PRES_UNAVAILABLE};
            struct stanza st = {.h = &h, .raw = buf_data(&b), .raw_len = buf_used(&b)};
            ss->available = true; /* presence_broadcast() undoes it, and the directed ones */
            presence_broadcast(s, u, ss, &st);
        }
        buf_free(&b);
    }
    mod_session_end(s, u, ss);
    session_remove(u, ss);
}
