/*
 * session.c: a shard's users and their sessions. Chained hash table keyed by the bare
 * JID's hash (the front end computed it: the frame carries it), doubled when it holds
 * as many users as buckets. A user stays while anything refers to it: a session, a
 * queued frame, or a store call that will look it up again by pointer.
 */
#include "router/router.h"
#include "shm/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_BUCKETS 1024

void users_init(struct user_table *t)
{
    t->buckets = calloc(INITIAL_BUCKETS, sizeof *t->buckets);
    t->mask = t->buckets ? INITIAL_BUCKETS - 1 : 0;
    t->count = 0;
}

static void session_free(struct session *s)
{
    while (s->directed)
        session_directed_drop(s, &s->directed);
    free(s->jid);
    free(s->presence);
    free(s);
}

static void user_free(struct user_table *t, struct user *u)
{
    if (t->shard)
        mod_user_free(t->shard, u);
    while (u->sessions) {
        struct session *s = u->sessions;
        u->sessions = s->next;
        session_free(s);
    }
    while (u->pend_head) {
        struct pending *p = u->pend_head;
        u->pend_head = p->next;
        free(p);
    }
    free(u->bare);
    free(u);
}

void users_free(struct user_table *t)
{
    for (size_t i = 0; t->buckets && i <= t->mask; i++) {
        struct user *u = t->buckets[i];
        while (u) {
            struct user *next = u->next;
            user_free(t, u);
            u = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->mask = t->count = 0;
}

struct user *user_find(struct user_table *t, uint64_t key, const char *bare, size_t len)
{
    if (!t->buckets)
        return NULL;
    for (struct user *u = t->buckets[key & t->mask]; u; u = u->next)
        if (u->key == key && u->bare_len == len && memcmp(u->bare, bare, len) == 0)
            return u;
    return NULL;
}

static void grow(struct user_table *t)
{
    size_t n = (t->mask + 1) * 2;
    struct user **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i <= t->mask; i++) {
        struct user *u = t->buckets[i];
        while (u) {
            struct user *next = u->next;
            u->next = b[u->key & (n - 1)];
            b[u->key & (n - 1)] = u;
            u = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = n - 1;
}

struct user *user_get(struct user_table *t, uint64_t key, const char *bare, size_t len)
{
    struct user *u = user_find(t, key, bare, len);
    if (u || !t->buckets)
        return u;
    const char *at = memchr(bare, '@', len);
    if (!at)
        return NULL; /* a domain has no account */
    u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->bare = malloc(len + 1);
    if (!u->bare) {
        free(u);
        return NULL;
    }
    memcpy(u->bare, bare, len);
    u->bare[len] = '\0';
    u->bare_len = (uint16_t)len;
    u->local_len = (uint16_t)(at - bare);
    u->key = key;
    u->next = t->buckets[key & t->mask];
    t->buckets[key & t->mask] = u;
    if (++t->count > t->mask + 1)
        grow(t);
    return u;
}

void user_release(struct user_table *t, struct user *u)
{
    if (u->sessions || u->pend_head || u->busy || u->state == USER_LOADING)
        return;
    struct user **pp = &t->buckets[u->key & t->mask];
    while (*pp && *pp != u)
        pp = &(*pp)->next;
    if (*pp)
        *pp = u->next;
    t->count--;
    user_free(t, u);
}

struct session *session_find(struct user *u, const char *res, size_t len)
{
    for (struct session *s = u->sessions; s; s = s->next)
        if (s->jid_len == u->bare_len + 1 + len &&
            memcmp(s->jid + u->bare_len + 1, res, len) == 0)
            return s;
    return NULL;
}

struct session *session_by_conn(struct user *u, uint64_t conn)
{
    for (struct session *s = u->sessions; s; s = s->next)
        if (s->conn == conn)
            return s;
    return NULL;
}

struct session *session_add(struct user *u, uint64_t conn, const char *jid, size_t len)
{
    struct session *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->jid = malloc(len + 1);
    if (!s->jid) {
        free(s);
        return NULL;
    }
    memcpy(s->jid, jid, len);
    s->jid[len] = '\0';
    s->jid_len = (uint16_t)len;
    s->conn = conn;
    s->next = u->sessions;
    u->sessions = s;
    if (shard_current)
        shard_current->nsessions++;
    return s;
}

void session_remove(struct user *u, struct session *s)
{
    struct session **pp = &u->sessions;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = s->next;
        if (shard_current)
            shard_current->nsessions--;
    }
    session_free(s);
}

int session_set_presence(struct session *s, const char *p, size_t len, int8_t priority)
{
    char *copy = malloc(len);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, p, len);
    free(s->presence);
    s->presence = copy;
    s->presence_len = (uint32_t)len;
    s->priority = priority;
    s->available = true;
    return 0;
}

void user_localpart(const struct user *u, char *out, size_t cap)
{
    size_t n = u->local_len < cap ? u->local_len : cap - 1;
    memcpy(out, u->bare, n);
    out[n] = '\0';
}

bool session_directed_add(struct session *ss, const char *jid, size_t len)
{
    struct directed *d = malloc(sizeof *d + len);
    if (!d)
        return false;
    d->len = (uint16_t)len;
    memcpy(d->jid, jid, len);
    d->next = ss->directed;
    ss->directed = d;
    ss->ndirected++;
    ss->directed_bytes += 2u + (uint32_t)len;
    return true;
}

void session_directed_drop(struct session *ss, struct directed **pp)
{
    struct directed *d = *pp;
    *pp = d->next;
    ss->ndirected--;
    ss->directed_bytes -= 2u + d->len;
    free(d);
}

void session_restore(struct session *ss, uint8_t flags, const char *list, uint32_t len,
                     uint32_t max_directed)
{
    ss->interested = flags & PROTO_SESSION_ROSTER;
    ss->blocklist_req = flags & PROTO_SESSION_BLOCKLIST;
    ss->carbons = flags & PROTO_SESSION_CARBONS;
    /* The bounds again: the list comes from another process, under a config that may
     * have been larger. */
    const char *p = list, *end = list + len, *jid;
    uint16_t n;
    while (ss->ndirected < max_directed && decode_directed_next(&p, end, &jid, &n) &&
           session_directed_add(ss, jid, n))
        ;
}
