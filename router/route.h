/*
 * route: where a stanza goes (RFC 6120 §10, RFC 6121 §8): the sender's step and the
 * recipient's step (route.c has the table of rules). Shard thread only.
 *
 * Config: router.max_sessions, router.max_directed.
 */
#ifndef STARLING_ROUTER_ROUTE_H
#define STARLING_ROUTER_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct proto_session;
struct shard;
struct stanza;
struct user;

void route_outbound(struct shard *s, const struct stanza *st);
void route_inbound(struct shard *s, const struct stanza *st);
/* A stanza from a remote server (s2s): to the server itself (iq.c), or the recipient's
 * step. */
void route_remote(struct shard *s, const struct stanza *st);
void route_bind(struct shard *s, const struct proto_session *b, const char *jid,
                const char *presence);
void route_unbind(struct shard *s, const struct proto_session *b, const char *jid);
/* Hands st to the recipient's step: a call when its shard is ours, else a frame. */
void route_forward(struct shard *s, const struct stanza *st);
/* A stanza the server makes itself on behalf of `from` (a user of this shard or the
 * one being answered), taken to the recipient's step. */
void route_generated(struct shard *s, const char *from, size_t from_len, size_t from_bare_len,
                     const char *to, size_t to_len, size_t to_bare_len, uint8_t kind, uint8_t type,
                     const char *stanza, size_t len);
/* Message delivery to a user (bare JID, or a full JID with no such session). */
void route_message_to_user(struct shard *s, struct user *u, const struct stanza *st);

#endif
