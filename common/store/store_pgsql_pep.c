/* The PostgreSQL back end's PEP requests (store_pep.c): the same answers as
 * store_sqlite_pep.c's. A put is one implicit transaction (the pipeline's sync): the
 * row deleted and inserted again (a new seq makes it the newest), then the node's
 * items past `keep` trimmed. */
#include "common/store/store_flat.h"
#include "common/store/store_pgsql.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

int pg_pep_send(PGconn *conn, const struct pg_flight *fl)
{
    const struct store_req *req = fl->req;
    int rc = 0;
#define SEND(stmt, ...) (rc = rc ? rc : pg_send(conn, stmt, PVALS(__VA_ARGS__)))
#define USER            P_TEXT(req->user)
    switch (req->op) {
    case STORE_OP_PEP_LOAD:
        SEND(PG_PEP_LOAD, USER);
        break;
    case STORE_OP_PEP_PUT:
        SEND(PG_PEP_DELETE, USER, P_INT2(req->pep_kind), P_TEXT(req->node), P_TEXT(req->id));
        SEND(PG_PEP_INSERT, USER, P_INT2(req->pep_kind), P_TEXT(req->node), P_TEXT(req->id),
             P_INT8(req->stamp_us), P_BYTEA(req->data, req->len));
        if (req->pep_kind == STORE_PEP_ITEM && req->limit)
            SEND(PG_PEP_TRIM, USER, P_TEXT(req->node),
                 P_INT8(req->limit > INT64_MAX ? INT64_MAX : (int64_t)req->limit));
        break;
    case STORE_OP_PEP_DELETE:
        if (req->id)
            SEND(PG_PEP_DELETE, USER, P_INT2(req->pep_kind), P_TEXT(req->node), P_TEXT(req->id));
        else
            SEND(PG_PEP_DELETE_NODE, USER, P_TEXT(req->node));
        SEND(PG_EXISTS, USER);
        break;
    default:
        rc = -ENOSYS;
        break;
    }
#undef SEND
#undef USER
    return rc;
}

static int load_read(const PGresult *r, struct store_pep *out)
{
    struct flat f;
    int rows = pg_lib.PQntuples(r);
    if (rows == 0)
        return -ENOENT;
    flat_init(&f, sizeof(struct store_pep_row));
    for (int i = 0; i < rows && !pg_lib.PQgetisnull(r, i, 0); i++) {
        struct store_pep_row *p = flat_rec(&f);
        if (!p)
            break;
        p->kind = (uint8_t)pg_int(r, i, 0);
        p->node = pg_flat_col(&f, r, i, 1, true, NULL);
        p->id = pg_flat_col(&f, r, i, 2, true, NULL);
        p->data = pg_flat_col(&f, r, i, 3, false, &p->len);
    }
    return flat_pep_finish(&f, out);
}

bool pg_pep_result(struct pg_flight *fl, size_t k, const PGresult *r)
{
    if (fl->req->op != STORE_OP_PEP_LOAD)
        return fl->req->op == STORE_OP_PEP_PUT;
    int rc = load_read(r, &fl->req->pep);
    if (rc < 0 && !fl->err) {
        fl->err = rc;
        fl->err_k = k;
    }
    return true;
}
