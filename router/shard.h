/*
 * shard: a shard worker's loop: frames in from front ends and shards, store
 * completions, frames out, sleep on the bell.
 */
#ifndef STARLING_ROUTER_SHARD_H
#define STARLING_ROUTER_SHARD_H

#include <stdbool.h>
#include <stdint.h>

struct shard;
struct stanza;

/* Rings between shards, in this process's memory: one per ordered pair, sized like the
 * shared ones. Shard i produces into to_shard[j], which shard j reads as from_shard[i].
 * The shards' bells must be attached first. 0 or -errno. */
int shard_link(struct shard *shards, unsigned nshards, uint32_t data_size, uint32_t max_frame);
void *shard_main(void *arg);
/* main.c, once a second: wakes the shard if it sleeps with outbound rings to trim. */
void shard_trim_tick(struct shard *s);
/* One round of the shard's loop, without sleeping: store completions, a batch from each
 * inbound ring, output published, tickets settled. Returns non-zero when it did work
 * (shard_main() sleeps on zero; tests drive shards in-process with it). */
unsigned shard_step(struct shard *s);
/* Handles a batch of what the other shards sent: their frames carry an envelope (the
 * ticket, see out_to_shard()). Returns how many frames. */
unsigned shard_drain_shards(struct shard *s);
/* The parts of a shard that main.c's attach() and shard_link() do not make: 0 or -ENOMEM. */
int shard_init(struct shard *s);
/* Frees what shard_init() made, the users and the store client (the thread ends). */
void shard_free(struct shard *s);
/* Frees what shard_link() made, once no shard runs. */
void shard_unlink(struct shard *shards, unsigned nshards);
/* The store client's notify (store_client_new_notify()): rings the shard's bell. */
void shard_store_notify(void *arg);
/* Handles one frame of any kind (from a ring, or replayed from a user's queue). */
void shard_frame(struct shard *s, uint16_t kind, const void *payload, uint32_t len);
bool stanza_parse(const void *payload, uint32_t len, struct stanza *st);

#endif
