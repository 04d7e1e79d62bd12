/*
 * node: a shard's side of the cluster: frames to and from other nodes (link.h has the
 * links, home.h the rule), and what a membership change moves. Shard thread only.
 */
#ifndef STARLING_ROUTER_NODE_H
#define STARLING_ROUTER_NODE_H

#include <stdint.h>

struct shard;
struct user;

/* A frame to shard `shard` of another node, through the link thread: a, then b (may be
 * empty), after a struct link_hdr. */
void node_send(struct shard *s, unsigned node, unsigned shard, uint16_t kind, const void *a,
               uint32_t alen, const void *b, uint32_t blen);
/* A frame for a key this shard is not the home of (dst: shard_of()): to its home, on
 * this node or another; past LINK_MAX_HOPS a stanza is answered remote-server-timeout. */
void node_relay(struct shard *s, unsigned dst, uint64_t key, uint16_t kind, const void *payload,
                uint32_t len);
/* The home shard of key on node `node`. */
unsigned node_home_shard(const struct shard *s, unsigned node, uint64_t key);
/* The shard of node `node` that a frame from this shard goes to when any would do:
 * always the same one, so frames from here to there stay in order. */
unsigned node_peer_shard(const struct shard *s, unsigned node);
/* Handles a batch of what the link thread brought. Returns how many frames. */
unsigned node_drain(struct shard *s);
/* Takes the link thread's newest view, if it is new: users whose home moved are handed
 * to it (their sessions as re-registrations), sessions whose connection was on a node
 * that went down end, and the contacts homed there are reported unavailable. */
void node_view_check(struct shard *s);
/* A session registered again after the loss of a node that was its user's home: once
 * the state is here (called again from load.c), the user hears that the contacts homed
 * on lost nodes are gone, and its contacts get its sessions' presence again (from this
 * home, after any goodbye the loss made). */
void node_rehomed(struct shard *s, struct user *u);
/* Publishes the counters the link thread reports (shard.pub). */
void node_publish(struct shard *s);

#endif
