/*
 * muc_store.c: persistent rooms in the store (common/store/store_muc.h), and the
 * service's room list (muc.h says what is kept).
 *
 * Loading. A stanza to a room this shard does not hold may be for a persistent room
 * the store has (written before the router or node restarted, or by the node that
 * was the room's home before the cluster changed). It waits, a copy of its frame, in
 * the room's load (one store_muc_load per room, however many stanzas wait) under a
 * reference to its ticket, and the stanzas are handled again in arrival order once
 * the answer is in: with the room made from its row, or (-ENOENT) as stanzas to a room
 * nobody has, which the first join creates. What waits for one room is bounded by
 * router.max_pending bytes, as what waits for a user's state is (load.c); loads in
 * flight count against muc.max_rooms with the rooms held. Past either, the stanza is
 * answered with resource-constraint (wait). A load that failed (the store is down)
 * answers what waited with internal-server-error (wait) rather than make a new room in
 * the place of one the store may hold.
 *
 * Writing. A room's persistent state (configuration, subject, affiliations) changed by
 * a stanza marks the room dirty (muc_store_dirty()); muc_home() writes it once the
 * stanza is done (muc_store_sync()): the whole row when the room is persistent and
 * configured, a delete when it has a row and is not (made non-persistent). A destroyed
 * room's row goes with it (muc_store_forget()). The store runs one client's requests
 * in order, so a delete queued after a put wins, and a load queued after either sees
 * it. A write that cannot be submitted (the store's queue is full) leaves the room
 * dirty, so the next stanza to it tries again; one that fails is logged.
 */
#include "router/muc.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store_muc.h"
#include "common/xmpp/xml_tree.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"

struct muc_wait {
    struct muc_wait *next;
    struct ticket *t;
    uint32_t len;
    char payload[];
};

struct muc_load {
    struct muc_load *next;
    uint64_t key;
    char *jid;
    size_t jid_len;
    struct muc_wait *head, *tail;
    uint64_t bytes;
};

static uint32_t frame_len(const struct stanza *st)
{
    return (uint32_t)(sizeof *st->h + st->from_len + st->to_len + st->raw_len);
}

static struct muc_shard *state(struct shard *s)
{
    return s->mod[MOD_SLOT_MUC];
}

/* ---- writing ---- */

static void on_written(void *arg, int res)
{
    (void)arg;
    if (res < 0)
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: a room's write to the store failed: %s",
               shard_current->idx, strerror(-res));
}

void muc_store_dirty(struct muc_room *r)
{
    r->dirty = true;
}

static int put(struct shard *s, struct muc_room *r)
{
    const struct muc_config *c = &r->cfg;
    /* An affiliation's JID is len bytes without a NUL: the store takes strings. */
    size_t bytes = 0;
    for (const struct muc_aff_item *a = r->affs; a; a = a->next)
        bytes += (size_t)a->len + 1;
    struct store_muc_aff *affs = r->naffs ? malloc(r->naffs * sizeof *affs + bytes) : NULL;
    if (r->naffs && !affs)
        return -ENOMEM;
    char *p = affs ? (char *)(affs + r->naffs) : NULL;
    size_t n = 0;
    for (const struct muc_aff_item *a = r->affs; a && n < r->naffs; a = a->next) {
        if (a->aff == MUC_AFF_NONE)
            continue;
        memcpy(p, a->jid, a->len);
        p[a->len] = '\0';
        affs[n++] = (struct store_muc_aff){p, a->aff};
        p += a->len + 1;
    }
    uint32_t flags =
        (c->persistent ? STORE_MUC_PERSISTENT : 0) | (c->membersonly ? STORE_MUC_MEMBERSONLY : 0) |
        (c->moderated ? STORE_MUC_MODERATED : 0) | (c->public_room ? STORE_MUC_PUBLIC : 0) |
        (c->whois_anyone ? STORE_MUC_WHOIS_ANYONE : 0) |
        (c->changesubject ? STORE_MUC_CHANGESUBJECT : 0) |
        (c->allow_invites ? STORE_MUC_ALLOW_INVITES : 0);
    struct store_muc_room row = {.jid = r->jid,
                                 .name = c->name,
                                 .desc = c->desc,
                                 .password = c->password,
                                 .maxusers = c->maxusers,
                                 .flags = flags,
                                 .subject = r->subject,
                                 .subject_nick = r->subject_nick,
                                 .naffs = n,
                                 .affs = affs};
    int rc = store_muc_put(s->store, &row, on_written, NULL);
    free(affs);
    return rc;
}

void muc_store_sync(struct shard *s, struct muc_room *r)
{
    if (!r->dirty)
        return;
    bool keep = r->cfg.persistent && !r->locked;
    if (!keep && !r->stored) {
        r->dirty = false;
        return;
    }
    int rc = keep ? put(s, r) : store_muc_delete(s->store, r->jid, on_written, NULL);
    if (rc < 0) {
        LOG_RL(LOG_LEVEL_WARN, "shard %u: room %s not written to the store yet: %s", s->idx, r->jid,
               strerror(-rc));
        return; /* still dirty: the next stanza to the room tries again */
    }
    r->dirty = false;
    r->stored = keep;
}

void muc_store_forget(struct shard *s, struct muc_room *r)
{
    if (!r->stored)
        return;
    int rc = store_muc_delete(s->store, r->jid, on_written, NULL);
    if (rc < 0) /* the row stays: the room comes back at its next load */
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: destroyed room %s left in the store: %s", s->idx, r->jid,
               strerror(-rc));
    r->stored = false;
}

/* ---- loading ---- */

static struct muc_room *room_from_row(struct shard *s, const struct muc_load *l,
                                      const struct store_muc_room *row)
{
    const struct config *cfg = s->cfg;
    struct muc_room *r =
        muc_room_add(muc_rooms(s), l->key, l->jid, l->jid_len, cfg->muc.max_occupants);
    if (!r)
        return NULL;
    struct muc_config *c = &r->cfg;
    bool ok = (!row->name || (c->name = strdup(row->name))) &&
              (!row->desc || (c->desc = strdup(row->desc))) &&
              (!row->password || (c->password = strdup(row->password))) &&
              (!row->subject || (r->subject = strdup(row->subject))) &&
              (!row->subject_nick || (r->subject_nick = strdup(row->subject_nick)));
    c->maxusers = row->maxusers && row->maxusers < cfg->muc.max_occupants ? row->maxusers
                                                                          : cfg->muc.max_occupants;
    c->persistent = row->flags & STORE_MUC_PERSISTENT;
    c->membersonly = row->flags & STORE_MUC_MEMBERSONLY;
    c->moderated = row->flags & STORE_MUC_MODERATED;
    c->public_room = row->flags & STORE_MUC_PUBLIC;
    c->whois_anyone = row->flags & STORE_MUC_WHOIS_ANYONE;
    c->changesubject = row->flags & STORE_MUC_CHANGESUBJECT;
    c->allow_invites = row->flags & STORE_MUC_ALLOW_INVITES;
    /* muc_aff_set() puts each at the head: the stored order comes back reversed, which
     * no rule depends on. A list past a lowered muc.max_affiliations keeps its first. */
    for (size_t i = 0; ok && i < row->naffs; i++)
        ok = muc_aff_set(r, row->affs[i].jid, strlen(row->affs[i].jid),
                         (enum muc_aff)row->affs[i].aff, cfg->muc.max_affiliations) != -ENOMEM;
    if (!ok) {
        muc_room_remove(muc_rooms(s), r);
        return NULL;
    }
    r->stored = true;
    return r;
}

static void load_unlink(struct muc_shard *m, struct muc_load *l)
{
    struct muc_load **pp = &m->loads;
    while (*pp && *pp != l)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = l->next;
        m->nloads--;
    }
}

static void on_load(void *arg, int res, const struct store_muc_room *row)
{
    struct muc_load *l = arg;
    struct shard *s = shard_current;
    struct muc_shard *m = state(s);
    load_unlink(m, l);
    const char *cond = NULL;
    if (res == 0 && !room_from_row(s, l, row))
        cond = "resource-constraint";
    else if (res < 0 && res != -ENOENT) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: cannot load room %s: %s", s->idx, l->jid,
               strerror(-res));
        cond = "internal-server-error";
    }
    /* -ENOENT: the stanzas go on as to a room nobody has, without asking again. */
    m->absent_key = l->key;
    m->absent = res == -ENOENT ? l->jid : NULL;
    m->absent_len = l->jid_len;
    while (l->head) {
        struct muc_wait *w = l->head;
        l->head = w->next;
        struct ticket *was = s->cur;
        s->cur = w->t;
        struct stanza st;
        if (!cond)
            shard_frame(s, RK_INBOUND, w->payload, w->len);
        else if (stanza_parse(w->payload, w->len, &st))
            out_error(s, &st, "wait", cond);
        s->cur = was;
        ticket_defer(s, w->t);
        free(w);
    }
    m->absent = NULL;
    free(l->jid);
    free(l);
}

static bool refuse(struct shard *s, const struct stanza *st, const char *why)
{
    LOG_RL(LOG_LEVEL_WARN, "shard %u: a stanza to %.*s refused: %s", s->idx, (int)st->to_bare_len,
           st->to, why);
    out_error(s, st, "wait", "resource-constraint");
    return false;
}

bool muc_store_ready(struct shard *s, const struct stanza *st)
{
    struct muc_shard *m = state(s);
    uint64_t key = st->h->to_key;
    if (m->absent && m->absent_key == key && m->absent_len == st->to_bare_len &&
        !memcmp(m->absent, st->to, st->to_bare_len))
        return true;
    if (!st->frame)
        return refuse(s, st, "no frame to keep");
    struct muc_load *l = m->loads;
    while (l && (l->key != key || l->jid_len != st->to_bare_len ||
                 memcmp(l->jid, st->to, st->to_bare_len)))
        l = l->next;
    uint32_t len = frame_len(st);
    if (l && l->head && l->bytes + len > s->cfg->router.max_pending)
        return refuse(s, st, "router.max_pending bytes wait for the room's load");
    if (!l && muc_rooms(s)->count + m->nloads >= s->cfg->muc.max_rooms)
        return refuse(s, st, "muc.max_rooms rooms held or loading");
    struct muc_wait *w = malloc(sizeof *w + len);
    if (!w)
        return refuse(s, st, "out of memory");
    w->next = NULL;
    w->len = len;
    memcpy(w->payload, st->frame, len);
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l || !(l->jid = strndup(st->to, st->to_bare_len))) {
            free(l);
            free(w);
            return refuse(s, st, "out of memory");
        }
        l->key = key;
        l->jid_len = st->to_bare_len;
        int rc = store_muc_load(s->store, l->jid, on_load, l);
        if (rc < 0) {
            free(l->jid);
            free(l);
            free(w);
            return refuse(s, st, rc == -EAGAIN ? "the store is busy" : strerror(-rc));
        }
        l->next = m->loads;
        m->loads = l;
        m->nloads++;
    }
    w->t = ticket_hold(s->cur);
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    l->bytes += len;
    return false;
}

/* ---- the service's room list ---- */

struct muc_list_req {
    uint32_t len;
    char payload[];
};

static void on_list(void *arg, int res, const struct store_muc_list *list)
{
    struct muc_list_req *q = arg;
    struct shard *s = shard_current;
    struct stanza st;
    if (!stanza_parse(q->payload, q->len, &st))
        goto out;
    if (res < 0) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: cannot list the rooms: %s", s->idx, strerror(-res));
        out_error(s, &st, "wait", "internal-server-error");
        goto out;
    }
    struct xml_node *iq =
        xml_tree_parse(NULL, st.raw, st.raw_len, &s->arena, s->scratch, sizeof s->scratch);
    struct buf b = {0};
    buf_puts(&b, "<query xmlns='" NS_DISCO_ITEMS "'>");
    for (size_t i = 0; i < list->n; i++) {
        buf_puts(&b, "<item");
        xmlw_attr(&b, "jid", list->items[i].jid, strlen(list->items[i].jid));
        if (list->items[i].name)
            xmlw_attr(&b, "name", list->items[i].name, strlen(list->items[i].name));
        buf_puts(&b, "/>");
    }
    buf_puts(&b, "</query>");
    iq_result(s, &st, iq ? xml_node_attr(iq, "id") : NULL, buf_data(&b), buf_used(&b));
    buf_free(&b);
    arena_reset(&s->arena);
out:
    free(q);
}

void muc_store_list(struct shard *s, const struct stanza *st)
{
    uint32_t len = frame_len(st);
    struct muc_list_req *q = st->frame ? malloc(sizeof *q + len) : NULL;
    if (!q) {
        out_error(s, st, "wait", "resource-constraint");
        return;
    }
    q->len = len;
    memcpy(q->payload, st->frame, len);
    int rc = store_muc_list_public(s->store, NULL, s->cfg->muc.max_listed, on_list, q);
    if (rc < 0) {
        free(q);
        out_error(s, st, "wait", "resource-constraint"); /* the store's queue is full */
    }
}

void muc_store_free(struct shard *s)
{
    struct muc_shard *m = state(s);
    /* Called before the shard's store client is freed, which releases the requests
     * still in flight without their callbacks: nothing will call on_load() again. (A
     * room list still in flight leaks its copy of the iq, once, at exit.) */
    while (m->loads) {
        struct muc_load *l = m->loads;
        m->loads = l->next;
        while (l->head) {
            struct muc_wait *w = l->head;
            l->head = w->next;
            ticket_defer(s, w->t);
            free(w);
        }
        free(l->jid);
        free(l);
    }
    m->nloads = 0;
}
