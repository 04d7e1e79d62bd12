/*
 * dialback: the per-stream machine (see dialback.h). Pairs and their states are in the
 * stream's authz; what this file keeps itself is the stream ID and our <db:verify/>
 * requests awaiting answers, which are not pairs of this stream but questions about
 * pairs of another one.
 */
#include "s2s/dialback.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/mem.h>

struct dialback_verify {
    char *mem;                        /* sender, target and id, NUL-terminated, one block */
    const char *sender, *target, *id; /* the pair asked about and the inbound stream's ID */
    uint32_t since;
};

int dialback_init(struct dialback *d, const struct dialback_config *cfg, struct authz *a,
                  const char *id, size_t id_len)
{
    memset(d, 0, sizeof *d);
    if (id_len > DIALBACK_ID_MAX)
        return -EINVAL;
    d->cfg = cfg;
    d->authz = a;
    memcpy(d->id, id, id_len);
    d->id[id_len] = '\0';
    d->id_len = (uint16_t)id_len;
    return 0;
}

static void verify_remove(struct dialback *d, unsigned i)
{
    free(d->verifies[i].mem);
    memmove(&d->verifies[i], &d->verifies[i + 1], (d->nverify - i - 1) * sizeof d->verifies[0]);
    d->nverify--;
}

void dialback_free(struct dialback *d)
{
    while (d->nverify)
        verify_remove(d, d->nverify - 1);
    free(d->verifies);
    free(d->evmem);
    d->verifies = NULL;
    d->evmem = NULL;
    d->verify_cap = 0;
}

/* ---- events -------------------------------------------------------------------------------- */

static enum dialback_ev stream_error(struct dialback_event *ev, const char *condition)
{
    ev->kind = DIALBACK_EV_STREAM_ERROR;
    ev->stream_error = condition;
    return ev->kind;
}

/* Copies the event's strings into d->evmem. The sources may be the previous event's
 * strings (a caller answering a VERIFY at once passes them back), so the old block goes
 * only after the new one is filled. */
static int keep(struct dialback *d, struct dialback_event *ev, const char *sender,
                const char *target, const char *id, const char *key, size_t key_len)
{
    size_t sl = strlen(sender), tl = strlen(target), il = id ? strlen(id) : 0;
    char *m = malloc(sl + tl + il + key_len + 4);
    if (!m)
        return -ENOMEM;
    char *p = m;
    ev->sender = memcpy(p, sender, sl + 1);
    p += sl + 1;
    ev->target = memcpy(p, target, tl + 1);
    p += tl + 1;
    if (id) {
        ev->id = memcpy(p, id, il + 1);
        p += il + 1;
    }
    if (key) {
        ev->key = memcpy(p, key, key_len);
        p[key_len] = '\0';
        ev->key_len = key_len;
    }
    free(d->evmem);
    d->evmem = m;
    return 0;
}

/* Appends e whole or not at all. */
static int put(struct buf *out, const struct dialback_elem *e)
{
    uint32_t mark = out->len;
    int err = dialback_write(out, e);
    if (err)
        out->len = mark;
    return err;
}

static bool streq(const char *a, const char *b)
{
    return strcmp(a, b) == 0;
}

/* Our answer to the peer's <db:result/> for (sender, target). */
static int answer_result(struct buf *out, const char *sender, const char *target,
                         enum dialback_type type, enum dialback_cond cond)
{
    struct dialback_elem a = {
        .kind = DIALBACK_RESULT, .type = type, .cond = cond, .from = target, .to = sender};
    return put(out, &a);
}

/* ---- the peer's requests ------------------------------------------------------------------- */

/* As the authoritative server: is this key ours? Stateless, answered at once. */
static enum dialback_ev verify_request(struct dialback *d, const struct dialback_elem *e,
                                       struct buf *out, struct dialback_event *ev)
{
    /* The request names the pair (e->to, e->from): e->to sent the key to e->from. */
    struct dialback_elem a = {
        .kind = DIALBACK_VERIFY, .from = e->to, .to = e->from, .id = e->id, .type = DIALBACK_VALID};
    char key[DIALBACK_KEY_LEN + 1];
    if (!dialback_local(d->cfg, e->to, strlen(e->to))) {
        a.type = DIALBACK_ERROR;
        a.cond = DIALBACK_ITEM_NOT_FOUND;
    } else if (dialback_key(d->cfg, e->from, strlen(e->from), e->to, strlen(e->to), e->id,
                            strlen(e->id), key) < 0) {
        a.type = DIALBACK_ERROR;
        a.cond = DIALBACK_INTERNAL_SERVER_ERROR;
    } else if (e->key_len != DIALBACK_KEY_LEN || CRYPTO_memcmp(key, e->key, DIALBACK_KEY_LEN)) {
        a.type = DIALBACK_INVALID;
    }
    if (keep(d, ev, e->to, e->from, e->id, NULL, 0) || put(out, &a))
        return stream_error(ev, "internal-server-error");
    ev->kind = DIALBACK_EV_ANSWERED;
    ev->result = a.type;
    ev->cond = a.cond;
    return ev->kind;
}

/* As the receiving server: the peer asks to send from e->from to e->to. */
static enum dialback_ev result_request(struct dialback *d, const struct dialback_elem *e,
                                       uint32_t now, struct buf *out, struct dialback_event *ev)
{
    const char *sender = e->from, *target = e->to;
    size_t sl = strlen(sender), tl = strlen(target);
    enum dialback_cond refuse = DIALBACK_COND_NONE;

    if (dialback_local(d->cfg, sender, sl))
        return stream_error(ev, "invalid-from"); /* someone claims to be us */
    if (keep(d, ev, sender, target, d->id, e->key, e->key_len))
        return stream_error(ev, "internal-server-error");

    const struct authz_pair *p = authz_find(d->authz, AUTHZ_IN, sender, sl, target, tl);
    if (p && !p->pending) {
        /* Already proved on this stream: the same answer again, nothing to check. */
        if (answer_result(out, sender, target, DIALBACK_VALID, DIALBACK_COND_NONE))
            return stream_error(ev, "internal-server-error");
        return ev->kind = DIALBACK_EV_NONE;
    }
    if (p)
        return ev->kind = DIALBACK_EV_NONE; /* pending: the first request's answer serves both */

    if (!dialback_local(d->cfg, target, tl))
        refuse = DIALBACK_ITEM_NOT_FOUND;
    else if (!d->id_len)
        refuse = DIALBACK_NOT_ACCEPTABLE; /* no stream ID, so no key can be checked */
    if (!refuse) {
        int rc = authz_add(d->authz, AUTHZ_IN, sender, sl, target, tl, true, now);
        if (rc == -ENOSPC)
            refuse = DIALBACK_RESOURCE_CONSTRAINT;
        else if (rc < 0)
            return stream_error(ev, "internal-server-error");
    }
    if (refuse) {
        if (answer_result(out, sender, target, DIALBACK_ERROR, refuse))
            return stream_error(ev, "internal-server-error");
        ev->kind = DIALBACK_EV_REFUSED_IN;
        ev->result = DIALBACK_ERROR;
        ev->cond = refuse;
        return ev->kind;
    }
    return ev->kind = DIALBACK_EV_VERIFY;
}

/* ---- answers to our requests --------------------------------------------------------------- */

/* Our <db:result/> for (e->to, e->from) was answered. */
static enum dialback_ev result_answer(struct dialback *d, const struct dialback_elem *e,
                                      struct dialback_event *ev)
{
    const char *sender = e->to, *target = e->from;
    size_t sl = strlen(sender), tl = strlen(target);
    const struct authz_pair *p = authz_find(d->authz, AUTHZ_OUT, sender, sl, target, tl);
    if (!p || !p->pending)
        return stream_error(ev, "not-authorized"); /* unsolicited: XEP-0220 §3.1 */
    if (keep(d, ev, sender, target, NULL, NULL, 0))
        return stream_error(ev, "internal-server-error");
    ev->result = e->type;
    if (e->type == DIALBACK_VALID) {
        authz_settle(d->authz, AUTHZ_OUT, sender, sl, target, tl);
        return ev->kind = DIALBACK_EV_ALLOWED_OUT;
    }
    authz_remove(d->authz, AUTHZ_OUT, sender, sl, target, tl);
    ev->kind = DIALBACK_EV_REFUSED_OUT;
    if (e->type == DIALBACK_INVALID) {
        ev->bounce = DIALBACK_INTERNAL_SERVER_ERROR;
    } else {
        ev->cond = ev->peer_cond = e->cond;
        ev->bounce = DIALBACK_REMOTE_SERVER_TIMEOUT;
    }
    return ev->kind;
}

static int verify_find(const struct dialback *d, const char *sender, const char *target,
                       const char *id)
{
    for (unsigned i = 0; i < d->nverify; i++) {
        const struct dialback_verify *v = &d->verifies[i];
        if (streq(v->sender, sender) && streq(v->target, target) && streq(v->id, id))
            return (int)i;
    }
    return -1;
}

/* Our <db:verify/> about (e->from, e->to, e->id) was answered. */
static enum dialback_ev verify_answer(struct dialback *d, const struct dialback_elem *e,
                                      struct dialback_event *ev)
{
    int i = verify_find(d, e->from, e->to, e->id);
    if (i < 0)
        return stream_error(ev, "not-authorized"); /* unsolicited: XEP-0220 §3.1 */
    if (keep(d, ev, e->from, e->to, e->id, NULL, 0))
        return stream_error(ev, "internal-server-error");
    verify_remove(d, (unsigned)i);
    ev->kind = DIALBACK_EV_VERIFIED;
    ev->result = e->type;
    if (e->type == DIALBACK_ERROR) {
        ev->peer_cond = e->cond;
        ev->cond = DIALBACK_REMOTE_SERVER_NOT_FOUND; /* XEP-0220 §2.4.2: "MUST send" it */
    }
    return ev->kind;
}

enum dialback_ev dialback_recv(struct dialback *d, const struct xml_node *n, struct arena *a,
                               uint32_t now, struct buf *out, struct dialback_event *ev)
{
    struct dialback_elem e;
    memset(ev, 0, sizeof *ev);
    enum dialback_perr perr = dialback_parse(n, a, &e);
    if (perr)
        return stream_error(ev, dialback_perr_condition(perr));
    /* Requests travel the way the stream was opened, answers back; both ways with bidi. */
    bool request = e.type == DIALBACK_REQUEST;
    if (!d->authz->bidi && d->authz->inbound != request)
        return stream_error(ev, "unsupported-stanza-type");
    if (request)
        return e.kind == DIALBACK_VERIFY ? verify_request(d, &e, out, ev)
                                         : result_request(d, &e, now, out, ev);
    return e.kind == DIALBACK_VERIFY ? verify_answer(d, &e, ev) : result_answer(d, &e, ev);
}

/* ---- what the caller starts ---------------------------------------------------------------- */

int dialback_start(struct dialback *d, const char *sender, const char *target, uint32_t now,
                   struct buf *out)
{
    size_t sl = strlen(sender), tl = strlen(target);
    char key[DIALBACK_KEY_LEN + 1];
    if (!d->id_len || !dialback_local(d->cfg, sender, sl))
        return -EINVAL;
    int rc = dialback_key(d->cfg, target, tl, sender, sl, d->id, d->id_len, key);
    if (rc < 0)
        return rc;
    if ((rc = authz_add(d->authz, AUTHZ_OUT, sender, sl, target, tl, true, now)) < 0)
        return rc;
    struct dialback_elem e = {.kind = DIALBACK_RESULT,
                              .type = DIALBACK_REQUEST,
                              .from = sender,
                              .to = target,
                              .key = key,
                              .key_len = DIALBACK_KEY_LEN};
    if ((rc = put(out, &e)) < 0)
        authz_remove(d->authz, AUTHZ_OUT, sender, sl, target, tl);
    return rc;
}

int dialback_verify_send(struct dialback *d, const char *sender, const char *target, const char *id,
                         const char *key, size_t key_len, uint32_t now, struct buf *out)
{
    size_t sl = strlen(sender), tl = strlen(target), il = strlen(id);
    if (d->authz->inbound && !d->authz->bidi)
        return -EPERM;
    if (!sl || !tl || !il || il > DIALBACK_ID_MAX || !key_len || key_len > DIALBACK_KEY_MAX)
        return -EINVAL;
    if (il == d->id_len && memcmp(id, d->id, il) == 0)
        return -EDEADLK;
    if (verify_find(d, sender, target, id) >= 0)
        return -EEXIST;
    if (d->nverify >= d->cfg->max_pending)
        return -ENOSPC;
    if (d->nverify == d->verify_cap) {
        unsigned cap = d->verify_cap ? 2 * d->verify_cap : 4;
        struct dialback_verify *v = realloc(d->verifies, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        d->verifies = v;
        d->verify_cap = cap;
    }
    char *m = malloc(sl + tl + il + 3);
    if (!m)
        return -ENOMEM;
    struct dialback_verify *v = &d->verifies[d->nverify];
    v->mem = m;
    v->sender = memcpy(m, sender, sl + 1);
    v->target = memcpy(m + sl + 1, target, tl + 1);
    v->id = memcpy(m + sl + tl + 2, id, il + 1);
    v->since = now;
    /* The request names the receiving side first: from=target (us), to=sender. */
    struct dialback_elem e = {.kind = DIALBACK_VERIFY,
                              .type = DIALBACK_REQUEST,
                              .from = target,
                              .to = sender,
                              .id = id,
                              .key = key,
                              .key_len = key_len};
    int rc = put(out, &e);
    if (rc < 0) {
        free(m);
        return rc;
    }
    d->nverify++;
    return 0;
}

enum dialback_ev dialback_verified(struct dialback *d, const char *sender, const char *target,
                                   enum dialback_type result, enum dialback_cond cond,
                                   struct buf *out, struct dialback_event *ev)
{
    struct authz *a = d->authz;
    size_t sl = strlen(sender), tl = strlen(target);
    memset(ev, 0, sizeof *ev);
    const struct authz_pair *p = authz_find(a, AUTHZ_IN, sender, sl, target, tl);
    if (!p || !p->pending)
        return DIALBACK_EV_NONE;
    if (keep(d, ev, sender, target, NULL, NULL, 0))
        return stream_error(ev, "internal-server-error");
    sender = ev->sender; /* the pair's own strings go with it below */
    target = ev->target;
    if (result == DIALBACK_VALID) {
        authz_settle(a, AUTHZ_IN, sender, sl, target, tl);
        if (answer_result(out, sender, target, DIALBACK_VALID, DIALBACK_COND_NONE))
            return stream_error(ev, "internal-server-error");
        ev->result = DIALBACK_VALID;
        return ev->kind = DIALBACK_EV_ALLOWED_IN;
    }
    authz_remove(a, AUTHZ_IN, sender, sl, target, tl);
    if (result == DIALBACK_INVALID && authz_valid(a, AUTHZ_IN) + authz_valid(a, AUTHZ_OUT) == 0) {
        /* XEP-0220 §2.2.1: the first pair of a stream is bogus: say so and close. */
        ev->result = DIALBACK_INVALID;
        if (answer_result(out, sender, target, DIALBACK_INVALID, DIALBACK_COND_NONE))
            return stream_error(ev, "internal-server-error");
        return stream_error(ev, "not-authorized");
    }
    /* With other pairs valid, an invalid key costs only its pair: forbidden (§2.2.1). */
    if (result == DIALBACK_INVALID)
        cond = DIALBACK_FORBIDDEN;
    else if (cond <= DIALBACK_COND_NONE || cond >= DIALBACK_COND_COUNT)
        cond = DIALBACK_UNDEFINED_CONDITION;
    if (answer_result(out, sender, target, DIALBACK_ERROR, cond))
        return stream_error(ev, "internal-server-error");
    ev->result = DIALBACK_ERROR;
    ev->cond = cond;
    return ev->kind = DIALBACK_EV_REFUSED_IN;
}

/* ---- time and the end ---------------------------------------------------------------------- */

static bool due(const struct dialback *d, uint32_t since, uint32_t now, bool all)
{
    return all || now - since >= d->cfg->timeout;
}

/* The event's strings become blk, a block the machine now owns (no allocation: a walk
 * that reports what it drops cannot fail for want of memory). */
static void adopt(struct dialback *d, char *blk)
{
    free(d->evmem);
    d->evmem = blk;
}

/* Fails the oldest pending request that is due (every one when all is set). */
static enum dialback_ev expire(struct dialback *d, uint32_t now, bool all, struct buf *out,
                               struct dialback_event *ev)
{
    struct authz *a = d->authz;
    const struct authz_pair *oldest = NULL;
    /* A stream that closed did not time out: its requests failed on the way. */
    enum dialback_cond cond = all ? DIALBACK_REMOTE_CONNECTION_FAILED
                                  : DIALBACK_REMOTE_SERVER_TIMEOUT;
    memset(ev, 0, sizeof *ev);
    for (unsigned i = 0; i < a->n; i++) {
        const struct authz_pair *p = authz_at(a, i);
        if (p->pending && (!oldest || (int32_t)(p->since - oldest->since) < 0))
            oldest = p;
    }
    /* Ours are appended in time order: the first is the oldest. */
    struct dialback_verify *v = d->nverify ? &d->verifies[0] : NULL;
    if (v && oldest && (int32_t)(oldest->since - v->since) < 0)
        v = NULL;
    if (v && due(d, v->since, now, all)) {
        ev->sender = v->sender;
        ev->target = v->target;
        ev->id = v->id;
        adopt(d, v->mem);
        v->mem = NULL;
        verify_remove(d, 0);
        ev->kind = DIALBACK_EV_VERIFIED;
        ev->result = DIALBACK_ERROR;
        ev->cond = cond;
        return ev->kind;
    }
    if (v || !oldest || !due(d, oldest->since, now, all))
        return DIALBACK_EV_NONE;

    enum authz_dir dir = (enum authz_dir)oldest->dir;
    uint16_t from_len = oldest->from_len;
    char *blk = authz_take(a, dir, oldest->from, oldest->from_len, oldest->to, oldest->to_len);
    adopt(d, blk);
    ev->sender = blk;
    ev->target = blk + from_len + 1;
    ev->result = DIALBACK_ERROR;
    ev->cond = cond;
    if (dir == AUTHZ_OUT) {
        ev->bounce = DIALBACK_REMOTE_SERVER_TIMEOUT;
        return ev->kind = DIALBACK_EV_REFUSED_OUT;
    }
    /* The pair is gone already: after a stream error here the next call goes on. */
    if (out && answer_result(out, ev->sender, ev->target, DIALBACK_ERROR, ev->cond))
        return stream_error(ev, "internal-server-error");
    return ev->kind = DIALBACK_EV_REFUSED_IN;
}

enum dialback_ev dialback_expire(struct dialback *d, uint32_t now, struct buf *out,
                                 struct dialback_event *ev)
{
    return expire(d, now, false, out, ev);
}

enum dialback_ev dialback_drain(struct dialback *d, struct dialback_event *ev)
{
    return expire(d, 0, true, NULL, ev);
}

uint32_t dialback_deadline(const struct dialback *d)
{
    const struct authz *a = d->authz;
    bool any = false;
    uint32_t since = 0;
    for (unsigned i = 0; i < a->n; i++) {
        const struct authz_pair *p = authz_at(a, i);
        if (p->pending && (!any || (int32_t)(p->since - since) < 0)) {
            since = p->since;
            any = true;
        }
    }
    if (d->nverify && (!any || (int32_t)(d->verifies[0].since - since) < 0)) {
        since = d->verifies[0].since;
        any = true;
    }
    if (!any)
        return 0;
    uint32_t t = since + d->cfg->timeout;
    return t ? t : 1; /* 0 means none */
}
