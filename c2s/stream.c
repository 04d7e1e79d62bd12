/*
 * stream.c: one client stream (RFC 6120 §4): the header exchange, stream features,
 * STARTTLS (§5), hand-off to SASL (auth.c) and binding (bind.c), the checks every
 * stanza passes before it is routed, stream errors (§4.9) and stanza errors (§8.3).
 */
#include "c2s/c2s.h"
#include "common/core/ctl.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/stanza.h"
#include "common/core/log.h"
#include "common/xmpp/xmlw.h"
#include "shm/proto.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define NS_STANZA_ERR "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_TLS        "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL       "urn:ietf:params:xml:ns:xmpp-sasl"

/* Seconds an idle client has to answer our ping before it is dropped. */
#define PING_GRACE 60
static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

static void send_header(struct conn *c, struct xml_str peer)
{
    struct buf b = {0};
    uint8_t rnd[12];
    char id[2 * sizeof rnd + 1];

    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams'");
    xmlw_attr(&b, "id", id, strlen(id));
    xmlw_attr(&b, "from", c->fe.t->cfg->domain, strlen(c->fe.t->cfg->domain));
    if (peer.p)
        xmlw_attr(&b, "to", peer.p, peer.len);
    buf_puts(&b, " version='1.0' xml:lang='en'>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
    c->fe.flags |= FE_F_HDR_SENT;
}

void stream_start(struct fe_conn *f)
{
    struct conn *c = (struct conn *)f;
    const struct config *cfg = c->fe.t->cfg;
    /* Until SASL succeeds only small elements are due; the restart after it (RFC 6120
     * §6.4.6) comes back here with the full limit. */
    uint32_t max = cfg->c2s.max_stanza_size;
    if (!(c->fe.flags & CONN_F_AUTHED) && cfg->c2s.max_stanza_size_preauth < max)
        max = cfg->c2s.max_stanza_size_preauth;
    struct xml_limits lim = {
        .max_stanza = max,
        .max_depth = (uint16_t)cfg->c2s.max_depth,
        .max_attrs = (uint16_t)cfg->c2s.max_attrs,
        .max_name = (uint16_t)cfg->c2s.max_name,
    };
    xml_init(&c->fe.xp, &lim, XML_CONTENT_CLIENT, c->fe.t->scratch, sizeof c->fe.t->scratch);
    c->fe.state = FE_HEADER;
    c->fe.flags &= (uint16_t)~FE_F_HDR_SENT;
    if (!(c->fe.flags & CONN_F_BOUND))
        c->fe.deadline = c->fe.t->now + (uint32_t)cfg->c2s.handshake_timeout;
}

void stream_stanza_error(struct conn *c, const struct xml_event *ev, const char *type,
                         const char *condition)
{
    /* Never answer an error with an error (RFC 6120 §8.3.1), or that loops. */
    if (str_is(ev->attr[XML_ATTR_TYPE], "error"))
        return;
    struct buf b = {0};
    struct xml_str id = ev->attr[XML_ATTR_ID], to = ev->attr[XML_ATTR_TO];
    const char *dom = c->fe.t->cfg->domain;

    /* The original payload is not echoed (optional, §8.3.1): its children may use
     * prefixes bound on the start tag we drop, and clients match errors by id. */
    buf_puts(&b, "<");
    buf_append(&b, ev->name.p, ev->name.len);
    buf_puts(&b, " type='error'");
    if (id.p)
        xmlw_attr(&b, "id", id.p, id.len);
    if (to.p)
        xmlw_attr(&b, "from", to.p, to.len);
    else
        xmlw_attr(&b, "from", dom, strlen(dom));
    if (c->jid)
        xmlw_attr(&b, "to", c->jid, c->jid_len);
    buf_puts(&b, "><error type='");
    buf_puts(&b, type);
    buf_puts(&b, "'><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='" NS_STANZA_ERR "'/></error></");
    buf_append(&b, ev->name.p, ev->name.len);
    buf_puts(&b, ">");
    conn_stanza(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void stream_features(struct conn *c)
{
    const struct config *cfg = c->fe.t->cfg;
    struct buf b = {0};

    buf_puts(&b, "<stream:features>");
    /* TLS comes first or not at all: never offered once authenticated (RFC 6120 §5.3.1). */
    if (!(c->fe.flags & (FE_F_TLS | CONN_F_AUTHED)) && c->fe.t->tls) {
        buf_puts(&b, "<starttls xmlns='" NS_TLS "'>");
        if (cfg->c2s.require_encryption)
            buf_puts(&b, "<required/>");
        buf_puts(&b, "</starttls>");
    }
    if (!(c->fe.flags & CONN_F_AUTHED)) {
        if ((c->fe.flags & FE_F_TLS) || !cfg->c2s.require_encryption)
            auth_features(c, &b);
    } else {
        bind_features(c, &b);
        sm_features(c, &b);
        csi_features(c, &b);
    }
    buf_puts(&b, "</stream:features>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void stream_drained(struct conn *c)
{
    const char *to = c->fe.t->cfg->admin.drain_redirect;
    if (to[0])
        fe_stream_error_text(&c->fe, "see-other-host", to); /* RFC 6120 §4.9.3.19 */
    else
        fe_stream_error(&c->fe, "system-shutdown");
}

void stream_send_header(struct fe_conn *c)
{
    send_header((struct conn *)c, (struct xml_str){NULL, 0});
}

/* The client's stream header (RFC 6120 §4.7). */
static void on_open(struct conn *c, const struct xml_event *ev)
{
    const struct config *cfg = c->fe.t->cfg;
    struct xml_str to = ev->attr[XML_ATTR_TO], from = ev->attr[XML_ATTR_FROM];
    struct xml_str ver = ev->attr[XML_ATTR_VERSION];
    char dom[JID_BUF];

    if (c->fe.flags & CONN_F_REFUSED) {
        fe_stream_error(&c->fe, "policy-violation"); /* c2s.max_connections_per_address */
        return;
    }
    if (to.p) {
        int n = jid_prep_domain(to.p, to.len, dom, sizeof dom);
        if (n < 0 || strcmp(dom, cfg->domain) != 0) {
            fe_stream_error(&c->fe, "host-unknown");
            return;
        }
    }
    /* A peer's `from` is echoed as our `to` only when it is a JID (§4.7.2). */
    if (from.p) {
        struct jid j;
        if (jid_parse(&j, from.p, from.len, dom, sizeof dom) < 0)
            from.p = NULL;
    }
    send_header(c, from);
    /* No version means a pre-1.0 peer; XMPP 1.0 is all we speak (§4.7.5). */
    if (!ver.p || ver.len < 3 || ver.p[0] < '1' || ver.p[0] > '9' || ver.p[1] != '.') {
        fe_stream_error(&c->fe, "unsupported-version");
        return;
    }
    /* Draining: a client that would log in now hears where to go at its first header
     * under TLS (so that it can trust a redirect), or at once on a node without TLS;
     * one on a plaintext stream meets the same at its <auth/> (auth.c). */
    if (c->fe.t->drain != CTL_DRAIN_OFF && !(c->fe.flags & CONN_F_AUTHED) &&
        ((c->fe.flags & FE_F_TLS) || !c->fe.t->tls)) {
        stream_drained(c);
        return;
    }
    c->fe.state = FE_OPEN;
    stream_features(c);
}

static void on_starttls(struct conn *c)
{
    if ((c->fe.flags & FE_F_TLS) || !c->fe.t->tls) {
        /* RFC 6120 §5.4.2.2: failure, then close the stream. */
        fe_puts(&c->fe, "<failure xmlns='" NS_TLS "'/></stream:stream>");
        fe_close(&c->fe);
        return;
    }
    fe_puts(&c->fe, "<proceed xmlns='" NS_TLS "'/>");
    if (fe_start_tls(&c->fe) < 0) {
        fe_close(&c->fe);
        return;
    }
    c->fe.state = FE_TLS;
}

static void on_stanza(struct conn *c, const struct xml_event *ev)
{
    if (!(c->fe.flags & CONN_F_AUTHED)) {
        if (str_is(ev->ns, NS_TLS) && str_is(ev->name, "starttls")) {
            on_starttls(c);
        } else if (str_is(ev->ns, NS_SASL)) {
            if (!(c->fe.flags & FE_F_TLS) && c->fe.t->cfg->c2s.require_encryption)
                fe_puts(&c->fe, "<failure xmlns='" NS_SASL "'><encryption-required/></failure>");
            else
                auth_stanza(c, ev);
        } else {
            fe_stream_error(&c->fe, "not-authorized"); /* RFC 6120 §6.4.1 */
        }
        return;
    }
    if (str_is(ev->ns, "urn:xmpp:sm:3")) {
        sm_element(c, ev);
        return;
    }
    if (str_is(ev->ns, "urn:xmpp:csi:0") && (c->fe.flags & CONN_F_BOUND)) {
        csi_element(c, ev);
        return;
    }
    if (!str_is(ev->ns, XML_NS_CLIENT)) {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    int kind = stanza_kind(ev->name);
    if (kind < 0) {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    sm_handled(c); /* from here on, every stanza is answered or routed */
    if (kind == PROTO_IQ && bind_iq(c, ev))
        return;
    if (!(c->fe.flags & CONN_F_BOUND)) {
        fe_stream_error(&c->fe, "not-authorized"); /* stanzas before binding: RFC 6120 §7.1 */
        return;
    }
    int type = stanza_type(kind, ev->attr[XML_ATTR_TYPE]);
    if (kind == PROTO_IQ && !ev->attr[XML_ATTR_ID].p)
        type = -1; /* an iq must have an id (RFC 6120 §8.2.3) */
    if (type < 0) {
        stream_stanza_error(c, ev, "modify", "bad-request");
        return;
    }
    route_stanza(c, ev, (uint8_t)kind, (uint8_t)type);
}

void stream_event(struct fe_conn *f, enum xml_ev_kind kind, const struct xml_event *ev)
{
    struct conn *c = (struct conn *)f;
    if (kind == XML_EV_ERROR)
        fe_stream_error(f, xml_err_condition(ev->err));
    else if (kind == XML_EV_STREAM_OPEN)
        on_open(c, ev);
    else if (kind == XML_EV_STREAM_CLOSE)
        fe_stream_close(f);
    else if (kind == XML_EV_STANZA)
        on_stanza(c, ev);
}

void stream_tick(struct fe_conn *f)
{
    struct conn *c = (struct conn *)f;
    const struct config *cfg = c->fe.t->cfg;
    uint32_t now = c->fe.t->now;

    if (c->fe.state == FE_CLOSING || c->fe.state == FE_FREE)
        return;
    if (c->fe.deadline && now >= c->fe.deadline) {
        fe_stream_error(&c->fe, "connection-timeout");
        return;
    }
    if (!(c->fe.flags & CONN_F_BOUND))
        return;
    uint32_t idle = now - c->fe.last_rx;
    if ((c->fe.flags & CONN_F_PINGED) && idle < (uint32_t)cfg->c2s.idle_timeout)
        c->fe.flags &= (uint16_t)~CONN_F_PINGED; /* it answered, or sent anything */
    if (c->fe.flags & CONN_F_PINGED) {
        if (idle < (uint32_t)cfg->c2s.idle_timeout + PING_GRACE)
            return;
        /* A session its client may resume waits for it: the connection is what died. */
        if (sm_resumable(c))
            fe_close(&c->fe);
        else
            fe_stream_error(&c->fe, "connection-timeout");
        return;
    }
    sm_tick(c);
    if (cfg->c2s.idle_timeout && idle >= (uint32_t)cfg->c2s.idle_timeout) {
        /* XEP-0199: any answer (or any byte) proves the client is there. */
        struct buf b = {0};
        buf_puts(&b, "<iq type='get' id='c2s-idle-ping'");
        xmlw_attr(&b, "from", cfg->domain, strlen(cfg->domain));
        xmlw_attr(&b, "to", c->jid, c->jid_len);
        buf_puts(&b, "><ping xmlns='urn:xmpp:ping'/></iq>");
        conn_stanza(c, buf_data(&b), buf_used(&b));
        buf_free(&b);
        c->fe.flags |= CONN_F_PINGED;
    } else if (cfg->c2s.keepalive && now - c->fe.last_tx >= (uint32_t)cfg->c2s.keepalive) {
        fe_puts(&c->fe, " "); /* a whitespace keepalive finds dead peers (RFC 6120 §4.6.1) */
    }
}
