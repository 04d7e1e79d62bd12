/*
 * shard.c: one shard worker's loop. Drain every inbound ring (front-end threads, other
 * shards) in bounded batches, handle each frame, run the store's completions, publish
 * what was produced, and sleep when there is nothing to do: the doorbell handshake of
 * bell.h, and a poll on the bell and the store's eventfd together. While the frames
 * waiting for full outbound rings exceed BACKLOG_MAX, inbound rings are left alone: the
 * front ends then find their rings full and stop reading their clients.
 */
#include "router/router.h"
#include "common/ctl.h"
#include "common/log.h"
#include "common/store.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH       256
#define BACKLOG_MAX (8u << 20)
/* After work, an idle shard wakes once a second up to this many times, until every
 * outbound ring has given its pages back (ring_trim: quiet for a second, all consumed). */
#define TRIM_WAKES 3

_Thread_local struct shard *shard_current;
int router_ctl_fd = -1;

int shard_link(struct shard *shards, unsigned nshards, uint32_t data_size, uint32_t max_frame)
{
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &shards[i];
        s->to_shard = calloc(nshards, sizeof *s->to_shard);
        s->from_shard = calloc(nshards, sizeof *s->from_shard);
        s->shard_dirty = calloc(nshards, sizeof *s->shard_dirty);
        s->shard_backlog = calloc(nshards, sizeof *s->shard_backlog);
        if (!s->to_shard || !s->from_shard || !s->shard_dirty || !s->shard_backlog)
            return -ENOMEM;
    }
    size_t bytes = (ring_footprint(data_size) + SHM_SLOT - 1) / SHM_SLOT * SHM_SLOT;
    for (unsigned i = 0; i < nshards; i++)
        for (unsigned j = 0; j < nshards; j++) {
            if (i == j)
                continue;
            void *mem = aligned_alloc(SHM_SLOT, bytes);
            if (!mem)
                return -ENOMEM;
            int rc = ring_format(mem, data_size, max_frame);
            if (!rc)
                rc = ring_attach(&shards[i].to_shard[j], mem, &shards[j].bell, RK_KIND_MAX - 1);
            if (!rc)
                rc = ring_attach(&shards[j].from_shard[i], mem, &shards[i].bell, RK_KIND_MAX - 1);
            if (rc)
                return rc;
        }
    return 0;
}

bool stanza_parse(const void *payload, uint32_t len, struct stanza *st)
{
    if (len < sizeof(struct proto_stanza))
        return false;
    const struct proto_stanza *h = payload;
    uint64_t need = sizeof *h + (uint64_t)h->from_len + h->to_len + h->stanza_len;
    /* from is a full JID from a front end, a bare one when the server speaks for an
     * account (subscription answers). */
    if (need > len || h->from_bare_len > h->from_len || !h->from_bare_len ||
        h->to_bare_len > h->to_len ||
        h->head_len > h->stanza_len || h->kind > PROTO_IQ || h->stanza_len == 0)
        return false;
    const char *p = (const char *)(h + 1);
    st->h = h;
    st->from = p;
    st->from_len = h->from_len;
    st->from_bare_len = h->from_bare_len;
    st->to = p + h->from_len;
    st->to_len = h->to_len;
    st->to_bare_len = h->to_bare_len;
    st->raw = st->to + h->to_len;
    st->raw_len = h->stanza_len;
    st->head_len = h->head_len;
    return true;
}

static bool parse_session(const void *payload, uint32_t len, const struct proto_session **b,
                          const char **jid, const char **presence)
{
    if (len < sizeof(struct proto_session))
        return false;
    const struct proto_session *s = payload;
    if (sizeof *s + (uint64_t)s->jid_len + s->presence_len + s->directed_len > len ||
        s->bare_len >= s->jid_len)
        return false;
    *b = s;
    *jid = (const char *)(s + 1);
    *presence = *jid + s->jid_len;
    return true;
}

/* A stanza from a front end: its sender's step, once the sender's state is here. */
static void from_sender(struct shard *s, uint16_t kind, const void *payload, uint32_t len,
                        const struct stanza *st)
{
    struct user *u = user_find(&s->users, st->h->key, st->from, st->from_bare_len);
    if (!u || !session_by_conn(u, st->h->conn))
        return; /* its session ended meanwhile */
    if (!load_ready(s, u, kind, payload, len))
        return;
    route_outbound(s, st);
}

void shard_frame(struct shard *s, uint16_t kind, const void *payload, uint32_t len)
{
    struct stanza st;
    const struct proto_session *b;
    const char *jid, *presence;

    switch (kind) {
    case PROTO_STANZA:
        if (stanza_parse(payload, len, &st) && shard_of(s, st.h->key) == s->idx) {
            from_sender(s, kind, payload, len, &st);
            return;
        }
        break;
    case PROTO_BIND:
    case PROTO_UNBIND:
        if (parse_session(payload, len, &b, &jid, &presence) && shard_of(s, b->key) == s->idx) {
            if (kind == PROTO_BIND)
                route_bind(s, b, jid, presence);
            else
                route_unbind(s, b, jid);
            return;
        }
        break;
    case RK_INBOUND:
        if (stanza_parse(payload, len, &st)) {
            route_inbound(s, &st);
            return;
        }
        break;
    case RK_FANOUT:
        if (len >= sizeof(struct rk_fanout)) {
            presence_fanout_in(s, payload, len);
            return;
        }
        break;
    case RK_PROBE:
        if (len >= sizeof(struct rk_probe)) {
            presence_probe_in(s, payload, len);
            return;
        }
        break;
    }
    LOG_RL(LOG_LEVEL_ERROR, "shard %u: malformed frame of kind %u", s->idx, kind);
}

/* A bounded batch from one ring; on corruption the ring is left alone until reset. */
static unsigned drain_ring(struct shard *s, struct ring *r, bool *broken, int fe)
{
    struct ring_frame f;
    unsigned n = 0;
    int rc = 0;
    if (*broken)
        return 0;
    while (n < BATCH && (rc = ring_peek(r, &f)) == 1) {
        s->stats.frames_in++;
        /* A front end may only speak for its own connections. */
        if (fe >= 0 && f.kind == PROTO_STANZA && f.len >= sizeof(struct proto_stanza) &&
            PROTO_CONN_THREAD(((const struct proto_stanza *)f.payload)->conn) != (unsigned)fe)
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d sent another thread's stanza", s->idx,
                   fe);
        else if (fe >= 0 && (f.kind == PROTO_BIND || f.kind == PROTO_UNBIND) &&
                 f.len >= sizeof(struct proto_session) &&
                 PROTO_CONN_THREAD(((const struct proto_session *)f.payload)->conn) !=
                     (unsigned)fe)
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d sent another thread's session", s->idx,
                   fe);
        else if (fe >= 0 && f.kind >= PROTO_BIND_RESULT)
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d sent a frame of kind %u", s->idx, fe,
                   f.kind);
        else
            shard_frame(s, f.kind, f.payload, f.len);
        ring_consume(r);
        n++;
    }
    if (n && ring_release(r))
        bell_ring(r->peer);
    if (rc < 0) {
        LOG_ERROR("shard %u: ring from %s %d is corrupt", s->idx, fe >= 0 ? "thread" : "shard",
                  fe);
        *broken = true;
        if (fe >= 0) /* the front end is broken; the supervisor replaces it and we reset */
            ctl_tell(router_ctl_fd, CTL_PEER_BROKEN, CTL_ROLE_C2S);
    }
    return n;
}

static unsigned drain(struct shard *s)
{
    unsigned total = 0;
    bool never = false;
    for (unsigned t = 0; t < s->nshards; t++)
        if (t != s->idx)
            total += drain_ring(s, &s->from_shard[t], &never, -1);
    for (unsigned fe = 0; fe < s->nfe; fe++)
        total += drain_ring(s, &s->from_fe[fe], &s->broken[fe], (int)fe);
    return total;
}

static size_t backlog_total(const struct shard *s)
{
    size_t b = 0;
    for (unsigned fe = 0; fe < s->nfe; fe++)
        b += s->backlog[fe].bytes;
    for (unsigned t = 0; t < s->nshards; t++)
        b += s->shard_backlog[t].bytes;
    return b;
}

static bool inbound_pending(struct shard *s)
{
    for (unsigned t = 0; t < s->nshards; t++)
        if (t != s->idx && !ring_empty(&s->from_shard[t]))
            return true;
    for (unsigned fe = 0; fe < s->nfe; fe++)
        if (!s->broken[fe] && !ring_empty(&s->from_fe[fe]))
            return true;
    return false;
}

/* The front end died: its sessions are gone, its rings start over (ring.h, "Reset").
 * Contacts in other shards learn nothing here: with one front end, they died too. */
static void front_end_down(struct shard *s, unsigned role)
{
    (void)role; /* c2s is the only front end so far */
    struct user_table *t = &s->users;
    for (size_t i = 0; t->buckets && i <= t->mask; i++) {
        struct user *u = t->buckets[i];
        while (u) {
            struct user *next = u->next;
            while (u->sessions)
                session_remove(u, u->sessions);
            user_release(t, u);
            u = next;
        }
    }
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        backlog_clear(&s->backlog[fe]);
        s->dirty[fe] = false;
        ring_reset(&s->from_fe[fe]);
        ring_reset(&s->to_fe[fe]);
        s->broken[fe] = false;
    }
}

/* True when every outbound ring holds no pages. */
static bool trim_out(struct shard *s)
{
    bool done = true;
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        ring_trim(&s->to_fe[fe]);
        done &= ring_trimmed(&s->to_fe[fe]);
    }
    for (unsigned t = 0; t < s->nshards; t++)
        if (t != s->idx) {
            ring_trim(&s->to_shard[t]);
            done &= ring_trimmed(&s->to_shard[t]);
        }
    return done;
}

static void sleep_until_work(struct shard *s)
{
    bell_prepare_sleep(&s->bell);
    if ((backlog_total(s) < BACKLOG_MAX && inbound_pending(s)) || store_client_ready(s->store) ||
        atomic_load_explicit(&s->ctl, memory_order_acquire) != ROUTER_CTL_NONE) {
        bell_cancel_sleep(&s->bell);
        return;
    }
    /* Frames, store answers and control requests all ring the bell: one blocking read,
     * the only system call of a wake-up besides the bells the shard rings. For a few
     * seconds after work the wait has a timeout (a poll, then the read): a quiet second
     * lets the outbound rings give their pages back. */
    if (bell_wait(&s->bell, s->trim_wakes ? 1000 : -1) == 0 && s->trim_wakes)
        s->trim_wakes = trim_out(s) ? 0 : s->trim_wakes - 1; /* a quiet second */
}

/* Called by the store's worker thread: completions wait for this shard. */
void shard_store_notify(void *arg)
{
    struct shard *s = arg;
    /* The completion was published (release) before; the fence pairs with the shard's
     * bell_prepare_sleep() as ring.c's wakers do. */
    atomic_thread_fence(memory_order_seq_cst);
    if (bell_claim(&s->bell))
        bell_ring(&s->bell);
}

/* The delivery counters, when they moved: how many recipients, in how many frames (the
 * difference is what fan-out saved), and the fan-out between shards. */
static void log_stats(struct shard *s, struct shard_stats *last)
{
    struct shard_stats *n = &s->stats;
    if (n->deliveries == last->deliveries && n->fanout_contacts == last->fanout_contacts)
        return;
    LOG_INFO("delivered to %" PRIu64 " recipients in %" PRIu64 " frames (%" PRIu64
             " saved); presence fan-out: %" PRIu64 " contacts in %" PRIu64 " frames to other "
             "shards; frames in %" PRIu64 ", out %" PRIu64,
             n->deliveries, n->deliver_frames, n->deliveries - n->deliver_frames,
             n->fanout_contacts, n->fanout_frames, n->frames_in, n->frames_out);
    *last = *n;
}

static uint32_t clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* Stopping (the front ends are gone): what they sent is handled, and what the store was
 * asked is done, before the thread ends, so no accepted message is lost. The other
 * shards finish at the same time: frames between shards still get through. */
static void finish(struct shard *s)
{
    for (int quiet = 0; quiet < 3;) {
        unsigned n = store_poll(s->store) > 0;
        n += drain(s);
        out_flush(s);
        if (n) {
            quiet = 0;
            continue;
        }
        if (!store_client_pending(s->store))
            quiet++;
        bell_prepare_sleep(&s->bell);
        if (store_client_ready(s->store))
            bell_cancel_sleep(&s->bell);
        else
            bell_wait(&s->bell, 10);
    }
}

void *shard_main(void *arg)
{
    struct shard_stats logged = {0};
    uint32_t last_log = clock_s();
    struct shard *s = arg;
    char label[32];
    snprintf(label, sizeof label, "shard %u", s->idx);
    log_thread_set(label);
    shard_current = s;
    users_init(&s->users);
    arena_init(&s->arena, 16384);

    for (;;) {
        unsigned ctl = atomic_load_explicit(&s->ctl, memory_order_acquire);
        if (ctl != ROUTER_CTL_NONE) {
            if (ctl == ROUTER_CTL_STOP) {
                finish(s);
                break;
            }
            if (ctl == ROUTER_CTL_FE_DOWN)
                front_end_down(s, s->ctl_arg);
            else if (ctl == ROUTER_CTL_RELOAD)
                s->cfg = s->next_cfg;
            /* Pairs with main's acquire load of ctl_done. */
            atomic_store_explicit(&s->ctl, ROUTER_CTL_NONE, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->ctl_done, 1, memory_order_release);
            continue;
        }
        if (clock_s() - last_log >= 60) {
            last_log = clock_s();
            log_stats(s, &logged);
        }
        unsigned n = store_poll(s->store) > 0;
        n += backlog_total(s) < BACKLOG_MAX ? drain(s) : 0;
        out_flush(s);
        if (n || s->retry_out) {
            s->retry_out = false;
            s->trim_wakes = TRIM_WAKES;
            continue;
        }
        sleep_until_work(s);
    }
    log_stats(s, &logged);
    users_free(&s->users);
    store_client_free(s->store);
    arena_free(&s->arena);
    return NULL;
}
