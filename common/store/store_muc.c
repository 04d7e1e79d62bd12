/* The chat service's requests (store_muc.h): their argument checks and copies, the
 * affiliations' stored form, and the blocks results come back in. Queues and threads
 * are store.c's, what a request does is the back end's (store_sqlite_muc.c,
 * store_pgsql_muc.c). */
#include "common/store/store_muc.h"
#include "common/store/store_backend.h"
#include "common/store/store_flat.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static bool jid_ok(const char *s)
{
    if (!store_text_len(s, STORE_JID_MAX))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20)
            return false; /* a line ends at '\n' in the stored form */
    return true;
}

/* NULL or 0..STORE_MUC_TEXT_MAX bytes of UTF-8 without NUL. */
static bool text_ok(const char *s)
{
    return !s || !s[0] || store_text_len(s, STORE_MUC_TEXT_MAX) != 0;
}

static bool aff_ok(uint8_t a)
{
    return a == STORE_MUC_OUTCAST || a == STORE_MUC_MEMBER || a == STORE_MUC_ADMIN ||
           a == STORE_MUC_OWNER;
}

static int room_check(const struct store_muc_room *r)
{
    if (!r || !jid_ok(r->jid) || !text_ok(r->name) || !text_ok(r->desc) || !text_ok(r->password) ||
        !text_ok(r->subject) || !text_ok(r->subject_nick) || (r->flags & ~STORE_MUC_FLAGS_ALL) ||
        r->naffs > STORE_MUC_AFFS_MAX || (r->naffs && !r->affs))
        return -EINVAL;
    for (size_t i = 0; i < r->naffs; i++)
        if (!jid_ok(r->affs[i].jid) || !aff_ok(r->affs[i].aff))
            return -EINVAL;
    return 0;
}

/* "" is none, as NULL is. */
static const char *none(const char *s)
{
    return s && s[0] ? s : NULL;
}

static size_t lines_len(const struct store_muc_room *r)
{
    size_t n = 1;
    for (size_t i = 0; i < r->naffs; i++)
        n += 2 + strlen(r->affs[i].jid);
    return n;
}

static char *lines_put(char *p, const struct store_muc_room *r)
{
    for (size_t i = 0; i < r->naffs; i++) {
        size_t n = strlen(r->affs[i].jid);
        *p++ = (char)('0' + r->affs[i].aff);
        memcpy(p, r->affs[i].jid, n);
        p += n;
        *p++ = '\n';
    }
    *p++ = '\0';
    return p;
}

static const char *put_str(char **p, const char *s)
{
    if (!(s = none(s)))
        return NULL;
    size_t n = strlen(s) + 1;
    const char *at = memcpy(*p, s, n);
    *p += n;
    return at;
}

static size_t str_size(const char *s)
{
    return (s = none(s)) ? strlen(s) + 1 : 0;
}

int store_muc_put(struct store_client *cl, const struct store_muc_room *room, store_done_fn done,
                  void *arg)
{
    struct store_req *req;
    int rc = room_check(room);
    if (rc < 0)
        return rc;
    if (!done)
        return -EINVAL;
    size_t extra = strlen(room->jid) + 1 + str_size(room->name) + str_size(room->desc) +
                   str_size(room->password) + str_size(room->subject) +
                   str_size(room->subject_nick) + lines_len(room);
    rc = store_req_new(cl, STORE_OP_MUC_PUT, extra, arg, &req);
    if (rc < 0)
        return rc;
    char *p = req->text;
    req->user = put_str(&p, room->jid);
    req->muc = *room;
    req->muc.affs = NULL;
    req->muc.jid = req->user;
    req->muc.name = put_str(&p, room->name);
    req->muc.desc = put_str(&p, room->desc);
    req->muc.password = put_str(&p, room->password);
    req->muc.subject = put_str(&p, room->subject);
    req->muc.subject_nick = put_str(&p, room->subject_nick);
    req->data = p;
    req->len = (size_t)(lines_put(p, room) - p) - 1;
    req->cb.done = done;
    store_req_queue(cl, req);
    return 0;
}

static int jid_async(struct store_client *cl, enum store_op op, const char *jid, void *arg,
                     struct store_req **out)
{
    if (!jid_ok(jid))
        return -EINVAL;
    int rc = store_req_new(cl, op, strlen(jid) + 1, arg, out);
    if (rc < 0)
        return rc;
    (*out)->user = memcpy((*out)->text, jid, strlen(jid) + 1);
    return 0;
}

int store_muc_load(struct store_client *cl, const char *jid, store_muc_fn done, void *arg)
{
    struct store_req *req;
    if (!done)
        return -EINVAL;
    int rc = jid_async(cl, STORE_OP_MUC_LOAD, jid, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.muc = done;
    store_req_queue(cl, req);
    return 0;
}

int store_muc_delete(struct store_client *cl, const char *jid, store_done_fn done, void *arg)
{
    struct store_req *req;
    if (!done)
        return -EINVAL;
    int rc = jid_async(cl, STORE_OP_MUC_DELETE, jid, arg, &req);
    if (rc < 0)
        return rc;
    req->cb.done = done;
    store_req_queue(cl, req);
    return 0;
}

static int list_check(const char *after, size_t limit)
{
    if (limit < 1 || limit > STORE_MUC_LIST_MAX || (after && after[0] && !jid_ok(after)))
        return -EINVAL;
    return 0;
}

int store_muc_list_public(struct store_client *cl, const char *after, size_t limit,
                          store_muc_list_fn done, void *arg)
{
    struct store_req *req;
    int rc = list_check(after, limit);
    if (rc < 0)
        return rc;
    if (!done)
        return -EINVAL;
    after = after ? after : "";
    rc = store_req_new(cl, STORE_OP_MUC_LIST, strlen(after) + 1, arg, &req);
    if (rc < 0)
        return rc;
    req->after = memcpy(req->text, after, strlen(after) + 1);
    req->limit = limit;
    req->cb.muc_list = done;
    store_req_queue(cl, req);
    return 0;
}

int store_muc_put_sync(struct store *st, const struct store_muc_room *room)
{
    int rc = room_check(room);
    if (rc < 0)
        return rc;
    char *lines = malloc(lines_len(room));
    if (!lines)
        return -ENOMEM;
    struct store_req req = {.op = STORE_OP_MUC_PUT, .user = room->jid, .muc = *room, .data = lines};
    req.len = (size_t)(lines_put(lines, room) - lines) - 1;
    req.muc.affs = NULL;
    req.muc.name = none(room->name);
    req.muc.desc = none(room->desc);
    req.muc.password = none(room->password);
    req.muc.subject = none(room->subject);
    req.muc.subject_nick = none(room->subject_nick);
    rc = store_req_sync(st, &req);
    free(lines);
    return rc;
}

int store_muc_load_sync(struct store *st, const char *jid, struct store_muc_room *out)
{
    struct store_req req = {.op = STORE_OP_MUC_LOAD, .user = jid};
    memset(out, 0, sizeof *out);
    if (!jid_ok(jid))
        return -EINVAL;
    int rc = store_req_sync(st, &req);
    *out = req.muc_out;
    return rc;
}

int store_muc_delete_sync(struct store *st, const char *jid)
{
    struct store_req req = {.op = STORE_OP_MUC_DELETE, .user = jid};
    return jid_ok(jid) ? store_req_sync(st, &req) : -EINVAL;
}

int store_muc_list_public_sync(struct store *st, const char *after, size_t limit,
                               struct store_muc_list *out)
{
    struct store_req req = {.op = STORE_OP_MUC_LIST, .after = after ? after : "", .limit = limit};
    memset(out, 0, sizeof *out);
    int rc = list_check(after, limit);
    if (rc < 0)
        return rc;
    rc = store_req_sync(st, &req);
    *out = req.muc_list;
    return rc;
}

void store_muc_room_free(struct store_muc_room *room)
{
    free((void *)room->affs);
    memset(room, 0, sizeof *room);
}

void store_muc_list_free(struct store_muc_list *list)
{
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

int store_muc_room_build(const char *jid, const char *const text[5], uint32_t maxusers,
                         uint32_t flags, const char *affs, struct store_muc_room *out)
{
    size_t naffs = 0, bytes = strlen(jid) + 1 + (affs ? strlen(affs) + 1 : 0);
    for (int i = 0; i < 5; i++)
        bytes += text[i] ? strlen(text[i]) + 1 : 0;
    for (const char *p = affs; p && *p; p++)
        naffs += *p == '\n';
    /* One block: the array, then every string; at least one byte, so that a room loaded
     * always has a block to free. */
    char *block = malloc(naffs * sizeof(struct store_muc_aff) + bytes + 1);
    if (!block)
        return -ENOMEM;
    struct store_muc_aff *a = (struct store_muc_aff *)(void *)block;
    char *p = block + naffs * sizeof *a;
    const char **dst[5] = {&out->name, &out->desc, &out->password, &out->subject,
                           &out->subject_nick};
    memset(out, 0, sizeof *out);
    out->affs = a;
    out->jid = p;
    p = stpcpy(p, jid) + 1;
    for (int i = 0; i < 5; i++) {
        if (!text[i] || !text[i][0])
            continue;
        *dst[i] = p;
        p = stpcpy(p, text[i]) + 1;
    }
    out->maxusers = maxusers;
    out->flags = flags & STORE_MUC_FLAGS_ALL;
    for (const char *l = affs; l && *l;) {
        const char *nl = strchr(l, '\n');
        uint8_t v = (uint8_t)(l[0] - '0');
        if (!nl || nl - l < 2 || !aff_ok(v)) {
            free(block);
            memset(out, 0, sizeof *out);
            return -EIO;
        }
        size_t n = (size_t)(nl - l - 1);
        a[out->naffs].aff = v;
        a[out->naffs].jid = memcpy(p, l + 1, n);
        p[n] = '\0';
        p += n + 1;
        out->naffs++;
        l = nl + 1;
    }
    return 0;
}

int flat_muc_list_finish(struct flat *f, struct store_muc_list *out)
{
    static const size_t offs[] = {offsetof(struct store_muc_item, jid),
                                  offsetof(struct store_muc_item, name)};
    void *block;
    int rc = flat_finish_rebased(f, &block, &out->n, offs, 2);
    out->items = block;
    return rc;
}
