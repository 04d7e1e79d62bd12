/*
 * mam.c: what the archive keeps and how it gets to the store (mam.h says what and
 * why): the hooks on a message's way out and in, stanza-ids, the shard's queue of rows
 * and its batched appends, each user's preferences, the retention sweep.
 */
#include "router/mam.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/store/store_mam.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_HINTS   "urn:xmpp:hints"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define SWEEP_CHUNK 10000
/* Copies of changed stanzas a shard keeps at once (mam_inbound()). */
#define OUT_BUFS 8

/* A row on its way to the store: the row's strings in data[]. */
struct mam_item {
    struct mam_item *next;
    struct store_mam_row row;
    char data[];
};

struct mam_list {
    struct mam_item *head, *tail;
    size_t n;
};

struct mam_shard {
    struct mam_list queue;
    size_t held;       /* rows in users' lists, waiting for their preferences */
    unsigned inflight; /* appends sent, not completed */
    uint64_t last_id;
    uint64_t archived, dropped, lost; /* rows queued; refused (queue full); failed in the store */
    /* The stanzas the inbound hook changed: st->raw points into one of them until
     * OUT_BUFS more are changed (the shard's arena would not do: modules reset it while
     * the stanza is still on its way). */
    struct buf out[OUT_BUFS];
    unsigned out_next;
};

enum { PREFS_UNKNOWN, PREFS_LOADING, PREFS_READY };

/* Work (a query) waiting for the preferences. */
struct mam_wait {
    struct mam_wait *next;
    void (*go)(struct shard *s, void *arg);
    void *arg;
};

struct mam_user {
    uint8_t state;
    struct mam_wait *waiting, **waiting_tail;
    struct store_mam_prefs prefs; /* READY: what the store said, a copy we own (jids block) */
    struct mam_list held;         /* rows archived before the preferences came */
};

/* The highest id in the store when the router started (mam_router_start()). */
static _Atomic uint64_t mam_floor;
static uint64_t sweep_last;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct mam_shard *shard_mam(struct shard *s)
{
    return s->mod[MOD_SLOT_MAM];
}

/* ---- ids and text ------------------------------------------------------------------------ */

static uint64_t next_id(struct mam_shard *ms)
{
    uint64_t id = now_us(), floor = atomic_load_explicit(&mam_floor, memory_order_relaxed);
    if (id <= ms->last_id)
        id = ms->last_id + 1;
    if (id <= floor)
        id = floor + 1;
    ms->last_id = id;
    return id;
}

size_t mam_id_text(uint64_t id, char *out)
{
    return (size_t)snprintf(out, MAM_ID_LEN, "%" PRIu64, id);
}

uint64_t mam_id_parse(const char *s)
{
    uint64_t v = 0;
    if (!s || !*s || strlen(s) > 19)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v <= INT64_MAX ? v : 0;
}

void mam_stanza_id(struct buf *b, const char *by, size_t by_len, uint64_t id)
{
    char t[MAM_ID_LEN];
    size_t n = mam_id_text(id, t);
    buf_puts(b, "<stanza-id xmlns='" NS_SID "'");
    xmlw_attr(b, "by", by, by_len);
    xmlw_attr(b, "id", t, n);
    buf_puts(b, "/>");
}

/* The offset of the stanza's end tag, or 0 when it has none (<message/>): the span ends
 * at the end tag's '>', and no '<' can follow the end tag's own. */
static size_t end_tag(const char *raw, size_t len)
{
    const char *lt = len ? memrchr(raw, '<', len) : NULL;
    return lt ? (size_t)(lt - raw) : 0;
}

void mam_with_stanza_id(struct buf *out, const char *raw, size_t len, const char *by,
                        size_t by_len, uint64_t id)
{
    size_t at = end_tag(raw, len);
    if (!at) { /* <message .../>: <message ...><stanza-id/></message> */
        buf_append(out, raw, len - 2);
        buf_puts(out, ">");
        mam_stanza_id(out, by, by_len, id);
        buf_puts(out, "</message>");
        return;
    }
    buf_append(out, raw, at);
    mam_stanza_id(out, by, by_len, id);
    buf_append(out, raw + at, len - at);
}

/* ---- the queue and the store ------------------------------------------------------------- */

static void list_push(struct mam_list *l, struct mam_item *it)
{
    it->next = NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->n++;
}

static size_t list_free(struct mam_list *l)
{
    size_t n = l->n;
    for (struct mam_item *it = l->head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    *l = (struct mam_list){0};
    return n;
}

static void send_batch(struct shard *s);

static void on_appended(void *arg, int res)
{
    struct shard *s = shard_current;
    struct mam_shard *ms = shard_mam(s);
    size_t n = (size_t)(uintptr_t)arg;
    ms->inflight--;
    if (res < 0 || (size_t)res < n) {
        size_t lost = res < 0 ? n : n - (size_t)res;
        ms->lost += lost;
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: %zu archive rows not stored (%s); %" PRIu64 " in all",
               s->idx, lost, res < 0 ? strerror(-res) : "an id already there", ms->lost);
    }
    if (!ms->inflight)
        send_batch(s);
}

/* Up to mam.batch queued rows to the store as one append. */
static void send_batch(struct shard *s)
{
    struct mam_shard *ms = shard_mam(s);
    size_t max = s->cfg->mam.batch, n = 0;
    if (!ms->queue.n)
        return;
    struct store_mam_row *rows = malloc((ms->queue.n < max ? ms->queue.n : max) * sizeof *rows);
    if (!rows)
        return; /* the next completion or query tries again */
    struct mam_item *it = ms->queue.head;
    for (; it && n < max; it = it->next)
        rows[n++] = it->row;
    int rc = store_mam_append(s->store, rows, n, on_appended, (void *)(uintptr_t)n);
    free(rows);
    if (rc < 0) {
        /* The store's queue is full: the rows wait for the next completion or query. */
        LOG_RL(LOG_LEVEL_WARN, "shard %u: the store took no archive rows: %s", s->idx,
               strerror(-rc));
        return;
    }
    ms->inflight++;
    /* The store copied them. */
    for (size_t i = 0; i < n; i++) {
        struct mam_item *first = ms->queue.head;
        ms->queue.head = first->next;
        free(first);
    }
    ms->queue.n -= n;
    if (!ms->queue.head)
        ms->queue.tail = NULL;
}

void mam_flush(struct shard *s)
{
    struct mam_shard *ms = shard_mam(s);
    while (ms && ms->queue.n) {
        size_t before = ms->queue.n;
        send_batch(s);
        if (ms->queue.n == before)
            break;
    }
}

static struct mam_item *item_new(const char *owner, const char *with, size_t with_len,
                                 size_t with_bare_len, const char *stanza, size_t len)
{
    size_t ol = strlen(owner);
    struct mam_item *it = malloc(sizeof *it + ol + 1 + with_len + 1 + len);
    if (!it)
        return NULL;
    char *p = it->data;
    it->row.owner = memcpy(p, owner, ol + 1);
    p += ol + 1;
    it->row.with = memcpy(p, with, with_len);
    p[with_len] = '\0';
    p += with_len + 1;
    it->row.with_bare_len = with_bare_len;
    it->row.stanza = memcpy(p, stanza, len);
    it->row.len = len;
    return it;
}

/* The row goes to the queue, or waits in mu for the user's preferences; 0 when it is
 * refused (the queue full). */
static uint64_t archive(struct shard *s, struct mam_user *mu, const char *owner, const char *with,
                        size_t with_len, size_t with_bare_len, const char *stanza, size_t len)
{
    struct mam_shard *ms = shard_mam(s);
    if (!ms || !s->cfg->mam.enabled || !with_len || with_len > STORE_JID_MAX)
        return 0;
    if (ms->queue.n + ms->held >= s->cfg->mam.max_queue) {
        ms->dropped++;
        LOG_RL(LOG_LEVEL_ERROR,
               "shard %u: archive queue full (mam.max_queue): a message of %s delivered but "
               "not archived; %" PRIu64 " in all",
               s->idx, owner, ms->dropped);
        return 0;
    }
    struct mam_item *it = item_new(owner, with, with_len, with_bare_len, stanza, len);
    if (!it) {
        ms->dropped++;
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a message of %s not archived", s->idx,
               owner);
        return 0;
    }
    uint64_t id = it->row.id = next_id(ms);
    ms->archived++;
    if (mu && mu->state != PREFS_READY) {
        list_push(&mu->held, it);
        ms->held++;
    } else {
        list_push(&ms->queue, it);
        if (!ms->inflight)
            send_batch(s); /* which may free it */
    }
    return id;
}

uint64_t mam_archive(struct shard *s, const char *owner, const char *with, size_t with_len,
                     size_t with_bare_len, const char *stanza, size_t len)
{
    return archive(s, NULL, owner, with, with_len, with_bare_len, stanza, len);
}

/* ---- preferences ------------------------------------------------------------------------- */

static struct mam_user *user_mam(struct user *u)
{
    struct mam_user *mu = u->mod[MOD_SLOT_MAM];
    if (!mu && (mu = calloc(1, sizeof *mu)))
        u->mod[MOD_SLOT_MAM] = mu;
    return mu;
}

/* Does u archive messages with the bare JID `with`? By its preferences, or mam.default
 * while they are not known. */
static bool wants(const struct shard *s, struct user *u, const struct mam_user *mu,
                  const char *with, size_t len)
{
    uint8_t dflt = (uint8_t)s->cfg->mam.dflt;
    if (mu && mu->state == PREFS_READY && mu->prefs.stored) {
        for (size_t i = 0; i < mu->prefs.n; i++)
            if (strlen(mu->prefs.jids[i]) == len && !memcmp(mu->prefs.jids[i], with, len))
                return mu->prefs.always[i];
        dflt = mu->prefs.dflt;
    }
    if (dflt == STORE_MAM_ROSTER) {
        const struct roster_item *it = roster_find(&u->roster, with, len);
        return it && !it->hidden;
    }
    return dflt == STORE_MAM_ALWAYS;
}

bool mam_prefs_copy(const struct store_mam_prefs *p, struct store_mam_prefs *out)
{
    size_t n = p->n, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(p->jids[i]) + 1;
    char *block = malloc(n * (sizeof(char *) + sizeof(bool)) + bytes + 1);
    if (!block)
        return false;
    const char **jids = (const char **)(void *)block;
    bool *always = (bool *)(block + n * sizeof(char *));
    char *t = (char *)(always + n);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(p->jids[i]) + 1;
        jids[i] = memcpy(t, p->jids[i], l);
        always[i] = p->always[i];
        t += l;
    }
    *out = (struct store_mam_prefs){
        .dflt = p->dflt, .stored = true, .n = n, .jids = jids, .always = always};
    return true;
}

static void on_prefs(void *arg, int res, const struct store_mam_prefs *p)
{
    struct user *u = arg;
    struct shard *s = shard_current;
    struct mam_shard *ms = shard_mam(s);
    struct mam_user *mu = u->mod[MOD_SLOT_MAM];
    u->busy--;
    if (res < 0)
        LOG_ERROR("shard %u: archive preferences of %s not loaded (%s): mam.default applies",
                  s->idx, u->bare, strerror(-res));
    if (mu) {
        mu->state = PREFS_READY;
        /* The store's block is only lent: the JIDs are copied into one of our own. */
        if (res == 0 && p->stored) {
            struct store_mam_prefs copy;
            if (mam_prefs_copy(p, &copy)) {
                free((void *)mu->prefs.jids);
                mu->prefs = copy;
            }
        }
        /* What waited is decided now. */
        for (struct mam_item *it = mu->held.head, *next; it; it = next) {
            next = it->next;
            ms->held--;
            if (wants(s, u, mu, it->row.with, it->row.with_bare_len))
                list_push(&ms->queue, it);
            else
                free(it);
        }
        mu->held = (struct mam_list){0};
        if (!ms->inflight)
            send_batch(s);
        for (struct mam_wait *w = mu->waiting, *next; w; w = next) {
            next = w->next;
            w->go(s, w->arg);
            free(w);
        }
        mu->waiting = NULL;
    }
    user_release(&s->users, u);
}

static void prefs_load(struct shard *s, struct user *u, struct mam_user *mu)
{
    char user[USER_LOCAL_MAX];
    user_localpart(u, user, sizeof user);
    mu->state = PREFS_LOADING;
    u->busy++;
    if (store_mam_prefs_get(s->store, user, on_prefs, u) < 0)
        on_prefs(u, -EAGAIN, NULL);
}

static void mam_user_loaded(struct shard *s, struct user *u)
{
    if (!s->cfg->mam.enabled || !u->exists)
        return;
    struct mam_user *mu = user_mam(u);
    if (mu && mu->state == PREFS_UNKNOWN)
        prefs_load(s, u, mu);
}

bool mam_prefs_wait(struct user *u, void (*go)(struct shard *s, void *arg), void *arg)
{
    struct mam_user *mu = u->mod[MOD_SLOT_MAM];
    struct mam_wait *w;
    if (!mu || mu->state != PREFS_LOADING || !mu->held.n || !(w = malloc(sizeof *w)))
        return false;
    *w = (struct mam_wait){.go = go, .arg = arg};
    if (!mu->waiting)
        mu->waiting_tail = &mu->waiting;
    *mu->waiting_tail = w;
    mu->waiting_tail = &w->next;
    return true;
}

void mam_prefs_replace(struct user *u, const struct store_mam_prefs *p)
{
    struct mam_user *mu = user_mam(u);
    if (!mu) {
        free((void *)p->jids);
        return;
    }
    free((void *)mu->prefs.jids);
    mu->prefs = *p;
    if (mu->state != PREFS_LOADING)
        mu->state = PREFS_READY;
}

const struct store_mam_prefs *mam_prefs_of(const struct shard *s, struct user *u,
                                           struct store_mam_prefs *dflt)
{
    struct mam_user *mu = u->mod[MOD_SLOT_MAM];
    if (mu && mu->state == PREFS_READY && mu->prefs.stored)
        return &mu->prefs;
    *dflt = (struct store_mam_prefs){.dflt = (uint8_t)s->cfg->mam.dflt};
    return dflt;
}

static void mam_user_free(struct shard *s, struct user *u)
{
    struct mam_user *mu = u->mod[MOD_SLOT_MAM];
    struct mam_shard *ms = shard_mam(s);
    if (!mu)
        return;
    size_t n = list_free(&mu->held);
    if (ms && n) {
        ms->held -= n;
        ms->lost += n;
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: %zu archive rows of %s lost with its state", s->idx, n,
               u->bare);
    }
    free((void *)mu->prefs.jids);
    free(mu);
    u->mod[MOD_SLOT_MAM] = NULL;
}

/* ---- the hooks --------------------------------------------------------------------------- */

/* What a message holds, for the archive. */
struct scan {
    bool body, nostore, other; /* other: a carbon or an archive result, never archived */
    struct buf *out;           /* the message without the stanza-ids by= `by`; NULL: none */
};

bool mam_sid_by(struct xml_parser *p, const char *raw, const char *by, size_t by_len)
{
    struct xml_attr a;
    for (unsigned i = 0; xml_attr_at(p, raw, i, &a); i++) {
        if (a.ns.len || a.name.len != 2 || memcmp(a.name.p, "by", 2))
            continue;
        char val[JID_BUF], norm[JID_BUF];
        if (a.raw.len >= sizeof val)
            return false;
        size_t n = a.decode ? xml_decode(a.raw.p, a.raw.len, true, val) : a.raw.len;
        if (!a.decode)
            memcpy(val, a.raw.p, n);
        struct jid j;
        /* Compared normalised: by='Juliet@Example.COM' names juliet@example.com too. */
        if (jid_parse(&j, val, n, norm, sizeof norm) < 0)
            return n == by_len && !memcmp(val, by, n);
        return j.len == by_len && !memcmp(j.str, by, by_len);
    }
    return false;
}

/* Reads the message's children. With `by`, the stanza-ids that name it are cut out into
 * a copy in sc->out (only when there are some). */
static void scan(struct shard *s, const char *raw, size_t len, const char *by, size_t by_len,
                 struct scan *sc, struct buf *out)
{
    struct xml_parser p;
    struct xml_event ev;
    unsigned depth = 0, cut_depth = 0;
    /* END events carry no bytes: where an element ends is found from the last event that
     * did (a START's tag or a TEXT run), skipping one '>' per end tag closed since. */
    size_t copied = 0, cut_at = 0, known = 0, ends = 0;
    bool empty = false;
    *sc = (struct scan){0};
    xml_init_fragment(&p, NULL, s->scratch, sizeof s->scratch);
    for (;;) {
        enum xml_ev_kind k = xml_next(&p, raw, len, &ev);
        if (k == XML_EV_START || k == XML_EV_TEXT) {
            known = (size_t)(ev.raw.p - raw) + ev.raw.len;
            ends = 0;
        }
        if (k == XML_EV_START) {
            empty = ev.flags & XML_F_EMPTY;
            if (++depth != 2)
                continue;
            const char *name = ev.name.p, *ns = ev.ns.p;
            size_t nl = ev.name.len, nsl = ev.ns.len;
#define IS(n_, ns_)                                                                                \
    (nl == sizeof n_ - 1 && !memcmp(name, n_, nl) && nsl == sizeof ns_ - 1 && !memcmp(ns, ns_, nsl))
            if (IS("body", "jabber:client"))
                sc->body = true;
            else if (IS("no-store", NS_HINTS) || IS("no-permanent-store", NS_HINTS))
                sc->nostore = true;
            else if (IS("sent", NS_CARBONS) || IS("received", NS_CARBONS) || IS("result", NS_MAM))
                sc->other = true;
            else if (by && IS("stanza-id", NS_SID) && mam_sid_by(&p, raw, by, by_len)) {
                cut_depth = depth;
                cut_at = (size_t)(ev.raw.p - raw);
            }
#undef IS
        } else if (k == XML_EV_END) {
            if (empty)
                empty = false; /* its START's tag was the whole element */
            else
                ends++;
            if (depth == cut_depth) {
                size_t end = known;
                for (size_t skip = ends; skip && end < len; end++)
                    skip -= raw[end] == '>';
                buf_append(out, raw + copied, cut_at - copied);
                copied = end;
                sc->out = out;
                cut_depth = 0;
            }
            if (--depth == 0)
                break;
        } else if (k != XML_EV_TEXT) {
            break; /* the end, or an error: what was read stands */
        }
    }
    xml_free(&p);
    if (sc->out)
        buf_append(out, raw + copied, len - copied);
}

static bool archivable(const struct stanza *st, const struct scan *sc)
{
    uint8_t t = st->h->type;
    return (t == PROTO_MSG_CHAT || t == PROTO_MSG_NORMAL) && sc->body && !sc->nostore &&
           !sc->other;
}

#define HAS(lit) (memmem(st->raw, st->raw_len, lit, sizeof lit - 1) != NULL)

/* The next of the shard's copies, emptied, with room for n bytes reserved (so that
 * appends up to that never fail halfway); NULL when memory is short. */
static struct buf *out_buf(struct mam_shard *ms, size_t n)
{
    struct buf *b = &ms->out[ms->out_next++ % OUT_BUFS];
    buf_consume(b, buf_used(b));
    return buf_reserve(b, n) == 0 ? b : NULL;
}

/* Room for a stanza-id naming by (escaped: 6 bytes a character at most). */
#define SID_ROOM(by_len) (64 + MAM_ID_LEN + 6 * (by_len))

/* The recipient's copy: stanza-ids naming the recipient removed, the row queued, the
 * stanza-id added. */
static bool mam_inbound(struct shard *s, struct user *v, struct stanza *st)
{
    struct mam_shard *ms = shard_mam(s);
    if (!ms || st->h->kind != PROTO_MESSAGE || !s->cfg->mam.enabled)
        return false;
    bool sid = HAS(NS_SID), body = HAS("body");
    if (!sid && !body)
        return false;
    struct buf *b = sid ? out_buf(ms, st->raw_len) : NULL;
    struct scan sc;
    scan(s, st->raw, st->raw_len, b ? v->bare : NULL, v->bare_len, &sc, b);
    const char *raw = sc.out ? buf_data(b) : st->raw;
    size_t len = sc.out ? buf_used(b) : st->raw_len;
    uint64_t id = 0;
    if (archivable(st, &sc)) {
        struct mam_user *mu = user_mam(v);
        if (mu && mu->state == PREFS_UNKNOWN && v->state == USER_READY)
            prefs_load(s, v, mu);
        if (wants(s, v, mu, st->from, st->from_bare_len)) {
            char owner[USER_LOCAL_MAX];
            user_localpart(v, owner, sizeof owner);
            id = archive(s, mu, owner, st->from, st->from_len, st->from_bare_len, raw, len);
        }
    }
    struct buf *c = id ? out_buf(ms, len + SID_ROOM(v->bare_len)) : NULL;
    if (c) {
        mam_with_stanza_id(c, raw, len, v->bare, v->bare_len, id);
        raw = buf_data(c);
        len = buf_used(c);
    }
    if (raw != st->raw) {
        st->raw = raw;
        st->raw_len = len;
    }
    return false;
}

/* The sender's copy. */
static bool mam_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)ss;
    struct mam_shard *ms = shard_mam(s);
    if (!ms || st->h->kind != PROTO_MESSAGE || !s->cfg->mam.enabled || !st->to_len || !HAS("body"))
        return false;
    /* To oneself: archived once, as received. */
    if (st->to_bare_len == u->bare_len && !memcmp(st->to, u->bare, u->bare_len))
        return false;
    struct scan sc;
    scan(s, st->raw, st->raw_len, NULL, 0, &sc, NULL);
    if (!archivable(st, &sc))
        return false;
    struct mam_user *mu = user_mam(u);
    if (mu && mu->state == PREFS_UNKNOWN && u->state == USER_READY && u->exists)
        prefs_load(s, u, mu);
    if (!wants(s, u, mu, st->to, st->to_bare_len))
        return false;
    char owner[USER_LOCAL_MAX];
    user_localpart(u, owner, sizeof owner);
    archive(s, mu, owner, st->to, st->to_len, st->to_bare_len, st->raw, st->raw_len);
    return false;
}

static void mam_features(const struct shard *s, struct buf *b)
{
    if (s->cfg->mam.enabled)
        buf_puts(b, "<feature var='" NS_MAM "'/><feature var='" NS_SID "'/>");
}

static int mam_shard_init(struct shard *s)
{
    struct mam_shard *ms = calloc(1, sizeof *ms);
    if (!ms)
        return -ENOMEM;
    s->mod[MOD_SLOT_MAM] = ms;
    return 0;
}

static void mam_shard_free(struct shard *s)
{
    struct mam_shard *ms = shard_mam(s);
    if (!ms)
        return;
    size_t n = list_free(&ms->queue);
    if (n)
        LOG_ERROR("shard %u: %zu archive rows not written at exit", s->idx, n);
    if (ms->dropped || ms->lost)
        LOG_WARN("shard %u: archive rows refused %" PRIu64 ", lost %" PRIu64 " of %" PRIu64,
                 s->idx, ms->dropped, ms->lost, ms->archived);
    for (unsigned i = 0; i < OUT_BUFS; i++)
        buf_free(&ms->out[i]);
    free(ms);
    s->mod[MOD_SLOT_MAM] = NULL;
}

/* ---- the main thread --------------------------------------------------------------------- */

int mam_router_start(struct store *st)
{
    uint64_t last;
    int rc = store_mam_last_sync(st, &last);
    if (rc < 0)
        return rc;
    atomic_store_explicit(&mam_floor, last, memory_order_relaxed);
    return 0;
}

void mam_router_tick(struct store *st, const struct config *cfg)
{
    static bool more;
    uint64_t now = now_us();
    if (!cfg->mam.retention)
        return;
    if (!more && now - sweep_last < (uint64_t)cfg->mam.sweep_interval * 1000000u)
        return;
    if (!more)
        sweep_last = now;
    uint64_t before = now - (uint64_t)cfg->mam.retention * 1000000u;
    int n = store_mam_expire_sync(st, before, SWEEP_CHUNK);
    more = n == SWEEP_CHUNK;
    if (n > 0)
        LOG_INFO("mam: %d archived messages past mam.retention deleted", n);
    else if (n < 0)
        LOG_ERROR("mam: retention sweep: %s", strerror(-n));
}

static const char *const mam_ns[] = {NS_MAM, NULL};
const struct module mod_mam = {
    .name = "mam",
    .iq_ns = mam_ns,
    .iq_own = mam_iq,
    .iq_other = iq_forbidden,
    .inbound = mam_inbound,
    .outbound = mam_outbound,
    .user_loaded = mam_user_loaded,
    .user_free = mam_user_free,
    .disco_account = mam_features,
    .shard_init = mam_shard_init,
    .shard_free = mam_shard_free,
};
