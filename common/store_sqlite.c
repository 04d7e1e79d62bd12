/*
 * The SQLite back end: one connection, used by the store's worker only (opened by
 * store_open() before the worker starts, hence SQLITE_OPEN_NOMUTEX).
 *
 * Sharing the file. The server and starlingctl open the same file at once. WAL mode
 * lets readers run beside the one writer; busy_timeout makes a writer wait for another
 * process's write lock instead of failing; synchronous=NORMAL in WAL mode loses no
 * committed data on a process crash and only the last commits on a power cut, which
 * is the usual trade for a server (fsync at checkpoints, not at every commit).
 *
 * Schema. PRAGMA user_version is the number of migrations applied. store_open() applies
 * the missing ones in one IMMEDIATE transaction (two processes opening a fresh file do
 * not both migrate) and refuses a file newer than this program. Migrations are only
 * ever appended. Tables holding a user's data reference accounts(user) ON DELETE
 * CASCADE, so deleting an account deletes the rest (foreign_keys is on).
 */
#include "common/log.h"
#include "common/store_backend.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SQLITE_BUSY_MS 10000 /* how long a write waits for another process's lock */

static const char *const sqlite_migrations[] = {
    /* 1: accounts. A SCRAM mechanism whose iterations is 0 is absent (empty blobs). */
    "CREATE TABLE accounts ("
    " user TEXT NOT NULL PRIMARY KEY,"
    " created INTEGER NOT NULL," /* Unix time */
    " sha1_iterations INTEGER NOT NULL,"
    " sha1_salt BLOB NOT NULL,"
    " sha1_stored_key BLOB NOT NULL,"
    " sha1_server_key BLOB NOT NULL,"
    " sha256_iterations INTEGER NOT NULL,"
    " sha256_salt BLOB NOT NULL,"
    " sha256_stored_key BLOB NOT NULL,"
    " sha256_server_key BLOB NOT NULL"
    ") STRICT, WITHOUT ROWID;",
};
#define SQLITE_SCHEMA_VERSION (int)(sizeof sqlite_migrations / sizeof sqlite_migrations[0])

enum sqlite_stmt {
    SQ_CREATE,
    SQ_DELETE,
    SQ_CREDS_GET,
    SQ_CREDS_SET,
    SQ_LIST,
    SQ_COUNT_,
};

/* The credential columns are ?2..?9 in both statements that write them. */
static const char *const sqlite_sql[SQ_COUNT_] = {
    [SQ_CREATE] = "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [SQ_DELETE] = "DELETE FROM accounts WHERE user = ?1",
    [SQ_CREDS_GET] = "SELECT sha1_iterations, sha1_salt, sha1_stored_key, sha1_server_key,"
                     " sha256_iterations, sha256_salt, sha256_stored_key, sha256_server_key"
                     " FROM accounts WHERE user = ?1",
    [SQ_CREDS_SET] = "UPDATE accounts SET sha1_iterations = ?3, sha1_salt = ?4,"
                     " sha1_stored_key = ?5, sha1_server_key = ?6, sha256_iterations = ?7,"
                     " sha256_salt = ?8, sha256_stored_key = ?9, sha256_server_key = ?10"
                     " WHERE user = ?1",
    /* BINARY collation: byte order, as store.h promises. */
    [SQ_LIST] = "SELECT user FROM accounts WHERE user > ?1 ORDER BY user LIMIT ?2",
};

struct sqlite_be {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQ_COUNT_];
};

/* An SQLite result as -errno. The file system's errno when SQLite has one. */
static int sqlite_errno(sqlite3 *db, int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
        return -EINVAL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return e > 0 ? -e : -EIO;
    }
    default:
        return -EIO;
    }
}

/* Runs SQL without results (pragmas that set, DDL, transaction control). */
static int sqlite_exec(struct sqlite_be *be, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(be->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        LOG_ERROR("sqlite %s: %s: %s", be->path, sql, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return sqlite_errno(be->db, rc);
    }
    return 0;
}

/* Runs a statement returning one integer (PRAGMA user_version) or text (journal_mode). */
static int sqlite_query1(struct sqlite_be *be, const char *sql, long long *num, char *text,
                         size_t textlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(be->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            if (num)
                *num = sqlite3_column_int64(st, 0);
            if (text) {
                const unsigned char *t = sqlite3_column_text(st, 0);
                snprintf(text, textlen, "%s", t ? (const char *)t : "");
            }
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        LOG_ERROR("sqlite %s: %s: %s", be->path, sql, sqlite3_errmsg(be->db));
        return sqlite_errno(be->db, rc);
    }
    return 0;
}

static int sqlite_migrate(struct sqlite_be *be)
{
    long long version;
    char sql[64];
    int rc = sqlite_exec(be, "BEGIN IMMEDIATE");
    if (rc < 0)
        return rc;
    rc = sqlite_query1(be, "PRAGMA user_version", &version, NULL, 0);
    if (rc < 0)
        goto rollback;
    if (version > SQLITE_SCHEMA_VERSION) {
        LOG_ERROR("sqlite %s: schema version %lld is newer than this program's (%d)", be->path,
                  version, SQLITE_SCHEMA_VERSION);
        rc = -EPROTO;
        goto rollback;
    }
    if (version == SQLITE_SCHEMA_VERSION)
        goto rollback; /* nothing to do; rc is 0 */
    for (long long v = version; v < SQLITE_SCHEMA_VERSION; v++) {
        rc = sqlite_exec(be, sqlite_migrations[v]);
        if (rc < 0)
            goto rollback;
    }
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SQLITE_SCHEMA_VERSION);
    rc = sqlite_exec(be, sql);
    if (rc < 0)
        goto rollback;
    rc = sqlite_exec(be, "COMMIT");
    if (rc < 0)
        goto rollback;
    LOG_INFO("sqlite %s: schema migrated from version %lld to %d", be->path, version,
             SQLITE_SCHEMA_VERSION);
    return 0;

rollback:
    sqlite3_exec(be->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void sqlite_close(void *p)
{
    struct sqlite_be *be = p;
    if (!be)
        return;
    for (int i = 0; i < SQ_COUNT_; i++)
        sqlite3_finalize(be->stmt[i]);
    sqlite3_close(be->db);
    free(be->path);
    free(be);
}

static int sqlite_open(const struct store_opts *opts, void **out)
{
    char mode[16];
    int rc;
    *out = NULL;
    if (!opts->path || !opts->path[0]) {
        LOG_ERROR("sqlite: no database path configured");
        return -EINVAL;
    }
    struct sqlite_be *be = calloc(1, sizeof *be);
    if (!be)
        return -ENOMEM;
    be->path = strdup(opts->path);
    if (!be->path) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = sqlite3_open_v2(opts->path, &be->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        LOG_ERROR("sqlite %s: cannot open: %s", opts->path,
                  be->db ? sqlite3_errmsg(be->db) : sqlite3_errstr(rc));
        rc = sqlite_errno(be->db, rc);
        goto fail;
    }
    sqlite3_extended_result_codes(be->db, 1);
    sqlite3_busy_timeout(be->db, SQLITE_BUSY_MS);
    rc = sqlite_query1(be, "PRAGMA journal_mode = WAL", NULL, mode, sizeof mode);
    if (rc < 0)
        goto fail;
    if (strcmp(mode, "wal") != 0) {
        LOG_ERROR("sqlite %s: cannot use WAL mode (got '%s')", opts->path, mode);
        rc = -EIO;
        goto fail;
    }
    if ((rc = sqlite_exec(be, "PRAGMA synchronous = NORMAL")) < 0 ||
        (rc = sqlite_exec(be, "PRAGMA foreign_keys = ON")) < 0 || (rc = sqlite_migrate(be)) < 0)
        goto fail;
    for (int i = 0; i < SQ_COUNT_; i++) {
        int prc = sqlite3_prepare_v3(be->db, sqlite_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                     &be->stmt[i], NULL);
        if (prc != SQLITE_OK) {
            LOG_ERROR("sqlite %s: %s: %s", opts->path, sqlite_sql[i], sqlite3_errmsg(be->db));
            rc = sqlite_errno(be->db, prc);
            goto fail;
        }
    }
    *out = be;
    return 0;

fail:
    sqlite_close(be);
    return rc;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Binds user and the credentials to ?1 and ?3..?10 (see sqlite_sql). */
static int bind_creds(sqlite3_stmt *st, const char *user, const struct store_creds *c)
{
    const struct store_scram_sha1 *a = &c->sha1;
    const struct store_scram_sha256 *b = &c->sha256;
    /* An absent mechanism is stored as iterations 0 and empty blobs, whatever the
     * caller left in the arrays. */
    int na = a->iterations ? 1 : 0, nb = b->iterations ? 1 : 0;
    int rc = sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 3, a->iterations);
    rc = rc ? rc : sqlite3_bind_blob(st, 4, a->salt, na * a->salt_len, SQLITE_STATIC);
    rc =
        rc ? rc
           : sqlite3_bind_blob(st, 5, a->stored_key, na * (int)sizeof a->stored_key, SQLITE_STATIC);
    rc =
        rc ? rc
           : sqlite3_bind_blob(st, 6, a->server_key, na * (int)sizeof a->server_key, SQLITE_STATIC);
    rc = rc ? rc : sqlite3_bind_int64(st, 7, b->iterations);
    rc = rc ? rc : sqlite3_bind_blob(st, 8, b->salt, nb * b->salt_len, SQLITE_STATIC);
    rc =
        rc ? rc
           : sqlite3_bind_blob(st, 9, b->stored_key, nb * (int)sizeof b->stored_key, SQLITE_STATIC);
    rc = rc ? rc
            : sqlite3_bind_blob(st, 10, b->server_key, nb * (int)sizeof b->server_key,
                                SQLITE_STATIC);
    return rc;
}

/* Copies a blob column of exactly `len` bytes (or at most, when `up_to`). */
static bool column_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t len, bool up_to,
                        size_t *got)
{
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (n > len || (!up_to && n != len))
        return false;
    if (n)
        memcpy(dst, sqlite3_column_blob(st, col), n);
    if (got)
        *got = n;
    return true;
}

/* Reads columns col.. as one mechanism: iterations, salt, stored key, server key. */
static bool column_scram(sqlite3_stmt *st, int col, uint32_t *iter, uint8_t *salt,
                         uint8_t *salt_len, uint8_t *stored, uint8_t *server, size_t keylen)
{
    sqlite3_int64 it = sqlite3_column_int64(st, col);
    size_t n;
    if (it < 0 || it > UINT32_MAX)
        return false;
    *iter = (uint32_t)it;
    if (!it)
        return true;
    if (!column_blob(st, col + 1, salt, STORE_SALT_MAX, true, &n) || n == 0 ||
        !column_blob(st, col + 2, stored, keylen, false, NULL) ||
        !column_blob(st, col + 3, server, keylen, false, NULL))
        return false;
    *salt_len = (uint8_t)n;
    return true;
}

static int op_creds_get(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st = be->stmt[SQ_CREDS_GET];
    struct store_creds *c = &req->creds;
    int rc = sqlite3_bind_text(st, 1, req->user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ENOENT;
    if (rc != SQLITE_ROW)
        return sqlite_errno(be->db, rc);
    memset(c, 0, sizeof *c);
    if (!column_scram(st, 0, &c->sha1.iterations, c->sha1.salt, &c->sha1.salt_len,
                      c->sha1.stored_key, c->sha1.server_key, sizeof c->sha1.stored_key) ||
        !column_scram(st, 4, &c->sha256.iterations, c->sha256.salt, &c->sha256.salt_len,
                      c->sha256.stored_key, c->sha256.server_key, sizeof c->sha256.stored_key)) {
        LOG_RL(LOG_LEVEL_ERROR, "sqlite %s: malformed credentials stored for a user", be->path);
        return -EIO;
    }
    return 0;
}

static int op_write(struct sqlite_be *be, struct store_req *req, enum sqlite_stmt which)
{
    sqlite3_stmt *st = be->stmt[which];
    int rc = bind_creds(st, req->user, &req->creds);
    if (rc == SQLITE_OK && which == SQ_CREATE)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sqlite_errno(be->db, rc);
    return sqlite3_changes(be->db) ? 0 : -ENOENT;
}

static int op_delete(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st = be->stmt[SQ_DELETE];
    int rc = sqlite3_bind_text(st, 1, req->user, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sqlite_errno(be->db, rc);
    return sqlite3_changes(be->db) ? 0 : -ENOENT;
}

static int op_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st = be->stmt[SQ_LIST];
    struct store_list *l = &req->list;
    size_t cap = 0;
    /* "" sorts before every name, and a name is never empty. */
    int rc = sqlite3_bind_text(st, 1, req->after ? req->after : "", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)req->limit);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **names = realloc(l->names, ncap * sizeof *names);
            if (!names)
                goto nomem;
            l->names = names;
            cap = ncap;
        }
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || !(l->names[l->n] = strdup(name)))
            goto nomem;
        l->n++;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        store_list_free(l);
        return sqlite_errno(be->db, rc);
    }
    return 0;
nomem:
    store_list_free(l);
    return -ENOMEM;
}

/* The statement each request uses, to be reset after it. */
static const enum sqlite_stmt sqlite_op_stmt[STORE_OP_COUNT_] = {
    [STORE_OP_ACCOUNT_CREATE] = SQ_CREATE, [STORE_OP_ACCOUNT_DELETE] = SQ_DELETE,
    [STORE_OP_CREDS_GET] = SQ_CREDS_GET,   [STORE_OP_CREDS_SET] = SQ_CREDS_SET,
    [STORE_OP_ACCOUNT_LIST] = SQ_LIST,
};

static void sqlite_run(void *p, struct store_req *req)
{
    struct sqlite_be *be = p;
    switch (req->op) {
    case STORE_OP_ACCOUNT_CREATE:
    case STORE_OP_CREDS_SET:
        req->res = op_write(be, req, sqlite_op_stmt[req->op]);
        break;
    case STORE_OP_ACCOUNT_DELETE:
        req->res = op_delete(be, req);
        break;
    case STORE_OP_CREDS_GET:
        req->res = op_creds_get(be, req);
        break;
    case STORE_OP_ACCOUNT_LIST:
        req->res = op_list(be, req);
        break;
    default:
        req->res = -ENOSYS;
        return;
    }
    /* A client can make this happen again and again (a login while the disk is full). */
    int ec = sqlite3_errcode(be->db);
    if (req->res < 0 && ec != SQLITE_OK && ec != SQLITE_ROW && ec != SQLITE_DONE &&
        req->res != -ENOENT && req->res != -EEXIST)
        LOG_RL(LOG_LEVEL_ERROR, "sqlite %s: %s: %s (%s)", be->path, store_op_name(req->op),
               strerror(-req->res), sqlite3_errmsg(be->db));
    /* Ready for the next use; the bindings point into req, which is about to go. */
    sqlite3_stmt *st = be->stmt[sqlite_op_stmt[req->op]];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sqlite_open,
    .run = sqlite_run,
    .close = sqlite_close,
};
