/* Unit tests of what only the PostgreSQL back end has (common/store/store_pgsql.c): its
 * migrations, several stores ("nodes") on one database at once, the connection lost
 * under load and regained, the database unreachable for a while, a password from a
 * file. Needs tests/pg-run (STARLING_TEST_PG); without it there is nothing to test.
 * The requests themselves are store.c's, store_im.c's and store_sqlite_im.c's tests,
 * which pg-run runs against PostgreSQL too. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "test.h"

#include "store_im_test.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls until *count reaches want or `ms` pass; returns *count. */
static int poll_for(struct store_client *cl, const int *count, int want, int ms)
{
    int64_t until = mono_ms() + ms;
    while (*count < want && mono_ms() < until) {
        fd_readable(store_client_fd(cl), 10);
        store_poll(cl);
    }
    return *count;
}

/* ---- migrations -------------------------------------------------------------------------- */

/* Schema version 1 exactly as common/store/store_pgsql.c's first migration made it, with
 * data in it: a database a previous release wrote, frozen here. */
static const char schema_v1[] =
    "CREATE TABLE schema_version (version integer NOT NULL);"
    "INSERT INTO schema_version VALUES (1);"
    "CREATE TABLE accounts (username text COLLATE \"C\" PRIMARY KEY, created bigint NOT NULL,"
    " sha1_iterations bigint NOT NULL, sha1_salt bytea NOT NULL,"
    " sha1_stored_key bytea NOT NULL, sha1_server_key bytea NOT NULL,"
    " sha256_iterations bigint NOT NULL, sha256_salt bytea NOT NULL,"
    " sha256_stored_key bytea NOT NULL, sha256_server_key bytea NOT NULL);"
    "CREATE TABLE roster_version (username text COLLATE \"C\" PRIMARY KEY"
    " REFERENCES accounts ON DELETE CASCADE, ver bigint NOT NULL);"
    "CREATE TABLE roster (username text COLLATE \"C\" NOT NULL REFERENCES accounts"
    " ON DELETE CASCADE, jid text COLLATE \"C\" NOT NULL, name text COLLATE \"C\","
    " sub smallint NOT NULL CHECK (sub BETWEEN 0 AND 3), ask boolean NOT NULL,"
    " pending_in boolean NOT NULL, approved boolean NOT NULL, hidden boolean NOT NULL,"
    " ver bigint NOT NULL, PRIMARY KEY (username, jid));"
    "CREATE TABLE roster_groups (username text COLLATE \"C\" NOT NULL,"
    " jid text COLLATE \"C\" NOT NULL, grp text COLLATE \"C\" NOT NULL,"
    " PRIMARY KEY (username, jid, grp), FOREIGN KEY (username, jid) REFERENCES roster"
    " ON DELETE CASCADE);"
    "CREATE TABLE subreqs (id bigserial PRIMARY KEY, username text COLLATE \"C\" NOT NULL"
    " REFERENCES accounts ON DELETE CASCADE, jid text COLLATE \"C\" NOT NULL,"
    " stanza bytea NOT NULL, UNIQUE (username, jid));"
    "CREATE TABLE offline (seq bigserial PRIMARY KEY, username text COLLATE \"C\" NOT NULL"
    " REFERENCES accounts ON DELETE CASCADE, stamp bigint NOT NULL, stanza bytea NOT NULL,"
    " sender text COLLATE \"C\" NOT NULL, len integer NOT NULL);"
    "CREATE INDEX offline_user ON offline (username, seq);"
    "CREATE TABLE blocklist (username text COLLATE \"C\" NOT NULL REFERENCES accounts"
    " ON DELETE CASCADE, jid text COLLATE \"C\" NOT NULL, PRIMARY KEY (username, jid));"
    "INSERT INTO accounts VALUES ('romeo', 1700000000, 0, '', '', '', 8192,"
    " '\\x00112233445566778899aabbccddeeff', decode(repeat('00', 32), 'hex'),"
    " decode(repeat('00', 32), 'hex'));"
    "INSERT INTO offline (username, stamp, stanza, sender, len) VALUES"
    " ('romeo', 1, '<m1/>', 'juliet@capulet.lit', 5),"
    " ('romeo', 2, '<m22/>', 'juliet@capulet.lit', 6),"
    " ('romeo', 3, '<m3/>', 'nurse@capulet.lit', 5);";

static void migrates_from_empty(void)
{
    const char *path = db_path("empty");
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, "SELECT version FROM schema_version"), ==, 6);
    CHECK_INT(sql1(path, "SELECT count(*) FROM schema_version"), ==, 1);
    CHECK_INT(sql1(path, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"),
              ==, 15); /* schema_version, accounts, 6 of instant messaging, 2 of usage,
                          cluster_nodes, pep, 2 of the archive, muc_rooms */
    store_close(st);
    /* Reopening finds nothing to do. */
    st = open_db(path, 0);
    CHECK_INT(sql1(path, "SELECT count(*) FROM schema_version"), ==, 1);
    store_close(st);
}

static void migrates_from_v1(void)
{
    const char *path = db_path("v1");
    CHECK_INT(sql1(path, schema_v1), ==, 0);
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, "SELECT version FROM schema_version"), ==, 6);
    /* The usage the new tables keep starts from the messages already there. */
    CHECK_INT(sql1(path, "SELECT messages * 100 + bytes FROM offline_usage"), ==, 316);
    CHECK_INT(sql1(path, "SELECT messages * 100 + bytes FROM offline_sender_usage"
                         " WHERE sender = 'juliet@capulet.lit'"),
              ==, 211);
    struct store_creds c;
    CHECK_INT(store_creds_get_sync(st, "romeo", &c), ==, 0);
    CHECK_INT(c.sha1.iterations, ==, 0);
    CHECK_INT(c.sha256.iterations, ==, 8192);
    CHECK_INT(c.sha256.salt_len, ==, 16);
    CHECK_TEXT(offline_of(st, "romeo", 10), "<m1/> <m22/> <m3/>");
    /* The quota sees them: juliet has two of the three a sender may have. */
    struct store_offline_quota q = {10, SIZE_MAX, 3, SIZE_MAX};
    CHECK_INT(push_from(st, "romeo", "juliet@capulet.lit", "<m4/>", &q), ==, 0);
    CHECK_INT(push_from(st, "romeo", "juliet@capulet.lit", "<m5/>", &q), ==, -EDQUOT);
    CHECK_INT(store_offline_delete_sync(st, "romeo", UINT64_MAX), ==, 4);
    CHECK_INT(sql1(path, "SELECT messages * 100 + bytes FROM offline_usage"), ==, 0);
    store_close(st);
}

struct opener {
    const char *path;
    struct store *st;
    int rc;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    struct store_opts opts = db_opts(o->path);
    o->rc = store_open(&opts, &o->st);
    return NULL;
}

/* Nodes starting together: the advisory lock makes one migrate and the others find the
 * schema done, whoever comes first. */
static void concurrent_opens_migrate_once(void)
{
    enum { N = 4 };
    static char path[1024];
    snprintf(path, sizeof path, "%s", db_path("together"));
    struct opener o[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        o[i] = (struct opener){.path = path};
        CHECK_INT(pthread_create(&t[i], NULL, open_thread, &o[i]), ==, 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK_INT(o[i].rc, ==, 0);
    }
    CHECK_INT(sql1(path, "SELECT version FROM schema_version"), ==, 6);
    CHECK_INT(sql1(path, "SELECT count(*) FROM schema_version"), ==, 1);
    for (int i = 0; i < N; i++)
        store_close(o[i].st);
}

/* ---- two nodes on one database ----------------------------------------------------------- */

struct vers {
    int calls, failed;
    uint64_t seen[256];
};

static void on_ver(void *arg, int res, uint64_t ver)
{
    struct vers *v = arg;
    if (res == 0 && v->calls < 256)
        v->seen[v->calls] = ver;
    v->failed += res != 0;
    v->calls++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void two_nodes_see_each_other(void)
{
    enum { N = 60 };
    static char path[1024];
    snprintf(path, sizeof path, "%s", db_path("nodes"));
    struct store *a = open_db(path, 0), *b = open_db(path, 0);
    struct store_client *ca, *cb;
    struct store_creds c = make_creds(3), got;
    char jid[64];
    if (!a || !b)
        goto out;
    /* What one writes, the other reads at once. */
    CHECK_INT(store_account_create_sync(a, "juliet", &c), ==, 0);
    CHECK_INT(store_creds_get_sync(b, "juliet", &got), ==, 0);
    CHECK(creds_eq(&got, &c));
    CHECK_INT(store_account_create_sync(b, "juliet", &c), ==, -EEXIST);
    struct store_roster_item it = item("romeo@montague.lit", "Romeo", STORE_SUB_BOTH);
    CHECK_INT(store_roster_put_sync(a, "juliet", &it, NULL), ==, 0);
    CHECK_TEXT(roster_of(b, "juliet"), "1: romeo@montague.lit(Romeo)/both/----/1[]");
    const char *jids[] = {"tybalt@capulet.lit"};
    CHECK_INT(store_block_add_sync(b, "juliet", jids, 1), ==, 1);
    CHECK_TEXT(blocks_of(a, "juliet"), "tybalt@capulet.lit");

    /* Both change one roster at once, pipelined: every change gets its own version, and
     * the versions are 2..2N+1 with no gap and no repeat. */
    CHECK_INT(store_client_new(a, &ca), ==, 0);
    CHECK_INT(store_client_new(b, &cb), ==, 0);
    struct vers va = {0}, vb = {0};
    for (int i = 0; i < N; i++) {
        snprintf(jid, sizeof jid, "a%02d@verona.lit", i);
        struct store_roster_item x = item(jid, NULL, STORE_SUB_NONE);
        CHECK_INT(store_roster_put(ca, "juliet", &x, on_ver, &va), ==, 0);
        snprintf(jid, sizeof jid, "b%02d@verona.lit", i);
        x.jid = jid;
        CHECK_INT(store_roster_put(cb, "juliet", &x, on_ver, &vb), ==, 0);
    }
    int64_t until = mono_ms() + 20000;
    while ((va.calls < N || vb.calls < N) && mono_ms() < until) {
        fd_readable(store_client_fd(ca), 5);
        store_poll(ca);
        store_poll(cb);
    }
    CHECK_INT(va.calls, ==, N);
    CHECK_INT(vb.calls, ==, N);
    CHECK_INT(va.failed + vb.failed, ==, 0);
    uint64_t all[2 * N];
    memcpy(all, va.seen, N * sizeof all[0]);
    memcpy(all + N, vb.seen, N * sizeof all[0]);
    qsort(all, 2 * N, sizeof all[0], cmp_u64);
    for (int i = 0; i < 2 * N; i++)
        if (all[i] != (uint64_t)i + 2) {
            TEST_FAIL("version %d is %llu", i, (unsigned long long)all[i]);
            break;
        }
    /* Each node's own changes complete in the order it sent them. */
    for (int i = 1; i < N; i++)
        CHECK(va.seen[i] > va.seen[i - 1] && vb.seen[i] > vb.seen[i - 1]);
    CHECK_INT(store_roster_count_sync(b, "juliet"), ==, 2 * N + 1);
    store_client_free(ca);
    store_client_free(cb);
out:
    store_close(a);
    store_close(b);
}

static void on_res(void *arg, int res)
{
    int *counts = arg; /* [0] calls, [1] ok, [2] -EDQUOT, [3] other */
    counts[0]++;
    counts[res == 0 ? 1 : res == -EDQUOT ? 2 : 3]++;
}

/* Two nodes push to one user at once, more than the quota lets in: exactly the quota
 * gets in, in all and from the one sender with a share of its own. */
static void concurrent_offline_quota(void)
{
    enum { N = 80, MAX = 50, SENDER_MAX = 20 };
    static char path[1024];
    snprintf(path, sizeof path, "%s", db_path("quota"));
    struct store *st[2] = {open_db(path, 0), open_db(path, 0)};
    struct store_client *cl[2];
    int counts[2][4] = {{0}}, spam[2][4] = {{0}};
    struct store_creds c = make_creds(1);
    if (!st[0] || !st[1])
        goto out;
    CHECK_INT(store_account_create_sync(st[0], "juliet", &c), ==, 0);
    struct store_offline_quota q = {MAX, SIZE_MAX, SENDER_MAX, SIZE_MAX};
    for (int n = 0; n < 2; n++)
        CHECK_INT(store_client_new(st[n], &cl[n]), ==, 0);
    for (int i = 0; i < N; i++) {
        for (int n = 0; n < 2; n++) {
            char sender[48];
            snprintf(sender, sizeof sender, "s%d-%d@verona.lit", n, i);
            CHECK_INT(store_offline_push(cl[n], "juliet", sender, "<m/>", 4, &q, on_res, counts[n]),
                      ==, 0);
            CHECK_INT(store_offline_push(cl[n], "juliet", "spam@evil.example", "<s/>", 4, &q,
                                         on_res, spam[n]),
                      ==, 0);
        }
    }
    int64_t until = mono_ms() + 30000;
    while (counts[0][0] + counts[1][0] + spam[0][0] + spam[1][0] < 4 * N && mono_ms() < until) {
        fd_readable(store_client_fd(cl[0]), 5);
        store_poll(cl[0]);
        store_poll(cl[1]);
    }
    CHECK_INT(counts[0][0] + counts[1][0] + spam[0][0] + spam[1][0], ==, 4 * N);
    CHECK_INT(counts[0][3] + counts[1][3] + spam[0][3] + spam[1][3], ==, 0);
    CHECK_INT(spam[0][1] + spam[1][1], ==, SENDER_MAX);
    CHECK_INT(counts[0][1] + counts[1][1] + spam[0][1] + spam[1][1], ==, MAX);
    CHECK_INT(store_offline_count_sync(st[1], "juliet"), ==, MAX);
    CHECK_INT(sql1(path, "SELECT messages FROM offline_usage"), ==, MAX);
    for (int n = 0; n < 2; n++)
        store_client_free(cl[n]);
out:
    store_close(st[0]);
    store_close(st[1]);
}

static void on_eio(void *arg, int res)
{
    int *counts = arg; /* [0] calls, [1] ok, [2] -EIO, [3] other */
    counts[0]++;
    counts[res == 0 ? 1 : res == -EIO ? 2 : 3]++;
}

/* An import is one request however long: its thousands of statements stream through
 * the pipeline while their results come back (libpq reads while it cannot write), in
 * one transaction. */
static void large_import(void)
{
    enum { N = 20000 };
    struct store *st = open_db(db_path("import"), 0);
    struct store_account *a = calloc(N, sizeof *a);
    char (*names)[16] = calloc(N, sizeof *names);
    size_t failed = 0;
    if (!st || !a || !names)
        goto out;
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "user%05d", i);
        a[i] = (struct store_account){.user = names[i], .creds = make_creds((unsigned)i)};
    }
    CHECK_INT(store_account_import_sync(st, a, N, false, &failed), ==, N);
    /* The last one exists: nothing of the second import stays. */
    snprintf(names[0], sizeof names[0], "other");
    CHECK_INT(store_account_import_sync(st, a, N, false, &failed), ==, -EEXIST);
    CHECK_INT(failed, ==, 1);
    CHECK_INT(store_account_exists_sync(st, "other"), ==, -ENOENT);
    CHECK_INT(store_account_import_sync(st, a, N, true, &failed), ==, 1);
    struct store_creds got, want = make_creds(N - 1);
    CHECK_INT(store_creds_get_sync(st, "user19999", &got), ==, 0);
    CHECK(creds_eq(&got, &want));
out:
    free(a);
    free(names);
    store_close(st);
}

/* ---- losing the connection --------------------------------------------------------------- */

/* The backend of the store opened with application_name=`app`, or 0. */
static long long backend_pid(const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(max(pid), 0) FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return sql1(test_pg, sql);
}

static long long kill_backend(const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE application_name = '%s'",
             app);
    return sql1(test_pg, sql);
}

/* The server ends the session while hundreds of requests are in flight, twice: each
 * completes, with its result or -EIO, none hangs, and the store reconnects by itself. */
static void connection_killed_under_load(void)
{
    enum { ROUNDS = 6, PER = 300 };
    static char path[1024];
    snprintf(path, sizeof path, "%s application_name=killed", db_path("killed"));
    struct store *st = open_db(path, 0);
    struct store_client *cl;
    struct store_creds c = make_creds(2);
    int pushes[4] = {0}, checks[4] = {0}, submitted = 0;
    if (!st)
        return;
    CHECK_INT(store_account_create_sync(st, "juliet", &c), ==, 0);
    CHECK_INT(store_client_new(st, &cl), ==, 0);
    long long first = backend_pid("killed");
    CHECK(first > 0);
    struct store_offline_quota q = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++) {
            int rc = i % 2 ? store_offline_push(cl, "juliet", "romeo@montague.lit", "<m/>", 4, &q,
                                                on_eio, pushes)
                           : store_account_exists(cl, "juliet", on_eio, checks);
            CHECK_INT(rc, ==, 0);
            submitted++;
        }
        store_poll(cl); /* some done, most in flight */
        if (r == 1 || r == 3) {
            /* The session of the moment: after the first kill, once the store has a new
             * one (its requests queue meanwhile). */
            int64_t until = mono_ms() + 10000;
            while (backend_pid("killed") == 0 && mono_ms() < until)
                usleep(2000);
            CHECK_INT(kill_backend("killed"), ==, 1);
        }
    }
    int64_t until = mono_ms() + 30000;
    while (pushes[0] + checks[0] < submitted && mono_ms() < until) {
        fd_readable(store_client_fd(cl), 10);
        store_poll(cl);
    }
    CHECK_INT(pushes[0] + checks[0], ==, submitted);
    CHECK_INT(pushes[3] + checks[3], ==, 0); /* nothing but success and -EIO */
    /* Back, on a new session, and working. */
    CHECK_INT(store_account_exists_sync(st, "juliet"), ==, 0);
    CHECK(store_reachable(st));
    long long now = backend_pid("killed");
    CHECK(now > 0 && now != first);
    /* Every push that said it stored its message did; of those that got -EIO, some may
     * have committed before the session ended (their result was lost, not the data). */
    int stored = store_offline_count_sync(st, "juliet");
    CHECK_INT(stored, >=, pushes[1]);
    CHECK_INT(stored, <=, pushes[1] + pushes[2]);
    store_client_free(cl);
    store_close(st);
}

/* The database refuses the node for a while (its role may not log in, its session
 * ended): store_reachable() says so, requests wait storage.timeout and fail with -EIO,
 * and once the role may log in again the store is back without anyone's help. */
static void unreachable_then_back(void)
{
    static char path[1024];
    struct store_client *cl;
    struct store_creds c = make_creds(4);
    CHECK_INT(sql1(test_pg, "DO $$ BEGIN CREATE ROLE node LOGIN; EXCEPTION WHEN duplicate_object"
                            " THEN ALTER ROLE node LOGIN; END $$;"
                            " DROP SCHEMA IF EXISTS t_down CASCADE;"
                            " CREATE SCHEMA t_down AUTHORIZATION node"),
              ==, 0);
    snprintf(path, sizeof path, "%s user=node options='-csearch_path=t_down' application_name=down",
             test_pg);
    struct store_opts o = {.backend = STORE_BACKEND_POSTGRESQL, .dsn = path, .timeout_ms = 1000};
    struct store *st = NULL;
    CHECK_INT(store_open(&o, &st), ==, 0);
    if (!st)
        return;
    CHECK(store_reachable(st));
    CHECK_INT(store_account_create_sync(st, "juliet", &c), ==, 0);
    CHECK_INT(store_client_new(st, &cl), ==, 0);

    CHECK_INT(sql1(test_pg, "ALTER ROLE node NOLOGIN"), ==, 0);
    CHECK_INT(kill_backend("down"), ==, 1);
    int64_t until = mono_ms() + 5000;
    while (store_reachable(st) && mono_ms() < until)
        usleep(5000);
    CHECK(!store_reachable(st));
    int counts[4] = {0};
    int64_t t0 = mono_ms();
    for (int i = 0; i < 10; i++)
        CHECK_INT(store_account_exists(cl, "juliet", on_eio, counts), ==, 0);
    poll_for(cl, &counts[0], 10, 10000);
    int64_t waited = mono_ms() - t0;
    CHECK_INT(counts[2], ==, 10);
    CHECK(waited >= 900);  /* they waited for the connection... */
    CHECK(waited < 5000);  /* ...about storage.timeout, not for ever */
    CHECK(!store_reachable(st));

    CHECK_INT(sql1(test_pg, "ALTER ROLE node LOGIN"), ==, 0);
    until = mono_ms() + 10000;
    while (!store_reachable(st) && mono_ms() < until)
        usleep(5000);
    CHECK(store_reachable(st));
    /* A request sent while it reconnects waits for it instead of failing. */
    CHECK_INT(store_account_exists_sync(st, "juliet"), ==, 0);
    store_client_free(cl);
    store_close(st);
}

/* ---- secrets ----------------------------------------------------------------------------- */

/* tests/pg-run makes role starling_pw log in with a password (scram-sha-256), where every
 * other role is trusted. */
static void password_from_file(void)
{
    static char path[1024], file[128];
    CHECK_INT(sql1(test_pg, "DO $$ BEGIN CREATE ROLE starling_pw LOGIN PASSWORD 'open sesame';"
                            " EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
                            " DROP SCHEMA IF EXISTS t_pw CASCADE;"
                            " CREATE SCHEMA t_pw AUTHORIZATION starling_pw"),
              ==, 0);
    snprintf(path, sizeof path, "%s user=starling_pw options='-csearch_path=t_pw'", test_pg);
    snprintf(file, sizeof file, "%s/password", tmpdir);
    struct store_opts o = {.backend = STORE_BACKEND_POSTGRESQL,
                           .dsn = path,
                           .password_file = file,
                           .timeout_ms = 300};
    struct store *st = NULL;
    FILE *f = fopen(file, "w");
    fputs("wrong\n", f);
    fclose(f);
    CHECK_INT(store_open(&o, &st), <, 0);
    CHECK(st == NULL);
    f = fopen(file, "w");
    fputs("open sesame\n", f); /* a Secret's file may end with a newline, or not */
    fclose(f);
    CHECK_INT(store_open(&o, &st), ==, 0);
    if (st)
        CHECK_INT(store_account_exists_sync(st, "juliet"), ==, -ENOENT);
    store_close(st);
    o.password_file = "/nonexistent/password";
    CHECK_INT(store_open(&o, &st), <, 0);
    /* A password longer than the file may hold is refused, not cut short. */
    o.password_file = file;
    f = fopen(file, "w");
    for (int i = 0; i < 1100; i++)
        fputc('p', f);
    fclose(f);
    CHECK_INT(store_open(&o, &st), ==, -EACCES);
}

/* The cluster's heartbeats (cluster.discovery): a slot each, for good; the others live. */
static void cluster_beats(void)
{
    const char *path = db_path("beats");
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    unsigned a, b, again;
    struct store_list live;
    CHECK_INT(store_cluster_beat_sync(st, "node-a", "127.0.0.11:7711", 2, 1, 3000, &a, &live), ==,
              0);
    CHECK_INT((int)live.n, ==, 0); /* alone */
    store_list_free(&live);
    CHECK_INT(store_cluster_beat_sync(st, "node-b", "127.0.0.12:7711", 4, 2, 3000, &b, &live), ==,
              0);
    CHECK(a != b && a < STORE_CLUSTER_SLOTS && b < STORE_CLUSTER_SLOTS);
    CHECK_INT((int)live.n, ==, 1);
    char want[64];
    snprintf(want, sizeof want, "%u node-a 127.0.0.11:7711", a);
    CHECK(live.n == 1 && !strcmp(live.names[0], want));
    store_list_free(&live);
    /* node-a's heartbeat gets old: no longer live for node-b; its slot stays its own. */
    CHECK_INT(sql1(path, "UPDATE cluster_nodes SET heartbeat = now() - interval '1 hour'"
                         " WHERE name = 'node-a'"), ==, 0);
    CHECK_INT(store_cluster_beat_sync(st, "node-b", "127.0.0.12:7711", 4, 2, 3000, &again, &live),
              ==, 0);
    CHECK_INT((int)live.n, ==, 0);
    CHECK_INT((int)again, ==, (int)b);
    store_list_free(&live);
    CHECK_INT(store_cluster_beat_sync(st, "node-a", "127.0.0.11:7711", 2, 3, 3000, &again, &live),
              ==, 0);
    CHECK_INT((int)again, ==, (int)a);
    CHECK_INT((int)live.n, ==, 1);
    store_list_free(&live);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    log_init("store-pgsql-test", LOG_LEVEL_WARN);
    if (test_pg) {
        RUN(migrates_from_empty);
        RUN(migrates_from_v1);
        RUN(concurrent_opens_migrate_once);
        RUN(two_nodes_see_each_other);
        RUN(cluster_beats);
        RUN(concurrent_offline_quota);
        RUN(large_import);
        RUN(connection_killed_under_load);
        RUN(unreachable_then_back);
        RUN(password_from_file);
    }
    tmpdir_remove();
    return test_done("store_pgsql");
}
