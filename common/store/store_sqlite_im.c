/*
 * The SQLite back end's instant-messaging requests: rosters, subscription requests,
 * offline messages, blocklists (store_backend.h's list). sqlite_run() in store_sqlite.c
 * hands them here through sq_im_run(), in the same transaction rules.
 *
 * Results (a roster, a list of subscription requests or of offline messages) are built
 * as one block each, with store_flat.h.
 */
#include "common/store/store_flat.h"
#include "common/store/store_sqlite.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- results ----------------------------------------------------------------------------- */

/* Copies a column, text (with its NUL) or blob; its offset as a pointer, NULL for SQL
 * NULL. */
const char *sq_flat_col(struct flat *f, sqlite3_stmt *st, int col, bool text, size_t *len)
{
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    /* The value before its length: the other order can convert it twice. */
    const void *p =
        text ? (const void *)sqlite3_column_text(st, col) : sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (len)
        *len = n;
    if (!p && n) {
        f->nomem = true; /* SQLite could not convert the value */
        return NULL;
    }
    return (const char *)(uintptr_t)flat_put(f, p, n, 1, text);
}

/* ---- instant messaging ------------------------------------------------------------------- */

/* Reads the rows of SQ_ROSTER_ITEMS into r, one record per item. */
static int roster_read(struct sqlite_be *be, sqlite3_stmt *st, struct flat_roster *r)
{
    struct flat *f = &r->f;
    size_t jid_off = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *jid = (const char *)sqlite3_column_text(st, 0);
        if (!jid) {
            f->nomem = true;
            break;
        }
        if (!f->nrec || strcmp(jid, f->data + jid_off) != 0) {
            flat_roster_item_end(r);
            struct store_roster_item *it = flat_rec(f);
            if (!it)
                break;
            it->jid = sq_flat_col(f, st, 0, true, NULL);
            it->name = sq_flat_col(f, st, 1, true, NULL);
            it->sub = (uint8_t)sqlite3_column_int(st, 2);
            it->ask = sqlite3_column_int(st, 3);
            it->pending_in = sqlite3_column_int(st, 4);
            it->approved = sqlite3_column_int(st, 5);
            it->hidden = sqlite3_column_int(st, 6);
            it->ver = (uint64_t)sqlite3_column_int64(st, 7);
            jid_off = (uintptr_t)it->jid;
            if (f->nomem)
                break;
        }
        if (sqlite3_column_type(st, 8) == SQLITE_NULL)
            continue; /* an item without groups */
        flat_roster_group(r, (uintptr_t)sq_flat_col(f, st, 8, true, NULL));
    }
    if (f->nomem)
        return -ENOMEM;
    return rc == SQLITE_DONE ? 0 : sq_err(be, rc);
}

static int op_roster_get(struct sqlite_be *be, struct store_req *req)
{
    struct store_roster *r = &req->roster;
    sqlite3_int64 ver = 0;
    sqlite3_stmt *st;
    struct flat_roster fr;
    flat_roster_init(&fr);
    int rc = sq_tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = sq_user_value(be, SQ_ROSTER_VER, req->user, &ver);
    if (rc < 0)
        goto out;
    rc = sq_prep(be, SQ_ROSTER_ITEMS, &st, VALS(V_TEXT(req->user)));
    rc = rc == SQLITE_OK ? roster_read(be, st, &fr) : sq_err(be, rc);
    if (rc < 0)
        goto out;
    if ((rc = flat_roster_finish(&fr, r)) < 0)
        goto out;
    r->ver = (uint64_t)ver;
    /* What else a login needs, in the same snapshot. */
    sqlite3_int64 waiting = 0;
    if ((rc = sq_user_value(be, SQ_OFFLINE_COUNT, req->user, &waiting)) < 0)
        goto out;
    r->offline = waiting > 0;
    rc = sq_prep(be, SQ_BLOCK_LIST, &st, VALS(V_TEXT(req->user)));
    rc = rc == SQLITE_OK ? sq_read_names(be, st, &r->blocked) : sq_err(be, rc);
out:
    flat_roster_drop(&fr);
    return sq_tx_end(be, rc);
}

/* Raises the user's roster version by one, in the caller's transaction. Also where a
 * missing account shows, as the foreign key's -ENOENT. */
static int roster_bump(struct sqlite_be *be, const char *user, sqlite3_int64 *ver)
{
    sqlite3_stmt *st;
    int rc = sq_prep(be, SQ_ROSTER_BUMP, &st, VALS(V_TEXT(user)));
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return sq_err(be, rc);
    *ver = sqlite3_column_int64(st, 0);
    return 0;
}

static int op_roster_put(struct sqlite_be *be, struct store_req *req)
{
    const struct store_roster_item *it = &req->item;
    sqlite3_int64 ver = 0;
    int rc = sq_tx_begin(be, true);
    if (rc < 0)
        return rc;
    rc = roster_bump(be, req->user, &ver);
    if (rc == 0)
        rc = sq_exec(be, SQ_ROSTER_UPSERT,
                     VALS(V_TEXT(req->user), V_TEXT(it->jid), V_TEXT(it->name), V_INT(it->sub),
                          V_INT(it->ask), V_INT(it->pending_in), V_INT(it->approved),
                          V_INT(it->hidden), V_INT(ver)));
    if (rc >= 0)
        rc = sq_exec(be, SQ_GROUPS_CLEAR, VALS(V_TEXT(req->user), V_TEXT(it->jid)));
    for (size_t i = 0; rc >= 0 && i < it->ngroups; i++)
        rc = sq_exec(be, SQ_GROUP_ADD,
                     VALS(V_TEXT(req->user), V_TEXT(it->jid), V_TEXT(it->groups[i])));
    rc = sq_tx_end(be, rc < 0 ? rc : 0);
    if (rc == 0)
        req->ver = (uint64_t)ver;
    return rc;
}

static int op_roster_delete(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_int64 ver = 0;
    int rc = sq_tx_begin(be, true);
    if (rc < 0)
        return rc;
    /* No such item (or no account): nothing changed, and the version stays. Its groups
     * go by the cascade. */
    rc = sq_exec(be, SQ_ROSTER_DELETE, VALS(V_TEXT(req->user), V_TEXT(req->jid)));
    if (rc == 0)
        rc = -ENOENT;
    if (rc > 0)
        rc = roster_bump(be, req->user, &ver);
    rc = sq_tx_end(be, rc);
    if (rc == 0)
        req->ver = (uint64_t)ver;
    return rc;
}

/* A count of a user's rows (SQ_ROSTER_COUNT, SQ_OFFLINE_COUNT). */
static int op_count(struct sqlite_be *be, struct store_req *req, enum sqlite_stmt which)
{
    sqlite3_int64 n = 0;
    int rc = sq_user_value(be, which, req->user, &n);
    return rc < 0 ? rc : n > INT_MAX ? INT_MAX : (int)n;
}

/* The result of a delete: the rows it removed; but a delete that removed nothing leaves
 * open whether there is an account, and only a missing account is -ENOENT. No
 * transaction: at worst the account goes in between, and that is then the answer. */
static int deleted(struct sqlite_be *be, const char *user, int changed)
{
    return changed != 0 ? changed : sq_user_exists(be, user);
}

static int op_subreq_put(struct sqlite_be *be, struct store_req *req)
{
    int rc = sq_exec(be, SQ_SUBREQ_PUT,
                     VALS(V_TEXT(req->user), V_TEXT(req->jid), V_BLOB(req->data, req->len)));
    return rc < 0 ? rc : 0;
}

static int op_subreq_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    flat_init(&f, sizeof(struct store_subreq));
    int rc = sq_tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = sq_user_exists(be, req->user);
    if (rc < 0)
        goto out;
    rc = sq_prep(be, SQ_SUBREQ_LIST, &st, VALS(V_TEXT(req->user)));
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_subreq *r = flat_rec(&f);
        if (!r)
            break;
        r->jid = sq_flat_col(&f, st, 0, true, NULL);
        r->stanza = sq_flat_col(&f, st, 1, false, &r->len);
        rc = SQLITE_OK;
    }
    rc = f.nomem ? -ENOMEM : rc == SQLITE_DONE ? 0 : sq_err(be, rc);
    if (rc == 0)
        rc = flat_subreqs_finish(&f, &req->subreqs);
out:
    flat_drop(&f);
    return sq_tx_end(be, rc);
}

static int op_offline_push(struct sqlite_be *be, struct store_req *req)
{
    const struct store_offline_quota *q = &req->quota;
    sqlite3_stmt *st;
    /* The checks and the insert in one write transaction, so that two writers (two
     * processes, or two nodes later) cannot both see room for the last message. */
    int rc = sq_tx_begin(be, true);
    if (rc < 0)
        return rc;
    rc = sq_prep(be, SQ_OFFLINE_QUOTA, &st, VALS(V_TEXT(req->user), V_TEXT(req->jid)));
    rc = sq_step_row(be, st, rc);
    if (rc == 0) {
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
        uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 1) + req->len;
        uint64_t sn = (uint64_t)sqlite3_column_int64(st, 2);
        uint64_t sbytes = (uint64_t)sqlite3_column_int64(st, 3) + req->len;
        if (n >= q->messages || bytes > q->bytes || sn >= q->sender_messages ||
            sbytes > q->sender_bytes)
            rc = -EDQUOT;
    }
    if (rc == 0)
        rc = sq_exec(be, SQ_OFFLINE_PUSH,
                     VALS(V_TEXT(req->user), V_INT(req->stamp_us), V_BLOB(req->data, req->len),
                          V_TEXT(req->jid)));
    return sq_tx_end(be, rc < 0 ? rc : 0);
}

static int op_offline_fetch(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    struct flat f;
    size_t bytes = 0;
    flat_init(&f, sizeof(struct store_offline_msg));
    int rc = sq_tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = sq_user_exists(be, req->user);
    if (rc < 0)
        goto out;
    rc = sq_prep(be, SQ_OFFLINE_FETCH, &st,
                 VALS(V_TEXT(req->user), V_INT((sqlite3_int64)req->limit)));
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        /* The byte budget. The first message goes in whatever its size, or one large
         * message would hold back every later one. */
        if (f.nrec && bytes + len > STORE_FETCH_BYTES) {
            rc = SQLITE_DONE;
            break;
        }
        struct store_offline_msg *m = flat_rec(&f);
        if (!m)
            break;
        m->seq = (uint64_t)sqlite3_column_int64(st, 0);
        flat_offline_stamp(m, sqlite3_column_int64(st, 1));
        m->stanza = sq_flat_col(&f, st, 2, false, &m->len);
        bytes += m->len;
        rc = SQLITE_OK;
    }
    rc = f.nomem ? -ENOMEM : rc == SQLITE_DONE ? 0 : sq_err(be, rc);
    if (rc == 0)
        rc = flat_offline_finish(&f, &req->offline);
out:
    flat_drop(&f);
    return sq_tx_end(be, rc);
}

static int op_offline_delete(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_int64 upto = req->seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)req->seq;
    return deleted(be, req->user,
                   sq_exec(be, SQ_OFFLINE_DELETE, VALS(V_TEXT(req->user), V_INT(upto))));
}

/* Adds (SQ_BLOCK_ADD) or removes (SQ_BLOCK_REMOVE) every JID, in one transaction;
 * returns how many rows changed. */
static int op_block_change(struct sqlite_be *be, struct store_req *req, enum sqlite_stmt which)
{
    int n = 0, rc = sq_tx_begin(be, true);
    if (rc < 0)
        return rc;
    /* An insert finds a missing account by itself (the foreign key); a delete does not. */
    if (which == SQ_BLOCK_REMOVE)
        rc = sq_user_exists(be, req->user);
    for (size_t i = 0; rc >= 0 && i < req->njids; i++) {
        rc = sq_exec(be, which, VALS(V_TEXT(req->user), V_TEXT(req->jids[i])));
        n += rc > 0;
    }
    return sq_tx_end(be, rc < 0 ? rc : n);
}

static int op_block_list(struct sqlite_be *be, struct store_req *req)
{
    sqlite3_stmt *st;
    int rc = sq_tx_begin(be, false);
    if (rc < 0)
        return rc;
    rc = sq_user_exists(be, req->user);
    if (rc == 0) {
        rc = sq_prep(be, SQ_BLOCK_LIST, &st, VALS(V_TEXT(req->user)));
        rc = rc == SQLITE_OK ? sq_read_names(be, st, &req->list) : sq_err(be, rc);
    }
    return sq_tx_end(be, rc);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

bool sq_im_run(struct sqlite_be *be, struct store_req *req)
{
    switch (req->op) {
    case STORE_OP_ROSTER_GET:
        req->res = op_roster_get(be, req);
        break;
    case STORE_OP_ROSTER_PUT:
        req->res = op_roster_put(be, req);
        break;
    case STORE_OP_ROSTER_DELETE:
        req->res = op_roster_delete(be, req);
        break;
    case STORE_OP_ROSTER_COUNT:
        req->res = op_count(be, req, SQ_ROSTER_COUNT);
        break;
    case STORE_OP_SUBREQ_PUT:
        req->res = op_subreq_put(be, req);
        break;
    case STORE_OP_SUBREQ_DELETE:
        req->res =
            deleted(be, req->user,
                    sq_exec(be, SQ_SUBREQ_DELETE, VALS(V_TEXT(req->user), V_TEXT(req->jid))));
        break;
    case STORE_OP_SUBREQ_LIST:
        req->res = op_subreq_list(be, req);
        break;
    case STORE_OP_OFFLINE_PUSH:
        req->res = op_offline_push(be, req);
        break;
    case STORE_OP_OFFLINE_FETCH:
        req->res = op_offline_fetch(be, req);
        break;
    case STORE_OP_OFFLINE_DELETE:
        req->res = op_offline_delete(be, req);
        break;
    case STORE_OP_OFFLINE_COUNT:
        req->res = op_count(be, req, SQ_OFFLINE_COUNT);
        break;
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        req->res = op_block_change(be, req,
                                   req->op == STORE_OP_BLOCK_ADD ? SQ_BLOCK_ADD : SQ_BLOCK_REMOVE);
        break;
    case STORE_OP_BLOCK_CLEAR:
        req->res = deleted(be, req->user, sq_exec(be, SQ_BLOCK_CLEAR, VALS(V_TEXT(req->user))));
        break;
    case STORE_OP_BLOCK_LIST:
        req->res = op_block_list(be, req);
        break;
    default:
        return false;
    }
    return true;
}
