/*
 * sm: the router's part of stream management (XEP-0198): which session of a user a
 * resumption token names, a session's move to the connection that resumes it, and the
 * stanzas a session that ended never acknowledged (sm.c tells the protocol). c2s keeps
 * the rest: the counts, the queue, and sessions whose connection dropped.
 * Shard thread only.
 *
 * Module mod_sm: no iq, no disco (XEP-0198 is a stream feature, advertised by c2s).
 * State: the user's slot MOD_SLOT_SM, the tokens of its resumable sessions by
 * connection (entries whose session is gone are never matched: a token is taken only
 * with its session found by connection). Config: c2s.resume_timeout, read by c2s.
 * Store: none.
 */
#ifndef STARLING_ROUTER_SM_H
#define STARLING_ROUTER_SM_H

#include "shm/proto.h"

#include <stdbool.h>
#include <stdint.h>

struct module;
struct shard;
struct user;

/* PROTO_SM_ENABLE, PROTO_SM_RESUME, PROTO_SM_HANDOFF from a front end (the shard's own
 * copy, its conn checked by from_front_end()), relayed to the user's home when it is on
 * another node; PROTO_SM_ORPHAN: the recipient's step again, errors going back by JID.
 * false: malformed. */
bool sm_frame(struct shard *s, uint16_t kind, void *payload, uint32_t len);
/* PROTO_SM_TAKEOVER, PROTO_SM_RESUMED from the user's home on another node, for a
 * connection of ours: to its thread. */
void sm_conn_frame_in(struct shard *s, uint16_t kind, const void *payload, uint32_t len);
/* The session of connection conn may be resumed with token (a re-registration); false
 * when memory is short. */
bool sm_token_set(struct user *u, uint64_t conn, const uint8_t *token);
/* The token of the session of connection conn, or NULL (it is not resumable). */
const uint8_t *sm_token_of(const struct user *u, uint64_t conn);

extern const struct module mod_sm;

#endif
