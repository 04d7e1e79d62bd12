/*
 * load: a user's state from the store on demand, and the queue of frames that wait for
 * it. Shard thread only.
 *
 * Config: router.max_pending. Store: store_roster_get (roster, blocklist, whether
 * offline messages wait: one request).
 */
#ifndef STARLING_ROUTER_LOAD_H
#define STARLING_ROUTER_LOAD_H

#include <stdbool.h>
#include <stdint.h>

struct shard;
struct user;

/* True when u's state is there; otherwise the frame is queued (a copy) and the load
 * started: it is processed again, in order, when the state arrives. A stanza past
 * router.max_pending bytes is answered with resource-constraint instead. */
bool load_ready(struct shard *s, struct user *u, uint16_t kind, const void *payload, uint32_t len);
/* Starts loading without a frame (a session binds). */
void load_start(struct shard *s, struct user *u);

#endif
