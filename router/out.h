/*
 * out: frames from a shard to front-end threads, to other shards and to s2s,
 * deduplicated per destination thread; stanza errors. Shard thread only.
 */
#ifndef STARLING_ROUTER_OUT_H
#define STARLING_ROUTER_OUT_H

#include "common/core/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session;
struct shard;
struct stanza;
struct user;

/* ` id='push-N'`, unique for this shard's lifetime: clients answer pushes by id. */
void out_push_id(struct shard *s, struct buf *b);
/* A recipient for out_deliver_to(): its `to` attribute (` to='...'`, escaped), or none. */
struct out_rcpt {
    uint64_t conn;
    const char *to_attr;
    uint16_t to_len;
};
/* The stanza to each of rcpt (any threads): one frame per destination thread. The
 * recipients with a to_attr get it inserted at to_at. */
void out_deliver_to(struct shard *s, const struct out_rcpt *rcpt, unsigned n, const char *stanza,
                    size_t len, uint32_t to_at);
/* Recipients with a `to` each: built up, then sent with one out_deliver_to(). */
struct out_list {
    struct out_rcpt *r;
    size_t *off; /* of each recipient's attribute in attrs */
    unsigned n, cap;
    struct buf attrs;
};
/* Adds conn, whose `to` will be jid (escaped here). */
void out_list_add(struct out_list *l, uint64_t conn, const char *jid, size_t len);
void out_list_send(struct shard *s, struct out_list *l, const char *stanza, size_t len,
                   uint32_t to_at);
void out_list_free(struct out_list *l);

/* The same stanza as is to each of conns. */
void out_deliver(struct shard *s, const uint64_t *conns, unsigned n, const char *stanza,
                 size_t len);
/* The stanza as is to each of u's available sessions. */
void out_to_available(struct shard *s, const struct user *u, const char *stanza, size_t len);
void out_bind_result(struct shard *s, uint64_t conn, int result, const char *jid, size_t len);
void out_close(struct shard *s, uint64_t conn, uint8_t condition);
/* Tells ss's front end the session's flags and directed-presence list (they changed),
 * which it hands back if this router restarts. */
void out_session_state(struct shard *s, const struct session *ss);
/* An error answering st (RFC 6120 §8.3) to its sender; extra (may be NULL) is an
 * application-specific condition element added after the defined one. */
void out_error(struct shard *s, const struct stanza *st, const char *type, const char *condition);
void out_error_extra(struct shard *s, const struct stanza *st, const char *type,
                     const char *condition, const char *extra);
/* A stanza for a remote domain, to the s2s thread that owns the domain (PROTO_REMOTE). */
void out_remote(struct shard *s, const struct stanza *st);
/* A frame of two parts (a, then b) to front-end thread fe; false when it is lost. */
bool out_fe_frame(struct shard *s, unsigned fe, uint16_t kind, const void *a, uint32_t alen,
                  const void *b, uint32_t blen);
/* One stanza (without `to`) for `count` JIDs of one remote domain, listed as uint16_t
 * length + JID: one PROTO_REMOTE_FANOUT frame to the domain's s2s thread. flags:
 * PROTO_FANOUT_* (a room's stanza: PROTO_FANOUT_FROM_MUC). */
void out_remote_fanout(struct shard *s, const char *domain, size_t dlen, const char *stanza,
                       size_t len, uint32_t to_at, const char *list, size_t list_len,
                       uint32_t count, uint16_t flags);
/* A frame for another shard (copied; queued in order when its ring is full; in pieces
 * when large). It travels in an envelope with a reference to the current ticket, which
 * the other shard drops once it has handled the frame (ticket.h). */
void out_to_shard(struct shard *s, unsigned dst, uint16_t kind, const void *payload, uint32_t len);
/* Sends what the backlogs hold, publishes, wakes front ends and shards. */
void out_flush(struct shard *s);

#endif
