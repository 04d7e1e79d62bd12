/*
 * shard.c: one shard worker's loop. Drain every inbound ring (front-end threads, other
 * shards) in bounded batches, handle each frame, run the store's completions, publish
 * what was produced, and sleep when there is nothing to do: the doorbell handshake of
 * bell.h, and a poll on the bell and the store's eventfd together. While the frames
 * waiting for full outbound rings exceed BACKLOG_MAX, inbound rings are left alone: the
 * front ends then find their rings full and stop reading their clients.
 */
#include "router/router.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "shm/decode.h"
#include "shm/topo.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH       256
#define BACKLOG_MAX (8u << 20)
/* After work, an idle shard is woken once a second (main.c's tick) up to this many times,
 * until every outbound ring has given its pages back (ring_trim: quiet for a second, all
 * consumed). */
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
    struct decode_stanza d;
    if (decode_stanza(payload, len, &d) < 0)
        return false;
    st->hdr = d.h;
    st->h = &st->hdr;
    st->frame = payload;
    st->from = d.from;
    st->from_len = d.h.from_len;
    st->from_bare_len = d.h.from_bare_len;
    st->to = d.to;
    st->to_len = d.h.to_len;
    st->to_bare_len = d.h.to_bare_len;
    st->raw = d.raw;
    st->raw_len = d.h.stanza_len;
    st->head_len = d.h.head_len;
    return true;
}

/* A stanza from a front end: its sender's step, once the sender's state is here. */
static void from_sender(struct shard *s, uint16_t kind, const void *payload, uint32_t len,
                        const struct stanza *st)
{
    struct user *u = user_find(&s->users, st->h->key, st->from, st->from_bare_len);
    if (!u || !session_by_conn(u, st->h->conn)) {
        /* Its session ended meanwhile; or, in a cluster, its home just moved here and
         * the session is on its way (node.c): the sender hears so and may try again. */
        if (s->cl)
            out_error(s, st, "wait", "remote-server-timeout");
        return;
    }
    if (!load_ready(s, u, kind, payload, len))
        return;
    route_outbound(s, st);
}

void shard_frame(struct shard *s, uint16_t kind, const void *payload, uint32_t len)
{
    struct stanza st;
    struct decode_session d;

    unsigned dst;
    switch (kind) {
    case PROTO_STANZA:
        if (!stanza_parse(payload, len, &st))
            break;
        if ((dst = shard_of(s, st.h->key)) == s->idx) {
            /* A remote sender has no state here: only the recipient's step (its key is
             * the recipient's). */
            if (st.h->flags & PROTO_STANZA_REMOTE)
                route_remote(s, &st);
            else
                from_sender(s, kind, payload, len, &st);
            return;
        }
        if (s->cl) { /* its home is on another node, or moved */
            node_relay(s, dst, st.h->key, kind, payload, len);
            return;
        }
        break;
    case PROTO_BIND:
    case PROTO_UNBIND:
        /* The frame is the shard's own copy (drain_fe()): checked once, read in place. */
        if (decode_session(payload, len, &d) < 0)
            break;
        if ((dst = shard_of(s, d.h.key)) != s->idx) {
            if (s->cl) {
                node_relay(s, dst, d.h.key, kind, payload, len);
                return;
            }
            break;
        }
        if (kind == PROTO_BIND)
            route_bind(s, payload, d.jid, d.presence);
        else
            route_unbind(s, payload, d.jid);
        return;
    case PROTO_REMOTE_ACK:
        rlog_ack(s, payload, len);
        return;
    case PROTO_SM_ENABLE:
    case PROTO_SM_RESUME:
    case PROTO_SM_HANDOFF:
    case PROTO_SM_ORPHAN:
        /* The shard's own copy (drain_fe()): sm.c may mark it. */
        if (sm_frame(s, kind, (void *)payload, len))
            return;
        break;
    case RK_INBOUND:
        if (stanza_parse(payload, len, &st)) {
            /* Sent to the home the sender's shard saw; a membership change may have moved
             * it since. */
            if (s->cl && (dst = shard_of(s, st.h->to_key)) != s->idx)
                node_relay(s, dst, st.h->to_key, kind, payload, len);
            else
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

/* What a front end may send: frames of its own connections, of the kinds it sends. */
static bool from_front_end(struct shard *s, int fe, uint16_t kind, void *p, uint32_t len)
{
    uint64_t conn;
    if (!proto_kind_from_fe(kind)) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d sent a frame of kind %u", s->idx, fe, kind);
        return false;
    }
    /* conn comes first in every payload a front end sends. */
    if (len < sizeof conn)
        return true; /* too short for anything: shard_frame() says so */
    memcpy(&conn, p, sizeof conn);
    if (shard_fe(s, conn) != (unsigned)fe) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d spoke for another thread's connection",
               s->idx, fe);
        return false;
    }
    bool s2s = PROTO_CONN_FE(conn) == PROTO_FE_S2S;
    if (s2s ? kind != PROTO_STANZA && kind != PROTO_REMOTE_ACK : kind == PROTO_REMOTE_ACK) {
        LOG_RL(LOG_LEVEL_ERROR, "shard %u: thread %d sent a frame of kind %u", s->idx, fe, kind);
        return false;
    }
    /* Our node's index in the id: replies find this node from any other. */
    if (kind != PROTO_REMOTE_ACK) {
        conn = (conn & ~PROTO_CONN_NODE_MASK) | s->node_bits;
        memcpy(p, &conn, sizeof conn);
    }
    /* Only the router makes stanzas that are never answered with errors; a stanza from
     * s2s is a remote server's, and one from c2s never is. */
    if (kind == PROTO_STANZA && len >= sizeof(struct proto_stanza)) {
        struct proto_stanza *h = p;
        h->flags &= (uint8_t)~(ROUTE_GENERATED | PROTO_STANZA_REMOTE);
        if (s2s)
            h->flags |= PROTO_STANZA_REMOTE;
    }
    return true;
}

/* The ring is corrupt: left alone until reset; a front end's process is replaced. */
static void ring_broken(struct shard *s, bool *broken, int fe)
{
    LOG_ERROR("shard %u: ring from %s %d is corrupt", s->idx, fe >= 0 ? "thread" : "shard", fe);
    *broken = true;
    if (fe >= 0) /* the supervisor replaces the front end, and we reset */
        ctl_tell(router_ctl_fd, CTL_PEER_BROKEN,
                 (unsigned)fe < topo_threads(s->cfg) ? CTL_ROLE_C2S : CTL_ROLE_S2S);
}

/* The shard's own copy of a message from shared memory (the front end could still write
 * there: what is checked must not change under us); reassembled ones are ours already. */
static void *own_copy(struct shard *s, const struct ring_frame *f, const struct port_rx *rx)
{
    if (f->payload == rx->buf)
        return (void *)f->payload;
    if (f->len > s->in_cap) {
        void *b = realloc(s->in, f->len);
        if (!b)
            return NULL;
        s->in = b;
        s->in_cap = f->len;
    }
    return memcpy(s->in, f->payload, f->len);
}

/* A bounded batch from a front end's ring, handled under the batch's ticket; the ring
 * keeps the frames until the ticket is done (ticket.h). */
static unsigned drain_fe(struct shard *s, unsigned fe)
{
    struct ring *r = &s->from_fe[fe];
    struct port_rx *rx = &s->rx_fe[fe];
    struct ticket *t = NULL;
    struct ring_frame f;
    unsigned n = 0;
    int rc = 0;
    if (s->broken[fe])
        return 0;
    uint64_t from = ring_consumed(r);
    while (n < BATCH && (rc = port_recv(r, rx, &f)) == 1) {
        if (!n++)
            s->cur = t = ticket_new(s);
        s->stats.frames_in++;
        void *p = own_copy(s, &f, rx);
        if (!p)
            LOG_RL(LOG_LEVEL_ERROR, "shard %u: out of memory: a frame is lost", s->idx);
        else if (from_front_end(s, (int)fe, f.kind, p, f.len))
            shard_frame(s, f.kind, p, f.len);
    }
    s->cur = NULL;
    /* Pieces of a message under way are copied out: they go back with the rest (a
     * message larger than the ring needs the room; c2s never replays pieces). */
    if (ring_consumed(r) != from)
        ticket_batch_end(s, fe, t, ring_consumed(r));
    if (rc < 0)
        ring_broken(s, &s->broken[fe], (int)fe);
    return n;
}

unsigned shard_drain_shards(struct shard *s)
{
    unsigned total = 0;
    for (unsigned j = 0; j < s->nshards; j++) {
        if (j == s->idx)
            continue;
        struct ring *r = &s->from_shard[j];
        struct ring_frame f;
        unsigned n = 0;
        int rc = 0;
        while (n < BATCH && (rc = port_recv(r, &s->rx_shard[j], &f)) == 1) {
            n++;
            s->stats.frames_in++;
            struct ticket *t;
            if (f.len < sizeof t) {
                LOG_RL(LOG_LEVEL_ERROR, "shard %u: a frame without its envelope", s->idx);
                continue;
            }
            /* The envelope: the ticket of the work this frame carries on (out_to_shard()). */
            memcpy(&t, f.payload, sizeof t);
            s->cur = t;
            shard_frame(s, f.kind, (const char *)f.payload + sizeof t, f.len - (uint32_t)sizeof t);
            s->cur = NULL;
            ticket_defer(s, t);
        }
        if (ring_release(r)) /* pieces read too: they may be what makes room for the rest */
            bell_ring(r->peer);
        if (rc < 0) {
            bool never = false;
            ring_broken(s, &never, -1);
        }
        total += n;
    }
    return total;
}

static unsigned drain(struct shard *s)
{
    unsigned total = shard_drain_shards(s);
    if (s->cl)
        total += node_drain(s);
    for (unsigned fe = 0; fe < s->nfe; fe++)
        total += drain_fe(s, fe);
    return total;
}

static size_t backlog_total(const struct shard *s)
{
    size_t b = 0;
    for (unsigned fe = 0; fe < s->nfe; fe++)
        b += s->backlog[fe].bytes;
    for (unsigned t = 0; t < s->nshards; t++)
        b += s->shard_backlog[t].bytes;
    return b + s->link_backlog.bytes;
}

static bool inbound_pending(struct shard *s)
{
    if (s->cl && (!ring_empty(&s->from_link) || cluster_view(s->cl) != s->view))
        return true;
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
    /* The rings of that front end's threads (shm/topo.h: c2s first, then s2s). */
    unsigned from = role == CTL_ROLE_S2S ? topo_threads(s->cfg) : 0;
    unsigned to = role == CTL_ROLE_S2S ? s->nfe : topo_threads(s->cfg);
    for (unsigned fe = from; fe < to && fe < s->nfe; fe++) {
        backlog_clear(&s->backlog[fe]);
        s->dirty[fe] = false;
        ring_reset(&s->from_fe[fe]);
        ring_reset(&s->to_fe[fe]);
        port_rx_reset(&s->rx_fe[fe]);
        ticket_queue_drop(s, &s->held[fe]);
        s->broken[fe] = false;
        if (role == CTL_ROLE_S2S)
            rlog_replay(s, fe);
    }
    if (role != CTL_ROLE_C2S)
        return; /* sessions are c2s's alone */
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
    if (s->cl) {
        ring_trim(&s->to_link);
        done &= ring_trimmed(&s->to_link);
    }
    return done;
}

static void sleep_until_work(struct shard *s)
{
    if (s->cl)
        node_publish(s);
    bell_prepare_sleep(&s->bell);
    if ((backlog_total(s) < BACKLOG_MAX && inbound_pending(s)) || store_client_ready(s->store) ||
        ticket_pending(s) ||
        atomic_load_explicit(&s->ctl, memory_order_acquire) != ROUTER_CTL_NONE) {
        bell_cancel_sleep(&s->bell);
        return;
    }
    /* Frames, store answers, control requests and the trim tick all ring the bell: one
     * blocking read, the only system call of a wake-up besides the bells the shard rings
     * (a timed wait would add a poll to every one). */
    atomic_store_explicit(&s->trim_wanted, s->trim_wakes > 0, memory_order_relaxed);
    bell_wait(&s->bell, -1);
}

void shard_trim_tick(struct shard *s)
{
    /* Only a sleeping shard is rung (claiming its bell): a busy one trims nothing. */
    if (atomic_load_explicit(&s->trim_wanted, memory_order_relaxed) && bell_claim(&s->bell))
        bell_ring(&s->bell);
}

/* A message the shard produced left a backlog for its ring: what it covers is out. */
static void on_moved(void *arg, void *tag)
{
    ticket_defer(arg, tag);
}

/* Store requests carry the ticket of the work that made them: their callbacks carry
 * that work on, and the ticket is done only after them. */
static void *tag_take(void *arg)
{
    return ticket_hold(((struct shard *)arg)->cur);
}

static void tag_enter(void *arg, void *tag)
{
    ((struct shard *)arg)->cur = tag;
}

static void tag_leave(void *arg, void *tag)
{
    struct shard *s = arg;
    s->cur = NULL;
    ticket_defer(s, tag);
}

static const struct store_tag_ops tag_ops = {tag_take, tag_enter, tag_leave};

int shard_init(struct shard *s)
{
    s->rx_fe = calloc(s->nfe, sizeof *s->rx_fe);
    s->held = calloc(s->nfe, sizeof *s->held);
    s->rx_shard = calloc(s->nshards, sizeof *s->rx_shard);
    if (!s->rx_fe || !s->held || !s->rx_shard || rlog_init(s) < 0)
        return -ENOMEM;
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        s->rx_fe[fe].max = TOPO_MAX_MESSAGE;
        s->backlog[fe].moved = on_moved;
        s->backlog[fe].moved_arg = s;
    }
    for (unsigned j = 0; j < s->nshards; j++) {
        s->rx_shard[j].max = TOPO_MAX_MESSAGE;
        s->shard_backlog[j].moved = on_moved;
        s->shard_backlog[j].moved_arg = s;
    }
    s->rx_link.max = TOPO_MAX_MESSAGE + (uint32_t)sizeof(struct link_hdr);
    s->link_backlog.moved = on_moved;
    s->link_backlog.moved_arg = s;
    if (s->store)
        store_client_tags(s->store, &tag_ops, s);
    users_init(&s->users);
    s->users.shard = s;
    arena_init(&s->arena, 16384);
    if (!s->users.buckets)
        return -ENOMEM;
    return mod_shard_init(s);
}

void shard_free(struct shard *s)
{
    users_free(&s->users);
    mod_shard_free(s);
    rlog_free(s);
    store_client_free(s->store);
    s->store = NULL;
    arena_free(&s->arena);
    for (unsigned fe = 0; s->rx_fe && fe < s->nfe; fe++) {
        port_rx_free(&s->rx_fe[fe]);
        ticket_queue_drop(s, &s->held[fe]);
    }
    for (unsigned j = 0; s->rx_shard && j < s->nshards; j++)
        port_rx_free(&s->rx_shard[j]);
    port_rx_free(&s->rx_link);
    backlog_clear(&s->link_backlog);
    ticket_state_free(&s->tickets);
    free(s->rx_fe);
    free(s->held);
    free(s->rx_shard);
    free(s->in);
    free(s->targets);
    s->rx_fe = s->rx_shard = NULL;
    s->held = NULL;
    s->in = NULL;
    s->targets = NULL;
}

void shard_unlink(struct shard *shards, unsigned nshards)
{
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &shards[i];
        for (unsigned j = 0; s->to_shard && j < nshards; j++) {
            if (j != i)
                free(s->to_shard[j].sh); /* the producer's end frees the ring's memory */
            if (s->shard_backlog)
                backlog_clear(&s->shard_backlog[j]);
        }
        free(s->to_shard);
        free(s->from_shard);
        free(s->shard_dirty);
        free(s->shard_backlog);
        s->to_shard = s->from_shard = NULL;
        s->shard_dirty = NULL;
        s->shard_backlog = NULL;
    }
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
    if (n->deliveries == last->deliveries && n->fanout_contacts == last->fanout_contacts &&
        n->remote_fanout_contacts == last->remote_fanout_contacts)
        return;
    LOG_INFO("delivered to %" PRIu64 " recipients in %" PRIu64 " frames (%" PRIu64
             " saved); presence fan-out: %" PRIu64 " contacts in %" PRIu64 " frames to other "
             "shards, %" PRIu64 " remote contacts in %" PRIu64 " frames to s2s; frames in %" PRIu64
             ", out %" PRIu64,
             n->deliveries, n->deliver_frames, n->deliveries - n->deliver_frames,
             n->fanout_contacts, n->fanout_frames, n->remote_fanout_contacts,
             n->remote_fanout_frames, n->frames_in, n->frames_out);
    *last = *n;
}

/* The counters into the shard's slot for /metrics: a store each, after work. */
static void publish_stats(struct shard *s)
{
    const struct shard_stats *n = &s->stats;
    if (!s->slot)
        return;
    stats_set(s->slot, STAT_SHARD_FRAMES_IN, n->frames_in);
    stats_set(s->slot, STAT_SHARD_FRAMES_OUT, n->frames_out);
    stats_set(s->slot, STAT_SHARD_DELIVERIES, n->deliveries);
    stats_set(s->slot, STAT_SHARD_DELIVER_FRAMES, n->deliver_frames);
    stats_set(s->slot, STAT_SHARD_FANOUT_FRAMES, n->fanout_frames);
    stats_set(s->slot, STAT_SHARD_FANOUT_CONTACTS, n->fanout_contacts);
    stats_set(s->slot, STAT_SHARD_REMOTE_FANOUT_FRAMES, n->remote_fanout_frames);
    stats_set(s->slot, STAT_SHARD_REMOTE_FANOUT_CONTACTS, n->remote_fanout_contacts);
    stats_set(s->slot, STAT_SHARD_REMOTE_FORGOTTEN, n->remote_forgotten);
    stats_set(s->slot, STAT_SHARD_BACKLOG, backlog_total(s));
    stats_set(s->slot, STAT_MUC_MESSAGES, n->muc_messages);
    stats_set(s->slot, STAT_MUC_DELIVERIES, n->muc_deliveries);
    stats_set(s->slot, STAT_MUC_DELIVER_FRAMES, n->muc_deliver_frames);
    if (!s->cl)
        return;
    stats_set(s->slot, STAT_CLUSTER_FANOUT_FRAMES, n->link_fanout_frames);
    stats_set(s->slot, STAT_CLUSTER_FANOUT_CONTACTS, n->link_fanout_contacts);
    stats_set(s->slot, STAT_CLUSTER_DELIVER_FRAMES, n->link_deliver_frames);
    stats_set(s->slot, STAT_CLUSTER_DELIVERIES, n->link_deliveries);
    stats_set(s->slot, STAT_CLUSTER_BYTES_SAVED, n->link_bytes_saved);
    stats_set(s->slot, STAT_CLUSTER_FORWARDED, n->link_forwarded);
    stats_set(s->slot, STAT_CLUSTER_BOUNCED, n->link_bounced);
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
unsigned shard_step(struct shard *s)
{
    if (s->cl)
        node_view_check(s);
    unsigned n = store_poll(s->store) > 0;
    n += backlog_total(s) < BACKLOG_MAX ? drain(s) : 0;
    out_flush(s);
    ticket_settle(s);
    return n;
}

static void finish(struct shard *s)
{
    for (int quiet = 0; quiet < 3;) {
        /* Unlike shard_step(), whatever the backlogs hold: the front ends are gone. */
        unsigned n = store_poll(s->store) > 0;
        n += drain(s);
        out_flush(s);
        ticket_settle(s);
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
        if (shard_step(s) || s->retry_out) {
            publish_stats(s);
            s->retry_out = false;
            s->trim_wakes = TRIM_WAKES;
            continue;
        }
        if (s->trim_wakes && atomic_load_explicit(&s->trim_wanted, memory_order_relaxed)) {
            /* Woken with nothing to do, after a sleep begun with trims due: a tick. */
            atomic_store_explicit(&s->trim_wanted, false, memory_order_relaxed);
            s->trim_wakes = trim_out(s) ? 0 : s->trim_wakes - 1;
        }
        sleep_until_work(s);
    }
    log_stats(s, &logged);
    shard_free(s);
    return NULL;
}
