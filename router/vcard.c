/*
 * vcard.c: vCard-temp (XEP-0054): an account sets its vCard (to its bare JID, or with no
 * `to`) and anyone reads it at the account's bare JID, users of other servers too, as
 * servers do; an account without one answers an empty <vCard/> (§3.1). At most
 * vcard.max_bytes (not-acceptable past it). Kept with the PEP rows (pep.h). XEP-0153's
 * avatar hash in presence is the client's business.
 */
#include "router/pep.h"
#include "router/router.h"
#include "common/store/store.h"
#include "common/xmpp/xml_tree.h"

#include <stdlib.h>
#include <string.h>

#define NS_VCARD "vcard-temp"

static const char empty[] = "<vCard xmlns='" NS_VCARD "'/>";

static void vcard_get(struct shard *s, struct user *v, const struct stanza *st,
                      const struct xml_node *iq)
{
    struct pep_user *p = v->mod[MOD_SLOT_PEP];
    if (p->vcard)
        iq_result(s, st, xml_node_attr(iq, "id"), p->vcard, p->vcard_len);
    else
        iq_result(s, st, xml_node_attr(iq, "id"), empty, sizeof empty - 1);
}

static void vcard_own(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                      const struct xml_node *iq, const struct xml_node *q)
{
    (void)ss;
    if (!u || (st->to_len && !memchr(st->to, '@', st->to_len)) || strcmp(q->name.p, "vCard")) {
        out_error(s, st, "cancel", "service-unavailable"); /* the server has none */
        return;
    }
    if (!pep_ready(s, u, st, true))
        return;
    if (st->h->type == PROTO_IQ_GET) {
        vcard_get(s, u, st, iq);
        return;
    }
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    struct buf x = {0};
    char *copy = NULL;
    if (xml_node_write(&x, q, NULL) < 0 || !(copy = malloc(buf_used(&x)))) {
        out_error(s, st, "wait", "resource-constraint");
    } else if (buf_used(&x) > s->cfg->vcard.max_bytes) {
        out_error(s, st, "modify", "not-acceptable");
    } else {
        memcpy(copy, buf_data(&x), buf_used(&x));
        free(p->vcard);
        p->vcard = copy;
        p->vcard_len = (uint32_t)buf_used(&x);
        copy = NULL;
        pep_store(s, u, STORE_PEP_VCARD, "", "", p->vcard, p->vcard_len, 0);
        iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
    }
    free(copy);
    buf_free(&x);
}

static void vcard_other(struct shard *s, struct user *v, const struct stanza *st,
                        const struct xml_node *iq, const struct xml_node *q)
{
    if (st->h->type != PROTO_IQ_GET || strcmp(q->name.p, "vCard")) {
        out_error(s, st, "auth", "forbidden"); /* only the owner sets it */
        return;
    }
    if (pep_ready(s, v, st, false))
        vcard_get(s, v, st, iq);
}

static void vcard_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='" NS_VCARD "'/>");
}

static const char *const vcard_ns[] = {NS_VCARD, NULL};
const struct module mod_vcard = {
    .name = "vcard",
    .iq_ns = vcard_ns,
    .iq_own = vcard_own,
    .iq_other = vcard_other,
    .disco_server = vcard_features,
};
