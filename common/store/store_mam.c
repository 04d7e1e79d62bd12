/* The message archive's requests (store_mam.h): their argument checks and copies. What a
 * request does is the back end's (store_sqlite_mam.c, store_pgsql_mam.c). */
#include "common/store/store_mam.h"
#include "common/store/store_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool owner_ok(const char *owner)
{
    return store_text_len(owner, STORE_MAM_OWNER_MAX) != 0;
}

static bool id_ok(uint64_t id)
{
    return id >= 1 && id <= INT64_MAX;
}

static bool row_ok(const struct store_mam_row *r)
{
    size_t wl = store_text_len(r->with, STORE_JID_MAX);
    return owner_ok(r->owner) && id_ok(r->id) && wl && r->with_bare_len >= 1 &&
           r->with_bare_len <= wl && r->stanza && r->len >= 1 && r->len <= STORE_STANZA_MAX;
}

static bool prefs_ok(const struct store_mam_prefs *p)
{
    if (p->dflt > STORE_MAM_ROSTER || p->n > STORE_MAM_PREFS_MAX || (p->n && (!p->jids || !p->always)))
        return false;
    for (size_t i = 0; i < p->n; i++)
        if (!store_text_len(p->jids[i], STORE_JID_MAX) || strchr(p->jids[i], '\n'))
            return false;
    return true;
}

static int mam_check(const struct store_req *r)
{
    switch (r->op) {
    case STORE_OP_MAM_APPEND:
        if (r->mam_nrows < 1 || r->mam_nrows > STORE_MAM_BATCH_MAX || !r->mam_rows)
            return -EINVAL;
        for (size_t i = 0; i < r->mam_nrows; i++)
            if (!row_ok(&r->mam_rows[i]))
                return -EINVAL;
        return 0;
    case STORE_OP_MAM_QUERY: {
        const struct store_mam_query *q = &r->mam_query;
        if (!owner_ok(q->owner) || q->max > STORE_MAM_PAGE_MAX ||
            (q->with && !store_text_len(q->with, STORE_JID_MAX)))
            return -EINVAL;
        uint64_t ids[] = {q->start, q->end, q->after, q->before};
        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
            if (ids[i] > INT64_MAX)
                return -EINVAL;
        return 0;
    }
    case STORE_OP_MAM_PREFS_SET:
        if (!prefs_ok(&r->mam_prefs))
            return -EINVAL;
        /* fall through */
    case STORE_OP_MAM_PREFS_GET:
        return owner_ok(r->user) ? 0 : -EINVAL;
    case STORE_OP_MAM_EXPIRE:
        return id_ok(r->seq) && r->limit >= 1 && r->limit <= STORE_LIST_MAX * 10 ? 0 : -EINVAL;
    case STORE_OP_MAM_LAST:
        return 0;
    default:
        return -EINVAL;
    }
}

/* ---- copies ------------------------------------------------------------------------------ */

/* Bytes of text[] for copies of r's in-arguments: arrays first (text[] is aligned for
 * pointers, and rows, pointer arrays and bool arrays follow in that order), then bytes. */
static size_t mam_size(const struct store_req *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->mam_nrows; i++) {
        const struct store_mam_row *w = &r->mam_rows[i];
        n += sizeof *w + strlen(w->owner) + 1 + strlen(w->with) + 1 + w->len;
    }
    if (r->op == STORE_OP_MAM_PREFS_SET) {
        n += r->mam_prefs.n * (sizeof(char *) + sizeof(bool));
        for (size_t i = 0; i < r->mam_prefs.n; i++)
            n += strlen(r->mam_prefs.jids[i]) + 1;
    }
    if (r->op == STORE_OP_MAM_QUERY) {
        n += strlen(r->mam_query.owner) + 1;
        if (r->mam_query.with)
            n += strlen(r->mam_query.with) + 1;
    }
    return n + (r->user ? strlen(r->user) + 1 : 0);
}

static const char *put(char **p, const void *s, size_t n)
{
    const char *at = memcpy(*p, s, n);
    *p += n;
    return at;
}

static const char *put_str(char **p, const char *s)
{
    return put(p, s, strlen(s) + 1);
}

static void mam_copy(struct store_req *dst, const struct store_req *src)
{
    char *p = dst->text;
    struct store_mam_row *rows = NULL;
    const char **jids = NULL;
    bool *always = NULL;
    size_t np = src->op == STORE_OP_MAM_PREFS_SET ? src->mam_prefs.n : 0;
    if (src->mam_nrows) {
        rows = (struct store_mam_row *)(void *)p;
        p += src->mam_nrows * sizeof *rows;
    }
    if (np) {
        jids = (const char **)(void *)p;
        p += np * sizeof *jids;
        always = (bool *)(void *)p;
        p += np * sizeof *always;
    }
    if (src->user)
        dst->user = put_str(&p, src->user);
    for (size_t i = 0; i < src->mam_nrows; i++) {
        const struct store_mam_row *w = &src->mam_rows[i];
        rows[i] = *w;
        rows[i].owner = put_str(&p, w->owner);
        rows[i].with = put_str(&p, w->with);
        rows[i].stanza = put(&p, w->stanza, w->len);
    }
    dst->mam_rows = rows;
    dst->mam_nrows = src->mam_nrows;
    if (src->op == STORE_OP_MAM_QUERY) {
        dst->mam_query = src->mam_query;
        dst->mam_query.owner = put_str(&p, src->mam_query.owner);
        if (src->mam_query.with)
            dst->mam_query.with = put_str(&p, src->mam_query.with);
    }
    if (src->op == STORE_OP_MAM_PREFS_SET) {
        dst->mam_prefs = src->mam_prefs;
        for (size_t i = 0; i < np; i++) {
            jids[i] = put_str(&p, src->mam_prefs.jids[i]);
            always[i] = src->mam_prefs.always[i];
        }
        dst->mam_prefs.jids = jids;
        dst->mam_prefs.always = always;
    }
    dst->seq = src->seq;
    dst->limit = src->limit;
    dst->cb = src->cb;
}

static int mam_async(struct store_client *cl, const struct store_req *in, bool has_cb)
{
    struct store_req *req;
    int rc = mam_check(in);
    if (rc < 0)
        return rc;
    if (!has_cb)
        return -EINVAL;
    rc = store_req_new(cl, in->op, mam_size(in), in->arg, &req);
    if (rc < 0)
        return rc;
    mam_copy(req, in);
    store_req_queue(cl, req);
    return 0;
}

static int mam_sync(struct store *st, struct store_req *req)
{
    int rc = mam_check(req);
    return rc < 0 ? rc : store_req_sync(st, req);
}

/* ---- asynchronous ------------------------------------------------------------------------ */

int store_mam_append(struct store_client *cl, const struct store_mam_row *rows, size_t n,
                     store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_MAM_APPEND,
                           .mam_rows = rows,
                           .mam_nrows = n,
                           .cb.done = done,
                           .arg = arg};
    return mam_async(cl, &in, done != NULL);
}

int store_mam_query(struct store_client *cl, const struct store_mam_query *q, store_mam_fn done,
                    void *arg)
{
    if (!q)
        return -EINVAL;
    struct store_req in = {
        .op = STORE_OP_MAM_QUERY, .mam_query = *q, .cb.mam = done, .arg = arg};
    return mam_async(cl, &in, done != NULL);
}

int store_mam_prefs_get(struct store_client *cl, const char *owner, store_mam_prefs_fn done,
                        void *arg)
{
    struct store_req in = {
        .op = STORE_OP_MAM_PREFS_GET, .user = owner, .cb.mam_prefs = done, .arg = arg};
    return mam_async(cl, &in, done != NULL);
}

int store_mam_prefs_set(struct store_client *cl, const char *owner,
                        const struct store_mam_prefs *prefs, store_done_fn done, void *arg)
{
    if (!prefs)
        return -EINVAL;
    struct store_req in = {.op = STORE_OP_MAM_PREFS_SET,
                           .user = owner,
                           .mam_prefs = *prefs,
                           .cb.done = done,
                           .arg = arg};
    return mam_async(cl, &in, done != NULL);
}

int store_mam_expire(struct store_client *cl, uint64_t before, size_t limit, store_done_fn done,
                     void *arg)
{
    struct store_req in = {
        .op = STORE_OP_MAM_EXPIRE, .seq = before, .limit = limit, .cb.done = done, .arg = arg};
    return mam_async(cl, &in, done != NULL);
}

/* ---- synchronous ------------------------------------------------------------------------- */

int store_mam_append_sync(struct store *st, const struct store_mam_row *rows, size_t n)
{
    struct store_req req = {.op = STORE_OP_MAM_APPEND, .mam_rows = rows, .mam_nrows = n};
    return mam_sync(st, &req);
}

int store_mam_query_sync(struct store *st, const struct store_mam_query *q,
                         struct store_mam_page *out)
{
    memset(out, 0, sizeof *out);
    if (!q)
        return -EINVAL;
    struct store_req req = {.op = STORE_OP_MAM_QUERY, .mam_query = *q};
    int rc = mam_sync(st, &req);
    *out = req.mam_page; /* empty unless rc == 0 */
    return rc;
}

int store_mam_prefs_get_sync(struct store *st, const char *owner, struct store_mam_prefs *out)
{
    struct store_req req = {.op = STORE_OP_MAM_PREFS_GET, .user = owner};
    int rc = mam_sync(st, &req);
    *out = req.mam_prefs_out;
    return rc;
}

int store_mam_prefs_set_sync(struct store *st, const char *owner,
                             const struct store_mam_prefs *prefs)
{
    if (!prefs)
        return -EINVAL;
    struct store_req req = {.op = STORE_OP_MAM_PREFS_SET, .user = owner, .mam_prefs = *prefs};
    return mam_sync(st, &req);
}

int store_mam_expire_sync(struct store *st, uint64_t before, size_t limit)
{
    struct store_req req = {.op = STORE_OP_MAM_EXPIRE, .seq = before, .limit = limit};
    return mam_sync(st, &req);
}

int store_mam_last_sync(struct store *st, uint64_t *id)
{
    struct store_req req = {.op = STORE_OP_MAM_LAST};
    int rc = mam_sync(st, &req);
    *id = rc == 0 ? req.seq : 0;
    return rc;
}

void store_mam_page_free(struct store_mam_page *page)
{
    free(page->msgs);
    memset(page, 0, sizeof *page);
}

void store_mam_prefs_free(struct store_mam_prefs *prefs)
{
    free((void *)prefs->jids);
    memset(prefs, 0, sizeof *prefs);
}
