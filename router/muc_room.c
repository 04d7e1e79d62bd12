/*
 * muc_room.c: a room's tables (occupants, affiliations, history) and the rules of
 * XEP-0045 §5 on who may do what. Pure: no I/O, no shard; the unit tests drive it.
 */
#include "router/muc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};
static const char *const aff_names[] = {"outcast", "none", "member", "admin", "owner"};

const char *muc_role_name(enum muc_role r)
{
    return role_names[r];
}

const char *muc_aff_name(enum muc_aff a)
{
    return aff_names[a];
}

int muc_role_parse(const char *name)
{
    for (int i = 0; name && i < 4; i++)
        if (!strcmp(name, role_names[i]))
            return i;
    return -1;
}

int muc_aff_parse(const char *name)
{
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, aff_names[i]))
            return i;
    return -1;
}

/* ---- the shard's rooms ---- */

int muc_table_init(struct muc_table *t)
{
    t->mask = 63;
    t->count = 0;
    t->buckets = calloc(t->mask + 1, sizeof *t->buckets);
    return t->buckets ? 0 : -ENOMEM;
}

static void room_free(struct muc_room *r)
{
    while (r->occupants)
        muc_occ_remove(r, r->occupants);
    while (r->affs) {
        struct muc_aff_item *a = r->affs;
        r->affs = a->next;
        free(a);
    }
    while (r->hist_head) {
        struct muc_hist *h = r->hist_head;
        r->hist_head = h->next;
        free(h);
    }
    muc_config_free(&r->cfg);
    free(r->subject);
    free(r->subject_nick);
    free(r->jid);
    free(r);
}

void muc_table_free(struct muc_table *t)
{
    for (size_t i = 0; t->buckets && i <= t->mask; i++)
        while (t->buckets[i]) {
            struct muc_room *r = t->buckets[i];
            t->buckets[i] = r->next;
            room_free(r);
        }
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

struct muc_room *muc_room_find(const struct muc_table *t, uint64_t key, const char *jid, size_t len)
{
    for (struct muc_room *r = t->buckets[key & t->mask]; r; r = r->next)
        if (r->key == key && r->jid_len == len && !memcmp(r->jid, jid, len))
            return r;
    return NULL;
}

static void grow(struct muc_table *t)
{
    size_t mask = t->mask * 2 + 1;
    struct muc_room **b = calloc(mask + 1, sizeof *b);
    if (!b)
        return; /* longer chains: still correct */
    for (size_t i = 0; i <= t->mask; i++)
        while (t->buckets[i]) {
            struct muc_room *r = t->buckets[i];
            t->buckets[i] = r->next;
            r->next = b[r->key & mask];
            b[r->key & mask] = r;
        }
    free(t->buckets);
    t->buckets = b;
    t->mask = mask;
}

struct muc_room *muc_room_add(struct muc_table *t, uint64_t key, const char *jid, size_t len,
                              uint32_t maxusers)
{
    struct muc_room *r = calloc(1, sizeof *r);
    if (!r || !(r->jid = malloc(len + 1))) {
        free(r);
        return NULL;
    }
    memcpy(r->jid, jid, len);
    r->jid[len] = '\0';
    r->jid_len = (uint16_t)len;
    r->key = key;
    r->cfg.maxusers = maxusers;
    r->cfg.public_room = true;
    r->cfg.allow_invites = true;
    if (t->count >= t->mask)
        grow(t);
    r->next = t->buckets[key & t->mask];
    t->buckets[key & t->mask] = r;
    t->count++;
    return r;
}

void muc_room_remove(struct muc_table *t, struct muc_room *r)
{
    struct muc_room **pp = &t->buckets[r->key & t->mask];
    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = r->next;
        t->count--;
    }
    room_free(r);
}

void muc_config_free(struct muc_config *c)
{
    free(c->name);
    free(c->desc);
    free(c->password);
    c->name = c->desc = c->password = NULL;
}

/* ---- occupants ---- */

struct muc_occupant *muc_occ_by_nick(const struct muc_room *r, const char *nick, size_t len)
{
    for (struct muc_occupant *o = r->occupants; o; o = o->next)
        if (o->nick_len == len && !memcmp(o->nick, nick, len))
            return o;
    return NULL;
}

struct muc_occupant *muc_occ_by_jid(const struct muc_room *r, const char *jid, size_t len)
{
    for (struct muc_occupant *o = r->occupants; o; o = o->next)
        if (o->jid_len == len && !memcmp(o->jid, jid, len))
            return o;
    return NULL;
}

static char *dup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

struct muc_occupant *muc_occ_add(struct muc_room *r, const char *nick, size_t nick_len,
                                 const char *jid, size_t jid_len, size_t bare_len, uint64_t conn)
{
    struct muc_occupant *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    if (!(o->nick = dup(nick, nick_len)) || !(o->jid = dup(jid, jid_len))) {
        free(o->nick);
        free(o);
        return NULL;
    }
    o->nick_len = (uint16_t)nick_len;
    o->jid_len = (uint16_t)jid_len;
    o->bare_len = (uint16_t)bare_len;
    o->conn = conn;
    /* At the end: presence to a new occupant goes in the order occupants came. */
    struct muc_occupant **pp = &r->occupants;
    while (*pp)
        pp = &(*pp)->next;
    *pp = o;
    r->noccupants++;
    return o;
}

void muc_occ_remove(struct muc_room *r, struct muc_occupant *o)
{
    struct muc_occupant **pp = &r->occupants;
    while (*pp && *pp != o)
        pp = &(*pp)->next;
    if (!*pp)
        return;
    *pp = o->next;
    r->noccupants--;
    free(o->nick);
    free(o->jid);
    free(o->pres);
    free(o);
}

int muc_occ_set_nick(struct muc_occupant *o, const char *nick, size_t len)
{
    char *n = dup(nick, len);
    if (!n)
        return -ENOMEM;
    free(o->nick);
    o->nick = n;
    o->nick_len = (uint16_t)len;
    return 0;
}

int muc_occ_set_pres(struct muc_occupant *o, const char *p, size_t len)
{
    char *n = len ? dup(p, len) : NULL;
    if (len && !n)
        return -ENOMEM;
    free(o->pres);
    o->pres = n;
    o->pres_len = (uint32_t)len;
    return 0;
}

/* ---- affiliations ---- */

static struct muc_aff_item **aff_find(struct muc_room *r, const char *jid, size_t len)
{
    struct muc_aff_item **pp = &r->affs;
    while (*pp && !((*pp)->len == len && !memcmp((*pp)->jid, jid, len)))
        pp = &(*pp)->next;
    return pp;
}

enum muc_aff muc_aff_of(const struct muc_room *r, const char *jid, size_t len)
{
    const char *slash = memchr(jid, '/', len);
    size_t blen = slash ? (size_t)(slash - jid) : len;
    const char *at = memchr(jid, '@', blen);
    const char *dom = at ? at + 1 : jid;
    size_t dlen = (size_t)(jid + blen - dom);
    int domain_aff = -1;
    for (const struct muc_aff_item *a = r->affs; a; a = a->next) {
        if (a->len == blen && !memcmp(a->jid, jid, blen))
            return (enum muc_aff)a->aff;
        if (a->len == dlen && !memcmp(a->jid, dom, dlen))
            domain_aff = a->aff;
    }
    return domain_aff >= 0 ? (enum muc_aff)domain_aff : MUC_AFF_NONE;
}

int muc_aff_set(struct muc_room *r, const char *bare, size_t len, enum muc_aff a, uint32_t max)
{
    struct muc_aff_item **pp = aff_find(r, bare, len);
    if (a == MUC_AFF_NONE) {
        if (*pp) {
            struct muc_aff_item *it = *pp;
            *pp = it->next;
            free(it);
            r->naffs--;
        }
        return 0;
    }
    if (*pp) {
        (*pp)->aff = (uint8_t)a;
        return 0;
    }
    if (r->naffs >= max)
        return -EDQUOT;
    struct muc_aff_item *it = malloc(sizeof *it + len);
    if (!it)
        return -ENOMEM;
    it->next = NULL;
    it->aff = (uint8_t)a;
    it->len = (uint16_t)len;
    memcpy(it->jid, bare, len);
    *pp = it;
    r->naffs++;
    return 0;
}

enum muc_role muc_role_default(const struct muc_room *r, enum muc_aff a)
{
    if (a >= MUC_AFF_ADMIN)
        return MUC_ROLE_MODERATOR;
    if (a == MUC_AFF_OUTCAST)
        return MUC_ROLE_NONE;
    if (r->cfg.moderated && a == MUC_AFF_NONE)
        return MUC_ROLE_VISITOR;
    return MUC_ROLE_PARTICIPANT;
}

bool muc_may_set_role(enum muc_role actor_role, enum muc_aff actor_aff, enum muc_aff target_aff,
                      enum muc_role target_role, enum muc_role to)
{
    if (actor_role != MUC_ROLE_MODERATOR)
        return false;
    /* An admin's or owner's role follows its affiliation: it is a moderator while in the
     * room, and nobody kicks it (§8.2) or takes its voice. */
    if (target_aff >= MUC_AFF_ADMIN)
        return false;
    /* Granting or taking moderator status is for admins and owners (§9.6, §9.7). */
    if ((to == MUC_ROLE_MODERATOR || target_role == MUC_ROLE_MODERATOR) &&
        actor_aff < MUC_AFF_ADMIN)
        return false;
    return true;
}

bool muc_may_set_aff(enum muc_aff actor, enum muc_aff from, enum muc_aff to)
{
    if (actor == MUC_AFF_OWNER)
        return true; /* the last owner's case is the caller's */
    if (actor != MUC_AFF_ADMIN)
        return false;
    /* An admin manages members and outcasts, never admins and owners (§9, §10). */
    return from < MUC_AFF_ADMIN && to < MUC_AFF_ADMIN;
}

/* ---- history ---- */

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

int muc_hist_add(struct muc_room *r, const char *stanza, size_t len, time_t at, uint32_t max_n,
                 uint32_t max_bytes)
{
    if (!max_n || len > max_bytes)
        return 0;
    struct muc_hist *h = malloc(sizeof *h + len);
    if (!h)
        return -ENOMEM;
    h->next = NULL;
    h->at = at;
    h->len = (uint32_t)len;
    h->chars = (uint32_t)utf8_chars(stanza, len);
    memcpy(h->stanza, stanza, len);
    if (r->hist_tail)
        r->hist_tail->next = h;
    else
        r->hist_head = h;
    r->hist_tail = h;
    r->nhist++;
    r->hist_bytes += (uint32_t)len;
    while (r->nhist > max_n || r->hist_bytes > max_bytes) {
        struct muc_hist *old = r->hist_head;
        r->hist_head = old->next;
        if (!r->hist_head)
            r->hist_tail = NULL;
        r->nhist--;
        r->hist_bytes -= old->len;
        free(old);
    }
    return 0;
}

const struct muc_hist *muc_hist_from(const struct muc_room *r, long maxstanzas, long maxchars,
                                     time_t since)
{
    /* Walk from the oldest: skip while what remains after it is still over a bound. */
    long n = 0, chars = 0;
    for (const struct muc_hist *h = r->hist_head; h; h = h->next)
        if (h->at >= since) {
            n++;
            chars += h->chars;
        }
    const struct muc_hist *h = r->hist_head;
    while (h && (h->at < since || (maxstanzas >= 0 && n > maxstanzas) ||
                 (maxchars >= 0 && chars > maxchars))) {
        if (h->at >= since) {
            n--;
            chars -= h->chars;
        }
        h = h->next;
    }
    return h;
}
