/* Unit tests of the message archive's part of the store (common/store/store_mam.c and its
 * back ends, store_sqlite_mam.c and store_pgsql_mam.c): appends in one transaction,
 * queries by with/start/end, pages both ways with count, index and complete, a room as
 * owner, preferences, retention, an account's deletion. Plainly on SQLite; under
 * tests/pg-run on PostgreSQL: the two answer alike. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/store/store_mam.h"
#include "test.h"

#include "store_im_test.h"

#include <unistd.h>

/* Appends for owner a message with id `id` from or to `with`. */
static int add(struct store *st, const char *owner, uint64_t id, const char *with)
{
    char stanza[128];
    snprintf(stanza, sizeof stanza, "<message><body>%llu</body></message>",
             (unsigned long long)id);
    const char *slash = strchr(with, '/');
    struct store_mam_row r = {.owner = owner,
                              .id = id,
                              .with = with,
                              .with_bare_len = slash ? (size_t)(slash - with) : strlen(with),
                              .stanza = stanza,
                              .len = strlen(stanza)};
    return store_mam_append_sync(st, &r, 1);
}

/* A page as "count index complete: id id ...". */
static const char *page(struct store *st, const struct store_mam_query *q)
{
    static char out[512];
    struct store_mam_page p;
    int rc = store_mam_query_sync(st, q, &p);
    if (rc < 0) {
        snprintf(out, sizeof out, "error %d", rc);
        return out;
    }
    size_t o = (size_t)snprintf(out, sizeof out, "%zu %zu %s:", p.count, p.index,
                                p.complete ? "complete" : "more");
    for (size_t i = 0; i < p.n && o < sizeof out; i++) {
        char want[64];
        snprintf(want, sizeof want, "<message><body>%llu</body></message>",
                 (unsigned long long)p.msgs[i].id);
        if (p.msgs[i].len != strlen(want) || memcmp(p.msgs[i].stanza, want, p.msgs[i].len))
            TEST_FAIL("message %llu has the wrong stanza", (unsigned long long)p.msgs[i].id);
        o += (size_t)snprintf(out + o, sizeof out - o, " %llu", (unsigned long long)p.msgs[i].id);
    }
    store_mam_page_free(&p);
    return out;
}

static void filters(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("mam_filters", users);
    if (!st)
        return;
    CHECK_INT(add(st, "juliet", 10, "romeo@example.com/orchard"), ==, 1);
    CHECK_INT(add(st, "juliet", 20, "romeo@example.com/balcony"), ==, 1);
    CHECK_INT(add(st, "juliet", 30, "nurse@example.com"), ==, 1);
    CHECK_INT(add(st, "juliet", 40, "romeo@example.com/orchard"), ==, 1);
    /* Another archive's rows are not juliet's. */
    CHECK_INT(add(st, "romeo", 15, "juliet@example.com/a"), ==, 1);
    /* The same id twice in one archive: stored once. */
    CHECK_INT(add(st, "juliet", 40, "nurse@example.com"), ==, 0);

    struct store_mam_query q = {.owner = "juliet", .max = 10};
    CHECK_STR(page(st, &q), "4 0 complete: 10 20 30 40");
    q.with = "romeo@example.com"; /* bare: every resource */
    CHECK_STR(page(st, &q), "3 0 complete: 10 20 40");
    q.with = "romeo@example.com/orchard"; /* full: that one only */
    CHECK_STR(page(st, &q), "2 0 complete: 10 40");
    q.with = NULL;
    q.start = 20;
    q.end = 30;
    CHECK_STR(page(st, &q), "2 0 complete: 20 30");
    q.start = q.end = 0;
    q.owner = "nobody";
    CHECK_STR(page(st, &q), "0 0 complete:");
    store_close(st);
}

static void paging(void)
{
    struct store *st = fresh("mam_paging", NULL);
    if (!st)
        return;
    /* A room's archive: no account needed. */
    const char *room = "lobby@conference.example.com";
    for (uint64_t id = 1; id <= 7; id++)
        CHECK_INT(add(st, room, id, "lobby@conference.example.com/nick"), ==, 1);
    struct store_mam_query q = {.owner = room, .max = 3};
    CHECK_STR(page(st, &q), "7 0 more: 1 2 3");
    q.after = 3;
    CHECK_STR(page(st, &q), "7 3 more: 4 5 6");
    q.after = 6;
    CHECK_STR(page(st, &q), "7 6 complete: 7");
    /* Backwards: the last page, then the one before it. */
    q.after = 0;
    q.last = true;
    CHECK_STR(page(st, &q), "7 4 more: 5 6 7");
    q.before = 5;
    CHECK_STR(page(st, &q), "7 1 more: 2 3 4");
    q.before = 2;
    CHECK_STR(page(st, &q), "7 0 complete: 1");
    /* max 0: only the count. */
    q = (struct store_mam_query){.owner = room, .max = 0};
    CHECK_STR(page(st, &q), "7 0 more:");
    q.max = STORE_MAM_PAGE_MAX + 1;
    CHECK_STR(page(st, &q), "error -22");
    store_close(st);
}

static void batch_and_expire(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    struct store *st = fresh("mam_batch", users);
    if (!st)
        return;
    struct store_mam_row rows[100];
    const char *stanza = "<message><body>x</body></message>";
    for (size_t i = 0; i < 100; i++)
        rows[i] = (struct store_mam_row){.owner = i % 2 ? "juliet" : "romeo",
                                         .id = 1000 + i,
                                         .with = "nurse@example.com",
                                         .with_bare_len = 17,
                                         .stanza = stanza,
                                         .len = strlen(stanza)};
    CHECK_INT(store_mam_append_sync(st, rows, 100), ==, 100);
    /* All or nothing: a bad row refuses the batch. */
    rows[50].len = 0;
    CHECK_INT(store_mam_append_sync(st, rows, 100), ==, -EINVAL);
    uint64_t last;
    CHECK_INT(store_mam_last_sync(st, &last), ==, 0);
    CHECK_INT(last, ==, 1099);
    /* Retention: below 1050, in chunks. */
    CHECK_INT(store_mam_expire_sync(st, 1050, 30), ==, 30);
    CHECK_INT(store_mam_expire_sync(st, 1050, 30), ==, 20);
    CHECK_INT(store_mam_expire_sync(st, 1050, 30), ==, 0);
    struct store_mam_page p;
    struct store_mam_query q = {.owner = "juliet", .max = 100};
    CHECK_INT(store_mam_query_sync(st, &q, &p), ==, 0);
    CHECK_INT(p.count, ==, 25);
    CHECK_INT(p.msgs[0].id, ==, 1051);
    store_mam_page_free(&p);
    /* Deleting the account deletes its archive, not the others'. */
    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, 0);
    CHECK_INT(store_mam_query_sync(st, &q, &p), ==, 0);
    CHECK_INT(p.count, ==, 0);
    q.owner = "romeo";
    CHECK_INT(store_mam_query_sync(st, &q, &p), ==, 0);
    CHECK_INT(p.count, ==, 25);
    store_mam_page_free(&p);
    store_close(st);
}

static void prefs(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("mam_prefs", users);
    if (!st)
        return;
    struct store_mam_prefs p;
    CHECK_INT(store_mam_prefs_get_sync(st, "juliet", &p), ==, 0);
    CHECK(!p.stored);
    const char *jids[] = {"romeo@example.com", "tybalt@example.com", "nurse@example.com"};
    const bool always[] = {true, false, true};
    struct store_mam_prefs in = {.dflt = STORE_MAM_ROSTER, .n = 3, .jids = jids, .always = always};
    CHECK_INT(store_mam_prefs_set_sync(st, "juliet", &in), ==, 0);
    CHECK_INT(store_mam_prefs_get_sync(st, "juliet", &p), ==, 0);
    CHECK(p.stored);
    CHECK_INT(p.dflt, ==, STORE_MAM_ROSTER);
    CHECK_INT(p.n, ==, 3);
    if (p.n == 3) {
        CHECK_STR(p.jids[0], "romeo@example.com");
        CHECK(p.always[0] && !p.always[1] && p.always[2]);
        CHECK_STR(p.jids[1], "tybalt@example.com");
    }
    store_mam_prefs_free(&p);
    /* Replaced whole; a JID with a newline would break the stored form: refused. */
    in = (struct store_mam_prefs){.dflt = STORE_MAM_NEVER};
    CHECK_INT(store_mam_prefs_set_sync(st, "juliet", &in), ==, 0);
    CHECK_INT(store_mam_prefs_get_sync(st, "juliet", &p), ==, 0);
    CHECK(p.stored && p.dflt == STORE_MAM_NEVER && p.n == 0);
    store_mam_prefs_free(&p);
    const char *bad[] = {"a\nb@example.com"};
    in = (struct store_mam_prefs){.n = 1, .jids = bad, .always = always};
    CHECK_INT(store_mam_prefs_set_sync(st, "juliet", &in), ==, -EINVAL);
    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, 0);
    CHECK_INT(store_mam_prefs_get_sync(st, "juliet", &p), ==, 0);
    CHECK(!p.stored);
    store_close(st);
}

/* The asynchronous path: an append, then a query on the same client sees it (one
 * worker, requests in order), without waiting between the two. */
static int appended = -1000, calls;
static char got[64];

static void on_appended(void *arg, int res)
{
    (void)arg;
    appended = res;
    calls++;
}

static void on_page(void *arg, int res, const struct store_mam_page *p)
{
    (void)arg;
    snprintf(got, sizeof got, "%d %zu", res, res == 0 ? p->n : 0);
    calls++;
}

static void async_in_order(void)
{
    struct store *st = fresh("mam_async", NULL);
    struct store_client *cl;
    if (!st || store_client_new(st, &cl) < 0)
        return;
    struct store_mam_row r = {.owner = "lobby@conference.example.com",
                              .id = 5,
                              .with = "lobby@conference.example.com/x",
                              .with_bare_len = 28,
                              .stanza = "<message/>",
                              .len = 10};
    CHECK_INT(store_mam_append(cl, &r, 1, on_appended, NULL), ==, 0);
    struct store_mam_query q = {.owner = r.owner, .max = 5};
    CHECK_INT(store_mam_query(cl, &q, on_page, NULL), ==, 0);
    CHECK_INT(poll_until(cl, &calls, 2), ==, 2);
    CHECK_INT(appended, ==, 1);
    CHECK_STR(got, "0 1");
    store_client_free(cl);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    log_init("store-mam-test", LOG_LEVEL_WARN);
    RUN(filters);
    RUN(paging);
    RUN(batch_and_expire);
    RUN(prefs);
    RUN(async_in_order);
    tmpdir_remove();
    return test_done("store_mam");
}
