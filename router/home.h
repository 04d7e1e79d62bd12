/*
 * home: where a bare JID lives in a cluster, the one rule.
 *
 * Two levels. The node: a consistent-hash ring over the nodes that are up, each with
 * HOME_POINTS_PER_SHARD points per shard it runs (so a node of 4 shards takes twice the
 * share of one of 2), each point xxh3(name, i); a key goes to the node of the first point
 * at or after xxh3(key) (wrapping). The shard on that node: topo_shard_of(key, its
 * shards), as on a single node. So a node's own path is the single-node one, a front end's
 * first hop (its local shard, key % shards) is the home shard whenever the home is local,
 * and a node joining or leaving moves only the keys of its own points.
 *
 * Every node builds the same view from the same members (names, shard counts): the
 * result depends on nothing else. A remote domain's s2s streams belong to the home node
 * of the domain's key on the same ring.
 *
 * A view is immutable once built; the link thread makes a new one at each membership
 * change and publishes it to the shards with an atomic pointer (router/link.h). Pure
 * functions, any thread.
 */
#ifndef STARLING_ROUTER_HOME_H
#define STARLING_ROUTER_HOME_H

#include "shm/proto.h"

#include <stdbool.h>
#include <stdint.h>

#define HOME_NODES_MAX PROTO_NODES_MAX
#define HOME_POINTS_PER_SHARD 64

struct home_point {
    uint64_t h;
    uint32_t node;
};

struct home_view {
    uint64_t epoch;  /* grows by one at each change */
    uint64_t up;     /* bit i: node i is in the ring */
    unsigned self;   /* this node's index */
    uint32_t npoints;
    uint16_t shards[HOME_NODES_MAX]; /* shards of each node in the ring, 0 when out */
    struct home_view *older;         /* the views before (freed with this one, at exit) */
    struct home_point points[];      /* sorted by h */
};

/* A view of the nodes with shards[i] != 0 (names[i] their names, n of them), for the
 * node of index self. NULL when memory is short. */
struct home_view *home_view_new(const char *const *names, const uint16_t *shards, unsigned n,
                                unsigned self, uint64_t epoch);
/* Frees v and every older view it links to. */
void home_view_free(struct home_view *v);

/* The home node of a key (jid_hash() of a bare JID or of a domain). */
unsigned home_node(const struct home_view *v, uint64_t key);

static inline bool home_up(const struct home_view *v, unsigned node)
{
    return node < HOME_NODES_MAX && (v->up >> node & 1);
}

#endif
