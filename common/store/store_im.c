/* The instant-messaging requests (rosters, subscription requests, offline messages,
 * blocklists): their argument checks and copies. Queues and threads are store.c's,
 * what a request does is the back end's (store_backend.h). */
#include "common/store/store.h"
#include "common/store/store_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- checks ------------------------------------------------------------------------------ */

/* Checked here, not in a back end, so that every back end accepts exactly the same. */

static bool jid_ok(const char *jid)
{
    return store_text_len(jid, STORE_JID_MAX) != 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool item_ok(const struct store_roster_item *it)
{
    /* On the stack: at most 8 KiB, and the check needs no allocation that can fail. */
    const char *sorted[STORE_GROUPS_MAX];
    if (!jid_ok(it->jid) || it->sub > STORE_SUB_BOTH)
        return false;
    if (it->name && it->name[0] && !store_text_len(it->name, STORE_TEXT_MAX))
        return false;
    if (it->ngroups > STORE_GROUPS_MAX || (it->ngroups && !it->groups))
        return false;
    for (size_t i = 0; i < it->ngroups; i++) {
        if (!store_text_len(it->groups[i], STORE_TEXT_MAX))
            return false;
        sorted[i] = it->groups[i];
    }
    /* A group named twice would be a constraint error halfway through the back end's
     * transaction; sorting finds it in n log n where pairs would cost n². */
    qsort(sorted, it->ngroups, sizeof sorted[0], cmp_str);
    for (size_t i = 1; i < it->ngroups; i++)
        if (!strcmp(sorted[i - 1], sorted[i]))
            return false;
    return true;
}

static bool jids_ok(const char *const *jids, size_t n)
{
    if (n < 1 || n > STORE_JIDS_MAX || !jids)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!jid_ok(jids[i]))
            return false;
    return true;
}

static bool stanza_ok(const char *data, size_t len)
{
    return data && len >= 1 && len <= STORE_STANZA_MAX;
}

static int im_check(const struct store_req *r)
{
    if (!store_text_len(r->user, STORE_USER_MAX))
        return -EINVAL;
    switch (r->op) {
    case STORE_OP_ROSTER_PUT:
        return item_ok(&r->item) ? 0 : -EINVAL;
    case STORE_OP_ROSTER_DELETE:
    case STORE_OP_SUBREQ_DELETE:
        return jid_ok(r->jid) ? 0 : -EINVAL;
    case STORE_OP_SUBREQ_PUT:
        return jid_ok(r->jid) && stanza_ok(r->data, r->len) ? 0 : -EINVAL;
    case STORE_OP_OFFLINE_PUSH:
        return jid_ok(r->jid) && stanza_ok(r->data, r->len) ? 0 : -EINVAL;
    case STORE_OP_OFFLINE_FETCH:
        return r->limit >= 1 && r->limit <= STORE_LIST_MAX ? 0 : -EINVAL;
    case STORE_OP_BLOCK_ADD:
    case STORE_OP_BLOCK_REMOVE:
        return jids_ok(r->jids, r->njids) ? 0 : -EINVAL;
    case STORE_OP_ACCOUNT_EXISTS:
    case STORE_OP_ROSTER_GET:
    case STORE_OP_ROSTER_COUNT:
    case STORE_OP_SUBREQ_LIST:
    case STORE_OP_OFFLINE_DELETE:
    case STORE_OP_OFFLINE_COUNT:
    case STORE_OP_BLOCK_CLEAR:
    case STORE_OP_BLOCK_LIST:
        return 0;
    default:
        return -EINVAL;
    }
}

/* ---- copies ------------------------------------------------------------------------------ */

/* Bytes an async request needs for its copies of r's in-arguments, laid out by
 * im_copy(): pointer arrays first (text[] is aligned for them), then strings. */
static size_t im_size(const struct store_req *r)
{
    size_t n = strlen(r->user) + 1;
    if (r->jid)
        n += strlen(r->jid) + 1;
    if (r->op == STORE_OP_ROSTER_PUT) {
        const struct store_roster_item *it = &r->item;
        n += it->ngroups * sizeof(char *) + strlen(it->jid) + 1;
        if (it->name)
            n += strlen(it->name) + 1;
        for (size_t i = 0; i < it->ngroups; i++)
            n += strlen(it->groups[i]) + 1;
    }
    if (r->jids) {
        n += r->njids * sizeof(char *);
        for (size_t i = 0; i < r->njids; i++)
            n += strlen(r->jids[i]) + 1;
    }
    return n + (r->data ? r->len : 0);
}

static const char *put_str(char **p, const char *s)
{
    size_t n = strlen(s) + 1;
    const char *at = memcpy(*p, s, n);
    *p += n;
    return at;
}

/* Points dst's in-arguments at copies of src's in dst->text. */
static void im_copy(struct store_req *dst, const struct store_req *src)
{
    char *p = dst->text;
    const char **groups = NULL, **jids = NULL;
    /* The arrays, uninitialised yet, first. At most one of the two is there. */
    if (src->op == STORE_OP_ROSTER_PUT && src->item.ngroups) {
        groups = (const char **)(void *)p;
        p += src->item.ngroups * sizeof(char *);
    }
    if (src->jids) {
        jids = (const char **)(void *)p;
        p += src->njids * sizeof(char *);
    }
    dst->user = put_str(&p, src->user);
    if (src->jid)
        dst->jid = put_str(&p, src->jid);
    if (src->op == STORE_OP_ROSTER_PUT) {
        dst->item = src->item;
        dst->item.jid = put_str(&p, src->item.jid);
        if (src->item.name)
            dst->item.name = put_str(&p, src->item.name);
        for (size_t i = 0; i < src->item.ngroups; i++)
            groups[i] = put_str(&p, src->item.groups[i]);
        dst->item.groups = groups;
    }
    if (src->jids) {
        for (size_t i = 0; i < src->njids; i++)
            jids[i] = put_str(&p, src->jids[i]);
        dst->jids = jids;
        dst->njids = src->njids;
    }
    if (src->data) {
        dst->data = memcpy(p, src->data, src->len);
        dst->len = src->len;
    }
    dst->limit = src->limit;
    dst->quota = src->quota;
    dst->seq = src->seq;
    dst->stamp_us = src->stamp_us;
    dst->cb = src->cb;
}

/* ---- submission -------------------------------------------------------------------------- */

/* Checks, copies and queues the request `in` describes (built on the caller's stack,
 * pointing at the caller's arguments). */
static int im_async(struct store_client *cl, const struct store_req *in, bool has_cb)
{
    struct store_req *req;
    int rc = im_check(in);
    if (rc < 0)
        return rc;
    if (!has_cb)
        return -EINVAL;
    rc = store_req_new(cl, in->op, im_size(in), in->arg, &req);
    if (rc < 0)
        return rc;
    im_copy(req, in);
    store_req_queue(cl, req);
    return 0;
}

static int im_sync(struct store *st, struct store_req *req)
{
    int rc = im_check(req);
    return rc < 0 ? rc : store_req_sync(st, req);
}

/* The time a message is accepted, taken when it is submitted rather than when the
 * worker gets to it: that is when the server received it, whatever the queue's length. */
static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- asynchronous ------------------------------------------------------------------------ */

int store_account_exists(struct store_client *cl, const char *user, store_done_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_ACCOUNT_EXISTS, .user = user, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_roster_get(struct store_client *cl, const char *user, store_roster_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_ROSTER_GET, .user = user, .cb.roster = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_roster_put(struct store_client *cl, const char *user,
                     const struct store_roster_item *item, store_ver_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_ROSTER_PUT, .user = user, .cb.ver = done, .arg = arg};
    if (item)
        in.item = *item; /* else item.jid is NULL, which im_check() refuses */
    return im_async(cl, &in, done != NULL);
}

int store_roster_delete(struct store_client *cl, const char *user, const char *jid,
                        store_ver_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_ROSTER_DELETE, .user = user, .jid = jid, .cb.ver = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_roster_count(struct store_client *cl, const char *user, store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_ROSTER_COUNT, .user = user, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_subreq_put(struct store_client *cl, const char *user, const char *jid, const char *stanza,
                     size_t len, store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_SUBREQ_PUT,
                           .user = user,
                           .jid = jid,
                           .data = stanza,
                           .len = len,
                           .cb.done = done,
                           .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_subreq_delete(struct store_client *cl, const char *user, const char *jid,
                        store_done_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_SUBREQ_DELETE, .user = user, .jid = jid, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_subreq_list(struct store_client *cl, const char *user, store_subreqs_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_SUBREQ_LIST, .user = user, .cb.subreqs = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_offline_push(struct store_client *cl, const char *user, const char *sender,
                       const char *stanza, size_t len, const struct store_offline_quota *q,
                       store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_OFFLINE_PUSH,
                           .user = user,
                           .jid = sender,
                           .data = stanza,
                           .len = len,
                           .quota = *q,
                           .stamp_us = now_us(),
                           .cb.done = done,
                           .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_offline_fetch(struct store_client *cl, const char *user, size_t limit,
                        store_offline_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_OFFLINE_FETCH, .user = user, .limit = limit, .cb.offline = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_offline_delete(struct store_client *cl, const char *user, uint64_t upto,
                         store_done_fn done, void *arg)
{
    struct store_req in = {
        .op = STORE_OP_OFFLINE_DELETE, .user = user, .seq = upto, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_offline_count(struct store_client *cl, const char *user, store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_OFFLINE_COUNT, .user = user, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_block_add(struct store_client *cl, const char *user, const char *const *jids, size_t n,
                    store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_BLOCK_ADD,
                           .user = user,
                           .jids = jids,
                           .njids = n,
                           .cb.done = done,
                           .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_block_remove(struct store_client *cl, const char *user, const char *const *jids, size_t n,
                       store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_BLOCK_REMOVE,
                           .user = user,
                           .jids = jids,
                           .njids = n,
                           .cb.done = done,
                           .arg = arg};
    return im_async(cl, &in, done != NULL);
}

int store_block_clear(struct store_client *cl, const char *user, store_done_fn done, void *arg)
{
    struct store_req in = {.op = STORE_OP_BLOCK_CLEAR, .user = user, .cb.done = done, .arg = arg};
    return im_async(cl, &in, done != NULL);
}

/* ---- synchronous ------------------------------------------------------------------------- */

int store_account_exists_sync(struct store *st, const char *user)
{
    struct store_req req = {.op = STORE_OP_ACCOUNT_EXISTS, .user = user};
    return im_sync(st, &req);
}

int store_roster_get_sync(struct store *st, const char *user, struct store_roster *out)
{
    struct store_req req = {.op = STORE_OP_ROSTER_GET, .user = user};
    int rc = im_sync(st, &req);
    *out = req.roster; /* empty unless rc == 0 */
    return rc;
}

int store_roster_put_sync(struct store *st, const char *user, const struct store_roster_item *item,
                          uint64_t *ver)
{
    struct store_req req = {.op = STORE_OP_ROSTER_PUT, .user = user};
    if (item)
        req.item = *item;
    int rc = im_sync(st, &req);
    if (rc == 0 && ver)
        *ver = req.ver;
    return rc;
}

int store_roster_delete_sync(struct store *st, const char *user, const char *jid, uint64_t *ver)
{
    struct store_req req = {.op = STORE_OP_ROSTER_DELETE, .user = user, .jid = jid};
    int rc = im_sync(st, &req);
    if (rc == 0 && ver)
        *ver = req.ver;
    return rc;
}

int store_roster_count_sync(struct store *st, const char *user)
{
    struct store_req req = {.op = STORE_OP_ROSTER_COUNT, .user = user};
    return im_sync(st, &req);
}

int store_subreq_put_sync(struct store *st, const char *user, const char *jid, const char *stanza,
                          size_t len)
{
    struct store_req req = {
        .op = STORE_OP_SUBREQ_PUT, .user = user, .jid = jid, .data = stanza, .len = len};
    return im_sync(st, &req);
}

int store_subreq_delete_sync(struct store *st, const char *user, const char *jid)
{
    struct store_req req = {.op = STORE_OP_SUBREQ_DELETE, .user = user, .jid = jid};
    return im_sync(st, &req);
}

int store_subreq_list_sync(struct store *st, const char *user, struct store_subreqs *out)
{
    struct store_req req = {.op = STORE_OP_SUBREQ_LIST, .user = user};
    int rc = im_sync(st, &req);
    *out = req.subreqs;
    return rc;
}

int store_offline_push_sync(struct store *st, const char *user, const char *sender,
                            const char *stanza, size_t len, const struct store_offline_quota *q)
{
    struct store_req req = {.op = STORE_OP_OFFLINE_PUSH,
                            .user = user,
                            .jid = sender,
                            .data = stanza,
                            .len = len,
                            .quota = *q,
                            .stamp_us = now_us()};
    return im_sync(st, &req);
}

int store_offline_fetch_sync(struct store *st, const char *user, size_t limit,
                             struct store_offline *out)
{
    struct store_req req = {.op = STORE_OP_OFFLINE_FETCH, .user = user, .limit = limit};
    int rc = im_sync(st, &req);
    *out = req.offline;
    return rc;
}

int store_offline_delete_sync(struct store *st, const char *user, uint64_t upto)
{
    struct store_req req = {.op = STORE_OP_OFFLINE_DELETE, .user = user, .seq = upto};
    return im_sync(st, &req);
}

int store_offline_count_sync(struct store *st, const char *user)
{
    struct store_req req = {.op = STORE_OP_OFFLINE_COUNT, .user = user};
    return im_sync(st, &req);
}

int store_block_add_sync(struct store *st, const char *user, const char *const *jids, size_t n)
{
    struct store_req req = {.op = STORE_OP_BLOCK_ADD, .user = user, .jids = jids, .njids = n};
    return im_sync(st, &req);
}

int store_block_remove_sync(struct store *st, const char *user, const char *const *jids, size_t n)
{
    struct store_req req = {.op = STORE_OP_BLOCK_REMOVE, .user = user, .jids = jids, .njids = n};
    return im_sync(st, &req);
}

int store_block_clear_sync(struct store *st, const char *user)
{
    struct store_req req = {.op = STORE_OP_BLOCK_CLEAR, .user = user};
    return im_sync(st, &req);
}

int store_block_list_sync(struct store *st, const char *user, struct store_list *out)
{
    struct store_req req = {.op = STORE_OP_BLOCK_LIST, .user = user};
    int rc = im_sync(st, &req);
    *out = req.list;
    return rc;
}

/* ---- results ----------------------------------------------------------------------------- */

/* Each result is one block that starts with its array (store_backend.h). */

void store_roster_free(struct store_roster *roster)
{
    free(roster->items);
    store_list_free(&roster->blocked);
    roster->items = NULL;
    roster->n = 0;
    roster->ver = 0;
    roster->offline = false;
}

void store_subreqs_free(struct store_subreqs *reqs)
{
    free(reqs->items);
    reqs->items = NULL;
    reqs->n = 0;
}

void store_offline_free(struct store_offline *msgs)
{
    free(msgs->msgs);
    msgs->msgs = NULL;
    msgs->n = 0;
}

/* ---- the cluster's membership ------------------------------------------------------------ */

int store_cluster_beat_sync(struct store *st, const char *name, const char *addr,
                            unsigned shards, uint64_t incarnation, unsigned fresh_ms,
                            unsigned *slot, struct store_list *live)
{
    struct store_req req = {.op = STORE_OP_CLUSTER_BEAT,
                            .user = name,
                            .jid = addr,
                            .limit = shards,
                            .seq = incarnation,
                            .stamp_us = fresh_ms};
    *live = (struct store_list){0};
    int rc = store_req_sync(st, &req);
    if (rc < 0) {
        store_list_free(&req.list);
        return rc;
    }
    *slot = (unsigned)req.ver;
    *live = req.list;
    return 0;
}
