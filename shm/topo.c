/*
 * topo.c: attaching one thread's end of the node's rings (topo.h).
 */
#include "shm/topo.h"
#include "shm/proto.h"

#include <errno.h>
#include <stdlib.h>

int topo_attach(const struct config *c, const struct seg *seg, const int *bell_fds, bool front_end,
                unsigned idx, struct bell *self, struct ring *out, struct ring *in)
{
    unsigned n = front_end ? topo_shards(c) : topo_fe_threads(c);
    struct bell *peers = calloc(n, sizeof *peers);
    if (!peers)
        return -ENOMEM;
    uint32_t mine = front_end ? topo_bell_fe(c, idx) : topo_bell_shard(c, idx);
    int err = bell_attach(self, seg_bell(seg, mine), bell_fds[mine]);
    for (unsigned p = 0; !err && p < n; p++) {
        unsigned t = front_end ? idx : p, s = front_end ? p : idx;
        uint32_t b = front_end ? topo_bell_shard(c, p) : topo_bell_fe(c, p);
        uint32_t up = topo_ring_up(c, t, s), down = topo_ring_down(c, t, s);
        err = bell_attach(&peers[p], seg_bell(seg, b), bell_fds[b]);
        if (!err)
            err = ring_attach(&out[p], seg_ring(seg, front_end ? up : down), &peers[p],
                              PROTO_KIND_MAX - 1);
        if (!err)
            err = ring_attach(&in[p], seg_ring(seg, front_end ? down : up), &peers[p],
                              PROTO_KIND_MAX - 1);
    }
    return err;
}
