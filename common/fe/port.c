/*
 * port.c: a front-end thread's end of the rings to the router's shards. Outbound, a
 * frame is written once, into the ring of its shard; when that ring is full (or the
 * router is away) it waits in its connection, which stops reading until the shard has
 * made room and rings our bell (ring_wait_prepare()); messages that cannot wait on a
 * socket (a session's frames) queue in order in the shard's backlog instead, whole, and
 * go out in pieces when large. Inbound, frames from the shards go to the front end.
 *
 * When the router dies (ring.h, "Reset"): what it published is delivered first; the
 * stanzas it had not finished with are taken back out of the rings, because it
 * releases a frame only once it has (router/ticket.h); the rings start over; once the
 * new router is up and the front end has registered its sessions again, those stanzas
 * go to it, ahead of everything held since.
 */
#include "common/fe/fe.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "shm/proto.h"
#include "shm/topo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fe_port_init(struct fe_thread *t, unsigned nshards)
{
    t->nshards = nshards;
    t->to_shard = calloc(nshards, sizeof *t->to_shard);
    t->from_shard = calloc(nshards, sizeof *t->from_shard);
    t->dirty = calloc(nshards, sizeof *t->dirty);
    t->backlog = calloc(nshards, sizeof *t->backlog);
    t->broken = calloc(nshards, sizeof *t->broken);
    t->rx = calloc(nshards, sizeof *t->rx);
    t->replay = calloc(nshards, sizeof *t->replay);
    if (!t->to_shard || !t->from_shard || !t->dirty || !t->backlog || !t->broken || !t->rx ||
        !t->replay)
        return -ENOMEM;
    for (unsigned s = 0; s < nshards; s++)
        t->rx[s].max = TOPO_MAX_MESSAGE;
    return 0;
}

unsigned fe_shard_of(const struct fe_thread *t, uint64_t key)
{
    return topo_shard_of(key, t->nshards);
}

/* Asks the shard to ring our bell once the ring has room; when it has room already no
 * bell will come, so the loop resumes at once. */
static void wait_for_room(struct fe_thread *t, unsigned shard)
{
    if (ring_wait_prepare(&t->to_shard[shard]) == 0)
        t->resume_now = true;
}

void *fe_port_reserve(struct fe_conn *c, unsigned shard, uint32_t len, uint16_t kind,
                      bool *held, int *err)
{
    struct fe_thread *t = c->t;
    void *dst = NULL;
    *err = (t->router_down || !backlog_empty(&t->backlog[shard]))
               ? -ENOBUFS
               : ring_reserve(&t->to_shard[shard], len, kind, 0, &dst);
    *held = *err < 0;
    if (*err == 0 || *err == -EMSGSIZE || *err == -EINVAL)
        return *err ? NULL : dst;
    /* Full (or the router is away): the frame waits in the connection. */
    buf_free(&c->held);
    if (buf_reserve(&c->held, len) < 0) {
        *err = -ENOMEM;
        return NULL;
    }
    dst = buf_end(&c->held);
    c->held.len += len;
    c->held_kind = kind;
    *err = 0;
    return dst;
}

void fe_port_commit(struct fe_conn *c, unsigned shard, bool held)
{
    struct fe_thread *t = c->t;
    if (!held) {
        ring_commit(&t->to_shard[shard]);
        t->dirty[shard] = true;
        return;
    }
    c->held_shard = (uint16_t)shard;
    c->flags |= FE_F_PAUSED;
    fe_paused_add(&t->paused, c);
    fe_port_flush(t); /* ring_wait_prepare() wants everything published */
    wait_for_room(t, shard);
}

int fe_port_send(struct fe_thread *t, unsigned shard, uint16_t kind, const void *p, uint32_t len)
{
    int err = backlog_push(&t->backlog[shard], kind, p, len);
    if (err)
        return err;
    if (!t->router_down && backlog_flush(&t->backlog[shard], &t->to_shard[shard]))
        t->dirty[shard] = true;
    return 0;
}

bool fe_port_pending(struct fe_thread *t)
{
    if (t->router_down)
        return false;
    for (unsigned s = 0; s < t->nshards; s++)
        if (!t->broken[s] && !ring_empty(&t->from_shard[s]))
            return true;
    return false;
}

unsigned fe_port_drain(struct fe_thread *t)
{
    unsigned handled = 0;
    if (t->router_down)
        return 0;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct ring *r = &t->from_shard[s];
        struct ring_frame f;
        unsigned n = 0;
        int rc = 0;
        if (t->broken[s])
            continue;
        /* A bounded batch per ring keeps one busy shard from starving the others. */
        while (n < 256 && (rc = port_recv(r, &t->rx[s], &f)) == 1) {
            t->ops->frame(t, &f);
            n++;
        }
        if (ring_release(r)) /* pieces read too: they may be what makes room for the rest */
            bell_ring(r->peer);
        if (rc < 0) {
            /* The router process is broken; the supervisor replaces it and we reset. */
            LOG_ERROR("front-end thread %u: ring from shard %u is corrupt", t->idx, s);
            t->broken[s] = true;
            ctl_tell(t->ctl_fd, CTL_PEER_BROKEN, CTL_ROLE_ROUTER);
        }
        handled += n;
    }
    return handled;
}

void fe_port_flush(struct fe_thread *t)
{
    if (t->router_down)
        return;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct ring *r = &t->to_shard[s];
        if (!backlog_empty(&t->backlog[s]) && backlog_flush(&t->backlog[s], r))
            t->dirty[s] = true;
        if (t->dirty[s]) {
            t->dirty[s] = false;
            if (ring_publish(r))
                bell_ring(r->peer);
        }
        if (!backlog_empty(&t->backlog[s]))
            wait_for_room(t, s);
    }
}

void fe_port_resume(struct fe_thread *t)
{
    t->resume_now = false;
    if (t->router_down)
        return;
    /* One pass over the connections paused now. Each is taken off this list before it
     * resumes: one paused again inside fe_input() goes on t->paused anew, and one that
     * closes meanwhile leaves whichever list it is on (fe_close). */
    struct fe_conn *list = t->paused, *still = NULL;
    t->paused = NULL;
    if (list)
        list->pprev_paused = &list;
    while (list) {
        struct fe_conn *c = list;
        fe_paused_del(c);
        struct ring *r = &t->to_shard[c->held_shard];
        void *dst;
        if (!backlog_empty(&t->backlog[c->held_shard]) ||
            ring_reserve(r, buf_used(&c->held), c->held_kind, 0, &dst) < 0) {
            fe_paused_add(&still, c);
            continue;
        }
        memcpy(dst, buf_data(&c->held), buf_used(&c->held));
        ring_commit(r);
        t->dirty[c->held_shard] = true;
        buf_free(&c->held);
        c->flags &= (uint16_t)~FE_F_PAUSED;
        fe_input(c, NULL, 0); /* what arrived while it waited; reading resumes */
    }
    while (still) {
        struct fe_conn *c = still;
        fe_paused_del(c);
        fe_paused_add(&t->paused, c);
    }
    fe_port_flush(t);
    for (struct fe_conn *c = t->paused; c; c = c->next_paused)
        wait_for_room(t, c->held_shard);
}

/* A stanza frame the dead router had not finished: kept to hand to the next one. Frames
 * of sessions (bind, unbind) are not: re-registration replaces them. */
static int keep_unfinished(void *arg, const struct ring_frame *f)
{
    struct buf *b = arg;
    uint32_t len = f->len;
    if (f->kind != PROTO_STANZA || (f->flags & (PORT_F_MORE | PORT_F_CONT)) ||
        len < sizeof(struct proto_stanza))
        return 0;
    if (buf_append(b, &len, sizeof len) < 0 || buf_append(b, f->payload, len) < 0)
        return -ENOMEM;
    return 0;
}

void fe_port_down(struct fe_thread *t)
{
    /* What the dead router published is whole: its peers get it. */
    fe_port_drain(t);
    t->router_down = true;
    for (unsigned s = 0; s < t->nshards; s++) {
        /* The router gave back only what it had finished: the rest goes to the next one
         * (fe_port_replay()). */
        int rc = ring_unreleased(&t->to_shard[s], keep_unfinished, &t->replay[s]);
        if (rc < 0)
            LOG_ERROR("front-end thread %u: stanzas for shard %u are lost: %s", t->idx, s,
                      strerror(-rc));
        ring_reset(&t->to_shard[s]);
        ring_reset(&t->from_shard[s]);
        backlog_clear(&t->backlog[s]);
        port_rx_reset(&t->rx[s]);
        t->dirty[s] = false;
        t->broken[s] = false;
    }
}

void fe_port_replay(struct fe_thread *t)
{
    /* A stanza may so be handled twice; none is lost. Only a connection still open
     * gets its own back: the router forgets the stanzas of sessions that ended. */
    for (unsigned s = 0; s < t->nshards; s++) {
        struct buf *b = &t->replay[s];
        const char *p = buf_data(b), *end = p + buf_used(b);
        uint32_t len;
        uint64_t conn;
        for (; end - p >= (ptrdiff_t)sizeof len; p += sizeof len + len) {
            memcpy(&len, p, sizeof len);
            memcpy(&conn, p + sizeof len, sizeof conn); /* the first field of proto_stanza */
            struct fe_conn *c = fe_conn_by_id(t, conn);
            if (c && c->state != FE_CLOSING &&
                backlog_push(&t->backlog[s], PROTO_STANZA, p + sizeof len, len) < 0)
                LOG_RL(LOG_LEVEL_ERROR, "conn %u: out of memory: a stanza is lost", c->slot);
        }
        buf_free(b);
    }
}

void fe_port_trim(struct fe_thread *t)
{
    /* A corrupt tail, the only error, is found again when a frame is next reserved. */
    if (!t->router_down)
        for (unsigned s = 0; s < t->nshards; s++)
            ring_trim(&t->to_shard[s]);
}
