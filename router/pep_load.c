/*
 * pep_load.c: a user's PEP nodes and items, private XML and vCard come from the store
 * in one request (store_pep_load) the first time something needs them: a pubsub,
 * private or vCard request for the user, or one of its sessions becoming available
 * (its contacts and resources then want last items). Until the answer is in, the
 * requests that need them wait in the user's PEP queue in arrival order (copies of
 * their frames, router.max_pending bytes at most, past which resource-constraint), and
 * the load holds the user (u->busy). Then each is handled again as if it had just
 * arrived. A failed load serves an empty state and writes nothing (so that a store
 * that failed once does not lose what it holds).
 */
#include "router/pep.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pep_wait {
    struct pep_wait *next;
    struct ticket *t;
    uint16_t kind;
    uint32_t len;
    char payload[];
};

struct pep_user *pep_of(struct user *u)
{
    if (!u->mod[MOD_SLOT_PEP])
        u->mod[MOD_SLOT_PEP] = calloc(1, sizeof(struct pep_user));
    return u->mod[MOD_SLOT_PEP];
}

static void take_rows(struct shard *s, struct pep_user *p, const struct store_pep *rows)
{
    uint32_t max = s->cfg->pep.max_items;
    for (size_t i = 0; i < rows->n; i++) {
        const struct store_pep_row *r = &rows->rows[i];
        if (r->kind != STORE_PEP_CONFIG || !r->node[0])
            continue;
        struct pep_node *n = pep_node_find(p, r->node);
        if (!n && !(n = pep_node_new(p, r->node)))
            return;
        pep_node_config_parse(n, r->data, r->len, max);
    }
    for (size_t i = 0; i < rows->n; i++) {
        const struct store_pep_row *r = &rows->rows[i];
        char *id = NULL, *xml = malloc(r->len + 1);
        if (!xml)
            return;
        memcpy(xml, r->data, r->len);
        xml[r->len] = '\0';
        if (r->kind == STORE_PEP_ITEM && r->node[0]) {
            struct pep_node *n = pep_node_find(p, r->node);
            if ((n || (n = pep_node_new(p, r->node))) && (id = strdup(r->id))) {
                pep_node_put(p, n, id, xml, (uint32_t)r->len);
                continue;
            }
        } else if (r->kind == STORE_PEP_PRIVATE) {
            struct pep_private *e = calloc(1, sizeof *e);
            if (e && (e->ns = strdup(r->id))) {
                e->xml = xml;
                e->len = (uint32_t)r->len;
                e->next = p->priv;
                p->priv = e;
                p->npriv++;
                continue;
            }
            free(e);
        } else if (r->kind == STORE_PEP_VCARD) {
            free(p->vcard);
            p->vcard = xml;
            p->vcard_len = (uint32_t)r->len;
            continue;
        }
        free(xml);
    }
}

static void on_load(void *arg, int res, const struct store_pep *rows)
{
    struct user *u = arg;
    struct shard *s = shard_current;
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    u->busy--;
    if (res == 0) {
        take_rows(s, p, rows);
    } else if (res != -ENOENT) {
        LOG_ERROR("shard %u: cannot load the PEP data of %s: %s", s->idx, u->bare, strerror(-res));
        p->failed = true;
    }
    p->state = PEP_READY;
    u->busy++;
    while (p->wait_head) {
        struct pep_wait *w = p->wait_head;
        p->wait_head = w->next;
        if (!p->wait_head)
            p->wait_tail = NULL;
        struct ticket *was = s->cur;
        s->cur = w->t;
        shard_frame(s, w->kind, w->payload, w->len);
        s->cur = was;
        ticket_defer(s, w->t);
        free(w);
    }
    pep_caps_loaded(s, u);
    u->busy--;
    user_release(&s->users, u);
}

void pep_load(struct shard *s, struct user *u)
{
    struct pep_user *p = pep_of(u);
    if (!p || p->state != PEP_COLD)
        return;
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    p->state = PEP_LOADING;
    u->busy++;
    if (store_pep_load(s->store, user, on_load, u) < 0)
        on_load(u, -EIO, NULL);
}

bool pep_ready(struct shard *s, struct user *u, const struct stanza *st, bool own)
{
    struct pep_user *p = pep_of(u);
    if (!p) {
        out_error(s, st, "wait", "resource-constraint");
        return false;
    }
    if (p->state == PEP_READY)
        return true;
    uint32_t len = (uint32_t)(sizeof *st->h + st->from_len + st->to_len + st->raw_len);
    uint64_t queued = 0;
    for (struct pep_wait *w = p->wait_head; w; w = w->next)
        queued += w->len;
    struct pep_wait *w = NULL;
    if (!st->frame || queued + len > s->cfg->router.max_pending || !(w = malloc(sizeof *w + len))) {
        out_error(s, st, "wait", "resource-constraint");
        return false;
    }
    /* Handled again from the start of its step: the sender's (an own request comes from
     * a session, through route_outbound()) or the recipient's. */
    w->next = NULL;
    w->t = ticket_hold(s->cur);
    w->kind = own ? PROTO_STANZA : RK_INBOUND;
    w->len = len;
    memcpy(w->payload, st->frame, len);
    if (p->wait_tail)
        p->wait_tail->next = w;
    else
        p->wait_head = w;
    p->wait_tail = w;
    pep_load(s, u);
    return false;
}

static void on_stored(void *arg, int res)
{
    (void)arg;
    if (res < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a PEP write failed: %s", shard_current->idx,
               strerror(-res));
}

void pep_store(struct shard *s, struct user *u, uint8_t kind, const char *node, const char *id,
               const char *data, size_t len, size_t keep)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    if (!p || p->failed)
        return;
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    int rc = data ? store_pep_put(s->store, user, kind, node, id, data, len, keep, on_stored, NULL)
                  : store_pep_delete(s->store, user, kind, node, id, on_stored, NULL);
    if (rc < 0)
        on_stored(NULL, rc);
}

static void res_free(struct pep_res *r)
{
    while (r) {
        struct pep_res *next = r->next;
        free(r->jid);
        free(r);
        r = next;
    }
}

void pep_user_free(struct shard *s, struct user *u)
{
    struct pep_user *p = u->mod[MOD_SLOT_PEP];
    (void)s;
    if (!p)
        return;
    while (p->nodes) {
        struct pep_node *n = p->nodes;
        p->nodes = n->next;
        while (n->oldest) {
            struct pep_item *it = n->oldest;
            n->oldest = it->next;
            free(it->id);
            free(it->xml);
            free(it);
        }
        free(n->name);
        free(n);
    }
    while (p->priv) {
        struct pep_private *e = p->priv;
        p->priv = e->next;
        free(e->ns);
        free(e->xml);
        free(e);
    }
    while (p->wait_head) { /* the user is freed with nothing holding it: none wait */
        struct pep_wait *w = p->wait_head;
        p->wait_head = w->next;
        ticket_defer(s, w->t);
        free(w);
    }
    res_free(p->own);
    res_free(p->contacts);
    free(p->vcard);
    free(p);
    u->mod[MOD_SLOT_PEP] = NULL;
}
