/*
 * The SQLite back end's archive requests (store_mam.h), under store_sqlite.c's rules
 * (store_sqlite.h): an append of many rows is one IMMEDIATE transaction, a query one
 * statement (one snapshot).
 */
#include "common/store/store_flat.h"
#include "common/store/store_mam_sql.h"
#include "common/store/store_sqlite.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int op_append(struct sqlite_be *be, struct store_req *req)
{
    int rc = sq_tx_begin(be, true), n = 0;
    char bare[STORE_JID_MAX + 1];
    for (size_t i = 0; rc >= 0 && i < req->mam_nrows; i++) {
        const struct store_mam_row *w = &req->mam_rows[i];
        memcpy(bare, w->with, w->with_bare_len);
        bare[w->with_bare_len] = '\0';
        rc = sq_exec(be, SQ_MAM_APPEND,
                     VALS(V_TEXT(w->owner), V_INT((sqlite3_int64)w->id), V_TEXT(bare),
                          V_TEXT(w->with), V_BLOB(w->stanza, w->len)));
        n += rc > 0;
    }
    return sq_tx_end(be, rc < 0 ? rc : n);
}

/* The bare JID a query's `with` matches, and the full one when it has a resource. */
static void with_split(const char *with, char *bare, size_t cap, const char **b,
                       const char **f)
{
    *b = *f = NULL;
    if (!with)
        return;
    const char *slash = strchr(with, '/');
    if (!slash) {
        *b = with;
        return;
    }
    size_t n = (size_t)(slash - with);
    n = n < cap ? n : cap - 1;
    memcpy(bare, with, n);
    bare[n] = '\0';
    *b = bare;
    *f = with;
}

static sqlite3_int64 id_or(uint64_t v, sqlite3_int64 none)
{
    return v ? (sqlite3_int64)v : none;
}

static int op_query(struct sqlite_be *be, struct store_req *req)
{
    const struct store_mam_query *q = &req->mam_query;
    char bare[STORE_JID_MAX + 1];
    const char *b, *f;
    sqlite3_stmt *st;
    with_split(q->with, bare, sizeof bare, &b, &f);
    int rc = sq_prep(be, q->last ? SQ_MAM_QUERY_LAST : SQ_MAM_QUERY, &st,
                     VALS(V_TEXT(q->owner), V_TEXT(b), V_TEXT(f), V_INT(id_or(q->start, 0)),
                          V_INT(id_or(q->end, INT64_MAX)), V_INT(id_or(q->after, 0)),
                          V_INT(id_or(q->before, INT64_MAX)), V_INT((sqlite3_int64)q->max + 1)));
    if (rc != SQLITE_OK)
        return sq_err(be, rc);
    struct flat fl;
    struct store_mam_page *pg = &req->mam_page;
    flat_init(&fl, sizeof(struct store_mam_msg));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 0) == 0) {
            pg->count = (size_t)sqlite3_column_int64(st, 1);
            pg->index = (size_t)sqlite3_column_int64(st, 2);
            continue;
        }
        struct store_mam_msg *m = flat_rec(&fl);
        if (!m)
            break;
        m->id = (uint64_t)sqlite3_column_int64(st, 1);
        const void *p = sqlite3_column_blob(st, 3);
        m->len = (size_t)sqlite3_column_bytes(st, 3);
        m->stanza = (const char *)(uintptr_t)flat_put(&fl, p, m->len, 1, false);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        flat_drop(&fl);
        return sq_err(be, rc);
    }
    return flat_mam_finish(&fl, q->max, q->last, pg);
}

static int op_prefs_get(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, SQ_MAM_PREFS_GET, &st, VALS(V_TEXT(req->user)));
    rc = sq_step_row(be, st, rc);
    if (rc == -ENOENT)
        return 0; /* none set */
    if (rc < 0)
        return rc;
    const char *lists = (const char *)sqlite3_column_text(st, 1);
    if (!lists)
        return -ENOMEM;
    return flat_mam_prefs(lists, (uint8_t)sqlite3_column_int(st, 0), &req->mam_prefs_out);
}

static int op_prefs_set(struct sqlite_be *be, struct store_req *req)
{
    char *lists = flat_mam_lists(&req->mam_prefs);
    if (!lists)
        return -ENOMEM;
    int rc = sq_exec(be, SQ_MAM_PREFS_SET,
                     VALS(V_TEXT(req->user), V_INT(req->mam_prefs.dflt), V_TEXT(lists)));
    free(lists);
    return rc < 0 ? rc : 0;
}

static int op_last(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, SQ_MAM_LAST, &st, NULL, 0);
    rc = sq_step_row(be, st, rc);
    if (rc == 0)
        req->seq = (uint64_t)sqlite3_column_int64(st, 0);
    return rc;
}

bool sq_mam_run(struct sqlite_be *be, struct store_req *req)
{
    switch (req->op) {
    case STORE_OP_MAM_APPEND:
        req->res = op_append(be, req);
        break;
    case STORE_OP_MAM_QUERY:
        req->res = op_query(be, req);
        break;
    case STORE_OP_MAM_PREFS_GET:
        req->res = op_prefs_get(be, req);
        break;
    case STORE_OP_MAM_PREFS_SET:
        req->res = op_prefs_set(be, req);
        break;
    case STORE_OP_MAM_EXPIRE: {
        int n = sq_exec(be, SQ_MAM_EXPIRE,
                        VALS(V_INT((sqlite3_int64)req->seq), V_INT((sqlite3_int64)req->limit)));
        req->res = n;
        break;
    }
    case STORE_OP_MAM_LAST:
        req->res = op_last(be, req);
        break;
    default:
        return false;
    }
    return true;
}
