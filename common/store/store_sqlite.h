/*
 * store_sqlite.h: what the SQLite back end's two files share, and nothing else includes:
 * store_sqlite.c (the connection, schema, statements, transactions, accounts and the
 * dispatch) and store_sqlite_im.c (the instant-messaging requests).
 */
#ifndef STARLING_STORE_SQLITE_H
#define STARLING_STORE_SQLITE_H

#include "common/store/store_backend.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    SQ_OFFLINE_QUOTA,
    SQ_OFFLINE_PUSH,
    SQ_OFFLINE_FETCH,
    SQ_OFFLINE_DELETE,
    SQ_BLOCK_ADD,
    SQ_BLOCK_REMOVE,
    SQ_BLOCK_CLEAR,
    SQ_BLOCK_LIST,
    SQ_PEP_LOAD,
    SQ_PEP_DELETE,
    SQ_PEP_DELETE_NODE,
    SQ_PEP_INSERT,
    SQ_PEP_TRIM,
    SQ_MAM_APPEND,
    SQ_MAM_QUERY,
    SQ_MAM_QUERY_LAST,
    SQ_MAM_PREFS_GET,
    SQ_MAM_PREFS_SET,
    SQ_MAM_EXPIRE,
    SQ_MAM_LAST,
    SQ_MUC_PUT,
    SQ_MUC_LOAD,
    SQ_MUC_DELETE,
    SQ_MUC_LIST,
    SQ_COUNT_,
};
_Static_assert(SQ_COUNT_ <= 64, "struct sqlite_be's used mask has 64 bits");

struct sqlite_be {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQ_COUNT_];
    uint64_t used; /* statements the current request has used: 1 << enum sqlite_stmt */
    char err[160]; /* SQLite's message for the current request's failure, for the log */
};

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

/* An SQLite result as -errno, keeping SQLite's message for sqlite_run()'s log line. */
int sq_err(struct sqlite_be *be, int rc);

/* Statement `which`, reset, with ?1..?n bound to v[0..n). Bound SQLITE_STATIC: the
 * values live in the request, and sqlite_run() clears the bindings of every statement
 * the request used before the request goes back. Returns an SQLite code. */
int sq_prep(struct sqlite_be *be, enum sqlite_stmt which, sqlite3_stmt **out,
            const struct sq_val *v, size_t n);

/* Runs a statement that returns no rows: the rows it changed, or -errno. */
int sq_exec(struct sqlite_be *be, enum sqlite_stmt which, const struct sq_val *v, size_t n);

/* Steps a statement prepared with sq_prep() to its one row: 0, -ENOENT without a row. */
int sq_step_row(struct sqlite_be *be, sqlite3_stmt *st, int rc);

/* A read (BEGIN) or write (BEGIN IMMEDIATE) transaction; sq_tx_end() commits when res is
 * not negative, else rolls back, and returns res or the commit's error. */
int sq_tx_begin(struct sqlite_be *be, bool write);
int sq_tx_end(struct sqlite_be *be, int res);

/* 0 when the user has an account, else -ENOENT (or another -errno). */
int sq_user_exists(struct sqlite_be *be, const char *user);

/* Runs a "SELECT (SELECT ...) FROM accounts WHERE user = ?1" statement: -ENOENT when
 * there is no account, else 0 and the value (0 for NULL). */
int sq_user_value(struct sqlite_be *be, enum sqlite_stmt which, const char *user,
                  sqlite3_int64 *val);

/* Appends the first column of every row to l, as malloc'd strings. */
int sq_read_names(struct sqlite_be *be, sqlite3_stmt *st, struct store_list *l);

/* Runs an instant-messaging request (store_sqlite_im.c) into req->res; false when op is
 * not one. */
bool sq_im_run(struct sqlite_be *be, struct store_req *req);
/* The same for a PEP request (store_sqlite_pep.c). */
bool sq_pep_run(struct sqlite_be *be, struct store_req *req);

/* Column col of the current row into f (store_flat.h): its offset, NULL for SQL NULL;
 * text adds a NUL, len (may be NULL) gets the bytes. */
struct flat;
const char *sq_flat_col(struct flat *f, sqlite3_stmt *st, int col, bool text, size_t *len);

/* The same for the archive's requests (store_sqlite_mam.c). */
bool sq_mam_run(struct sqlite_be *be, struct store_req *req);
/* And for the chat service's rooms (store_sqlite_muc.c). */
bool sq_muc_run(struct sqlite_be *be, struct store_req *req);

#endif
