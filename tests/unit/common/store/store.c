/* Unit tests of common/store/store.c and common/store/store_sqlite.c, against real database files
 * in a temporary directory. The database is also opened directly with SQLite to check
 * what the back end promises about the file (schema version, WAL). */
#include "common/core/log.h"
#include "common/store/store.h"
#include "test.h"

#include "store_test.h"

#define SCHEMA_VERSION_SQL BY_BACKEND("PRAGMA user_version", "SELECT version FROM schema_version")
#define SCHEMA_VERSION     BY_BACKEND(6, 6)

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------------------------ */

static void open_creates_schema(void)
{
    const char *path = db_path("schema");
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, SCHEMA_VERSION_SQL), ==, SCHEMA_VERSION);
    CHECK(store_reachable(st)); /* a file always is; a database once connected */
    if (!test_pg)
        CHECK_INT(sql1(path, "PRAGMA journal_mode"), ==, 'w'); /* "wal" */
    CHECK_INT(sql1(path, BY_BACKEND("SELECT count(*) FROM sqlite_schema WHERE name = 'accounts'",
                                    "SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'"
                                    " AND schemaname = current_schema()")),
              ==, 1);
    store_close(st);
}

static void reopen_keeps_data(void)
{
    const char *path = db_path("reopen");
    struct store_creds c = make_creds(5), got;
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(store_account_create_sync(st, "romeo", &c), ==, 0);
    store_close(st);
    st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(store_creds_get_sync(st, "romeo", &got), ==, 0);
    CHECK(creds_eq(&got, &c));
    CHECK_INT(sql1(path, SCHEMA_VERSION_SQL), ==, SCHEMA_VERSION);
    store_close(st);
}

static void newer_schema_refused(void)
{
    const char *path = db_path("newer");
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    store_close(st);
    CHECK_INT(sql1(path, BY_BACKEND("PRAGMA user_version = 99",
                                    "UPDATE schema_version SET version = 99")),
              ==, 0);
    struct store_opts o = db_opts(path);
    st = (struct store *)1;
    CHECK_INT(store_open(&o, &st), ==, -EPROTO);
    CHECK(st == NULL);
}

static void open_errors(void)
{
    struct store *st;
    char path[128];
    snprintf(path, sizeof path, "%s/missing/dir.db", tmpdir);
    struct store_opts o = {.backend = STORE_BACKEND_SQLITE, .path = path};
    CHECK_INT(store_open(&o, &st), ==, -ENOENT);
    o.path = "";
    CHECK_INT(store_open(&o, &st), ==, -EINVAL);
    o.path = NULL;
    CHECK_INT(store_open(&o, &st), ==, -EINVAL);
    o = (struct store_opts){.backend = STORE_BACKEND_POSTGRESQL, .dsn = ""};
    CHECK_INT(store_open(&o, &st), ==, -EINVAL);
    /* Nobody there: tried until the timeout, then refused. */
    snprintf(path, sizeof path, "host=%s/nothing-here dbname=starling", tmpdir);
    o = (struct store_opts){.backend = STORE_BACKEND_POSTGRESQL, .dsn = path, .timeout_ms = 200};
    CHECK_INT(store_open(&o, &st), ==, -ECONNREFUSED);
    /* TLS to PostgreSQL would crash (common/store/store_pgsql.c says why): refused. */
    o = (struct store_opts){.backend = STORE_BACKEND_POSTGRESQL,
                            .dsn = "host=db.example dbname=starling sslmode=require"};
    CHECK_INT(store_open(&o, &st), ==, -ENOTSUP);
    o.dsn = "host=db.example dbname='starling";
    CHECK_INT(store_open(&o, &st), ==, -EINVAL);
    o = (struct store_opts){.backend = (enum store_backend)7, .path = "x"};
    CHECK_INT(store_open(&o, &st), ==, -ENOTSUP);
    snprintf(path, sizeof path, "%s/notadb.db", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("this is not an SQLite database, not even close; it is text.\n", f);
    fclose(f);
    o = (struct store_opts){.backend = STORE_BACKEND_SQLITE, .path = path};
    CHECK_INT(store_open(&o, &st), <, 0);
}

/* ---- the synchronous path ---------------------------------------------------------------- */

static void sync_accounts(void)
{
    const char *path = db_path("sync");
    struct store_creds c1 = make_creds(1), c2 = make_creds(2), got;
    struct store *st = open_db(path, 0);
    if (!st)
        return;

    CHECK_INT(store_creds_get_sync(st, "juliet", &got), ==, -ENOENT);
    CHECK_INT(store_account_create_sync(st, "juliet", &c1), ==, 0);
    CHECK_INT(store_account_create_sync(st, "juliet", &c2), ==, -EEXIST);
    memset(&got, 0xaa, sizeof got);
    CHECK_INT(store_creds_get_sync(st, "juliet", &got), ==, 0);
    CHECK(creds_eq(&got, &c1));

    CHECK_INT(store_creds_set_sync(st, "juliet", &c2), ==, 0);
    CHECK_INT(store_creds_get_sync(st, "juliet", &got), ==, 0);
    CHECK(creds_eq(&got, &c2));
    CHECK_INT(store_creds_set_sync(st, "nobody", &c2), ==, -ENOENT);

    /* Only SCRAM-SHA-256: SHA-1 comes back absent and zeroed, whatever was sent. */
    struct store_creds only256 = make_creds(3);
    only256.sha1.iterations = 0;
    CHECK_INT(store_account_create_sync(st, "nurse", &only256), ==, 0);
    CHECK_INT(store_creds_get_sync(st, "nurse", &got), ==, 0);
    CHECK_INT(got.sha1.iterations, ==, 0);
    CHECK_INT(got.sha1.salt_len, ==, 0);
    CHECK_INT(got.sha1.stored_key[0], ==, 0);
    CHECK(!memcmp(&got.sha256, &only256.sha256, sizeof got.sha256));

    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, 0);
    CHECK_INT(store_creds_get_sync(st, "juliet", &got), ==, -ENOENT);
    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, -ENOENT);
    CHECK_INT(store_account_create_sync(st, "juliet", &c1), ==, 0); /* the name is free again */
    store_close(st);
}

/* Names in byte order, as one string: "a b c". */
static void account_names(struct store *st, char *out, size_t cap)
{
    struct store_list l;
    size_t n = 0;
    out[0] = '\0';
    if (store_account_list_sync(st, NULL, STORE_LIST_MAX, &l) != 0)
        return;
    for (size_t i = 0; i < l.n; i++)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? " " : "", l.names[i]);
    store_list_free(&l);
}

static void import_all_or_nothing(void)
{
    struct store_creds got;
    struct store_account a[] = {
        {"viola", make_creds(1)}, {"sebastian", make_creds(2)}, {"orsino", make_creds(3)}};
    char names[256];
    size_t failed = 99;
    struct store *st = open_db(db_path("import"), 0);
    if (!st)
        return;

    CHECK_INT(store_account_import_sync(st, a, 3, false, &failed), ==, 3);
    account_names(st, names, sizeof names);
    CHECK_STR(names, "orsino sebastian viola");
    CHECK_INT(store_creds_get_sync(st, "sebastian", &got), ==, 0);
    CHECK(creds_eq(&got, &a[1].creds));

    /* An existing account second: -EEXIST naming it, and the first is not created. */
    struct store_account b[] = {
        {"olivia", make_creds(4)}, {"viola", make_creds(5)}, {"malvolio", make_creds(6)}};
    CHECK_INT(store_account_import_sync(st, b, 3, false, &failed), ==, -EEXIST);
    CHECK_INT(failed, ==, 1);
    account_names(st, names, sizeof names);
    CHECK_STR(names, "orsino sebastian viola");
    CHECK_INT(store_creds_get_sync(st, "viola", &got), ==, 0);
    CHECK(creds_eq(&got, &a[0].creds));

    /* A name given twice is the same conflict, at its second place. */
    struct store_account c[] = {
        {"olivia", make_creds(4)}, {"maria", make_creds(7)}, {"olivia", make_creds(8)}};
    CHECK_INT(store_account_import_sync(st, c, 3, false, &failed), ==, -EEXIST);
    CHECK_INT(failed, ==, 2);
    CHECK_INT(store_account_exists_sync(st, "olivia"), ==, -ENOENT);

    /* Invalid arguments are found before anything is written. */
    struct store_account d[] = {{"olivia", make_creds(4)}, {"", make_creds(5)}};
    CHECK_INT(store_account_import_sync(st, d, 2, false, &failed), ==, -EINVAL);
    CHECK_INT(failed, ==, 1);
    d[1].user = "feste";
    d[1].creds.sha1.iterations = d[1].creds.sha256.iterations = 0;
    CHECK_INT(store_account_import_sync(st, d, 2, false, &failed), ==, -EINVAL);
    CHECK_INT(failed, ==, 1);
    CHECK_INT(store_account_import_sync(st, d, 0, false, &failed), ==, -EINVAL);
    CHECK_INT(store_account_import_sync(st, NULL, 1, false, NULL), ==, -EINVAL);
    account_names(st, names, sizeof names);
    CHECK_STR(names, "orsino sebastian viola");

    /* With replace, viola keeps her data under new credentials; only olivia and malvolio
     * are new. */
    struct store_roster_item it = {.jid = "orsino@illyria", .sub = STORE_SUB_BOTH};
    CHECK_INT(store_roster_put_sync(st, "viola", &it, NULL), ==, 0);
    CHECK_INT(store_account_import_sync(st, b, 3, true, &failed), ==, 2);
    CHECK_INT(store_creds_get_sync(st, "viola", &got), ==, 0);
    CHECK(creds_eq(&got, &b[1].creds));
    CHECK_INT(store_roster_count_sync(st, "viola"), ==, 1);
    account_names(st, names, sizeof names);
    CHECK_STR(names, "malvolio olivia orsino sebastian viola");
    store_close(st);
}

static void invalid_arguments(void)
{
    struct store_creds c = make_creds(1), bad;
    static char longname[STORE_USER_MAX + 2];
    struct store_list l;
    struct store *st = open_db(db_path("invalid"), 0);
    if (!st)
        return;
    memset(longname, 'a', STORE_USER_MAX + 1);

    CHECK_INT(store_account_create_sync(st, "", &c), ==, -EINVAL);
    CHECK_INT(store_account_create_sync(st, NULL, &c), ==, -EINVAL);
    CHECK_INT(store_account_create_sync(st, longname, &c), ==, -EINVAL);
    CHECK_INT(store_account_create_sync(st, "\xc0\xaf", &c), ==, -EINVAL);     /* overlong */
    CHECK_INT(store_account_create_sync(st, "\xed\xa0\x80", &c), ==, -EINVAL); /* surrogate */
    CHECK_INT(store_account_create_sync(st, "ab\xe2\x82", &c), ==, -EINVAL);   /* cut */
    CHECK_INT(store_account_create_sync(st, "x", NULL), ==, -EINVAL);
    bad = c;
    bad.sha1.iterations = bad.sha256.iterations = 0;
    CHECK_INT(store_account_create_sync(st, "x", &bad), ==, -EINVAL);
    bad = c;
    bad.sha1.salt_len = 0;
    CHECK_INT(store_account_create_sync(st, "x", &bad), ==, -EINVAL);
    bad = c;
    bad.sha256.salt_len = STORE_SALT_MAX + 1;
    CHECK_INT(store_creds_set_sync(st, "x", &bad), ==, -EINVAL);
    CHECK_INT(store_account_list_sync(st, NULL, 0, &l), ==, -EINVAL);
    CHECK_INT(store_account_list_sync(st, NULL, STORE_LIST_MAX + 1, &l), ==, -EINVAL);

    /* The longest name and multi-byte UTF-8 are fine. */
    longname[STORE_USER_MAX] = '\0';
    CHECK_INT(store_account_create_sync(st, longname, &c), ==, 0);
    CHECK_INT(store_account_create_sync(st, "ju\xc3\xa9liet\xf0\x9f\x8c\xb9", &c), ==, 0);
    CHECK_INT(store_account_list_sync(st, NULL, 10, &l), ==, 0);
    CHECK_INT(l.n, ==, 2);
    store_list_free(&l);
    CHECK(l.names == NULL && l.n == 0);
    store_close(st);
}

static void list_pages_in_byte_order(void)
{
    struct store_creds c = make_creds(9);
    struct store_list l;
    char name[32];
    struct store *st = open_db(db_path("list"), 0);
    if (!st)
        return;
    CHECK_INT(store_account_list_sync(st, NULL, 10, &l), ==, 0);
    CHECK_INT(l.n, ==, 0);
    /* Created out of order; "Z" < "a" < "\xc3\xa9" in bytes. */
    for (int i = 24; i >= 0; i--) {
        snprintf(name, sizeof name, "u%02d", i);
        CHECK_INT(store_account_create_sync(st, name, &c), ==, 0);
    }
    CHECK_INT(store_account_create_sync(st, "Z", &c), ==, 0);
    CHECK_INT(store_account_create_sync(st, "\xc3\xa9", &c), ==, 0);

    const char *after = "";
    char last[16] = "";
    int total = 0, pages = 0;
    for (;;) {
        CHECK_INT(store_account_list_sync(st, after, 10, &l), ==, 0);
        if (l.n == 0)
            break;
        pages++;
        for (size_t i = 0; i < l.n; i++) {
            if (total == 0)
                CHECK_STR(l.names[i], "Z");
            else if (total == 26)
                CHECK_STR(l.names[i], "\xc3\xa9");
            else {
                snprintf(name, sizeof name, "u%02d", total - 1);
                CHECK_STR(l.names[i], name);
            }
            total++;
        }
        snprintf(last, sizeof last, "%s", l.names[l.n - 1]);
        after = last;
        store_list_free(&l);
    }
    CHECK_INT(total, ==, 27);
    CHECK_INT(pages, ==, 3);
    store_close(st);
}

/* ---- the asynchronous path --------------------------------------------------------------- */

struct probe {
    int calls, res[8], order[8];
    pthread_t thread[8];
    struct store_creds creds;
    size_t list_n;
    char first[16];
};

static int seq;

static void on_done(void *arg, int res)
{
    struct probe *p = arg;
    p->res[p->calls] = res;
    p->order[p->calls] = seq++;
    p->thread[p->calls++] = pthread_self();
}

static void on_creds(void *arg, int res, const struct store_creds *c)
{
    struct probe *p = arg;
    if (c)
        p->creds = *c;
    CHECK((res == 0) == (c != NULL));
    on_done(arg, res);
}

static void on_list(void *arg, int res, const struct store_list *l)
{
    struct probe *p = arg;
    if (l) {
        p->list_n = l->n;
        if (l->n)
            snprintf(p->first, sizeof p->first, "%s", l->names[0]);
    }
    on_done(arg, res);
}

static void async_completions(void)
{
    struct store_creds c = make_creds(4);
    struct probe create = {0}, get = {0}, missing = {0}, list = {0}, dup = {0};
    struct store_client *cl;
    struct store *st = open_db(db_path("async"), 0);
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    int fd = store_client_fd(cl);
    CHECK(!fd_readable(fd, 0));

    seq = 0;
    CHECK_INT(store_account_create(cl, "benvolio", &c, on_done, &create), ==, 0);
    CHECK_INT(store_creds_get(cl, "benvolio", on_creds, &get), ==, 0);
    CHECK_INT(store_creds_get(cl, "tybalt", on_creds, &missing), ==, 0);
    CHECK_INT(store_account_list(cl, NULL, 5, on_list, &list), ==, 0);
    CHECK_INT(store_account_create(cl, "benvolio", &c, on_done, &dup), ==, 0);
    CHECK_INT(store_client_pending(cl), ==, 5);
    /* Invalid requests are refused at once, and their callback never runs. */
    CHECK_INT(store_creds_get(cl, "", on_creds, &missing), ==, -EINVAL);
    CHECK_INT(store_creds_get(cl, "x", NULL, NULL), ==, -EINVAL);
    CHECK_INT(store_client_pending(cl), ==, 5);

    /* Nothing runs until the owner polls, however long the worker has been done. */
    CHECK(fd_readable(fd, 5000));
    usleep(50 * 1000);
    CHECK_INT(create.calls + get.calls + missing.calls + list.calls + dup.calls, ==, 0);

    int total = 0;
    for (int i = 0; total < 5 && i < 500; i++) {
        fd_readable(fd, 10);
        total += store_poll(cl);
    }
    CHECK_INT(total, ==, 5);
    CHECK_INT(store_client_pending(cl), ==, 0);
    CHECK_INT(create.calls, ==, 1);
    CHECK_INT(create.res[0], ==, 0);
    CHECK_INT(get.res[0], ==, 0);
    CHECK(creds_eq(&get.creds, &c));
    CHECK_INT(missing.res[0], ==, -ENOENT);
    CHECK_INT(list.res[0], ==, 0);
    CHECK_INT(list.list_n, ==, 1);
    CHECK_STR(list.first, "benvolio");
    CHECK_INT(dup.res[0], ==, -EEXIST);
    /* In submission order, on this thread. */
    CHECK_INT(create.order[0], ==, 0);
    CHECK_INT(get.order[0], ==, 1);
    CHECK_INT(missing.order[0], ==, 2);
    CHECK_INT(list.order[0], ==, 3);
    CHECK_INT(dup.order[0], ==, 4);
    struct probe *all[] = {&create, &get, &missing, &list, &dup};
    for (int i = 0; i < 5; i++)
        CHECK(all[i]->calls == 1 && pthread_equal(all[i]->thread[0], pthread_self()));

    /* Drained: the eventfd is reset and a poll finds nothing. */
    CHECK(!fd_readable(fd, 0));
    CHECK_INT(store_poll(cl), ==, 0);

    /* Delete and set, asynchronously too. */
    struct probe del = {0}, set = {0}, get2 = {0};
    CHECK_INT(store_creds_set(cl, "benvolio", &c, on_done, &set), ==, 0);
    CHECK_INT(store_account_delete(cl, "benvolio", on_done, &del), ==, 0);
    CHECK_INT(store_creds_get(cl, "benvolio", on_creds, &get2), ==, 0);
    int n = 0;
    for (int i = 0; n < 3 && i < 500; i++) {
        fd_readable(fd, 10);
        n += store_poll(cl);
    }
    CHECK_INT(n, ==, 3);
    struct probe *more[] = {&set, &del, &get2};
    int want[] = {0, 0, -ENOENT};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(more[i]->calls, ==, 1);
        CHECK_INT(more[i]->res[0], ==, want[i]);
        CHECK(pthread_equal(more[i]->thread[0], pthread_self()));
    }

    store_client_free(cl);
    store_close(st);
}

struct chain {
    struct store_client *cl;
    int left, done, failed;
};

/* A callback that submits the next request from inside store_poll(). */
static void chain_next(void *arg, int res)
{
    struct chain *ch = arg;
    char name[32];
    ch->done++;
    if (res != 0)
        ch->failed++;
    if (ch->left-- > 0) {
        struct store_creds c = make_creds((unsigned)ch->left);
        snprintf(name, sizeof name, "chain%d", ch->left);
        if (store_account_create(ch->cl, name, &c, chain_next, ch) != 0)
            ch->failed++;
    }
}

static void callbacks_may_submit(void)
{
    struct store *st = open_db(db_path("chain"), 0);
    struct chain ch = {.left = 20};
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &ch.cl), ==, 0);
    chain_next(&ch, 0);
    poll_until(ch.cl, &ch.done, 21);
    CHECK_INT(ch.done, ==, 21);
    CHECK_INT(ch.failed, ==, 0);
    store_client_free(ch.cl);
    store_close(st);
}

/* ---- concurrency ------------------------------------------------------------------------- */

enum { PER_THREAD = 3000, WINDOW = 200 };

struct load {
    struct store *st;
    char prefix;
    int ok, failed, wrong, eagain;
};

struct load_get {
    struct load *ld;
    int i;
};

static void load_done(void *arg, int res)
{
    struct load *ld = arg;
    if (res == 0)
        ld->ok++;
    else
        ld->failed++;
}

static void load_got(void *arg, int res, const struct store_creds *c)
{
    struct load_get *g = arg;
    struct store_creds want = make_creds((unsigned)g->i);
    if (res != 0)
        g->ld->failed++;
    else if (!creds_eq(c, &want))
        g->ld->wrong++;
    else
        g->ld->ok++;
}

/* Submits a create (phase 0) or get (phase 1) for every name, keeping at most WINDOW
 * requests outstanding and polling between submissions, as an event loop would. */
static void *load_thread(void *arg)
{
    struct load *ld = arg;
    struct store_client *cl;
    static _Thread_local struct load_get gets[PER_THREAD];
    char name[32];
    if (store_client_new(ld->st, &cl) != 0) {
        ld->failed++;
        return NULL;
    }
    for (int phase = 0; phase < 2; phase++) {
        for (int i = 0; i < PER_THREAD;) {
            if (store_client_pending(cl) >= WINDOW) {
                fd_readable(store_client_fd(cl), 100);
                store_poll(cl);
                continue;
            }
            snprintf(name, sizeof name, "%c%05d", ld->prefix, i);
            struct store_creds c = make_creds((unsigned)i);
            gets[i] = (struct load_get){ld, i};
            int rc = phase == 0 ? store_account_create(cl, name, &c, load_done, ld)
                                : store_creds_get(cl, name, load_got, &gets[i]);
            if (rc == -EAGAIN) {
                ld->eagain++;
                store_poll(cl);
                continue;
            }
            if (rc != 0)
                ld->failed++;
            i++;
            store_poll(cl);
        }
        while (store_client_pending(cl) > 0) {
            fd_readable(store_client_fd(cl), 100);
            store_poll(cl);
        }
    }
    store_client_free(cl);
    return NULL;
}

static void two_threads_many_requests(void)
{
    struct store *st = open_db(db_path("load"), 0);
    struct load ld[2] = {{.prefix = 'a'}, {.prefix = 'b'}};
    pthread_t t[2];
    struct store_list l;
    if (!st)
        return;
    for (int i = 0; i < 2; i++) {
        ld[i].st = st;
        pthread_create(&t[i], NULL, load_thread, &ld[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(ld[i].ok, ==, 2 * PER_THREAD);
        CHECK_INT(ld[i].failed, ==, 0);
        CHECK_INT(ld[i].wrong, ==, 0);
    }
    int total = 0;
    char after[16] = "";
    while (store_account_list_sync(st, after, STORE_LIST_MAX, &l) == 0 && l.n) {
        total += (int)l.n;
        snprintf(after, sizeof after, "%s", l.names[l.n - 1]);
        store_list_free(&l);
    }
    CHECK_INT(total, ==, 2 * PER_THREAD);
    store_close(st);
}

static void backpressure_eagain(void)
{
    const char *path = db_path("pressure");
    struct store *st = open_db(path, 8);
    struct store_client *cl;
    struct probe p[9] = {{0}};
    char name[32];
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    /* Hold the write lock from another connection: the worker waits on the first create,
     * nothing completes, and the ninth outstanding request is refused. */
    sqlite3 *db = NULL;
    PGconn *pg = NULL;
    if (test_pg) {
        pg = PQconnectdb(path);
        PQclear(PQexec(pg, "BEGIN; LOCK TABLE accounts IN EXCLUSIVE MODE"));
        CHECK_INT(PQtransactionStatus(pg), ==, PQTRANS_INTRANS);
    } else {
        CHECK_INT(sqlite3_open(path, &db), ==, SQLITE_OK);
        CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), ==, SQLITE_OK);
    }
    struct store_creds c = make_creds(1);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "p%d", i);
        CHECK_INT(store_account_create(cl, name, &c, on_done, &p[i]), ==, 0);
    }
    CHECK_INT(store_account_create(cl, "p8", &c, on_done, &p[8]), ==, -EAGAIN);
    CHECK_INT(store_creds_get(cl, "p0", on_creds, &p[8]), ==, -EAGAIN);
    usleep(100 * 1000);
    CHECK_INT(store_poll(cl), ==, 0);
    if (test_pg) {
        PQclear(PQexec(pg, "ROLLBACK"));
        PQfinish(pg);
    } else {
        CHECK_INT(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close(db);
    }

    int n = 0;
    for (int i = 0; n < 8 && i < 1000; i++) {
        fd_readable(store_client_fd(cl), 10);
        n += store_poll(cl);
    }
    CHECK_INT(n, ==, 8);
    for (int i = 0; i < 8; i++)
        CHECK_INT(p[i].res[0], ==, 0);
    CHECK_INT(p[8].calls, ==, 0);
    /* Room again. */
    CHECK_INT(store_account_create(cl, "p8", &c, on_done, &p[8]), ==, 0);
    poll_until(cl, &p[8].calls, 1);
    CHECK_INT(p[8].res[0], ==, 0);
    store_client_free(cl);
    store_close(st);
}

static void client_free_drops_callbacks(void)
{
    struct store *st = open_db(db_path("free"), 0);
    struct store_client *cl;
    struct probe p = {0};
    char name[32];
    if (!st)
        return;
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    struct store_creds c = make_creds(1);
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "f%d", i);
        CHECK_INT(store_account_create(cl, name, &c, on_done, &p), ==, 0);
        CHECK_INT(store_creds_get(cl, name, on_creds, &p), ==, 0);
        CHECK_INT(store_account_list(cl, NULL, 10, on_list, &p), ==, 0);
    }
    store_client_free(cl); /* waits for the 150 requests; ASan sees no leak, no late write */
    CHECK_INT(p.calls, ==, 0);
    struct store_list l;
    CHECK_INT(store_account_list_sync(st, NULL, 100, &l), ==, 0);
    CHECK_INT(l.n, ==, 50); /* the requests ran; only their callbacks were dropped */
    store_list_free(&l);
    store_close(st);
}

/* A second process (starlingctl's situation) writes with the synchronous API while this
 * one reads and writes asynchronously. The fork happens while this process has no other
 * thread, before either side opens the file. */
static void second_process_writes(void)
{
    enum { N = 200 };
    const char *path = db_path("twoproc");
    int go[2];
    char name[32];
    CHECK_INT(pipe(go), ==, 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char b;
        close(go[1]);
        if (read(go[0], &b, 1) != 1)
            _exit(2);
        struct store *cst;
        struct store_opts o = db_opts(path);
        if (store_open(&o, &cst) != 0)
            _exit(3);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            struct store_creds c = make_creds((unsigned)i);
            snprintf(name, sizeof name, "child%03d", i);
            bad += store_account_create_sync(cst, name, &c) != 0;
        }
        store_close(cst);
        _exit(bad ? 1 : 0);
    }
    close(go[0]);
    struct store *st = open_db(path, 0);
    struct store_client *cl;
    if (!st || store_client_new(st, &cl) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return;
    }
    CHECK_INT(write(go[1], "g", 1), ==, 1);
    close(go[1]);

    /* Our own writes, concurrent with the child's, all succeed: the busy timeout turns
     * lock contention into waiting. Then read back every name the child wrote. */
    struct load ld = {.st = st};
    struct store_creds c = make_creds(7);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "parent%03d", i);
        CHECK_INT(store_account_create(cl, name, &c, load_done, &ld), ==, 0);
    }
    bool have[N] = {false};
    int seen = 0;
    for (int round = 0; seen < N && round < 2000; round++) {
        for (int i = 0; i < N; i++) {
            if (have[i])
                continue;
            /* The async path, polled to completion one request at a time. */
            struct probe p = {0};
            snprintf(name, sizeof name, "child%03d", i);
            CHECK_INT(store_creds_get(cl, name, on_creds, &p), ==, 0);
            poll_until(cl, &p.calls, 1);
            struct store_creds want = make_creds((unsigned)i);
            if (p.res[0] == 0 && creds_eq(&want, &p.creds)) {
                have[i] = true;
                seen++;
            } else if (p.res[0] != -ENOENT) {
                TEST_FAIL("reading child%03d: %d", i, p.res[0]);
                round = 1 << 30;
                break;
            }
        }
        if (seen < N)
            usleep(5000);
    }
    poll_until(cl, &ld.ok, N);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT(seen, ==, N);
    CHECK_INT(ld.ok, ==, N);
    CHECK_INT(ld.failed, ==, 0);
    struct store_list l;
    CHECK_INT(store_account_list_sync(st, NULL, STORE_LIST_MAX, &l), ==, 0);
    CHECK_INT(l.n, ==, 2 * N);
    store_list_free(&l);
    store_client_free(cl);
    store_close(st);
}

static _Atomic int notified;
static pthread_t notifier;

static void count_notify(void *arg)
{
    (void)arg;
    notifier = pthread_self();
    atomic_fetch_add(&notified, 1);
}

/* Without an eventfd: the worker calls notify when completions start waiting, and an
 * empty poll is free. */
static void notify_client(void)
{
    struct store_creds c = make_creds(5);
    struct probe create = {0}, get = {0};
    struct store_client *cl;
    struct store *st = open_db(db_path("notify"), 0);
    if (!st)
        return;
    atomic_store(&notified, 0);
    CHECK_INT(store_client_new_notify(st, count_notify, NULL, &cl), ==, 0);
    CHECK_INT(store_client_fd(cl), ==, -1);
    CHECK(!store_client_ready(cl));
    CHECK_INT(store_poll(cl), ==, 0);
    CHECK_INT(store_account_create(cl, "mercutio", &c, on_done, &create), ==, 0);
    CHECK_INT(store_creds_get(cl, "mercutio", on_creds, &get), ==, 0);
    int total = 0;
    for (int i = 0; total < 2 && i < 5000; i++) {
        if (!store_client_ready(cl)) {
            usleep(1000);
            continue;
        }
        CHECK(atomic_load(&notified) >= 1); /* told before it could be seen */
        total += store_poll(cl);
    }
    CHECK_INT(total, ==, 2);
    CHECK(!pthread_equal(notifier, pthread_self()));
    /* One notification per empty-to-waiting change, not per completion: at most two. */
    CHECK(atomic_load(&notified) <= 2);
    CHECK_INT(create.res[0], ==, 0);
    CHECK_INT(get.res[0], ==, 0);
    CHECK(creds_eq(&get.creds, &c));
    CHECK(!store_client_ready(cl));
    CHECK_INT(store_poll(cl), ==, 0);
    store_client_free(cl);
    store_close(st);
}

static void malformed_row_is_eio(void)
{
    const char *path = db_path("malformed");
    struct store_creds c = make_creds(1), got;
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(store_account_create_sync(st, "mallory", &c), ==, 0);
    CHECK_INT(sql1(path, BY_BACKEND("UPDATE accounts SET sha1_stored_key = x'0102'"
                                    " WHERE user = 'mallory'",
                                    "UPDATE accounts SET sha1_stored_key = '\\x0102'"
                                    " WHERE username = 'mallory'")),
              ==, 0);
    CHECK_INT(store_creds_get_sync(st, "mallory", &got), ==, -EIO);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    /* Errors the tests provoke on purpose are logged; keep the output to those. */
    log_init("store-test", LOG_LEVEL_WARN);
    RUN(open_creates_schema);
    RUN(reopen_keeps_data);
    RUN(newer_schema_refused);
    RUN(open_errors);
    RUN(sync_accounts);
    RUN(invalid_arguments);
    RUN(import_all_or_nothing);
    RUN(list_pages_in_byte_order);
    RUN(second_process_writes);
    RUN(async_completions);
    RUN(callbacks_may_submit);
    RUN(two_threads_many_requests);
    RUN(backpressure_eagain);
    RUN(client_free_drops_callbacks);
    RUN(notify_client);
    RUN(malformed_row_is_eio);
    tmpdir_remove();
    return test_done("store");
}
