/*
 * link: the router's links to the other nodes of a cluster (cluster.* directives).
 *
 * Sockets. Each router binds one NN_PULL at cluster.listen and connects one NN_PUSH to
 * every other node's PULL: one directed socket per ordered pair of nodes. All of them
 * belong to one thread of the router, the link thread (link.c), driven by nanomsg's
 * pollable descriptors (NN_RCVFD, NN_SNDFD) and its own bell; no shard ever calls
 * nanomsg. A shard hands a frame for another node to the link thread through an
 * in-process ring (shard.to_link, with its backlog, as between shards), and the link
 * thread hands what arrives to the destination shard through another (shard.from_link).
 *
 * Frames. Each port message crosses as a record: a struct link_hdr, then the payload of
 * the same kind as on the shm rings and between shards (proto.h, router.h: PROTO_STANZA,
 * PROTO_BIND, RK_INBOUND, RK_FANOUT, PROTO_DELIVER...), never another framing. The same
 * header travels on the in-process rings, so the link thread copies, never re-encodes.
 * A nanomsg message carries the records one round of the link thread took from the
 * shards for that node, one after another (up to LINK_BUNDLE bytes; a larger record
 * alone): one message per record cost a sendmsg() and a wake-up of nanomsg's worker on
 * each side per frame, most of the link's CPU under load (bench/RESULTS.md).
 * Every LINK_HEARTBEAT seconds each link carries a LINK_HEARTBEAT (struct link_hb). A
 * node heard from (any message) within cluster.dead_after is up.
 *
 * Back-pressure. Sends are NN_DONTWAIT; what does not fit waits, in order, in the link's
 * queue, up to cluster.max_link_bytes. Past it (or to a node that is down), the frame
 * goes back to the shard that sent it (RK_BOUNCE): a stanza is answered with
 * remote-server-timeout, anything else is counted and logged. Input stops being read
 * while the shards' inbound rings are backed up, and TCP pushes back on the sender.
 *
 * Trust. Nodes of a cluster trust each other as the processes of one node do; what
 * arrives is still checked as any frame is (link_decode(), then the shard's decoders),
 * since a misconfigured peer or a stray connection must not crash a router.
 */
#ifndef STARLING_ROUTER_LINK_H
#define STARLING_ROUTER_LINK_H

#include "common/config/config.h"
#include "router/home.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct shm_stats;

#define LINK_MAGIC 0x314B4C53u /* "SLK1" */
/* A frame forwarded this many times (membership views that disagree for a moment) is
 * handled as undeliverable rather than sent round again. */
#define LINK_MAX_HOPS 3
/* The heartbeat's kind, never on a ring. */
#define LINK_HEARTBEAT 0x7F00u
/* The largest message a link accepts (NN_RCVMAXSIZE), header included. */
#define LINK_MAX_MESSAGE (64u << 20)
/* Records are put together into one message up to this many bytes. */
#define LINK_BUNDLE (64u * 1024)

struct link_hdr {
    uint32_t magic;
    uint16_t kind;
    uint16_t shard; /* on the destination node: the frame's home there, or for lists
                       and connections a shard of the sender's choice, which sorts them out */
    uint8_t src, dst; /* node indices */
    uint8_t hops;     /* times this frame was forwarded between nodes */
    uint8_t from;     /* the sending shard (its bounce goes back there) */
    uint32_t len;     /* payload bytes after the header */
};

/* LINK_HEARTBEAT. Followed by the node's name (name_len bytes). */
struct link_hb {
    uint64_t incarnation; /* random at each router start */
    uint64_t sessions;    /* sessions homed on the sender */
    uint16_t shards;
    uint16_t name_len;
    uint32_t pad;
};

/* Checks the record at the start of len bytes of a message from the network: header,
 * kind, length (within len), nodes (src a peer, dst us), shard (below nshards), hops
 * (at most LINK_MAX_HOPS). 0 with *h
 * a copy and *payload after it (the next record, if any, at payload + h->len), or
 * -EBADMSG: the rest of the message is not to be read. */
int link_decode(const void *msg, size_t len, unsigned self, unsigned nnodes, unsigned nshards,
                struct link_hdr *h, const void **payload);
/* A heartbeat's payload: 0 with *hb a copy and *name its name, or -EBADMSG. */
int link_decode_hb(const void *payload, uint32_t len, struct link_hb *hb, const char **name);
/* Kinds a link carries (besides the heartbeat). */
bool link_kind_ok(uint16_t kind);

/* Per node, as the link thread sees it (written by it, read by anyone: relaxed). */
struct link_peer_stats {
    _Atomic uint64_t frames_out, bytes_out, frames_in, bytes_in;
    _Atomic uint64_t queued_bytes; /* waiting for the socket */
    _Atomic uint64_t bounced;      /* frames refused: queue full or node down */
    _Atomic uint64_t sessions;     /* as its last heartbeat said */
    _Atomic bool up;
};

struct cluster;

/* Reads the cluster.* directives: the members, this node's index. 0, or -EINVAL with
 * why in err. *out is NULL when cluster.node is "" (no cluster). With cluster.discovery
 * = "postgresql" the members and this node's index (its slot) come from the store
 * instead (store_cluster_beat_sync(), retried for storage.timeout: -errno when it
 * stays unreachable), and a discovery thread of the cluster's beats there each
 * cluster.heartbeat; a node found later gets its link at once. */
struct store;
int cluster_new(const struct config *cfg, struct store *store, struct cluster **out, char *err,
                size_t errlen);
/* Connects the shards' rings to the link thread and starts it: the view first holds this
 * node alone. The thread writes the links' metrics into slot (shm/stats.h; NULL: none).
 * 0 or -errno. */
int cluster_start(struct cluster *cl, struct shard *shards, unsigned nshards,
                  uint32_t ring_data, uint32_t max_frame, struct shm_stats *slot);
/* The view the shards route by (acquire). */
const struct home_view *cluster_view(const struct cluster *cl);
/* Stops the thread (the shards have stopped) and frees everything. */
void cluster_free(struct cluster *cl);
/* Main thread, after a membership change: true once, when every shard has taken the
 * view in which a node went down (its users' sessions elsewhere must register again). */
bool cluster_rehome_due(struct cluster *cl);

#endif
