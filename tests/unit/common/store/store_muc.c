/* Unit tests of common/store/store_muc.c and its back ends (store_sqlite_muc.c,
 * store_pgsql_muc.c): the chat service's persistent rooms, on SQLite and (under
 * tests/pg-run) PostgreSQL. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/store/store_muc.h"
#include "test.h"

#include "store_im_test.h"

static const char *opt(const char *s)
{
    return s ? s : "-";
}

/* The room as "name|desc|password|maxusers|flags|subject|nick|aff:jid ...". */
static const char *room_of(struct store *st, const char *jid)
{
    static struct text t;
    struct store_muc_room r;
    t.n = 0;
    t.s[0] = '\0';
    int rc = store_muc_load_sync(st, jid, &r);
    if (rc < 0) {
        text_add(&t, "error %d", rc);
        return t.s;
    }
    text_add(&t, "%s|%s|%s|%s|%u|%u|%s|%s|", r.jid, opt(r.name), opt(r.desc), opt(r.password),
             r.maxusers, r.flags, opt(r.subject), opt(r.subject_nick));
    for (size_t i = 0; i < r.naffs; i++)
        text_add(&t, "%s%u:%s", i ? " " : "", r.affs[i].aff, r.affs[i].jid);
    store_muc_room_free(&r);
    return t.s;
}

static const char *list_of(struct store *st, const char *after, size_t limit)
{
    static struct text t;
    struct store_muc_list l;
    t.n = 0;
    t.s[0] = '\0';
    int rc = store_muc_list_public_sync(st, after, limit, &l);
    if (rc < 0) {
        text_add(&t, "error %d", rc);
        return t.s;
    }
    for (size_t i = 0; i < l.n; i++)
        text_add(&t, "%s%s=%s", i ? " " : "", l.items[i].jid, opt(l.items[i].name));
    store_muc_list_free(&l);
    return t.s;
}

static void put_load_delete(void)
{
    struct store *st = fresh("muc", NULL);
    if (!st)
        return;
    CHECK_TEXT(room_of(st, "hall@conference.lit"), "error -2");
    struct store_muc_aff affs[] = {{"juliet@capulet.lit", STORE_MUC_OWNER},
                                   {"romeo@montague.lit", STORE_MUC_MEMBER},
                                   {"tybalt@capulet.lit", STORE_MUC_OUTCAST},
                                   {"nurse@capulet.lit", STORE_MUC_ADMIN}};
    struct store_muc_room r = {.jid = "hall@conference.lit",
                               .name = "The Hall",
                               .desc = "",
                               .password = "secret",
                               .maxusers = 30,
                               .flags = STORE_MUC_PERSISTENT | STORE_MUC_MEMBERSONLY,
                               .subject = "Masks <&> dancing",
                               .subject_nick = "juliet",
                               .naffs = 4,
                               .affs = affs};
    CHECK_INT(store_muc_put_sync(st, &r), ==, 0);
    CHECK_TEXT(room_of(st, "hall@conference.lit"),
               "hall@conference.lit|The Hall|-|secret|30|3|Masks <&> dancing|juliet|"
               "4:juliet@capulet.lit 2:romeo@montague.lit 0:tybalt@capulet.lit "
               "3:nurse@capulet.lit");
    /* A put replaces the row whole. */
    r.name = NULL;
    r.password = NULL;
    r.subject = r.subject_nick = NULL;
    r.flags = STORE_MUC_PERSISTENT | STORE_MUC_PUBLIC;
    r.naffs = 1;
    CHECK_INT(store_muc_put_sync(st, &r), ==, 0);
    CHECK_TEXT(room_of(st, "hall@conference.lit"),
               "hall@conference.lit|-|-|-|30|9|-|-|4:juliet@capulet.lit");
    r.naffs = 0;
    r.jid = "crypt@conference.lit";
    r.flags = STORE_MUC_PERSISTENT;
    CHECK_INT(store_muc_put_sync(st, &r), ==, 0);
    CHECK_TEXT(room_of(st, "crypt@conference.lit"), "crypt@conference.lit|-|-|-|30|1|-|-|");
    CHECK_INT(sql1(db_path("muc"), "SELECT count(*) FROM muc_rooms"), ==, 2);
    /* Delete: 1, then 0. */
    CHECK_INT(store_muc_delete_sync(st, "crypt@conference.lit"), ==, 1);
    CHECK_INT(store_muc_delete_sync(st, "crypt@conference.lit"), ==, 0);
    CHECK_TEXT(room_of(st, "crypt@conference.lit"), "error -2");
    CHECK_TEXT(room_of(st, "hall@conference.lit"),
               "hall@conference.lit|-|-|-|30|9|-|-|4:juliet@capulet.lit");
    /* Bad arguments. */
    CHECK_INT(store_muc_delete_sync(st, ""), ==, -EINVAL);
    r.jid = "bad\nroom@conference.lit";
    CHECK_INT(store_muc_put_sync(st, &r), ==, -EINVAL);
    r.jid = "x@conference.lit";
    r.flags = 0x80;
    CHECK_INT(store_muc_put_sync(st, &r), ==, -EINVAL);
    r.flags = 0;
    struct store_muc_aff bad[] = {{"a@b", 1}};
    r.affs = bad;
    r.naffs = 1;
    CHECK_INT(store_muc_put_sync(st, &r), ==, -EINVAL);
    bad[0] = (struct store_muc_aff){"a\n@b", STORE_MUC_MEMBER};
    CHECK_INT(store_muc_put_sync(st, &r), ==, -EINVAL);
    /* Stored lines that are not the form are a failure, not a room. */
    CHECK_INT(sql1(db_path("muc"), "UPDATE muc_rooms SET affs = '9x\n'"), ==, 0);
    CHECK_TEXT(room_of(st, "hall@conference.lit"), "error -5");
    store_close(st);
}

static void list_public(void)
{
    struct store *st = fresh("muclist", NULL);
    if (!st)
        return;
    CHECK_TEXT(list_of(st, NULL, 10), "");
    const char *jids[] = {"d@c.lit", "a@c.lit", "c@c.lit", "b@c.lit"};
    const char *names[] = {"Dee", NULL, "Cee", "Bee"};
    uint32_t flags[] = {STORE_MUC_PUBLIC, STORE_MUC_PUBLIC | STORE_MUC_PERSISTENT,
                        STORE_MUC_PERSISTENT, STORE_MUC_PUBLIC | STORE_MUC_MODERATED};
    for (int i = 0; i < 4; i++) {
        struct store_muc_room r = {.jid = jids[i], .name = names[i], .flags = flags[i]};
        CHECK_INT(store_muc_put_sync(st, &r), ==, 0);
    }
    CHECK_TEXT(list_of(st, NULL, 10), "a@c.lit=- b@c.lit=Bee d@c.lit=Dee");
    CHECK_TEXT(list_of(st, "", 2), "a@c.lit=- b@c.lit=Bee");
    CHECK_TEXT(list_of(st, "b@c.lit", 2), "d@c.lit=Dee");
    CHECK_TEXT(list_of(st, NULL, 0), "error -22");
    CHECK_TEXT(list_of(st, NULL, STORE_MUC_LIST_MAX + 1), "error -22");
    store_close(st);
}

struct got {
    int res, calls;
    char text[256];
};

static void on_load(void *arg, int res, const struct store_muc_room *r)
{
    struct got *g = arg;
    g->res = res;
    g->calls++;
    if (res == 0)
        snprintf(g->text, sizeof g->text, "%s %s %zu %s", r->jid, opt(r->subject), r->naffs,
                 r->naffs ? r->affs[0].jid : "-");
}

static void on_list(void *arg, int res, const struct store_muc_list *l)
{
    struct got *g = arg;
    g->res = res;
    g->calls++;
    if (res == 0)
        snprintf(g->text, sizeof g->text, "%zu %s", l->n, l->n ? opt(l->items[0].name) : "-");
}

static void on_done(void *arg, int res)
{
    struct got *g = arg;
    g->res = res;
    g->calls++;
}

static void async_path(void)
{
    struct store *st = fresh("mucasync", NULL);
    struct store_client *cl;
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    struct got put = {0}, load = {0}, gone = {0}, list = {0}, del = {0};
    char jid[64], subject[16], owner[32];
    /* The request is a copy: the caller's strings may go at once. */
    snprintf(jid, sizeof jid, "hall@conference.lit");
    snprintf(subject, sizeof subject, "Masks");
    snprintf(owner, sizeof owner, "juliet@capulet.lit");
    struct store_muc_aff affs[] = {{owner, STORE_MUC_OWNER}};
    struct store_muc_room r = {.jid = jid,
                               .name = "Hall",
                               .flags = STORE_MUC_PERSISTENT | STORE_MUC_PUBLIC,
                               .subject = subject,
                               .naffs = 1,
                               .affs = affs};
    CHECK_INT(store_muc_put(cl, &r, on_done, &put), ==, 0);
    memset(jid, 'x', 8);
    memset(subject, 'y', 5);
    memset(owner, 'z', 6);
    CHECK_INT(store_muc_load(cl, "hall@conference.lit", on_load, &load), ==, 0);
    CHECK_INT(store_muc_list_public(cl, NULL, 5, on_list, &list), ==, 0);
    CHECK_INT(store_muc_delete(cl, "hall@conference.lit", on_done, &del), ==, 0);
    CHECK_INT(store_muc_load(cl, "hall@conference.lit", on_load, &gone), ==, 0);
    CHECK_INT(store_muc_load(cl, "", on_load, &gone), ==, -EINVAL);
    CHECK_INT(poll_until(cl, &gone.calls, 1), ==, 1);
    CHECK_INT(put.res, ==, 0);
    CHECK_INT(load.res, ==, 0);
    CHECK_STR(load.text, "hall@conference.lit Masks 1 juliet@capulet.lit");
    CHECK_INT(list.res, ==, 0);
    CHECK_STR(list.text, "1 Hall");
    CHECK_INT(del.res, ==, 1);
    CHECK_INT(gone.res, ==, -ENOENT);
    store_client_free(cl);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    log_init("store-muc-test", LOG_LEVEL_WARN);
    RUN(put_load_delete);
    RUN(list_public);
    RUN(async_path);
    tmpdir_remove();
    return test_done("store_muc");
}
