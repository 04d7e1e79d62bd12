/*
 * store_pgsql.h: what the PostgreSQL back end's two files share, and nothing else
 * includes: store_pgsql.c (loading libpq, the connection, the schema, the pipeline the
 * worker drives, errors) and store_pgsql_req.c (each request as statements, and its
 * results).
 *
 * libpq is loaded at run time, by the first store_open() of a PostgreSQL store, with
 * dlopen(RTLD_NOW | RTLD_LOCAL), never linked: Debian's libpq brings OpenSSL 3,
 * Kerberos, LDAP and GnuTLS, which a node on SQLite would map and pay for at rest, and
 * which must stay out of the global scope where programs find BoringSSL. That does
 * not keep libpq's own lookups from finding BoringSSL first, so there is still no TLS
 * to the database (store_pgsql.c says why, and why RTLD_DEEPBIND does not save it).
 *
 * Every libpq function the back end calls is in PG_PQ_FUNCS and called through the
 * table pg_lib (pg_lib.PQexec(...)), each pointer typed after libpq-fe.h's prototype,
 * so the compiler checks the calls as it would direct ones. A function to add goes in
 * the list; one missing from the library fails store_open() with a line naming it.
 *
 * A request is a few prepared statements and a sync point: pg_req_send() sends them
 * (pg_send() each), store_pgsql.c adds the sync, and what lies between two syncs is one
 * implicit transaction: all of a request or none of it. Its statements' results come
 * back in order, each handed to pg_req_result() with its index; an error stops the
 * rest (the server skips to the sync), and pg_req_finish() turns what was gathered into
 * req->res. Since nothing may depend on a result the client has not read yet, a
 * request whose second statement needs the first's result does it in SQL (a
 * subquery, a CTE), and one that must see a consistent snapshot is one statement.
 */
#ifndef STARLING_STORE_PGSQL_H
#define STARLING_STORE_PGSQL_H

#include "common/store/store_backend.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* clang-format off */
#define PG_PQ_FUNCS(X)                                                                             \
    X(PQclear) X(PQcmdTuples) X(PQconnectPoll) X(PQconnectStartParams) X(PQconnectdbParams)        \
    X(PQconninfoFree) X(PQconninfoParse) X(PQconsumeInput) X(PQdb) X(PQenterPipelineMode)          \
    X(PQerrorMessage) X(PQexec) X(PQfinish) X(PQflush) X(PQfreemem) X(PQgetResult) X(PQgetisnull)  \
    X(PQgetlength) X(PQgetvalue) X(PQhost) X(PQisBusy) X(PQntuples) X(PQparameterStatus)           \
    X(PQpipelineSync) X(PQprepare) X(PQresultErrorField) X(PQresultErrorMessage)                   \
    X(PQresultStatus) X(PQsendPrepare) X(PQsendQueryPrepared) X(PQsetNoticeProcessor)              \
    X(PQsetnonblocking) X(PQsocket) X(PQstatus)
/* clang-format on */

/* libpq's functions, filled by pg_open() before any is called, then only read. */
struct pg_lib {
#define PG_PQ_FIELD(f) __typeof__(&f) f;
    PG_PQ_FUNCS(PG_PQ_FIELD)
#undef PG_PQ_FIELD
};
extern struct pg_lib pg_lib;

enum pg_stmt {
    PG_CREATE,
    PG_CREATE_IGNORE,
    PG_DELETE,
    PG_CREDS_GET,
    PG_CREDS_SET,
    PG_LIST,
    PG_EXISTS,
    PG_LOCK_USER,
    PG_ROSTER_GET,
    PG_ROSTER_BUMP,
    PG_ROSTER_UPSERT,
    PG_ROSTER_DELETE,
    PG_ROSTER_COUNT,
    PG_GROUPS_CLEAR,
    PG_GROUP_ADD,
    PG_SUBREQ_PUT,
    PG_SUBREQ_DELETE,
    PG_SUBREQ_LIST,
    PG_OFFLINE_COUNT,
    PG_OFFLINE_PUSH,
    PG_OFFLINE_FETCH,
    PG_OFFLINE_DELETE,
    PG_BLOCK_ADD,
    PG_BLOCK_REMOVE,
    PG_BLOCK_CLEAR,
    PG_BLOCK_LIST,
    PG_CLUSTER_BEAT,
    PG_CLUSTER_LIVE,
    PG_PEP_LOAD,
    PG_PEP_DELETE,
    PG_PEP_DELETE_NODE,
    PG_PEP_INSERT,
    PG_PEP_TRIM,
    PG_MAM_APPEND,
    PG_MAM_QUERY,
    PG_MAM_QUERY_LAST,
    PG_MAM_PREFS_GET,
    PG_MAM_PREFS_SET,
    PG_MAM_EXPIRE,
    PG_MAM_LAST,
    PG_MUC_PUT,
    PG_MUC_LOAD,
    PG_MUC_DELETE,
    PG_MUC_LIST,
    PG_STMT_COUNT_,
};

/* The SQL of each, prepared on every connection as "s<index>". */
extern const char *const pg_sql[PG_STMT_COUNT_];

/* A request on its way: sent (its statements and sync are in the pipeline) or waiting
 * for a connection. */
struct pg_flight {
    struct store_req *req;
    int64_t deadline_ms; /* waiting: when it gives up (CLOCK_MONOTONIC) */
    size_t k;            /* results read */
    int err;             /* the first failure, or an answer such as -ENOENT; 0: none */
    size_t err_k;        /* the statement that failed first */
    int64_t acc;         /* what pg_req_result() gathers: a count */
    bool flag;           /* and one fact (the account exists) */
};

/*
 * A parameter, in PostgreSQL's binary format: text and bytea as their bytes, integers
 * big-endian, booleans one byte. Made with P_TEXT(), P_BYTEA(), P_INT8(), P_INT2(),
 * P_BOOL(); the SQL casts each parameter ($1::text) so the types agree.
 */
struct pg_val {
    enum { PGV_BYTES, PGV_INT8, PGV_INT2, PGV_BOOL } kind;
    const char *p;
    size_t len;
    int64_t i;
};
#define P_TEXT(s)     ((struct pg_val){.kind = PGV_BYTES, .p = (s), .len = (s) ? strlen(s) : 0})
#define P_BYTEA(b, n) ((struct pg_val){.kind = PGV_BYTES, .p = (const char *)(b), .len = (n)})
#define P_INT8(v)     ((struct pg_val){.kind = PGV_INT8, .i = (int64_t)(v)})
#define P_INT2(v)     ((struct pg_val){.kind = PGV_INT2, .i = (int64_t)(v)})
#define P_BOOL(v)     ((struct pg_val){.kind = PGV_BOOL, .i = (v) ? 1 : 0})
#define PVALS(...)                                                                                 \
    (const struct pg_val[]){__VA_ARGS__},                                                          \
        sizeof((const struct pg_val[]){__VA_ARGS__}) / sizeof(struct pg_val)

/* Sends one prepared statement into the pipeline; a P_TEXT(NULL) is SQL NULL. 0, or
 * -EIO when libpq refused (the connection is then unusable). */
int pg_send(PGconn *conn, enum pg_stmt which, const struct pg_val *v, size_t n);

/* Sends the statements of fl->req (not the sync). 0; -EIO when a send failed (the
 * connection is then unusable); -ENOMEM or -ENOSYS when the request failed before all
 * its statements went (what went is ended by the sync, which the caller still sends). */
int pg_req_send(PGconn *conn, const struct pg_flight *fl);

/* The k-th statement's result, when it succeeded (PGRES_COMMAND_OK or TUPLES_OK). */
void pg_req_result(struct pg_flight *fl, size_t k, const PGresult *r);

/* Sets fl->req->res (and its out fields) once every result is in. */
void pg_req_finish(struct pg_flight *fl);

/* The PEP requests (store_pgsql_pep.c): pg_req_send()'s and pg_req_result()'s part for
 * them; -ENOSYS, false: not one. */
int pg_pep_send(PGconn *conn, const struct pg_flight *fl);
bool pg_pep_result(struct pg_flight *fl, size_t k, const PGresult *r);

/* A column's bytes into f (store_flat.h), with a NUL when text: its offset as a pointer,
 * NULL for SQL NULL. */
struct flat;
const char *pg_flat_col(struct flat *f, const PGresult *r, int row, int col, bool text,
                        size_t *len);
/* The same three for the archive's requests (store_pgsql_mam.c): pg_mam_send() returns
 * -ENOSYS for a request that is not one, pg_mam_result() and pg_mam_finish() false. */
int pg_mam_send(PGconn *conn, const struct pg_flight *fl);
bool pg_mam_result(struct pg_flight *fl, size_t k, const PGresult *r);
bool pg_mam_finish(struct pg_flight *fl);

/* And for the chat service's rooms (store_pgsql_muc.c). */
int pg_muc_send(PGconn *conn, const struct pg_flight *fl);
bool pg_muc_result(struct pg_flight *fl, size_t k, const PGresult *r);
bool pg_muc_finish(struct pg_flight *fl);

/* A column in binary format: an integer of any width (bool, int2, int4, int8); 0 for
 * NULL. */
int64_t pg_int(const PGresult *r, int row, int col);

#endif
