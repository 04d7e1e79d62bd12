/*
 * private.c: private XML storage (XEP-0049): an account keeps elements, one per
 * namespace, that only it reads back (profanity keeps its bookmarks, storage:bookmarks,
 * this way). Another account's storage is forbidden (module.h: no iq_other). Bounds:
 * private.max_elements per account (resource-constraint), private.max_bytes per element
 * (not-acceptable). Elements live with the PEP rows (pep.h), written through to the
 * store. XEP-0402 §4's bridge to PEP bookmarks is not made: the two are kept apart.
 */
#include "router/pep.h"
#include "router/router.h"
#include "common/store/store.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <stdlib.h>
#include <string.h>

#define NS_PRIVATE "jabber:iq:private"

static struct pep_private *find(struct pep_user *p, const char *ns, struct pep_private ***pp)
{
    for (struct pep_private **e = &p->priv; *e; e = &(*e)->next)
        if (!strcmp((*e)->ns, ns)) {
            if (pp)
                *pp = e;
            return *e;
        }
    return NULL;
}

/* Only elements of a namespace of their own: not the stream's, not this protocol's. */
static bool ns_ok(const char *ns)
{
    return ns[0] && strcmp(ns, "jabber:client") && strcmp(ns, "jabber:server") &&
           strcmp(ns, NS_PRIVATE) && strlen(ns) <= STORE_PEP_NAME_MAX;
}

static void private_get(struct shard *s, struct pep_user *p, const struct stanza *st,
                        const struct xml_node *iq, const struct xml_node *el)
{
    struct pep_private *e = find(p, el->ns.p, NULL);
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_PRIVATE "'>");
    if (e)
        buf_append(&b, e->xml, e->len);
    else
        xml_node_write(&b, el, NULL); /* what was asked, empty (XEP-0049 §2.2) */
    buf_puts(&b, "</query>");
    iq_result(s, st, xml_node_attr(iq, "id"), buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void private_set(struct shard *s, struct user *u, struct pep_user *p,
                        const struct stanza *st, const struct xml_node *iq,
                        const struct xml_node *el)
{
    struct buf x = {0};
    struct pep_private **pp, *e = find(p, el->ns.p, &pp);
    if (xml_node_write(&x, el, NULL) < 0) {
        out_error(s, st, "wait", "resource-constraint");
        goto out;
    }
    if (buf_used(&x) > s->cfg->private_xml.max_bytes) {
        out_error(s, st, "modify", "not-acceptable");
        goto out;
    }
    if (!e && p->npriv >= s->cfg->private_xml.max_elements) {
        out_error(s, st, "cancel", "resource-constraint");
        goto out;
    }
    char *xml = malloc(buf_used(&x));
    if (!e && (e = calloc(1, sizeof *e)) && !(e->ns = strdup(el->ns.p))) {
        free(e);
        e = NULL;
    }
    if (!xml || !e) {
        free(xml);
        out_error(s, st, "wait", "resource-constraint");
        goto out;
    }
    if (!e->xml) {
        e->next = p->priv;
        p->priv = e;
        p->npriv++;
    }
    memcpy(xml, buf_data(&x), buf_used(&x));
    free(e->xml);
    e->xml = xml;
    e->len = (uint32_t)buf_used(&x);
    pep_store(s, u, STORE_PEP_PRIVATE, "", e->ns, e->xml, e->len, 0);
    iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
out:
    buf_free(&x);
}

static void private_own(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st, const struct xml_node *iq,
                        const struct xml_node *q)
{
    (void)ss;
    struct xml_node *el = NULL;
    unsigned n = 0;
    for (struct xml_node *c = q->children; c; c = c->next)
        if (c->name.p) {
            el = c;
            n++;
        }
    if (!u || (st->to_len && !memchr(st->to, '@', st->to_len)) || strcmp(q->name.p, "query")) {
        out_error(s, st, "cancel", "service-unavailable");
        return;
    }
    if (n != 1 || !ns_ok(el->ns.p)) {
        out_error(s, st, "modify", n == 1 ? "not-acceptable" : "bad-request");
        return;
    }
    if (!pep_ready(s, u, st, true))
        return;
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    if (st->h->type == PROTO_IQ_GET)
        private_get(s, p, st, iq, el);
    else
        private_set(s, u, p, st, iq, el);
}

static void private_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s;
    if (!remote)
        buf_puts(b, "<feature var='" NS_PRIVATE "'/>");
}

static const char *const private_ns[] = {NS_PRIVATE, NULL};
const struct module mod_private = {
    .name = "private",
    .iq_ns = private_ns,
    .iq_own = private_own,
    .iq_other = iq_forbidden, /* XEP-0049 §3: another user's data */
    .disco_server = private_features,
};
