/*
 * roster.c: a user's roster in memory (the shard is its only writer; the store keeps a
 * copy) and jabber:iq:roster (RFC 6121 §2): get with versioning (§2.6: an up-to-date
 * client gets an empty result), set and remove with their errors, and roster pushes to
 * every interested resource (one that asked for the roster, §2.1.6).
 *
 * Versions: the store increments the user's version in the same transaction as each
 * change; the shard is the only writer, so it knows the next number and pushes it at
 * once. A client that is behind gets the whole roster (allowed by §2.6.3).
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_ROSTER "jabber:iq:roster"

void roster_init(struct roster *r)
{
    memset(r, 0, sizeof *r);
}

static void item_free(struct roster_item *it)
{
    for (unsigned g = 0; g < it->ngroups; g++)
        free(it->groups[g]);
    free(it->groups);
    free(it->name);
    free(it->jid);
    free(it);
}

void roster_free(struct roster *r)
{
    for (size_t i = 0; r->buckets && i <= r->mask; i++) {
        struct roster_item *it = r->buckets[i];
        while (it) {
            struct roster_item *next = it->next;
            item_free(it);
            it = next;
        }
    }
    free(r->buckets);
    memset(r, 0, sizeof *r);
}

struct roster_item *roster_find(const struct roster *r, const char *jid, size_t len)
{
    if (!r->buckets)
        return NULL;
    uint64_t h = jid_hash(jid, len);
    for (struct roster_item *it = r->buckets[h & r->mask]; it; it = it->next)
        if (it->hash == h && it->jid_len == len && memcmp(it->jid, jid, len) == 0)
            return it;
    return NULL;
}

static bool rehash(struct roster *r, size_t n)
{
    struct roster_item **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; r->buckets && i <= r->mask; i++) {
        struct roster_item *it = r->buckets[i];
        while (it) {
            struct roster_item *next = it->next;
            it->next = b[it->hash & (n - 1)];
            b[it->hash & (n - 1)] = it;
            it = next;
        }
    }
    free(r->buckets);
    r->buckets = b;
    r->mask = n - 1;
    return true;
}

struct roster_item *roster_add(struct roster *r, const char *jid, size_t len)
{
    struct roster_item *it = roster_find(r, jid, len);
    if (it)
        return it;
    if (!r->buckets && !rehash(r, 16))
        return NULL;
    if (r->count >= r->mask + 1)
        rehash(r, (r->mask + 1) * 2);
    it = calloc(1, sizeof *it);
    if (!it || !(it->jid = malloc(len + 1))) {
        free(it);
        return NULL;
    }
    memcpy(it->jid, jid, len);
    it->jid[len] = '\0';
    it->jid_len = (uint16_t)len;
    it->hash = jid_hash(jid, len);
    it->next = r->buckets[it->hash & r->mask];
    r->buckets[it->hash & r->mask] = it;
    r->count++;
    r->bytes += len;
    return it;
}

/* The bytes of an item's name and groups. */
static size_t label_bytes(const char *name, const char *const *groups, size_t ng)
{
    size_t n = name ? strlen(name) : 0;
    for (size_t g = 0; g < ng; g++)
        n += strlen(groups[g]);
    return n;
}

size_t roster_item_bytes(const struct roster_item *it)
{
    return it->jid_len + label_bytes(it->name, (const char *const *)it->groups, it->ngroups);
}

int roster_item_label(struct roster *r, struct roster_item *it, const char *name,
                      const char *const *groups, size_t ng)
{
    char *nm = name ? strdup(name) : NULL;
    char **gs = ng ? calloc(ng, sizeof *gs) : NULL;
    size_t k = 0;
    if ((name && !nm) || (ng && !gs))
        goto fail;
    for (; k < ng; k++)
        if (!(gs[k] = strdup(groups[k])))
            goto fail;
    r->bytes -= roster_item_bytes(it);
    for (unsigned g = 0; g < it->ngroups; g++)
        free(it->groups[g]);
    free(it->groups);
    free(it->name);
    it->name = nm;
    it->groups = gs;
    it->ngroups = (uint16_t)ng;
    r->bytes += roster_item_bytes(it);
    return 0;
fail:
    while (k > 0)
        free(gs[--k]);
    free(gs);
    free(nm);
    return -ENOMEM;
}

void roster_remove(struct roster *r, struct roster_item *it)
{
    struct roster_item **pp = &r->buckets[it->hash & r->mask];
    while (*pp && *pp != it)
        pp = &(*pp)->next;
    if (*pp)
        *pp = it->next;
    r->count--;
    r->bytes -= roster_item_bytes(it);
    item_free(it);
}

static const char *const sub_names[] = {"none", "to", "from", "both"};

/* <item .../> as RFC 6121 §2.1.2 shows it; removed: subscription='remove'. */
static void item_xml(struct buf *b, const struct roster_item *it, bool removed)
{
    buf_puts(b, "<item");
    xmlw_attr(b, "jid", it->jid, it->jid_len);
    if (removed) {
        buf_puts(b, " subscription='remove'/>");
        return;
    }
    if (it->name)
        xmlw_attr(b, "name", it->name, strlen(it->name));
    buf_puts(b, " subscription='");
    buf_puts(b, sub_names[it->sub & 3]);
    buf_puts(b, "'");
    if (it->ask)
        buf_puts(b, " ask='subscribe'");
    if (it->approved)
        buf_puts(b, " approved='true'");
    if (!it->ngroups) {
        buf_puts(b, "/>");
        return;
    }
    buf_puts(b, ">");
    for (unsigned g = 0; g < it->ngroups; g++) {
        buf_puts(b, "<group>");
        xmlw_text(b, it->groups[g], strlen(it->groups[g]));
        buf_puts(b, "</group>");
    }
    buf_puts(b, "</item>");
}

static void ver_attr(struct buf *b, uint64_t ver)
{
    char v[32];
    snprintf(v, sizeof v, "%" PRIu64, ver);
    xmlw_attr(b, "ver", v, strlen(v));
}

struct write_ctx {
    struct user *u;
    uint64_t expect;
};

static void on_written(void *arg, int res, uint64_t ver)
{
    struct write_ctx *w = arg;
    struct shard *s = shard_current;
    struct user *u = w->u;
    if (res < 0)
        LOG_ERROR("shard %u: roster of %s not saved: %s", s->idx, u->bare, strerror(-res));
    else if (ver != w->expect)
        LOG_WARN("shard %u: roster of %s is at version %" PRIu64 " in the store, %" PRIu64
                 " here",
                 s->idx, u->bare, ver, w->expect);
    free(w);
    u->busy--;
    user_release(&s->users, u);
}

static void save(struct shard *s, struct user *u, const struct roster_item *it, bool removed)
{
    char user[USER_LOCAL_MAX];
    struct write_ctx *w = malloc(sizeof *w);
    if (!w)
        return;
    user_localpart(u, user, sizeof user);
    w->u = u;
    w->expect = u->roster.ver;
    u->busy++;
    int rc;
    if (removed) {
        rc = store_roster_delete(s->store, user, it->jid, on_written, w);
    } else {
        struct store_roster_item si = {
            .jid = it->jid,
            .name = it->name,
            .sub = it->sub,
            .ask = it->ask,
            .pending_in = it->pending_in,
            .approved = it->approved,
            .hidden = it->hidden,
            .groups = (const char *const *)it->groups,
            .ngroups = it->ngroups,
        };
        rc = store_roster_put(s->store, user, &si, on_written, w);
    }
    if (rc < 0)
        on_written(w, rc, 0);
}

void roster_changed(struct shard *s, struct user *u, struct roster_item *it, bool removed)
{
    u->roster.ver++;
    save(s, u, it, removed);
    if (it->hidden)
        return; /* never in the visible roster: nothing to push, added or removed */
    struct out_list l = {0};
    for (struct session *ss = u->sessions; ss; ss = ss->next)
        if (ss->interested)
            out_list_add(&l, ss->conn, ss->jid, ss->jid_len);
    if (l.n) {
        /* RFC 6121 §2.1.6: a push is an iq set the client answers; any id will do. */
        struct buf b = {0};
        buf_puts(&b, "<iq type='set'");
        out_push_id(s, &b);
        buf_puts(&b, "><query xmlns='" NS_ROSTER "'");
        ver_attr(&b, u->roster.ver);
        buf_puts(&b, ">");
        item_xml(&b, it, removed);
        buf_puts(&b, "</query></iq>");
        out_list_send(s, &l, buf_data(&b), buf_used(&b), 3 /* after "<iq" */);
        buf_free(&b);
    }
    out_list_free(&l);
}

static void iq_error(struct shard *s, const struct stanza *st, const char *type, const char *cond)
{
    out_error(s, st, type, cond);
}

static void roster_get(struct shard *s, struct user *u, struct session *ss,
                       const struct stanza *st, const char *id, const struct xml_node *q)
{
    if (!ss->interested) {
        ss->interested = true;
        out_session_state(s, ss);
    }
    char cur[32];
    snprintf(cur, sizeof cur, "%" PRIu64, u->roster.ver);
    const char *ver = xml_node_attr(q, "ver");
    if (ver && !strcmp(ver, cur)) {
        iq_result(s, st, id, NULL, 0); /* RFC 6121 §2.6.3: up to date, nothing to send */
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_ROSTER "'");
    ver_attr(&b, u->roster.ver);
    buf_puts(&b, ">");
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next)
            if (!it->hidden)
                item_xml(&b, it, false);
    buf_puts(&b, "</query>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* Sends a subscription stanza from u to a contact, as u's server does on its own. */
static void send_sub(struct shard *s, struct user *u, const struct roster_item *it,
                     uint8_t type, const char *name)
{
    struct buf b = {0};
    buf_puts(&b, "<presence type='");
    buf_puts(&b, name);
    buf_puts(&b, "'");
    xmlw_attr(&b, "from", u->bare, u->bare_len);
    xmlw_attr(&b, "to", it->jid, it->jid_len);
    buf_puts(&b, "/>");
    route_generated(s, u->bare, u->bare_len, u->bare_len, it->jid, it->jid_len, it->jid_len,
                    PROTO_PRESENCE, type, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

static void roster_remove_item(struct shard *s, struct user *u, const struct stanza *st,
                               const char *id, struct roster_item *it)
{
    /* RFC 6121 §2.5.2: cancel both directions of the subscription first. */
    if (it->sub == STORE_SUB_TO || it->sub == STORE_SUB_BOTH || it->ask)
        send_sub(s, u, it, PROTO_PRES_UNSUBSCRIBE, "unsubscribe");
    if (it->sub == STORE_SUB_FROM || it->sub == STORE_SUB_BOTH || it->pending_in) {
        if (it->sub == STORE_SUB_FROM || it->sub == STORE_SUB_BOTH)
            presence_send_all(s, u, it->jid, it->jid_len, true);
        send_sub(s, u, it, PROTO_PRES_UNSUBSCRIBED, "unsubscribed");
    }
    iq_result(s, st, id, NULL, 0);
    roster_changed(s, u, it, true);
    roster_remove(&u->roster, it);
}

static void roster_set(struct shard *s, struct user *u, const struct stanza *st, const char *id,
                       const struct xml_node *q)
{
    /* RFC 6121 §2.3.3: exactly one item. */
    const struct xml_node *item = xml_node_child(q, "item", NS_ROSTER);
    if (!item || xml_node_next(item, "item", NS_ROSTER)) {
        iq_error(s, st, "modify", "bad-request");
        return;
    }
    const char *jid = xml_node_attr(item, "jid");
    char norm[JID_BUF];
    struct jid j;
    if (!jid || jid_parse(&j, jid, strlen(jid), norm, sizeof norm) < 0) {
        iq_error(s, st, "modify", "jid-malformed");
        return;
    }
    size_t blen = jid_bare_len(&j);
    if (j.res_len || (blen == u->bare_len && !memcmp(norm, u->bare, blen))) {
        iq_error(s, st, "modify", "bad-request"); /* a full JID, or the user itself */
        return;
    }
    struct roster_item *it = roster_find(&u->roster, norm, blen);
    const char *sub = xml_node_attr(item, "subscription");
    if (sub && !strcmp(sub, "remove")) {
        if (!it || it->hidden)
            iq_error(s, st, "cancel", "item-not-found"); /* §2.5.3 */
        else
            roster_remove_item(s, u, st, id, it);
        return;
    }
    const char *name = xml_node_attr(item, "name");
    if (name && strlen(name) > STORE_TEXT_MAX) {
        iq_error(s, st, "modify", "not-acceptable");
        return;
    }
    /* Groups: none empty, none too long, none twice (§2.3.3). */
    const char *groups[STORE_GROUPS_MAX];
    unsigned ng = 0;
    for (const struct xml_node *g = xml_node_child(item, "group", NS_ROSTER); g;
         g = xml_node_next(g, "group", NS_ROSTER)) {
        const char *t = xml_node_text(g, &s->arena);
        if (!t || !*t || strlen(t) > STORE_TEXT_MAX) {
            iq_error(s, st, "modify", "not-acceptable");
            return;
        }
        for (unsigned k = 0; k < ng; k++)
            if (!strcmp(groups[k], t)) {
                iq_error(s, st, "modify", "bad-request");
                return;
            }
        if (ng == STORE_GROUPS_MAX) {
            iq_error(s, st, "modify", "not-acceptable");
            return;
        }
        groups[ng++] = t;
    }
    /* §2.3.3: a name or groups longer than the server allows are not-acceptable; a
     * roster with no room for the item (its count or its bytes) is not-allowed. */
    size_t label = label_bytes(name, groups, ng);
    if (label > s->cfg->roster.max_item_bytes) {
        iq_error(s, st, "modify", "not-acceptable");
        return;
    }
    bool fresh = !it || it->hidden;
    size_t after = u->roster.bytes + blen + label - (it ? roster_item_bytes(it) : 0);
    if ((fresh && u->roster.count >= s->cfg->roster.max_items) ||
        after > s->cfg->roster.max_bytes) {
        iq_error(s, st, "cancel", "not-allowed"); /* the roster is full */
        return;
    }
    if (!it && !(it = roster_add(&u->roster, norm, blen))) {
        iq_error(s, st, "wait", "resource-constraint");
        return;
    }
    if (roster_item_label(&u->roster, it, name, groups, ng) < 0) {
        if (fresh && !it->hidden)
            roster_remove(&u->roster, it); /* added just now */
        iq_error(s, st, "wait", "resource-constraint");
        return;
    }
    it->hidden = false;
    iq_result(s, st, id, NULL, 0);
    roster_changed(s, u, it, false);
}

void roster_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
               const struct xml_node *iq, const struct xml_node *q)
{
    const char *id = xml_node_attr(iq, "id");
    if (st->h->type == PROTO_IQ_GET)
        roster_get(s, u, ss, st, id, q);
    else
        roster_set(s, u, st, id, q);
}

static void roster_own(struct shard *s, struct user *u, struct session *ss,
                       const struct stanza *st, const struct xml_node *iq,
                       const struct xml_node *q)
{
    if (!strcmp(q->name.p, "query"))
        roster_iq(s, u, ss, st, iq, q);
    else
        out_error(s, st, "cancel", "service-unavailable");
}

static void roster_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='" NS_ROSTER "'/>");
}

static void roster_state(struct shard *s, struct user *u, int res, const struct store_roster *r)
{
    (void)s;
    if (res < 0)
        return;
    u->roster.ver = r->ver;
    for (size_t i = 0; i < r->n; i++) {
        const struct store_roster_item *si = &r->items[i];
        struct roster_item *it = roster_add(&u->roster, si->jid, strlen(si->jid));
        if (!it)
            continue;
        roster_item_label(&u->roster, it, si->name, si->groups, si->ngroups);
        it->sub = si->sub;
        it->ask = si->ask;
        it->pending_in = si->pending_in;
        it->approved = si->approved;
        it->hidden = si->hidden;
    }
}

static void roster_user_free(struct shard *s, struct user *u)
{
    (void)s;
    roster_free(&u->roster);
}

static const char *const roster_ns[] = {NS_ROSTER, NULL};
const struct module mod_roster = {
    .name = "roster",
    .iq_ns = roster_ns,
    .iq_own = roster_own,
    .iq_other = iq_forbidden,
    .user_state = roster_state,
    .user_free = roster_user_free,
    .disco_server = roster_features,
};
