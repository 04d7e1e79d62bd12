/* The SQLite back end's requests of the chat service's rooms (store_muc.h): one table,
 * muc_rooms, a row per room; a put is one statement (the row replaced whole). */
#include "common/store/store_flat.h"
#include "common/store/store_sqlite.h"

#include <errno.h>

static const char *col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

static int op_put(struct sqlite_be *be, struct store_req *req)
{
    const struct store_muc_room *m = &req->muc;
    int rc = sq_exec(be, SQ_MUC_PUT,
                     VALS(V_TEXT(req->user), V_TEXT(m->name), V_TEXT(m->desc), V_TEXT(m->password),
                          V_INT(m->maxusers), V_INT(m->flags), V_TEXT(m->subject),
                          V_TEXT(m->subject_nick), V_TEXT(req->data)));
    return rc < 0 ? rc : 0;
}

static int op_load(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, SQ_MUC_LOAD, &st, VALS(V_TEXT(req->user)));
    rc = sq_step_row(be, st, rc);
    if (rc < 0)
        return rc;
    const char *text[5];
    for (int i = 0; i < 5; i++)
        text[i] = col_text(st, i);
    return store_muc_room_build(req->user, text, (uint32_t)sqlite3_column_int64(st, 5),
                                (uint32_t)sqlite3_column_int64(st, 6), col_text(st, 7),
                                &req->muc_out);
}

static int op_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    int rc =
        sq_prep(be, SQ_MUC_LIST, &st, VALS(V_TEXT(req->after), V_INT((sqlite3_int64)req->limit)));
    if (rc != SQLITE_OK)
        return sq_err(be, rc);
    flat_init(&f, sizeof(struct store_muc_item));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_muc_item *it = flat_rec(&f);
        if (!it)
            break;
        it->jid = sq_flat_col(&f, st, 0, true, NULL);
        it->name = sq_flat_col(&f, st, 1, true, NULL);
    }
    if (f.nomem || (rc != SQLITE_ROW && rc != SQLITE_DONE)) {
        flat_drop(&f);
        return f.nomem ? -ENOMEM : sq_err(be, rc);
    }
    return flat_muc_list_finish(&f, &req->muc_list);
}

bool sq_muc_run(struct sqlite_be *be, struct store_req *req)
{
    switch (req->op) {
    case STORE_OP_MUC_PUT:
        req->res = op_put(be, req);
        break;
    case STORE_OP_MUC_LOAD:
        req->res = op_load(be, req);
        break;
    case STORE_OP_MUC_DELETE:
        req->res = sq_exec(be, SQ_MUC_DELETE, VALS(V_TEXT(req->user)));
        break;
    case STORE_OP_MUC_LIST:
        req->res = op_list(be, req);
        break;
    default:
        return false;
    }
    return true;
}
