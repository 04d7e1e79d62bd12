/*
 * stream.c: server streams (RFC 6120 §4, `jabber:server`): the header exchange, stream
 * features, STARTTLS (§5), stream errors. A peer is authenticated before any stanza of
 * it is taken; until a stream is (dialback, SASL EXTERNAL), a stanza on it ends it with
 * not-authorized (§4.9.3.12).
 */
#include "s2s/s2s.h"
#include "common/auth/tls.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xmlw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

void s2s_stream_start(struct fe_conn *c)
{
    const struct config *cfg = c->t->cfg;
    struct xml_limits lim = {
        .max_stanza = cfg->c2s.max_stanza_size,
        .max_depth = (uint16_t)cfg->c2s.max_depth,
        .max_attrs = (uint16_t)cfg->c2s.max_attrs,
        .max_name = (uint16_t)cfg->c2s.max_name,
    };
    xml_init(&c->xp, &lim, XML_CONTENT_SERVER, c->t->scratch, sizeof c->t->scratch);
    c->state = FE_HEADER;
    c->flags &= (uint16_t)~FE_F_HDR_SENT;
    c->deadline = c->t->now + (uint32_t)cfg->c2s.handshake_timeout;
}

static void header(struct fe_conn *c, struct xml_str peer)
{
    struct buf b = {0};
    uint8_t rnd[12];
    char id[2 * sizeof rnd + 1];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                 "xmlns:stream='http://etherx.jabber.org/streams' "
                 "xmlns:db='jabber:server:dialback'");
    xmlw_attr(&b, "id", id, strlen(id));
    xmlw_attr(&b, "from", c->t->cfg->domain, strlen(c->t->cfg->domain));
    if (peer.p)
        xmlw_attr(&b, "to", peer.p, peer.len);
    buf_puts(&b, " version='1.0' xml:lang='en'>");
    fe_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    c->flags |= FE_F_HDR_SENT;
}

void s2s_send_header(struct fe_conn *c)
{
    header(c, (struct xml_str){NULL, 0});
}

static void features(struct fe_conn *c)
{
    struct buf b = {0};
    buf_puts(&b, "<stream:features>");
    /* Encryption first (RFC 6120 §5.3.1), required. */
    if (!(c->flags & FE_F_TLS) && c->t->tls)
        buf_puts(&b, "<starttls xmlns='" NS_TLS "'><required/></starttls>");
    buf_puts(&b, "</stream:features>");
    fe_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* The peer's stream header (RFC 6120 §4.7): it names us as `to`. */
static void on_open(struct fe_conn *f, const struct xml_event *ev)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    const struct config *cfg = f->t->cfg;
    struct xml_str to = ev->attr[XML_ATTR_TO], from = ev->attr[XML_ATTR_FROM];
    struct xml_str ver = ev->attr[XML_ATTR_VERSION];
    char dom[JID_BUF];
    if (to.p) {
        int n = jid_prep_domain(to.p, to.len, dom, sizeof dom);
        if (n < 0 || strcmp(dom, cfg->domain) != 0) {
            fe_stream_error(f, "host-unknown");
            return;
        }
    }
    if (from.p && jid_prep_domain(from.p, from.len, dom, sizeof dom) >= 0) {
        free(c->remote);
        c->remote = strdup(dom);
    } else {
        from.p = NULL; /* echoed as our `to` only when it is a domain (§4.7.2) */
    }
    header(f, from);
    if (!ver.p || ver.len < 3 || ver.p[0] < '1' || ver.p[0] > '9' || ver.p[1] != '.') {
        fe_stream_error(f, "unsupported-version");
        return;
    }
    f->state = FE_OPEN;
    features(f);
}

static void on_starttls(struct fe_conn *c)
{
    if ((c->flags & FE_F_TLS) || !c->t->tls) {
        /* RFC 6120 §5.4.2.2: failure, then close the stream. */
        fe_puts(c, "<failure xmlns='" NS_TLS "'/></stream:stream>");
        fe_close(c);
        return;
    }
    fe_puts(c, "<proceed xmlns='" NS_TLS "'/>");
    if (fe_start_tls(c) < 0) {
        fe_close(c);
        return;
    }
    c->state = FE_TLS;
}

void s2s_stream_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev)
{
    if (kind == XML_EV_ERROR)
        fe_stream_error(c, xml_err_condition(ev->err));
    else if (kind == XML_EV_STREAM_OPEN)
        on_open(c, ev);
    else if (kind == XML_EV_STREAM_CLOSE)
        fe_stream_close(c);
    else if (kind == XML_EV_STANZA && str_is(ev->ns, NS_TLS) && str_is(ev->name, "starttls"))
        on_starttls(c);
    else if (kind == XML_EV_STANZA && c->state != S2S_AUTHED)
        fe_stream_error(c, "not-authorized"); /* nothing before the peer is known */
}

void s2s_stream_tick(struct fe_conn *c)
{
    if (c->state == FE_CLOSING || c->state == FE_FREE)
        return;
    if (c->deadline && c->t->now >= c->deadline)
        fe_stream_error(c, "connection-timeout");
}
