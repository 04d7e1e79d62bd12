/*
 * topo: which ring and which bell of the node's segment serves whom, and attaching one
 * thread's end of them (topo_attach, topo.c). Every process derives the same plan from
 * the same config: T c2s threads, U s2s threads, S router shards. A front-end thread has
 * one index g over both front ends: c2s thread t is g = t, s2s thread u is g = T + u.
 *
 *   rings   [0, (T+U)*S)           front-end thread g -> shard s      at g*S + s
 *           [(T+U)*S, 2*(T+U)*S)   shard s -> front-end thread g      at (T+U)*S + g*S + s
 *   bells   [0, S)                 shard s
 *           [S, S+T+U)             front-end thread g
 *   stats   [0, T+U)               front-end thread g (stats.h: its counters and gauges)
 *           [T+U, T+U+S)           shard s
 *           T+U+S                  the router's own thread (and the cluster's links)
 *
 * A frame holds a stanza of up to c2s.max_stanza_size plus its addresses, or a
 * delivery list; TOPO_FRAME_SLACK covers the rest. Larger messages go in pieces.
 */
#ifndef STARLING_SHM_TOPO_H
#define STARLING_SHM_TOPO_H

#include "common/config/config.h"
#include "shm/bell.h"
#include "shm/proto.h"
#include "shm/ring.h"
#include "shm/seg.h"

#include <stdbool.h>

#define TOPO_FRAME_SLACK (64u * 1024)
/* The largest message a consumer puts back together from pieces (port.h): a roster
 * result, a broadcast to a large roster, a re-registration with its directed presence,
 * all bounded by their own limits well below this. */
#define TOPO_MAX_MESSAGE (64u << 20)

/* Which shard owns a bare JID: its key (jid_hash()) modulo the shards. The one place that
 * says so; front ends and shards all ask here. */
static inline unsigned topo_shard_of(uint64_t key, unsigned nshards)
{
    return (unsigned)(key % nshards);
}

static inline unsigned topo_threads(const struct config *c)
{
    return (unsigned)c->c2s.threads;
}

static inline unsigned topo_s2s_threads(const struct config *c)
{
    return (unsigned)c->s2s.threads;
}

/* Front-end threads of both front ends. */
static inline unsigned topo_fe_threads(const struct config *c)
{
    return topo_threads(c) + topo_s2s_threads(c);
}

/* The index g of thread `thread` of front end `fe` (PROTO_FE_C2S, PROTO_FE_S2S). */
static inline unsigned topo_fe_index(const struct config *c, unsigned fe, unsigned thread)
{
    return fe == PROTO_FE_S2S ? topo_threads(c) + thread : thread;
}

/* The s2s thread that owns a remote domain's streams (key: jid_hash() of the domain). */
static inline unsigned topo_s2s_of(const struct config *c, uint64_t domain_key)
{
    return (unsigned)(domain_key % topo_s2s_threads(c));
}

static inline unsigned topo_shards(const struct config *c)
{
    return (unsigned)c->router.shards;
}

static inline uint32_t topo_ring_up(const struct config *c, unsigned g, unsigned s)
{
    return g * topo_shards(c) + s;
}

static inline uint32_t topo_ring_down(const struct config *c, unsigned g, unsigned s)
{
    return topo_fe_threads(c) * topo_shards(c) + g * topo_shards(c) + s;
}

static inline uint32_t topo_bell_shard(const struct config *c, unsigned s)
{
    (void)c;
    return s;
}

static inline uint32_t topo_bell_fe(const struct config *c, unsigned g)
{
    return topo_shards(c) + g;
}

static inline uint32_t topo_bells(const struct config *c)
{
    return topo_shards(c) + topo_fe_threads(c);
}

static inline uint32_t topo_stats_fe(const struct config *c, unsigned g)
{
    (void)c;
    return g;
}

static inline uint32_t topo_stats_shard(const struct config *c, unsigned s)
{
    return topo_fe_threads(c) + s;
}

static inline uint32_t topo_stats_router(const struct config *c)
{
    return topo_fe_threads(c) + topo_shards(c);
}

static inline uint32_t topo_stats(const struct config *c)
{
    return topo_stats_router(c) + 1;
}

/* The segment's plan. 0 or -EINVAL when the ring size cannot hold the largest frame. */
static inline int topo_plan(const struct config *c, struct seg_layout *l)
{
    uint32_t frame = (uint32_t)c->c2s.max_stanza_size + TOPO_FRAME_SLACK;
    uint32_t size = (uint32_t)c->shm.ring_size;
    while (size < 2 * frame)
        size *= 2; /* a ring must hold two of the largest frames */
    return seg_plan(l, 2 * topo_fe_threads(c) * topo_shards(c), topo_bells(c), topo_stats(c), size,
                    frame);
}

/* Attaches one end of the node's rings: front-end thread g = idx (front_end) or shard idx.
 * Its own bell goes to *self; out[p] and in[p] are the rings to and from peer p (every
 * shard of a front-end thread; every front-end thread g of a shard), each ringing the
 * peer's bell. The peers' bells live as long as the process: the rings point at them.
 * 0 or -errno. */
int topo_attach(const struct config *c, const struct seg *seg, const int *bell_fds, bool front_end,
                unsigned idx, struct bell *self, struct ring *out, struct ring *in);

#endif
