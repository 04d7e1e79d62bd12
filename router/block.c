/*
 * block.c: blocking (XEP-0191). The user's blocklist is in memory with the rest of its
 * state (load.c) and saved in the store. A blocked JID matches a sender when it is the
 * sender's full JID, bare JID, domain/resource or domain (the matching of XEP-0016
 * §2.1 that XEP-0191 §3.4 refers to). Effects, by the module's outbound and inbound
 * hooks (module.h), which run before every other module's: nothing from a blocked JID
 * reaches the user (message and iq requests get service-unavailable), and nothing of
 * the user's reaches it (not-acceptable with <blocked/>; presence silently).
 *
 * The iq: get the list (the resource then receives pushes), block items, unblock items
 * or everything; each change is pushed to every resource that asked for the list, and
 * presence follows: a newly blocked subscriber gets unavailable presence, an unblocked
 * one gets current presence again. A list holds blocking.max_items JIDs: a block that
 * would take it past that is refused whole with not-allowed, as is a request of more
 * items than one store request carries (STORE_JIDS_MAX).
 *
 * The list is a hash set (xxHash, as the router's other tables): a stanza is checked
 * against it up to four times (full JID, bare JID, domain, domain/resource) on each of
 * its two steps, at the cost of a lookup each, however long the list.
 */
#include "router/router.h"
#include "common/xmpp/jid.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/xmpp/xmlw.h"
#include "shm/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_BLOCKING "urn:xmpp:blocking"

/* ---- the set: a chained hash table of JIDs (xxHash), doubled as it fills ---------------- */

struct block_item {
    struct block_item *next;
    uint64_t hash;
    uint16_t len;
    char jid[]; /* NUL-terminated */
};

void block_free(struct blocklist *b)
{
    for (size_t i = 0; b->buckets && i <= b->mask; i++)
        while (b->buckets[i]) {
            struct block_item *it = b->buckets[i];
            b->buckets[i] = it->next;
            free(it);
        }
    free(b->buckets);
    memset(b, 0, sizeof *b);
}

static struct block_item **slot(const struct blocklist *b, const char *jid, size_t len, uint64_t h)
{
    struct block_item **pp = &b->buckets[h & b->mask];
    while (*pp && !((*pp)->hash == h && (*pp)->len == len && !memcmp((*pp)->jid, jid, len)))
        pp = &(*pp)->next;
    return pp;
}

static bool has(const struct blocklist *b, const char *jid, size_t len)
{
    return b->n && *slot(b, jid, len, jid_hash(jid, len));
}

static void rehash(struct blocklist *b, size_t nb)
{
    struct block_item **t = calloc(nb, sizeof *t);
    if (!t)
        return; /* longer chains, still correct */
    for (size_t i = 0; i <= b->mask; i++)
        while (b->buckets[i]) {
            struct block_item *it = b->buckets[i];
            b->buckets[i] = it->next;
            it->next = t[it->hash & (nb - 1)];
            t[it->hash & (nb - 1)] = it;
        }
    free(b->buckets);
    b->buckets = t;
    b->mask = nb - 1;
}

int block_add(struct blocklist *b, const char *jid, size_t len)
{
    if (!b->buckets) {
        if (!(b->buckets = calloc(16, sizeof *b->buckets)))
            return -ENOMEM;
        b->mask = 15;
    }
    uint64_t h = jid_hash(jid, len);
    struct block_item **pp = slot(b, jid, len, h);
    if (*pp)
        return 0;
    struct block_item *it = malloc(sizeof *it + len + 1);
    if (!it)
        return -ENOMEM;
    it->next = NULL;
    it->hash = h;
    it->len = (uint16_t)len;
    memcpy(it->jid, jid, len);
    it->jid[len] = '\0';
    *pp = it;
    b->nres += memchr(jid, '/', len) != NULL;
    if (++b->n > b->mask + 1)
        rehash(b, (b->mask + 1) * 2);
    return 1;
}

static void block_remove(struct blocklist *b, const char *jid, size_t len)
{
    if (!b->n)
        return;
    struct block_item **pp = slot(b, jid, len, jid_hash(jid, len));
    if (*pp) {
        struct block_item *it = *pp;
        *pp = it->next;
        b->nres -= memchr(it->jid, '/', it->len) != NULL;
        free(it);
        b->n--;
    }
}

/* ---- matching --------------------------------------------------------------------------- */

/* The forms of a JID that a blocked entry can be (XEP-0016 §2.1): the JID, its bare JID,
 * its domain and domain/resource. jid is normalised: local@domain/resource, any part but
 * the domain optional. */
struct forms {
    const char *p[4];
    size_t len[4];
    unsigned n;
    char tmp[JID_BUF];
};

static void form(struct forms *f, const char *p, size_t len)
{
    f->p[f->n] = p;
    f->len[f->n++] = len;
}

static void forms_of(const char *jid, size_t len, struct forms *f)
{
    const char *slash = memchr(jid, '/', len);
    size_t bare = slash ? (size_t)(slash - jid) : len;
    const char *at = memchr(jid, '@', bare);
    const char *dom = at ? at + 1 : jid;
    size_t dlen = (size_t)(jid + bare - dom);
    f->n = 0;
    form(f, jid, len);
    if (slash)
        form(f, jid, bare);
    if (at)
        form(f, dom, dlen);
    if (slash && at && dlen + (len - bare) < sizeof f->tmp) {
        memcpy(f->tmp, dom, dlen);
        memcpy(f->tmp + dlen, slash, len - bare);
        form(f, f->tmp, dlen + (len - bare));
    }
}

bool block_blocks(const struct blocklist *b, const char *jid, size_t len)
{
    if (!b->n)
        return false;
    struct forms f;
    forms_of(jid, len, &f);
    for (unsigned i = 0; i < f.n; i++)
        if (has(b, f.p[i], f.len[i]))
            return true;
    return false;
}

/* Does the one entry (entry, elen) match jid? */
static bool matches_n(const char *entry, size_t elen, const char *jid, size_t len)
{
    struct forms f;
    forms_of(jid, len, &f);
    for (unsigned i = 0; i < f.n; i++)
        if (f.len[i] == elen && !memcmp(f.p[i], entry, elen))
            return true;
    return false;
}

static bool matches(const char *entry, const char *jid, size_t len)
{
    return matches_n(entry, strlen(entry), jid, len);
}

int block_resources(const struct blocklist *b, struct buf *out)
{
    for (size_t i = 0; b->nres && i <= b->mask; i++)
        for (const struct block_item *it = b->buckets[i]; it; it = it->next)
            if (memchr(it->jid, '/', it->len) &&
                (buf_append(out, &it->len, sizeof it->len) < 0 ||
                 buf_append(out, it->jid, it->len) < 0))
                return -ENOMEM;
    return 0;
}

bool block_list_matches(const char *list, size_t len, const char *jid, size_t jid_len)
{
    const char *p = list, *end = list + len, *e;
    uint16_t n;
    while (decode_directed_next(&p, end, &e, &n)) /* the same layout: uint16_t + bytes */
        if (matches_n(e, n, jid, jid_len))
            return true;
    return false;
}

static void on_saved(void *arg, int res)
{
    struct user *u = arg;
    struct shard *s = shard_current;
    if (res < 0)
        LOG_ERROR("shard %u: the blocklist of %s was not saved", s->idx, u->bare);
    u->busy--;
    user_release(&s->users, u);
}

/* Pushes <block/> or <unblock/> with these items to the resources that asked. */
static void push(struct shard *s, struct user *u, const char *what, char *const *jids, size_t n)
{
    struct out_list l = {0};
    for (struct session *ss = u->sessions; ss; ss = ss->next)
        if (ss->blocklist_req)
            out_list_add(&l, ss->conn, ss->jid, ss->jid_len);
    if (l.n) {
        struct buf b = {0};
        buf_puts(&b, "<iq type='set'");
        out_push_id(s, &b);
        buf_puts(&b, "><");
        buf_puts(&b, what);
        buf_puts(&b, " xmlns='" NS_BLOCKING "'");
        if (!n) {
            buf_puts(&b, "/>");
        } else {
            buf_puts(&b, ">");
            for (size_t i = 0; i < n; i++) {
                buf_puts(&b, "<item");
                xmlw_attr(&b, "jid", jids[i], strlen(jids[i]));
                buf_puts(&b, "/>");
            }
            buf_puts(&b, "</");
            buf_puts(&b, what);
            buf_puts(&b, ">");
        }
        buf_puts(&b, "</iq>");
        out_list_send(s, &l, buf_data(&b), buf_used(&b), 3);
        buf_free(&b);
    }
    out_list_free(&l);
}

/* Presence follows a (un)block: subscribers of the user matched by jid. */
static void presence_follows(struct shard *s, struct user *u, const char *jid, bool blocked)
{
    for (size_t i = 0; u->roster.buckets && i <= u->roster.mask; i++)
        for (struct roster_item *it = u->roster.buckets[i]; it; it = it->next) {
            if (it->sub != 2 && it->sub != 3) /* from, both */
                continue;
            if (!matches(jid, it->jid, it->jid_len))
                continue;
            if (!blocked && block_blocks(&u->block, it->jid, it->jid_len))
                continue; /* still blocked by another item */
            presence_send_all(s, u, it->jid, it->jid_len, blocked);
        }
}

/* The items' JIDs, normalised, each once; NULL (after answering) when one is bad, or
 * when there are more than one store request carries. */
static char **items(struct shard *s, const struct stanza *st, const struct xml_node *q,
                    size_t *n)
{
    size_t count = 0;
    for (const struct xml_node *it = xml_node_child(q, "item", NS_BLOCKING); it;
         it = xml_node_next(it, "item", NS_BLOCKING))
        count++;
    if (count > STORE_JIDS_MAX) {
        out_error(s, st, "cancel", "not-allowed");
        return NULL;
    }
    struct blocklist seen = {0};
    char **out = calloc(count ? count : 1, sizeof *out);
    size_t k = 0;
    const char *type = "wait", *cond = "resource-constraint";
    if (!out)
        goto fail;
    for (const struct xml_node *it = xml_node_child(q, "item", NS_BLOCKING); it;
         it = xml_node_next(it, "item", NS_BLOCKING)) {
        const char *jid = xml_node_attr(it, "jid");
        char norm[JID_BUF];
        struct jid j;
        if (!jid || jid_parse(&j, jid, strlen(jid), norm, sizeof norm) < 0) {
            type = "modify";
            cond = "jid-malformed";
            goto fail;
        }
        int added = block_add(&seen, norm, j.len);
        if (added < 0 || (added && !(out[k++] = strdup(norm))))
            goto fail;
    }
    block_free(&seen);
    *n = k;
    return out;
fail:
    for (size_t i = 0; out && i < k; i++)
        free(out[i]);
    free(out);
    block_free(&seen);
    out_error(s, st, type, cond);
    return NULL;
}

/* The blocklist's JIDs (pointing into it), for a reply or a push; NULL when empty or
 * out of memory. */
static const char **listed(const struct blocklist *b)
{
    const char **v = b->n ? malloc(b->n * sizeof *v) : NULL;
    size_t k = 0;
    for (size_t i = 0; v && i <= b->mask; i++)
        for (const struct block_item *it = b->buckets[i]; it; it = it->next)
            v[k++] = it->jid;
    return v;
}

static void block_get(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
                      const char *id)
{
    if (!ss->blocklist_req) {
        ss->blocklist_req = true;
        out_session_state(s, ss);
    }
    const char **v = listed(&u->block);
    if (u->block.n && !v) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    struct buf b = {0};
    buf_puts(&b, "<blocklist xmlns='" NS_BLOCKING "'>");
    for (size_t i = 0; i < u->block.n; i++) {
        buf_puts(&b, "<item");
        xmlw_attr(&b, "jid", v[i], strlen(v[i]));
        buf_puts(&b, "/>");
    }
    buf_puts(&b, "</blocklist>");
    iq_result(s, st, id, buf_data(&b), buf_used(&b));
    buf_free(&b);
    free(v);
}

void block_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
              const struct xml_node *iq, const struct xml_node *q)
{
    const char *id = xml_node_attr(iq, "id");
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);

    if (st->h->type == PROTO_IQ_GET) {
        if (strcmp(q->name.p, "blocklist") != 0)
            out_error(s, st, "modify", "bad-request");
        else
            block_get(s, u, ss, st, id);
        return;
    }
    bool block = !strcmp(q->name.p, "block");
    if (!block && strcmp(q->name.p, "unblock") != 0) {
        out_error(s, st, "modify", "bad-request");
        return;
    }
    size_t n;
    char **jids = items(s, st, q, &n);
    if (!jids)
        return;
    if (block && !n) {
        out_error(s, st, "modify", "bad-request"); /* XEP-0191 §3.3: at least one item */
        goto out;
    }
    if (block) {
        /* All or none, as the store does it: the list stays within its bound. */
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++)
            fresh += !has(&u->block, jids[i], strlen(jids[i]));
        if (u->block.n + fresh > s->cfg->blocking.max_items) {
            out_error(s, st, "cancel", "not-allowed");
            goto out;
        }
        bool added[STORE_JIDS_MAX];
        for (size_t i = 0; i < n; i++) {
            int rc = block_add(&u->block, jids[i], strlen(jids[i]));
            added[i] = rc > 0;
            if (rc < 0) {
                for (size_t k = 0; k < i; k++)
                    if (added[k])
                        block_remove(&u->block, jids[k], strlen(jids[k]));
                out_error(s, st, "wait", "resource-constraint");
                goto out;
            }
        }
        u->busy++;
        if (store_block_add(s->store, user, (const char *const *)jids, n, on_saved, u) < 0)
            on_saved(u, -1);
        iq_result(s, st, id, NULL, 0);
        push(s, u, "block", jids, n);
        for (size_t i = 0; i < n; i++)
            presence_follows(s, u, jids[i], true);
    } else if (!n) {
        /* Unblock everything: the list goes, then presence follows for each entry. */
        struct blocklist gone = u->block;
        memset(&u->block, 0, sizeof u->block);
        u->busy++;
        if (store_block_clear(s->store, user, on_saved, u) < 0)
            on_saved(u, -1);
        iq_result(s, st, id, NULL, 0);
        push(s, u, "unblock", jids, 0);
        for (size_t i = 0; gone.buckets && i <= gone.mask; i++)
            for (const struct block_item *it = gone.buckets[i]; it; it = it->next)
                presence_follows(s, u, it->jid, false);
        block_free(&gone);
    } else {
        for (size_t i = 0; i < n; i++)
            block_remove(&u->block, jids[i], strlen(jids[i]));
        u->busy++;
        if (store_block_remove(s->store, user, (const char *const *)jids, n, on_saved, u) < 0)
            on_saved(u, -1);
        iq_result(s, st, id, NULL, 0);
        push(s, u, "unblock", jids, n);
        for (size_t i = 0; i < n; i++)
            presence_follows(s, u, jids[i], false);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(jids[i]);
    free(jids);
}

static void block_features(const struct shard *s, bool remote, struct buf *b)
{
    (void)s, (void)remote;
    buf_puts(b, "<feature var='" NS_BLOCKING "'/>");
}

/* XEP-0191 §3.4: the user blocked this JID, so nothing goes to it. */
static bool block_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)ss;
    if (!st->to_len || !block_blocks(&u->block, st->to, st->to_len))
        return false;
    if (st->h->kind != PROTO_PRESENCE)
        out_error_extra(s, st, "cancel", "not-acceptable",
                        "<blocked xmlns='urn:xmpp:blocking:errors'/>");
    return true;
}

/* XEP-0191 §3.4: the recipient blocked the sender; nothing is delivered. */
static bool block_inbound(struct shard *s, struct user *v, struct stanza *st)
{
    if (!block_blocks(&v->block, st->from, st->from_len))
        return false;
    const struct proto_stanza *h = st->h;
    if (h->kind == PROTO_MESSAGE || (h->kind == PROTO_IQ && h->type <= PROTO_IQ_SET))
        out_error(s, st, "cancel", "service-unavailable");
    return true;
}

/* The user's blocklist from the store's answer, whole even past blocking.max_items (a
 * bound lowered since): it only stops additions. A short one when memory is. */
static void block_state(struct shard *s, struct user *u, int res, const struct store_roster *r)
{
    (void)s;
    for (size_t i = 0; res == 0 && i < r->blocked.n; i++)
        if (block_add(&u->block, r->blocked.names[i], strlen(r->blocked.names[i])) < 0)
            break;
}

static void block_user_free(struct shard *s, struct user *u)
{
    (void)s;
    block_free(&u->block);
}

static const char *const block_ns[] = {NS_BLOCKING, NULL};
const struct module mod_blocking = {
    .name = "blocking",
    .iq_ns = block_ns,
    .iq_own = block_iq,
    .iq_other = iq_forbidden,
    .outbound = block_outbound,
    .inbound = block_inbound,
    .user_state = block_state,
    .user_free = block_user_free,
    .disco_server = block_features,
};
