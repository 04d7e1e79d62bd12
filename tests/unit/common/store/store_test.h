/*
 * Helpers shared by the store's test programs (store.c, store_im.c, store_sqlite_im.c):
 * database files in a temporary directory, direct SQL on a file (to check what the back
 * end promises about it, or to break it on purpose), credentials, polling a client.
 * Include it once, after test.h.
 */
#ifndef STARLING_STORE_TEST_H
#define STARLING_STORE_TEST_H

#include "common/store/store.h"
#include "test.h"

#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tmpdir[64];

/* Makes tmpdir; 0, or -1 after saying why. */
static inline int tmpdir_make(void)
{
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

/* A fresh database path in tmpdir for each test. */
static inline const char *db_path(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s.db", tmpdir, name);
    return path;
}

static inline struct store *open_db(const char *path, unsigned queue_max)
{
    struct store *st = NULL;
    struct store_opts o = {.backend = STORE_BACKEND_SQLITE, .path = path, .queue_max = queue_max};
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
