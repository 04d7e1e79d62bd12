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
 * The instant-messaging requests are in store_sqlite_im.c; what both files share, in
 * store_sqlite.h.
 */
#include "common/core/log.h"
#include "common/store/store_mam_sql.h"
#include "common/store/store_sqlite.h"

#include <errno.h>
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

    /* 3: what a user's offline messages take, in all and per sender, for the quota in
     * bytes and the per-sender share: kept up to date by triggers, so that a push reads
     * two rows instead of counting the user's messages. Messages stored before have no
     * sender (''): they count towards the user's total and no real sender's share. */
    "ALTER TABLE offline ADD COLUMN sender TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE offline ADD COLUMN len INTEGER NOT NULL DEFAULT 0;" /* bytes of stanza */
    "UPDATE offline SET len = length(stanza);"
    "CREATE TABLE offline_usage ("
    " user TEXT NOT NULL PRIMARY KEY REFERENCES accounts (user) ON DELETE CASCADE,"
    " messages INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TABLE offline_sender_usage ("
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " sender TEXT NOT NULL,"
    " messages INTEGER NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " PRIMARY KEY (user, sender)"
    ") STRICT, WITHOUT ROWID;"
    "INSERT INTO offline_usage SELECT user, count(*), sum(len) FROM offline GROUP BY user;"
    "INSERT INTO offline_sender_usage"
    " SELECT user, sender, count(*), sum(len) FROM offline GROUP BY user, sender;"
    "CREATE TRIGGER offline_counted AFTER INSERT ON offline BEGIN"
    " INSERT INTO offline_usage VALUES (new.user, 1, new.len) ON CONFLICT (user)"
    "  DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;"
    " INSERT INTO offline_sender_usage VALUES (new.user, new.sender, 1, new.len)"
    "  ON CONFLICT (user, sender)"
    "  DO UPDATE SET messages = messages + 1, bytes = bytes + excluded.bytes;"
    " END;"
    /* A sender's row goes with its last message: senders come and go, users stay. */
    "CREATE TRIGGER offline_uncounted AFTER DELETE ON offline BEGIN"
    " UPDATE offline_usage SET messages = messages - 1, bytes = bytes - old.len"
    "  WHERE user = old.user;"
    " DELETE FROM offline_sender_usage"
    "  WHERE user = old.user AND sender = old.sender AND messages = 1;"
    " UPDATE offline_sender_usage SET messages = messages - 1, bytes = bytes - old.len"
    "  WHERE user = old.user AND sender = old.sender;"
    " END;",

    /* 4: a user's own data (store_pep.c): PEP nodes and items, private XML, the vCard.
     * seq orders the rows (a put deletes and inserts: its row becomes the newest). */
    "CREATE TABLE pep ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user TEXT NOT NULL REFERENCES accounts (user) ON DELETE CASCADE,"
    " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 3),"
    " node TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " stamp INTEGER NOT NULL," /* UTC microseconds since the Unix epoch */
    " data BLOB NOT NULL,"
    " UNIQUE (user, kind, node, id)"
    ") STRICT;",
    /* 5: the message archive (store_mam.h). The owner is no account's foreign key (a
     * room owns an archive too), so a trigger takes an account's archive with it. An id
     * is a time (store_mam.h), so mam_id serves retention and the router's first id. */
    "CREATE TABLE mam ("
    " owner TEXT NOT NULL,"
    " id INTEGER NOT NULL,"
    " with_bare TEXT NOT NULL,"
    " with_full TEXT NOT NULL,"
    " stanza BLOB NOT NULL,"
    " PRIMARY KEY (owner, id)"
    ") STRICT;"
    "CREATE INDEX mam_with ON mam (owner, with_bare, id);"
    "CREATE INDEX mam_id ON mam (id);"
    /* lists: one line per JID, '+' (always) or '-' (never) then the JID. */
    "CREATE TABLE mam_prefs ("
    " owner TEXT NOT NULL PRIMARY KEY,"
    " dflt INTEGER NOT NULL CHECK (dflt BETWEEN 0 AND 2),"
    " lists TEXT NOT NULL"
    ") STRICT, WITHOUT ROWID;"
    "CREATE TRIGGER mam_account_gone AFTER DELETE ON accounts BEGIN"
    " DELETE FROM mam WHERE owner = old.user;"
    " DELETE FROM mam_prefs WHERE owner = old.user;"
    " END;",
    /* 6: the chat service's persistent rooms (store_muc.h), a row each: the configuration
     * (flags: enum store_muc_flag), the subject, the affiliations as lines of text. */
    "CREATE TABLE muc_rooms ("
    " jid TEXT NOT NULL PRIMARY KEY,"
    " name TEXT, descr TEXT, password TEXT," /* NULL: none */
    " maxusers INTEGER NOT NULL,"
    " flags INTEGER NOT NULL,"
    " subject TEXT, subject_nick TEXT,"
    " affs TEXT NOT NULL"
    ") STRICT;"
    "CREATE INDEX muc_public ON muc_rooms (jid) WHERE flags & 8 <> 0;",
};
#define SQLITE_SCHEMA_VERSION (int)(sizeof sqlite_migrations / sizeof sqlite_migrations[0])

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
    [SQ_MUC_PUT] = "INSERT OR REPLACE INTO muc_rooms VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [SQ_MUC_LOAD] = "SELECT name, descr, password, subject, subject_nick, maxusers, flags, affs"
                    " FROM muc_rooms WHERE jid = ?1",
    [SQ_MUC_DELETE] = "DELETE FROM muc_rooms WHERE jid = ?1",
    [SQ_MUC_LIST] = "SELECT jid, name FROM muc_rooms WHERE flags & 8 <> 0 AND jid > ?1"
                    " ORDER BY jid LIMIT ?2",
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
    /* What the user's messages take, and the sender's; no row without an account. */
    [SQ_OFFLINE_QUOTA] =
        "SELECT coalesce(u.messages, 0), coalesce(u.bytes, 0), coalesce(s.messages, 0),"
        " coalesce(s.bytes, 0) FROM accounts AS a"
        " LEFT JOIN offline_usage AS u ON u.user = a.user"
        " LEFT JOIN offline_sender_usage AS s ON s.user = a.user AND s.sender = ?2"
        " WHERE a.user = ?1",
    [SQ_OFFLINE_PUSH] = "INSERT INTO offline (user, stamp, stanza, sender, len)"
                        " VALUES (?1, ?2, ?3, ?4, length(?3))",
    [SQ_OFFLINE_FETCH] =
        "SELECT seq, stamp, stanza FROM offline WHERE user = ?1 ORDER BY seq LIMIT ?2",
    [SQ_OFFLINE_DELETE] = "DELETE FROM offline WHERE user = ?1 AND seq <= ?2",
    /* DO NOTHING covers the primary key only: a missing account still fails. */
    [SQ_BLOCK_ADD] = "INSERT INTO blocklist (user, jid) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    [SQ_BLOCK_REMOVE] = "DELETE FROM blocklist WHERE user = ?1 AND jid = ?2",
    [SQ_BLOCK_CLEAR] = "DELETE FROM blocklist WHERE user = ?1",
    [SQ_BLOCK_LIST] = "SELECT jid FROM blocklist WHERE user = ?1 ORDER BY jid",
    [SQ_PEP_LOAD] = "SELECT kind, node, id, data FROM pep WHERE user = ?1 ORDER BY seq",
    [SQ_PEP_DELETE] = "DELETE FROM pep WHERE user = ?1 AND kind = ?2 AND node = ?3 AND id = ?4",
    [SQ_PEP_DELETE_NODE] = "DELETE FROM pep WHERE user = ?1 AND kind IN (0, 1) AND node = ?2",
    [SQ_PEP_INSERT] = "INSERT INTO pep (user, kind, node, id, stamp, data)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* The node's items but the newest ?3 (-1: all of them). */
    [SQ_PEP_TRIM] = "DELETE FROM pep WHERE user = ?1 AND kind = 1 AND node = ?2 AND seq NOT IN"
                    " (SELECT seq FROM pep WHERE user = ?1 AND kind = 1 AND node = ?2"
                    " ORDER BY seq DESC LIMIT ?3)",
    [SQ_MAM_APPEND] = "INSERT INTO mam (owner, id, with_bare, with_full, stanza)"
                      " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    /* One statement, one snapshot: the count row (k = 0) and the page (k = 1). */
    [SQ_MAM_QUERY] = MAM_QUERY_SQL("?1", "?2", "?3", "?4", "?5", "?6", "?7", "?8", ""),
    [SQ_MAM_QUERY_LAST] =
        MAM_QUERY_SQL("?1", "?2", "?3", "?4", "?5", "?6", "?7", "?8", " DESC"),
    [SQ_MAM_PREFS_GET] = "SELECT dflt, lists FROM mam_prefs WHERE owner = ?1",
    [SQ_MAM_PREFS_SET] = "INSERT INTO mam_prefs (owner, dflt, lists) VALUES (?1, ?2, ?3)"
                         " ON CONFLICT (owner) DO UPDATE SET dflt = excluded.dflt,"
                         " lists = excluded.lists",
    [SQ_MAM_EXPIRE] =
        "DELETE FROM mam WHERE rowid IN (SELECT rowid FROM mam WHERE id < ?1 LIMIT ?2)",
    [SQ_MAM_LAST] = "SELECT coalesce(max(id), 0) FROM mam",
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
    if (opts->cache) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size = -%llu",
                 (unsigned long long)(opts->cache / 1024)); /* negative: in KiB */
        if ((rc = sqlite_exec(be, pragma)) < 0)
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

int sq_err(struct sqlite_be *be, int rc)
{
    if (!be->err[0])
        snprintf(be->err, sizeof be->err, "%s", sqlite3_errmsg(be->db));
    return sqlite_errno(be->db, rc);
}

int sq_prep(struct sqlite_be *be, enum sqlite_stmt which, sqlite3_stmt **out,
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

int sq_exec(struct sqlite_be *be, enum sqlite_stmt which, const struct sq_val *v, size_t n)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, which, &st, v, n);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sq_err(be, rc);
    return sqlite3_changes(be->db);
}

int sq_step_row(struct sqlite_be *be, sqlite3_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? -ENOENT : sq_err(be, rc);
}

int sq_tx_begin(struct sqlite_be *be, bool write)
{
    int rc = sq_exec(be, write ? SQ_BEGIN_WRITE : SQ_BEGIN, NULL, 0);
    return rc < 0 ? rc : 0;
}

int sq_tx_end(struct sqlite_be *be, int res)
{
    /* A statement left mid-way would keep its read open past the end of the
     * transaction (and make COMMIT fail while it writes). */
    for (int i = 0; i < SQ_COUNT_; i++)
        if (be->used & UINT64_C(1) << i)
            sqlite3_reset(be->stmt[i]);
    if (res >= 0) {
        int rc = sq_exec(be, SQ_COMMIT, NULL, 0);
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

int sq_user_exists(struct sqlite_be *be, const char *user)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, SQ_EXISTS, &st, VALS(V_TEXT(user)));
    return sq_step_row(be, st, rc);
}

int sq_user_value(struct sqlite_be *be, enum sqlite_stmt which, const char *user,
                  sqlite3_int64 *val)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, which, &st, VALS(V_TEXT(user)));
    rc = sq_step_row(be, st, rc);
    if (rc == 0)
        *val = sqlite3_column_int64(st, 0);
    return rc;
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
    int rc = sq_prep(be, SQ_CREDS_GET, &st, VALS(V_TEXT(req->user)));
    rc = sq_step_row(be, st, rc);
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

static int op_write(struct sqlite_be *be, const char *user, const struct store_creds *creds,
                    enum sqlite_stmt which)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, which, &st, NULL, 0);
    if (rc == SQLITE_OK)
        rc = bind_creds(st, user, creds);
    if (rc == SQLITE_OK && which == SQ_CREATE)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        return sq_err(be, rc);
    return sqlite3_changes(be->db) ? 0 : -ENOENT;
}

/* One write transaction: a failed statement (a name that exists) leaves the transaction
 * open, so replace can update instead, and any failure rolls every row back. */
static int op_import(struct sqlite_be *be, struct store_req *req)
{
    int rc = sq_tx_begin(be, true), created = 0;
    req->failed = req->naccounts; /* none in particular, unless one fails below */
    for (size_t i = 0; rc >= 0 && i < req->naccounts; i++) {
        const struct store_account *a = &req->accounts[i];
        rc = op_write(be, a->user, &a->creds, SQ_CREATE);
        if (rc == -EEXIST && req->replace)
            rc = op_write(be, a->user, &a->creds, SQ_CREDS_SET);
        else if (rc == 0)
            created++;
        if (rc < 0)
            req->failed = i;
    }
    return sq_tx_end(be, rc < 0 ? rc : created);
}

static int op_delete(struct sqlite_be *be, struct store_req *req)
{
    int rc = sq_exec(be, SQ_DELETE, VALS(V_TEXT(req->user)));
    return rc < 0 ? rc : rc ? 0 : -ENOENT;
}

int sq_read_names(struct sqlite_be *be, sqlite3_stmt *st, struct store_list *l)
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
    int rc = sq_prep(be, SQ_LIST, &st,
                     VALS(V_TEXT(req->after ? req->after : ""), V_INT((sqlite3_int64)req->limit)));
    return rc == SQLITE_OK ? sq_read_names(be, st, &req->list) : sq_err(be, rc);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void sqlite_run(void *p, struct store_req *req)
{
    struct sqlite_be *be = p;
    be->used = 0;
    be->err[0] = '\0';
    switch (req->op) {
    case STORE_OP_ACCOUNT_CREATE:
        req->res = op_write(be, req->user, &req->creds, SQ_CREATE);
        break;
    case STORE_OP_CREDS_SET:
        req->res = op_write(be, req->user, &req->creds, SQ_CREDS_SET);
        break;
    case STORE_OP_ACCOUNT_IMPORT:
        req->res = op_import(be, req);
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
        req->res = sq_user_exists(be, req->user);
        break;
    case STORE_OP_CLUSTER_BEAT:
        req->res = -ENOTSUP; /* a file is no meeting place for nodes */
        break;
    default:
        if (!sq_im_run(be, req) && !sq_pep_run(be, req) && !sq_mam_run(be, req) &&
            !sq_muc_run(be, req)) {
            req->res = -ENOSYS;
            return;
        }
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
        store_pep_free(&req->pep);
        store_mam_page_free(&req->mam_page);
        store_mam_prefs_free(&req->mam_prefs_out);
        store_muc_room_free(&req->muc_out);
        store_muc_list_free(&req->muc_list);
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
