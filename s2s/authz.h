/*
 * authz: the domain pairs one server-to-server stream may carry, in each direction, and the
 * ones it is negotiating. SASL EXTERNAL (common/auth/external.h), Server Dialback
 * (dialback.h) and bidirectional streams (bidi.h) build this state; every stanza that
 * crosses the stream is checked against it.
 *
 * A pair is (from, to), two normalised domains, in the direction of the stanzas it allows:
 *   AUTHZ_IN   the peer may send us stanzas from `from` (its domain) to `to` (ours);
 *   AUTHZ_OUT  we may send the peer stanzas from `from` (ours) to `to` (its domain).
 * A pair is pending while its authentication runs, then valid; a refused pair is removed,
 * and may be tried again. Several pairs on one stream are XEP-0220 §2.6's multiplexing:
 * other sender domains (a MUC service beside the main domain), other target domains.
 *
 * Direction. Without XEP-0288 a stream carries stanzas one way only (XEP-0220 §2.3): an
 * inbound stream (the peer connected) holds IN pairs, an outbound one OUT pairs, and
 * authz_add() refuses the other direction. After authz_set_bidi() both directions may be
 * negotiated, and every valid pair also allows its inverse (XEP-0288 §2.2):
 *   IN (R, L) valid  => we may send from L to R over this stream: "the inverse of any
 *                       domain pair that has been used in a dialback request", and for
 *                       SASL "the value of the stream's 'to' attribute" (the pair SASL
 *                       gives is (stream from, stream to), so its inverse is exactly that);
 *   OUT (L, R) valid => the peer may send from R to L.
 * Prosody and ejabberd use a bidi stream only for those inverses; neither starts dialback
 * in the reverse direction, though XEP-0288 allows it and this module does not mind.
 *
 * Checking a stanza. On receipt: its `to` domain must be one we serve (else host-unknown,
 * the caller's check), then authz_may_receive(from domain, to domain) must hold (else
 * invalid-from, RFC 6120 §4.9.3.9). Before sending over a stream: authz_may_send().
 *
 * Bounds (config: s2s.max_domain_pairs, s2s.max_dialback_pending): pairs of both
 * directions and states together, and pending ones, per stream. Past either, authz_add()
 * fails with -ENOSPC, which the caller turns into the protocol's answer (dialback:
 * resource-constraint). A lookup walks the pairs: at most max_domain_pairs, and usually one
 * to three (Prosody and ejabberd open one stream per domain pair and never multiplex).
 *
 * Ownership: one per stream, owned by the thread that owns the stream; the pairs' strings
 * are the module's copies. A stream restart (after STARTTLS or SASL) discards what was
 * negotiated before it (RFC 6120 §5.4.3.3, §6.4.6): authz_free() and authz_init() again.
 */
#ifndef STARLING_S2S_AUTHZ_H
#define STARLING_S2S_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum authz_dir {
    AUTHZ_IN,  /* stanzas from the peer's domain to ours */
    AUTHZ_OUT, /* stanzas from our domain to the peer's */
};

struct authz_limits {
    uint32_t max_pairs;   /* s2s.max_domain_pairs: pairs of any state and direction */
    uint32_t max_pending; /* s2s.max_dialback_pending: pending pairs */
};

struct authz_pair {
    const char *from, *to; /* NUL-terminated; both in one allocation */
    uint16_t from_len, to_len;
    uint8_t dir; /* enum authz_dir */
    bool pending;
    uint32_t since; /* when it was added (the caller's clock, seconds) */
};

struct authz;

/* An empty table for a stream that the peer opened (inbound) or that we opened. */
void authz_init(struct authz *a, const struct authz_limits *lim, bool inbound);

void authz_free(struct authz *a);

/* XEP-0288 was negotiated on this stream (we sent <bidi/>, or received it). */
void authz_set_bidi(struct authz *a);

/*
 * Adds (from, to) in direction dir, pending or valid. Returns 0; -EEXIST when the pair is
 * there already (pending or valid); -EPERM for a direction this stream cannot carry;
 * -ENOSPC past a bound; -EINVAL for an empty or too long domain; -ENOMEM.
 */
int authz_add(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
              const char *to, size_t to_len, bool pending, uint32_t now);

/* The pair, pending or valid, or NULL. Valid until the table changes. */
const struct authz_pair *authz_find(const struct authz *a, enum authz_dir dir, const char *from,
                                    size_t from_len, const char *to, size_t to_len);

/* A pending pair becomes valid. -ENOENT unless it is there and pending. */
int authz_settle(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len);

/* Removes the pair (a refused or failed one). -ENOENT if it is not there. */
int authz_remove(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len);

/* Removes the pair and hands over its strings, one block to free(): `from` at its start,
 * `to` after from's NUL. NULL if it is not there. What lets a caller report a pair it
 * drops without allocating. */
char *authz_take(struct authz *a, enum authz_dir dir, const char *from, size_t from_len,
                 const char *to, size_t to_len);

/* May we send a stanza from `from` (our domain) to `to` over this stream? */
bool authz_may_send(const struct authz *a, const char *from, size_t from_len, const char *to,
                    size_t to_len);

/* May the peer send us a stanza from `from` (its domain) to `to` over this stream? */
bool authz_may_receive(const struct authz *a, const char *from, size_t from_len, const char *to,
                       size_t to_len);

/* Valid pairs in direction dir, or pending pairs (both directions). */
unsigned authz_valid(const struct authz *a, enum authz_dir dir);
unsigned authz_pending(const struct authz *a);

/* The i-th pair (0 <= i < count) in insertion order, for walks; NULL past the end. */
const struct authz_pair *authz_at(const struct authz *a, unsigned i);

/* ---- layout ------------------------------------------------------------------------------- */

struct authz {
    struct authz_limits lim;
    bool inbound;
    bool bidi;
    unsigned n, cap;
    unsigned npending;
    unsigned nvalid[2];
    struct authz_pair *v;
};

#endif
