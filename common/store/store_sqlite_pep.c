/* The SQLite back end's PEP requests (store_pep.c): one table, pep, of a user's rows. */
#include "common/store/store_flat.h"
#include "common/store/store_sqlite.h"

#include <errno.h>
#include <limits.h>

static int op_load(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    flat_init(&f, sizeof(struct store_pep_row));
    int rc = sq_tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = sq_user_exists(be, req->user);
    if (rc < 0)
        goto out;
    rc = sq_prep(be, SQ_PEP_LOAD, &st, VALS(V_TEXT(req->user)));
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_pep_row *r = flat_rec(&f);
        if (!r)
            break;
        r->kind = (uint8_t)sqlite3_column_int(st, 0);
        r->node = sq_flat_col(&f, st, 1, true, NULL);
        r->id = sq_flat_col(&f, st, 2, true, NULL);
        r->data = sq_flat_col(&f, st, 3, false, &r->len);
        rc = SQLITE_OK;
    }
    rc = f.nomem ? -ENOMEM : rc == SQLITE_DONE ? 0 : sq_err(be, rc);
    if (rc == 0)
        rc = flat_pep_finish(&f, &req->pep);
out:
    flat_drop(&f);
    return sq_tx_end(be, rc);
}

static int op_put(struct sqlite_be *be, struct store_req *req)
{
    int rc = sq_tx_begin(be, true);
    if (rc < 0)
        return rc;
    rc = sq_exec(be, SQ_PEP_DELETE,
                 VALS(V_TEXT(req->user), V_INT(req->pep_kind), V_TEXT(req->node), V_TEXT(req->id)));
    if (rc >= 0)
        rc = sq_exec(be, SQ_PEP_INSERT,
                     VALS(V_TEXT(req->user), V_INT(req->pep_kind), V_TEXT(req->node),
                          V_TEXT(req->id), V_INT(req->stamp_us), V_BLOB(req->data, req->len)));
    if (rc >= 0 && req->pep_kind == STORE_PEP_ITEM && req->limit)
        rc = sq_exec(be, SQ_PEP_TRIM,
                     VALS(V_TEXT(req->user), V_TEXT(req->node),
                          V_INT(req->limit > INT64_MAX ? INT64_MAX : (int64_t)req->limit)));
    return sq_tx_end(be, rc < 0 ? rc : 0);
}

static int op_delete(struct sqlite_be *be, struct store_req *req)
{
    int rc = req->id ? sq_exec(be, SQ_PEP_DELETE,
                               VALS(V_TEXT(req->user), V_INT(req->pep_kind), V_TEXT(req->node),
                                    V_TEXT(req->id)))
                     : sq_exec(be, SQ_PEP_DELETE_NODE, VALS(V_TEXT(req->user), V_TEXT(req->node)));
    if (rc == 0)
        return sq_user_exists(be, req->user); /* nothing deleted: -ENOENT without an account */
    return rc;
}

bool sq_pep_run(struct sqlite_be *be, struct store_req *req)
{
    switch (req->op) {
    case STORE_OP_PEP_LOAD:
        req->res = op_load(be, req);
        break;
    case STORE_OP_PEP_PUT:
        req->res = op_put(be, req);
        break;
    case STORE_OP_PEP_DELETE:
        req->res = op_delete(be, req);
        break;
    default:
        return false;
    }
    return true;
}
