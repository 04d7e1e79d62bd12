/* Unit tests of common/store/store_pep.c and its back ends (store_sqlite_pep.c,
 * store_pgsql_pep.c): a user's PEP rows, private XML and vCard, on SQLite and (under
 * tests/pg-run) PostgreSQL. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "test.h"

#include "store_im_test.h"

/* The user's rows as "kind:node:id=data" joined by spaces, oldest first. */
static const char *rows_of(struct store *st, const char *user)
{
    static struct text t;
    struct store_pep p;
    t.n = 0;
    t.s[0] = '\0';
    int rc = store_pep_load_sync(st, user, &p);
    if (rc < 0) {
        text_add(&t, "error %d", rc);
        return t.s;
    }
    for (size_t i = 0; i < p.n; i++)
        text_add(&t, "%s%u:%s:%s=%.*s", i ? " " : "", p.rows[i].kind, p.rows[i].node, p.rows[i].id,
                 (int)p.rows[i].len, p.rows[i].data);
    store_pep_free(&p);
    return t.s;
}

static void put_load_delete(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    struct store *st = fresh("pep", users);
    if (!st)
        return;
    CHECK_TEXT(rows_of(st, "juliet"), "");
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_CONFIG, "n", "", "<c/>", 4, 0), ==, 0);
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "n", "a", "<a/>", 4, 0), ==, 0);
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "n", "b", "<b/>", 4, 0), ==, 0);
    CHECK_INT(
        store_pep_put_sync(st, "juliet", STORE_PEP_PRIVATE, "", "storage:bookmarks", "<s/>", 4, 0),
        ==, 0);
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_VCARD, "", "", "<v/>", 4, 0), ==, 0);
    CHECK_TEXT(rows_of(st, "juliet"),
               "0:n:=<c/> 1:n:a=<a/> 1:n:b=<b/> 2::storage:bookmarks=<s/> 3::=<v/>");
    /* A put replaces, and its row becomes the newest. */
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "n", "a", "<A/>", 4, 0), ==, 0);
    CHECK_TEXT(rows_of(st, "juliet"),
               "0:n:=<c/> 1:n:b=<b/> 2::storage:bookmarks=<s/> 3::=<v/> 1:n:a=<A/>");
    /* keep trims the node's oldest items, and only its items. */
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "m", "x", "<x/>", 4, 0), ==, 0);
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "n", "c", "<c/>", 4, 2), ==, 0);
    CHECK_TEXT(rows_of(st, "juliet"),
               "0:n:=<c/> 2::storage:bookmarks=<s/> 3::=<v/> 1:n:a=<A/> 1:m:x=<x/> 1:n:c=<c/>");
    CHECK_INT(store_pep_delete_sync(st, "juliet", STORE_PEP_ITEM, "n", "a"), ==, 1);
    CHECK_INT(store_pep_delete_sync(st, "juliet", STORE_PEP_ITEM, "n", "a"), ==, 0);
    /* A node whole: its configuration and items, no other node's. */
    CHECK_INT(store_pep_delete_sync(st, "juliet", STORE_PEP_CONFIG, "n", NULL), ==, 2);
    CHECK_TEXT(rows_of(st, "juliet"), "2::storage:bookmarks=<s/> 3::=<v/> 1:m:x=<x/>");
    CHECK_TEXT(rows_of(st, "romeo"), "");
    /* Bad arguments, and no account. */
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, "n", "a", "", 0, 0), ==, -EINVAL);
    CHECK_INT(store_pep_put_sync(st, "juliet", 4, "n", "a", "<a/>", 4, 0), ==, -EINVAL);
    CHECK_INT(store_pep_put_sync(st, "juliet", STORE_PEP_ITEM, NULL, "a", "<a/>", 4, 0), ==,
              -EINVAL);
    CHECK_INT(store_pep_delete_sync(st, "juliet", STORE_PEP_ITEM, "n", NULL), ==, -EINVAL);
    CHECK_INT(store_pep_put_sync(st, "tybalt", STORE_PEP_ITEM, "n", "a", "<a/>", 4, 0), ==,
              -ENOENT);
    CHECK_TEXT(rows_of(st, "tybalt"), "error -2");
    CHECK_INT(store_pep_delete_sync(st, "tybalt", STORE_PEP_CONFIG, "n", NULL), ==, -ENOENT);
    /* Deleting the account deletes its rows. */
    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, 0);
    CHECK_INT(sql1(db_path("pep"), "SELECT count(*) FROM pep"), ==, 0);
    store_close(st);
}

struct got {
    int res, calls;
    char text[256];
};

static void on_load(void *arg, int res, const struct store_pep *p)
{
    struct got *g = arg;
    g->res = res;
    g->calls++;
    if (res == 0 && p->n)
        snprintf(g->text, sizeof g->text, "%zu %s=%.*s", p->n, p->rows[0].id, (int)p->rows[0].len,
                 p->rows[0].data);
}

static void on_done(void *arg, int res)
{
    struct got *g = arg;
    g->res = res;
    g->calls++;
}

static void async_path(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("pepasync", users);
    struct store_client *cl;
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    struct got put = {0}, load = {0};
    CHECK_INT(store_pep_put(cl, "juliet", STORE_PEP_ITEM, "urn:xmpp:avatar:metadata", "h1", "<m/>",
                            4, 1, on_done, &put),
              ==, 0);
    CHECK_INT(store_pep_load(cl, "juliet", on_load, &load), ==, 0);
    CHECK_INT(store_pep_load(cl, "", on_load, &load), ==, -EINVAL);
    CHECK_INT(poll_until(cl, &load.calls, 1), ==, 1);
    CHECK_INT(put.res, ==, 0);
    CHECK_INT(load.res, ==, 0);
    CHECK_STR(load.text, "1 h1=<m/>");
    store_client_free(cl);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    log_init("store-pep-test", LOG_LEVEL_WARN);
    RUN(put_load_delete);
    RUN(async_path);
    tmpdir_remove();
    return test_done("store_pep");
}
