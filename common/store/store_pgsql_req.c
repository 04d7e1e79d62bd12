/*
 * The PostgreSQL back end's requests: each as the statements it sends and what it makes
 * of their results (store_pgsql.h says how a request travels). The same answers as the
 * SQLite back end's, request for request.
 *
 * Concurrency between nodes. Every statement runs at READ COMMITTED. What must not
 * interleave with another node's writes for the same user takes a row lock first:
 * the roster version row (roster put and delete raise it first, so two changes of one
 * roster queue up and get distinct versions), or the user's account row FOR NO KEY
 * UPDATE (offline push: the quota is checked by the next statement, whose snapshot is
 * taken after the lock, so two pushes never both see room for the last message; block
 * add and remove, whose many rows would otherwise deadlock in different orders). FOR NO
 * KEY UPDATE does not block the foreign-key checks of other writes for the user.
 */
#include "common/core/log.h"
#include "common/store/store_flat.h"
#include "common/store/store_mam_sql.h"
#include "common/store/store_pgsql.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(STORE_FETCH_BYTES == 1048576, "PG_OFFLINE_FETCH spells STORE_FETCH_BYTES out");

/* The credential columns are $3..$10 in PG_CREATE and $2..$9 in PG_CREDS_SET. */
#define CREDS_COLS                                                                                 \
    "sha1_iterations, sha1_salt, sha1_stored_key, sha1_server_key, sha256_iterations,"            \
    " sha256_salt, sha256_stored_key, sha256_server_key"
#define CREATE_SQL                                                                                 \
    "INSERT INTO accounts (username, created, " CREDS_COLS ") VALUES ($1::text, $2::bigint,"       \
    " $3::bigint, $4::bytea, $5::bytea, $6::bytea, $7::bigint, $8::bytea, $9::bytea, $10::bytea)"

const char *const pg_sql[PG_STMT_COUNT_] = {
    [PG_CREATE] = CREATE_SQL,
    /* An import's replace: the insert first (it counts what it created), then the
     * update, so a name another node creates in between still gets these credentials. */
    [PG_CREATE_IGNORE] = CREATE_SQL " ON CONFLICT (username) DO NOTHING",
    [PG_DELETE] = "DELETE FROM accounts WHERE username = $1::text",
    [PG_CREDS_GET] = "SELECT " CREDS_COLS " FROM accounts WHERE username = $1::text",
    [PG_CREDS_SET] = "UPDATE accounts SET sha1_iterations = $2::bigint, sha1_salt = $3::bytea,"
                     " sha1_stored_key = $4::bytea, sha1_server_key = $5::bytea,"
                     " sha256_iterations = $6::bigint, sha256_salt = $7::bytea,"
                     " sha256_stored_key = $8::bytea, sha256_server_key = $9::bytea"
                     " WHERE username = $1::text",
    /* Every text column is COLLATE "C": byte order, as store.h promises. */
    [PG_LIST] = "SELECT username FROM accounts WHERE username > $1::text ORDER BY username"
                " LIMIT $2::bigint",
    [PG_EXISTS] = "SELECT 1 FROM accounts WHERE username = $1::text",
    [PG_LOCK_USER] = "SELECT 1 FROM accounts WHERE username = $1::text FOR NO KEY UPDATE",
    /* The whole of what a login loads in one statement, hence one snapshot: k = 0 is the
     * account (no row: no account) with the version and whether offline messages wait,
     * k = 1 one row per (item, group), k = 2 one per blocked JID. */
    [PG_ROSTER_GET] =
        "SELECT * FROM ("
        "SELECT 0 AS k, NULL::text AS jid, NULL::text AS name, NULL::smallint AS sub,"
        " NULL::boolean AS ask, NULL::boolean AS pending_in, NULL::boolean AS approved,"
        " NULL::boolean AS hidden,"
        " (SELECT ver FROM roster_version AS v WHERE v.username = a.username) AS ver,"
        " NULL::text AS grp,"
        " EXISTS (SELECT 1 FROM offline AS o WHERE o.username = a.username) AS offline"
        " FROM accounts AS a WHERE a.username = $1::text"
        " UNION ALL SELECT 1, r.jid, r.name, r.sub, r.ask, r.pending_in, r.approved, r.hidden,"
        " r.ver, g.grp, NULL FROM roster AS r LEFT JOIN roster_groups AS g"
        " ON g.username = r.username AND g.jid = r.jid WHERE r.username = $1::text"
        " UNION ALL SELECT 2, b.jid, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
        " FROM blocklist AS b WHERE b.username = $1::text"
        ") AS x ORDER BY k, jid COLLATE \"C\", grp COLLATE \"C\"",
    /* Fails on the account's foreign key when there is no account; the row lock it
     * takes serialises the changes of one roster across nodes. */
    [PG_ROSTER_BUMP] = "INSERT INTO roster_version (username, ver) VALUES ($1::text, 1)"
                       " ON CONFLICT (username) DO UPDATE SET ver = roster_version.ver + 1"
                       " RETURNING ver",
    /* The version the bump before it (same transaction) set. */
    [PG_ROSTER_UPSERT] =
        "INSERT INTO roster (username, jid, name, sub, ask, pending_in, approved, hidden, ver)"
        " VALUES ($1::text, $2::text, $3::text, $4::smallint, $5::boolean, $6::boolean,"
        " $7::boolean, $8::boolean,"
        " (SELECT ver FROM roster_version WHERE username = $1::text))"
        " ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name, sub = excluded.sub,"
        " ask = excluded.ask, pending_in = excluded.pending_in, approved = excluded.approved,"
        " hidden = excluded.hidden, ver = excluded.ver",
    /* The delete and, only when it deleted, the bump: no row back means no such item
     * (or no account), and the version stays. Groups go by the cascade. */
    [PG_ROSTER_DELETE] =
        "WITH d AS (DELETE FROM roster WHERE username = $1::text AND jid = $2::text RETURNING 1)"
        " INSERT INTO roster_version (username, ver) SELECT $1::text, 1 WHERE EXISTS"
        " (SELECT 1 FROM d) ON CONFLICT (username) DO UPDATE SET ver = roster_version.ver + 1"
        " RETURNING ver",
    [PG_ROSTER_COUNT] = "SELECT (SELECT count(*) FROM roster AS r WHERE r.username = a.username)"
                        " FROM accounts AS a WHERE a.username = $1::text",
    [PG_GROUPS_CLEAR] = "DELETE FROM roster_groups WHERE username = $1::text AND jid = $2::text",
    [PG_GROUP_ADD] =
        "INSERT INTO roster_groups (username, jid, grp) VALUES ($1::text, $2::text, $3::text)",
    /* An update keeps the request's place (its id) in the order. */
    [PG_SUBREQ_PUT] = "INSERT INTO subreqs (username, jid, stanza)"
                      " VALUES ($1::text, $2::text, $3::bytea)"
                      " ON CONFLICT (username, jid) DO UPDATE SET stanza = excluded.stanza",
    [PG_SUBREQ_DELETE] = "DELETE FROM subreqs WHERE username = $1::text AND jid = $2::text",
    /* No row: no account; one row of NULLs: no request. */
    [PG_SUBREQ_LIST] = "SELECT s.jid, s.stanza FROM accounts AS a LEFT JOIN subreqs AS s"
                       " ON s.username = a.username WHERE a.username = $1::text ORDER BY s.id",
    [PG_OFFLINE_COUNT] =
        "SELECT (SELECT count(*) FROM offline AS o WHERE o.username = a.username)"
        " FROM accounts AS a WHERE a.username = $1::text",
    /* The quota check and the insert in one statement, after PG_LOCK_USER: no row back
     * is -EDQUOT. $5..$8: messages, bytes, the sender's messages and bytes at most. */
    [PG_OFFLINE_PUSH] =
        "INSERT INTO offline (username, stamp, stanza, sender, len)"
        " SELECT a.username, $2::bigint, $3::bytea, $4::text, length($3::bytea)"
        " FROM accounts AS a LEFT JOIN offline_usage AS u ON u.username = a.username"
        " LEFT JOIN offline_sender_usage AS s ON s.username = a.username AND s.sender = $4::text"
        " WHERE a.username = $1::text AND coalesce(u.messages, 0) < $5::bigint"
        " AND coalesce(u.bytes, 0) + length($3::bytea) <= $6::bigint"
        " AND coalesce(s.messages, 0) < $7::bigint"
        " AND coalesce(s.bytes, 0) + length($3::bytea) <= $8::bigint RETURNING seq",
    /* The oldest $2, cut where their stanzas pass STORE_FETCH_BYTES (the first always
     * comes): the budget is applied here, so a fetch never transfers more. No row: no
     * account; one row of NULLs: no message. */
    [PG_OFFLINE_FETCH] =
        "SELECT o.seq, o.stamp, o.stanza FROM accounts AS a LEFT JOIN LATERAL"
        " (SELECT seq, stamp, stanza, row_number() OVER w AS n, sum(len) OVER w AS total"
        " FROM (SELECT seq, stamp, stanza, len FROM offline WHERE username = a.username"
        " ORDER BY seq LIMIT $2::bigint) AS m WINDOW w AS (ORDER BY seq)) AS o"
        " ON o.n = 1 OR o.total <= 1048576 WHERE a.username = $1::text"
        " ORDER BY o.seq",
    [PG_OFFLINE_DELETE] = "DELETE FROM offline WHERE username = $1::text AND seq <= $2::bigint",
    /* DO NOTHING covers the primary key only: a missing account still fails. */
    [PG_BLOCK_ADD] = "INSERT INTO blocklist (username, jid) VALUES ($1::text, $2::text)"
                     " ON CONFLICT DO NOTHING",
    [PG_BLOCK_REMOVE] = "DELETE FROM blocklist WHERE username = $1::text AND jid = $2::text",
    [PG_BLOCK_CLEAR] = "DELETE FROM blocklist WHERE username = $1::text",
    [PG_BLOCK_LIST] = "SELECT b.jid FROM accounts AS a LEFT JOIN blocklist AS b"
                      " ON b.username = a.username WHERE a.username = $1::text ORDER BY b.jid",
    /* A node's heartbeat: its row, with its slot kept or else the lowest free one (two
     * nodes new at once may pick the same: one fails on the UNIQUE and tries again at
     * its next beat). */
    [PG_CLUSTER_BEAT] =
        "INSERT INTO cluster_nodes (name, slot, address, shards, incarnation, heartbeat)"
        " SELECT $1::text, coalesce((SELECT slot FROM cluster_nodes WHERE name = $1::text),"
        " (SELECT min(s) FROM generate_series(0, $5::bigint - 1) AS s"
        "  WHERE s NOT IN (SELECT slot FROM cluster_nodes))),"
        " $2::text, $3::bigint, $4::bigint, now()"
        " ON CONFLICT (name) DO UPDATE SET address = excluded.address,"
        " shards = excluded.shards, incarnation = excluded.incarnation,"
        " heartbeat = excluded.heartbeat RETURNING slot",
    /* The others whose heartbeat is within $2 ms, as "slot name address". */
    [PG_CLUSTER_LIVE] =
        "SELECT slot::text || ' ' || name || ' ' || address FROM cluster_nodes"
        " WHERE name <> $1::text AND heartbeat > now() - $2::bigint * interval '1 millisecond'"
        " ORDER BY slot",
    /* No row: no account; one row of NULLs: no data. */
    [PG_PEP_LOAD] = "SELECT p.kind, p.node, p.id, p.data FROM accounts AS a LEFT JOIN pep AS p"
                    " ON p.username = a.username WHERE a.username = $1::text ORDER BY p.seq",
    [PG_PEP_DELETE] = "DELETE FROM pep WHERE username = $1::text AND kind = $2::smallint"
                      " AND node = $3::text AND id = $4::text",
    [PG_PEP_DELETE_NODE] =
        "DELETE FROM pep WHERE username = $1::text AND kind IN (0, 1) AND node = $2::text",
    [PG_PEP_INSERT] = "INSERT INTO pep (username, kind, node, id, stamp, data) VALUES ($1::text,"
                      " $2::smallint, $3::text, $4::text, $5::bigint, $6::bytea)",
    /* The node's items but the newest $3. */
    [PG_PEP_TRIM] = "DELETE FROM pep WHERE username = $1::text AND kind = 1 AND node = $2::text"
                    " AND seq NOT IN (SELECT seq FROM pep WHERE username = $1::text AND kind = 1"
                    " AND node = $2::text ORDER BY seq DESC LIMIT $3::bigint)",
    [PG_MUC_PUT] = "INSERT INTO muc_rooms VALUES ($1::text, $2::text, $3::text, $4::text,"
                   " $5::bigint, $6::bigint, $7::text, $8::text, $9::text)"
                   " ON CONFLICT (jid) DO UPDATE SET name = excluded.name,"
                   " descr = excluded.descr, password = excluded.password,"
                   " maxusers = excluded.maxusers, flags = excluded.flags,"
                   " subject = excluded.subject, subject_nick = excluded.subject_nick,"
                   " affs = excluded.affs",
    [PG_MUC_LOAD] = "SELECT name, descr, password, subject, subject_nick, maxusers, flags, affs"
                    " FROM muc_rooms WHERE jid = $1::text",
    [PG_MUC_DELETE] = "DELETE FROM muc_rooms WHERE jid = $1::text",
    [PG_MUC_LIST] = "SELECT jid, name FROM muc_rooms WHERE flags & 8 <> 0 AND jid > $1::text"
                    " ORDER BY jid LIMIT $2::bigint",
    [PG_MAM_APPEND] = "INSERT INTO mam (owner, id, with_bare, with_full, stanza)"
                      " VALUES ($1::text, $2::bigint, $3::text, $4::text, $5::bytea)"
                      " ON CONFLICT DO NOTHING",
    [PG_MAM_QUERY] = MAM_QUERY_SQL("$1::text", "$2::text", "$3::text", "$4::bigint",
                                   "$5::bigint", "$6::bigint", "$7::bigint", "$8::bigint", ""),
    [PG_MAM_QUERY_LAST] = MAM_QUERY_SQL("$1::text", "$2::text", "$3::text", "$4::bigint",
                                        "$5::bigint", "$6::bigint", "$7::bigint", "$8::bigint",
                                        " DESC"),
    [PG_MAM_PREFS_GET] = "SELECT dflt, lists FROM mam_prefs WHERE owner = $1::text",
    [PG_MAM_PREFS_SET] = "INSERT INTO mam_prefs (owner, dflt, lists)"
                         " VALUES ($1::text, $2::smallint, $3::text) ON CONFLICT (owner)"
                         " DO UPDATE SET dflt = excluded.dflt, lists = excluded.lists",
    [PG_MAM_EXPIRE] = "DELETE FROM mam WHERE ctid IN"
                      " (SELECT ctid FROM mam WHERE id < $1::bigint LIMIT $2::bigint)",
    [PG_MAM_LAST] = "SELECT coalesce(max(id), 0) FROM mam",
};

/* ---- parameters and columns -------------------------------------------------------------- */

int pg_send(PGconn *conn, enum pg_stmt which, const struct pg_val *v, size_t n)
{
    enum { MAXP = 10 };
    const char *vals[MAXP];
    int lens[MAXP], fmts[MAXP];
    char ints[MAXP][8];
    char name[16];
    if (n > MAXP)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        fmts[i] = 1;
        switch (v[i].kind) {
        case PGV_BYTES:
            vals[i] = v[i].p ? v[i].p : NULL;
            /* An empty string is a value, not NULL: point at something. */
            if (v[i].p && !v[i].len)
                vals[i] = "";
            lens[i] = (int)v[i].len;
            break;
        case PGV_INT8:
        case PGV_INT2:
        case PGV_BOOL: {
            int w = v[i].kind == PGV_INT8 ? 8 : v[i].kind == PGV_INT2 ? 2 : 1;
            uint64_t x = (uint64_t)v[i].i;
            for (int b = 0; b < w; b++)
                ints[i][b] = (char)(x >> (8 * (w - 1 - b)));
            vals[i] = ints[i];
            lens[i] = w;
            break;
        }
        }
    }
    snprintf(name, sizeof name, "s%d", (int)which);
    return pg_lib.PQsendQueryPrepared(conn, name, (int)n, vals, lens, fmts, 1) ? 0 : -EIO;
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    if (pg_lib.PQgetisnull(r, row, col))
        return 0;
    const unsigned char *p = (const unsigned char *)pg_lib.PQgetvalue(r, row, col);
    int len = pg_lib.PQgetlength(r, row, col);
    uint64_t x = len > 0 && (p[0] & 0x80) && len < 8 ? UINT64_MAX : 0; /* sign */
    for (int i = 0; i < len && i < 8; i++)
        x = x << 8 | p[i];
    return (int64_t)x;
}

static size_t clamp(size_t v)
{
    return v > INT64_MAX ? INT64_MAX : v;
}

/* ---- sending ----------------------------------------------------------------------------- */

/* user and the credentials, in PG_CREATE's order ($1, $2 = created, $3..$10) or
 * PG_CREDS_SET's ($1, $2..$9). An absent mechanism is iterations 0 and empty blobs. */
static int send_creds(PGconn *conn, enum pg_stmt which, const char *user,
                      const struct store_creds *c)
{
    const struct store_scram_sha1 *a = &c->sha1;
    const struct store_scram_sha256 *b = &c->sha256;
    size_t na = a->iterations ? 1 : 0, nb = b->iterations ? 1 : 0;
    struct pg_val v[10] = {
        P_TEXT(user),
        P_INT8(time(NULL)),
        P_INT8(a->iterations),
        P_BYTEA(a->salt, na * a->salt_len),
        P_BYTEA(a->stored_key, na * sizeof a->stored_key),
        P_BYTEA(a->server_key, na * sizeof a->server_key),
        P_INT8(b->iterations),
        P_BYTEA(b->salt, nb * b->salt_len),
        P_BYTEA(b->stored_key, nb * sizeof b->stored_key),
        P_BYTEA(b->server_key, nb * sizeof b->server_key),
    };
    if (which == PG_CREDS_SET) {
        memmove(&v[1], &v[2], 8 * sizeof v[0]);
        return pg_send(conn, which, v, 9);
    }
    return pg_send(conn, which, v, 10);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One statement per JID, in byte order (the lock makes the order moot today; sorted,
 * two requests touching the same rows could never wait for each other in a cycle). */
static int send_jids(PGconn *conn, enum pg_stmt which, const struct store_req *req)
{
    const char **sorted = malloc(req->njids * sizeof *sorted);
    int rc = 0;
    if (!sorted)
        return -ENOMEM;
    memcpy(sorted, req->jids, req->njids * sizeof *sorted);
    qsort(sorted, req->njids, sizeof *sorted, cmp_str);
    for (size_t i = 0; rc == 0 && i < req->njids; i++)
        rc = pg_send(conn, which, PVALS(P_TEXT(req->user), P_TEXT(sorted[i])));
    free(sorted);
    return rc;
}

int pg_req_send(PGconn *conn, const struct pg_flight *fl)
{
    const struct store_req *req = fl->req;
    const struct store_roster_item *it = &req->item;
    int rc = 0;
#define SEND(stmt, ...) (rc = rc ? rc : pg_send(conn, stmt, PVALS(__VA_ARGS__)))
#define USER            P_TEXT(req->user)
    switch (req->op) {
    case STORE_OP_ACCOUNT_CREATE:
        rc = send_creds(conn, PG_CREATE, req->user, &req->creds);
        break;
    case STORE_OP_CREDS_SET:
        rc = send_creds(conn, PG_CREDS_SET, req->user, &req->creds);
        break;
    case STORE_OP_ACCOUNT_IMPORT:
        for (size_t i = 0; rc == 0 && i < req->naccounts; i++) {
            const struct store_account *a = &req->accounts[i];
            rc = send_creds(conn, req->replace ? PG_CREATE_IGNORE : PG_CREATE, a->user, &a->creds);
            if (rc == 0 && req->replace)
                rc = send_creds(conn, PG_CREDS_SET, a->user, &a->creds);
        }
        break;
    case STORE_OP_ACCOUNT_DELETE:
        SEND(PG_DELETE, USER);
        break;
    case STORE_OP_CREDS_GET:
        SEND(PG_CREDS_GET, USER);
        break;
    case STORE_OP_ACCOUNT_LIST:
        /* "" sorts before every name, and a name is never empty. */
        SEND(PG_LIST, P_TEXT(req->after ? req->after : ""), P_INT8(req->limit));
        break;
    case STORE_OP_ACCOUNT_EXISTS:
        SEND(PG_EXISTS, USER);
        break;
    case STORE_OP_ROSTER_GET:
        SEND(PG_ROSTER_GET, USER);
        break;
    case STORE_OP_ROSTER_PUT:
        SEND(PG_ROSTER_BUMP, USER);
        SEND(PG_ROSTER_UPSERT, USER, P_TEXT(it->jid), P_TEXT(it->name), P_INT2(it->sub),
             P_BOOL(it->ask), P_BOOL(it->pending_in), P_BOOL(it->approved), P_BOOL(it->hidden));
        SEND(PG_GROUPS_CLEAR, USER, P_TEXT(it->jid));
        for (size_t i = 0; i < it->ngroups; i++)
            SEND(PG_GROUP_ADD, USER, P_TEXT(it->jid), P_TEXT(it->groups[i]));
        break;
    case STORE_OP_ROSTER_DELETE:
        SEND(PG_ROSTER_DELETE, USER, P_TEXT(req->jid));
        break;
    case STORE_OP_ROSTER_COUNT:
        SEND(PG_ROSTER_COUNT, USER);
        break;
    case STORE_OP_SUBREQ_PUT:
        SEND(PG_SUBREQ_PUT, USER, P_TEXT(req->jid), P_BYTEA(req->data, req->len));
        break;
    case STORE_OP_SUBREQ_DELETE:
        SEND(PG_SUBREQ_DELETE, USER, P_TEXT(req->jid));
        SEND(PG_EXISTS, USER);
        break;
    case STORE_OP_SUBREQ_LIST:
        SEND(PG_SUBREQ_LIST, USER);
        break;
    case STORE_OP_OFFLINE_PUSH: {
        const struct store_offline_quota *q = &req->quota;
        SEND(PG_LOCK_USER, USER);
        SEND(PG_OFFLINE_PUSH, USER, P_INT8(req->stamp_us), P_BYTEA(req->data, req->len),
             P_TEXT(req->jid), P_INT8(clamp(q->messages)), P_INT8(clamp(q->bytes)),
             P_INT8(clamp(q->sender_messages)), P_INT8(clamp(q->sender_bytes)));
        break;
    }
    case STORE_OP_OFFLINE_FETCH:
        SEND(PG_OFFLINE_FETCH, USER, P_INT8(req->limit));
        break;
    case STORE_OP_OFFLINE_DELETE:
        SEND(PG_OFFLINE_DELETE, USER, P_INT8(req->seq > INT64_MAX ? INT64_MAX : req->seq));
        SEND(PG_EXISTS, USER);
        break;
    case STORE_OP_OFFLINE_COUNT:
        SEND(PG_OFFLINE_COUNT, USER);
        break;
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        SEND(PG_LOCK_USER, USER);
        if (rc == 0)
            rc = send_jids(conn, req->op == STORE_OP_BLOCK_ADD ? PG_BLOCK_ADD : PG_BLOCK_REMOVE,
                           req);
        break;
    case STORE_OP_BLOCK_CLEAR:
        SEND(PG_BLOCK_CLEAR, USER);
        SEND(PG_EXISTS, USER);
        break;
    case STORE_OP_BLOCK_LIST:
        SEND(PG_BLOCK_LIST, USER);
        break;
    case STORE_OP_CLUSTER_BEAT:
        SEND(PG_CLUSTER_BEAT, USER, P_TEXT(req->jid), P_INT8(req->limit),
             P_INT8((int64_t)(req->seq >> 1)), P_INT8(STORE_CLUSTER_SLOTS));
        SEND(PG_CLUSTER_LIVE, USER, P_INT8(req->stamp_us));
        break;
    default:
        rc = pg_pep_send(conn, fl);
        if (rc == -ENOSYS)
            rc = pg_mam_send(conn, fl);
        if (rc == -ENOSYS)
            rc = pg_muc_send(conn, fl);
        break;
    }
#undef SEND
#undef USER
    return rc;
}

/* ---- results ----------------------------------------------------------------------------- */

static void set_err(struct pg_flight *fl, size_t k, int err)
{
    if (!fl->err) {
        fl->err = err;
        fl->err_k = k;
    }
}

static long changed(const PGresult *r)
{
    return strtol(pg_lib.PQcmdTuples((PGresult *)r), NULL, 10);
}

/* A copy of a bytea column of exactly len bytes (or at most, when up_to). */
static bool col_blob(const PGresult *r, int col, uint8_t *dst, size_t len, bool up_to,
                     size_t *got)
{
    size_t n = (size_t)pg_lib.PQgetlength(r, 0, col);
    if (n > len || (!up_to && n != len))
        return false;
    memcpy(dst, pg_lib.PQgetvalue(r, 0, col), n);
    if (got)
        *got = n;
    return true;
}

static bool col_scram(const PGresult *r, int col, uint32_t *iter, uint8_t *salt,
                      uint8_t *salt_len, uint8_t *stored, uint8_t *server, size_t keylen)
{
    int64_t it = pg_int(r, 0, col);
    size_t n;
    if (it < 0 || it > UINT32_MAX)
        return false;
    *iter = (uint32_t)it;
    if (!it)
        return true;
    if (!col_blob(r, col + 1, salt, STORE_SALT_MAX, true, &n) || n == 0 ||
        !col_blob(r, col + 2, stored, keylen, false, NULL) ||
        !col_blob(r, col + 3, server, keylen, false, NULL))
        return false;
    *salt_len = (uint8_t)n;
    return true;
}

static int creds_read(const PGresult *r, struct store_creds *c)
{
    if (pg_lib.PQntuples(r) == 0)
        return -ENOENT;
    memset(c, 0, sizeof *c);
    if (!col_scram(r, 0, &c->sha1.iterations, c->sha1.salt, &c->sha1.salt_len, c->sha1.stored_key,
                   c->sha1.server_key, sizeof c->sha1.stored_key) ||
        !col_scram(r, 4, &c->sha256.iterations, c->sha256.salt, &c->sha256.salt_len,
                   c->sha256.stored_key, c->sha256.server_key, sizeof c->sha256.stored_key)) {
        LOG_RL(LOG_LEVEL_ERROR, "postgresql: malformed credentials stored for a user");
        return -EIO;
    }
    return 0;
}

/* Column col of rows first.. as malloc'd names (a NULL ends them: a LEFT JOIN's nothing). */
static int names_read(const PGresult *r, int first, int col, struct store_list *l)
{
    int rows = pg_lib.PQntuples(r);
    size_t n = 0;
    for (int i = first; i < rows && !pg_lib.PQgetisnull(r, i, col); i++)
        n++;
    if (!n)
        return 0;
    l->names = calloc(n, sizeof *l->names);
    if (!l->names)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int row = first + (int)i;
        if (!(l->names[i] = strndup(pg_lib.PQgetvalue(r, row, col),
                                    (size_t)pg_lib.PQgetlength(r, row, col)))) {
            l->n = i;
            store_list_free(l);
            return -ENOMEM;
        }
    }
    l->n = n;
    return 0;
}

/* A column's bytes into f (with a NUL when text): its offset as a pointer. */
const char *pg_flat_col(struct flat *f, const PGresult *r, int row, int col, bool text,
                        size_t *len)
{
    if (pg_lib.PQgetisnull(r, row, col))
        return NULL;
    size_t n = (size_t)pg_lib.PQgetlength(r, row, col);
    if (len)
        *len = n;
    return (const char *)(uintptr_t)flat_put(f, pg_lib.PQgetvalue(r, row, col), n, 1, text);
}

static int roster_read(const PGresult *r, struct store_roster *out)
{
    struct flat_roster fr;
    int rows = pg_lib.PQntuples(r), row = 1, rc;
    if (rows == 0 || pg_int(r, 0, 0) != 0)
        return -ENOENT;
    out->ver = (uint64_t)pg_int(r, 0, 8);
    out->offline = pg_int(r, 0, 10) != 0;
    flat_roster_init(&fr);
    for (; row < rows && pg_int(r, row, 0) == 1; row++) {
        bool same = row > 1 && pg_lib.PQgetlength(r, row, 1) == pg_lib.PQgetlength(r, row - 1, 1) &&
                    !memcmp(pg_lib.PQgetvalue(r, row, 1), pg_lib.PQgetvalue(r, row - 1, 1),
                            (size_t)pg_lib.PQgetlength(r, row, 1));
        if (!same) {
            flat_roster_item_end(&fr);
            struct store_roster_item *it = flat_rec(&fr.f);
            if (!it)
                break;
            it->jid = pg_flat_col(&fr.f, r, row, 1, true, NULL);
            it->name = pg_flat_col(&fr.f, r, row, 2, true, NULL);
            it->sub = (uint8_t)pg_int(r, row, 3);
            it->ask = pg_int(r, row, 4);
            it->pending_in = pg_int(r, row, 5);
            it->approved = pg_int(r, row, 6);
            it->hidden = pg_int(r, row, 7);
            it->ver = (uint64_t)pg_int(r, row, 8);
        }
        if (!pg_lib.PQgetisnull(r, row, 9))
            flat_roster_group(&fr, (uintptr_t)pg_flat_col(&fr.f, r, row, 9, true, NULL));
    }
    if (fr.f.nomem) {
        flat_roster_drop(&fr);
        return -ENOMEM;
    }
    if ((rc = flat_roster_finish(&fr, out)) < 0)
        return rc;
    if ((rc = names_read(r, row, 1, &out->blocked)) < 0) {
        store_roster_free(out);
        return rc;
    }
    return 0;
}

static int subreqs_read(const PGresult *r, struct store_subreqs *out)
{
    struct flat f;
    int rows = pg_lib.PQntuples(r);
    if (rows == 0)
        return -ENOENT;
    flat_init(&f, sizeof(struct store_subreq));
    for (int i = 0; i < rows && !pg_lib.PQgetisnull(r, i, 0); i++) {
        struct store_subreq *s = flat_rec(&f);
        if (!s)
            break;
        s->jid = pg_flat_col(&f, r, i, 0, true, NULL);
        s->stanza = pg_flat_col(&f, r, i, 1, false, &s->len);
    }
    return flat_subreqs_finish(&f, out);
}

static int offline_read(const PGresult *r, struct store_offline *out)
{
    struct flat f;
    int rows = pg_lib.PQntuples(r);
    if (rows == 0)
        return -ENOENT;
    flat_init(&f, sizeof(struct store_offline_msg));
    for (int i = 0; i < rows && !pg_lib.PQgetisnull(r, i, 0); i++) {
        struct store_offline_msg *m = flat_rec(&f);
        if (!m)
            break;
        m->seq = (uint64_t)pg_int(r, i, 0);
        flat_offline_stamp(m, pg_int(r, i, 1));
        m->stanza = pg_flat_col(&f, r, i, 2, false, &m->len);
    }
    return flat_offline_finish(&f, out);
}

void pg_req_result(struct pg_flight *fl, size_t k, const PGresult *r)
{
    struct store_req *req = fl->req;
    int rows = pg_lib.PQntuples(r), rc = 0;
    switch (req->op) {
    case STORE_OP_ACCOUNT_CREATE:
        break;
    case STORE_OP_CREDS_SET:
    case STORE_OP_ACCOUNT_DELETE:
        rc = changed(r) ? 0 : -ENOENT;
        break;
    case STORE_OP_ACCOUNT_IMPORT:
        if (!req->replace || k % 2 == 0)
            fl->acc += changed(r);
        break;
    case STORE_OP_CREDS_GET:
        rc = creds_read(r, &req->creds);
        break;
    case STORE_OP_ACCOUNT_LIST:
        rc = names_read(r, 0, 0, &req->list);
        break;
    case STORE_OP_ACCOUNT_EXISTS:
        rc = rows ? 0 : -ENOENT;
        break;
    case STORE_OP_ROSTER_GET:
        rc = roster_read(r, &req->roster);
        break;
    case STORE_OP_BLOCK_LIST:
        rc = rows ? names_read(r, 0, 0, &req->list) : -ENOENT;
        break;
    case STORE_OP_CLUSTER_BEAT:
        if (k == 0)
            rc = rows && !pg_lib.PQgetisnull(r, 0, 0) ? (req->ver = (uint64_t)pg_int(r, 0, 0), 0)
                                                       : -ENOSPC; /* every slot taken */
        else
            rc = names_read(r, 0, 0, &req->list);
        break;
    case STORE_OP_ROSTER_PUT:
        if (k == 0)
            req->ver = rows ? (uint64_t)pg_int(r, 0, 0) : 0;
        break;
    case STORE_OP_ROSTER_DELETE:
        rc = rows ? 0 : -ENOENT;
        req->ver = rows ? (uint64_t)pg_int(r, 0, 0) : 0;
        break;
    case STORE_OP_ROSTER_COUNT:
    case STORE_OP_OFFLINE_COUNT:
        if (!rows)
            rc = -ENOENT;
        else
            fl->acc = pg_int(r, 0, 0);
        break;
    case STORE_OP_SUBREQ_LIST:
        rc = subreqs_read(r, &req->subreqs);
        break;
    case STORE_OP_OFFLINE_FETCH:
        rc = offline_read(r, &req->offline);
        break;
    case STORE_OP_OFFLINE_PUSH:
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        /* The lock is where a missing account shows. */
        if (k == 0)
            rc = rows ? 0 : -ENOENT;
        else
            fl->acc += req->op == STORE_OP_OFFLINE_PUSH ? rows : changed(r);
        break;
    case STORE_OP_SUBREQ_DELETE:
    case STORE_OP_OFFLINE_DELETE:
    case STORE_OP_BLOCK_CLEAR:
    case STORE_OP_PEP_DELETE:
        /* The delete, then whether there is an account (an answer only when the delete
         * removed nothing). */
        if (k == 0)
            fl->acc = changed(r);
        else
            fl->flag = rows != 0;
        break;
    default:
        if (!pg_pep_result(fl, k, r) && !pg_mam_result(fl, k, r))
            pg_muc_result(fl, k, r);
        break;
    }
    if (rc < 0)
        set_err(fl, k, rc);
}

void pg_req_finish(struct pg_flight *fl)
{
    struct store_req *req = fl->req;
    int64_t n = fl->acc > INT_MAX ? INT_MAX : fl->acc;
    if (req->op == STORE_OP_ACCOUNT_IMPORT)
        req->failed = fl->err ? fl->err_k / (req->replace ? 2 : 1) : req->naccounts;
    if (fl->err) {
        req->res = fl->err;
        return;
    }
    if (pg_mam_finish(fl) || pg_muc_finish(fl))
        return;
    switch (req->op) {
    case STORE_OP_ACCOUNT_IMPORT:
    case STORE_OP_ROSTER_COUNT:
    case STORE_OP_OFFLINE_COUNT:
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        req->res = (int)n;
        break;
    case STORE_OP_OFFLINE_PUSH:
        req->res = n ? 0 : -EDQUOT;
        break;
    case STORE_OP_SUBREQ_DELETE:
    case STORE_OP_OFFLINE_DELETE:
    case STORE_OP_BLOCK_CLEAR:
    case STORE_OP_PEP_DELETE:
        req->res = n ? (int)n : fl->flag ? 0 : -ENOENT;
        break;
    default:
        req->res = 0;
        break;
    }
}
