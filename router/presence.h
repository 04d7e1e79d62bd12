/*
 * presence: broadcast, probes, directed presence and a session's end (RFC 6121 §4),
 * with fan-out once per destination shard, node and front-end thread (presence.c).
 * Shard thread only.
 *
 * Config: router.max_directed. Store: none (presence lives in the sessions).
 */
#ifndef STARLING_ROUTER_PRESENCE_H
#define STARLING_ROUTER_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_fanout;
struct rk_probe;
struct session;
struct shard;
struct stanza;
struct user;

/* A presence without `to` from session ss: availability, broadcast, probes. */
void presence_broadcast(struct shard *s, struct user *u, struct session *ss,
                        const struct stanza *st);
/* Directed available or unavailable presence: remembered, then forwarded. */
void presence_directed(struct shard *s, struct user *u, struct session *ss,
                       const struct stanza *st);
/* Presence for a user of ours (inbound): delivered to its available sessions. */
void presence_inbound(struct shard *s, struct user *v, const struct stanza *st);
void presence_fanout_in(struct shard *s, const struct rk_fanout *f, uint32_t len);
void presence_probe_in(struct shard *s, const struct rk_probe *p, uint32_t len);
/* Sends the current presence of each of u's available sessions to `to` (a bare JID):
 * after an approval or an unblock. unavailable: the opposite. */
void presence_send_all(struct shard *s, struct user *u, const char *to, size_t to_len,
                       bool unavailable);
/* A session ends: unavailable to contacts, directed recipients and own resources. */
void presence_end_session(struct shard *s, struct user *u, struct session *ss);

#endif
