/* The requests of a user's own data (PEP nodes and items, private XML, the vCard):
 * their argument checks and copies. Queues and threads are store.c's, what a request
 * does is the back end's (store_sqlite_pep.c, store_pgsql_pep.c). */
#include "common/store/store.h"
#include "common/store/store_backend.h"
#include "common/store/store_flat.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 0..STORE_PEP_NAME_MAX bytes of UTF-8 without NUL. */
static bool name_ok(const char *s)
{
    return s && (!s[0] || store_text_len(s, STORE_PEP_NAME_MAX) != 0);
}

static int pep_check(const struct store_req *r)
{
    if (!store_text_len(r->user, STORE_USER_MAX))
        return -EINVAL;
    if (r->op == STORE_OP_PEP_LOAD)
        return 0;
    if (r->pep_kind > STORE_PEP_VCARD || !name_ok(r->node))
        return -EINVAL;
    if (r->op == STORE_OP_PEP_DELETE)
        return r->id ? (name_ok(r->id) ? 0 : -EINVAL)
                     : (r->pep_kind == STORE_PEP_CONFIG ? 0 : -EINVAL);
    if (!name_ok(r->id) || !r->data || r->len < 1 || r->len > STORE_STANZA_MAX)
        return -EINVAL;
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *put_str(char **p, const char *s)
{
    size_t n = strlen(s) + 1;
    const char *at = memcpy(*p, s, n);
    *p += n;
    return at;
}

static int pep_async(struct store_client *cl, const struct store_req *in)
{
    struct store_req *req;
    int rc = pep_check(in);
    if (rc < 0)
        return rc;
    if (!in->cb.done)
        return -EINVAL;
    size_t extra = strlen(in->user) + 1 + (in->node ? strlen(in->node) + 1 : 0) +
                   (in->id ? strlen(in->id) + 1 : 0) + (in->data ? in->len : 0);
    rc = store_req_new(cl, in->op, extra, in->arg, &req);
    if (rc < 0)
        return rc;
    char *p = req->text;
    req->user = put_str(&p, in->user);
    if (in->node)
        req->node = put_str(&p, in->node);
    if (in->id)
        req->id = put_str(&p, in->id);
    if (in->data) {
        req->data = memcpy(p, in->data, in->len);
        req->len = in->len;
    }
    req->pep_kind = in->pep_kind;
    req->limit = in->limit;
    req->stamp_us = now_us();
    req->cb = in->cb;
    store_req_queue(cl, req);
    return 0;
}

static int pep_sync(struct store *st, struct store_req *req)
{
    int rc = pep_check(req);
    return rc < 0 ? rc : store_req_sync(st, req);
}

int store_pep_load(struct store_client *cl, const char *user, store_pep_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_PEP_LOAD, .user = user, .cb.pep = done, .arg = arg};
    return pep_async(cl, &in);
}

int store_pep_put(struct store_client *cl, const char *user, enum store_pep_kind kind,
                  const char *node, const char *id, const char *data, size_t len, size_t keep,
                  store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_PEP_PUT,
                           .user = user,
                           .pep_kind = (uint8_t)kind,
                           .node = node,
                           .id = id,
                           .data = data,
                           .len = len,
                           .limit = keep,
                           .cb.done = done,
                           .arg = arg};
    return pep_async(cl, &in);
}

int store_pep_delete(struct store_client *cl, const char *user, enum store_pep_kind kind,
                     const char *node, const char *id, store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_PEP_DELETE,
                           .user = user,
                           .pep_kind = (uint8_t)kind,
                           .node = node,
                           .id = id,
                           .cb.done = done,
                           .arg = arg};
    return pep_async(cl, &in);
}

int store_pep_load_sync(struct store *st, const char *user, struct store_pep *out)
{
    struct store_req req = {.op = STORE_OP_PEP_LOAD, .user = user};
    int rc = pep_sync(st, &req);
    *out = req.pep;
    return rc;
}

int store_pep_put_sync(struct store *st, const char *user, enum store_pep_kind kind,
                       const char *node, const char *id, const char *data, size_t len, size_t keep)
{
    struct store_req req = {.op = STORE_OP_PEP_PUT,
                            .user = user,
                            .pep_kind = (uint8_t)kind,
                            .node = node,
                            .id = id,
                            .data = data,
                            .len = len,
                            .limit = keep,
                            .stamp_us = now_us()};
    return pep_sync(st, &req);
}

int store_pep_delete_sync(struct store *st, const char *user, enum store_pep_kind kind,
                          const char *node, const char *id)
{
    struct store_req req = {
        .op = STORE_OP_PEP_DELETE, .user = user, .pep_kind = (uint8_t)kind, .node = node, .id = id};
    return pep_sync(st, &req);
}

void store_pep_free(struct store_pep *rows)
{
    free(rows->rows);
    rows->rows = NULL;
    rows->n = 0;
}

int flat_pep_finish(struct flat *f, struct store_pep *out)
{
    static const size_t offs[] = {offsetof(struct store_pep_row, node),
                                  offsetof(struct store_pep_row, id),
                                  offsetof(struct store_pep_row, data)};
    void *block;
    int rc = flat_finish_rebased(f, &block, &out->n, offs, 3);
    out->rows = block;
    return rc;
}
