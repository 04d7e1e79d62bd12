/*
 * stats: the node's counters and gauges, in the stats slots of its shared-memory segment
 * (struct shm_stats, abi.h), so that the supervisor's /metrics (common/admin/) reads every
 * process's numbers without asking it anything and without a lock.
 *
 * Who writes what. Every thread that counts has a slot of its own (shm/topo.h says which:
 * one per c2s thread, s2s thread and router shard, and one for the router's own thread),
 * and is its slot's only writer: it adds with a relaxed load and store, never a
 * read-modify-write, so counting costs what a plain increment costs. The supervisor loads
 * every slot relaxed and sums them. A counter only grows, in each slot and so in the sum; a
 * gauge is a signed value kept modulo 2^64, so threads may add and subtract (connections
 * open) and the sum read as int64_t is right. Slots outlive the processes: a counter goes on
 * from where it was when a child is replaced, while the supervisor zeroes a dead child's
 * gauges (stats_zero_gauges()) before its replacement starts.
 *
 * Adding a metric is one line in STATS_METRICS below: its id, COUNTER or GAUGE, the
 * Prometheus name (counters end in _total), its labels ("" for none, else `a="b",c="d"`) and
 * its help; then stats_add() or stats_set() where it happens. Rows of one name, told apart by
 * their labels, stay together (the admin listener writes one # HELP and # TYPE line per
 * name, the help and type of the first row). What the supervisor computes itself (rings,
 * children, draining, the store's histogram) is in common/admin/metrics.c.
 *
 * A writer whose slot pointer is NULL (a unit test with no segment) counts nothing.
 */
#ifndef STARLING_SHM_STATS_H
#define STARLING_SHM_STATS_H

#include "shm/abi.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct seg;

#define STATS_METRICS(X)                                                                           \
    X(C2S_CONNECTIONS, GAUGE, "starling_c2s_connections", "", "Client connections open.")          \
    X(C2S_LOGINS, COUNTER, "starling_c2s_logins_total", "",                                        \
      "Client logins that succeeded (SASL success).")                                              \
    X(C2S_AUTH_FAILURES, COUNTER, "starling_c2s_auth_failures_total", "",                          \
      "SASL failures sent to clients (a wrong password, an unknown user, a limit), aborts "        \
      "not counted.")                                                                              \
    X(C2S_IN_MESSAGE, COUNTER, "starling_stanzas_in_total", "front_end=\"c2s\",kind=\"message\"",  \
      "Stanzas received and accepted for routing, by front end and kind.")                         \
    X(C2S_IN_PRESENCE, COUNTER, "starling_stanzas_in_total",                                       \
      "front_end=\"c2s\",kind=\"presence\"", "")                                                   \
    X(C2S_IN_IQ, COUNTER, "starling_stanzas_in_total", "front_end=\"c2s\",kind=\"iq\"", "")        \
    X(S2S_IN_MESSAGE, COUNTER, "starling_stanzas_in_total", "front_end=\"s2s\",kind=\"message\"",  \
      "")                                                                                          \
    X(S2S_IN_PRESENCE, COUNTER, "starling_stanzas_in_total",                                       \
      "front_end=\"s2s\",kind=\"presence\"", "")                                                   \
    X(S2S_IN_IQ, COUNTER, "starling_stanzas_in_total", "front_end=\"s2s\",kind=\"iq\"", "")        \
    X(C2S_OUT_MESSAGE, COUNTER, "starling_stanzas_out_total",                                      \
      "front_end=\"c2s\",kind=\"message\"",                                                        \
      "Stanzas written to clients and remote servers, by front end and kind.")                     \
    X(C2S_OUT_PRESENCE, COUNTER, "starling_stanzas_out_total",                                     \
      "front_end=\"c2s\",kind=\"presence\"", "")                                                   \
    X(C2S_OUT_IQ, COUNTER, "starling_stanzas_out_total", "front_end=\"c2s\",kind=\"iq\"", "")      \
    X(S2S_OUT_MESSAGE, COUNTER, "starling_stanzas_out_total",                                      \
      "front_end=\"s2s\",kind=\"message\"", "")                                                    \
    X(S2S_OUT_PRESENCE, COUNTER, "starling_stanzas_out_total",                                     \
      "front_end=\"s2s\",kind=\"presence\"", "")                                                   \
    X(S2S_OUT_IQ, COUNTER, "starling_stanzas_out_total", "front_end=\"s2s\",kind=\"iq\"", "")      \
    X(S2S_CONN_IN, GAUGE, "starling_s2s_connections", "direction=\"in\"",                          \
      "Server-to-server connections open, by who opened them.")                                    \
    X(S2S_CONN_OUT, GAUGE, "starling_s2s_connections", "direction=\"out\"", "")                    \
    X(S2S_QUEUED, GAUGE, "starling_s2s_queued_stanzas", "",                                        \
      "Stanzas waiting for remote domains whose streams are being made.")                          \
    X(S2S_QUEUED_BYTES, GAUGE, "starling_s2s_queued_bytes", "", "Bytes of those stanzas.")         \
    X(FE_BACKLOG, GAUGE, "starling_backlog_bytes", "side=\"front_end\"",                           \
      "Bytes of messages waiting for room in a full ring, by the side that sends them.")           \
    X(SHARD_BACKLOG, GAUGE, "starling_backlog_bytes", "side=\"router\"", "")                       \
    X(STORE_QUEUE, GAUGE, "starling_store_queue_depth", "",                                        \
      "Storage requests submitted and not yet answered.")                                          \
    X(SHARD_FRAMES_IN, COUNTER, "starling_router_frames_total", "direction=\"in\"",                \
      "Frames the router's shards took from the front ends and each other, and sent.")             \
    X(SHARD_FRAMES_OUT, COUNTER, "starling_router_frames_total", "direction=\"out\"", "")          \
    X(SHARD_DELIVERIES, COUNTER, "starling_router_deliveries_total", "",                           \
      "Recipient connections reached.")                                                            \
    X(SHARD_DELIVER_FRAMES, COUNTER, "starling_router_deliver_frames_total", "",                   \
      "Delivery frames written to the front ends (one per front-end thread, listing its "          \
      "recipients).")                                                                              \
    X(SHARD_FANOUT_FRAMES, COUNTER, "starling_router_fanout_frames_total", "to=\"shard\"",         \
      "Fan-out frames sent (one per destination, listing its contacts).")                          \
    X(SHARD_REMOTE_FANOUT_FRAMES, COUNTER, "starling_router_fanout_frames_total", "to=\"s2s\"",    \
      "")                                                                                          \
    X(SHARD_FANOUT_CONTACTS, COUNTER, "starling_router_fanout_contacts_total", "to=\"shard\"",     \
      "Contacts those fan-out frames listed.")                                                     \
    X(SHARD_REMOTE_FANOUT_CONTACTS, COUNTER, "starling_router_fanout_contacts_total",              \
      "to=\"s2s\"", "")                                                                            \
    X(SHARD_REMOTE_FORGOTTEN, COUNTER, "starling_router_remote_forgotten_total", "",               \
      "Copies of frames for s2s forgotten past router.max_remote_unacked.")                        \
    /* The cluster (router/link.c from the router's slot, topo_stats_router(); the shards'  \
     * rows from theirs). */                                                                   \
    X(CLUSTER_LINKS_UP, GAUGE, "starling_cluster_links_up", "",                                    \
      "Links to other nodes that are up (heard from within cluster.dead_after).")                  \
    X(CLUSTER_NODES_UP, GAUGE, "starling_cluster_nodes_up", "",                                    \
      "Nodes in this node's ring, itself included (0 outside a cluster).")                         \
    X(CLUSTER_LINK_BYTES_OUT, COUNTER, "starling_cluster_link_bytes_total", "direction=\"out\"",   \
      "Bytes sent and received on the links to other nodes, records and headers.")                 \
    X(CLUSTER_LINK_BYTES_IN, COUNTER, "starling_cluster_link_bytes_total", "direction=\"in\"", "") \
    X(CLUSTER_LINK_FRAMES_OUT, COUNTER, "starling_cluster_link_frames_total", "direction=\"out\"", \
      "Frames (records, heartbeats included) sent and received on the links.")                     \
    X(CLUSTER_LINK_FRAMES_IN, COUNTER, "starling_cluster_link_frames_total", "direction=\"in\"",   \
      "")                                                                                          \
    X(CLUSTER_LINK_QUEUE_BYTES, GAUGE, "starling_cluster_link_queue_bytes", "",                    \
      "Bytes waiting for slow links' sockets, all links together (cluster.max_link_bytes each).")  \
    X(CLUSTER_LINK_REFUSED, COUNTER, "starling_cluster_link_refused_total", "",                    \
      "Frames the link thread sent back to their shard: link full or node down.")                  \
    X(CLUSTER_FANOUT_FRAMES, COUNTER, "starling_cluster_fanout_frames_total", "kind=\"presence\"", \
      "Frames to other nodes listing many recipients: presence fan-out (one per node) and "        \
      "delivery lists (one per node's front-end thread).")                                         \
    X(CLUSTER_DELIVER_FRAMES, COUNTER, "starling_cluster_fanout_frames_total", "kind=\"deliver\"", \
      "")                                                                                          \
    X(CLUSTER_FANOUT_CONTACTS, COUNTER, "starling_cluster_fanout_recipients_total",                \
      "kind=\"presence\"", "Recipients those frames listed.")                                      \
    X(CLUSTER_DELIVERIES, COUNTER, "starling_cluster_fanout_recipients_total", "kind=\"deliver\"", \
      "")                                                                                          \
    X(CLUSTER_BYTES_SAVED, COUNTER, "starling_cluster_link_bytes_saved_total", "",                 \
      "Link bytes the recipient lists saved against one copy per recipient.")                      \
    X(CLUSTER_FORWARDED, COUNTER, "starling_cluster_frames_forwarded_total", "",                   \
      "Frames a shard sent on to another node (the sender's view of homes was older).")            \
    X(CLUSTER_BOUNCED, COUNTER, "starling_cluster_frames_bounced_total", "",                       \
      "Frames for other nodes that came back to the shards undelivered (link full, node down).") \
    X(MUC_MESSAGES, COUNTER, "starling_muc_messages_total", "",                                    \
      "Groupchat messages rooms broadcast (XEP-0045).")                                            \
    X(MUC_DELIVERIES, COUNTER, "starling_muc_deliveries_total", "",                                \
      "Occupants those messages reached.")                                                         \
    X(MUC_DELIVER_FRAMES, COUNTER, "starling_muc_deliver_frames_total", "",                        \
      "Frames those deliveries took: one per c2s thread and per other node with occupants.")

/* The store's request times: a histogram of STATS_STORE_BUCKETS buckets and one past the
 * last bound (each counts the requests whose time was at most its bound and more than the
 * previous one's) and the sum of the times in microseconds; common/admin/metrics.c renders
 * it (the count is the buckets' sum). */
#define STATS_STORE_BUCKETS   10
#define STATS_STORE_BOUNDS_US 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000, 1000000

enum stats_id {
#define STATS_ID_(id, type, name, labels, help) STAT_##id,
    STATS_METRICS(STATS_ID_)
#undef STATS_ID_
    /* (The kind rows are in enum proto_stanza_kind's order: STAT_C2S_IN_MESSAGE + kind.) */
    STAT_STORE_BUCKET,
    STAT_STORE_TIME_US = STAT_STORE_BUCKET + STATS_STORE_BUCKETS + 1, /* + the +Inf bucket */
    STAT_COUNT_
};

_Static_assert(STAT_COUNT_ <= SHM_STATS_MAX, "more stats than a slot holds: grow SHM_STATS_MAX");

/* Is stat id a gauge? */
bool stats_is_gauge(enum stats_id id);

/* The writer's side: its own slot only. */
static inline void stats_add(struct shm_stats *s, enum stats_id id, uint64_t n)
{
    if (!s)
        return;
    /* Relaxed both: this thread is the slot's only writer, readers want no order. */
    uint64_t v = atomic_load_explicit(&s->v[id], memory_order_relaxed);
    atomic_store_explicit(&s->v[id], v + n, memory_order_relaxed);
}

static inline void stats_sub(struct shm_stats *s, enum stats_id id, uint64_t n)
{
    stats_add(s, id, (uint64_t)0 - n);
}

static inline void stats_set(struct shm_stats *s, enum stats_id id, uint64_t v)
{
    if (s)
        atomic_store_explicit(&s->v[id], v, memory_order_relaxed);
}

/* One store request took us microseconds (the client's thread, at its callback). */
void stats_store_done(struct shm_stats *s, uint64_t us);

/* The reader's side: the sum over slots [from, to) of the segment. */
uint64_t stats_sum(const struct seg *seg, uint32_t from, uint32_t to, enum stats_id id);

/* The supervisor, for a dead process's slots: its gauges to 0 (nobody writes them then). */
void stats_zero_gauges(struct shm_stats *s);

#endif
