/*
 * multicast.c: XEP-0033 (Extended Stanza Addressing) between servers.
 *
 * Out. When the stream to a remote domain is ready (out.c's dom_ready), we ask the
 * domain for its disco#info; without XEP-0033's feature there, for its disco#items, and
 * each item that is the domain's own subdomain (at most MCAST_ITEMS_MAX) for its
 * disco#info (§2.2; ejabberd's mod_multicast answers as multicast.<domain>, which its
 * domain lists among its items). The first that has the feature is the domain's
 * multicast service, with the presence limit its XEP-0128 form advertises, capped by
 * s2s.multicast_max. From then on a fan-out frame (one presence for many contacts there)
 * goes out as one stanza to the service per `limit` recipients, each a bcc address;
 * until discovery answered, or when the domain does not multicast, one stanza per
 * recipient as before. The answers come back to us on the peer's stream (in.c, or ours
 * with bidi) addressed to our domain, with ids "mc<step><nonce>-<domain>" that lead to
 * the table entry; an answer to an older round, or for a domain another thread owns
 * (s2s.threads > 1 and the peer's stream landed elsewhere), changes nothing, which
 * leaves that domain on per-recipient stanzas.
 *
 * Each (local, remote) pair's stream asks for itself, from its local domain (s2s.h): a
 * room's fan-out (from the chat service) uses what its own stream found.
 *
 * In. A peer's message or presence to our domain itself with an <addresses/> child is
 * a multicast for our users: it must come over an authenticated stream (in.c checked
 * that, and its `from`), name at most s2s.multicast_max recipients, each to/cc/bcc one
 * a user of our domain (no relaying); then each recipient gets the stanza with its own
 * `to`, the <addresses/> without the bcc ones (§4.4), through the router like any
 * stanza from the peer. A refusal is the stanza error XEP-0033 gives (bad-request,
 * jid-malformed, forbidden, not-acceptable), sent back over our stream to the peer
 * (from this thread's table: with s2s.threads > 1 that may be a second stream to it).
 */
#include "s2s/s2s.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_XDATA       "jabber:x:data"
#define NS_STANZAS     "urn:ietf:params:xml:ns:xmpp-stanzas"
#define MCAST_INFO_MAX 8  /* informational addresses (replyto...) kept per stanza */
#define ID_HEAD        11 /* "mc", the step, 8 hex digits of the nonce */

const char *const mcast_err_name[] = {"", "bad-request", "jid-malformed", "forbidden",
                                      "not-acceptable"};

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

/* ---- the pure part: elements read and written ---- */

enum mcast_err mcast_parse(const struct xml_node *as, const char *domain, unsigned max,
                           struct arena *a, struct mcast_addr *out, unsigned *n)
{
    static const char *const kinds[] = {"to", "cc", "bcc"};
    static const char *const info[] = {"replyto", "replyroom", "noreply", "ofrom"};
    size_t dlen = strlen(domain);
    unsigned rcpts = 0, infos = 0;
    *n = 0;
    for (const struct xml_node *e = xml_node_child(as, "address", MCAST_NS); e;
         e = xml_node_next(e, "address", MCAST_NS)) {
        struct mcast_addr m = {
            .raw_type = xml_node_attr(e, "type"),
            .node = xml_node_attr(e, "node"),
            .desc = xml_node_attr(e, "desc"),
            .uri = xml_node_attr(e, "uri"),
        };
        const char *dl = xml_node_attr(e, "delivered"), *jid = xml_node_attr(e, "jid");
        if (!m.raw_type)
            return MCAST_BAD_REQUEST;
        m.type = MCAST_INFO + 1;
        for (unsigned i = 0; i < 3; i++)
            if (!strcmp(m.raw_type, kinds[i]))
                m.type = (uint8_t)i;
        for (unsigned i = 0; i < 4; i++)
            if (!strcmp(m.raw_type, info[i]))
                m.type = MCAST_INFO;
        if (m.type > MCAST_INFO)
            return MCAST_BAD_REQUEST; /* a type we do not know (§4.6) */
        m.delivered = dl && (!strcmp(dl, "true") || !strcmp(dl, "1"));
        bool rcpt = m.type != MCAST_INFO && !m.delivered;
        if (jid) {
            char buf[JID_BUF];
            struct jid j;
            if (jid_parse(&j, jid, strlen(jid), buf, sizeof buf) < 0)
                return MCAST_JID_MALFORMED;
            if (rcpt && (!j.local_len || j.domain_len != dlen ||
                         memcmp(j.str + j.domain_off, domain, dlen) != 0))
                return MCAST_FORBIDDEN; /* not ours to deliver: we relay for nobody */
            if (!(m.jid = arena_strndup(a, j.str, j.len)))
                return MCAST_NOT_ACCEPTABLE;
        } else if (rcpt) {
            return MCAST_BAD_REQUEST; /* a uri or a node alone reaches nobody here */
        }
        if (rcpt ? ++rcpts > max : ++infos > MCAST_INFO_MAX)
            return MCAST_NOT_ACCEPTABLE;
        out[(*n)++] = m;
    }
    return rcpts ? MCAST_OK : MCAST_BAD_REQUEST;
}

int mcast_span(const struct xml_parser *stream, const char *raw, size_t len, char *scratch,
               size_t scratch_cap, size_t *off, size_t *end)
{
    struct xml_parser p;
    struct xml_event ev;
    int rc = -ENOENT;
    bool in = false, empty = false;
    size_t start = 0, mark = 0; /* mark: the end of the last START or TEXT */
    unsigned ends = 0;          /* end tags since mark (END carries no bytes) */
    xml_init_fragment(&p, stream, scratch, scratch_cap);
    for (;;) {
        enum xml_ev_kind k = xml_next(&p, raw, len, &ev);
        if (k == XML_EV_START || k == XML_EV_TEXT) {
            mark = (size_t)(ev.raw.p + ev.raw.len - raw);
            if (k == XML_EV_TEXT && (ev.flags & XML_F_CDATA))
                mark += 3; /* its "]]>" */
            ends = 0;
            empty = k == XML_EV_START && (ev.flags & XML_F_EMPTY);
        }
        if (k == XML_EV_START && ev.depth == 2 && str_is(ev.name, "addresses") &&
            str_is(ev.ns, MCAST_NS)) {
            if (rc == 0) {
                rc = -EINVAL; /* which one would it be? */
                break;
            }
            start = (size_t)(ev.raw.p - raw);
            if (empty) {
                *off = start;
                *end = mark;
                rc = 0;
            } else {
                in = true;
            }
        } else if (k == XML_EV_END) {
            if (empty)
                empty = false; /* the END of <x/>: no bytes of its own */
            else
                ends++;
            if (in && ev.depth == 2) {
                size_t e = mark;
                for (unsigned i = 0; i < ends && e < len; i++) {
                    const char *gt = memchr(raw + e, '>', len - e);
                    e = gt ? (size_t)(gt - raw) + 1 : len;
                }
                *off = start;
                *end = e;
                in = false;
                rc = 0;
            } else if (ev.depth == 1) {
                break;
            }
        } else if (k != XML_EV_START && k != XML_EV_TEXT) {
            rc = -EINVAL; /* not one whole element */
            break;
        }
    }
    xml_free(&p);
    return rc;
}

int mcast_rewrite(struct buf *b, const struct mcast_addr *v, unsigned n)
{
    bool keep = false;
    for (unsigned i = 0; i < n; i++)
        keep |= v[i].type != MCAST_BCC;
    if (!keep)
        return 0;
    int rc = buf_puts(b, "<addresses xmlns='" MCAST_NS "'>");
    for (unsigned i = 0; i < n; i++) {
        const struct mcast_addr *m = &v[i];
        if (m->type == MCAST_BCC)
            continue;
        rc |= buf_puts(b, "<address");
        rc |= xmlw_attr(b, "type", m->raw_type, strlen(m->raw_type));
        const char *const at[] = {m->jid, m->node, m->desc, m->uri};
        static const char *const names[] = {"jid", "node", "desc", "uri"};
        for (unsigned k = 0; k < 4; k++)
            if (at[k])
                rc |= xmlw_attr(b, names[k], at[k], strlen(at[k]));
        if (m->delivered || m->type != MCAST_INFO)
            rc |= buf_puts(b, " delivered='true'");
        rc |= buf_puts(b, "/>");
    }
    rc |= buf_puts(b, "</addresses>");
    return rc ? -ENOMEM : 0;
}

int mcast_build(struct buf *b, const char *stanza, size_t len, size_t to_at, const char *service,
                const char **p, const char *end, unsigned n)
{
    bool empty = len >= 2 && stanza[len - 2] == '/' && stanza[len - 1] == '>';
    size_t body = empty ? len - 2 : len, name = 1;
    if (!empty)
        while (body > to_at && stanza[body - 1] != '<')
            body--;
    if (!empty && body > to_at)
        body--; /* at the '<' of the end tag */
    while (name < to_at && stanza[name] != ' ' && stanza[name] != '/' && stanza[name] != '>')
        name++;
    int rc = buf_append(b, stanza, to_at);
    rc |= xmlw_attr(b, "to", service, strlen(service));
    rc |= buf_append(b, stanza + to_at, body - to_at);
    if (empty)
        rc |= buf_puts(b, ">");
    rc |= buf_puts(b, "<addresses xmlns='" MCAST_NS "'>");
    const char *jid;
    uint16_t jl;
    for (unsigned i = 0; i < n && decode_fanout_next(p, end, &jid, &jl); i++) {
        rc |= buf_puts(b, "<address type='bcc'");
        rc |= xmlw_attr(b, "jid", jid, jl);
        rc |= buf_puts(b, "/>");
    }
    rc |= buf_puts(b, "</addresses>");
    if (empty) {
        rc |= buf_puts(b, "</");
        rc |= buf_append(b, stanza + 1, name - 1);
        rc |= buf_puts(b, ">");
    } else {
        rc |= buf_append(b, stanza + body, len - body);
    }
    return rc ? -ENOMEM : 0;
}

bool mcast_info(const struct xml_node *q, struct arena *a, uint32_t *limit)
{
    bool yes = false;
    for (const struct xml_node *f = xml_node_child(q, "feature", NS_DISCO_INFO); f && !yes;
         f = xml_node_next(f, "feature", NS_DISCO_INFO)) {
        const char *var = xml_node_attr(f, "var");
        yes = var && !strcmp(var, MCAST_NS);
    }
    if (!yes)
        return false;
    for (const struct xml_node *x = xml_node_child(q, "x", NS_XDATA); x;
         x = xml_node_next(x, "x", NS_XDATA)) {
        bool ours = false;
        const char *lim = NULL;
        for (const struct xml_node *f = xml_node_child(x, "field", NS_XDATA); f;
             f = xml_node_next(f, "field", NS_XDATA)) {
            const char *var = xml_node_attr(f, "var");
            const struct xml_node *v = xml_node_child(f, "value", NS_XDATA);
            const char *val = v ? xml_node_text(v, a) : NULL;
            if (!var || !val)
                continue;
            if (!strcmp(var, "FORM_TYPE"))
                ours = !strcmp(val, MCAST_NS) || !strcmp(val, MCAST_NS "#limits");
            else if (!strcmp(var, "presence"))
                lim = val;
        }
        if (ours && lim) {
            char *e;
            unsigned long v = strtoul(lim, &e, 10);
            if (e != lim && !*e && v > 0 && v <= UINT32_MAX)
                *limit = (uint32_t)v;
        }
    }
    return true;
}

/* ---- discovery ---- */

void mcast_reset(struct s2s_mcast *m)
{
    free(m->service);
    *m = (struct s2s_mcast){0};
}

static void query(struct s2s_conn *c, const struct s2s_mcast *m, char step, const char *to,
                  size_t to_len, const char *ns)
{
    struct buf b = {0};
    char id[ID_HEAD + 2];
    const char *me = s2s_me(c);
    snprintf(id, sizeof id, "mc%c%08x-", step, m->nonce);
    int rc = buf_puts(&b, "<iq type='get'");
    rc |= xmlw_attr(&b, "from", me, strlen(me));
    rc |= xmlw_attr(&b, "to", to, to_len);
    rc |= buf_puts(&b, " id='");
    rc |= buf_puts(&b, id);
    rc |= xmlw_text(&b, c->remote, strlen(c->remote));
    rc |= buf_puts(&b, "'><query xmlns='");
    rc |= buf_puts(&b, ns);
    rc |= buf_puts(&b, "'/></iq>");
    if (!rc)
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void mcast_discover(struct s2s_conn *c, struct s2s_mcast *m)
{
    mcast_reset(m);
    if (!c->fe.t->cfg->s2s.multicast_max) {
        m->state = MC_NO;
        return;
    }
    if (getrandom(&m->nonce, sizeof m->nonce, 0) != (ssize_t)sizeof m->nonce)
        m->nonce = (uint32_t)fe_now_us();
    m->state = MC_INFO;
    query(c, m, 'i', c->remote, strlen(c->remote), NS_DISCO_INFO);
}

#define MCAST_UNADVERTISED 20

static void found(struct s2s_thread *t, struct s2s_mcast *m, const char *service, size_t len,
                  uint32_t limit, const char *domain)
{
    uint32_t max = t->fe.cfg->s2s.multicast_max;
    if (!(m->service = strndup(service, len))) {
        m->state = MC_NO;
        return;
    }
    m->state = MC_YES;
    /* A service that names no limit gets what ejabberd takes from remote servers unless
     * configured otherwise, the one such service met in practice. */
    if (!limit)
        limit = MCAST_UNADVERTISED;
    m->limit = limit < max ? limit : max;
    LOG_INFO("s2s: %s multicasts (XEP-0033) through %s, %u recipients per stanza", domain,
             m->service, m->limit);
}

/* `name` is `domain` or a subdomain of it. */
static bool within(const char *name, size_t len, const char *domain, size_t dlen)
{
    return (len == dlen && !memcmp(name, domain, dlen)) ||
           (len > dlen + 1 && name[len - dlen - 1] == '.' &&
            !memcmp(name + len - dlen, domain, dlen));
}

/* An answer to one of our queries (its id told us so): the next step of discovery. */
static void answer(struct s2s_conn *c, const struct xml_event *ev, int type, const struct jid *from,
                   struct xml_str id, unsigned local)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    char step = id.p[2];
    char hex[9];
    memcpy(hex, id.p + 3, 8);
    hex[8] = 0;
    const char *dom = id.p + ID_HEAD + 1;
    size_t dlen = id.len - ID_HEAD - 1;
    struct s2s_conn *oc;
    struct s2s_mcast *m = out_mcast(t, local, dom, dlen, &oc);
    if (!m || !oc || m->nonce != (uint32_t)strtoul(hex, NULL, 16) || from->local_len ||
        from->res_len || !within(from->str, from->len, dom, dlen))
        return; /* an older round's, another thread's or a stranger's: nothing to do */
    struct xml_node *n = type == PROTO_IQ_RESULT ? s2s_tree(c, ev) : NULL;
    struct xml_node *q = n ? xml_node_child(n, "query", NULL) : NULL;
    uint32_t limit = 0;
    bool same = from->len == dlen;
    if (step == 'i' && m->state == MC_INFO && same) {
        if (q && str_is(q->ns, NS_DISCO_INFO) && mcast_info(q, &t->fe.arena, &limit)) {
            found(t, m, from->str, from->len, limit, oc->remote);
            return;
        }
        m->state = MC_ITEMS;
        query(oc, m, 't', oc->remote, strlen(oc->remote), NS_DISCO_ITEMS);
    } else if (step == 't' && m->state == MC_ITEMS && same) {
        m->state = MC_NO;
        for (const struct xml_node *it = q ? xml_node_child(q, "item", NS_DISCO_ITEMS) : NULL;
             it && m->pending < MCAST_ITEMS_MAX; it = xml_node_next(it, "item", NS_DISCO_ITEMS)) {
            const char *jid = xml_node_attr(it, "jid");
            char buf[JID_BUF];
            struct jid j;
            if (!jid || xml_node_attr(it, "node") ||
                jid_parse(&j, jid, strlen(jid), buf, sizeof buf) < 0 || j.local_len || j.res_len ||
                j.len == dlen || !within(j.str, j.len, dom, dlen))
                continue; /* only a service of the domain's own may get our lists */
            m->state = MC_ITEM_INFO;
            m->pending++;
            query(oc, m, 'j', j.str, j.len, NS_DISCO_INFO);
        }
    } else if (step == 'j' && m->state == MC_ITEM_INFO && !same) {
        if (q && str_is(q->ns, NS_DISCO_INFO) && mcast_info(q, &t->fe.arena, &limit))
            found(t, m, from->str, from->len, limit, oc->remote);
        else if (!--m->pending)
            m->state = MC_NO;
    }
}

/* ---- out ---- */

bool mcast_fanout(struct s2s_conn *c, struct s2s_mcast *m, const struct decode_remote_fanout *d)
{
    if (m->state != MC_YES || d->h.nrcpt < 2 || m->limit < 2)
        return false; /* a multicast for one costs more than the plain stanza */
    struct s2s_thread *t = s2s_thread(&c->fe);
    struct buf *b = &t->fe.tmp;
    const char *p = d->list, *q, *jid;
    uint16_t jl;
    uint32_t left = d->h.nrcpt;
    int64_t plain = 0, sent = 0;
    uint32_t stanzas = 0, rcpts = 0;
    while (left && p < d->end) {
        uint32_t k = left < m->limit ? left : m->limit, got = 0;
        /* What one stanza per recipient would have cost: the stanza and ` to='jid'`. */
        for (q = p; got < k && decode_fanout_next(&q, d->end, &jid, &jl); got++)
            plain += d->h.stanza_len + 6 + jl;
        if (!got)
            break;
        buf_consume(b, buf_used(b));
        if (mcast_build(b, d->stanza, d->h.stanza_len, d->h.to_at, m->service, &p, d->end, got) <
            0) {
            t->fanout_lost += got;
            LOG_RL(LOG_LEVEL_ERROR, "s2s: out of memory: a multicast to %s is lost", c->remote);
            p = q;
        } else {
            fe_write(&c->fe, buf_data(b), buf_used(b));
            sent += buf_used(b);
            stanzas++;
            rcpts += got;
        }
        left -= got;
    }
    t->sent += stanzas;
    bool msg = d->h.stanza_len > 1 && d->stanza[1] == 'm'; /* a room's groupchat */
    stats_add(t->fe.stats, msg ? STAT_S2S_OUT_MESSAGE : STAT_S2S_OUT_PRESENCE, stanzas);
    t->fanout_frames++;
    t->fanout_stanzas += rcpts;
    t->mc_sent += stanzas;
    t->mc_rcpts += rcpts;
    t->mc_saved_bytes += plain - sent;
    return true;
}

/* ---- in ---- */

/* The stanza error for a multicast we refuse, back to its sender over our stream to its
 * domain (an error is never answered: that one is logged). */
static void refuse(struct s2s_conn *c, struct xml_str id, int kind, int type,
                   const struct jid *from, enum mcast_err e)
{
    static const char *const names[] = {"message", "presence", "iq"};
    struct s2s_thread *t = s2s_thread(&c->fe);
    const char *me = t->fe.cfg->domain;
    if ((kind == PROTO_MESSAGE && type == PROTO_MSG_ERROR) ||
        (kind == PROTO_PRESENCE && type == PROTO_PRES_ERROR)) {
        LOG_RL(LOG_LEVEL_INFO, "s2s: a multicast error from %s refused: %s", from->str,
               mcast_err_name[e]);
        return;
    }
    struct buf st = {0}, fr = {0};
    int rc = buf_puts(&st, "<");
    rc |= buf_puts(&st, names[kind]);
    rc |= buf_puts(&st, " type='error'");
    if (id.p)
        rc |= xmlw_attr(&st, "id", id.p, id.len);
    rc |= xmlw_attr(&st, "from", me, strlen(me));
    rc |= xmlw_attr(&st, "to", from->str, from->len);
    rc |= buf_puts(&st, e == MCAST_FORBIDDEN ? "><error type='auth'><" : "><error type='modify'><");
    rc |= buf_puts(&st, mcast_err_name[e]);
    rc |= buf_puts(&st, " xmlns='" NS_STANZAS "'/></error></");
    rc |= buf_puts(&st, names[kind]);
    rc |= buf_puts(&st, ">");
    const char *gt = rc ? NULL : memchr(buf_data(&st), '>', buf_used(&st));
    struct proto_stanza h = {
        .kind = (uint8_t)kind,
        .type = kind == PROTO_MESSAGE ? PROTO_MSG_ERROR : PROTO_PRES_ERROR,
        .flags = PROTO_STANZA_LOCAL,
        .from_len = (uint16_t)strlen(me),
        .from_bare_len = (uint16_t)strlen(me),
        .to_len = from->len,
        .to_bare_len = (uint16_t)jid_bare_len(from),
        .to_domain_off = from->domain_off,
        .to_domain_len = from->domain_len,
        .head_len = gt ? (uint32_t)(gt - buf_data(&st) + 1) : 0,
        .stanza_len = buf_used(&st),
    };
    if (gt && buf_append(&fr, &h, sizeof h) == 0 && buf_append(&fr, me, h.from_len) == 0 &&
        buf_append(&fr, from->str, from->len) == 0 &&
        buf_append(&fr, buf_data(&st), buf_used(&st)) == 0)
        out_frame(t, PROTO_REMOTE, buf_data(&fr), buf_used(&fr), ~0u, 0); /* ours: no shard waits */
    else
        LOG_RL(LOG_LEVEL_ERROR, "s2s: out of memory: a multicast error to %s is lost", from->str);
    buf_free(&st);
    buf_free(&fr);
}

/* A peer's multicast for our users: one stanza per recipient into the router. */
static void deliver(struct s2s_conn *c, const struct xml_event *ev, struct xml_str id, int kind,
                    int type, const struct jid *from, size_t off, size_t end)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    const struct config *cfg = t->fe.cfg;
    struct arena *a = &t->fe.arena;
    struct xml_node *n = s2s_tree(c, ev);
    struct xml_node *as = n ? xml_node_child(n, "addresses", MCAST_NS) : NULL;
    struct mcast_addr *v =
        as ? arena_alloc(a, (cfg->s2s.multicast_max + MCAST_INFO_MAX) * sizeof *v) : NULL;
    unsigned nv = 0;
    enum mcast_err e =
        v ? mcast_parse(as, cfg->domain, cfg->s2s.multicast_max, a, v, &nv) : MCAST_BAD_REQUEST;
    if (e != MCAST_OK) {
        refuse(c, id, kind, type, from, e);
        return;
    }
    struct buf rest = {0}, to = {0};
    if (mcast_rewrite(&rest, v, nv) < 0) {
        buf_free(&rest);
        fe_stream_error(&c->fe, "resource-constraint");
        return;
    }
    const char *raw = ev->raw.p;
    uint32_t to_off = ev->attr_raw[XML_ATTR_TO].off,
             to_end = to_off + ev->attr_raw[XML_ATTR_TO].len;
    uint32_t delivered = 0;
    for (unsigned i = 0; i < nv; i++) {
        if (v[i].type == MCAST_INFO || v[i].delivered)
            continue;
        bool dup = false;
        for (unsigned k = 0; k < i && !dup; k++)
            dup = v[k].type != MCAST_INFO && !v[k].delivered && !strcmp(v[k].jid, v[i].jid);
        char tb[JID_BUF];
        struct jid j;
        if (dup || jid_parse(&j, v[i].jid, strlen(v[i].jid), tb, sizeof tb) < 0)
            continue;
        buf_consume(&to, buf_used(&to));
        if (xmlw_attr(&to, "to", j.str, j.len) < 0) {
            fe_stream_error(&c->fe, "resource-constraint");
            break;
        }
        /* The stanza with the recipient's `to` (its own, without the leading space, in
         * place of ours) and the rewritten <addresses/>. */
        const struct xml_str parts[] = {
            {raw, to_off},
            {buf_data(&to) + 1, buf_used(&to) - 1},
            {raw + to_end, (uint32_t)(off - to_end)},
            {buf_used(&rest) ? buf_data(&rest) : "", buf_used(&rest)},
            {raw + end, (uint32_t)(ev->raw.len - end)},
        };
        int delta = (int)(buf_used(&to) - 1) - (int)(to_end - to_off);
        if (in_route(c, ev, kind, type, from, &j, parts, 5, delta) < 0)
            break;
        delivered++;
    }
    t->mc_received++;
    t->mc_delivered += delivered;
    buf_free(&rest);
    buf_free(&to);
}

bool mcast_stanza(struct s2s_conn *c, const struct xml_event *ev, int kind, int type,
                  const struct jid *from, unsigned local)
{
    struct fe_thread *t = c->fe.t;
    /* The id as the stream decoded it may sit in the thread's scratch, which the trees
     * and scans below write over: a copy in the arena (reset after the stanza). */
    struct xml_str id = ev->attr[XML_ATTR_ID];
    if (id.p && !(id.p = arena_strndup(&t->arena, id.p, id.len))) {
        fe_stream_error(&c->fe, "resource-constraint");
        return true;
    }
    if (kind == PROTO_IQ) {
        if ((type != PROTO_IQ_RESULT && type != PROTO_IQ_ERROR) || id.len <= ID_HEAD + 1 ||
            memcmp(id.p, "mc", 2) != 0 || id.p[ID_HEAD] != '-')
            return false;
        answer(c, ev, type, from, id, local);
        return true;
    }
    if (!t->cfg->s2s.multicast_max || local != S2S_LOCAL_MAIN)
        return false;
    size_t off, end;
    int rc =
        mcast_span(&c->fe.xp, ev->raw.p, ev->raw.len, t->scratch, sizeof t->scratch, &off, &end);
    if (rc == -ENOENT)
        return false;
    if (rc < 0)
        refuse(c, id, kind, type, from, MCAST_BAD_REQUEST);
    else
        deliver(c, ev, id, kind, type, from, off, end);
    return true;
}
