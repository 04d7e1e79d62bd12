/*
 * rlog.c: what a shard handed to s2s and has not heard back of.
 *
 * s2s copies a stanza for a remote domain out of its ring and may keep it for seconds
 * (while the domain's stream is made), so a ring's release says nothing about whether the
 * stanza went anywhere. Each REMOTE and REMOTE_FANOUT frame therefore carries a sequence
 * number of the shard (struct proto_remote_env), and the shard keeps a copy of it until
 * s2s acknowledges it (PROTO_REMOTE_ACK: on the wire, returned to its sender, or given
 * up). When s2s dies, every copy not acknowledged goes, in order, into the reset ring for
 * its replacement: a stanza handed to s2s is delivered or bounced (once, or twice if
 * s2s died between writing it and saying so), never lost with the process.
 *
 * One log per s2s thread: a circular array in sequence order, so an acknowledgement is
 * an index (seq - base) and the oldest entries go as soon as they are done. Its bytes are
 * bounded (router.max_remote_unacked); past it the oldest copy is forgotten (the stanza
 * is still with s2s; only a crash of s2s could lose it then), said in the log.
 */
#include "router/router.h"
#include "common/core/log.h"
#include "shm/decode.h"
#include "shm/proto.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct rlog_ent {
    char *p; /* the payload, after the envelope; NULL once acknowledged */
    uint32_t len;
    uint16_t kind;
};

struct rlog {
    struct rlog_ent *v;
    uint32_t head, n, cap;
    uint64_t base; /* seq of v[head] */
    uint64_t bytes;
};

static struct rlog_ent *at(struct rlog *l, uint32_t i)
{
    return &l->v[(l->head + i) % l->cap];
}

int rlog_init(struct shard *s)
{
    s->rlog = calloc(s->nfe, sizeof *s->rlog);
    if (!s->rlog)
        return -1;
    uint32_t epoch = 0;
    if (getrandom(&epoch, sizeof epoch, 0) != (ssize_t)sizeof epoch)
        epoch = (uint32_t)(uintptr_t)s->rlog;
    /* A new router's numbers never meet an old one's still on their way back. */
    for (unsigned fe = 0; fe < s->nfe; fe++)
        s->rlog[fe].base = (uint64_t)epoch << 32;
    return 0;
}

void rlog_free(struct shard *s)
{
    for (unsigned fe = 0; s->rlog && fe < s->nfe; fe++) {
        struct rlog *l = &s->rlog[fe];
        for (uint32_t i = 0; i < l->n; i++)
            free(at(l, i)->p);
        free(l->v);
    }
    free(s->rlog);
    s->rlog = NULL;
}

/* Acknowledged entries at the front go. */
static void pop_done(struct rlog *l)
{
    while (l->n && !at(l, 0)->p) {
        l->head = (l->head + 1) % l->cap;
        l->n--;
        l->base++;
    }
}

static void send_entry(struct shard *s, unsigned fe, uint64_t seq, const struct rlog_ent *e)
{
    struct proto_remote_env env = {.seq = seq, .shard = s->idx};
    out_fe_frame(s, fe, e->kind, &env, sizeof env, e->p, e->len);
}

void rlog_send(struct shard *s, unsigned fe, uint16_t kind, char *payload, uint32_t len)
{
    struct rlog *l = &s->rlog[fe];
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? 2 * l->cap : 64;
        struct rlog_ent *v = malloc(cap * sizeof *v);
        if (!v) {
            struct rlog_ent e = {payload, len, kind};
            send_entry(s, fe, l->base + l->n, &e); /* sent all the same, without a copy */
            free(payload);
            return;
        }
        for (uint32_t i = 0; i < l->n; i++)
            v[i] = *at(l, i);
        free(l->v);
        l->v = v;
        l->head = 0;
        l->cap = cap;
    }
    struct rlog_ent *e = at(l, l->n++);
    *e = (struct rlog_ent){payload, len, kind};
    l->bytes += len;
    send_entry(s, fe, l->base + l->n - 1, e);
    while (l->bytes > s->cfg->router.max_remote_unacked && l->n > 1) {
        struct rlog_ent *old = at(l, 0);
        if (old->p) {
            l->bytes -= old->len;
            free(old->p);
            old->p = NULL;
            s->stats.remote_forgotten++;
            LOG_RL(LOG_LEVEL_WARN, "shard %u: s2s is slow to answer: a copy of a stanza for it is "
                   "forgotten (router.max_remote_unacked)", s->idx);
        }
        pop_done(l);
    }
}

void rlog_ack(struct shard *s, const void *frame, uint32_t len)
{
    struct decode_remote_ack d;
    if (decode_remote_ack(frame, len, &d) < 0)
        return;
    unsigned fe = shard_fe(s, d.h.conn);
    if (fe >= s->nfe)
        return;
    struct rlog *l = &s->rlog[fe];
    for (uint32_t i = 0; i < d.h.n; i++) {
        uint64_t k = decode_remote_ack_at(&d, i) - l->base;
        if (k >= l->n)
            continue; /* forgotten already, or an old router's */
        struct rlog_ent *e = at(l, (uint32_t)k);
        if (e->p) {
            l->bytes -= e->len;
            free(e->p);
            e->p = NULL;
        }
    }
    pop_done(l);
}

void rlog_replay(struct shard *s, unsigned fe)
{
    struct rlog *l = &s->rlog[fe];
    uint32_t again = 0;
    for (uint32_t i = 0; i < l->n; i++)
        if (at(l, i)->p) {
            send_entry(s, fe, l->base + i, at(l, i));
            again++;
        }
    if (again)
        LOG_INFO("shard %u: %u stanzas s2s had not finished go to its replacement", s->idx, again);
}
