/*
 * pep.c: the personal eventing service (XEP-0163) of each account, a pubsub service
 * (XEP-0060) at its bare JID (pep.h says where the rest is).
 *
 * The owner may: publish (the node created on first publish, XEP-0163 §3; an item
 * without id gets one), with publish-options (XEP-0060 §7.1.5: a new node takes them as
 * its configuration, an existing one must match them, else conflict with
 * <precondition-not-met/>); create a node; retract items (notify='true' tells the
 * subscribers); get items (all, by id, the newest max_items); get and submit a node's
 * configuration form; delete a node. Others may only get items, when the node's access
 * model lets them: open (anyone, users of other servers too), presence (a contact with
 * a presence subscription from the owner: 'from' or 'both'), roster (anyone in the
 * owner's roster; groups are not looked at), whitelist (the owner alone). Subscriptions
 * are implicit (presence and +notify, pep_caps.c): explicit subscribe is not supported.
 *
 * Configuration: pubsub#access_model (default presence), pubsub#persist_items (default
 * true: items go to the store; false: memory only), pubsub#max_items (default 1; 'max'
 * is pep.max_items); other fields are accepted and ignored. Bounds: pep.max_nodes,
 * pep.max_items, pep.max_item_bytes, pep.max_bytes (pep.h, config_table.c).
 */
#include "router/pep.h"
#include "router/router.h"
#include "common/store/store.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_DATA         "jabber:x:data"
#define NODE_CONFIG     "http://jabber.org/protocol/pubsub#node_config"
#define PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"

static const char *const access_names[] = {"open", "presence", "roster", "whitelist"};

/* ---- nodes and items --------------------------------------------------------------------- */

struct pep_node *pep_node_find(struct pep_user *p, const char *name)
{
    for (struct pep_node *n = p->nodes; n; n = n->next)
        if (!strcmp(n->name, name))
            return n;
    return NULL;
}

struct pep_node *pep_node_new(struct pep_user *p, const char *name)
{
    struct pep_node *n = calloc(1, sizeof *n);
    if (!n || !(n->name = strdup(name))) {
        free(n);
        return NULL;
    }
    n->access = PEP_PRESENCE;
    n->persist = true;
    n->max_items = 1;
    n->next = p->nodes;
    p->nodes = n;
    p->nnodes++;
    return n;
}

static void item_free(struct pep_user *p, struct pep_item *it)
{
    p->bytes -= it->len;
    free(it->id);
    free(it->xml);
    free(it);
}

static struct pep_item *item_find(const struct pep_node *n, const char *id, struct pep_item **prev)
{
    struct pep_item *pr = NULL;
    for (struct pep_item *it = n->oldest; it; pr = it, it = it->next)
        if (!strcmp(it->id, id)) {
            if (prev)
                *prev = pr;
            return it;
        }
    return NULL;
}

static void item_unlink(struct pep_node *n, struct pep_item *it, struct pep_item *prev)
{
    if (prev)
        prev->next = it->next;
    else
        n->oldest = it->next;
    if (n->newest == it)
        n->newest = prev;
    n->nitems--;
}

/* Drops the oldest items past the node's max_items; store: delete them there too. */
static void node_trim(struct shard *s, struct user *u, struct pep_node *n, bool store)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    while (n->nitems > n->max_items) {
        struct pep_item *it = n->oldest;
        item_unlink(n, it, NULL);
        if (store && n->persist)
            pep_store(s, u, STORE_PEP_ITEM, n->name, it->id, NULL, 0, 0);
        item_free(p, it);
    }
}

void pep_node_put(struct pep_user *p, struct pep_node *n, char *id, char *xml, uint32_t len)
{
    struct pep_item *prev, *it = item_find(n, id, &prev);
    if (it) {
        item_unlink(n, it, prev);
        item_free(p, it);
    }
    if (!(it = calloc(1, sizeof *it))) {
        free(id);
        free(xml);
        return;
    }
    it->id = id;
    it->xml = xml;
    it->len = len;
    if (n->newest)
        n->newest->next = it;
    else
        n->oldest = it;
    n->newest = it;
    n->nitems++;
    p->bytes += len;
    while (n->nitems > n->max_items) { /* a load past a max_items lowered since */
        struct pep_item *old = n->oldest;
        item_unlink(n, old, NULL);
        item_free(p, old);
    }
}

static void node_remove(struct pep_user *p, struct pep_node *n)
{
    struct pep_node **pp = &p->nodes;
    while (*pp != n)
        pp = &(*pp)->next;
    *pp = n->next;
    while (n->oldest) {
        struct pep_item *it = n->oldest;
        n->oldest = it->next;
        item_free(p, it);
    }
    free(n->name);
    free(n);
    p->nnodes--;
}

/* ---- configuration ----------------------------------------------------------------------- */

/* A node's configuration as its store row: "access=presence persist=1 max=1". */
static void node_config_row(const struct pep_node *n, char *out, size_t cap)
{
    snprintf(out, cap, "access=%s persist=%d max=%u", access_names[n->access], n->persist,
             n->max_items);
}

void pep_node_config_parse(struct pep_node *n, const char *s, size_t len, uint32_t max_items)
{
    char buf[128], acc[16] = "";
    int persist = 1;
    unsigned max = 1;
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf ? len : sizeof buf - 1), s);
    if (sscanf(buf, "access=%15s persist=%d max=%u", acc, &persist, &max) != 3)
        return;
    for (unsigned i = 0; i < 4; i++)
        if (!strcmp(acc, access_names[i]))
            n->access = (uint8_t)i;
    n->persist = persist != 0;
    n->max_items = max < 1 ? 1 : max > max_items ? max_items : max;
}

/* What a form asks of a node: each field given or not. */
struct node_conf {
    int access;  /* enum pep_access, -1: not given */
    int persist; /* 0 or 1, -1: not given */
    long max;    /* 1..pep.max_items, -1: not given */
};

static int parse_bool(const char *v)
{
    if (!strcmp(v, "1") || !strcmp(v, "true"))
        return 1;
    if (!strcmp(v, "0") || !strcmp(v, "false"))
        return 0;
    return -1;
}

/* Reads a data form (XEP-0004) of FORM_TYPE form_type: 0, or -1 when a field we know
 * has a value we cannot take (unknown fields are ignored). */
static int form_read(struct shard *s, const struct xml_node *x, const char *form_type,
                     struct node_conf *c)
{
    *c = (struct node_conf){-1, -1, -1};
    for (struct xml_node *f = xml_node_child(x, "field", NS_DATA); f;
         f = xml_node_next(f, "field", NS_DATA)) {
        const char *var = xml_node_attr(f, "var");
        struct xml_node *vn = xml_node_child(f, "value", NS_DATA);
        const char *v = vn ? xml_node_text(vn, &s->arena) : "";
        if (!var || !v)
            continue;
        if (!strcmp(var, "FORM_TYPE")) {
            if (strcmp(v, form_type))
                return -1;
        } else if (!strcmp(var, "pubsub#access_model")) {
            c->access = -2;
            for (int i = 0; i < 4; i++)
                if (!strcmp(v, access_names[i]))
                    c->access = i;
            if (c->access < 0)
                return -1;
        } else if (!strcmp(var, "pubsub#persist_items")) {
            if ((c->persist = parse_bool(v)) < 0)
                return -1;
        } else if (!strcmp(var, "pubsub#max_items")) {
            char *end;
            long m = !strcmp(v, "max") ? (long)s->cfg->pep.max_items : strtol(v, &end, 10);
            if (strcmp(v, "max") && (*end || end == v))
                return -1;
            if (m < 1 || m > (long)s->cfg->pep.max_items)
                return -1;
            c->max = m;
        }
    }
    return 0;
}

static bool conf_matches(const struct pep_node *n, const struct node_conf *c)
{
    return (c->access < 0 || c->access == n->access) &&
           (c->persist < 0 || c->persist == n->persist) &&
           (c->max < 0 || (uint32_t)c->max == n->max_items);
}

/* Applies c to n, in memory and in the store. */
static void conf_apply(struct shard *s, struct user *u, struct pep_node *n,
                       const struct node_conf *c)
{
    bool was_persist = n->persist;
    if (c->access >= 0)
        n->access = (uint8_t)c->access;
    if (c->persist >= 0)
        n->persist = c->persist;
    if (c->max > 0)
        n->max_items = (uint32_t)c->max;
    char row[128];
    node_config_row(n, row, sizeof row);
    pep_store(s, u, STORE_PEP_CONFIG, n->name, "", row, strlen(row), 0);
    if (was_persist != n->persist) {
        for (struct pep_item *it = n->oldest; it; it = it->next)
            pep_store(s, u, STORE_PEP_ITEM, n->name, it->id, n->persist ? it->xml : NULL, it->len,
                      0);
    }
    node_trim(s, u, n, true);
}

static void config_form(struct buf *b, const struct pep_node *n)
{
    char num[16];
    buf_puts(b, "<x xmlns='" NS_DATA "' type='form'>"
                "<field var='FORM_TYPE' type='hidden'><value>" NODE_CONFIG "</value></field>"
                "<field var='pubsub#access_model' type='list-single'>");
    for (unsigned i = 0; i < 4; i++) {
        buf_puts(b, "<option><value>");
        buf_puts(b, access_names[i]);
        buf_puts(b, "</value></option>");
    }
    buf_puts(b, "<value>");
    buf_puts(b, access_names[n->access]);
    buf_puts(b, "</value></field><field var='pubsub#persist_items' type='boolean'><value>");
    buf_puts(b, n->persist ? "1" : "0");
    buf_puts(b, "</value></field><field var='pubsub#max_items' type='text-single'><value>");
    snprintf(num, sizeof num, "%u", n->max_items);
    buf_puts(b, num);
    buf_puts(b, "</value></field></x>");
}

/* ---- access ------------------------------------------------------------------------------ */

bool pep_allowed(struct user *u, const struct pep_node *n, const char *jid, size_t bare_len)
{
    if (bare_len == u->bare_len && !memcmp(jid, u->bare, bare_len))
        return true;
    if (n->access == PEP_OPEN)
        return true;
    struct roster_item *it = roster_find(&u->roster, jid, bare_len);
    switch (n->access) {
    case PEP_PRESENCE:
        return it && (it->sub == STORE_SUB_FROM || it->sub == STORE_SUB_BOTH);
    case PEP_ROSTER:
        return it && !it->hidden;
    default:
        return false;
    }
}

/* The error for a reader the access model keeps out (XEP-0060 §6.5.9.2-4). */
static void refuse(struct shard *s, const struct stanza *st, const struct pep_node *n)
{
    if (n->access == PEP_PRESENCE)
        out_error_extra(s, st, "auth", "not-authorized",
                        "<presence-subscription-required xmlns='" NS_PUBSUB_ERRORS "'/>");
    else if (n->access == PEP_ROSTER)
        out_error_extra(s, st, "auth", "not-authorized",
                        "<not-in-roster-group xmlns='" NS_PUBSUB_ERRORS "'/>");
    else
        out_error_extra(s, st, "cancel", "not-allowed",
                        "<closed-node xmlns='" NS_PUBSUB_ERRORS "'/>");
}

/* ---- requests ---------------------------------------------------------------------------- */

static void err_pubsub(struct shard *s, const struct stanza *st, const char *type, const char *cond,
                       const char *pubsub_cond)
{
    char extra[128];
    snprintf(extra, sizeof extra, "<%s xmlns='" NS_PUBSUB_ERRORS "'/>", pubsub_cond);
    out_error_extra(s, st, type, cond, extra);
}

static void result_buf(struct shard *s, const struct stanza *st, const struct xml_node *iq,
                       struct buf *b)
{
    iq_result(s, st, xml_node_attr(iq, "id"), buf_used(b) ? buf_data(b) : NULL, buf_used(b));
    buf_free(b);
}

/* The node req names; NULL after answering when it names none or one that is not. */
static struct pep_node *node_of(struct shard *s, struct pep_user *p, const struct stanza *st,
                                const struct xml_node *req)
{
    const char *name = xml_node_attr(req, "node");
    struct pep_node *n = name && name[0] ? pep_node_find(p, name) : NULL;
    if (!name || !name[0])
        err_pubsub(s, st, "modify", "bad-request", "nodeid-required");
    else if (!n)
        out_error(s, st, "cancel", "item-not-found");
    return n;
}

void pep_item_xml(struct buf *b, const struct pep_item *it)
{
    buf_puts(b, "<item");
    xmlw_attr(b, "id", it->id, strlen(it->id));
    buf_puts(b, ">");
    buf_append(b, it->xml, it->len);
    buf_puts(b, "</item>");
}

static void items_get(struct shard *s, struct user *u, const struct stanza *st,
                      const struct xml_node *iq, const struct xml_node *req)
{
    struct pep_node *n = node_of(s, u->mod[MOD_SLOT_PEP], st, req);
    if (!n)
        return;
    if (!pep_allowed(u, n, st->from, st->from_bare_len)) {
        refuse(s, st, n);
        return;
    }
    const char *mi = xml_node_attr(req, "max_items");
    unsigned long max = mi ? strtoul(mi, NULL, 10) : n->nitems;
    struct buf b = {0};
    buf_puts(&b, "<pubsub xmlns='" NS_PUBSUB "'><items");
    xmlw_attr(&b, "node", n->name, strlen(n->name));
    buf_puts(&b, ">");
    bool by_id = xml_node_child(req, "item", NS_PUBSUB) != NULL;
    unsigned long skip = !by_id && max < n->nitems ? n->nitems - max : 0;
    for (struct pep_item *it = n->oldest; it; it = it->next) {
        if (skip) {
            skip--;
            continue;
        }
        if (by_id) {
            bool asked = false;
            for (struct xml_node *c = xml_node_child(req, "item", NS_PUBSUB); c && !asked;
                 c = xml_node_next(c, "item", NS_PUBSUB)) {
                const char *id = xml_node_attr(c, "id");
                asked = id && !strcmp(id, it->id);
            }
            if (!asked)
                continue;
        }
        pep_item_xml(&b, it);
    }
    buf_puts(&b, "</items></pubsub>");
    result_buf(s, st, iq, &b);
}

static void publish(struct shard *s, struct user *u, const struct stanza *st,
                    const struct xml_node *iq, const struct xml_node *ps,
                    const struct xml_node *req)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    const struct config *cfg = s->cfg;
    const char *name = xml_node_attr(req, "node");
    if (!name || !name[0] || strlen(name) > STORE_PEP_NAME_MAX) {
        err_pubsub(s, st, "modify", "bad-request", "nodeid-required");
        return;
    }
    struct xml_node *item = xml_node_child(req, "item", NS_PUBSUB);
    struct xml_node *payload = NULL;
    unsigned elements = 0;
    for (struct xml_node *c = item ? item->children : NULL; c; c = c->next)
        if (c->name.p) {
            payload = c;
            elements++;
        }
    if (!item || xml_node_next(item, "item", NS_PUBSUB)) {
        err_pubsub(s, st, "modify", "bad-request", "item-required");
        return;
    }
    if (elements != 1) {
        err_pubsub(s, st, "modify", "bad-request",
                   elements ? "invalid-payload" : "payload-required");
        return;
    }
    struct node_conf c = {-1, -1, -1};
    struct xml_node *po = xml_node_child(ps, "publish-options", NS_PUBSUB);
    struct xml_node *form = po ? xml_node_child(po, "x", NS_DATA) : NULL;
    if (form && form_read(s, form, PUBLISH_OPTIONS, &c) < 0) {
        err_pubsub(s, st, "cancel", "conflict", "precondition-not-met");
        return;
    }
    struct pep_node *n = pep_node_find(p, name);
    if (n && !conf_matches(n, &c)) {
        err_pubsub(s, st, "cancel", "conflict", "precondition-not-met");
        return;
    }
    struct buf x = {0};
    if (xml_node_write(&x, payload, NULL) < 0) {
        buf_free(&x);
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    if (buf_used(&x) > cfg->pep.max_item_bytes) {
        buf_free(&x);
        err_pubsub(s, st, "modify", "not-acceptable", "payload-too-big");
        return;
    }
    const char *given = xml_node_attr(item, "id");
    char idbuf[40];
    if (!given || !given[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(idbuf, sizeof idbuf, "%llx%05llx", (unsigned long long)ts.tv_sec,
                 (unsigned long long)(ts.tv_nsec / 1000) ^ (s->push_seq++ & 0xfffff));
        given = idbuf;
    }
    struct pep_item *old = n ? item_find(n, given, NULL) : NULL;
    uint64_t bytes = p->bytes - (old ? old->len : 0) + buf_used(&x);
    if (!n && p->nnodes >= cfg->pep.max_nodes) {
        buf_free(&x);
        err_pubsub(s, st, "cancel", "resource-constraint", "max-nodes-exceeded");
        return;
    }
    if (bytes > cfg->pep.max_bytes || strlen(given) > STORE_PEP_NAME_MAX) {
        buf_free(&x);
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    char *id = strdup(given), *xml = malloc(buf_used(&x) + 1);
    if (!n && id && xml && (n = pep_node_new(p, name)))
        conf_apply(s, u, n, &c);
    if (!n || !id || !xml) {
        free(id);
        free(xml);
        buf_free(&x);
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    memcpy(xml, buf_data(&x), buf_used(&x));
    xml[buf_used(&x)] = '\0';
    uint32_t len = (uint32_t)buf_used(&x);
    buf_free(&x);
    pep_node_put(p, n, id, xml, len);
    if (n->persist)
        pep_store(s, u, STORE_PEP_ITEM, n->name, id, xml, len, n->max_items);

    struct buf b = {0};
    buf_puts(&b, "<pubsub xmlns='" NS_PUBSUB "'><publish");
    xmlw_attr(&b, "node", n->name, strlen(n->name));
    buf_puts(&b, "><item");
    xmlw_attr(&b, "id", id, strlen(id));
    buf_puts(&b, "/></publish></pubsub>");
    result_buf(s, st, iq, &b);

    struct buf ev = {0};
    pep_item_xml(&ev, n->newest);
    pep_notify(s, u, n, buf_data(&ev), buf_used(&ev));
    buf_free(&ev);
}

static void retract(struct shard *s, struct user *u, const struct stanza *st,
                    const struct xml_node *iq, const struct xml_node *req)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    const char *name = xml_node_attr(req, "node");
    struct xml_node *item = xml_node_child(req, "item", NS_PUBSUB);
    const char *id = item ? xml_node_attr(item, "id") : NULL;
    if (!name || !name[0]) {
        err_pubsub(s, st, "modify", "bad-request", "nodeid-required");
        return;
    }
    if (!id) {
        err_pubsub(s, st, "modify", "bad-request", "item-required");
        return;
    }
    struct pep_node *n = pep_node_find(p, name);
    struct pep_item *prev, *it = n ? item_find(n, id, &prev) : NULL;
    if (!it) {
        out_error(s, st, "cancel", "item-not-found");
        return;
    }
    item_unlink(n, it, prev);
    if (n->persist)
        pep_store(s, u, STORE_PEP_ITEM, n->name, id, NULL, 0, 0);
    iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
    const char *notify = xml_node_attr(req, "notify");
    if (notify && parse_bool(notify) == 1) {
        struct buf ev = {0};
        buf_puts(&ev, "<retract");
        xmlw_attr(&ev, "id", it->id, strlen(it->id));
        buf_puts(&ev, "/>");
        pep_notify(s, u, n, buf_data(&ev), buf_used(&ev));
        buf_free(&ev);
    }
    item_free(p, it);
}

static void create(struct shard *s, struct user *u, const struct stanza *st,
                   const struct xml_node *iq, const struct xml_node *ps, const struct xml_node *req)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    const char *name = xml_node_attr(req, "node");
    if (!name || !name[0] || strlen(name) > STORE_PEP_NAME_MAX) {
        err_pubsub(s, st, "modify", "not-acceptable", "nodeid-required"); /* instant nodes */
        return;
    }
    if (pep_node_find(p, name)) {
        out_error(s, st, "cancel", "conflict");
        return;
    }
    struct node_conf c = {-1, -1, -1};
    struct xml_node *conf = xml_node_child(ps, "configure", NS_PUBSUB);
    struct xml_node *form = conf ? xml_node_child(conf, "x", NS_DATA) : NULL;
    if (form && form_read(s, form, NODE_CONFIG, &c) < 0) {
        out_error(s, st, "modify", "not-acceptable");
        return;
    }
    if (p->nnodes >= s->cfg->pep.max_nodes) {
        err_pubsub(s, st, "cancel", "resource-constraint", "max-nodes-exceeded");
        return;
    }
    struct pep_node *n = pep_node_new(p, name);
    if (!n) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    conf_apply(s, u, n, &c);
    iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
}

static void owner(struct shard *s, struct user *u, const struct stanza *st,
                  const struct xml_node *iq, const struct xml_node *q)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    struct xml_node *req = NULL;
    for (struct xml_node *c = q->children; c && !req; c = c->next)
        if (c->name.p)
            req = c;
    bool get = st->h->type == PROTO_IQ_GET;
    if (!req || (strcmp(req->name.p, "configure") && strcmp(req->name.p, "delete"))) {
        out_error_extra(s, st, "cancel", "feature-not-implemented",
                        "<unsupported xmlns='" NS_PUBSUB_ERRORS "' feature='config-node'/>");
        return;
    }
    struct pep_node *n = node_of(s, p, st, req);
    if (!n)
        return;
    if (!strcmp(req->name.p, "delete")) {
        if (get) {
            out_error(s, st, "modify", "bad-request");
            return;
        }
        pep_store(s, u, STORE_PEP_CONFIG, n->name, NULL, NULL, 0, 0);
        node_remove(p, n);
        iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
        return;
    }
    if (get) {
        struct buf b = {0};
        buf_puts(&b, "<pubsub xmlns='" NS_PUBSUB_OWNER "'><configure");
        xmlw_attr(&b, "node", n->name, strlen(n->name));
        buf_puts(&b, ">");
        config_form(&b, n);
        buf_puts(&b, "</configure></pubsub>");
        result_buf(s, st, iq, &b);
        return;
    }
    struct xml_node *form = xml_node_child(req, "x", NS_DATA);
    const char *type = form ? xml_node_attr(form, "type") : NULL;
    struct node_conf c;
    if (!form || !type || (strcmp(type, "submit") && strcmp(type, "cancel"))) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    if (!strcmp(type, "submit")) {
        if (form_read(s, form, NODE_CONFIG, &c) < 0) {
            out_error(s, st, "modify", "not-acceptable");
            return;
        }
        conf_apply(s, u, n, &c);
    }
    iq_result(s, st, xml_node_attr(iq, "id"), NULL, 0);
}

/* The request element of a <pubsub/>: its child but <publish-options/> and the
 * <configure/> that may come with a create. */
static struct xml_node *pubsub_action(const struct xml_node *q)
{
    for (struct xml_node *c = q->children; c; c = c->next)
        if (c->name.p && strcmp(c->name.p, "publish-options") && strcmp(c->name.p, "configure"))
            return c;
    return NULL;
}

static void pep_own(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                    const struct xml_node *iq, const struct xml_node *q)
{
    (void)ss;
    if (!u || (st->to_len && !memchr(st->to, '@', st->to_len))) {
        out_error(s, st, "cancel", "service-unavailable"); /* no pubsub at the domain */
        return;
    }
    if (!pep_ready(s, u, st, true))
        return;
    if (!strcmp(q->ns.p, NS_PUBSUB_OWNER)) {
        owner(s, u, st, iq, q);
        return;
    }
    struct xml_node *req = pubsub_action(q);
    bool get = st->h->type == PROTO_IQ_GET;
    const char *what = req ? req->name.p : "";
    if (strcmp(q->name.p, "pubsub") || !req)
        out_error(s, st, "modify", "bad-request");
    else if (get && !strcmp(what, "items"))
        items_get(s, u, st, iq, req);
    else if (!get && !strcmp(what, "publish"))
        publish(s, u, st, iq, q, req);
    else if (!get && !strcmp(what, "retract"))
        retract(s, u, st, iq, req);
    else if (!get && !strcmp(what, "create"))
        create(s, u, st, iq, q, req);
    else {
        char extra[160];
        snprintf(extra, sizeof extra, "<unsupported xmlns='" NS_PUBSUB_ERRORS "' feature='%s'/>",
                 !strcmp(what, "subscribe") || !strcmp(what, "unsubscribe") ? "subscribe"
                 : !strcmp(what, "subscriptions") ? "retrieve-subscriptions"
                 : !strcmp(what, "affiliations")  ? "retrieve-affiliations"
                                                  : "publish");
        out_error_extra(s, st, "cancel", "feature-not-implemented", extra);
    }
}

static void pep_other(struct shard *s, struct user *v, const struct stanza *st,
                      const struct xml_node *iq, const struct xml_node *q)
{
    struct xml_node *req = pubsub_action(q);
    bool items = st->h->type == PROTO_IQ_GET && !strcmp(q->ns.p, NS_PUBSUB) && req &&
                 !strcmp(req->name.p, "items");
    if (!items) {
        /* Only the owner publishes, configures, deletes (XEP-0060 §7.1.3.1). */
        out_error(s, st, "auth", "forbidden");
        return;
    }
    if (pep_ready(s, v, st, false))
        items_get(s, v, st, iq, req);
}

/* ---- disco ------------------------------------------------------------------------------- */

static void pep_features(const struct shard *s, struct buf *b)
{
    (void)s;
    static const char *const f[] = {
        "access-open",      "access-presence",
        "access-roster",    "access-whitelist",
        "auto-create",      "create-nodes",
        "config-node",      "delete-items",
        "delete-nodes",     "filtered-notifications",
        "item-ids",         "last-published",
        "persistent-items", "publish",
        "publish-options",  "retract-items",
        "retrieve-items",
    };
    buf_puts(b, "<identity category='pubsub' type='pep'/>");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        buf_puts(b, "<feature var='" NS_PUBSUB "#");
        buf_puts(b, f[i]);
        buf_puts(b, "'/>");
    }
}

static bool pep_account_items(struct shard *s, struct user *v, const struct stanza *st, bool own,
                              struct buf *b)
{
    struct pep_user *p = pep_of(v);
    if (p && p->state != PEP_READY && !pep_ready(s, v, st, own))
        return false;
    for (struct pep_node *n = p ? p->nodes : NULL; n; n = n->next) {
        if (!pep_allowed(v, n, st->from, st->from_bare_len))
            continue;
        buf_puts(b, "<item");
        xmlw_attr(b, "jid", v->bare, v->bare_len);
        xmlw_attr(b, "node", n->name, strlen(n->name));
        buf_puts(b, "/>");
    }
    return true;
}

static void pep_free_hook(struct shard *s, struct user *u)
{
    pep_user_free(s, u);
}

static const char *const pep_ns[] = {NS_PUBSUB, NS_PUBSUB_OWNER, NULL};
const struct module mod_pep = {
    .name = "pep",
    .iq_ns = pep_ns,
    .iq_own = pep_own,
    .iq_other = pep_other,
    .user_free = pep_free_hook,
    .disco_account = pep_features,
    .disco_account_items = pep_account_items,
};
