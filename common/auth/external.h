/*
 * external: SASL EXTERNAL between servers (XEP-0178, RFC 6120 §6, RFC 4422 appendix A),
 * both sides, as code that does no I/O: the receiving server's machine takes the
 * character data of <auth/> and <response/> and returns the element to send and an event;
 * the initiating server's side is a builder and a reader.
 *
 * What the certificate proves is an input, not something this module computes: the
 * caller verifies the chain against its trust anchors (TLS) and matches the stream's
 * 'from' against the certificate's identifiers by RFC 6125 (DNS-ID with wildcards, SRV-ID,
 * XmppAddr: common/auth/tls), once, when its stream features are due, and hands both
 * results in struct external_peer.
 *
 * Receiving server (XEP-0178 §3 steps 9 to 11):
 *   - offer EXTERNAL only when external_offer() says so: the stream is encrypted, the chain
 *     verified and it names the stream's 'from' (Prosody does the same; ejabberd offers it
 *     on every encrypted stream and fails it later);
 *   - the authorization identity may be empty ("=") or the stream's 'from' (XEP-0178 §3:
 *     older initiating servers always send it, and SHOULD still); anything else is
 *     invalid-authzid. ejabberd does not look at it at all; Prosody compares it as we do;
 *   - success when the certificate identifies the claimed domain: SUCCESS names it; the
 *     caller sends <success/>, restarts the stream and authorises the pair (stream 'from',
 *     stream 'to') in the stream's authz;
 *   - failures: invalid-mechanism (not EXTERNAL), encryption-required (no TLS),
 *     incorrect-encoding (bad base64), invalid-authzid, not-authorized (the certificate
 *     does not identify the domain, or the stream has no 'from' to match), aborted
 *     (<abort/>), malformed-request (a call out of order). After a failure the stream
 *     stays open: XEP-0178 step 11b allows dialback to follow, and ejabberd always tries
 *     dialback on the same stream after EXTERNAL failed (Prosody closes it instead).
 *   - <auth/> without an initial response gets an empty challenge ("="), and the
 *     <response/> to it carries the authorization identity (RFC 6120 §6.4.2).
 *
 * Initiating server: external_client_offered() on the features; external_client_auth()
 * sends the authorization identity, which should be our domain for older receivers
 * (Prosody and ejabberd both send it) or "=" (XEP-0178 §3's example);
 * external_client_answer() reads what comes back. On failure, go on with dialback.
 *
 * Base64: whitespace around the text is ignored (XEP-0288's example wraps it in line
 * breaks), none inside it.
 *
 * Memory: the answer is appended to out whole or not at all; when it could not be, a call
 * returns 0 (no event) and the caller closes the stream with internal-server-error.
 *
 * Ownership: struct external is the caller's, one per stream while it authenticates, on
 * the stream's thread. Strings in an event stay valid until the next call on it.
 */
#ifndef STARLING_EXTERNAL_H
#define STARLING_EXTERNAL_H

#include "common/auth/sasl.h"
#include "common/core/buf.h"
#include "common/xmpp/jid.h"
#include "common/xmpp/xml_tree.h"

#include <stdbool.h>
#include <stddef.h>

#define EXTERNAL_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"

/* What the transport established about the initiating server. */
struct external_peer {
    bool tls;         /* the stream is encrypted */
    bool cert_ok;     /* the peer's certificate chain verified against our trust anchors */
    bool name_ok;     /* and RFC 6125 matching found `from` among its identifiers */
    const char *from; /* the stream header's 'from', normalised; NULL when absent */
};

/* Whether to list EXTERNAL in <mechanisms/>. */
bool external_offer(const struct external_peer *p);

/* Appends <mechanisms xmlns='...xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>. */
int external_mechanisms(struct buf *out);

struct external_event {
    enum sasl_ev kind;   /* SASL_EV_CHALLENGE, SASL_EV_SUCCESS or SASL_EV_FAILURE */
    enum sasl_cond cond; /* FAILURE */
    const char *domain;  /* SUCCESS: the authenticated domain (the stream's 'from') */
};

struct external;

/* Prepares x for one stream's authentication; *peer is copied, its from included. */
void external_init(struct external *x, const struct external_peer *peer);

/*
 * <auth mechanism='mech'>b64</auth> (len 0: no initial response). Appends the answer to
 * out and returns the event. A new <auth/> after a failure starts over; after a success
 * every call fails (malformed-request) until the stream restarts and external_init() runs
 * again.
 */
enum sasl_ev external_start(struct external *x, const char *mech, size_t mech_len, const char *b64,
                            size_t len, struct buf *out, struct external_event *ev);

/* <response>b64</response> to the empty challenge. */
enum sasl_ev external_step(struct external *x, const char *b64, size_t len, struct buf *out,
                           struct external_event *ev);

/* The initiating server sent <abort/>: FAILURE aborted. */
enum sasl_ev external_abort(struct external *x, struct buf *out, struct external_event *ev);

/* ---- the initiating side ------------------------------------------------------------------- */

/* Whether <stream:features/> lists EXTERNAL. */
bool external_client_offered(const struct xml_node *features);

/* Appends <auth mechanism='EXTERNAL'> with authzid in base64, or "=" when it is NULL or
 * empty. 0, -EINVAL (longer than a domain), -ENOMEM. */
int external_client_auth(struct buf *out, const char *authzid);

/* Appends <abort/>: the answer to a challenge, which EXTERNAL with an initial response
 * never gets from a server that follows RFC 4422. */
int external_client_abort(struct buf *out);

/*
 * Reads the receiving server's answer: SASL_EV_SUCCESS, SASL_EV_FAILURE with its condition
 * in *cond (SASL_COND_NONE for one we do not know), SASL_EV_CHALLENGE (abort), or 0 for an
 * element that is none of those.
 */
enum sasl_ev external_client_answer(const struct xml_node *n, enum sasl_cond *cond);

/* ---- layout ------------------------------------------------------------------------------- */

struct external {
    struct external_peer peer; /* peer.from points at from below, or is NULL */
    int state;                 /* enum external_state in external.c */
    char from[JID_PART_MAX + 1];
};

#endif
