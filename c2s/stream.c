/*
 * stream.c: one client stream (RFC 6120 §4): the header exchange, stream features,
 * STARTTLS (§5), hand-off to SASL (auth.c) and binding (bind.c), the checks every
 * stanza passes before it is routed, stream errors (§4.9) and stanza errors (§8.3).
 */
#include "c2s/c2s.h"
#include "common/xmpp/jid.h"
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
/* Bytes held for a client beyond one stanza while its input waits (ring full, store,
 * router away). Reading stops when input is held (in a short wait, past HOLD_READING);
 * what still arrives was already in flight (the socket's receive buffer at most), so
 * this bounds only the absurd. */
#define HOLD_SLACK (16u << 20)
/* Bytes held during a short wait before reading stops too (stream_input). */
#define HOLD_READING (64u << 10)

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
    xmlw_attr(&b, "from", c->t->cfg->domain, strlen(c->t->cfg->domain));
    if (peer.p)
        xmlw_attr(&b, "to", peer.p, peer.len);
    buf_puts(&b, " version='1.0' xml:lang='en'>");
    conn_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    c->flags |= CONN_F_HDR_SENT;
}

void stream_start(struct conn *c)
{
    const struct config *cfg = c->t->cfg;
    /* Until SASL succeeds only small elements are due; the restart after it (RFC 6120
     * §6.4.6) comes back here with the full limit. */
    uint32_t max = cfg->c2s.max_stanza_size;
    if (!(c->flags & CONN_F_AUTHED) && cfg->c2s.max_stanza_size_preauth < max)
        max = cfg->c2s.max_stanza_size_preauth;
    struct xml_limits lim = {
        .max_stanza = max,
        .max_depth = (uint16_t)cfg->c2s.max_depth,
        .max_attrs = (uint16_t)cfg->c2s.max_attrs,
        .max_name = (uint16_t)cfg->c2s.max_name,
    };
    xml_init(&c->xp, &lim, XML_CONTENT_CLIENT, c->t->scratch, sizeof c->t->scratch);
    c->state = CONN_HEADER;
    c->flags &= (uint16_t)~CONN_F_HDR_SENT;
    if (!(c->flags & CONN_F_BOUND))
        c->deadline = c->t->now + (uint32_t)cfg->c2s.handshake_timeout;
}

void stream_error(struct conn *c, const char *condition)
{
    if (c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    if (!(c->flags & CONN_F_HDR_SENT))
        send_header(c, (struct xml_str){NULL, 0});
    struct buf b = {0};
    buf_puts(&b, "<stream:error><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='" NS_STREAM_ERR "'/></stream:error></stream:stream>");
    conn_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    LOG_RL(LOG_LEVEL_INFO, "conn %u: stream error %s", c->slot, condition);
    conn_close(c);
}

void stream_close(struct conn *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    if (c->flags & CONN_F_HDR_SENT)
        conn_puts(c, "</stream:stream>");
    conn_close(c);
}

void stream_stanza_error(struct conn *c, const struct xml_event *ev, const char *type,
                         const char *condition)
{
    /* Never answer an error with an error (RFC 6120 §8.3.1), or that loops. */
    if (str_is(ev->attr[XML_ATTR_TYPE], "error"))
        return;
    struct buf b = {0};
    struct xml_str id = ev->attr[XML_ATTR_ID], to = ev->attr[XML_ATTR_TO];
    const char *dom = c->t->cfg->domain;

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
    conn_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void stream_features(struct conn *c)
{
    const struct config *cfg = c->t->cfg;
    struct buf b = {0};

    buf_puts(&b, "<stream:features>");
    /* TLS comes first or not at all: never offered once authenticated (RFC 6120 §5.3.1). */
    if (!(c->flags & (CONN_F_TLS | CONN_F_AUTHED)) && c->t->tls) {
        buf_puts(&b, "<starttls xmlns='" NS_TLS "'>");
        if (cfg->c2s.require_encryption)
            buf_puts(&b, "<required/>");
        buf_puts(&b, "</starttls>");
    }
    if (!(c->flags & CONN_F_AUTHED)) {
        if ((c->flags & CONN_F_TLS) || !cfg->c2s.require_encryption)
            auth_features(c, &b);
    } else {
        bind_features(c, &b);
    }
    buf_puts(&b, "</stream:features>");
    conn_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void stream_tls_ready(struct conn *c)
{
    c->flags |= CONN_F_TLS;
    xml_free(&c->xp);
    stream_start(c);
}

void stream_restart(struct conn *c)
{
    c->flags |= CONN_F_RESTART;
}

/* The client's stream header (RFC 6120 §4.7). */
static void on_open(struct conn *c, const struct xml_event *ev)
{
    const struct config *cfg = c->t->cfg;
    struct xml_str to = ev->attr[XML_ATTR_TO], from = ev->attr[XML_ATTR_FROM];
    struct xml_str ver = ev->attr[XML_ATTR_VERSION];
    char dom[JID_BUF];

    if (c->flags & CONN_F_REFUSED) {
        stream_error(c, "policy-violation"); /* c2s.max_connections_per_address */
        return;
    }
    if (to.p) {
        int n = jid_prep_domain(to.p, to.len, dom, sizeof dom);
        if (n < 0 || strcmp(dom, cfg->domain) != 0) {
            stream_error(c, "host-unknown");
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
        stream_error(c, "unsupported-version");
        return;
    }
    c->state = CONN_OPEN;
    stream_features(c);
}

static void on_starttls(struct conn *c)
{
    if ((c->flags & CONN_F_TLS) || !c->t->tls) {
        /* RFC 6120 §5.4.2.2: failure, then close the stream. */
        conn_puts(c, "<failure xmlns='" NS_TLS "'/></stream:stream>");
        conn_close(c);
        return;
    }
    conn_puts(c, "<proceed xmlns='" NS_TLS "'/>");
    if (conn_start_tls(c) < 0) {
        conn_close(c);
        return;
    }
    c->state = CONN_TLS;
}

static int message_type(struct xml_str t)
{
    if (!t.p || str_is(t, "normal"))
        return PROTO_MSG_NORMAL;
    if (str_is(t, "chat"))
        return PROTO_MSG_CHAT;
    if (str_is(t, "groupchat"))
        return PROTO_MSG_GROUPCHAT;
    if (str_is(t, "headline"))
        return PROTO_MSG_HEADLINE;
    if (str_is(t, "error"))
        return PROTO_MSG_ERROR;
    return PROTO_MSG_NORMAL; /* unknown types are "normal" (RFC 6121 §5.2.2) */
}

static int presence_type(struct xml_str t)
{
    static const char *const names[] = {
        [PROTO_PRES_UNAVAILABLE] = "unavailable",
        [PROTO_PRES_SUBSCRIBE] = "subscribe",
        [PROTO_PRES_SUBSCRIBED] = "subscribed",
        [PROTO_PRES_UNSUBSCRIBE] = "unsubscribe",
        [PROTO_PRES_UNSUBSCRIBED] = "unsubscribed",
        [PROTO_PRES_PROBE] = "probe",
        [PROTO_PRES_ERROR] = "error",
    };
    if (!t.p)
        return PROTO_PRES_AVAILABLE;
    for (int i = PROTO_PRES_UNAVAILABLE; i <= PROTO_PRES_ERROR; i++)
        if (str_is(t, names[i]))
            return i;
    return -1;
}

static int iq_type(struct xml_str t)
{
    if (str_is(t, "get"))
        return PROTO_IQ_GET;
    if (str_is(t, "set"))
        return PROTO_IQ_SET;
    if (str_is(t, "result"))
        return PROTO_IQ_RESULT;
    if (str_is(t, "error"))
        return PROTO_IQ_ERROR;
    return -1;
}

static void on_stanza(struct conn *c, const struct xml_event *ev)
{
    if (!(c->flags & CONN_F_AUTHED)) {
        if (str_is(ev->ns, NS_TLS) && str_is(ev->name, "starttls")) {
            on_starttls(c);
        } else if (str_is(ev->ns, NS_SASL)) {
            if (!(c->flags & CONN_F_TLS) && c->t->cfg->c2s.require_encryption)
                conn_puts(c, "<failure xmlns='" NS_SASL "'><encryption-required/></failure>");
            else
                auth_stanza(c, ev);
        } else {
            stream_error(c, "not-authorized"); /* RFC 6120 §6.4.1 */
        }
        return;
    }
    if (!str_is(ev->ns, XML_NS_CLIENT)) {
        stream_error(c, "unsupported-stanza-type");
        return;
    }
    int kind, type;
    if (str_is(ev->name, "message"))
        kind = PROTO_MESSAGE;
    else if (str_is(ev->name, "presence"))
        kind = PROTO_PRESENCE;
    else if (str_is(ev->name, "iq"))
        kind = PROTO_IQ;
    else {
        stream_error(c, "unsupported-stanza-type");
        return;
    }
    if (kind == PROTO_IQ && bind_iq(c, ev))
        return;
    if (!(c->flags & CONN_F_BOUND)) {
        stream_error(c, "not-authorized"); /* stanzas before binding: RFC 6120 §7.1 */
        return;
    }
    if (kind == PROTO_MESSAGE) {
        type = message_type(ev->attr[XML_ATTR_TYPE]);
    } else if (kind == PROTO_PRESENCE) {
        type = presence_type(ev->attr[XML_ATTR_TYPE]);
    } else {
        type = iq_type(ev->attr[XML_ATTR_TYPE]);
        if (type >= 0 && !ev->attr[XML_ATTR_ID].p)
            type = -1; /* an iq must have an id (RFC 6120 §8.2.3) */
    }
    if (type < 0) {
        stream_stanza_error(c, ev, "modify", "bad-request");
        return;
    }
    route_stanza(c, ev, (uint8_t)kind, (uint8_t)type);
}

bool stream_held(const struct conn *c)
{
    return (c->flags & (CONN_F_PAUSED | CONN_F_WAIT)) || c->t->router_down;
}

static void hold(struct conn *c, const char *p, size_t n)
{
    if (!n)
        return;
    if (buf_used(&c->in) + n > c->t->cfg->c2s.max_stanza_size + HOLD_SLACK ||
        buf_append(&c->in, p, n) < 0)
        stream_error(c, "resource-constraint");
}

void stream_input(struct conn *c, const char *data, size_t n)
{
    if (data && (buf_used(&c->in) || stream_held(c))) {
        hold(c, data, n);
        data = NULL;
    }
    for (;;) {
        bool own = data == NULL;
        const char *buf = own ? buf_data(&c->in) : data;
        size_t len = own ? buf_used(&c->in) : n;
        bool discard = false;

        if (c->state == CONN_CLOSING || c->state == CONN_FREE)
            return;
        while (!stream_held(c) && !(c->flags & CONN_F_RESTART)) {
            struct xml_event ev;
            enum xml_ev_kind k = xml_next(&c->xp, buf, len, &ev);
            if (k == XML_EV_NONE)
                break;
            if (k == XML_EV_ERROR)
                stream_error(c, xml_err_condition(ev.err));
            else if (k == XML_EV_STREAM_OPEN)
                on_open(c, &ev);
            else if (k == XML_EV_STREAM_CLOSE)
                stream_close(c);
            else if (k == XML_EV_STANZA)
                on_stanza(c, &ev);
            if (c->state == CONN_CLOSING || c->state == CONN_FREE)
                return;
            if (c->state == CONN_TLS) {
                discard = true;
                break;
            }
        }
        size_t drop = xml_release(&c->xp);
        if (discard) {
            /* Bytes after <starttls/> predate TLS: never trust them (CVE-2011-0411). A
             * client waits for <proceed/> before it starts TLS (RFC 6120 §5.4.2), so
             * anything but whitespace there comes from one that will not complete a
             * handshake (garbage, or a ClientHello sent too early, which is gone now):
             * close at once rather than at the handshake timeout. */
            for (size_t i = drop; i < len; i++)
                if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') {
                    LOG_RL(LOG_LEVEL_INFO, "conn %u: bytes after <starttls/>: closed", c->slot);
                    conn_close(c);
                    break;
                }
            drop = len;
        }
        if (own)
            buf_consume(&c->in, drop);
        else
            hold(c, buf + drop, len - drop);
        if (!(c->flags & CONN_F_RESTART) || c->state == CONN_CLOSING)
            break;
        /* A stream restart after SASL success (RFC 6120 §6.4.6): what follows belongs
         * to the new stream. */
        c->flags &= (uint16_t)~CONN_F_RESTART;
        xml_free(&c->xp);
        stream_start(c);
        data = NULL;
    }
    if (!buf_used(&c->in))
        buf_trim(&c->in);
    /* Held input means the client must wait: stop reading, so TCP pushes back. Except in
     * a short wait for the answer to this client's own request (CONN_F_WAIT: the store
     * at SASL, the router at bind), where a client has nothing more to send: there a
     * cancel and a re-arm at every login step cost more than the wait, so reading stops
     * only if input piles up anyway. */
    if (stream_held(c) && ((c->flags & CONN_F_PAUSED) || c->t->router_down ||
                           buf_used(&c->in) > HOLD_READING))
        loop_cancel_recv(c);
    else
        loop_arm_recv(c);
}

void stream_tick(struct conn *c)
{
    const struct config *cfg = c->t->cfg;
    uint32_t now = c->t->now;

    if (c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    if (c->deadline && now >= c->deadline) {
        stream_error(c, "connection-timeout");
        return;
    }
    if (!(c->flags & CONN_F_BOUND))
        return;
    uint32_t idle = now - c->last_rx;
    if (c->flags & CONN_F_PINGED) {
        if (idle >= (uint32_t)cfg->c2s.idle_timeout + PING_GRACE)
            stream_error(c, "connection-timeout");
        return;
    }
    if (cfg->c2s.idle_timeout && idle >= (uint32_t)cfg->c2s.idle_timeout) {
        /* XEP-0199: any answer (or any byte) proves the client is there. */
        struct buf b = {0};
        buf_puts(&b, "<iq type='get' id='c2s-idle-ping'");
        xmlw_attr(&b, "from", cfg->domain, strlen(cfg->domain));
        xmlw_attr(&b, "to", c->jid, c->jid_len);
        buf_puts(&b, "><ping xmlns='urn:xmpp:ping'/></iq>");
        conn_write(c, buf_data(&b), buf_used(&b));
        buf_free(&b);
        c->flags |= CONN_F_PINGED;
    } else if (cfg->c2s.keepalive && now - c->last_tx >= (uint32_t)cfg->c2s.keepalive) {
        conn_puts(c, " "); /* a whitespace keepalive finds dead peers (RFC 6120 §4.6.1) */
    }
}
