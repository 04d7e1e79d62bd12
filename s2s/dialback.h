/*
 * dialback: Server Dialback (XEP-0220) with keys as XEP-0185 recommends, as a state machine
 * per stream that does no I/O. The s2s stream hands it the dialback elements it receives
 * (as trees, xml_tree.h) and the answers it obtained elsewhere; the machine appends what to
 * send on this stream to a struct buf and says with an event what else to do.
 *
 * Roles and words. Every dialback negotiation is about a pair (sender, target): the sender
 * (originating) domain asks to send stanzas to the target domain. On one stream we may be
 *   the initiating server: dialback_start() sends <db:result/> with our key for (our
 *       domain, their domain); their answer gives ALLOWED_OUT or REFUSED_OUT;
 *   the receiving server: their <db:result/> gives VERIFY; we ask the sender's
 *       authoritative server (dialback_verify_send() on another stream, or decide
 *       ourselves, e.g. because the peer's certificate names the sender, XEP-0344 §2.4) and
 *       hand the outcome to dialback_verified(), which answers and gives ALLOWED_IN;
 *   the authoritative server: their <db:verify/> is answered at once (ANSWERED), from the
 *       key alone: nothing is kept;
 *   the receiving server's other half: on a stream to an authoritative server our
 *       <db:verify/> gets an answer: VERIFIED, for the inbound stream whose id it names.
 * Requests travel in the direction of the stream and answers back, unless the stream is
 * bidirectional (XEP-0288, authz_set_bidi()), where both do both ways. Pairs live in the
 * stream's struct authz (authz.h), which says what the stream may carry afterwards.
 *
 * Keys (XEP-0185): hex of HMAC-SHA256 keyed with the hex text of SHA256(secret), over
 * "Receiving Server" SP "Originating Server" SP "Stream ID". The stream ID is the one in
 * the response stream header, i.e. chosen by the receiving side of the TCP connection (we
 * choose it on an inbound stream, the peer on an outbound one), after the last stream
 * restart: a key made before STARTTLS is worthless after it. Prosody and ejabberd compute
 * the same key (both hex the digest before keying, as the XEP's examples do); it matters
 * only that we verify our own keys, but the XEP's examples then serve as tests. The
 * secret is per node, in a file beside the database (secret.h: PATH.dialback).
 * An inbound stream's ID must be unpredictable and unique (we use 128 random bits): the
 * key of a stream whose ID an attacker could predict could be replayed on another.
 *
 * Elements. We always write the "db" prefix and never declare it on the element: the
 * stream header we send must declare xmlns:db (DIALBACK_STREAM_DECL) on every stream,
 * inbound and outbound, as RFC 3920 servers expect. ejabberd's codec matches the literal
 * name "db:result" (it never resolves the prefix) and jabberd 1.x accepted only "db", so
 * no other prefix would do; Prosody resolves namespaces and would refuse an undeclared
 * prefix as not-well-formed. What we read is matched by namespace, whatever the prefix
 * (the XEP asks for the stream header's, which our XML parser resolves like any other).
 * Support for dialback is the namespace declaration on the peer's stream header (XEP-0220
 * §2.4.1); a peer whose header has no version='1.0' sends no stream features, and
 * Prosody and ejabberd then send their <db:result/> right after its header: so may we.
 *
 * Errors (XEP-0220 §2.4.2, §2.5). What is wrong with one domain pair gets a dialback error
 * (<db:result type='error'>, a stanza error condition inside), never a stream error: the
 * stream may carry other pairs. Stream errors are kept for what breaks the protocol itself:
 *   improper-addressing  a dialback element without 'from' or 'to', or not a domain there
 *   bad-format           no key, no 'id' on <db:verify/>, an unknown 'type', elements inside
 *                        a request
 *   policy-violation     a key or id longer than DIALBACK_KEY_MAX / DIALBACK_ID_MAX
 *   invalid-from         a request whose sender is a domain we serve
 *   not-authorized       an answer that matches no request sent on this stream (the mid-2012
 *                        attacks of XEP-0220 §3.1; Prosody says RFC 3920's invalid-id,
 *                        which RFC 6120 no longer defines), and the last pair of a stream
 *                        found invalid (the XEP: send type='invalid', then close)
 *   unsupported-stanza-type  a request on a stream direction that cannot carry it (a
 *                        request on an outbound stream without bidi) or the reverse
 *   internal-server-error    memory ran out
 * The dialback errors we send: item-not-found (a target we do not serve; ejabberd says
 * not-allowed there), resource-constraint (past s2s.max_dialback_pending or
 * s2s.max_domain_pairs: the XEP says the initiating server then opens a new stream),
 * forbidden (an invalid key while other pairs are valid), remote-server-timeout
 * (s2s.dialback_timeout), remote-server-not-found (the authoritative server answered with
 * an error), and whatever the caller passes to dialback_verified() (remote-connection-failed,
 * policy-violation, not-authorized when s2s.secure_auth refuses the peer...).
 * Prosody closes its outbound stream on any answer but type='valid', errors included, and
 * takes a type='error' <db:verify/> answer for an invalid key; ejabberd bounces and retries.
 *
 * Interop, in what we accept (the XEP says less than peers send):
 *   - <db:result type='valid'/> with text or an 'id': Prosody puts the key and the stream
 *     ID in its answers (and the key in its <db:verify/> answers). Answers' text is ignored.
 *   - a dialback error without its <error/> child reads as undefined-condition.
 *   - keys and text around them: the XEP's own examples wrap the key in whitespace, so
 *     leading and trailing XML whitespace is trimmed; Prosody compares untrimmed text.
 *   - a <db:verify/> request whose 'from' is not the stream's peer (ejabberd sends them on a
 *     separate connection, Prosody on any stream it has): answered from the key alone.
 *   - ejabberd verifies keys over a fresh outbound connection on which it first tries
 *     STARTTLS and SASL EXTERNAL, then sends <db:verify/> whether SASL failed or not; a
 *     failed EXTERNAL must therefore leave the stream open for dialback.
 *   - a request repeated for a pair already valid is answered valid again (no re-check: the
 *     stream already proved it); one repeated while pending waits for the first's answer.
 *
 * Bounds: pending requests per stream (s2s.max_dialback_pending: the peer's requests
 * awaiting verification, and separately our <db:verify/> requests awaiting answers on it),
 * pairs per stream (s2s.max_domain_pairs, in struct authz), and the age of anything
 * pending (s2s.dialback_timeout: dialback_expire()). A verify request costs us a
 * connection to a domain the peer names: that is why pending requests are few.
 *
 * How the stream code uses this (s2s/stream.c; sasl is common/auth/external.h).
 *   Once per process: secret_load(storage.path, ".dialback", secret) (secret.h);
 *   dialback_config_secret(&dc, secret, SECRET_LEN); dc.domains/ndomains = the domains
 *   served; dc.timeout = s2s.dialback_timeout; dc.max_pending = s2s.max_dialback_pending;
 *   struct authz_limits lim = {s2s.max_domain_pairs, s2s.max_dialback_pending}.
 *   After every stream (re)start, once the response header's ID is known (ours inbound,
 *   the peer's outbound): authz_free() the old table if any, authz_init(&a, &lim, inbound),
 *   dialback_free() the old machine if any, dialback_init(&d, &dc, &a, id, id_len).
 *
 *   Outbound (we connected for the pair (L, R): L ours, R the peer's domain):
 *     1. send our header with DIALBACK_STREAM_DECL, from=L to=R version='1.0'; read the
 *        peer's header (its id) and features; STARTTLS and restart as RFC 6120 says;
 *     2. on the features after TLS: bidi_offered() -> bidi_request() and authz_set_bidi();
 *        external_client_offered() and our certificate -> external_client_auth(out, L),
 *        then external_client_answer() on its answer: SUCCESS -> restart the stream, then
 *        authz_add(&a, AUTHZ_OUT, L, R, false, now) (and authz_set_bidi() again if it was
 *        set) on the fresh table; FAILURE -> go on with dialback on this stream;
 *     3. dialback: dialback_start(&d, L, R, now, out). Every element in DIALBACK_NS from
 *        then on goes to dialback_recv(): ALLOWED_OUT -> flush (sender, target)'s queue;
 *        REFUSED_OUT -> bounce it with ev.bounce. More pairs on the same stream: another
 *        dialback_start() (another target only if dialback_feature_parse() said ERRORS);
 *     4. this is also the stream for our questions to R as an authoritative server:
 *        dialback_verify_send(&d, sender, target, id, key, key_len, now, out) with what a
 *        VERIFY on an inbound stream gave; its answer comes from dialback_recv() as
 *        VERIFIED: find the inbound stream whose ID is ev.id and call dialback_verified()
 *        there with ev.result and ev.cond (no such stream: drop it);
 *     5. before writing a stanza: authz_may_send(&a, from domain, to domain).
 *   Inbound (the peer connected):
 *     1. pick the stream ID (128 random bits, again at every restart); send our header with
 *        DIALBACK_STREAM_DECL and it; features: STARTTLS first; after TLS,
 *        external_init(&x, &peer), then external_mechanisms() when external_offer(&peer),
 *        bidi_feature() while nothing is authenticated, dialback_feature();
 *     2. <auth/>, <response/>, <abort/> -> external_start/step/abort(); SUCCESS -> restart
 *        the stream; on the fresh table authz_add(&a, AUTHZ_IN, ev.domain, stream 'to',
 *        false, now) (and authz_set_bidi() if it was set);
 *     3. an element in BIDI_NS -> bidi_recv(&a, n): NULL, or close with that stream error;
 *     4. an element in DIALBACK_NS -> dialback_recv(): VERIFY -> decide or ask:
 *          - s2s.secure_auth and the certificate did not verify: dialback_verified(&d,
 *            ev.sender, ev.target, DIALBACK_ERROR, DIALBACK_NOT_AUTHORIZED, out, &ev2);
 *          - the certificate verified and names ev.sender (XEP-0344): ... DIALBACK_VALID;
 *          - else on an outbound stream to ev.sender (open one if need be, XEP-0288: never
 *            this one): dialback_verify_send(); -ENOSPC -> dialback_verified(ERROR,
 *            RESOURCE_CONSTRAINT), -EEXIST -> nothing (the first answer settles it),
 *            no connection possible -> dialback_verified(ERROR, REMOTE_CONNECTION_FAILED);
 *        copy ev.sender/target/id/key first if they must outlive the next call on d;
 *        ANSWERED (we were the authoritative server), ALLOWED_IN, REFUSED_IN: nothing but
 *        sending out (and a log line);
 *     5. a stanza: its 'to' domain one we serve (else host-unknown), then
 *        authz_may_receive(&a, from domain, to domain) (else invalid-from).
 *   Both: STREAM_ERROR from any call -> send out, then the stream error ev.stream_error,
 *   and close; a timer at dialback_deadline() (0: none) -> dialback_expire() until NONE,
 *   handling each event as above; when the stream is gone, dialback_drain() until NONE
 *   (REFUSED_OUT: bounce; VERIFIED: as in outbound 4), then dialback_free() and
 *   authz_free().
 *
 * Ownership and threads: the caller owns struct dialback and its struct authz, one per
 * stream, on the stream's thread; struct dialback_config is shared read-only by every
 * stream of a process and must outlive them. Strings in an event stay valid until the next
 * call on the same machine. Domains given to the API are normalised (jid_prep_domain()).
 */
#ifndef STARLING_S2S_DIALBACK_H
#define STARLING_S2S_DIALBACK_H

#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/xmpp/xml_tree.h"
#include "s2s/authz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIALBACK_NS          "jabber:server:dialback"
#define DIALBACK_NS_FEATURE  "urn:xmpp:features:dialback"
#define DIALBACK_STREAM_DECL " xmlns:db='" DIALBACK_NS "'" /* on every stream header we send */

#define DIALBACK_KEY_LEN 64  /* our keys: hex of SHA-256 */
#define DIALBACK_KEY_MAX 256 /* longest key accepted from a peer (others use 40 to 64) */
#define DIALBACK_ID_MAX  256 /* longest stream ID (Prosody's are 36 bytes, ejabberd's ~20) */

enum dialback_kind {
    DIALBACK_RESULT, /* <db:result/> */
    DIALBACK_VERIFY, /* <db:verify/> */
};

/* The 'type' attribute; a request has none. */
enum dialback_type {
    DIALBACK_REQUEST = 0,
    DIALBACK_VALID,
    DIALBACK_INVALID,
    DIALBACK_ERROR,
};

/*
 * Stanza error conditions (RFC 6120 §8.3.3) inside a dialback error, and XEP-0220's
 * remote-connection-failed, which RFC 6120 defines only as a stream error but the XEP puts
 * in the stanza errors' namespace all the same.
 */
enum dialback_cond {
    DIALBACK_COND_NONE = 0,
    DIALBACK_BAD_REQUEST,
    DIALBACK_CONFLICT,
    DIALBACK_FEATURE_NOT_IMPLEMENTED,
    DIALBACK_FORBIDDEN,
    DIALBACK_GONE,
    DIALBACK_INTERNAL_SERVER_ERROR,
    DIALBACK_ITEM_NOT_FOUND,
    DIALBACK_JID_MALFORMED,
    DIALBACK_NOT_ACCEPTABLE,
    DIALBACK_NOT_ALLOWED,
    DIALBACK_NOT_AUTHORIZED,
    DIALBACK_POLICY_VIOLATION,
    DIALBACK_RECIPIENT_UNAVAILABLE,
    DIALBACK_REDIRECT,
    DIALBACK_REGISTRATION_REQUIRED,
    DIALBACK_REMOTE_CONNECTION_FAILED,
    DIALBACK_REMOTE_SERVER_NOT_FOUND,
    DIALBACK_REMOTE_SERVER_TIMEOUT,
    DIALBACK_RESOURCE_CONSTRAINT,
    DIALBACK_SERVICE_UNAVAILABLE,
    DIALBACK_SUBSCRIPTION_REQUIRED,
    DIALBACK_UNDEFINED_CONDITION,
    DIALBACK_UNEXPECTED_REQUEST,
    DIALBACK_COND_COUNT,
};

/* The element name ("item-not-found") and the error type we write ("cancel"). */
const char *dialback_cond_name(enum dialback_cond c);
const char *dialback_cond_type(enum dialback_cond c);

/* ---- keys ---------------------------------------------------------------------------------- */

/* One per process: the secret and the domains we serve. Read-only once streams use it. */
struct dialback_config {
    char hmac_key[64];          /* hex SHA256(secret): dialback_config_secret() fills it */
    const char *const *domains; /* the domains we serve, normalised */
    unsigned ndomains;
    uint32_t timeout;     /* s2s.dialback_timeout, seconds */
    uint32_t max_pending; /* s2s.max_dialback_pending: our <db:verify/>s awaiting answers */
};

/* Derives the HMAC key from the secret (32 random bytes from secret_load(); the XEP's
 * examples use text). */
void dialback_config_secret(struct dialback_config *c, const void *secret, size_t len);

/* Whether we serve `domain` (normalised). */
bool dialback_local(const struct dialback_config *c, const char *domain, size_t len);

/* The key for (receiving, originating, stream id): 64 hex digits and a NUL in out.
 * 0, -EINVAL (a domain past JID_PART_MAX, an id past DIALBACK_ID_MAX) or -ENOMEM. */
int dialback_key(const struct dialback_config *c, const char *receiving, size_t rlen,
                 const char *originating, size_t olen, const char *id, size_t idlen,
                 char out[DIALBACK_KEY_LEN + 1]);

/* ---- elements ------------------------------------------------------------------------------ */

/* A dialback element as read or to be written. Strings are NUL-terminated. */
struct dialback_elem {
    enum dialback_kind kind;
    enum dialback_type type;
    enum dialback_cond cond; /* DIALBACK_ERROR */
    const char *from, *to;   /* domains; normalised when read */
    const char *id;          /* <db:verify/>: the stream ID; NULL on <db:result/> */
    const char *key;         /* requests: the key (trimmed when read); NULL otherwise */
    size_t key_len;
};

/* What is wrong with an element read, each mapped to its stream error (see above). */
enum dialback_perr {
    DIALBACK_OK = 0,
    DIALBACK_NOT_DIALBACK,        /* not <result/> or <verify/> in jabber:server:dialback */
    DIALBACK_IMPROPER_ADDRESSING, /* 'from' or 'to' missing or not a domain */
    DIALBACK_BAD_FORMAT,          /* no key, no id, unknown type, elements in a request */
    DIALBACK_TOO_LONG,            /* key or id past its bound: policy-violation */
    DIALBACK_NOMEM,               /* the arena ran out: internal-server-error */
};

/* The stream error condition for a parse failure ("improper-addressing"...). */
const char *dialback_perr_condition(enum dialback_perr e);

/*
 * Reads n, an element the stream parser reported (so the stream header's prefixes
 * resolved), into *e; strings are copies in arena a. Strict on what decides anything
 * (addresses, type, id, key), lenient on the rest (see "Interop" above).
 */
enum dialback_perr dialback_parse(const struct xml_node *n, struct arena *a,
                                  struct dialback_elem *e);

/* Appends e as XML, every value escaped. 0 or -ENOMEM (out then holds a prefix). */
int dialback_write(struct buf *out, const struct dialback_elem *e);

/* The stream feature we offer: <dialback xmlns='urn:xmpp:features:dialback'><errors/>... */
int dialback_feature(struct buf *out);

enum dialback_support {
    DIALBACK_FEATURE_NONE,   /* no feature: the peer may still do RFC 3920 dialback */
    DIALBACK_FEATURE_PLAIN,  /* <dialback/> without <errors/> */
    DIALBACK_FEATURE_ERRORS, /* dialback errors understood: target multiplexing is fine */
};

/* What a <stream:features/> element says about dialback. The XEP asks an initiating server
 * not to multiplex target domains unless DIALBACK_FEATURE_ERRORS. */
enum dialback_support dialback_feature_parse(const struct xml_node *features);

/* ---- the machine ----------------------------------------------------------------------- */

enum dialback_ev {
    DIALBACK_EV_NONE = 0,     /* nothing beyond sending what was appended to out, if any */
    DIALBACK_EV_VERIFY,       /* the peer asks for (sender, target) with key: verify it with
                               * the sender's authoritative server on another stream
                               * (dialback_verify_send(..., id, key)), or decide; then
                               * dialback_verified() on this machine */
    DIALBACK_EV_VERIFIED,     /* our <db:verify/> for (sender, target, id) was answered, or
                               * failed (result ERROR, cond): find the inbound stream whose
                               * ID is id and call dialback_verified() on it (none: drop it,
                               * XEP-0220 §2.1.2) */
    DIALBACK_EV_ANSWERED,     /* we answered a <db:verify/> (result), for the log */
    DIALBACK_EV_ALLOWED_IN,   /* the peer may now send from sender to target */
    DIALBACK_EV_REFUSED_IN,   /* we refused the peer's (sender, target): result, cond */
    DIALBACK_EV_ALLOWED_OUT,  /* we may now send from sender to target: flush its queue */
    DIALBACK_EV_REFUSED_OUT,  /* our (sender, target) was refused or failed: return its
                               * queued stanzas to their senders with `bounce` (XEP-0220
                               * §2.1.1: internal-server-error for an invalid key,
                               * remote-server-timeout for an error); after
                               * resource-constraint, a new stream may try again */
    DIALBACK_EV_STREAM_ERROR, /* send out, then the stream error `stream_error`; close */
};

struct dialback_event {
    enum dialback_ev kind;
    const char *sender, *target; /* the pair, as in the request that made it */
    const char *id;              /* VERIFY: this stream's ID; VERIFIED: the request's */
    const char *key;             /* VERIFY */
    size_t key_len;
    enum dialback_type result;    /* VERIFIED, ANSWERED, REFUSED_*: VALID, INVALID, ERROR */
    enum dialback_cond cond;      /* ERROR results; VERIFIED maps an authoritative server's
                                   * error to remote-server-not-found (XEP-0220 §2.4.2) */
    enum dialback_cond peer_cond; /* VERIFIED, REFUSED_OUT: the peer's own condition */
    enum dialback_cond bounce;    /* REFUSED_OUT */
    const char *stream_error;     /* STREAM_ERROR */
};

struct dialback;

/*
 * Prepares d for a stream whose pairs live in a (initialised, owned by the caller) and
 * whose response header carried the stream ID id[0..id_len). id_len may be 0 when an
 * outbound stream's peer gave none (Prosody refuses such a stream, ejabberd always sends
 * one): we can then still verify keys but not start dialback. Returns 0, or -EINVAL when
 * id is longer than DIALBACK_ID_MAX.
 */
int dialback_init(struct dialback *d, const struct dialback_config *cfg, struct authz *a,
                  const char *id, size_t id_len);

/* Frees what d holds (not the authz). */
void dialback_free(struct dialback *d);

/*
 * An element in jabber:server:dialback arrived on this stream (n as for dialback_parse(),
 * a is scratch for it). now: the caller's clock, in seconds.
 */
enum dialback_ev dialback_recv(struct dialback *d, const struct xml_node *n, struct arena *a,
                               uint32_t now, struct buf *out, struct dialback_event *ev);

/*
 * We (sender, a domain we serve) ask to send to target over this stream: appends
 * <db:result/> with our key and adds the pending OUT pair. 0; -EEXIST (pending or valid
 * already), -ENOSPC (a bound), -EPERM (an inbound stream without bidi), -EINVAL (no stream
 * ID, a sender we do not serve, a bad domain), -ENOMEM.
 */
int dialback_start(struct dialback *d, const char *sender, const char *target, uint32_t now,
                   struct buf *out);

/*
 * On a stream to the authoritative server of `sender`: asks whether `key` is the one it
 * made for (target, sender, id), as a VERIFY event on another stream gave them. Appends
 * <db:verify/>; the answer comes as VERIFIED. 0; -EEXIST (the same request pending),
 * -ENOSPC (max_pending), -EPERM (an inbound stream without bidi), -EDEADLK (id is this
 * stream's own: XEP-0288 forbids verifying on the stream that carried the request),
 * -EINVAL (bad id or key), -ENOMEM.
 */
int dialback_verify_send(struct dialback *d, const char *sender, const char *target, const char *id,
                         const char *key, size_t key_len, uint32_t now, struct buf *out);

/*
 * The outcome for the peer's request (sender, target) that a VERIFY event asked for:
 * VALID, INVALID, or ERROR with the condition to report. Appends the answer. Gives
 * ALLOWED_IN, REFUSED_IN, STREAM_ERROR (an invalid key and no other valid pair), or NONE
 * when no such request is pending (it timed out, or this is a stale answer).
 */
enum dialback_ev dialback_verified(struct dialback *d, const char *sender, const char *target,
                                   enum dialback_type result, enum dialback_cond cond,
                                   struct buf *out, struct dialback_event *ev);

/*
 * Fails the oldest request pending since before now - cfg->timeout: the peer's (answered
 * remote-server-timeout: REFUSED_IN), ours (REFUSED_OUT) or our <db:verify/> (VERIFIED,
 * ERROR). Call it until it gives NONE; STREAM_ERROR only when memory ran out for the
 * answer to the peer, and the request is gone then too, so the next call goes on.
 * dialback_deadline() says when the next one is due.
 */
enum dialback_ev dialback_expire(struct dialback *d, uint32_t now, struct buf *out,
                                 struct dialback_event *ev);

/* When the oldest pending request times out (since + timeout), or 0 when none is pending. */
uint32_t dialback_deadline(const struct dialback *d);

/*
 * The stream is gone: reports each pending request as failed, one per call, as
 * dialback_expire() does but with nothing to send (XEP-0220 §2.1: a closed stream is a
 * dialback error) and remote-connection-failed as the condition of VERIFIED and
 * REFUSED_* (REFUSED_OUT still bounces with remote-server-timeout). It allocates nothing
 * and never fails: call it until it gives NONE, then dialback_free().
 */
enum dialback_ev dialback_drain(struct dialback *d, struct dialback_event *ev);

/* ---- layout ------------------------------------------------------------------------------- */

struct dialback_verify; /* a <db:verify/> of ours awaiting its answer (dialback.c) */

struct dialback {
    const struct dialback_config *cfg;
    struct authz *authz;
    struct dialback_verify *verifies;
    unsigned nverify, verify_cap;
    char *evmem; /* the strings of the last event */
    uint16_t id_len;
    char id[DIALBACK_ID_MAX + 1];
};

#endif
