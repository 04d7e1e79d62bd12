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
 * CASCADE, so deleting an account deletes the rest (foreign_keys is on); the same
 * reference makes an insert for a user without an account fail (-ENOENT).
 *
 * Transactions. A request of more than one statement runs in one transaction: BEGIN
 * IMMEDIATE when it writes (it takes the write lock at once, so it never has to upgrade
 * a read lock, which fails with SQLITE_BUSY instead of waiting), BEGIN when it only
 * reads (one snapshot: a roster's version matches its items even while another
 * process writes).
 *
 * Results. A roster, a list of subscription requests or of offline messages is built as
 * two growing buffers, the array of records and the bytes they point to (as offsets),
 * then joined into one block with the records first: one allocation that one free()
 * releases, which store_*_free() and a callback's end both rely on.
 */
#include "common/log.h"
#include "common/store_backend.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
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

    /* 2: instant messaging. Booleans are 0 or 1 (CHECK), text is UTF-8 checked by the
     * front end, stanzas are BLOBs kept byte for byte. */
    /* A user's roster version, bumped by every change of an item; no row: version 0. */
    "CREATE TABLE roster_version ("
    " user TEXT NOT NULL PRIMARY KEY REFERENCES accounts (user) ON DELETE CASCADE,"
    " ver INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE roster ("
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " jid TEXT NOT NULL,"
    " name TEXT," /* NULL: none */
    " sub INTEGER NOT NULL CHECK (sub BETWEEN 0 AND 3),"
    " ask INTEGER NOT NULL CHECK (ask IN (0, 1)),"
    " pending_in INTEGER NOT NULL CHECK (pending_in IN (0, 1)),"
    " approved INTEGER NOT NULL CHECK (approved IN (0, 1)),"
    " hidden INTEGER NOT NULL CHECK (hidden IN (0, 1)),"
    " ver INTEGER NOT NULL,"
    " PRIMARY KEY (user, jid)"
    ") STRICT, WITHOUT ROWID;"
    /* A table, not a column: a group is then a name the database compares and keeps
     * unique, and a PostgreSQL back end can share the schema. */
    "CREATE TABLE roster_groups ("
    " user TEXT NOT NULL,"
    " jid TEXT NOT NULL,"
    " grp TEXT NOT NULL,"
    " PRIMARY KEY (user, jid, grp),"
    " FOREIGN KEY (user, jid) REFERENCES roster (user, jid) ON DELETE CASCADE"
    ") STRICT, WITHOUT ROWID;"
    /* With a rowid (rows hold whole stanzas, too large for WITHOUT ROWID's b-tree), which
     * also keeps the order in which requests first arrived. */
    "CREATE TABLE subreqs ("
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " jid TEXT NOT NULL,"
    " stanza BLOB NOT NULL,"
    " UNIQUE (user, jid)"
    ") STRICT;"
    /* AUTOINCREMENT: a seq is never reused, even after the newest message is deleted, so
     * a seq that offline_delete() is given names only messages the caller has seen. */
    "CREATE TABLE offline ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " stamp INTEGER NOT NULL," /* UTC microseconds since the Unix epoch */
    " stanza BLOB NOT NULL"
    ") STRICT;"
    "CREATE INDEX offline_user ON offline (user, seq);"
    "CREATE TABLE blocklist ("
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " jid TEXT NOT NULL,"
    " PRIMARY KEY (user, jid)"
    ") STRICT, WITHOUT ROWID;",
};
#define SQLITE_SCHEMA_VERSION (int)(sizeof sqlite_migrations / sizeof sqlite_migrations[0])

enum sqlite_stmt {
    SQ_CREATE,
    SQ_DELETE,
    SQ_CREDS_GET,
    SQ_CREDS_SET,
    SQ_LIST,
    SQ_BEGIN,
    SQ_BEGIN_WRITE,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_EXISTS,
    SQ_ROSTER_VER,
    SQ_ROSTER_ITEMS,
    SQ_ROSTER_BUMP,
    SQ_ROSTER_UPSERT,
    SQ_ROSTER_DELETE,
    SQ_ROSTER_COUNT,
    SQ_GROUPS_CLEAR,
    SQ_GROUP_ADD,
    SQ_SUBREQ_PUT,
    SQ_SUBREQ_DELETE,
    SQ_SUBREQ_LIST,
    SQ_OFFLINE_COUNT,
    SQ_OFFLINE_PUSH,
    SQ_OFFLINE_FETCH,
    SQ_OFFLINE_DELETE,
    SQ_BLOCK_ADD,
    SQ_BLOCK_REMOVE,
    SQ_BLOCK_CLEAR,
    SQ_BLOCK_LIST,
    SQ_COUNT_,
};
_Static_assert(SQ_COUNT_ <= 64, "struct sqlite_be's used mask has 64 bits");

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
    [SQ_BEGIN] = "BEGIN",
    [SQ_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [SQ_COMMIT] = "COMMIT",
    [SQ_ROLLBACK] = "ROLLBACK",
    [SQ_EXISTS] = "SELECT 1 FROM accounts WHERE user = ?1",
    /* "FROM accounts": no row tells a missing account from an empty roster (NULL). */
    [SQ_ROSTER_VER] =
        "SELECT (SELECT ver FROM roster_version WHERE user = ?1) FROM accounts WHERE user = ?1",
    /* One row per (item, group), an item without groups once with grp NULL; both keys
     * in byte order, so an item's rows are adjacent and its groups sorted. */
    [SQ_ROSTER_ITEMS] = "SELECT r.jid, r.name, r.sub, r.ask, r.pending_in, r.approved, r.hidden,"
                        " r.ver, g.grp FROM roster AS r LEFT JOIN roster_groups AS g"
                        " ON g.user = r.user AND g.jid = r.jid WHERE r.user = ?1"
                        " ORDER BY r.jid, g.grp",
    /* Fails on the account's foreign key when there is no account. */
    [SQ_ROSTER_BUMP] = "INSERT INTO roster_version (user, ver) VALUES (?1, 1)"
                       " ON CONFLICT (user) DO UPDATE SET ver = ver + 1 RETURNING ver",
    /* An upsert, not INSERT OR REPLACE: a replace deletes the row first, and what that
     * does to the groups referencing it depends on recursive_triggers. */
    [SQ_ROSTER_UPSERT] =
        "INSERT INTO roster (user, jid, name, sub, ask, pending_in, approved, hidden, ver)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (user, jid) DO UPDATE SET"
        " name = excluded.name, sub = excluded.sub, ask = excluded.ask,"
        " pending_in = excluded.pending_in, approved = excluded.approved,"
        " hidden = excluded.hidden, ver = excluded.ver",
    [SQ_ROSTER_DELETE] = "DELETE FROM roster WHERE user = ?1 AND jid = ?2",
    [SQ_ROSTER_COUNT] =
        "SELECT (SELECT count(*) FROM roster WHERE user = ?1) FROM accounts WHERE user = ?1",
    [SQ_GROUPS_CLEAR] = "DELETE FROM roster_groups WHERE user = ?1 AND jid = ?2",
    [SQ_GROUP_ADD] = "INSERT INTO roster_groups (user, jid, grp) VALUES (?1, ?2, ?3)",
    [SQ_SUBREQ_PUT] = "INSERT INTO subreqs (user, jid, stanza) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (user, jid) DO UPDATE SET stanza = excluded.stanza",
    [SQ_SUBREQ_DELETE] = "DELETE FROM subreqs WHERE user = ?1 AND jid = ?2",
    [SQ_SUBREQ_LIST] = "SELECT jid, stanza FROM subreqs WHERE user = ?1 ORDER BY rowid",
    [SQ_OFFLINE_COUNT] =
        "SELECT (SELECT count(*) FROM offline WHERE user = ?1) FROM accounts WHERE user = ?1",
    [SQ_OFFLINE_PUSH] = "INSERT INTO offline (user, stamp, stanza) VALUES (?1, ?2, ?3)",
    [SQ_OFFLINE_FETCH] =
        "SELECT seq, stamp, stanza FROM offline WHERE user = ?1 ORDER BY seq LIMIT ?2",
    [SQ_OFFLINE_DELETE] = "DELETE FROM offline WHERE user = ?1 AND seq <= ?2",
    /* DO NOTHING covers the primary key only: a missing account still fails. */
    [SQ_BLOCK_ADD] = "INSERT INTO blocklist (user, jid) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    [SQ_BLOCK_REMOVE] = "DELETE FROM blocklist WHERE user = ?1 AND jid = ?2",
    [SQ_BLOCK_CLEAR] = "DELETE FROM blocklist WHERE user = ?1",
    [SQ_BLOCK_LIST] = "SELECT jid FROM blocklist WHERE user = ?1 ORDER BY jid",
};

struct sqlite_be {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQ_COUNT_];
    uint64_t used; /* statements the current request has used: 1 << enum sqlite_stmt */
    char err[160]; /* SQLite's message for the current request's failure, for the log */
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

/* ---- statements and transactions --------------------------------------------------------- */

/* An SQLite result as -errno, keeping SQLite's message for sqlite_run()'s log line. */
static int sq_err(struct sqlite_be *be, int rc)
{
    if (!be->err[0])
        snprintf(be->err, sizeof be->err, "%s", sqlite3_errmsg(be->db));
    return sqlite_errno(be->db, rc);
}

/*
 * A value for a statement's parameter. Made with V_TEXT() (NUL-terminated, NULL binds
 * NULL), V_BLOB() or V_INT(), each a typed compound literal, so that the compiler checks
 * what every call binds; VALS() passes a list of them and its length.
 */
struct sq_val {
    enum { SQV_TEXT, SQV_BLOB, SQV_INT } kind;
    const char *p; /* text or blob */
    size_t len;    /* blob */
    sqlite3_int64 i;
};
#define V_TEXT(s)    ((struct sq_val){.kind = SQV_TEXT, .p = (s)})
#define V_BLOB(b, n) ((struct sq_val){.kind = SQV_BLOB, .p = (b), .len = (n)})
#define V_INT(v)     ((struct sq_val){.kind = SQV_INT, .i = (v)})
#define VALS(...)                                                                                  \
    (const struct sq_val[]){__VA_ARGS__},                                                          \
        sizeof((const struct sq_val[]){__VA_ARGS__}) / sizeof(struct sq_val)

/* Statement `which`, reset, with ?1..?n bound to v[0..n). Bound SQLITE_STATIC: the
 * values live in the request, and sqlite_run() clears the bindings of every statement
 * the request used before the request goes back. Returns an SQLite code. */
static int prep(struct sqlite_be *be, enum sqlite_stmt which, sqlite3_stmt **out,
                const struct sq_val *v, size_t n)
{
    sqlite3_stmt *st = be->stmt[which];
    int rc = SQLITE_OK;
    be->used |= UINT64_C(1) << which;
    sqlite3_reset(st);
    *out = st;
    /* A call that disagrees with its statement is a bug here: say so, bind nothing. The
     * credential statements bind their own (bind_creds()), hence n == 0 passes. */
    if (n && n != (size_t)sqlite3_bind_parameter_count(st)) {
        LOG_ERROR("sqlite: %zu values for %d parameters: %s", n, sqlite3_bind_parameter_count(st),
                  sqlite_sql[which]);
        return SQLITE_RANGE;
    }
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        int col = (int)i + 1;
        switch (v[i].kind) {
        case SQV_TEXT:
            rc = sqlite3_bind_text(st, col, v[i].p, -1, SQLITE_STATIC);
            break;
        case SQV_BLOB:
            rc = sqlite3_bind_blob64(st, col, v[i].p, v[i].len, SQLITE_STATIC);
            break;
        case SQV_INT:
            rc = sqlite3_bind_int64(st, col, v[i].i);
            break;
        }
    }
    return rc;
}

/* Runs a statement that returns no rows: the rows it changed, or -errno. */
static int exec(struct sqlite_be *be, enum sqlite_stmt which, const struct sq_val *v, size_t n)
{
    sqlite3_stmt *st;
    int rc = prep(be, which, &st, v, n);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sq_err(be, rc);
    return sqlite3_changes(be->db);
}

/* Steps a statement prepared with prep() to its one row: 0, -ENOENT without a row. */
static int step_row(struct sqlite_be *be, sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : sq_err(be, rc);
}

static int tx_begin(struct sqlite_be *be, bool write)
{
    int rc = exec(be, write ? SQ_BEGIN_WRITE : SQ_BEGIN, NULL, 0);
    return rc < 0 ? rc : 0;
}

/* Ends the transaction: commits when res is not negative, else rolls back. Returns res,
 * or the commit's error. */
static int tx_end(struct sqlite_be *be, int res)
{
    /* A statement left mid-way would keep its read open past the end of the
     * transaction (and make COMMIT fail while it writes). */
    for (int i = 0; i < SQ_COUNT_; i++)
        if (be->used & UINT64_C(1) << i)
            sqlite3_reset(be->stmt[i]);
    if (res >= 0) {
        int rc = exec(be, SQ_COMMIT, NULL, 0);
        if (rc >= 0)
            return res;
        res = rc;
    }
    /* Some errors (a full disk, an I/O error) have rolled back already. */
    if (!sqlite3_get_autocommit(be->db)) {
        sqlite3_step(be->stmt[SQ_ROLLBACK]);
        sqlite3_reset(be->stmt[SQ_ROLLBACK]);
    }
    return res;
}

/* 0 when the user has an account, else -ENOENT (or another -errno). */
static int user_exists(struct sqlite_be *be, const char *user)
{
    sqlite3_stmt *st;
    int rc = prep(be, SQ_EXISTS, &st, VALS(V_TEXT(user)));
    return step_row(be, st, rc);
}

/* Runs a "SELECT (SELECT ...) FROM accounts WHERE user = ?1" statement: -ENOENT when
 * there is no account, else 0 and the value (0 for NULL). */
static int user_value(struct sqlite_be *be, enum sqlite_stmt which, const char *user,
                      sqlite3_int64 *val)
{
    sqlite3_stmt *st;
    int rc = prep(be, which, &st, VALS(V_TEXT(user)));
    rc = step_row(be, st, rc);
    if (rc == 0)
        *val = sqlite3_column_int64(st, 0);
    return rc;
}

/* ---- results ----------------------------------------------------------------------------- */

/*
 * A result being built: records of rec_size bytes in `rec`, and the bytes they point to
 * in `data`, where a record's pointer holds an offset. Offset 0 is never handed out, so a
 * NULL pointer stays NULL. flat_finish() makes one block of both, records first.
 */
struct flat {
    char *rec, *data;
    size_t rec_size, nrec, rec_cap, len, cap;
    bool nomem;
};

static void flat_init(struct flat *f, size_t rec_size)
{
    *f = (struct flat){.rec_size = rec_size, .len = 1};
}

static void flat_drop(struct flat *f)
{
    free(f->rec);
    free(f->data);
    f->rec = f->data = NULL;
}

/* A new zeroed record, valid until the next call; NULL when memory is short. */
static void *flat_rec(struct flat *f)
{
    if (f->nomem)
        return NULL;
    if (f->nrec == f->rec_cap) {
        size_t ncap = f->rec_cap ? f->rec_cap * 2 : 16;
        char *p = realloc(f->rec, ncap * f->rec_size);
        if (!p) {
            f->nomem = true;
            return NULL;
        }
        f->rec = p;
        f->rec_cap = ncap;
    }
    void *r = f->rec + f->nrec++ * f->rec_size;
    memset(r, 0, f->rec_size);
    return r;
}

/* The newest record. */
static void *flat_last(struct flat *f)
{
    return f->rec + (f->nrec - 1) * f->rec_size;
}

/* Appends n bytes, and a NUL when nul, at an offset aligned to `align` (a power of
 * two); returns the offset, or 0 when memory is short. */
static size_t flat_put(struct flat *f, const void *p, size_t n, size_t align, bool nul)
{
    size_t at = (f->len + align - 1) & ~(align - 1), need = at + n + nul;
    if (f->nomem)
        return 0;
    if (need > f->cap) {
        /* Doubling, but never to more than what is needed when that is more: one large
         * stanza must not cost twice its size. */
        size_t ncap = f->cap ? f->cap * 2 : 256;
        if (ncap < need)
            ncap = need;
        char *d = realloc(f->data, ncap);
        if (!d) {
            f->nomem = true;
            return 0;
        }
        f->data = d;
        f->cap = ncap;
    }
    if (n)
        memcpy(f->data + at, p, n);
    if (nul)
        f->data[at + n] = '\0';
    f->len = need;
    return at;
}

/* Copies a column, text (with its NUL) or blob; its offset as a pointer, NULL for SQL
 * NULL. */
static const char *flat_col(struct flat *f, sqlite3_stmt *st, int col, bool text, size_t *len)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    /* The value before its length: the other order can convert it twice. */
    const void *p =
        text ? (const void *)sqlite3_column_text(st, col) : sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (len)
        *len = n;
    if (!p && n) {
        f->nomem = true; /* SQLite could not convert the value */
        return NULL;
    }
    return (const char *)(uintptr_t)flat_put(f, p, n, 1, text);
}

/* Joins records and data into one block, records first. Returns -ENOMEM, or 0 with the
 * block (NULL when there are no records) and where the data went in it, to which the
 * records' offsets are relative. */
static int flat_finish(struct flat *f, void **block, char **base)
{
    size_t rb = f->nrec * f->rec_size;
    int rc = 0;
    *block = NULL;
    *base = NULL;
    if (f->nomem) {
        rc = -ENOMEM;
        goto out;
    }
    if (!f->nrec)
        goto out;
    /* The data buffer becomes the block, its bytes moved up to make room for the
     * records: no second copy of the data (stanzas up to STORE_STANZA_MAX) is ever
     * alive. rec_size is a multiple of 8 (records hold pointers), so the data stays
     * aligned for the group arrays. */
    char *b = realloc(f->data, rb + f->len);
    if (!b) {
        rc = -ENOMEM;
        goto out;
    }
    f->data = NULL;
    memmove(b + rb, b, f->len);
    memcpy(b, f->rec, rb);
    *block = b;
    *base = b + rb;
out:
    flat_drop(f);
    return rc;
}

static const char *rebase(const char *base, const char *off)
{
    return off ? base + (uintptr_t)off : NULL;
}

/* ---- accounts ---------------------------------------------------------------------------- */

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
    sqlite3_stmt *st;
    struct store_creds *c = &req->creds;
    int rc = prep(be, SQ_CREDS_GET, &st, VALS(V_TEXT(req->user)));
    rc = step_row(be, st, rc);
    if (rc < 0)
        return rc;
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
    sqlite3_stmt *st;
    int rc = prep(be, which, &st, NULL, 0);
    if (rc == SQLITE_OK)
        rc = bind_creds(st, req->user, &req->creds);
    if (rc == SQLITE_OK && which == SQ_CREATE)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sq_err(be, rc);
    return sqlite3_changes(be->db) ? 0 : -ENOENT;
}

static int op_delete(struct sqlite_be *be, struct store_req *req)
{
    int rc = exec(be, SQ_DELETE, VALS(V_TEXT(req->user)));
    return rc < 0 ? rc : rc ? 0 : -ENOENT;
}

/* Appends the first column of every row to l, as malloc'd strings. */
static int read_names(struct sqlite_be *be, sqlite3_stmt *st, struct store_list *l)
{
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
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
    }
    if (rc != SQLITE_DONE) {
        store_list_free(l);
        return sq_err(be, rc);
    }
    return 0;
nomem:
    store_list_free(l);
    return -ENOMEM;
}

static int op_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    /* "" sorts before every name, and a name is never empty. */
    int rc = prep(be, SQ_LIST, &st,
                  VALS(V_TEXT(req->after ? req->after : ""), V_INT((sqlite3_int64)req->limit)));
    return rc == SQLITE_OK ? read_names(be, st, &req->list) : sq_err(be, rc);
}

/* ---- instant messaging ------------------------------------------------------------------- */

_Static_assert(sizeof(size_t) == sizeof(char *), "a group array holds offsets, then pointers");

/* Ends the newest item of a roster being built: the offsets of its groups, gathered in
 * goff, go into the data as its group array. */
static void roster_end_item(struct flat *f, const size_t *goff, size_t ngroups)
{
    size_t at = ngroups ? flat_put(f, goff, ngroups * sizeof *goff, sizeof(char *), false) : 0;
    struct store_roster_item *it = flat_last(f);
    it->groups = (const char *const *)(uintptr_t)at;
    it->ngroups = at ? ngroups : 0;
}

/* Reads the rows of SQ_ROSTER_ITEMS into f, one record per item. */
static int roster_read(struct sqlite_be *be, sqlite3_stmt *st, struct flat *f)
{
    size_t *goff = NULL, ngroups = 0, gcap = 0, jid_off = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *jid = (const char *)sqlite3_column_text(st, 0);
        if (!jid) {
            f->nomem = true;
            break;
        }
        if (!f->nrec || strcmp(jid, f->data + jid_off) != 0) {
            if (f->nrec)
                roster_end_item(f, goff, ngroups);
            ngroups = 0;
            struct store_roster_item *it = flat_rec(f);
            if (!it)
                break;
            it->jid = flat_col(f, st, 0, true, NULL);
            it->name = flat_col(f, st, 1, true, NULL);
            it->sub = (uint8_t)sqlite3_column_int(st, 2);
            it->ask = sqlite3_column_int(st, 3);
            it->pending_in = sqlite3_column_int(st, 4);
            it->approved = sqlite3_column_int(st, 5);
            it->hidden = sqlite3_column_int(st, 6);
            it->ver = (uint64_t)sqlite3_column_int64(st, 7);
            jid_off = (uintptr_t)it->jid;
            if (f->nomem)
                break;
        }
        if (sqlite3_column_type(st, 8) == SQLITE_NULL)
            continue; /* an item without groups */
        if (ngroups == gcap) {
            size_t ncap = gcap ? gcap * 2 : 16;
            size_t *g = realloc(goff, ncap * sizeof *g);
            if (!g) {
                f->nomem = true;
                break;
            }
            goff = g;
            gcap = ncap;
        }
        goff[ngroups++] = (uintptr_t)flat_col(f, st, 8, true, NULL);
    }
    if (f->nrec && !f->nomem)
        roster_end_item(f, goff, ngroups);
    free(goff);
    if (f->nomem)
        return -ENOMEM;
    return rc == SQLITE_DONE ? 0 : sq_err(be, rc);
}

static int op_roster_get(struct sqlite_be *be, struct store_req *req)
{
    struct store_roster *r = &req->roster;
    sqlite3_int64 ver = 0;
    sqlite3_stmt *st;
    struct flat f;
    char *base;
    void *block;
    flat_init(&f, sizeof(struct store_roster_item));
    int rc = tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = user_value(be, SQ_ROSTER_VER, req->user, &ver);
    if (rc < 0)
        goto out;
    rc = prep(be, SQ_ROSTER_ITEMS, &st, VALS(V_TEXT(req->user)));
    rc = rc == SQLITE_OK ? roster_read(be, st, &f) : sq_err(be, rc);
    if (rc < 0)
        goto out;
    size_t n = f.nrec;
    rc = flat_finish(&f, &block, &base);
    if (rc < 0)
        goto out;
    r->items = block;
    r->n = n;
    r->ver = (uint64_t)ver;
    for (size_t i = 0; i < n; i++) {
        struct store_roster_item *x = &r->items[i];
        x->jid = rebase(base, x->jid);
        x->name = rebase(base, x->name);
        if (!x->ngroups) {
            x->groups = NULL;
            continue;
        }
        /* The array holds offsets (size_t); each becomes the pointer it stands for. */
        const char **g = (const char **)(void *)(base + (uintptr_t)x->groups);
        for (size_t k = 0; k < x->ngroups; k++) {
            size_t off;
            memcpy(&off, &g[k], sizeof off);
            g[k] = base + off;
        }
        x->groups = g;
    }
    /* What else a login needs, in the same snapshot. */
    sqlite3_int64 waiting = 0;
    if ((rc = user_value(be, SQ_OFFLINE_COUNT, req->user, &waiting)) < 0)
        goto out;
    r->offline = waiting > 0;
    rc = prep(be, SQ_BLOCK_LIST, &st, VALS(V_TEXT(req->user)));
    rc = rc == SQLITE_OK ? read_names(be, st, &r->blocked) : sq_err(be, rc);
out:
    flat_drop(&f);
    return tx_end(be, rc);
}

/* Raises the user's roster version by one, in the caller's transaction. Also where a
 * missing account shows, as the foreign key's -ENOENT. */
static int roster_bump(struct sqlite_be *be, const char *user, sqlite3_int64 *ver)
{
    sqlite3_stmt *st;
    int rc = prep(be, SQ_ROSTER_BUMP, &st, VALS(V_TEXT(user)));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_err(be, rc);
    *ver = sqlite3_column_int64(st, 0);
    return 0;
}

static int op_roster_put(struct sqlite_be *be, struct store_req *req)
{
    const struct store_roster_item *it = &req->item;
    sqlite3_int64 ver = 0;
    int rc = tx_begin(be, true);
    if (rc < 0)
        return rc;
    rc = roster_bump(be, req->user, &ver);
    if (rc == 0)
        rc = exec(be, SQ_ROSTER_UPSERT,
                  VALS(V_TEXT(req->user), V_TEXT(it->jid), V_TEXT(it->name), V_INT(it->sub),
                       V_INT(it->ask), V_INT(it->pending_in), V_INT(it->approved),
                       V_INT(it->hidden), V_INT(ver)));
    if (rc >= 0)
        rc = exec(be, SQ_GROUPS_CLEAR, VALS(V_TEXT(req->user), V_TEXT(it->jid)));
    for (size_t i = 0; rc >= 0 && i < it->ngroups; i++)
        rc =
            exec(be, SQ_GROUP_ADD, VALS(V_TEXT(req->user), V_TEXT(it->jid), V_TEXT(it->groups[i])));
    rc = tx_end(be, rc < 0 ? rc : 0);
    if (rc == 0)
        req->ver = (uint64_t)ver;
    return rc;
}

static int op_roster_delete(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_int64 ver = 0;
    int rc = tx_begin(be, true);
    if (rc < 0)
        return rc;
    /* No such item (or no account): nothing changed, and the version stays. Its groups
     * go by the cascade. */
    rc = exec(be, SQ_ROSTER_DELETE, VALS(V_TEXT(req->user), V_TEXT(req->jid)));
    if (rc == 0)
        rc = -ENOENT;
    if (rc > 0)
        rc = roster_bump(be, req->user, &ver);
    rc = tx_end(be, rc);
    if (rc == 0)
        req->ver = (uint64_t)ver;
    return rc;
}

/* A count of a user's rows (SQ_ROSTER_COUNT, SQ_OFFLINE_COUNT). */
static int op_count(struct sqlite_be *be, struct store_req *req, enum sqlite_stmt which)
{
    sqlite3_int64 n = 0;
    int rc = user_value(be, which, req->user, &n);
    return rc < 0 ? rc : n > INT_MAX ? INT_MAX : (int)n;
}

/* The result of a delete: the rows it removed; but a delete that removed nothing leaves
 * open whether there is an account, and only a missing account is -ENOENT. No
 * transaction: at worst the account goes in between, and that is then the answer. */
static int deleted(struct sqlite_be *be, const char *user, int changed)
{
    return changed != 0 ? changed : user_exists(be, user);
}

static int op_subreq_put(struct sqlite_be *be, struct store_req *req)
{
    int rc = exec(be, SQ_SUBREQ_PUT,
                  VALS(V_TEXT(req->user), V_TEXT(req->jid), V_BLOB(req->data, req->len)));
    return rc < 0 ? rc : 0;
}

static int op_subreq_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    char *base;
    void *block;
    flat_init(&f, sizeof(struct store_subreq));
    int rc = tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = user_exists(be, req->user);
    if (rc < 0)
        goto out;
    rc = prep(be, SQ_SUBREQ_LIST, &st, VALS(V_TEXT(req->user)));
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_subreq *r = flat_rec(&f);
        if (!r)
            break;
        r->jid = flat_col(&f, st, 0, true, NULL);
        r->stanza = flat_col(&f, st, 1, false, &r->len);
        rc = SQLITE_OK;
    }
    rc = f.nomem ? -ENOMEM : rc == SQLITE_DONE ? 0 : sq_err(be, rc);
    if (rc < 0)
        goto out;
    size_t n = f.nrec;
    rc = flat_finish(&f, &block, &base);
    if (rc < 0)
        goto out;
    req->subreqs.items = block;
    req->subreqs.n = n;
    for (size_t i = 0; i < n; i++) {
        struct store_subreq *r = &req->subreqs.items[i];
        r->jid = rebase(base, r->jid);
        r->stanza = rebase(base, r->stanza);
    }
out:
    flat_drop(&f);
    return tx_end(be, rc);
}

static int op_offline_push(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_int64 n = 0;
    /* The count and the insert in one write transaction, so that two writers (two
     * processes, or two nodes later) cannot both see room for the last message. */
    int rc = tx_begin(be, true);
    if (rc < 0)
        return rc;
    rc = user_value(be, SQ_OFFLINE_COUNT, req->user, &n);
    if (rc == 0 && (uint64_t)n >= (uint64_t)req->limit)
        rc = -EDQUOT;
    if (rc == 0)
        rc = exec(be, SQ_OFFLINE_PUSH,
                  VALS(V_TEXT(req->user), V_INT(req->stamp_us), V_BLOB(req->data, req->len)));
    return tx_end(be, rc < 0 ? rc : 0);
}

static int op_offline_fetch(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    size_t bytes = 0;
    char *base;
    void *block;
    flat_init(&f, sizeof(struct store_offline_msg));
    int rc = tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = user_exists(be, req->user);
    if (rc < 0)
        goto out;
    rc = prep(be, SQ_OFFLINE_FETCH, &st, VALS(V_TEXT(req->user), V_INT((sqlite3_int64)req->limit)));
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        /* The byte budget. The first message goes in whatever its size, or one large
         * message would hold back every later one. */
        if (f.nrec && bytes + len > STORE_FETCH_BYTES) {
            rc = SQLITE_DONE;
            break;
        }
        struct store_offline_msg *m = flat_rec(&f);
        if (!m)
            break;
        sqlite3_int64 stamp = sqlite3_column_int64(st, 1);
        m->seq = (uint64_t)sqlite3_column_int64(st, 0);
        /* Floor division: a stamp before 1970 still gets 0..999999 microseconds. */
        m->stamp_s = stamp / 1000000 - (stamp % 1000000 < 0);
        m->stamp_us = (uint32_t)(stamp - m->stamp_s * 1000000);
        m->stanza = flat_col(&f, st, 2, false, &m->len);
        bytes += m->len;
        rc = SQLITE_OK;
    }
    rc = f.nomem ? -ENOMEM : rc == SQLITE_DONE ? 0 : sq_err(be, rc);
    if (rc < 0)
        goto out;
    size_t n = f.nrec;
    rc = flat_finish(&f, &block, &base);
    if (rc < 0)
        goto out;
    req->offline.msgs = block;
    req->offline.n = n;
    for (size_t i = 0; i < n; i++)
        req->offline.msgs[i].stanza = rebase(base, req->offline.msgs[i].stanza);
out:
    flat_drop(&f);
    return tx_end(be, rc);
}

static int op_offline_delete(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_int64 upto = req->seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)req->seq;
    return deleted(be, req->user,
                   exec(be, SQ_OFFLINE_DELETE, VALS(V_TEXT(req->user), V_INT(upto))));
}

/* Adds (SQ_BLOCK_ADD) or removes (SQ_BLOCK_REMOVE) every JID, in one transaction;
 * returns how many rows changed. */
static int op_block_change(struct sqlite_be *be, struct store_req *req, enum sqlite_stmt which)
{
    int n = 0, rc = tx_begin(be, true);
    if (rc < 0)
        return rc;
    /* An insert finds a missing account by itself (the foreign key); a delete does not. */
    if (which == SQ_BLOCK_REMOVE)
        rc = user_exists(be, req->user);
    for (size_t i = 0; rc >= 0 && i < req->njids; i++) {
        rc = exec(be, which, VALS(V_TEXT(req->user), V_TEXT(req->jids[i])));
        n += rc > 0;
    }
    return tx_end(be, rc < 0 ? rc : n);
}

static int op_block_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    int rc = tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = user_exists(be, req->user);
    if (rc == 0) {
        rc = prep(be, SQ_BLOCK_LIST, &st, VALS(V_TEXT(req->user)));
        rc = rc == SQLITE_OK ? read_names(be, st, &req->list) : sq_err(be, rc);
    }
    return tx_end(be, rc);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void sqlite_run(void *p, struct store_req *req)
{
    struct sqlite_be *be = p;
    be->used = 0;
    be->err[0] = '\0';
    switch (req->op) {
    case STORE_OP_ACCOUNT_CREATE:
        req->res = op_write(be, req, SQ_CREATE);
        break;
    case STORE_OP_CREDS_SET:
        req->res = op_write(be, req, SQ_CREDS_SET);
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
    case STORE_OP_ACCOUNT_EXISTS:
        req->res = user_exists(be, req->user);
        break;
    case STORE_OP_ROSTER_GET:
        req->res = op_roster_get(be, req);
        break;
    case STORE_OP_ROSTER_PUT:
        req->res = op_roster_put(be, req);
        break;
    case STORE_OP_ROSTER_DELETE:
        req->res = op_roster_delete(be, req);
        break;
    case STORE_OP_ROSTER_COUNT:
        req->res = op_count(be, req, SQ_ROSTER_COUNT);
        break;
    case STORE_OP_SUBREQ_PUT:
        req->res = op_subreq_put(be, req);
        break;
    case STORE_OP_SUBREQ_DELETE:
        req->res = deleted(be, req->user,
                           exec(be, SQ_SUBREQ_DELETE, VALS(V_TEXT(req->user), V_TEXT(req->jid))));
        break;
    case STORE_OP_SUBREQ_LIST:
        req->res = op_subreq_list(be, req);
        break;
    case STORE_OP_OFFLINE_PUSH:
        req->res = op_offline_push(be, req);
        break;
    case STORE_OP_OFFLINE_FETCH:
        req->res = op_offline_fetch(be, req);
        break;
    case STORE_OP_OFFLINE_DELETE:
        req->res = op_offline_delete(be, req);
        break;
    case STORE_OP_OFFLINE_COUNT:
        req->res = op_count(be, req, SQ_OFFLINE_COUNT);
        break;
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        req->res = op_block_change(be, req,
                                   req->op == STORE_OP_BLOCK_ADD ? SQ_BLOCK_ADD : SQ_BLOCK_REMOVE);
        break;
    case STORE_OP_BLOCK_CLEAR:
        req->res = deleted(be, req->user, exec(be, SQ_BLOCK_CLEAR, VALS(V_TEXT(req->user))));
        break;
    case STORE_OP_BLOCK_LIST:
        req->res = op_block_list(be, req);
        break;
    default:
        req->res = -ENOSYS;
        return;
    }
    /* SQLite's failures and memory shortage. Answers are not failures (a foreign key's
     * -ENOENT, a -EEXIST); what else is negative was logged where it was found. A failure
     * a client can cause again and again (a login while the disk is full) is
     * rate-limited. */
    bool answer = req->res == -ENOENT || req->res == -EEXIST || req->res == -EDQUOT;
    if (req->res < 0 && !answer && (be->err[0] || req->res == -ENOMEM))
        LOG_RL(LOG_LEVEL_ERROR, "sqlite %s: %s: %s (%s)", be->path, store_op_name(req->op),
               strerror(-req->res), be->err[0] ? be->err : "no detail");
    /* A failed request hands back no result, whatever it had built. */
    if (req->res < 0) {
        store_list_free(&req->list);
        store_roster_free(&req->roster);
        store_subreqs_free(&req->subreqs);
        store_offline_free(&req->offline);
    }
    /* Ready for the next request; the bindings point into this one, which is about to go. */
    for (int i = 0; i < SQ_COUNT_; i++) {
        if (be->used & UINT64_C(1) << i) {
            sqlite3_reset(be->stmt[i]);
            sqlite3_clear_bindings(be->stmt[i]);
        }
    }
}

const struct store_backend_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sqlite_open,
    .run = sqlite_run,
    .close = sqlite_close,
};
