/* Unit tests of the instant-messaging half of the SQLite back end (common/store/store_sqlite_im.c,
 * and the schema's migrations in common/store/store_sqlite.c) through the store's sync API:
 * rosters, subscription requests, offline messages, blocklists, against real database
 * files. Under tests/pg-run the same tests but SQLite's migrations and snapshot run
 * against PostgreSQL (common/store/store_pgsql_req.c): the two back ends answer alike. */
#include "common/core/log.h"
#include "common/store/store.h"
#include "test.h"

#include "store_im_test.h"

#include <time.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------------------------ */

/* The accounts table exactly as schema version 1 made it (common/store/store_sqlite.c at the
 * time): a file a previous release wrote, frozen here. */
static const char schema_v1[] = "CREATE TABLE accounts ("
                                " user TEXT NOT NULL PRIMARY KEY,"
                                " created INTEGER NOT NULL,"
                                " sha1_iterations INTEGER NOT NULL,"
                                " sha1_salt BLOB NOT NULL,"
                                " sha1_stored_key BLOB NOT NULL,"
                                " sha1_server_key BLOB NOT NULL,"
                                " sha256_iterations INTEGER NOT NULL,"
                                " sha256_salt BLOB NOT NULL,"
                                " sha256_stored_key BLOB NOT NULL,"
                                " sha256_server_key BLOB NOT NULL"
                                ") STRICT, WITHOUT ROWID;"
                                "PRAGMA user_version = 1;"
                                "PRAGMA journal_mode = WAL;"
                                /* SCRAM-SHA-256 only, salt 16 bytes */
                                "INSERT INTO accounts VALUES ('romeo', 1700000000, 0, x'', x'',"
                                " x'', 8192, zeroblob(16), zeroblob(32), zeroblob(32));";

static void migrates_from_v1(void)
{
    const char *path = db_path("v1");
    struct store_creds got;
    CHECK_INT(sql1(path, schema_v1), ==, 0);
    CHECK_INT(sql1(path, "PRAGMA user_version"), ==, 1);
    struct store *st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, "PRAGMA user_version"), ==, 6);
    const char *tables[] = {"roster_version", "roster",  "roster_groups",
                            "subreqs",        "offline", "blocklist"};
    char sql[128];
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_schema WHERE name = '%s'",
                 tables[i]);
        CHECK_INT(sql1(path, sql), ==, 1);
    }
    /* The old account is intact and has everything a new one has. */
    CHECK_INT(store_creds_get_sync(st, "romeo", &got), ==, 0);
    CHECK_INT(got.sha256.iterations, ==, 8192);
    CHECK_INT(got.sha256.salt_len, ==, 16);
    CHECK_INT(got.sha1.iterations, ==, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "0:");
    struct store_roster_item it = item("juliet@capulet.lit", "Juliet", STORE_SUB_BOTH);
    uint64_t ver = 0;
    CHECK_INT(store_roster_put_sync(st, "romeo", &it, &ver), ==, 0);
    CHECK_INT(ver, ==, 1);
    CHECK_INT(push(st, "romeo", "<message/>", 10), ==, 0);
    store_close(st);

    /* Reopened at the current version: nothing to migrate, nothing lost; the cascade
     * holds for an account made before the tables that reference it. */
    st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, "PRAGMA user_version"), ==, 6);
    CHECK_TEXT(roster_of(st, "romeo"), "1: juliet@capulet.lit(Juliet)/both/----/1[] offline");
    CHECK_INT(store_account_delete_sync(st, "romeo"), ==, 0);
    CHECK_INT(sql1(path, "SELECT count(*) FROM roster"), ==, 0);
    CHECK_INT(sql1(path, "SELECT count(*) FROM offline"), ==, 0);
    store_close(st);
}

/* A file of schema version 2 (offline messages without a sender) gets the column; its
 * messages count towards the user's quota and towards no sender's share. */
static void migrates_from_v2(void)
{
    const char *users[] = {"juliet", NULL};
    const char *path = db_path("v2");
    struct store *st = fresh("v2", users);
    if (!st)
        return;
    store_close(st);
    /* Version 3's to 6's additions undone: the file version 2 made. */
    CHECK_INT(sql1(path, "DROP TABLE pep; DROP TABLE muc_rooms;"
                         "DROP TRIGGER mam_account_gone; DROP TABLE mam; DROP TABLE mam_prefs;"
                         "DROP TRIGGER offline_counted; DROP TRIGGER offline_uncounted;"
                         "DROP TABLE offline_sender_usage; DROP TABLE offline_usage;"
                         "ALTER TABLE offline DROP COLUMN len;"
                         "ALTER TABLE offline DROP COLUMN sender;"
                         "INSERT INTO offline (user, stamp, stanza)"
                         " VALUES ('juliet', 0, x'3c6d2f3e');" /* <m/> */
                         "PRAGMA user_version = 2"),
              ==, 0);
    st = open_db(path, 0);
    if (!st)
        return;
    CHECK_INT(sql1(path, "PRAGMA user_version"), ==, 6);
    CHECK_INT(sql1(path, "SELECT count(*) FROM offline WHERE sender = '' AND len = 4"), ==, 1);
    CHECK_INT(sql1(path, "SELECT messages * 100 + bytes FROM offline_usage"), ==, 104);
    struct store_offline_quota q = {2, SIZE_MAX, 1, SIZE_MAX};
    CHECK_INT(push_from(st, "juliet", "romeo@montague.lit", "<n/>", &q), ==, 0);
    CHECK_INT(push_from(st, "juliet", "paris@verona.lit", "<n/>", &q), ==, -EDQUOT);
    CHECK_TEXT(offline_of(st, "juliet", 10), "<m/> <n/>");
    store_close(st);
}

/* ---- rosters ----------------------------------------------------------------------------- */

static void roster_versions(void)
{
    const char *users[] = {"romeo", "benvolio", NULL};
    struct store *st = fresh("roster", users);
    uint64_t ver = 99;
    if (!st)
        return;
    /* A user who never had an item: version 0, nothing in it. */
    CHECK_TEXT(roster_of(st, "romeo"), "0:");
    CHECK_INT(store_roster_count_sync(st, "romeo"), ==, 0);

    struct store_roster_item a = item("juliet@capulet.lit", "Juliet", STORE_SUB_NONE);
    a.ask = true;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), ==, 0);
    CHECK_INT(ver, ==, 1);
    struct store_roster_item b = item("mercutio@montague.lit", NULL, STORE_SUB_FROM);
    CHECK_INT(store_roster_put_sync(st, "romeo", &b, &ver), ==, 0);
    CHECK_INT(ver, ==, 2);
    /* Replacing an item changes it and its version, not the other one's. */
    a.sub = STORE_SUB_TO;
    a.ask = false;
    a.name = "J";
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), ==, 0);
    CHECK_INT(ver, ==, 3);
    CHECK_TEXT(roster_of(st, "romeo"), "3: juliet@capulet.lit(J)/to/----/3[]"
                                       " mercutio@montague.lit(~)/from/----/2[]");
    CHECK_INT(store_roster_count_sync(st, "romeo"), ==, 2);
    /* Another user's counter is his own. */
    CHECK_INT(store_roster_put_sync(st, "benvolio", &b, &ver), ==, 0);
    CHECK_INT(ver, ==, 1);

    CHECK_INT(store_roster_delete_sync(st, "romeo", "juliet@capulet.lit", &ver), ==, 0);
    CHECK_INT(ver, ==, 4);
    ver = 99;
    CHECK_INT(store_roster_delete_sync(st, "romeo", "juliet@capulet.lit", &ver), ==, -ENOENT);
    CHECK_INT(ver, ==, 99);
    CHECK_TEXT(roster_of(st, "romeo"), "4: mercutio@montague.lit(~)/from/----/2[]");
    /* Deleting the last item keeps the counter: a client holding version 4 must not be
     * told an empty roster is unchanged. */
    CHECK_INT(store_roster_delete_sync(st, "romeo", "mercutio@montague.lit", NULL), ==, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "5:");
    CHECK_INT(store_roster_put_sync(st, "romeo", &b, NULL), ==, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "6: mercutio@montague.lit(~)/from/----/6[]");

    /* No account: -ENOENT, and nothing is created for it. */
    CHECK_TEXT(roster_of(st, "tybalt"), "ENOENT");
    CHECK_INT(store_roster_put_sync(st, "tybalt", &a, &ver), ==, -ENOENT);
    CHECK_INT(store_roster_delete_sync(st, "tybalt", "juliet@capulet.lit", &ver), ==, -ENOENT);
    CHECK_INT(store_roster_count_sync(st, "tybalt"), ==, -ENOENT);
    CHECK_INT(sql1(db_path("roster"), "SELECT count(*) FROM roster_version WHERE user = 'tybalt'"),
              ==, 0);
    store_close(st);
}

/* Every subscription state of RFC 6121 Appendix A, the pre-approval and the hidden flag
 * come back as they went in. */
static void roster_states_and_hidden(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("states", users);
    char jid[32];
    if (!st)
        return;
    for (unsigned i = 0; i < 64; i++) {
        snprintf(jid, sizeof jid, "c%02u@example.com", i);
        struct store_roster_item it = item(jid, NULL, (enum store_sub)(i & 3));
        it.ask = i & 4;
        it.pending_in = i & 8;
        it.approved = i & 16;
        it.hidden = i & 32;
        CHECK_INT(store_roster_put_sync(st, "juliet", &it, NULL), ==, 0);
    }
    struct store_roster r;
    CHECK_INT(store_roster_get_sync(st, "juliet", &r), ==, 0);
    CHECK_INT(r.n, ==, 64);
    CHECK_INT(r.ver, ==, 64);
    for (unsigned i = 0; i < r.n && i < 64; i++) {
        const struct store_roster_item *it = &r.items[i];
        snprintf(jid, sizeof jid, "c%02u@example.com", i);
        CHECK_TEXT(it->jid, jid);
        CHECK_INT(it->sub, ==, i & 3);
        CHECK_INT(it->ask, ==, !!(i & 4));
        CHECK_INT(it->pending_in, ==, !!(i & 8));
        CHECK_INT(it->approved, ==, !!(i & 16));
        CHECK_INT(it->hidden, ==, !!(i & 32));
        CHECK_INT(it->ver, ==, i + 1);
        CHECK(it->name == NULL);
        CHECK(it->groups == NULL && it->ngroups == 0);
    }
    store_roster_free(&r);
    CHECK(r.items == NULL && r.n == 0);
    /* Hidden items count: they take room, and a stranger can make them. */
    CHECK_INT(store_roster_count_sync(st, "juliet"), ==, 64);

    /* "None + Pending In" for a stranger, then the user adds him: visible, same row. */
    struct store_roster_item s = item("paris@verona.lit", NULL, STORE_SUB_NONE);
    s.pending_in = s.hidden = true;
    CHECK_INT(store_roster_put_sync(st, "juliet", &s, NULL), ==, 0);
    s.hidden = false;
    s.name = "";
    CHECK_INT(store_roster_put_sync(st, "juliet", &s, NULL), ==, 0);
    CHECK_INT(store_roster_count_sync(st, "juliet"), ==, 65);
    CHECK_INT(store_roster_get_sync(st, "juliet", &r), ==, 0);
    CHECK_INT(r.n, ==, 65);
    if (r.n == 65) {
        CHECK_TEXT(r.items[64].jid, "paris@verona.lit");
        CHECK(r.items[64].name && !r.items[64].name[0]); /* "" is a name, not none */
        CHECK(!r.items[64].hidden && r.items[64].pending_in);
    }
    store_roster_free(&r);
    store_close(st);
}

static void roster_groups(void)
{
    const char *users[] = {"romeo", NULL};
    struct store *st = fresh("groups", users);
    if (!st)
        return;
    const char *g1[] = {"Montagues", "Friends", "\xc3\x89quipe"};
    struct store_roster_item a = item("benvolio@montague.lit", "Ben", STORE_SUB_BOTH);
    a.groups = g1;
    a.ngroups = 3;
    struct store_roster_item b = item("balthasar@montague.lit", NULL, STORE_SUB_TO);
    b.groups = g1 + 1;
    b.ngroups = 1;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, NULL), ==, 0);
    CHECK_INT(store_roster_put_sync(st, "romeo", &b, NULL), ==, 0);
    /* Items in byte order of jid, groups in byte order of name. */
    CHECK_TEXT(roster_of(st, "romeo"), "2: balthasar@montague.lit(~)/to/----/2[Friends]"
                                       " benvolio@montague.lit(Ben)/both/----/1"
                                       "[Friends,Montagues,\xc3\x89quipe]");
    /* Replacing replaces the groups too: none left, then others. */
    a.ngroups = 0;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, NULL), ==, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "3: balthasar@montague.lit(~)/to/----/2[Friends]"
                                       " benvolio@montague.lit(Ben)/both/----/3[]");
    const char *g2[] = {"Verona"};
    a.groups = g2;
    a.ngroups = 1;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, NULL), ==, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "4: balthasar@montague.lit(~)/to/----/2[Friends]"
                                       " benvolio@montague.lit(Ben)/both/----/4[Verona]");
    /* A deleted item's groups go with it. */
    CHECK_INT(store_roster_delete_sync(st, "romeo", "benvolio@montague.lit", NULL), ==, 0);
    CHECK_INT(sql1(db_path("groups"), "SELECT count(*) FROM roster_groups"), ==, 1);

    /* The most groups an item may have, each as long as allowed, round trip. */
    static char names[STORE_GROUPS_MAX][16];
    static const char *many[STORE_GROUPS_MAX + 1];
    static char longest[STORE_TEXT_MAX + 1];
    for (int i = 0; i < STORE_GROUPS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "g%04d", i);
        many[i] = names[i];
    }
    memset(longest, 'x', STORE_TEXT_MAX);
    many[0] = longest;
    struct store_roster_item m = item("nurse@capulet.lit", longest, STORE_SUB_NONE);
    m.groups = many;
    m.ngroups = STORE_GROUPS_MAX;
    CHECK_INT(store_roster_put_sync(st, "romeo", &m, NULL), ==, 0);
    struct store_roster r;
    CHECK_INT(store_roster_get_sync(st, "romeo", &r), ==, 0);
    CHECK_INT(r.n, ==, 2);
    if (r.n == 2) {
        const struct store_roster_item *x = &r.items[1];
        CHECK_TEXT(x->name, longest);
        CHECK_INT(x->ngroups, ==, STORE_GROUPS_MAX);
        for (size_t i = 0; i + 1 < x->ngroups; i++)
            CHECK_TEXT(x->groups[i], names[i + 1]);
        CHECK_TEXT(x->groups[STORE_GROUPS_MAX - 1], longest);
    }
    store_roster_free(&r);
    store_close(st);
}

/* A put or delete that fails halfway leaves no trace: neither the version nor any row
 * changed. The failures are injected with triggers, from a second connection. */
static void roster_atomic(void)
{
    const char *users[] = {"romeo", NULL};
    const char *path = db_path("atomic");
    struct store *st = fresh("atomic", users);
    uint64_t ver = 0;
    if (!st)
        return;
    const char *g[] = {"Friends", "boom"};
    struct store_roster_item a = item("juliet@capulet.lit", "Juliet", STORE_SUB_BOTH);
    a.groups = g;
    a.ngroups = 1;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), ==, 0);
    CHECK_INT(ver, ==, 1);
    CHECK_INT(trigger_fail(path, "boom", "BEFORE INSERT ON roster_groups", "NEW.grp = 'boom'"), ==,
              0);
    /* The second group fails, after the version, the item and the first group. */
    a.name = "Changed";
    a.sub = STORE_SUB_NONE;
    a.ngroups = 2;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), <, 0);
    CHECK_TEXT(roster_of(st, "romeo"), "1: juliet@capulet.lit(Juliet)/both/----/1[Friends]");
    /* A new item that fails is not there at all. */
    a.jid = "nurse@capulet.lit";
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), <, 0);
    CHECK_INT(store_roster_count_sync(st, "romeo"), ==, 1);
    /* The next put that works gets the next version: no gap, no reuse. */
    a.ngroups = 1;
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, &ver), ==, 0);
    CHECK_INT(ver, ==, 2);

    /* A delete whose version bump fails keeps the item. */
    CHECK_INT(trigger_fail(path, "bump", "BEFORE UPDATE ON roster_version", "true"), ==, 0);
    CHECK_INT(store_roster_delete_sync(st, "romeo", "nurse@capulet.lit", &ver), <, 0);
    CHECK_INT(store_roster_count_sync(st, "romeo"), ==, 2);
    CHECK_INT(sql1(path, "SELECT count(*) FROM roster_groups WHERE jid = 'nurse@capulet.lit'"), ==,
              1);
    CHECK_INT(trigger_drop(path, "bump", "roster_version"), ==, 0);
    CHECK_INT(store_roster_delete_sync(st, "romeo", "nurse@capulet.lit", &ver), ==, 0);
    CHECK_INT(ver, ==, 3);
    store_close(st);
}

/*
 * A roster is read as one snapshot: its version and its items agree even when another
 * writer commits between the two reads. Made to happen, not hoped for: an SQLite
 * auto-extension traces the statements of the store's own connection, and when the
 * items query (the one with "FROM roster AS r") starts, a second connection commits a
 * new item and version. The snapshot taken by the version query must not see it.
 */
static sqlite3 *intruder;
static int intrusions;

static int intrude(unsigned type, void *ctx, void *p, void *x)
{
    (void)type, (void)ctx, (void)x;
    const char *sql = sqlite3_sql(p);
    if (intruder && sql && strstr(sql, "FROM roster AS r")) {
        sqlite3 *w = intruder;
        intruder = NULL; /* once */
        if (sqlite3_exec(w,
                         "BEGIN IMMEDIATE;"
                         "UPDATE roster_version SET ver = ver + 1 WHERE user = 'romeo';"
                         "INSERT INTO roster VALUES ('romeo', 'intruder@example.com', NULL,"
                         " 0, 0, 0, 0, 0, (SELECT ver FROM roster_version WHERE user = 'romeo'));"
                         "COMMIT",
                         NULL, NULL, NULL) == SQLITE_OK)
            intrusions++;
    }
    return 0;
}

static int trace_init(sqlite3 *db, char **err, const struct sqlite3_api_routines *api)
{
    (void)err, (void)api;
    sqlite3_trace_v2(db, SQLITE_TRACE_STMT, intrude, NULL);
    return SQLITE_OK;
}

static void roster_get_snapshot(void)
{
    const char *path = db_path("snapshot");
    sqlite3 *w;
    struct store *st = fresh("snapshot", (const char *[]){"romeo", NULL});
    if (!st)
        return;
    struct store_roster_item a = item("juliet@capulet.lit", NULL, STORE_SUB_BOTH);
    CHECK_INT(store_roster_put_sync(st, "romeo", &a, NULL), ==, 0);
    store_close(st);

    /* Connections opened from now on get the trace: the store's, and w. */
    CHECK_INT(sqlite3_auto_extension((void (*)(void))trace_init), ==, SQLITE_OK);
    st = open_db(path, 0);
    CHECK_INT(sqlite3_open(path, &w), ==, SQLITE_OK);
    sqlite3_busy_timeout(w, 5000);
    if (st) {
        intrusions = 0;
        intruder = w; /* published to the worker by the submission's mutex */
        CHECK_TEXT(roster_of(st, "romeo"), "1: juliet@capulet.lit(~)/both/----/1[]");
        CHECK_INT(intrusions, ==, 1);
        /* The intruder's commit is there for the next read. */
        CHECK_TEXT(roster_of(st, "romeo"), "2: intruder@example.com(~)/none/----/2[]"
                                           " juliet@capulet.lit(~)/both/----/1[]");
        store_close(st);
    }
    sqlite3_close(w);
    sqlite3_cancel_auto_extension((void (*)(void))trace_init);
}

/* A roster comes with what else a login loads: the blocklist, and whether offline
 * messages wait; a user with neither gets neither. */
static void roster_get_loads_the_rest(void)
{
    struct store *st = fresh("loads", (const char *[]){"juliet", "romeo", NULL});
    if (!st)
        return;
    CHECK_TEXT(roster_of(st, "juliet"), "0:");
    CHECK_INT(push(st, "juliet", "<m/>", 10), ==, 0);
    CHECK_INT(store_block_add_sync(st, "juliet", (const char *[]){"tybalt@capulet.lit"}, 1), ==, 1);
    CHECK_TEXT(roster_of(st, "juliet"), "0: blocked:tybalt@capulet.lit offline");
    CHECK_TEXT(roster_of(st, "romeo"), "0:");
    CHECK_INT(store_offline_delete_sync(st, "juliet", UINT64_MAX), ==, 1);
    CHECK_TEXT(roster_of(st, "juliet"), "0: blocked:tybalt@capulet.lit");
    store_close(st);
}

/* ---- subscription requests --------------------------------------------------------------- */

static void subreqs(void)
{
    const char *users[] = {"juliet", "nurse", NULL};
    struct store *st = fresh("subreqs", users);
    if (!st)
        return;
    const char p1[] = "<presence from='romeo@montague.lit' type='subscribe'/>";
    const char p2[] = "<presence from='paris@verona.lit' type='subscribe'/>";
    const char p3[] =
        "<presence from='romeo@montague.lit' type='subscribe'><status>again</status></presence>";
    CHECK_TEXT(subreqs_of(st, "juliet"), "");
    CHECK_INT(store_subreq_put_sync(st, "juliet", "romeo@montague.lit", p1, strlen(p1)), ==, 0);
    CHECK_INT(store_subreq_put_sync(st, "juliet", "paris@verona.lit", p2, strlen(p2)), ==, 0);
    /* A second request from romeo replaces the first and keeps its place. */
    CHECK_INT(store_subreq_put_sync(st, "juliet", "romeo@montague.lit", p3, strlen(p3)), ==, 0);
    char want[512];
    snprintf(want, sizeof want, "romeo@montague.lit=%s paris@verona.lit=%s", p3, p2);
    CHECK_TEXT(subreqs_of(st, "juliet"), want);
    CHECK_TEXT(subreqs_of(st, "nurse"), "");

    /* Bytes come back as they went in, a NUL included. */
    const char bin[] = {'<', 'x', '\0', '\xff', '>'};
    CHECK_INT(store_subreq_put_sync(st, "nurse", "x@y", bin, sizeof bin), ==, 0);
    struct store_subreqs l;
    CHECK_INT(store_subreq_list_sync(st, "nurse", &l), ==, 0);
    CHECK_INT(l.n, ==, 1);
    if (l.n == 1) {
        CHECK_INT(l.items[0].len, ==, sizeof bin);
        CHECK(!memcmp(l.items[0].stanza, bin, sizeof bin));
    }
    store_subreqs_free(&l);
    CHECK(l.items == NULL && l.n == 0);

    /* Delete: 1 when there was one, 0 when not; -ENOENT only without an account. */
    CHECK_INT(store_subreq_delete_sync(st, "juliet", "romeo@montague.lit"), ==, 1);
    CHECK_INT(store_subreq_delete_sync(st, "juliet", "romeo@montague.lit"), ==, 0);
    snprintf(want, sizeof want, "paris@verona.lit=%s", p2);
    CHECK_TEXT(subreqs_of(st, "juliet"), want);

    CHECK_INT(store_subreq_put_sync(st, "tybalt", "x@y", p1, strlen(p1)), ==, -ENOENT);
    CHECK_INT(store_subreq_delete_sync(st, "tybalt", "x@y"), ==, -ENOENT);
    CHECK_TEXT(subreqs_of(st, "tybalt"), "ENOENT");
    store_close(st);
}

/* ---- offline messages -------------------------------------------------------------------- */

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void offline_order_and_stamps(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    struct store *st = fresh("offline", users);
    char msg[32];
    if (!st)
        return;
    CHECK_TEXT(offline_of(st, "juliet", 10), "");
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 0);
    int64_t before = now_us();
    for (int i = 0; i < 5; i++) {
        snprintf(msg, sizeof msg, "<m%d/>", i);
        CHECK_INT(push(st, "juliet", msg, 100), ==, 0);
        CHECK_INT(push(st, "romeo", msg, 100), ==, 0); /* interleaved with another user's */
        usleep(2000);
    }
    int64_t after = now_us();
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 5);
    CHECK_TEXT(offline_of(st, "juliet", 10), "<m0/> <m1/> <m2/> <m3/> <m4/>");
    CHECK_TEXT(offline_of(st, "juliet", 2), "<m0/> <m1/>");

    struct store_offline o;
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 10, &o), ==, 0);
    CHECK_INT(o.n, ==, 5);
    for (size_t i = 0; i < o.n; i++) {
        int64_t t = o.msgs[i].stamp_s * 1000000 + o.msgs[i].stamp_us;
        CHECK_INT(o.msgs[i].stamp_us, <, 1000000);
        CHECK_INT(t, >=, before);
        CHECK_INT(t, <=, after);
        if (i) {
            CHECK_INT(o.msgs[i].seq, >, o.msgs[i - 1].seq);
            /* Microseconds kept: 2 ms apart, so not equal after rounding to seconds. */
            int64_t p = o.msgs[i - 1].stamp_s * 1000000 + o.msgs[i - 1].stamp_us;
            CHECK_INT(t - p, >=, 2000);
        }
    }
    store_offline_free(&o);
    CHECK(o.msgs == NULL && o.n == 0);

    CHECK_INT(push(st, "tybalt", "<m/>", 100), ==, -ENOENT);
    CHECK_TEXT(offline_of(st, "tybalt", 10), "ENOENT");
    CHECK_INT(store_offline_delete_sync(st, "tybalt", 100), ==, -ENOENT);
    CHECK_INT(store_offline_count_sync(st, "tybalt"), ==, -ENOENT);
    store_close(st);
}

static void offline_quota(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    struct store *st = fresh("quota", users);
    if (!st)
        return;
    for (int i = 0; i < 3; i++)
        CHECK_INT(push(st, "juliet", "<m/>", 3), ==, 0);
    CHECK_INT(push(st, "juliet", "<m/>", 3), ==, -EDQUOT);
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 3);
    /* Another user's box is his own; a higher quota lets more in. */
    CHECK_INT(push(st, "romeo", "<m/>", 3), ==, 0);
    CHECK_INT(push(st, "juliet", "<m/>", 4), ==, 0);
    CHECK_INT(push(st, "juliet", "<m/>", 4), ==, -EDQUOT);
    /* Quota 0 stores nothing, but still tells a missing account from a full box. */
    CHECK_INT(push(st, "romeo", "<m/>", 0), ==, -EDQUOT);
    CHECK_INT(push(st, "tybalt", "<m/>", 0), ==, -ENOENT);
    CHECK_INT(push(st, "tybalt", "<m/>", 1000), ==, -ENOENT);
    /* Room again after a delete. */
    CHECK_INT(store_offline_delete_sync(st, "juliet", UINT64_MAX), ==, 4);
    CHECK_INT(push(st, "juliet", "<m/>", 4), ==, 0);
    store_close(st);
}

/* The quota in bytes, and one sender's share of messages and of bytes: each refuses
 * alone, other senders still get in, and room comes back with a delete. */
static void offline_quota_bytes_and_senders(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    struct store *st = fresh("quota2", users);
    if (!st)
        return;
    const char *a = "romeo@montague.lit", *b = "paris@verona.lit", *c = "nurse@capulet.lit";
    /* 10 messages, 40 bytes; one sender 3 messages, 20 bytes. Each <mN/> is 5 bytes. */
    struct store_offline_quota q = {10, 40, 3, 20};
    for (int i = 0; i < 3; i++)
        CHECK_INT(push_from(st, "juliet", a, "<m1/>", &q), ==, 0);
    CHECK_INT(push_from(st, "juliet", a, "<m1/>", &q), ==, -EDQUOT);   /* a's messages */
    CHECK_INT(push_from(st, "juliet", b, "<m2/>", &q), ==, 0);         /* b is not a */
    CHECK_INT(push_from(st, "juliet", b, "<m123456789/>", &q), ==, 0); /* b: 5 + 14 bytes */
    CHECK_INT(push_from(st, "juliet", b, "<m2/>", &q), ==, -EDQUOT);   /* b's bytes: 24 */
    CHECK_INT(push_from(st, "romeo", b, "<m2/>", &q), ==, 0);          /* another box */
    /* juliet holds 34 bytes: 6 more fit, then nothing more, whoever sends it. */
    CHECK_INT(push_from(st, "juliet", c, "<m34/>", &q), ==, 0);
    CHECK_INT(push_from(st, "juliet", c, "<m/>", &q), ==, -EDQUOT);
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 6);
    /* A message larger than the whole quota never fits; a zero share shuts out all. */
    CHECK_INT(push_from(st, "romeo", c, "<m1234567890123456789012345678901234567890/>", &q), ==,
              -EDQUOT);
    struct store_offline_quota none = {10, 40, 0, 20};
    CHECK_INT(push_from(st, "romeo", c, "<m/>", &none), ==, -EDQUOT);
    /* Deleting what was delivered gives its room back, to its sender and in all. */
    struct store_offline o;
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 1, &o), ==, 0);
    CHECK_INT(o.n, ==, 1);
    CHECK_INT(store_offline_delete_sync(st, "juliet", o.n ? o.msgs[0].seq : 0), ==, 1);
    store_offline_free(&o);
    CHECK_INT(push_from(st, "juliet", a, "<m1/>", &q), ==, 0); /* a's third again */
    CHECK_INT(push_from(st, "juliet", a, "<m1/>", &q), ==, -EDQUOT);
    CHECK_INT(store_offline_delete_sync(st, "juliet", UINT64_MAX), ==, 6);
    CHECK_INT(sql1(db_path("quota2"), "SELECT bytes FROM offline_usage WHERE user = 'juliet'"), ==,
              0);
    CHECK_INT(sql1(db_path("quota2"), "SELECT count(*) FROM offline_sender_usage"
                                      " WHERE user = 'juliet'"),
              ==, 0); /* a sender's row goes with its last message */
    CHECK_INT(push_from(st, "juliet", a, "<m1/>", &q), ==, 0);
    CHECK_INT(push_from(st, "tybalt", a, "<m1/>", &q), ==, -ENOENT);
    store_close(st);
}

/* Fetching deletes nothing; a delete takes what was fetched and nothing newer; a
 * process that dies between the two delivers again rather than losing. */
static void offline_two_phase(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    const char *path = db_path("twophase");
    struct store *st = fresh("twophase", users);
    struct store_offline o;
    char msg[32];
    if (!st)
        return;
    for (int i = 0; i < 5; i++) {
        snprintf(msg, sizeof msg, "<m%d/>", i);
        CHECK_INT(push(st, "juliet", msg, 100), ==, 0);
    }
    CHECK_INT(push(st, "romeo", "<r/>", 100), ==, 0);
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 3, &o), ==, 0);
    CHECK_INT(o.n, ==, 3);
    uint64_t last = o.n ? o.msgs[o.n - 1].seq : 0, first = o.n ? o.msgs[0].seq : 0;
    store_offline_free(&o);
    CHECK_INT(store_offline_count_sync(st, "juliet"), ==, 5);

    /* The process dies here: the messages are still there for the next one. */
    store_close(st);
    st = open_db(path, 0);
    if (!st)
        return;
    CHECK_TEXT(offline_of(st, "juliet", 3), "<m0/> <m1/> <m2/>");
    /* A message that arrives between fetch and delete survives the delete. */
    CHECK_INT(push(st, "juliet", "<late/>", 100), ==, 0);
    CHECK_INT(store_offline_delete_sync(st, "juliet", first - 1), ==, 0);
    CHECK_INT(store_offline_delete_sync(st, "juliet", last), ==, 3);
    CHECK_TEXT(offline_of(st, "juliet", 10), "<m3/> <m4/> <late/>");
    CHECK_INT(store_offline_delete_sync(st, "juliet", last), ==, 0);
    /* Another user's messages are not the delete's business, whatever their seq. */
    CHECK_TEXT(offline_of(st, "romeo", 10), "<r/>");
    CHECK_INT(store_offline_delete_sync(st, "juliet", UINT64_MAX), ==, 3);
    CHECK_TEXT(offline_of(st, "romeo", 10), "<r/>");

    /* A seq is never reused, even when the newest message is gone: a delete up to a
     * seq the caller saw cannot take a message it has not seen. */
    CHECK_INT(store_offline_fetch_sync(st, "romeo", 1, &o), ==, 0);
    uint64_t rseq = o.n ? o.msgs[0].seq : 0;
    store_offline_free(&o);
    CHECK_INT(store_offline_delete_sync(st, "romeo", rseq), ==, 1);
    CHECK_INT(push(st, "romeo", "<r2/>", 100), ==, 0);
    CHECK_INT(store_offline_fetch_sync(st, "romeo", 1, &o), ==, 0);
    CHECK_INT(o.n, ==, 1);
    if (o.n)
        CHECK_INT(o.msgs[0].seq, >, rseq);
    store_offline_free(&o);
    store_close(st);
}

static void offline_sizes(void)
{
    const char *users[] = {"juliet", NULL};
    struct store *st = fresh("sizes", users);
    struct store_offline o;
    if (!st)
        return;
    char *big = malloc(STORE_STANZA_MAX + 1);
    if (!big) {
        store_close(st);
        return;
    }
    memset(big, 'b', STORE_STANZA_MAX + 1);
    CHECK_INT(
        store_offline_push_sync(st, "juliet", "r@m.lit", big, STORE_STANZA_MAX + 1, QUOTA(100)), ==,
        -EINVAL);
    CHECK_INT(store_offline_push_sync(st, "juliet", "r@m.lit", big, 0, QUOTA(100)), ==, -EINVAL);
    CHECK_INT(store_offline_push_sync(st, "juliet", "r@m.lit", NULL, 5, QUOTA(100)), ==, -EINVAL);
    /* The largest stanza is stored, and one fetch returns it whole, alone: larger than
     * the fetch budget, it still goes first. */
    big[0] = 'B';
    CHECK_INT(store_offline_push_sync(st, "juliet", "r@m.lit", big, STORE_STANZA_MAX, QUOTA(100)),
              ==, 0);
    for (int i = 0; i < 3; i++)
        CHECK_INT(store_offline_push_sync(st, "juliet", "r@m.lit", big, STORE_FETCH_BYTES / 2,
                                          QUOTA(100)),
                  ==, 0);
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 10, &o), ==, 0);
    CHECK_INT(o.n, ==, 1);
    if (o.n) {
        CHECK_INT(o.msgs[0].len, ==, STORE_STANZA_MAX);
        CHECK(o.msgs[0].stanza[0] == 'B' && o.msgs[0].stanza[STORE_STANZA_MAX - 1] == 'b');
        CHECK_INT(store_offline_delete_sync(st, "juliet", o.msgs[0].seq), ==, 1);
    }
    store_offline_free(&o);
    /* Then the budget: two halves fit, the third waits for the next fetch. */
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 10, &o), ==, 0);
    CHECK_INT(o.n, ==, 2);
    store_offline_free(&o);
    CHECK_INT(store_offline_fetch_sync(st, "juliet", 1, &o), ==, 0);
    CHECK_INT(o.n, ==, 1);
    store_offline_free(&o);
    free(big);
    store_close(st);
}

/* ---- blocklists -------------------------------------------------------------------------- */

static void blocklist(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    const char *path = db_path("block");
    struct store *st = fresh("block", users);
    if (!st)
        return;
    const char *ab[] = {"tybalt@capulet.lit", "paris@verona.lit"};
    const char *bc[] = {"paris@verona.lit", "verona.lit/rosaline"};
    const char *dup[] = {"x@y", "x@y"};
    CHECK_TEXT(blocks_of(st, "juliet"), "");
    CHECK_INT(store_block_add_sync(st, "juliet", ab, 2), ==, 2);
    /* Blocking again is no error; the count says what was new. */
    CHECK_INT(store_block_add_sync(st, "juliet", ab, 2), ==, 0);
    CHECK_INT(store_block_add_sync(st, "juliet", bc, 2), ==, 1);
    CHECK_INT(store_block_add_sync(st, "juliet", dup, 2), ==, 1);
    CHECK_TEXT(blocks_of(st, "juliet"),
               "paris@verona.lit,tybalt@capulet.lit,verona.lit/rosaline,x@y");
    CHECK_TEXT(blocks_of(st, "romeo"), "");

    CHECK_INT(store_block_remove_sync(st, "juliet", bc, 2), ==, 2);
    CHECK_INT(store_block_remove_sync(st, "juliet", bc, 2), ==, 0);
    CHECK_TEXT(blocks_of(st, "juliet"), "tybalt@capulet.lit,x@y");
    CHECK_INT(store_block_clear_sync(st, "juliet"), ==, 2);
    CHECK_INT(store_block_clear_sync(st, "juliet"), ==, 0);
    CHECK_TEXT(blocks_of(st, "juliet"), "");

    /* All or none: the second JID fails, the first is not added either. */
    CHECK_INT(trigger_fail(path, "boom", "BEFORE INSERT ON blocklist", "NEW.jid = 'boom'"), ==, 0);
    const char *bad[] = {"ok@example.com", "boom"};
    CHECK_INT(store_block_add_sync(st, "juliet", bad, 2), <, 0);
    CHECK_TEXT(blocks_of(st, "juliet"), "");
    CHECK_INT(store_block_add_sync(st, "juliet", bad, 1), ==, 1);
    CHECK_INT(trigger_fail(path, "boom2", "BEFORE DELETE ON blocklist",
                           "OLD.jid = 'tybalt@capulet.lit'"),
              ==, 0);
    CHECK_INT(store_block_add_sync(st, "juliet", ab, 1), ==, 1);
    const char *rm[] = {"ok@example.com", "tybalt@capulet.lit"};
    CHECK_INT(store_block_remove_sync(st, "juliet", rm, 2), <, 0);
    CHECK_TEXT(blocks_of(st, "juliet"), "ok@example.com,tybalt@capulet.lit");

    CHECK_INT(store_block_add_sync(st, "tybalt", ab, 2), ==, -ENOENT);
    CHECK_INT(store_block_remove_sync(st, "tybalt", ab, 2), ==, -ENOENT);
    CHECK_INT(store_block_clear_sync(st, "tybalt"), ==, -ENOENT);
    CHECK_TEXT(blocks_of(st, "tybalt"), "ENOENT");
    store_close(st);
}

/* ---- accounts ---------------------------------------------------------------------------- */

/* Deleting an account deletes all of it, and a new account of the same name starts
 * empty. */
static void account_delete_cascades(void)
{
    const char *users[] = {"juliet", "romeo", NULL};
    const char *path = db_path("cascade");
    struct store *st = fresh("cascade", users);
    struct store_creds c = make_creds(2);
    if (!st)
        return;
    const char *g[] = {"Friends"};
    const char *jids[] = {"tybalt@capulet.lit"};
    for (int u = 0; u < 2; u++) {
        struct store_roster_item it = item("nurse@capulet.lit", "Nurse", STORE_SUB_BOTH);
        it.groups = g;
        it.ngroups = 1;
        CHECK_INT(store_roster_put_sync(st, users[u], &it, NULL), ==, 0);
        CHECK_INT(store_subreq_put_sync(st, users[u], "paris@verona.lit", "<p/>", 4), ==, 0);
        CHECK_INT(push(st, users[u], "<m/>", 10), ==, 0);
        CHECK_INT(store_block_add_sync(st, users[u], jids, 1), ==, 1);
    }
    CHECK_INT(store_account_exists_sync(st, "juliet"), ==, 0);
    CHECK_INT(store_account_delete_sync(st, "juliet"), ==, 0);
    CHECK_INT(store_account_exists_sync(st, "juliet"), ==, -ENOENT);
    const char *tables[] = {"roster_version", "roster",    "roster_groups", "subreqs",
                            "offline",        "blocklist", "offline_usage", "offline_sender_usage"};
    char sql[128];
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE user = 'juliet'", tables[i]);
        CHECK_INT(sql1(path, sql), ==, 0);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE user = 'romeo'", tables[i]);
        CHECK_INT(sql1(path, sql), ==, 1); /* the other account's rows stay */
    }
    CHECK_INT(store_account_create_sync(st, "juliet", &c), ==, 0);
    CHECK_TEXT(roster_of(st, "juliet"), "0:");
    CHECK_TEXT(subreqs_of(st, "juliet"), "");
    CHECK_TEXT(offline_of(st, "juliet", 10), "");
    CHECK_TEXT(blocks_of(st, "juliet"), "");
    CHECK_INT(store_account_exists_sync(st, "tybalt"), ==, -ENOENT);
    CHECK_INT(store_account_exists_sync(st, "romeo"), ==, 0);
    store_close(st);
}

int main(void)
{
    if (tmpdir_make() < 0)
        return 1;
    /* Errors the tests provoke on purpose are logged; keep the output to those. */
    log_init("store-sqlite-im-test", LOG_LEVEL_WARN);
    /* SQLite's own schema history and snapshot; PostgreSQL's are in store_pgsql.c. */
    if (!test_pg) {
        RUN(migrates_from_v1);
        RUN(migrates_from_v2);
        RUN(roster_get_snapshot);
    }
    RUN(roster_versions);
    RUN(roster_states_and_hidden);
    RUN(roster_groups);
    RUN(roster_atomic);
    RUN(roster_get_loads_the_rest);
    RUN(subreqs);
    RUN(offline_order_and_stamps);
    RUN(offline_quota);
    RUN(offline_quota_bytes_and_senders);
    RUN(offline_two_phase);
    RUN(offline_sizes);
    RUN(blocklist);
    RUN(account_delete_cascades);
    tmpdir_remove();
    return test_done("store_sqlite_im");
}
