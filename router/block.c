/*
 * block.c: blocking (XEP-0191). The user's blocklist is in memory with the rest of its
 * state (load.c) and saved in the store. A blocked JID matches a sender when it is the
 * sender's full JID, bare JID, domain/resource or domain (the matching of XEP-0016
 * §2.1 that XEP-0191 §3.4 refers to). Effects, applied in route.c: nothing from a
 * blocked JID reaches the user (message and iq requests get service-unavailable), and
 * nothing of the user's reaches it (not-acceptable with <blocked/>; presence silently).
 *
 * The iq: get the list (the resource then receives pushes), block items, unblock items
 * or everything; each change is pushed to every resource that asked for the list, and
 * presence follows: a newly blocked subscriber gets unavailable presence, an unblocked
 * one gets current presence again.
 */
#include "router/router.h"
#include "common/jid.h"
#include "common/log.h"
#include "common/store.h"
#include "common/xmlw.h"

#include <stdlib.h>
#include <string.h>

#define NS_BLOCKING "urn:xmpp:blocking"

void block_free(struct blocklist *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->jids[i]);
    free(b->jids);
    memset(b, 0, sizeof *b);
}

static bool has(const struct blocklist *b, const char *jid, size_t len)
{
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->jids[i]) == len && !memcmp(b->jids[i], jid, len))
            return true;
    return false;
}

bool block_blocks(const struct blocklist *b, const char *jid, size_t len)
{
    if (!b->n)
        return false;
    /* jid is normalised: local@domain/resource, any part but the domain optional. */
    const char *slash = memchr(jid, '/', len);
    size_t bare = slash ? (size_t)(slash - jid) : len;
    const char *at = memchr(jid, '@', bare);
    const char *dom = at ? at + 1 : jid;
    size_t dlen = (size_t)(jid + bare - dom);
    if (has(b, jid, len) || (slash && has(b, jid, bare)) || has(b, dom, dlen))
        return true;
    if (slash && at) { /* domain/resource */
        char tmp[JID_BUF];
        size_t rl = len - bare;
        if (dlen + rl < sizeof tmp) {
            memcpy(tmp, dom, dlen);
            memcpy(tmp + dlen, slash, rl);
            return has(b, tmp, dlen + rl);
        }
    }
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
            struct blocklist one = {(char **)&jid, 1, 1};
            if (!block_blocks(&one, it->jid, it->jid_len))
                continue;
            if (!blocked && block_blocks(&u->block, it->jid, it->jid_len))
                continue; /* still blocked by another item */
            presence_send_all(s, u, it->jid, it->jid_len, blocked);
        }
}

/* The items' JIDs, normalised; NULL (after answering) when one is bad. */
static char **items(struct shard *s, const struct stanza *st, const struct xml_node *q,
                    size_t *n)
{
    size_t count = 0;
    for (const struct xml_node *it = xml_node_child(q, "item", NS_BLOCKING); it;
         it = xml_node_next(it, "item", NS_BLOCKING))
        count++;
    char **out = calloc(count ? count : 1, sizeof *out);
    if (!out)
        return NULL;
    size_t k = 0;
    for (const struct xml_node *it = xml_node_child(q, "item", NS_BLOCKING); it;
         it = xml_node_next(it, "item", NS_BLOCKING)) {
        const char *jid = xml_node_attr(it, "jid");
        char norm[JID_BUF];
        struct jid j;
        if (!jid || jid_parse(&j, jid, strlen(jid), norm, sizeof norm) < 0 ||
            !(out[k] = strdup(norm))) {
            for (size_t i = 0; i < k; i++)
                free(out[i]);
            free(out);
            out_error(s, st, "modify", "jid-malformed");
            return NULL;
        }
        k++;
    }
    *n = k;
    return out;
}

void block_iq(struct shard *s, struct user *u, struct session *ss, const struct stanza *st,
              const struct xml_node *iq, const struct xml_node *q)
{
    const char *id = xml_node_attr(iq, "id");
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);

    if (st->h->type == PROTO_IQ_GET) {
        if (strcmp(q->name.p, "blocklist") != 0) {
            out_error(s, st, "modify", "bad-request");
            return;
        }
        if (!ss->blocklist_req) {
            ss->blocklist_req = true;
            out_session_state(s, ss);
        }
        struct buf b = {0};
        buf_puts(&b, "<blocklist xmlns='" NS_BLOCKING "'>");
        for (size_t i = 0; i < u->block.n; i++) {
            buf_puts(&b, "<item");
            xmlw_attr(&b, "jid", u->block.jids[i], strlen(u->block.jids[i]));
            buf_puts(&b, "/>");
        }
        buf_puts(&b, "</blocklist>");
        iq_result(s, st, id, buf_data(&b), buf_used(&b));
        buf_free(&b);
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
        free(jids);
        out_error(s, st, "modify", "bad-request"); /* XEP-0191 §3.3: at least one item */
        return;
    }
    if (block) {
        for (size_t i = 0; i < n; i++) {
            if (has(&u->block, jids[i], strlen(jids[i])))
                continue;
            if (u->block.n == u->block.cap) {
                size_t cap = u->block.cap ? u->block.cap * 2 : 8;
                char **nj = realloc(u->block.jids, cap * sizeof *nj);
                if (!nj)
                    break;
                u->block.jids = nj;
                u->block.cap = cap;
            }
            if ((u->block.jids[u->block.n] = strdup(jids[i])))
                u->block.n++;
        }
        u->busy++;
        if (store_block_add(s->store, user, (const char *const *)jids, n, on_saved, u) < 0)
            on_saved(u, -1);
        iq_result(s, st, id, NULL, 0);
        push(s, u, "block", jids, n);
        for (size_t i = 0; i < n; i++)
            presence_follows(s, u, jids[i], true);
    } else {
        char **gone = jids;
        size_t ngone = n;
        if (!n) { /* unblock everything */
            gone = u->block.jids;
            ngone = u->block.n;
            u->block.jids = NULL;
            u->block.n = u->block.cap = 0;
            u->busy++;
            if (store_block_clear(s->store, user, on_saved, u) < 0)
                on_saved(u, -1);
        } else {
            for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < u->block.n; k++)
                    if (!strcmp(u->block.jids[k], jids[i])) {
                        free(u->block.jids[k]);
                        u->block.jids[k] = u->block.jids[--u->block.n];
                        break;
                    }
            u->busy++;
            if (store_block_remove(s->store, user, (const char *const *)jids, n, on_saved, u) < 0)
                on_saved(u, -1);
        }
        iq_result(s, st, id, NULL, 0);
        push(s, u, "unblock", jids, n);
        for (size_t i = 0; i < ngone; i++)
            presence_follows(s, u, gone[i], false);
        if (gone != jids) {
            for (size_t i = 0; i < ngone; i++)
                free(gone[i]);
            free(gone);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(jids[i]);
    free(jids);
}
