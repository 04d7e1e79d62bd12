/*
 * Helpers shared by the store's test programs (store.c, store_im.c, store_sqlite_im.c,
 * store_pgsql.c): databases, direct SQL on them (to check what the back end promises
 * about them, or to break them on purpose), credentials, polling a client. Include it
 * once, after test.h.
 *
 * Two back ends. Run plainly, the tests use SQLite files in a temporary directory.
 * With STARLING_TEST_PG set to a libpq conninfo (tests/pg-run starts a PostgreSQL and
 * sets it), the same tests run against PostgreSQL: each "database" is then a schema of
 * that database, made fresh the first time a test names it, and db_path() returns a
 * conninfo that puts it first on the search path. SQL the back ends spell differently
 * goes through BY_BACKEND(); what only one back end has, a test checks only there.
 */
#ifndef STARLING_STORE_TEST_H
#define STARLING_STORE_TEST_H

#include "common/store/store.h"
#include "test.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[64];
static const char *test_pg; /* STARLING_TEST_PG, or NULL: SQLite */

#define BY_BACKEND(sqlite, pg) (test_pg ? (pg) : (sqlite))

/* Makes tmpdir; 0, or -1 after saying why. */
static inline int tmpdir_make(void)
{
    test_pg = getenv("STARLING_TEST_PG");
    if (test_pg && !test_pg[0])
        test_pg = NULL;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/starling-store-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

static inline void tmpdir_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

static inline void pg_quiet(void *arg, const char *msg)
{
    (void)arg, (void)msg; /* DROP ... IF EXISTS's notices */
}

/* Runs SQL on PostgreSQL (conninfo `dsn`), as sql1() below. The tests name a user's
 * column as SQLite's schema does, "user"; PostgreSQL's is "username" (user is a
 * reserved word there), and the word is rewritten so. */
static inline long long pg_sql1(const char *dsn, const char *in)
{
    long long v = -1;
    char sql[4096];
    size_t o = 0;
    for (const char *p = in; *p && o + 16 < sizeof sql;) {
        bool word = !strncmp(p, "user", 4) && (p == in || !(isalnum((unsigned char)p[-1]) ||
                                                            p[-1] == '_')) &&
                    !(isalnum((unsigned char)p[4]) || p[4] == '_');
        if (word) {
            memcpy(sql + o, "username", 8);
            o += 8;
            p += 4;
        } else {
            sql[o++] = *p++;
        }
    }
    sql[o] = '\0';
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test: %s", PQerrorMessage(c));
        goto out;
    }
    PQsetNoticeProcessor(c, pg_quiet, NULL);
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        const char *t = PQgetvalue(r, 0, 0);
        char *end;
        v = strtoll(t, &end, 10);
        if (*end || end == t)
            v = t[0];
    } else if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
        v = 0;
    } else {
        fprintf(stderr, "test: %s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
out:
    PQfinish(c);
    return v;
}

/* The database of one test: a file in tmpdir, or a PostgreSQL schema made fresh the
 * first time the name comes (a name may be asked for again, to reopen it). */
static inline const char *db_path(const char *name)
{
    static char path[1024];
    static char made[64][32];
    static int nmade;
    if (!test_pg) {
        snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
        return path;
    }
    bool known = false;
    for (int i = 0; i < nmade; i++)
        known |= !strcmp(made[i], name);
    if (!known) {
        char sql[256];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS t_%s CASCADE; CREATE SCHEMA t_%s", name,
                 name);
        if (pg_sql1(test_pg, sql) != 0)
            TEST_FAIL("cannot make schema t_%s", name);
        if (nmade < 64)
            snprintf(made[nmade++], sizeof made[0], "%s", name);
    }
    snprintf(path, sizeof path, "%s options='-csearch_path=t_%s'", test_pg, name);
    return path;
}

static inline struct store_opts db_opts(const char *path)
{
    if (test_pg)
        return (struct store_opts){.backend = STORE_BACKEND_POSTGRESQL, .dsn = path};
    return (struct store_opts){.backend = STORE_BACKEND_SQLITE, .path = path};
}

static inline struct store *open_db(const char *path, unsigned queue_max)
{
    struct store *st = NULL;
    struct store_opts o = db_opts(path);
    o.queue_max = queue_max;
    int rc = store_open(&o, &st);
    if (rc != 0)
        TEST_FAIL("store_open(%s): %s", path, strerror(-rc));
    return st;
}

/* Deterministic credentials: both mechanisms, bytes derived from seed. */
static inline struct store_creds make_creds(unsigned seed)
{
    struct store_creds c;
    memset(&c, 0, sizeof c);
    c.sha1.iterations = 4096 + seed;
    c.sha1.salt_len = 16;
    c.sha256.iterations = 8192 + seed;
    c.sha256.salt_len = 32;
    for (unsigned i = 0; i < 32; i++) {
        c.sha1.salt[i] = (uint8_t)(i < 16 ? seed * 7 + i : 0);
        c.sha256.salt[i] = (uint8_t)(seed * 11 + i);
        c.sha256.stored_key[i] = (uint8_t)(seed * 13 + i);
        c.sha256.server_key[i] = (uint8_t)(seed * 17 + i);
        if (i < 20) {
            c.sha1.stored_key[i] = (uint8_t)(seed * 19 + i);
            c.sha1.server_key[i] = (uint8_t)(seed * 23 + i);
        }
    }
    return c;
}

static inline bool creds_eq(const struct store_creds *a, const struct store_creds *b)
{
    return !memcmp(a, b, sizeof *a);
}

/* Runs SQL on the file directly, with foreign keys on as the store has them. Returns
 * the first column of the first row as an integer (or the text's first char), 0 when
 * there is no row, -1 on error. Several statements run in turn; the last one answers. */
static inline long long sql1(const char *path, const char *sql)
{
    if (test_pg)
        return pg_sql1(path, sql);
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    for (const char *next = sql; next && *next;) {
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db, next, -1, &st, &next) != SQLITE_OK) {
            v = -1;
            goto out;
        }
        if (!st)
            break; /* trailing white space */
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            v = sqlite3_column_type(st, 0) == SQLITE_TEXT ? sqlite3_column_text(st, 0)[0]
                                                          : sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            v = 0;
        else {
            v = -1;
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* A trigger that makes `event` (e.g. "BEFORE INSERT ON blocklist") fail when `when` holds
 * ("NEW.jid = 'boom'"), and its removal. */
static inline long long trigger_fail(const char *path, const char *name, const char *event,
                                     const char *when)
{
    char sql[1024];
    if (test_pg)
        snprintf(sql, sizeof sql,
                 "CREATE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS"
                 " $$ BEGIN RAISE EXCEPTION 'injected'; END $$;"
                 " CREATE TRIGGER %s %s FOR EACH ROW WHEN (%s) EXECUTE FUNCTION %s()",
                 name, name, event, when, name);
    else
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER %s %s WHEN %s BEGIN SELECT RAISE(ABORT, 'injected'); END", name,
                 event, when);
    return sql1(path, sql);
}

static inline long long trigger_drop(const char *path, const char *name, const char *table)
{
    char sql[256];
    if (test_pg)
        snprintf(sql, sizeof sql, "DROP TRIGGER %s ON %s", name, table);
    else
        snprintf(sql, sizeof sql, "DROP TRIGGER %s", name);
    return sql1(path, sql);
}

static inline bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

/* Polls until `want` callbacks in total have run or 10 s have passed. */
static inline int poll_until(struct store_client *cl, int *count, int want)
{
    for (int i = 0; *count < want && i < 1000; i++) {
        fd_readable(store_client_fd(cl), 10);
        store_poll(cl);
    }
    return *count;
}

#endif
