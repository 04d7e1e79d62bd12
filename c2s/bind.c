/*
 * bind.c: resource binding (RFC 6120 §7) and the legacy session iq (RFC 3921 §3,
 * advertised as optional per draft-cridland-xmpp-session). The resource is the
 * client's, normalised with resourceprep, or one we generate; whether it is free is
 * decided by the router shard that owns the account (conflict policy: config
 * c2s.resource_conflict), which answers with PROTO_BIND_RESULT.
 */
#include "c2s/c2s.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define NS_BIND    "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

void bind_features(struct conn *c, struct buf *b)
{
    (void)c;
    buf_puts(b, "<bind xmlns='" NS_BIND "'/><session xmlns='" NS_SESSION "'><optional/></session>"
                /* RFC 6121 §2.6.1 roster versioning, §3.4.1 subscription pre-approval */
                "<ver xmlns='urn:xmpp:features:rosterver'/>"
                "<sub xmlns='urn:xmpp:features:pre-approval'/>");
}

static void iq_reply(struct conn *c, const char *id, size_t id_len, const char *payload)
{
    struct buf b = {0};
    buf_puts(&b, "<iq type='result'");
    xmlw_attr(&b, "id", id, id_len);
    if (payload) {
        buf_puts(&b, ">");
        buf_puts(&b, payload);
        buf_puts(&b, "</iq>");
    } else {
        buf_puts(&b, "/>");
    }
    conn_stanza(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void iq_error(struct conn *c, const char *id, size_t id_len, const char *type,
                     const char *condition)
{
    struct buf b = {0};
    buf_puts(&b, "<iq type='error'");
    xmlw_attr(&b, "id", id, id_len);
    buf_puts(&b, "><error type='");
    buf_puts(&b, type);
    buf_puts(&b, "'><");
    buf_puts(&b, condition);
    buf_puts(&b, " xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    conn_stanza(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static bool is(struct xml_str s, const char *lit)
{
    return s.p && s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* Is this iq addressed to the server (no `to`, or our domain however written: domains
 * compare normalised, as route.c compares them)? */
static bool to_server(const struct conn *c, const struct xml_event *ev)
{
    struct xml_str to = ev->attr[XML_ATTR_TO];
    char dom[JID_BUF];
    return !to.p || is(to, c->fe.t->cfg->domain) ||
           (jid_prep_domain(to.p, to.len, dom, sizeof dom) >= 0 &&
            strcmp(dom, c->fe.t->cfg->domain) == 0);
}

static void request_bind(struct conn *c, const struct xml_node *bind, struct xml_str id)
{
    const struct config *cfg = c->fe.t->cfg;
    char res[JID_BUF];
    int rlen = 0;

    const struct xml_node *r = xml_node_child(bind, "resource", NS_BIND);
    const char *want = r ? xml_node_text(r, &c->fe.t->arena) : NULL;
    if (want && *want) {
        rlen = jid_prep_resource(want, strlen(want), res, sizeof res);
        if (rlen < 0) {
            iq_error(c, id.p, id.len, "modify", "bad-request");
            return;
        }
    } else {
        uint8_t rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            iq_error(c, id.p, id.len, "wait", "internal-server-error");
            return;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            rlen += snprintf(res + rlen, sizeof res - (size_t)rlen, "%02x", rnd[i]);
    }
    size_t ulen = strlen(c->user), dlen = strlen(cfg->domain);
    size_t bare = ulen + 1 + dlen, full = bare + 1 + (size_t)rlen;
    char *jid = malloc(full + 1);
    char *iq_id = malloc(id.len + 1);
    if (!jid || !iq_id) {
        free(jid);
        free(iq_id);
        iq_error(c, id.p, id.len, "wait", "resource-constraint");
        return;
    }
    snprintf(jid, full + 1, "%s@%s/%.*s", c->user, cfg->domain, rlen, res);
    memcpy(iq_id, id.p, id.len);
    iq_id[id.len] = '\0';
    free(c->jid);
    free(c->iq_id);
    c->jid = jid;
    c->jid_len = (uint16_t)full;
    c->bare_len = (uint16_t)bare;
    c->key = jid_hash(jid, bare);
    c->iq_id = iq_id;
    if (route_bind(c, jid, full, bare, false) < 0) {
        iq_error(c, id.p, id.len, "wait", "internal-server-error");
        return;
    }
    c->fe.state = CONN_BINDING;
    c->fe.flags |= FE_F_WAIT;
}

bool bind_iq(struct conn *c, const struct xml_event *ev)
{
    struct xml_str id = ev->attr[XML_ATTR_ID];
    bool bound = c->fe.flags & CONN_F_BOUND;

    if (!id.p || !is(ev->attr[XML_ATTR_TYPE], "set") || !to_server(c, ev))
        return false;
    /* Once bound, only a session iq is ours; spare every other iq the tree. */
    if (bound && !memmem(ev->raw.p, ev->raw.len, NS_SESSION, sizeof NS_SESSION - 1))
        return false;
    struct xml_node *iq = xml_tree_parse(&c->fe.xp, ev->raw.p, ev->raw.len, &c->fe.t->arena,
                                         c->fe.t->scratch, sizeof c->fe.t->scratch);
    bool handled = false;
    if (!iq)
        goto out;
    if (xml_node_child(iq, "session", NS_SESSION)) {
        iq_reply(c, id.p, id.len, NULL);
        handled = true;
    } else if (!bound) {
        struct xml_node *b = xml_node_child(iq, "bind", NS_BIND);
        if (b) {
            request_bind(c, b, id);
            handled = true;
        }
    }
out:
    arena_reset(&c->fe.t->arena);
    return handled;
}

void bind_result(struct conn *c, int result, const char *jid, size_t jid_len)
{
    (void)jid;
    (void)jid_len;
    if (c->fe.state != CONN_BINDING)
        return;
    c->fe.flags &= (uint16_t)~FE_F_WAIT;
    c->fe.state = FE_OPEN;
    const char *id = c->iq_id ? c->iq_id : "";
    if (result == 0) {
        struct buf b = {0};
        buf_puts(&b, "<bind xmlns='" NS_BIND "'><jid>");
        xmlw_text(&b, c->jid, c->jid_len);
        buf_puts(&b, "</jid></bind>");
        buf_append(&b, "", 1);
        iq_reply(c, id, strlen(id), buf_data(&b));
        buf_free(&b);
        c->fe.flags |= CONN_F_BOUND;
        c->fe.deadline = 0;
        c->fe.last_rx = c->fe.t->now;
        LOG_DEBUG("conn %u: bound %.*s", c->fe.slot, (int)c->jid_len, c->jid);
    } else {
        /* -EEXIST: the resource is taken and the policy refuses (RFC 6120 §7.7.2.2);
         * -EDQUOT: the account has as many sessions as it may (§7.6.2.1). */
        if (result == -EEXIST)
            iq_error(c, id, strlen(id), "cancel", "conflict");
        else if (result == -EDQUOT)
            iq_error(c, id, strlen(id), "wait", "resource-constraint");
        else
            iq_error(c, id, strlen(id), "cancel", "internal-server-error");
        free(c->jid);
        c->jid = NULL;
        c->jid_len = c->bare_len = 0;
    }
    free(c->iq_id);
    c->iq_id = NULL;
    fe_input(&c->fe, NULL, 0); /* what the client sent meanwhile */
}
