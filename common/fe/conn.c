/*
 * conn.c: a front-end thread's pool of connections and their output.
 *
 * Each thread has room for its share of the front end's connection limit, allocated
 * FE_CONN_CHUNK slots at a time as they are first used: a node holding few connections
 * keeps few slots in memory. A chunk never moves or goes away (the thread's lists point
 * into it), and a freed slot is the first reused. A connection's id is (front end,
 * thread, slot, generation), so anything addressed to a slot reused since is recognised;
 * fe_conn_by_id() is two array lookups.
 *
 * Output is double-buffered: `out` is what the kernel may be reading for an in-flight
 * send and is never reallocated meanwhile; new bytes gather in `next` and go out in one
 * send when the previous one completes.
 */
#include "common/fe/fe.h"
#include "common/auth/tls.h"
#include "common/core/log.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A peer that does not read its stream gets this much queued, then is dropped. */
#define OUT_MAX (8u << 20)

int fe_pool_init(struct fe_thread *t, uint32_t max)
{
    t->nconns = max;
    t->nslots = t->live = 0;
    t->free = NULL;
    /* One pointer per chunk: 3 KiB for 100,000 slots. */
    t->chunks = calloc((max + FE_CONN_CHUNK - 1) / FE_CONN_CHUNK, sizeof *t->chunks);
    return t->chunks ? 0 : -ENOMEM;
}

void fe_pool_free(struct fe_thread *t)
{
    for (uint32_t i = 0; t->chunks && i < (t->nconns + FE_CONN_CHUNK - 1) / FE_CONN_CHUNK; i++)
        free(t->chunks[i]);
    free(t->chunks);
    t->chunks = NULL;
}

/* A slot never used: the next one, in a chunk allocated when it starts one. Its pages
 * are touched only as its slots are used. */
static struct fe_conn *fresh_slot(struct fe_thread *t)
{
    uint32_t slot = t->nslots;
    if (slot == t->nconns)
        return NULL;
    char **chunk = &t->chunks[slot / FE_CONN_CHUNK];
    if (!*chunk && !(*chunk = malloc(FE_CONN_CHUNK * t->ops->conn_size)))
        return NULL;
    t->nslots++;
    struct fe_conn *c = fe_slot(t, slot);
    c->slot = slot;
    c->gen = 0;
    return c;
}

struct fe_conn *fe_conn_new(struct fe_thread *t, int fd, bool direct_tls)
{
    struct fe_conn *c = t->free;
    if (c)
        t->free = c->next_free;
    else if (!(c = fresh_slot(t)))
        return NULL;
    uint32_t slot = c->slot, gen = c->gen;
    memset(c, 0, t->ops->conn_size);
    c->t = t;
    c->slot = slot;
    c->gen = gen;
    c->fd = fd;
    c->last_rx = c->last_tx = t->now;
    if (direct_tls)
        c->flags |= FE_F_DIRECT;
    t->live++;
    return c;
}

uint64_t fe_conn_id(const struct fe_conn *c)
{
    return proto_conn_id(c->t->fe, c->t->idx, c->slot, c->gen);
}

struct fe_conn *fe_conn_by_id(struct fe_thread *t, uint64_t id)
{
    struct fe_conn *c = fe_slot(t, PROTO_CONN_SLOT(id));
    if (!c || c->state == FE_FREE || (c->gen & 0xFFFFFFu) != PROTO_CONN_GEN(id) ||
        PROTO_CONN_FE(id) != t->fe)
        return NULL;
    return c;
}

/* Ciphertext from TLS, and plaintext when there is no TLS, land here. */
static int queue(void *ud, const void *p, size_t n)
{
    struct fe_conn *c = ud;
    struct buf *b = (c->ops & FE_OP_SEND) ? &c->next : &c->out;
    if (buf_used(&c->out) + buf_used(&c->next) + n > OUT_MAX) {
        LOG_RL(LOG_LEVEL_WARN, "conn %u: the peer does not read, %u bytes queued: dropped",
               c->slot, buf_used(&c->out) + buf_used(&c->next));
        buf_free(&c->next);
        if (!(c->ops & FE_OP_SEND))
            buf_free(&c->out);
        fe_close(c);
        return -ENOBUFS;
    }
    return buf_append(b, p, n);
}

void fe_write(struct fe_conn *c, const char *p, size_t n)
{
    if (c->ws)
        fe_ws_write(c, p, n);
    else
        fe_write_wire(c, p, n);
}

void fe_write_wire(struct fe_conn *c, const char *p, size_t n)
{
    if (c->state == FE_FREE || (c->flags & FE_F_DEAD))
        return;
    int err = c->tls && (c->flags & FE_F_TLS) ? tls_write(c->tls, p, n) : queue(c, p, n);
    if (err < 0) {
        c->flags |= FE_F_DEAD;
        fe_close(c);
        return;
    }
    c->last_tx = c->t->now;
    fe_want_send(c);
}

void fe_puts(struct fe_conn *c, const char *s)
{
    fe_write(c, s, strlen(s));
}

int fe_start_tls(struct fe_conn *c)
{
    c->tls = tls_new(c->t->tls, NULL, queue, c);
    return c->tls ? 0 : -ENOMEM;
}

int fe_start_tls_client(struct fe_conn *c, struct tls_ctx *ctx, const char *sni)
{
    c->tls = tls_new(ctx, sni, queue, c);
    if (!c->tls)
        return -ENOMEM;
    int err = tls_handshake(c->tls);
    if (err < 0 && err != -EAGAIN)
        return err;
    fe_want_send(c);
    return 0;
}

void fe_paused_add(struct fe_conn **list, struct fe_conn *c)
{
    c->next_paused = *list;
    if (*list)
        (*list)->pprev_paused = &c->next_paused;
    c->pprev_paused = list;
    *list = c;
}

void fe_paused_del(struct fe_conn *c)
{
    *c->pprev_paused = c->next_paused;
    if (c->next_paused)
        c->next_paused->pprev_paused = c->pprev_paused;
    c->next_paused = NULL;
    c->pprev_paused = NULL;
}

void fe_close(struct fe_conn *c)
{
    if (c->state == FE_CLOSING || c->state == FE_FREE)
        return;
    c->t->ops->closing(c);
    /* Off the paused list before the slot can be reused. */
    if (c->flags & FE_F_PAUSED)
        fe_paused_del(c);
    c->flags &= (uint16_t) ~(FE_F_PAUSED | FE_F_WAIT);
    c->state = FE_CLOSING;
    /* Give a slow reader a few seconds to take our last words. */
    c->deadline = c->t->now + 5;
    if (c->ws)
        fe_ws_close(c);
    if (c->tls && (c->flags & FE_F_TLS))
        tls_close_notify(c->tls);
    fe_cancel_recv(c);
    fe_cancel_connect(c);
    fe_kick_send(c);
}

static void release(struct fe_conn *c)
{
    struct fe_thread *t = c->t;
    if (c->flags & FE_F_SEND_Q) {
        /* A dead socket's output was dropped while it waited to be sent: off the list
         * before the slot can be reused. */
        struct fe_conn **pp = &t->to_send;
        while (*pp && *pp != c)
            pp = &(*pp)->next_send;
        if (*pp)
            *pp = c->next_send;
    }
    t->ops->release(c);
    close(c->fd);
    xml_free(&c->xp);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->next);
    buf_free(&c->held);
    tls_free(c->tls);
    c->tls = NULL;
    fe_ws_free(c);
    c->state = FE_FREE;
    c->gen = (c->gen + 1) & 0xFFFFFFu;
    c->next_free = t->free;
    t->free = c;
    t->live--;
}

void fe_maybe_release(struct fe_conn *c)
{
    if (c->state == FE_CLOSING && !c->ops && (!buf_used(&c->out) || (c->flags & FE_F_DEAD)) &&
        !buf_used(&c->next))
        release(c);
}

void fe_trim(struct fe_conn *c)
{
    if (c->state == FE_FREE)
        return;
    xml_trim(&c->xp);
    buf_trim(&c->in);
    fe_ws_trim(c);
    if (!(c->ops & FE_OP_SEND))
        buf_trim(&c->out);
    buf_trim(&c->next);
}
