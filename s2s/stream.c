/*
 * stream.c: what server streams (RFC 6120 §4, `jabber:server`) share in both directions:
 * the parser's limits, our header (always declaring xmlns:db, which RFC 3920 servers
 * and ejabberd's literal matching of "db:result" expect), the dispatch of what the
 * parser reports to in.c or out.c, deadlines, and the dialback events that tie an
 * inbound stream's request to the outbound stream that verifies it.
 */
#include "s2s/s2s.h"
#include "common/auth/tls.h"
#include "common/core/log.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_STREAM "http://etherx.jabber.org/streams"

void s2s_stream_start(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    const struct config *cfg = f->t->cfg;
    /* Until the peer is authenticated it gets what c2s gives a client before login
     * (s2s_authed() raises it). */
    struct xml_limits lim = {
        .max_stanza = (f->flags & S2S_F_SASL_OK) ? cfg->s2s.max_stanza_size
                                                  : cfg->c2s.max_stanza_size_preauth,
        .max_depth = (uint16_t)cfg->c2s.max_depth,
        .max_attrs = (uint16_t)cfg->c2s.max_attrs,
        .max_name = (uint16_t)cfg->c2s.max_name,
    };
    xml_init(&f->xp, &lim, XML_CONTENT_SERVER, f->t->scratch, sizeof f->t->scratch);
    f->state = FE_HEADER;
    f->flags &= (uint16_t)~FE_F_HDR_SENT;
    /* One deadline for the whole negotiation, TLS and SASL restarts included; none once
     * SASL has authenticated the stream. */
    if (!f->deadline && !(f->flags & S2S_F_SASL_OK))
        f->deadline = f->t->now + cfg->s2s.auth_timeout;
    /* The initiating side speaks first (§4.2), over Direct TLS once it is up. */
    if ((f->flags & S2S_F_OUTBOUND) && !((f->flags & FE_F_DIRECT) && !(f->flags & FE_F_TLS))) {
        c->phase = OUT_STREAM;
        s2s_header(c, c->remote, NULL);
    }
}

void s2s_header(struct s2s_conn *c, const char *to, const char *id)
{
    const char *dom = s2s_me(c);
    struct buf b = {0};
    buf_puts(&b, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                 "xmlns:stream='" NS_STREAM "'" DIALBACK_STREAM_DECL);
    if (id)
        xmlw_attr(&b, "id", id, strlen(id));
    xmlw_attr(&b, "from", dom, strlen(dom));
    if (to)
        xmlw_attr(&b, "to", to, strlen(to));
    buf_puts(&b, " version='1.0'>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
    c->fe.flags |= FE_F_HDR_SENT;
}

void s2s_authed(struct s2s_conn *c)
{
    c->fe.deadline = 0;
    c->fe.xp.lim.max_stanza = c->fe.t->cfg->s2s.max_stanza_size;
}

void s2s_send_header(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    s2s_header(c, NULL, (f->flags & S2S_F_OUTBOUND) ? NULL : c->id);
}

void s2s_auth_reset(struct s2s_conn *c)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    if (c->db_ready) {
        dialback_free(&c->db);
        authz_free(&c->authz);
    }
    authz_init(&c->authz, &t->authz_lim, !(c->fe.flags & S2S_F_OUTBOUND));
    if (c->fe.flags & S2S_F_BIDI)
        authz_set_bidi(&c->authz);
    dialback_init(&c->db, t->db_cfg, &c->authz, c->id, c->id_len);
    c->db_ready = true;
}

struct xml_node *s2s_tree(struct s2s_conn *c, const struct xml_event *ev)
{
    struct fe_thread *t = c->fe.t;
    return xml_tree_parse(&c->fe.xp, ev->raw.p, ev->raw.len, &t->arena, t->scratch,
                          sizeof t->scratch);
}

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

void s2s_stream_event(struct fe_conn *f, enum xml_ev_kind kind, const struct xml_event *ev)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    bool out = f->flags & S2S_F_OUTBOUND;
    if (kind == XML_EV_ERROR) {
        fe_stream_error(f, xml_err_condition(ev->err));
    } else if (kind == XML_EV_STREAM_OPEN) {
        if (f->flags & S2S_F_REFUSED)
            fe_stream_error(f, "policy-violation"); /* s2s.max_connections_per_address */
        else if (out)
            out_open(c, ev);
        else
            in_open(c, ev);
    } else if (kind == XML_EV_STREAM_CLOSE) {
        fe_stream_close(f);
    } else if (kind == XML_EV_STANZA && str_is(ev->ns, NS_STREAM) && str_is(ev->name, "error")) {
        LOG_RL(LOG_LEVEL_INFO, "s2s %s %s: stream error from the peer: %.*s", out ? "to" : "from",
               c->remote ? c->remote : "?", (int)(ev->raw.len > 200 ? 200 : ev->raw.len),
               ev->raw.p);
        fe_stream_close(f);
    } else if (kind == XML_EV_STANZA) {
        if (out)
            out_element(c, ev);
        else
            in_element(c, ev);
        arena_reset(&f->t->arena);
    }
}

void s2s_stream_tick(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    if (f->state == FE_CLOSING || f->state == FE_FREE)
        return;
    if (c->db_ready && dialback_deadline(&c->db) && f->t->now >= dialback_deadline(&c->db)) {
        struct buf b = {0};
        struct dialback_event ev;
        enum dialback_ev k;
        while ((k = dialback_expire(&c->db, f->t->now, &b, &ev)) != DIALBACK_EV_NONE) {
            s2s_dialback_out(c, &b, k, &ev);
            if (f->state == FE_CLOSING)
                break;
        }
        buf_free(&b);
    }
    if (f->state == FE_CLOSING)
        return;
    if (f->flags & S2S_F_OUTBOUND) {
        out_tick(c);
    } else if (f->deadline && f->t->now >= f->deadline) {
        c->timed_out = true;
        fe_stream_error(f, "connection-timeout");
    }
}

void s2s_dialback_recv(struct s2s_conn *c, const struct xml_event *ev)
{
    struct xml_node *n = s2s_tree(c, ev);
    if (!n) {
        fe_stream_error(&c->fe, "bad-format");
        return;
    }
    struct buf b = {0};
    struct dialback_event de;
    enum dialback_ev k = dialback_recv(&c->db, n, &c->fe.t->arena, c->fe.t->now, &b, &de);
    s2s_dialback_out(c, &b, k, &de);
    buf_free(&b);
}

void s2s_dialback_out(struct s2s_conn *c, struct buf *b, enum dialback_ev k,
                      const struct dialback_event *ev)
{
    if (buf_used(b))
        fe_write(&c->fe, buf_data(b), buf_used(b));
    buf_consume(b, buf_used(b));
    if (k != DIALBACK_EV_NONE)
        s2s_dialback_event(c, k, ev);
}

void s2s_dialback_event(struct s2s_conn *c, enum dialback_ev k, const struct dialback_event *ev)
{
    struct s2s_thread *t = s2s_thread(&c->fe);
    switch (k) {
    case DIALBACK_EV_VERIFY:
        /* XEP-0344 §2.4: a certificate that names the sender proves it as well as its
         * authoritative server would. */
        if (c->fe.tls && tls_peer_verified(c->fe.tls, ev->sender)) {
            in_verified(t, c->id, ev->sender, ev->target, DIALBACK_VALID, DIALBACK_COND_NONE);
        } else if (t->fe.cfg->s2s.secure_auth) {
            in_verified(t, c->id, ev->sender, ev->target, DIALBACK_ERROR,
                        DIALBACK_NOT_AUTHORIZED);
        } else {
            out_verify(t, ev->sender, ev->target, ev->id, ev->key, ev->key_len);
        }
        break;
    case DIALBACK_EV_VERIFIED:
        in_verified(t, ev->id, ev->sender, ev->target, ev->result, ev->cond);
        break;
    case DIALBACK_EV_ALLOWED_IN:
        LOG_INFO("s2s: %s may send to %s (dialback)", ev->sender, ev->target);
        s2s_authed(c);
        out_attach(c, ev->sender); /* with bidi, ours to it may take this stream */
        break;
    case DIALBACK_EV_REFUSED_IN:
        LOG_INFO("s2s: %s refused for %s (dialback: %s)", ev->sender, ev->target,
                 dialback_cond_name(ev->cond));
        break;
    case DIALBACK_EV_ALLOWED_OUT:
    case DIALBACK_EV_REFUSED_OUT:
        out_dialback(c, k, ev);
        break;
    case DIALBACK_EV_STREAM_ERROR:
        fe_stream_error(&c->fe, ev->stream_error);
        break;
    default:
        break;
    }
}
