/*
 * iq.c: iq stanzas the server answers itself: those to the domain, and those to an
 * account's bare JID, which the server handles on the account's behalf (RFC 6120
 * §10.5.3.1). A request in a namespace nobody here serves gets service-unavailable
 * (RFC 6120 §8.3.3.19); results and errors addressed to the server end here.
 */
#include "router/router.h"
#include "common/log.h"
#include "common/xml_tree.h"
#include "common/xmlw.h"

#include <string.h>

#define NS_PING "urn:xmpp:ping"

/* <iq type='result'/> (payload NULL) or with payload, to the sender of st. */
static void reply(struct shard *s, const struct stanza *st, const char *id, const char *payload)
{
    struct buf b = {0};
    buf_puts(&b, "<iq type='result'");
    xmlw_attr(&b, "id", id, strlen(id));
    if (st->to_len)
        xmlw_attr(&b, "from", st->to, st->to_len);
    else
        xmlw_attr(&b, "from", s->cfg->domain, strlen(s->cfg->domain));
    xmlw_attr(&b, "to", st->from, st->from_len);
    if (payload) {
        buf_puts(&b, ">");
        buf_puts(&b, payload);
        buf_puts(&b, "</iq>");
    } else {
        buf_puts(&b, "/>");
    }
    out_deliver(s, &st->h->conn, 1, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

void iq_to_server(struct shard *s, const struct stanza *st)
{
    if (st->h->type >= PROTO_IQ_RESULT)
        return;
    struct xml_node *iq =
        xml_tree_parse(NULL, st->raw, st->raw_len, &s->arena, s->scratch, sizeof s->scratch);
    if (!iq) {
        out_error(s, st, "modify", "bad-request");
        goto out;
    }
    /* An iq request carries exactly one payload element (RFC 6120 §8.2.3). */
    struct xml_node *q = NULL;
    unsigned elements = 0;
    for (struct xml_node *c = iq->children; c; c = c->next)
        if (c->name.p) {
            q = c;
            elements++;
        }
    const char *id = xml_node_attr(iq, "id");
    if (elements != 1 || !id) {
        out_error(s, st, "modify", "bad-request");
        goto out;
    }
    if (st->h->type == PROTO_IQ_GET && !strcmp(q->name.p, "ping") && !strcmp(q->ns.p, NS_PING))
        reply(s, st, id, NULL); /* XEP-0199 */
    else
        out_error(s, st, "cancel", "service-unavailable");
out:
    arena_reset(&s->arena);
}
