/*
 * conn.c: the per-thread pool of connections and their output.
 *
 * Each thread has room for c2s.max_connections / threads slots, allocated CONN_CHUNK at a
 * time as they are first used: a node holding few clients keeps few slots in memory. A
 * chunk never moves or goes away (the thread's lists point into it), and a freed slot is
 * the first reused. A connection's id is (thread, slot, generation), so anything
 * addressed to a slot reused since is recognised; conn_by_id() is two array lookups.
 *
 * Output is double-buffered: `out` is what the kernel may be reading for an in-flight
 * send and is never reallocated meanwhile; new bytes gather in `next` and go out in one
 * send when the previous one completes.
 */
#include "c2s/c2s.h"
#include "c2s/limit.h"
#include "common/core/log.h"
#include "common/auth/sasl.h"
#include "common/auth/tls.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A client that does not read its stream gets this much queued, then is dropped. */
#define OUT_MAX (8u << 20)

int conn_pool_init(struct c2s_thread *t, uint32_t max)
{
    t->nconns = max;
    t->nslots = t->live = 0;
    t->free = NULL;
    /* One pointer per chunk: 3 KiB for 100,000 slots. */
    t->chunks = calloc((max + CONN_CHUNK - 1) / CONN_CHUNK, sizeof *t->chunks);
    return t->chunks ? 0 : -ENOMEM;
}

/* A slot never used: the next one, in a chunk allocated when it starts one. Its pages
 * are touched only as its slots are used. */
static struct conn *fresh_slot(struct c2s_thread *t)
{
    uint32_t slot = t->nslots;
    if (slot == t->nconns)
        return NULL;
    struct conn **chunk = &t->chunks[slot / CONN_CHUNK];
    if (!*chunk && !(*chunk = malloc(CONN_CHUNK * sizeof **chunk)))
        return NULL;
    t->nslots++;
    struct conn *c = &(*chunk)[slot % CONN_CHUNK];
    c->slot = slot;
    c->gen = 0;
    return c;
}

struct conn *conn_new(struct c2s_thread *t, int fd, bool direct_tls)
{
    struct conn *c = t->free;
    if (c)
        t->free = c->next_free;
    else if (!(c = fresh_slot(t)))
        return NULL;
    uint32_t slot = c->slot, gen = c->gen;
    memset(c, 0, sizeof *c);
    c->t = t;
    c->slot = slot;
    c->gen = gen;
    c->fd = fd;
    c->last_rx = c->last_tx = t->now;
    if (direct_tls)
        c->flags |= CONN_F_DIRECT;
    t->live++;
    stream_start(c);
    return c;
}

uint64_t conn_id(const struct conn *c)
{
    return proto_conn_id(PROTO_FE_C2S, c->t->idx, c->slot, c->gen);
}

struct conn *conn_by_id(struct c2s_thread *t, uint64_t id)
{
    struct conn *c = conn_slot(t, PROTO_CONN_SLOT(id));
    if (!c || c->state == CONN_FREE || (c->gen & 0xFFFFFFu) != PROTO_CONN_GEN(id))
        return NULL;
    return c;
}

/* Ciphertext from TLS, and plaintext when there is no TLS, land here. */
static int queue(void *ud, const void *p, size_t n)
{
    struct conn *c = ud;
    struct buf *b = (c->ops & CONN_OP_SEND) ? &c->next : &c->out;
    if (buf_used(&c->out) + buf_used(&c->next) + n > OUT_MAX) {
        LOG_RL(LOG_LEVEL_WARN, "conn %u: client does not read, %u bytes queued: dropped", c->slot,
               buf_used(&c->out) + buf_used(&c->next));
        buf_free(&c->next);
        if (!(c->ops & CONN_OP_SEND))
            buf_free(&c->out);
        conn_close(c);
        return -ENOBUFS;
    }
    return buf_append(b, p, n);
}

void conn_write(struct conn *c, const char *p, size_t n)
{
    if (c->state == CONN_FREE || (c->flags & CONN_F_DEAD))
        return;
    int err = c->tls && (c->flags & CONN_F_TLS) ? tls_write(c->tls, p, n) : queue(c, p, n);
    if (err < 0) {
        c->flags |= CONN_F_DEAD;
        conn_close(c);
        return;
    }
    c->last_tx = c->t->now;
    loop_want_send(c);
}

void conn_puts(struct conn *c, const char *s)
{
    conn_write(c, s, strlen(s));
}

int conn_start_tls(struct conn *c)
{
    c->tls = tls_new(c->t->tls, NULL, queue, c);
    return c->tls ? 0 : -ENOMEM;
}

void conn_paused_add(struct conn **list, struct conn *c)
{
    c->next_paused = *list;
    if (*list)
        (*list)->pprev_paused = &c->next_paused;
    c->pprev_paused = list;
    *list = c;
}

void conn_paused_del(struct conn *c)
{
    *c->pprev_paused = c->next_paused;
    if (c->next_paused)
        c->next_paused->pprev_paused = c->pprev_paused;
    c->next_paused = NULL;
    c->pprev_paused = NULL;
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING || c->state == CONN_FREE)
        return;
    /* A bind in flight makes a session in the router whether or not its answer is
     * back: the unbind follows the bind through the same ring, so in order. */
    if ((c->flags & CONN_F_BOUND) || c->state == CONN_BINDING)
        route_unbind(c);
    /* Off the paused list before the slot can be reused. */
    if (c->flags & CONN_F_PAUSED)
        conn_paused_del(c);
    c->flags &= (uint16_t) ~(CONN_F_BOUND | CONN_F_PAUSED | CONN_F_WAIT);
    c->state = CONN_CLOSING;
    /* Give a slow reader a few seconds to take our last words. */
    c->deadline = c->t->now + 5;
    if (c->tls && (c->flags & CONN_F_TLS))
        tls_close_notify(c->tls);
    loop_cancel_recv(c);
    loop_kick_send(c);
}

void conn_release(struct conn *c)
{
    struct c2s_thread *t = c->t;
    if (c->flags & CONN_F_SEND_Q) {
        /* A dead socket's output was dropped while it waited to be sent: off the list
         * before the slot can be reused. */
        struct conn **pp = &t->to_send;
        while (*pp && *pp != c)
            pp = &(*pp)->next_send;
        if (*pp)
            *pp = c->next_send;
    }
    close(c->fd);
    limit_conn_close(c->peer_hash);
    xml_free(&c->xp);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->next);
    buf_free(&c->held);
    free(c->presence);
    free(c->directed);
    c->directed_len = 0;
    c->router_flags = 0;
    tls_free(c->tls);
    if (c->sasl)
        sasl_wipe(c->sasl);
    free(c->sasl);
    free(c->user);
    free(c->jid);
    free(c->from_attr);
    free(c->iq_id);
    c->tls = NULL;
    c->sasl = NULL;
    c->user = c->jid = c->from_attr = c->iq_id = c->presence = c->directed = NULL;
    c->state = CONN_FREE;
    c->gen = (c->gen + 1) & 0xFFFFFFu;
    c->next_free = t->free;
    t->free = c;
    t->live--;
}

void conn_trim(struct conn *c)
{
    if (c->state == CONN_FREE)
        return;
    xml_trim(&c->xp);
    buf_trim(&c->in);
    if (!(c->ops & CONN_OP_SEND))
        buf_trim(&c->out);
    buf_trim(&c->next);
}
