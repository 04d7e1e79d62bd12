/*
 * The PostgreSQL back end's archive requests (store_mam.h), as store_pgsql.h has a
 * request travel: an append is one statement per row between two syncs, hence one
 * transaction; a query one statement (one snapshot).
 */
#include "common/store/store_flat.h"
#include "common/store/store_pgsql.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int64_t id_or(uint64_t v, int64_t none)
{
    return v ? (int64_t)v : none;
}

int pg_mam_send(PGconn *conn, const struct pg_flight *fl)
{
    const struct store_req *req = fl->req;
    int rc = 0;
    switch (req->op) {
    case STORE_OP_MAM_APPEND:
        for (size_t i = 0; rc == 0 && i < req->mam_nrows; i++) {
            const struct store_mam_row *w = &req->mam_rows[i];
            rc = pg_send(conn, PG_MAM_APPEND,
                         PVALS(P_TEXT(w->owner), P_INT8(w->id), P_BYTEA(w->with, w->with_bare_len),
                               P_TEXT(w->with), P_BYTEA(w->stanza, w->len)));
        }
        return rc;
    case STORE_OP_MAM_QUERY: {
        const struct store_mam_query *q = &req->mam_query;
        const char *slash = q->with ? strchr(q->with, '/') : NULL;
        size_t bl = q->with ? (slash ? (size_t)(slash - q->with) : strlen(q->with)) : 0;
        /* A bare JID's bytes as text (P_BYTEA sends bytes as they are); NULL: any. */
        struct pg_val none = {.kind = PGV_BYTES}, bare = q->with ? P_BYTEA(q->with, bl) : none;
        return pg_send(conn, q->last ? PG_MAM_QUERY_LAST : PG_MAM_QUERY,
                       PVALS(P_TEXT(q->owner), bare, slash ? P_TEXT(q->with) : none,
                             P_INT8(id_or(q->start, 0)), P_INT8(id_or(q->end, INT64_MAX)),
                             P_INT8(id_or(q->after, 0)), P_INT8(id_or(q->before, INT64_MAX)),
                             P_INT8(q->max + 1)));
    }
    case STORE_OP_MAM_PREFS_GET:
        return pg_send(conn, PG_MAM_PREFS_GET, PVALS(P_TEXT(req->user)));
    case STORE_OP_MAM_PREFS_SET: {
        char *lists = flat_mam_lists(&req->mam_prefs);
        if (!lists)
            return -ENOMEM;
        rc = pg_send(conn, PG_MAM_PREFS_SET,
                     PVALS(P_TEXT(req->user), P_INT2(req->mam_prefs.dflt), P_TEXT(lists)));
        free(lists);
        return rc;
    }
    case STORE_OP_MAM_EXPIRE:
        return pg_send(conn, PG_MAM_EXPIRE, PVALS(P_INT8(req->seq), P_INT8(req->limit)));
    case STORE_OP_MAM_LAST:
        return pg_send(conn, PG_MAM_LAST, NULL, 0);
    default:
        return -ENOSYS;
    }
}

static int page_read(const PGresult *r, const struct store_mam_query *q, struct store_mam_page *pg)
{
    struct flat f;
    int rows = pg_lib.PQntuples(r);
    flat_init(&f, sizeof(struct store_mam_msg));
    for (int i = 0; i < rows; i++) {
        if (pg_int(r, i, 0) == 0) {
            pg->count = (size_t)pg_int(r, i, 1);
            pg->index = (size_t)pg_int(r, i, 2);
            continue;
        }
        struct store_mam_msg *m = flat_rec(&f);
        if (!m)
            break;
        m->id = (uint64_t)pg_int(r, i, 1);
        m->len = (size_t)pg_lib.PQgetlength(r, i, 3);
        m->stanza =
            (const char *)(uintptr_t)flat_put(&f, pg_lib.PQgetvalue(r, i, 3), m->len, 1, false);
    }
    return flat_mam_finish(&f, q->max, q->last, pg);
}

static int prefs_read(const PGresult *r, struct store_mam_prefs *out)
{
    if (pg_lib.PQntuples(r) == 0)
        return 0; /* none set */
    /* Binary text is its bytes, without a NUL. */
    char *lists = strndup(pg_lib.PQgetvalue(r, 0, 1), (size_t)pg_lib.PQgetlength(r, 0, 1));
    if (!lists)
        return -ENOMEM;
    int rc = flat_mam_prefs(lists, (uint8_t)pg_int(r, 0, 0), out);
    free(lists);
    return rc;
}

bool pg_mam_result(struct pg_flight *fl, size_t k, const PGresult *r)
{
    struct store_req *req = fl->req;
    int rc = 0;
    (void)k;
    switch (req->op) {
    case STORE_OP_MAM_APPEND:
    case STORE_OP_MAM_EXPIRE:
        fl->acc += strtol(pg_lib.PQcmdTuples((PGresult *)r), NULL, 10);
        break;
    case STORE_OP_MAM_QUERY:
        rc = page_read(r, &req->mam_query, &req->mam_page);
        break;
    case STORE_OP_MAM_PREFS_GET:
        rc = prefs_read(r, &req->mam_prefs_out);
        break;
    case STORE_OP_MAM_PREFS_SET:
        break;
    case STORE_OP_MAM_LAST:
        req->seq = (uint64_t)pg_int(r, 0, 0);
        break;
    default:
        return false;
    }
    if (rc < 0 && !fl->err) {
        fl->err = rc;
        fl->err_k = k;
    }
    return true;
}

bool pg_mam_finish(struct pg_flight *fl)
{
    struct store_req *req = fl->req;
    switch (req->op) {
    case STORE_OP_MAM_APPEND:
    case STORE_OP_MAM_EXPIRE:
        req->res = (int)fl->acc;
        return true;
    case STORE_OP_MAM_QUERY:
    case STORE_OP_MAM_PREFS_GET:
    case STORE_OP_MAM_PREFS_SET:
    case STORE_OP_MAM_LAST:
        req->res = 0;
        return true;
    default:
        return false;
    }
}
