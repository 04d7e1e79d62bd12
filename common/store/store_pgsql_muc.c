/* The PostgreSQL back end's requests of the chat service's rooms (store_muc.h): the same
 * answers as store_sqlite_muc.c's, each one statement. */
#include "common/store/store_flat.h"
#include "common/store/store_pgsql.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pg_muc_send(PGconn *conn, const struct pg_flight *fl)
{
    const struct store_req *req = fl->req;
    const struct store_muc_room *m = &req->muc;
    switch (req->op) {
    case STORE_OP_MUC_PUT:
        return pg_send(conn, PG_MUC_PUT,
                       PVALS(P_TEXT(req->user), P_TEXT(m->name), P_TEXT(m->desc),
                             P_TEXT(m->password), P_INT8(m->maxusers), P_INT8(m->flags),
                             P_TEXT(m->subject), P_TEXT(m->subject_nick), P_TEXT(req->data)));
    case STORE_OP_MUC_LOAD:
        return pg_send(conn, PG_MUC_LOAD, PVALS(P_TEXT(req->user)));
    case STORE_OP_MUC_DELETE:
        return pg_send(conn, PG_MUC_DELETE, PVALS(P_TEXT(req->user)));
    case STORE_OP_MUC_LIST:
        return pg_send(conn, PG_MUC_LIST, PVALS(P_TEXT(req->after), P_INT8(req->limit)));
    default:
        return -ENOSYS;
    }
}

/* A text column (libpq ends every value with a NUL, binary ones too); NULL for NULL. */
static const char *col_text(const PGresult *r, int col)
{
    return pg_lib.PQgetisnull(r, 0, col) ? NULL : pg_lib.PQgetvalue(r, 0, col);
}

static int load_read(const PGresult *r, struct store_req *req)
{
    if (pg_lib.PQntuples(r) == 0)
        return -ENOENT;
    const char *text[5];
    for (int i = 0; i < 5; i++)
        text[i] = col_text(r, i);
    return store_muc_room_build(req->user, text, (uint32_t)pg_int(r, 0, 5),
                                (uint32_t)pg_int(r, 0, 6), col_text(r, 7), &req->muc_out);
}

static int list_read(const PGresult *r, struct store_muc_list *out)
{
    struct flat f;
    int rows = pg_lib.PQntuples(r);
    flat_init(&f, sizeof(struct store_muc_item));
    for (int i = 0; i < rows; i++) {
        struct store_muc_item *it = flat_rec(&f);
        if (!it)
            break;
        it->jid = pg_flat_col(&f, r, i, 0, true, NULL);
        it->name = pg_flat_col(&f, r, i, 1, true, NULL);
    }
    return flat_muc_list_finish(&f, out);
}

bool pg_muc_result(struct pg_flight *fl, size_t k, const PGresult *r)
{
    struct store_req *req = fl->req;
    int rc = 0;
    switch (req->op) {
    case STORE_OP_MUC_PUT:
        break;
    case STORE_OP_MUC_DELETE:
        fl->acc += strtol(pg_lib.PQcmdTuples((PGresult *)r), NULL, 10);
        break;
    case STORE_OP_MUC_LOAD:
        rc = load_read(r, req);
        break;
    case STORE_OP_MUC_LIST:
        rc = list_read(r, &req->muc_list);
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

bool pg_muc_finish(struct pg_flight *fl)
{
    struct store_req *req = fl->req;
    switch (req->op) {
    case STORE_OP_MUC_DELETE:
        req->res = (int)fl->acc;
        return true;
    case STORE_OP_MUC_PUT:
    case STORE_OP_MUC_LOAD:
    case STORE_OP_MUC_LIST:
        req->res = 0;
        return true;
    default:
        return false;
    }
}
