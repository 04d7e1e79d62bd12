/*
 * in.c: inbound server streams, where a peer connected to us (RFC 6120 §4-§6).
 *
 *   header   its `to` must be a domain of ours, the main one or the chat service's
 *            (host-unknown): the stream is for it (c->local); we answer with a fresh,
 *            unpredictable stream ID (the dialback keys hang on it) and our features:
 *   features before TLS: <starttls/>, required unless s2s.require_encryption is off;
 *            with TLS: EXTERNAL when the peer's certificate verifies and names the
 *            header's `from` (XEP-0178), XEP-0288's bidi while nothing is authenticated
 *            (s2s.bidi), dialback (XEP-0220 with errors);
 *   then     <starttls/> (§5), <bidi/> (whenever it comes, bidi.h), SASL EXTERNAL
 *            (success restarts the stream, which keeps the pair and bidi), dialback
 *            requests (verified with the sender's authoritative server by out.c, or by
 *            the certificate, XEP-0344) and <db:verify/> asked of us as the
 *            authoritative server (answered at once from the key);
 *   bidi     each pair authenticated then also lets us send its inverse here: the
 *            stream becomes the ready stream of the peer's entry in out.c
 *            (out_attach()), so our stanzas to it need no connection of ours;
 *   stanzas  once a pair is valid: `from` must be a domain the stream authenticated
 *            (invalid-from; to any of our domains, sender_proved()), `to` one we
 *            serve (host-unknown), both proper JIDs
 *            (improper-addressing); then into the recipient's shard like a c2s stanza
 *            (a room's: the room's home shard, router/muc.h).
 * Anything else before authentication ends the stream with not-authorized (§4.9.3.12).
 */
#include "s2s/s2s.h"
#include "common/auth/tls.h"
#include "common/core/log.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/stanza.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"
#include "s2s/bidi.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_TLS  "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && memcmp(s.p, lit, n) == 0;
}

static void new_id(struct s2s_conn *c)
{
    uint8_t rnd[16]; /* 128 bits: a key made for this stream is no good on another */
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd); /* never on Linux >= 3.17 once booted */
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(c->id + 2 * i, 3, "%02x", rnd[i]);
    c->id_len = 2 * sizeof rnd;
}

static struct external_peer peer_of(struct s2s_conn *c)
{
    bool tls = c->fe.flags & FE_F_TLS;
    struct external_peer p = {
        .tls = tls,
        .cert_ok = tls && tls_peer_verify(c->fe.tls, NULL) == TLS_VERIFY_OK,
        .name_ok = tls && c->remote && tls_peer_verified(c->fe.tls, c->remote),
        .from = c->remote,
    };
    return p;
}

static void features(struct s2s_conn *c)
{
    const struct config *cfg = c->fe.t->cfg;
    struct buf b = {0};
    buf_puts(&b, "<stream:features>");
    if (!(c->fe.flags & FE_F_TLS) && c->fe.t->tls) {
        /* Encryption first (RFC 6120 §5.3.1). */
        buf_puts(&b, "<starttls xmlns='" NS_TLS "'>");
        if (cfg->s2s.require_encryption)
            buf_puts(&b, "<required/>");
        buf_puts(&b, "</starttls>");
    }
    if ((c->fe.flags & FE_F_TLS) || !cfg->s2s.require_encryption) {
        if (!(c->fe.flags & S2S_F_SASL_OK)) {
            struct external_peer p = peer_of(c);
            external_init(&c->ext, &p);
            if (external_offer(&p))
                external_mechanisms(&b);
            /* Where Prosody offers it: encrypted (or not required), unauthenticated. */
            if (cfg->s2s.bidi)
                bidi_feature(&b);
        }
        dialback_feature(&b);
    }
    buf_puts(&b, "</stream:features>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void in_open(struct s2s_conn *c, const struct xml_event *ev)
{
    const struct config *cfg = c->fe.t->cfg;
    struct xml_str to = ev->attr[XML_ATTR_TO], from = ev->attr[XML_ATTR_FROM];
    struct xml_str ver = ev->attr[XML_ATTR_VERSION];
    char dom[JID_BUF];
    new_id(c);
    if (c->dom)
        out_detach(c); /* a restart forgets what the stream had authenticated */
    /* No `to`: the main domain (RFC 6120 §4.7.2 lets it be), or after SASL's restart the
     * domain it was for. */
    int local = (c->fe.flags & S2S_F_SASL_OK) ? c->local : S2S_LOCAL_MAIN;
    if (to.p && (jid_prep_domain(to.p, to.len, dom, sizeof dom) < 0 ||
                 (local = s2s_local_of(cfg, dom, strlen(dom))) < 0)) {
        fe_stream_error(&c->fe, "host-unknown");
        return;
    }
    if ((c->fe.flags & S2S_F_SASL_OK) && (unsigned)local != c->local) {
        fe_stream_error(&c->fe, "host-unknown"); /* the restart is for the domain SASL was */
        return;
    }
    c->local = (uint8_t)local;
    if (from.p) {
        if (jid_prep_domain(from.p, from.len, dom, sizeof dom) < 0) {
            fe_stream_error(&c->fe, "invalid-from");
            return;
        }
        if (!(c->fe.flags & S2S_F_SASL_OK)) {
            if ((c->fe.flags & FE_F_DIRECT) && !c->remote)
                LOG_INFO("s2s: %s connected over Direct TLS (XEP-0368)", dom);
            free(c->remote);
            c->remote = strdup(dom);
        } else if (!c->remote || strcmp(dom, c->remote) != 0) {
            fe_stream_error(&c->fe, "invalid-from"); /* not the domain SASL proved */
            return;
        }
    }
    s2s_header(c, c->remote, c->id);
    c->fe.state = FE_OPEN;
    s2s_auth_reset(c);
    if (c->fe.flags & S2S_F_SASL_OK) {
        /* The restart after SASL keeps what it proved (RFC 6120 §6.4.6, XEP-0178). */
        authz_add(&c->authz, AUTHZ_IN, c->remote, strlen(c->remote), s2s_me(c),
                  strlen(s2s_me(c)), false, c->fe.t->now);
    }
    /* RFC 3920 peers (no version) send no features and may start dialback at once. */
    if (ver.p && ver.len >= 1 && ver.p[0] >= '1' && ver.p[0] <= '9')
        features(c);
    if (c->fe.flags & S2S_F_SASL_OK)
        out_attach(c, c->remote); /* after our header and features: stanzas may follow */
}

static void on_bidi(struct s2s_conn *c, const struct xml_event *ev)
{
    struct xml_node *n = s2s_tree(c, ev);
    const char *err = n ? bidi_recv(&c->authz, n) : "bad-format";
    if (err) {
        fe_stream_error(&c->fe, err);
        return;
    }
    c->fe.flags |= S2S_F_BIDI;
    /* Accepted late (ejabberd's way): the pairs authenticated already count too. */
    for (unsigned i = 0; !c->dom; i++) {
        const struct authz_pair *p = authz_at(&c->authz, i);
        if (!p)
            break;
        if (p->dir == AUTHZ_IN && !p->pending)
            out_attach(c, p->from);
    }
}

static void on_starttls(struct s2s_conn *c)
{
    struct fe_conn *f = &c->fe;
    if ((f->flags & FE_F_TLS) || !f->t->tls) {
        /* RFC 6120 §5.4.2.2: failure, then close the stream. */
        fe_puts(f, "<failure xmlns='" NS_TLS "'/></stream:stream>");
        fe_close(f);
        return;
    }
    fe_puts(f, "<proceed xmlns='" NS_TLS "'/>");
    if (fe_start_tls(f) < 0) {
        fe_close(f);
        return;
    }
    f->state = FE_TLS;
}

static void on_sasl(struct s2s_conn *c, const struct xml_event *ev)
{
    struct xml_node *n = s2s_tree(c, ev);
    if (!n) {
        fe_stream_error(&c->fe, "bad-format");
        return;
    }
    struct fe_thread *t = c->fe.t;
    const char *txt = xml_node_text(n, &t->arena);
    size_t tl = txt ? strlen(txt) : 0;
    struct buf b = {0};
    struct external_event xe;
    enum sasl_ev k;
    if (c->fe.flags & S2S_F_SASL_OK) {
        fe_stream_error(&c->fe, "policy-violation"); /* one authentication per stream */
        return;
    }
    if (str_is(ev->name, "auth")) {
        const char *mech = xml_node_attr(n, "mechanism");
        k = external_start(&c->ext, mech ? mech : "", mech ? strlen(mech) : 0, txt, tl, &b, &xe);
    } else if (str_is(ev->name, "response")) {
        k = external_step(&c->ext, txt, tl, &b, &xe);
    } else if (str_is(ev->name, "abort")) {
        k = external_abort(&c->ext, &b, &xe);
    } else {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    if (!k) {
        buf_free(&b);
        fe_stream_error(&c->fe, "internal-server-error");
        return;
    }
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
    if (k == SASL_EV_SUCCESS) {
        LOG_INFO("s2s: %s authenticated with its certificate (SASL EXTERNAL)", c->remote);
        c->fe.flags |= S2S_F_SASL_OK;
        s2s_authed(c);
        fe_restart(&c->fe);
    }
}

void in_verified(struct s2s_thread *t, const char *id, const char *sender, const char *target,
                 enum dialback_type result, enum dialback_cond cond)
{
    for (uint32_t i = 0; i < t->fe.nslots; i++) {
        struct s2s_conn *c = (struct s2s_conn *)fe_slot(&t->fe, i);
        if (c->fe.state == FE_FREE || c->fe.state == FE_CLOSING || !c->db_ready ||
            (c->fe.flags & S2S_F_OUTBOUND) || strcmp(c->id, id) != 0)
            continue;
        struct buf b = {0};
        struct dialback_event de;
        enum dialback_ev k = dialback_verified(&c->db, sender, target, result, cond, &b, &de);
        s2s_dialback_out(c, &b, k, &de);
        buf_free(&b);
        return;
    }
}

void in_element(struct s2s_conn *c, const struct xml_event *ev)
{
    const struct config *cfg = c->fe.t->cfg;
    bool tls_ok = (c->fe.flags & FE_F_TLS) || !cfg->s2s.require_encryption;
    if (str_is(ev->ns, NS_TLS) && str_is(ev->name, "starttls")) {
        on_starttls(c);
    } else if (!tls_ok) {
        fe_stream_error(&c->fe, "policy-violation"); /* encryption is required (§5.3.1) */
    } else if (str_is(ev->ns, NS_SASL)) {
        on_sasl(c, ev);
    } else if (str_is(ev->ns, BIDI_NS) && cfg->s2s.bidi) {
        on_bidi(c, ev);
    } else if (str_is(ev->ns, DIALBACK_NS)) {
        s2s_dialback_recv(c, ev);
    } else if (!authz_valid(&c->authz, AUTHZ_IN)) {
        fe_stream_error(&c->fe, "not-authorized"); /* nothing before the peer is known */
    } else {
        in_stanza(c, ev);
    }
}

/* RFC 6120 §4.9.3.10: a stanza between servers has a proper `from` and `to`. */
static int address(const struct xml_str *s, struct jid *j, char *buf)
{
    if (!s->p || !s->len)
        return -1;
    return jid_parse(j, s->p, s->len, buf, JID_BUF);
}

/* May the peer send from domain f to our domain t here? What authentication proves is
 * the sender's domain; our domains are one server, so a pair authenticated to one of
 * them lets the same sender reach the other as well: ejabberd and our own XEP-0033
 * discovery (multicast.c) ask a subdomain of the peer over the stream to its domain. */
static bool sender_proved(const struct s2s_conn *c, const char *f, size_t fl, const char *t,
                          size_t tl)
{
    const struct config *cfg = c->fe.t->cfg;
    if (authz_may_receive(&c->authz, f, fl, t, tl))
        return true;
    for (unsigned l = S2S_LOCAL_MAIN; l <= S2S_LOCAL_MUC; l++) {
        const char *me = s2s_local_name(cfg, l);
        if ((l == S2S_LOCAL_MAIN || cfg->muc.enabled) &&
            authz_may_receive(&c->authz, f, fl, me, strlen(me)))
            return true;
    }
    return false;
}

void in_stanza(struct s2s_conn *c, const struct xml_event *ev)
{
    struct fe_thread *t = c->fe.t;
    const struct config *cfg = t->cfg;
    int kind = stanza_kind(ev->name);
    if (kind < 0 || !str_is(ev->ns, "jabber:server")) {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    int type = stanza_type(kind, ev->attr[XML_ATTR_TYPE]);
    if (type < 0 || (kind == PROTO_IQ && !ev->attr[XML_ATTR_ID].p)) {
        fe_stream_error(&c->fe, "bad-format"); /* a server sends no such stanza */
        return;
    }
    struct jid from, to;
    char fbuf[JID_BUF], tbuf[JID_BUF];
    if (address(&ev->attr[XML_ATTR_FROM], &from, fbuf) < 0 ||
        address(&ev->attr[XML_ATTR_TO], &to, tbuf) < 0) {
        fe_stream_error(&c->fe, "improper-addressing");
        return;
    }
    int local = s2s_local_of(cfg, to.str + to.domain_off, to.domain_len);
    if (local < 0) {
        fe_stream_error(&c->fe, "host-unknown");
        return;
    }
    if (!sender_proved(c, from.str + from.domain_off, from.domain_len,
                       to.str + to.domain_off, to.domain_len)) {
        fe_stream_error(&c->fe, "invalid-from");
        return;
    }

    if (!to.local_len && !to.res_len && mcast_stanza(c, ev, kind, type, &from, (unsigned)local))
        return; /* XEP-0033: ours to answer or to expand */
    in_route(c, ev, kind, type, &from, &to, &ev->raw, 1, 0);
}

int in_route(struct s2s_conn *c, const struct xml_event *ev, int kind, int type,
             const struct jid *from, const struct jid *to, const struct xml_str *parts,
             unsigned nparts, int head_delta)
{
    struct fe_thread *t = c->fe.t;
    /* The stanza as it came, with the declarations of the stream's prefixes it uses. */
    char decls[1024];
    size_t dl = (ev->flags & XML_F_STREAM_BIND)
                    ? xml_stream_decls(&c->fe.xp, ev->stream_binds, decls, sizeof decls)
                    : 0;
    if (dl > sizeof decls) {
        fe_stream_error(&c->fe, "policy-violation");
        return -1;
    }
    uint32_t name_end = 1 + ev->name.len;
    size_t slen = dl;
    for (unsigned i = 0; i < nparts; i++)
        slen += parts[i].len;
    size_t plen = sizeof(struct proto_stanza) + from->len + to->len + slen;
    uint64_t to_key = jid_hash(to->str, jid_bare_len(to));
    unsigned shard = fe_shard_of(t, to_key);
    bool held;
    int err;
    struct proto_stanza *h = fe_port_reserve(&c->fe, shard, (uint32_t)plen, PROTO_STANZA, &held,
                                             &err);
    if (!h) {
        fe_stream_error(&c->fe, err == -ENOMEM ? "resource-constraint" : "policy-violation");
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->conn = fe_conn_id(&c->fe);
    h->key = to_key; /* the recipient's shard first: the sender has no state here */
    h->to_key = to_key;
    h->kind = (uint8_t)kind;
    h->type = (uint8_t)type;
    h->flags = PROTO_STANZA_LOCAL | PROTO_STANZA_REMOTE;
    if (!to->local_len && !to->res_len)
        h->flags |= PROTO_STANZA_TO_SERVER;
    h->from_len = from->len;
    h->from_bare_len = (uint16_t)jid_bare_len(from);
    h->to_len = to->len;
    h->to_bare_len = (uint16_t)jid_bare_len(to);
    h->to_domain_off = to->domain_off;
    h->to_domain_len = to->domain_len;
    h->head_len = (uint32_t)((int)ev->head_len + head_delta) + (uint32_t)dl;
    h->stanza_len = (uint32_t)slen;
    char *o = (char *)(h + 1);
    memcpy(o, from->str, from->len);
    o += from->len;
    memcpy(o, to->str, to->len);
    o += to->len;
    memcpy(o, parts[0].p, name_end);
    memcpy(o + name_end, decls, dl);
    o += name_end + dl;
    memcpy(o, parts[0].p + name_end, parts[0].len - name_end);
    o += parts[0].len - name_end;
    for (unsigned i = 1; i < nparts; i++) {
        memcpy(o, parts[i].p, parts[i].len);
        o += parts[i].len;
    }
    fe_port_commit(&c->fe, shard, held);
    s2s_thread(&c->fe)->received++;
    if (kind >= PROTO_MESSAGE && kind <= PROTO_IQ)
        stats_add(t->stats, (enum stats_id)(STAT_S2S_IN_MESSAGE + kind), 1);
    return 0;
}
