#include "bench/xmppc.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_TLS     "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL    "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_ROSTER  "jabber:iq:roster"
#define NS_PING    "urn:xmpp:ping"

/* ids of the iqs the login sends; the caller's own iqs must use other ids. */
#define ID_BIND    "xc-bind"
#define ID_SESSION "xc-session"
#define ID_ROSTER  "xc-roster"

/* Stanzas a client sends during login are small; a server's features may be long. */
static const struct xml_limits limits = {
    .max_stanza = 1u << 20, .max_depth = 32, .max_attrs = 64, .max_name = 255};

static const char *const fail_names[XMPPC_FAIL_COUNT] = {
    [XMPPC_FAIL_NONE] = "none",
    [XMPPC_FAIL_STREAM] = "stream-error",
    [XMPPC_FAIL_TLS] = "tls",
    [XMPPC_FAIL_MECH] = "mechanism-not-offered",
    [XMPPC_FAIL_AUTH] = "auth-failed",
    [XMPPC_FAIL_SASL] = "sasl-protocol",
    [XMPPC_FAIL_BIND] = "bind-failed",
    [XMPPC_FAIL_CLOSED] = "closed-by-server",
    [XMPPC_FAIL_PROTOCOL] = "protocol",
    [XMPPC_FAIL_MEMORY] = "memory",
    [XMPPC_FAIL_UNSUPPORTED] = "feature-not-offered",
};

const char *xmppc_fail_name(enum xmppc_fail f)
{
    return (unsigned)f < XMPPC_FAIL_COUNT ? fail_names[f] : "?";
}

/* Conditions of stream errors (RFC 6120 §4.9.3), SASL failures (§6.5) and stanza errors
 * (§8.3.3) we may report: FAILED events carry static strings only. */
static const char *const conditions[] = {
    "bad-format",
    "bad-namespace-prefix",
    "conflict",
    "connection-timeout",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "invalid-from",
    "invalid-namespace",
    "invalid-xml",
    "not-authorized",
    "not-well-formed",
    "policy-violation",
    "remote-connection-failed",
    "reset",
    "resource-constraint",
    "restricted-xml",
    "see-other-host",
    "system-shutdown",
    "undefined-condition",
    "unsupported-encoding",
    "unsupported-feature",
    "unsupported-stanza-type",
    "unsupported-version",
    "aborted",
    "account-disabled",
    "credentials-expired",
    "encryption-required",
    "incorrect-encoding",
    "invalid-authzid",
    "invalid-mechanism",
    "malformed-request",
    "mechanism-too-weak",
    "temporary-auth-failure",
    "bad-request",
    "forbidden",
    "item-not-found",
    "not-allowed",
    "service-unavailable",
};

/* The first child element's name, as one of the static condition strings. */
static const char *condition_of(const struct xml_node *n)
{
    for (const struct xml_node *c = n ? n->children : NULL; c; c = c->next) {
        if (!c->name.p)
            continue;
        if (!strcmp(c->name.p, "error")) /* a stanza error: look one level down */
            return condition_of(c);
        if (!strcmp(c->name.p, "text"))
            continue;
        for (size_t i = 0; i < sizeof conditions / sizeof conditions[0]; i++)
            if (!strcmp(c->name.p, conditions[i]))
                return conditions[i];
        return "other";
    }
    return "none given";
}

static bool is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

void xmppc_shared_init(struct xmppc_shared *sh)
{
    arena_init(&sh->arena, 16384);
}

void xmppc_shared_free(struct xmppc_shared *sh)
{
    arena_free(&sh->arena);
}

void xmppc_init(struct xmppc *x, const struct xmppc_config *cfg, struct xmppc_shared *sh,
                xmppc_write_fn write, void *ud)
{
    memset(x, 0, sizeof *x);
    x->cfg = cfg;
    x->sh = sh;
    x->write = write;
    x->ud = ud;
    x->state = XMPPC_IDLE;
    xml_init(&x->xp, &limits, XML_CONTENT_CLIENT, sh->scratch, sizeof sh->scratch);
}

static void out(struct xmppc *x, const char *p, size_t n)
{
    if (!x->dead && x->write(x->ud, p, n) < 0)
        x->dead = true;
}

static void outs(struct xmppc *x, const char *s)
{
    out(x, s, strlen(s));
}

static void outb(struct xmppc *x, struct buf *b)
{
    if (b->p)
        out(x, buf_data(b), buf_used(b));
    else
        x->dead = true; /* building it ran out of memory */
    buf_free(b);
}

void xmppc_sent(struct xmppc *x, uint32_t n)
{
    if (sm_sent(&x->sm, n, x->cfg->ack_every)) {
        outs(x, SM_REQUEST);
        sm_requested(&x->sm);
    }
}

/* A stanza (not a stream-level element): counted for stream management. */
static void stanza_outs(struct xmppc *x, const char *s)
{
    outs(x, s);
    xmppc_sent(x, 1);
}

static void stanza_outb(struct xmppc *x, struct buf *b)
{
    outb(x, b);
    xmppc_sent(x, 1);
}

static void send_header(struct xmppc *x)
{
    struct buf b = {0};
    buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams'");
    xmlw_attr(&b, "to", x->cfg->domain, strlen(x->cfg->domain));
    if (buf_puts(&b, " version='1.0'>") < 0)
        buf_free(&b);
    outb(x, &b);
    x->state = XMPPC_HEADER;
    /* A new stream: the parser starts over (RFC 6120 §4.3.3). */
    xml_reset(&x->xp);
}

int xmppc_start(struct xmppc *x, const char *user, const char *password, struct saslc_keys *keys)
{
    x->keys = keys;
    free(x->user);
    free(x->password);
    x->user = strdup(user);
    x->password = strdup(password);
    if (!x->user || !x->password)
        return -ENOMEM;
    x->tls_done = x->cfg->tls == XMPPC_TLS_DIRECT;
    send_header(x);
    return x->dead ? -ENOMEM : 0;
}

void xmppc_tls_ready(struct xmppc *x)
{
    x->tls_done = true;
    send_header(x);
}

void xmppc_feed(struct xmppc *x, const char *p, size_t n)
{
    if (buf_used(&x->in)) {
        if (buf_append(&x->in, p, n) < 0)
            x->dead = true;
        x->lend = NULL;
        x->lend_len = 0;
    } else {
        x->lend = p;
        x->lend_len = n;
    }
}

/* The bytes being parsed: the client's buffer when it holds any, else the loan. */
static const char *cur(const struct xmppc *x, size_t *len)
{
    if (buf_used(&x->in)) {
        *len = buf_used(&x->in);
        return buf_data(&x->in);
    }
    *len = x->lend_len;
    return x->lend;
}

/* Drops what the parser no longer needs and keeps the rest: in the client's buffer when
 * it was lent (the caller reuses its buffer), where it is otherwise. */
static void settle(struct xmppc *x)
{
    size_t drop = xml_release(&x->xp);
    if (buf_used(&x->in)) {
        buf_consume(&x->in, drop);
    } else if (x->lend) {
        if (x->lend_len > drop && buf_append(&x->in, x->lend + drop, x->lend_len - drop) < 0)
            x->dead = true;
    }
    x->lend = NULL;
    x->lend_len = 0;
}

/* Everything fed so far is dropped: a restart after <proceed/> or a dead stream. */
static void discard(struct xmppc *x)
{
    x->in.off = x->in.len = 0;
    x->lend = NULL;
    x->lend_len = 0;
}

/* After a stanza that restarts the stream (SASL success): what follows it belongs to the
 * new stream, so it is kept with offsets starting from zero for the fresh parser. */
static void restart_input(struct xmppc *x)
{
    size_t drop = xml_release(&x->xp);
    if (buf_used(&x->in)) {
        buf_consume(&x->in, drop);
    } else {
        x->lend += drop;
        x->lend_len -= drop;
    }
}

static enum xmppc_ev_kind fail(struct xmppc *x, struct xmppc_ev *ev, enum xmppc_fail f,
                               const char *detail)
{
    x->state = XMPPC_CLOSED;
    x->dead = true;
    discard(x);
    ev->kind = XMPPC_EV_FAILED;
    ev->fail = f;
    ev->detail = detail;
    return ev->kind;
}

struct xml_node *xmppc_tree(struct xmppc *x, const struct xml_event *ev)
{
    return xml_tree_parse(&x->xp, ev->raw.p, ev->raw.len, &x->sh->arena, x->sh->scratch,
                          sizeof x->sh->scratch);
}

static void send_presence(struct xmppc *x)
{
    char p[64];
    if (x->cfg->priority)
        snprintf(p, sizeof p, "<presence><priority>%d</priority></presence>", x->cfg->priority);
    else
        snprintf(p, sizeof p, "<presence/>");
    stanza_outs(x, p);
    x->state = XMPPC_PRESENCE;
}

/* Bound (and stream management on, when asked for): the roster, or presence at once. */
static void after_sm(struct xmppc *x)
{
    if (x->cfg->roster) {
        stanza_outs(x, "<iq type='get' id='" ID_ROSTER "'><query xmlns='" NS_ROSTER "'/></iq>");
        x->state = XMPPC_ROSTER;
    } else {
        send_presence(x);
    }
}

static void after_bind(struct xmppc *x)
{
    if (x->cfg->sm) {
        outs(x, SM_ENABLE);
        x->state = XMPPC_SM;
    } else {
        after_sm(x);
    }
}

/* <stream:features/>: the next step of the login. */
static enum xmppc_ev_kind on_features(struct xmppc *x, struct xmppc_ev *ev)
{
    struct xml_node *f = xmppc_tree(x, &x->ev);
    if (!f)
        return fail(x, ev, XMPPC_FAIL_MEMORY, "features");
    if (!x->tls_done && x->cfg->tls == XMPPC_TLS_STARTTLS) {
        if (!xml_node_child(f, "starttls", NS_TLS))
            return fail(x, ev, XMPPC_FAIL_TLS, "STARTTLS not offered");
        outs(x, "<starttls xmlns='" NS_TLS "'/>");
        x->state = XMPPC_STARTTLS;
        return XMPPC_EV_NONE;
    }
    if (!x->authed) {
        const char *want = saslc_mech_name(x->cfg->mech);
        struct xml_node *ms = xml_node_child(f, "mechanisms", NS_SASL);
        struct xml_node *m = ms ? xml_node_child(ms, "mechanism", NS_SASL) : NULL;
        for (; m; m = xml_node_next(m, "mechanism", NS_SASL)) {
            const char *t = xml_node_text(m, &x->sh->arena);
            if (t && !strcmp(t, want))
                break;
        }
        if (!m)
            return fail(x, ev, XMPPC_FAIL_MECH, want);
        char b64[SASLC_OUT_MAX];
        int n = saslc_start(&x->sasl, x->cfg->mech, x->user, x->password, x->cfg->test_nonce, b64,
                            sizeof b64);
        if (n < 0)
            return fail(x, ev, XMPPC_FAIL_PROTOCOL, "user name or password unusable");
        struct buf b = {0};
        buf_puts(&b, "<auth xmlns='" NS_SASL "' mechanism='");
        buf_puts(&b, want);
        buf_puts(&b, "'>");
        buf_append(&b, b64, (size_t)n);
        if (buf_puts(&b, "</auth>") < 0)
            buf_free(&b);
        outb(x, &b);
        x->state = XMPPC_SASL;
        return XMPPC_EV_NONE;
    }
    if (!xml_node_child(f, "bind", NS_BIND))
        return fail(x, ev, XMPPC_FAIL_BIND, "bind not offered");
    if (x->cfg->sm && !xml_node_child(f, "sm", SM_NS))
        return fail(x, ev, XMPPC_FAIL_UNSUPPORTED, "stream management not offered");
    /* RFC 6121 dropped the session iq; servers that still list it without <optional/>
     * (RFC 3921 §3) get one. */
    struct xml_node *s = xml_node_child(f, "session", NS_SESSION);
    x->need_session = s && !xml_node_child(s, "optional", NS_SESSION);
    struct buf b = {0};
    buf_puts(&b, "<iq type='set' id='" ID_BIND "'><bind xmlns='" NS_BIND "'>");
    if (x->cfg->resource && *x->cfg->resource) {
        buf_puts(&b, "<resource>");
        xmlw_text(&b, x->cfg->resource, strlen(x->cfg->resource));
        buf_puts(&b, "</resource>");
    }
    buf_puts(&b, "</bind></iq>");
    outb(x, &b);
    x->state = XMPPC_BIND;
    return XMPPC_EV_NONE;
}

/* <challenge/>, <success/>, <failure/> (RFC 6120 §6.4). */
static enum xmppc_ev_kind on_sasl(struct xmppc *x, struct xmppc_ev *ev)
{
    struct xml_node *n = xmppc_tree(x, &x->ev);
    const char *text = n ? xml_node_text(n, &x->sh->arena) : NULL;
    if (!text)
        return fail(x, ev, XMPPC_FAIL_MEMORY, "sasl");
    if (x->state != XMPPC_SASL)
        return fail(x, ev, XMPPC_FAIL_PROTOCOL, "SASL element out of turn");
    /* "=" stands for empty data (RFC 6120 §6.4.2). */
    size_t tl = strcmp(text, "=") ? strlen(text) : 0;
    if (is(x->ev.name, "challenge")) {
        char b64[SASLC_OUT_MAX];
        int r = saslc_step(&x->sasl, x->password, x->keys, text, tl, b64, sizeof b64);
        if (r < 0)
            return fail(x, ev, XMPPC_FAIL_SASL, "bad challenge");
        struct buf b = {0};
        buf_puts(&b, "<response xmlns='" NS_SASL "'>");
        buf_append(&b, b64, (size_t)r);
        if (buf_puts(&b, "</response>") < 0)
            buf_free(&b);
        outb(x, &b);
        return XMPPC_EV_NONE;
    }
    if (is(x->ev.name, "success")) {
        if (saslc_success(&x->sasl, text, tl) < 0)
            return fail(x, ev, XMPPC_FAIL_SASL, "server signature");
        x->authed = true;
        /* RFC 6120 §6.4.6: both sides restart the stream; what the server sends next
         * answers our new header, so the parser starts over right after <success/>. */
        restart_input(x);
        send_header(x);
        return XMPPC_EV_NONE;
    }
    if (is(x->ev.name, "failure"))
        return fail(x, ev, XMPPC_FAIL_AUTH, condition_of(n));
    return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unknown SASL element");
}

/* The answer to the roster get: counts items, and those with mutual subscription. */
static void roster_result(struct xmppc *x, struct xmppc_ev *ev)
{
    ev->kind = XMPPC_EV_ROSTER;
    ev->items = ev->both = 0;
    ev->error = !is(x->ev.attr[XML_ATTR_TYPE], "result");
    if (ev->error)
        return;
    struct xml_node *iq = xmppc_tree(x, &x->ev);
    struct xml_node *q = iq ? xml_node_child(iq, "query", NS_ROSTER) : NULL;
    for (struct xml_node *i = q ? xml_node_child(q, "item", NS_ROSTER) : NULL; i;
         i = xml_node_next(i, "item", NS_ROSTER)) {
        const char *sub = xml_node_attr(i, "subscription");
        ev->items++;
        if (sub && !strcmp(sub, "both"))
            ev->both++;
    }
    if (!iq)
        ev->error = true;
}

/* An iq the server sent. Requests get the answer a client owes (RFC 6120 §8.2.3);
 * responses to the login's iqs move it on; others go to the caller. */
static enum xmppc_ev_kind on_iq(struct xmppc *x, struct xmppc_ev *ev)
{
    struct xml_str type = x->ev.attr[XML_ATTR_TYPE], id = x->ev.attr[XML_ATTR_ID];
    if (is(type, "get") || is(type, "set")) {
        const char *raw = x->ev.raw.p;
        size_t rl = x->ev.raw.len;
        bool ok = (is(type, "get") && memmem(raw, rl, NS_PING, sizeof NS_PING - 1)) ||
                  (is(type, "set") && memmem(raw, rl, NS_ROSTER, sizeof NS_ROSTER - 1));
        struct buf b = {0};
        buf_puts(&b, ok ? "<iq type='result'" : "<iq type='error'");
        if (id.p)
            xmlw_attr(&b, "id", id.p, id.len);
        if (x->ev.attr[XML_ATTR_FROM].p)
            xmlw_attr(&b, "to", x->ev.attr[XML_ATTR_FROM].p, x->ev.attr[XML_ATTR_FROM].len);
        if (ok)
            buf_puts(&b, "/>");
        else
            buf_puts(&b, "><error type='cancel'><service-unavailable "
                         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
        stanza_outb(x, &b);
        return XMPPC_EV_NONE;
    }
    bool result = is(type, "result");
    if (x->state == XMPPC_BIND && is(id, ID_BIND)) {
        struct xml_node *iq = result ? xmppc_tree(x, &x->ev) : NULL;
        struct xml_node *bd = iq ? xml_node_child(iq, "bind", NS_BIND) : NULL;
        struct xml_node *j = bd ? xml_node_child(bd, "jid", NS_BIND) : NULL;
        const char *jid = j ? xml_node_text(j, &x->sh->arena) : NULL;
        if (!jid || !*jid)
            return fail(x, ev, XMPPC_FAIL_BIND,
                        result ? "no jid in bind result" : condition_of(xmppc_tree(x, &x->ev)));
        free(x->jid);
        if (!(x->jid = strdup(jid)))
            return fail(x, ev, XMPPC_FAIL_MEMORY, "jid");
        if (x->need_session) {
            outs(x, "<iq type='set' id='" ID_SESSION "'><session xmlns='" NS_SESSION "'/></iq>");
            x->state = XMPPC_SESSION;
        } else {
            after_bind(x);
        }
        return XMPPC_EV_NONE;
    }
    if (x->state == XMPPC_SESSION && is(id, ID_SESSION)) {
        if (!result)
            return fail(x, ev, XMPPC_FAIL_BIND, "session refused");
        after_bind(x);
        return XMPPC_EV_NONE;
    }
    if (is(id, ID_ROSTER)) {
        roster_result(x, ev);
        if (x->state == XMPPC_ROSTER)
            send_presence(x);
        return ev->kind;
    }
    if (x->state < XMPPC_PRESENCE)
        return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unexpected iq during login");
    ev->kind = XMPPC_EV_IQ;
    ev->x = &x->ev;
    return ev->kind;
}

static enum xmppc_ev_kind on_presence(struct xmppc *x, struct xmppc_ev *ev)
{
    struct xml_str type = x->ev.attr[XML_ATTR_TYPE], from = x->ev.attr[XML_ATTR_FROM];
    if (is(type, "subscribe") && x->cfg->accept_subs && from.p) {
        /* Approve toward the bare JID: the subscription is the account's (RFC 6121 §3.1.4). */
        const char *slash = memchr(from.p, '/', from.len);
        size_t bl = slash ? (size_t)(slash - from.p) : from.len;
        struct buf b = {0};
        buf_puts(&b, "<presence type='subscribed'");
        xmlw_attr(&b, "to", from.p, bl);
        if (buf_puts(&b, "/>") < 0)
            buf_free(&b);
        stanza_outb(x, &b);
    }
    ev->kind = XMPPC_EV_PRESENCE;
    ev->x = &x->ev;
    if (x->state == XMPPC_PRESENCE && !type.p && x->jid && from.p && from.len == strlen(x->jid) &&
        !memcmp(from.p, x->jid, from.len)) {
        /* Our own initial presence came back: the server has made us available. */
        x->state = XMPPC_ONLINE;
        free(x->user);
        free(x->password);
        x->user = x->password = NULL;
        ev->kind = XMPPC_EV_ONLINE;
    }
    return ev->kind;
}

/* XEP-0198's elements (sm.h). */
static enum xmppc_ev_kind on_sm(struct xmppc *x, struct xmppc_ev *ev)
{
    const struct xml_event *e = &x->ev;
    switch (sm_elem_of(e->name.p, e->name.len)) {
    case SM_EL_ENABLED:
        if (x->state != XMPPC_SM)
            return fail(x, ev, XMPPC_FAIL_PROTOCOL, "<enabled/> out of turn");
        x->sm.on = true;
        after_sm(x);
        return XMPPC_EV_NONE;
    case SM_EL_FAILED:
        return fail(x, ev, XMPPC_FAIL_UNSUPPORTED, "stream management refused");
    case SM_EL_R: {
        if (!x->sm.on)
            return fail(x, ev, XMPPC_FAIL_PROTOCOL, "<r/> before <enabled/>");
        char a[SM_ACK_MAX];
        int n = sm_ack(&x->sm, a, sizeof a);
        if (n > 0)
            out(x, a, (size_t)n);
        ev->kind = XMPPC_EV_SM_REQ;
        return ev->kind;
    }
    case SM_EL_A: {
        struct xml_node *n = xmppc_tree(x, e);
        const char *h = n ? xml_node_attr(n, "h") : NULL;
        if (!n)
            return fail(x, ev, XMPPC_FAIL_MEMORY, "sm");
        if (!x->sm.on || !h || sm_on_ack(&x->sm, h, strlen(h)) < 0)
            return fail(x, ev, XMPPC_FAIL_PROTOCOL, "bad <a/>: h missing, or beyond what was sent");
        ev->kind = XMPPC_EV_SM_ACK;
        ev->h = x->sm.acked;
        return ev->kind;
    }
    default:
        return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unexpected stream management element");
    }
}

static enum xmppc_ev_kind on_stanza(struct xmppc *x, struct xmppc_ev *ev)
{
    const struct xml_event *e = &x->ev;
    if (is(e->ns, XML_NS_STREAMS)) {
        if (is(e->name, "features")) {
            if (x->state != XMPPC_FEATURES)
                return fail(x, ev, XMPPC_FAIL_PROTOCOL, "features out of turn");
            return on_features(x, ev);
        }
        if (is(e->name, "error"))
            return fail(x, ev, XMPPC_FAIL_STREAM, condition_of(xmppc_tree(x, e)));
        return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unknown stream element");
    }
    if (is(e->ns, NS_TLS)) {
        if (x->state == XMPPC_STARTTLS && is(e->name, "proceed")) {
            /* Whatever follows <proceed/> in the clear is not trusted (CVE-2011-0411's
             * lesson): the caller starts TLS on a clean slate. */
            discard(x);
            x->state = XMPPC_TLS;
            ev->kind = XMPPC_EV_STARTTLS;
            return ev->kind;
        }
        return fail(x, ev, XMPPC_FAIL_TLS, "STARTTLS refused");
    }
    if (is(e->ns, NS_SASL))
        return on_sasl(x, ev);
    if (is(e->ns, SM_NS) && x->cfg->sm)
        return on_sm(x, ev);
    if (!is(e->ns, XML_NS_CLIENT) || x->state < XMPPC_BIND)
        return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unexpected element");
    if (x->sm.on)
        x->sm.in++; /* a stanza handled (XEP-0198 §4) */
    if (is(e->name, "iq"))
        return on_iq(x, ev);
    if (is(e->name, "presence"))
        return on_presence(x, ev);
    if (is(e->name, "message")) {
        ev->kind = XMPPC_EV_MESSAGE;
        ev->x = e;
        return ev->kind;
    }
    return fail(x, ev, XMPPC_FAIL_PROTOCOL, "unknown stanza");
}

enum xmppc_ev_kind xmppc_next(struct xmppc *x, struct xmppc_ev *ev)
{
    memset(ev, 0, sizeof *ev);
    arena_reset(&x->sh->arena);
    if (x->state == XMPPC_CLOSED || x->state == XMPPC_TLS) {
        discard(x);
        return XMPPC_EV_NONE;
    }
    if (x->dead)
        return fail(x, ev, XMPPC_FAIL_MEMORY, "output");
    for (;;) {
        size_t len;
        const char *buf = cur(x, &len);
        if (!buf) {
            settle(x);
            return XMPPC_EV_NONE;
        }
        enum xml_ev_kind k = xml_next(&x->xp, buf, len, &x->ev);
        enum xmppc_ev_kind r = XMPPC_EV_NONE;
        switch (k) {
        case XML_EV_NONE:
            settle(x);
            return x->dead ? fail(x, ev, XMPPC_FAIL_MEMORY, "input") : XMPPC_EV_NONE;
        case XML_EV_ERROR:
            return fail(x, ev, XMPPC_FAIL_STREAM, xml_err_condition(x->ev.err));
        case XML_EV_STREAM_OPEN:
            if (x->state != XMPPC_HEADER)
                return fail(x, ev, XMPPC_FAIL_PROTOCOL, "stream header out of turn");
            x->state = XMPPC_FEATURES;
            break;
        case XML_EV_STREAM_CLOSE:
            if (x->state == XMPPC_CLOSING) {
                x->state = XMPPC_CLOSED;
                discard(x);
                ev->kind = XMPPC_EV_CLOSED;
                return ev->kind;
            }
            return fail(x, ev, XMPPC_FAIL_CLOSED, "stream closed");
        case XML_EV_STANZA:
            r = on_stanza(x, ev);
            break;
        default:
            break;
        }
        if (x->dead && r != XMPPC_EV_FAILED)
            return fail(x, ev, XMPPC_FAIL_MEMORY, "output");
        if (r != XMPPC_EV_NONE)
            return r;
    }
}

int xmppc_send(struct xmppc *x, const char *p, size_t n)
{
    int err = x->write(x->ud, p, n);
    if (!err)
        xmppc_sent(x, 1);
    return err;
}

int xmppc_roster_get(struct xmppc *x)
{
    static const char q[] = "<iq type='get' id='" ID_ROSTER "'><query xmlns='" NS_ROSTER "'/></iq>";
    return xmppc_send(x, q, sizeof q - 1);
}

void xmppc_close(struct xmppc *x)
{
    if (x->state == XMPPC_CLOSED || x->state == XMPPC_CLOSING)
        return;
    if (x->state != XMPPC_IDLE && x->state != XMPPC_TLS)
        outs(x, "</stream:stream>");
    x->state = XMPPC_CLOSING;
}

bool xmppc_force_online(struct xmppc *x)
{
    if (x->state != XMPPC_PRESENCE)
        return false;
    x->state = XMPPC_ONLINE;
    return true;
}

void xmppc_trim(struct xmppc *x)
{
    if (!buf_used(&x->in))
        buf_trim(&x->in);
    xml_trim(&x->xp);
}

void xmppc_free(struct xmppc *x)
{
    xml_free(&x->xp);
    buf_free(&x->in);
    free(x->user);
    free(x->password);
    free(x->jid);
    x->user = x->password = x->jid = NULL;
    memset(&x->sasl, 0, sizeof x->sasl);
}
