/*
 * iq.c: iq stanzas the server answers itself: those to the domain, those a user sends to
 * its own bare JID (both handled in the user's shard, with its session), and those to
 * another account's bare JID, which the server answers on that account's behalf
 * (RFC 6120 §10.5.3.1). Each goes to the module serving its payload's namespace
 * (module.h); a request in a namespace nobody here serves gets service-unavailable
 * (RFC 6120 §8.3.3.19); results and errors for the server end here.
 *
 * The modules of this file: XEP-0030 disco#info and disco#items (made of what every
 * module says it serves, and to remote servers XEP-0033: starling-s2s accepts their
 * multicast stanzas; s2s.multicast_max, 0: not), XEP-0199 ping, XEP-0092 version (only
 * with router.software_version).
 */
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <stdio.h>
#include <string.h>

#define NS_PING        "urn:xmpp:ping"
#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_ADDRESS     "http://jabber.org/protocol/address"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_VERSION     "jabber:iq:version"

#ifndef STARLING_VERSION
#define STARLING_VERSION "0.1"
#endif

void iq_result(struct shard *s, const struct stanza *st, const char *id, const char *payload,
               size_t payload_len)
{
    struct buf b = {0};
    buf_puts(&b, "<iq type='result'");
    if (id)
        xmlw_attr(&b, "id", id, strlen(id));
    /* A request without `to` was for the account: the answer has no `from` (RFC 6121
     * §2.1.3 shows it so, and clients match it to their request that way). */
    if (st->to_len)
        xmlw_attr(&b, "from", st->to, st->to_len);
    xmlw_attr(&b, "to", st->from, st->from_len);
    if (payload) {
        buf_puts(&b, ">");
        buf_append(&b, payload, payload_len);
        buf_puts(&b, "</iq>");
    } else {
        buf_puts(&b, "/>");
    }
    if (st->h->flags & PROTO_STANZA_REMOTE)
        route_generated(s, st->to, st->to_len, st->to_bare_len, st->from, st->from_len,
                        st->from_bare_len, PROTO_IQ, PROTO_IQ_RESULT, buf_data(&b), buf_used(&b));
    else
        out_deliver(s, &st->h->conn, 1, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* The one payload element of an iq request (RFC 6120 §8.2.3); NULL after answering
 * bad-request when there is not exactly one. */
static struct xml_node *payload(struct shard *s, const struct stanza *st, struct xml_node **iqp)
{
    struct xml_node *iq =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    struct xml_node *q = NULL;
    unsigned elements = 0;
    for (struct xml_node *c = iq ? iq->children : NULL; c; c = c->next)
        if (c->name.p) {
            q = c;
            elements++;
        }
    if (!iq || elements != 1 || !xml_node_attr(iq, "id")) {
        out_error(s, st, "modify", "bad-request");
        return NULL;
    }
    *iqp = iq;
    return q;
}

bool iq_is(const struct xml_node *q, const char *name, const char *ns)
{
    return !strcmp(q->name.p, name) && !strcmp(q->ns.p, ns);
}

void iq_forbidden(struct shard *s, struct user *v, const struct stanza *st,
                  const struct xml_node *iq, const struct xml_node *q)
{
    (void)v, (void)iq, (void)q;
    out_error(s, st, "cancel", "forbidden"); /* someone else's roster or list */
}

static void disco_info_server(struct shard *s, const struct stanza *st, const char *id,
                              const struct xml_node *q)
{
    if (xml_node_attr(q, "node")) {
        out_error(s, st, "cancel", "item-not-found"); /* no nodes here */
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_DISCO_INFO "'>"
                 "<identity category='server' type='im' name='starling'/>");
    mod_disco_server(s, st->h->flags & PROTO_STANZA_REMOTE, &b);
    buf_puts(&b, "</query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void disco_info_account(struct shard *s, const struct stanza *st, const char *id,
                               const struct xml_node *q)
{
    if (xml_node_attr(q, "node")) {
        out_error(s, st, "cancel", "item-not-found");
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_DISCO_INFO "'>"
                 "<identity category='account' type='registered'/>"
                 "<feature var='" NS_DISCO_INFO "'/>");
    mod_disco_account(s, &b);
    buf_puts(&b, "</query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void disco_items_server(struct shard *s, const struct stanza *st, const char *id)
{
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_DISCO_ITEMS "'>");
    mod_disco_items(s, &b);
    buf_puts(&b, "</query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* An account's items: what the modules show st's sender (own: the account's own). */
static void disco_items_account(struct shard *s, struct user *v, const struct stanza *st,
                                const char *id, bool own)
{
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_DISCO_ITEMS "'>");
    if (mod_disco_account_items(s, v, st, own, &b)) {
        buf_puts(&b, "</query>");
        iq_result(s, st, id, buf_data(&b), buf_used(&b));
    }
    buf_free(&b);
}

static void disco_own(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                      const struct xml_node *iq, const struct xml_node *q)
{
    (void)u, (void)ss;
    const char *id = xml_node_attr(iq, "id");
    bool own_account = st->to_len != 0 && memchr(st->to, '@', st->to_len);
    if (st->h->type != PROTO_IQ_GET || strcmp(q->name.p, "query"))
        out_error(s, st, "cancel", "service-unavailable");
    else if (!strcmp(q->ns.p, NS_DISCO_INFO))
        own_account ? disco_info_account(s, st, id, q) : disco_info_server(s, st, id, q);
    else if (own_account)
        disco_items_account(s, u, st, id, true);
    else
        disco_items_server(s, st, id);
}

static void disco_other(struct shard *s, struct user *v, const struct stanza *st,
                        const struct xml_node *iq, const struct xml_node *q)
{
    /* Only a subscriber learns about the account: its presence is theirs to see. Its
     * items are what each module lets the asker see (PEP nodes it may read). */
    struct roster_item *it = roster_find(&v->roster, st->from, st->from_bare_len);
    bool subscriber = it && (it->sub == STORE_SUB_FROM || it->sub == STORE_SUB_BOTH);
    if (st->h->type == PROTO_IQ_GET && subscriber && iq_is(q, "query", NS_DISCO_INFO))
        disco_info_account(s, st, xml_node_attr(iq, "id"), q);
    else if (st->h->type == PROTO_IQ_GET && iq_is(q, "query", NS_DISCO_ITEMS) &&
             !xml_node_attr(q, "node"))
        disco_items_account(s, v, st, xml_node_attr(iq, "id"), false); /* what they may see */
    else
        out_error(s, st, "cancel", "service-unavailable");
}

static void disco_features(const struct shard *s, bool remote, struct buf *b)
{
    buf_puts(b, "<feature var='" NS_DISCO_INFO "'/><feature var='" NS_DISCO_ITEMS "'/>");
    uint32_t mc = s->cfg->s2s.multicast_max;
    if (mc && remote) {
        /* XEP-0033 for servers only (starling-s2s expands a peer's multicast stanzas to
         * our domain), with its limit as ejabberd's mod_multicast writes it (XEP-0128). */
        char lim[16];
        snprintf(lim, sizeof lim, "%u", mc);
        buf_puts(b, "<feature var='" NS_ADDRESS "'/>"
                    "<x xmlns='jabber:x:data' type='result'>"
                    "<field var='FORM_TYPE' type='hidden'><value>" NS_ADDRESS "</value></field>"
                    "<field var='message'><value>");
        buf_puts(b, lim);
        buf_puts(b, "</value></field><field var='presence'><value>");
        buf_puts(b, lim);
        buf_puts(b, "</value></field></x>");
    }
}

static const char *const disco_ns[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NULL};
const struct module mod_disco = {
    .name = "disco",
    .iq_ns = disco_ns,
    .iq_remote = true,
    .iq_own = disco_own,
    .iq_other = disco_other,
    .disco_server = disco_features,
};

static void ping_own(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                     const struct xml_node *iq, const struct xml_node *q)
{
    (void)u, (void)ss;
    if (st->h->type == PROTO_IQ_GET && !strcmp(q->name.p, "ping"))
        iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
    else
        out_error(s, st, "cancel", "service-unavailable");
}

static void ping_other(struct shard *s, struct user *v, const struct stanza *st,
                       const struct xml_node *iq, const struct xml_node *q)
{
    ping_own(s, v, NULL, st, iq, q);
}

static void ping_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='" NS_PING "'/>");
}

static const char *const ping_ns[] = {NS_PING, NULL};
const struct module mod_ping = {
    .name = "ping",
    .iq_ns = ping_ns,
    .iq_remote = true,
    .iq_own = ping_own,
    .iq_other = ping_other,
    .disco_server = ping_features,
};

static void version_own(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st, const struct xml_node *iq,
                        const struct xml_node *q)
{
    (void)u, (void)ss;
    static const char v[] = "<query xmlns='" NS_VERSION "'><name>starling</name>"
                            "<version>" STARLING_VERSION "</version></query>";
    bool own_account = st->to_len != 0 && memchr(st->to, '@', st->to_len);
    if (st->h->type == PROTO_IQ_GET && !own_account && s->cfg->router.software_version &&
        !strcmp(q->name.p, "query"))
        iq_result(s, st, xml_node_attr(iq, "id"), v, sizeof v - 1);
    else
        out_error(s, st, "cancel", "service-unavailable");
}

static void version_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)remote;
    if (s->cfg->router.software_version)
        buf_puts(b, "<feature var='" NS_VERSION "'/>");
}

static const char *const version_ns[] = {NS_VERSION, NULL};
const struct module mod_version = {
    .name = "version",
    .iq_ns = version_ns,
    .iq_remote = true,
    .iq_own = version_own,
    .disco_server = version_features,
};

void iq_to_server(struct shard *s, struct user *u, struct session *ss, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT) {
        mod_iq_response(s, u, st);
        return;
    }
    struct xml_node *iq;
    struct xml_node *q = payload(s, st, &iq);
    if (q) {
        const struct module *m = mod_for_ns(q->ns.p);
        if (m && m->iq_own && (u || m->iq_remote))
            m->iq_own(s, u, ss, st, iq, q);
        else
            out_error(s, st, "cancel", "service-unavailable");
    }
    arena_reset(&s->arena);
}

void iq_to_account(struct shard *s, struct user *v, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT) {
        mod_iq_response(s, v, st);
        return;
    }
    struct xml_node *iq;
    struct xml_node *q = payload(s, st, &iq);
    if (q) {
        const struct module *m = mod_for_ns(q->ns.p);
        if (m && m->iq_other)
            m->iq_other(s, v, st, iq, q);
        else
            out_error(s, st, "cancel", "service-unavailable");
    }
    arena_reset(&s->arena);
}
