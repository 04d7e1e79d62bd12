/*
 * shard.c: one shard worker's loop. Drain every inbound ring in bounded batches, route
 * each frame, publish what was produced, and sleep on the shard's bell when there is
 * nothing to do (after the doorbell handshake of bell.h). While the frames waiting for
 * a full outbound ring exceed BACKLOG_MAX, inbound rings are left alone: the front ends
 * then find their rings full and stop reading their clients.
 */
#include "router/router.h"
#include "common/ctl.h"
#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH       256
#define BACKLOG_MAX (8u << 20)

/* Validates a STANZA frame's lengths against the frame and locates its strings. */
static bool parse_stanza(const struct ring_frame *f, struct stanza *st)
{
    if (f->len < sizeof(struct proto_stanza))
        return false;
    const struct proto_stanza *h = f->payload;
    uint64_t need = sizeof *h + (uint64_t)h->from_len + h->to_len + h->stanza_len;
    if (need > f->len || h->from_bare_len >= h->from_len || h->to_bare_len > h->to_len ||
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

static bool parse_session(const struct ring_frame *f, const struct proto_session **b,
                          const char **jid, const char **presence)
{
    if (f->len < sizeof(struct proto_session))
        return false;
    const struct proto_session *s = f->payload;
    if (sizeof *s + (uint64_t)s->jid_len + s->presence_len > f->len || s->bare_len >= s->jid_len)
        return false;
    *b = s;
    *jid = (const char *)(s + 1);
    *presence = *jid + s->jid_len;
    return true;
}

static void on_frame(struct shard *s, unsigned fe, const struct ring_frame *f)
{
    s->frames_in++;
    if (f->kind == PROTO_STANZA) {
        struct stanza st;
        if (parse_stanza(f, &st) && st.h->key % s->cfg->router.shards == s->idx &&
            PROTO_CONN_THREAD(st.h->conn) == fe) {
            route_frame_stanza(s, &st);
            return;
        }
    } else if (f->kind == PROTO_BIND || f->kind == PROTO_UNBIND) {
        const struct proto_session *b;
        const char *jid, *presence;
        if (parse_session(f, &b, &jid, &presence) && PROTO_CONN_THREAD(b->conn) == fe) {
            if (f->kind == PROTO_BIND)
                route_bind(s, b, jid, presence);
            else
                route_unbind(s, b, jid);
            return;
        }
    }
    LOG_RL(LOG_LEVEL_ERROR, "shard %u: malformed frame of kind %u from thread %u", s->idx, f->kind,
           fe);
}

static unsigned drain(struct shard *s)
{
    unsigned total = 0;
    for (unsigned fe = 0; fe < s->nfe; fe++) {
        struct ring *r = &s->from_fe[fe];
        struct ring_frame f;
        unsigned n = 0;
        int rc = 0;
        if (s->broken[fe])
            continue;
        while (n < BATCH && (rc = ring_peek(r, &f)) == 1) {
            on_frame(s, fe, &f);
            ring_consume(r);
            n++;
        }
        if (n && ring_release(r))
            bell_ring(r->peer);
        if (rc < 0) {
            /* The front end is broken; the supervisor replaces it and we reset. */
            LOG_ERROR("shard %u: ring from thread %u is corrupt", s->idx, fe);
            s->broken[fe] = true;
            ctl_tell(router_ctl_fd, CTL_PEER_BROKEN, CTL_ROLE_C2S);
        }
        total += n;
    }
    return total;
}

static size_t backlog_total(const struct shard *s)
{
    size_t b = 0;
    for (unsigned fe = 0; fe < s->nfe; fe++)
        b += s->backlog[fe].bytes;
    return b;
}

static bool inbound_pending(struct shard *s)
{
    for (unsigned fe = 0; fe < s->nfe; fe++)
        if (!s->broken[fe] && !ring_empty(&s->from_fe[fe]))
            return true;
    return false;
}

/* The front end died: its sessions are gone, its rings start over (ring.h, "Reset"). */
static void front_end_down(struct shard *s, unsigned role)
{
    (void)role; /* c2s is the only front end so far */
    struct user_table *t = &s->users;
    for (size_t i = 0; t->buckets && i <= t->mask; i++) {
        struct user *u = t->buckets[i];
        while (u) {
            struct user *next = u->next;
            struct session *ss = u->sessions;
            while (ss) {
                struct session *n = ss->next;
                session_remove(u, ss);
                ss = n;
            }
            user_drop_if_empty(t, u);
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

void *shard_main(void *arg)
{
    struct shard *s = arg;
    char label[32];
    snprintf(label, sizeof label, "shard %u", s->idx);
    log_thread_set(label);
    users_init(&s->users);
    arena_init(&s->arena, 16384);

    for (;;) {
        unsigned ctl = atomic_load_explicit(&s->ctl, memory_order_acquire);
        if (ctl != ROUTER_CTL_NONE) {
            if (ctl == ROUTER_CTL_STOP)
                break;
            if (ctl == ROUTER_CTL_FE_DOWN)
                front_end_down(s, s->ctl_arg);
            else if (ctl == ROUTER_CTL_RELOAD)
                s->cfg = s->next_cfg;
            /* Pairs with main's acquire load of ctl_done. */
            atomic_store_explicit(&s->ctl, ROUTER_CTL_NONE, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->ctl_done, 1, memory_order_release);
            continue;
        }
        unsigned n = backlog_total(s) < BACKLOG_MAX ? drain(s) : 0;
        out_flush(s);
        if (n || s->retry_out) {
            s->retry_out = false;
            continue;
        }
        bell_prepare_sleep(&s->bell);
        if ((backlog_total(s) < BACKLOG_MAX && inbound_pending(s)) ||
            atomic_load_explicit(&s->ctl, memory_order_acquire) != ROUTER_CTL_NONE) {
            bell_cancel_sleep(&s->bell);
            continue;
        }
        bell_wait(&s->bell, 1000);
    }
    users_free(&s->users);
    arena_free(&s->arena);
    return NULL;
}
