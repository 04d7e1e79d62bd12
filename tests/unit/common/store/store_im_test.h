/*
 * Helpers shared by the instant-messaging store tests (store_im.c, store_sqlite_im.c):
 * results as text (roster_text() and friends), so that a sync result, an async one and
 * the expected value read alike, and sync shorthands. Include it once, after
 * store_test.h.
 */
#ifndef STARLING_STORE_IM_TEST_H
#define STARLING_STORE_IM_TEST_H

#include "store_test.h"

#include <stdarg.h>

/* test.h's CHECK_STR evaluates its first argument twice; the calls here have effects
 * (they read the database, and fill one static buffer), so once it must be. */
#define CHECK_TEXT(expr, want)                                                                     \
    do {                                                                                           \
        const char *got_ = (expr), *want_ = (want);                                                \
        if (strcmp(got_, want_) != 0)                                                              \
            TEST_FAIL("%s is '%s', expected '%s'", #expr, got_, want_);                            \
    } while (0)

/* ---- results as text --------------------------------------------------------------------- */

struct text {
    char s[16384];
    size_t n;
};

static inline void text_add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->s + t->n, sizeof t->s - t->n, fmt, ap);
    va_end(ap);
    if (k > 0)
        t->n = t->n + (size_t)k < sizeof t->s ? t->n + (size_t)k : sizeof t->s - 1;
}

static const char *const sub_names[] = {"none", "to", "from", "both"};

/* "ver: jid(name)/sub/flags/ver[g,g] ..." with flags a (ask), p (pending in), v
 * (approved), h (hidden) or '-' each, and name ~ when there is none. */
static inline const char *roster_text(const struct store_roster *r)
{
    static struct text t;
    t.n = 0;
    t.s[0] = '\0';
    text_add(&t, "%llu:", (unsigned long long)r->ver);
    for (size_t i = 0; i < r->n; i++) {
        const struct store_roster_item *it = &r->items[i];
        text_add(&t, " %s(%s)/%s/%c%c%c%c/%llu[", it->jid, it->name ? it->name : "~",
                 it->sub < 4 ? sub_names[it->sub] : "?", it->ask ? 'a' : '-',
                 it->pending_in ? 'p' : '-', it->approved ? 'v' : '-', it->hidden ? 'h' : '-',
                 (unsigned long long)it->ver);
        for (size_t g = 0; g < it->ngroups; g++)
            text_add(&t, "%s%s", g ? "," : "", it->groups[g]);
        text_add(&t, "]");
    }
    for (size_t i = 0; i < r->blocked.n; i++)
        text_add(&t, "%s%s", i ? "," : " blocked:", r->blocked.names[i]);
    if (r->offline)
        text_add(&t, " offline");
    return t.s;
}

/* "jid=stanza ..." */
static inline const char *subreqs_text(const struct store_subreqs *l)
{
    static struct text t;
    t.n = 0;
    t.s[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        text_add(&t, "%s%s=%.*s", i ? " " : "", l->items[i].jid, (int)l->items[i].len,
                 l->items[i].stanza);
    return t.s;
}

/* "stanza stanza ..." (seqs and stamps are checked apart: they are not known ahead). */
static inline const char *offline_text(const struct store_offline *o)
{
    static struct text t;
    t.n = 0;
    t.s[0] = '\0';
    for (size_t i = 0; i < o->n; i++)
        text_add(&t, "%s%.*s", i ? " " : "", (int)o->msgs[i].len, o->msgs[i].stanza);
    return t.s;
}

static inline const char *list_text(const struct store_list *l)
{
    static struct text t;
    t.n = 0;
    t.s[0] = '\0';
    for (size_t i = 0; i < l->n; i++)
        text_add(&t, "%s%s", i ? "," : "", l->names[i]);
    return t.s;
}

/* ---- sync shorthands --------------------------------------------------------------------- */

static inline struct store *fresh(const char *name, const char *const *users)
{
    struct store *st = open_db(db_path(name), 0);
    struct store_creds c = make_creds(1);
    for (size_t i = 0; st && users && users[i]; i++)
        if (store_account_create_sync(st, users[i], &c) != 0)
            TEST_FAIL("creating %s", users[i]);
    return st;
}

static inline const char *roster_of(struct store *st, const char *user)
{
    struct store_roster r;
    int rc = store_roster_get_sync(st, user, &r);
    if (rc != 0)
        return rc == -ENOENT ? "ENOENT" : "error";
    const char *s = roster_text(&r);
    store_roster_free(&r);
    return s;
}

static inline const char *blocks_of(struct store *st, const char *user)
{
    struct store_list l;
    int rc = store_block_list_sync(st, user, &l);
    if (rc != 0)
        return rc == -ENOENT ? "ENOENT" : "error";
    const char *s = list_text(&l);
    store_list_free(&l);
    return s;
}

static inline const char *subreqs_of(struct store *st, const char *user)
{
    struct store_subreqs l;
    int rc = store_subreq_list_sync(st, user, &l);
    if (rc != 0)
        return rc == -ENOENT ? "ENOENT" : "error";
    const char *s = subreqs_text(&l);
    store_subreqs_free(&l);
    return s;
}

static inline const char *offline_of(struct store *st, const char *user, size_t limit)
{
    struct store_offline o;
    int rc = store_offline_fetch_sync(st, user, limit, &o);
    if (rc != 0)
        return rc == -ENOENT ? "ENOENT" : "error";
    const char *s = offline_text(&o);
    store_offline_free(&o);
    return s;
}

/* A quota of max messages in all and from one sender, with bytes to spare. */
#define QUOTA(max) (&(struct store_offline_quota){(max), SIZE_MAX, (max), SIZE_MAX})

static inline int push(struct store *st, const char *user, const char *stanza, size_t max)
{
    return store_offline_push_sync(st, user, "romeo@montague.lit", stanza, strlen(stanza),
                                   QUOTA(max));
}

static inline int push_from(struct store *st, const char *user, const char *sender,
                            const char *stanza, const struct store_offline_quota *q)
{
    return store_offline_push_sync(st, user, sender, stanza, strlen(stanza), q);
}

static inline struct store_roster_item item(const char *jid, const char *name, enum store_sub sub)
{
    return (struct store_roster_item){.jid = jid, .name = name, .sub = (uint8_t)sub};
}

#endif
