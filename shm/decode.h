/*
 * decode: reading the frames of proto.h, the one place that does. A frame's bytes may
 * sit in shared memory that the process at the other end can still write, so a decoder
 * copies the fixed header out first, checks that copy (every length and offset against
 * the frame's length) and hands back the copy with pointers to the variable parts.
 * Nothing in the frame is read twice: a peer rewriting it meanwhile can change what the
 * strings say, never how far they reach.
 *
 * Every decoder returns 0, or -EBADMSG for a frame that is not what its kind says.
 * Pure functions on bytes (libFuzzer drivers in shm/fuzz/); any thread.
 */
#ifndef STARLING_SHM_DECODE_H
#define STARLING_SHM_DECODE_H

#include "shm/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PROTO_STANZA (and the router's copies of it). */
struct decode_stanza {
    struct proto_stanza h;
    const char *from, *to, *raw; /* from_len, to_len, stanza_len bytes */
};
int decode_stanza(const void *frame, uint32_t len, struct decode_stanza *out);

/* The envelope of a REMOTE or REMOTE_FANOUT frame; *payload, *plen: what follows it. */
int decode_remote_env(const void *frame, uint32_t len, struct proto_remote_env *env,
                      const void **payload, uint32_t *plen);

/* PROTO_REMOTE_ACK: the i-th sequence number with decode_remote_ack_at(). */
struct decode_remote_ack {
    struct proto_remote_ack h;
    const char *seqs;
};
int decode_remote_ack(const void *frame, uint32_t len, struct decode_remote_ack *out);
static inline uint64_t decode_remote_ack_at(const struct decode_remote_ack *d, uint32_t i)
{
    uint64_t v;
    __builtin_memcpy(&v, d->seqs + (size_t)i * sizeof v, sizeof v);
    return v;
}

/* PROTO_REMOTE_FANOUT: the recipients are walked with decode_fanout_next(). */
struct decode_remote_fanout {
    struct proto_remote_fanout h;
    const char *domain, *stanza, *list, *end; /* the list runs from list to end */
};
int decode_remote_fanout(const void *frame, uint32_t len, struct decode_remote_fanout *out);
/* The next recipient of a REMOTE_FANOUT list (*p from d->list on): false at the end or at
 * an entry that runs past it. */
bool decode_fanout_next(const char **p, const char *end, const char **jid, uint16_t *len);

/* PROTO_BIND, PROTO_UNBIND. */
struct decode_session {
    struct proto_session h;
    const char *jid, *presence, *directed; /* jid_len, presence_len, directed_len bytes */
    const uint8_t *token; /* PROTO_SESSION_SM: PROTO_SM_TOKEN_LEN bytes; else NULL */
};
/* The bytes of a BIND or UNBIND frame whose header is s. */
static inline uint32_t decode_session_len(const struct proto_session *s)
{
    return (uint32_t)(sizeof *s + s->jid_len + s->presence_len + s->directed_len +
                      ((s->flags & PROTO_SESSION_SM) ? PROTO_SM_TOKEN_LEN : 0));
}
int decode_session(const void *frame, uint32_t len, struct decode_session *out);

/* The next entry of a directed-presence list (struct proto_session_state): false at
 * its end or at an entry that runs past it. */
bool decode_directed_next(const char **p, const char *end, const char **jid, uint16_t *len);

/* PROTO_DELIVER. The recipients are read one at a time with decode_rcpt(). */
struct decode_deliver {
    struct proto_deliver h;
    const unsigned char *rcpt; /* nrcpt struct proto_rcpt, unaligned as far as we know */
    const char *stanza, *attrs;
};
int decode_deliver(const void *frame, uint32_t len, struct decode_deliver *out);
/* Recipient i (< h.nrcpt), its `to` attribute checked against the table. */
int decode_rcpt(const struct decode_deliver *d, uint32_t i, struct proto_rcpt *out);

/* PROTO_BIND_RESULT. */
struct decode_bind_result {
    struct proto_bind_result h;
    const char *jid;
};
int decode_bind_result(const void *frame, uint32_t len, struct decode_bind_result *out);

/* PROTO_SESSION_STATE. */
struct decode_session_state {
    struct proto_session_state h;
    const char *directed;
};
int decode_session_state(const void *frame, uint32_t len, struct decode_session_state *out);

/* PROTO_CLOSE. */
int decode_close(const void *frame, uint32_t len, struct proto_close *out);

#endif
