/*
 * xmppc: the client side of one XMPP stream (RFC 6120, RFC 6121) for starling-bench, as
 * a state machine that does no I/O: it takes the server's plaintext bytes, writes the
 * client's bytes through a callback, and reports events. The engine (load.c) owns the
 * socket and TLS; tests drive it with canned server transcripts.
 *
 * The login runs inside the module, as any client does it:
 *   stream header -> features -> [<starttls/> -> <proceed/> -> (caller runs TLS) -> header
 *   -> features] -> SASL (PLAIN, SCRAM-SHA-1/256, saslc.h) -> stream restart -> features
 *   -> bind -> [session, when the server lists it without <optional/>] -> [XEP-0198
 *   <enable/> -> <enabled/>, when configured] -> [roster get] -> initial presence -> the
 *   server's echo of it (RFC 6121 §4.2.2) -> XMPPC_EV_ONLINE.
 * Online, it answers what a client must answer (XEP-0199 pings, roster pushes, other
 * requests with service-unavailable; subscription requests when configured) and hands
 * messages, presences and iq responses to the caller as events carrying the parser's
 * event (common/xmpp/xml.h: to/from/type/id decoded, no copy, no tree).
 *
 * Stream management (sm.h), when configured: the module counts the stanzas of both
 * directions, answers the server's <r/> and checks its <a/>. Stanzas the caller writes
 * past it (the engine's prebuilt messages) are announced with xmppc_sent(), which also
 * sends an <r/> every ack_every stanzas.
 *
 * Buffers: xmppc_feed() lends the bytes until xmppc_next() returns XMPPC_EV_NONE; an
 * incomplete stanza at the end is copied into the client's own buffer. Spans in an event
 * stay valid until the next xmppc_next() call.
 *
 * Memory: per client, the struct (with its parser and SASL state) and, while a stanza is
 * half received, its bytes and the parser's work area (xmppc_trim() releases them when
 * idle). Trees of the few stanzas read in depth (features, SASL, bind, roster) go into
 * the thread's arena (struct xmppc_shared) and are dropped at once.
 *
 * Threads: a client and its xmppc_shared belong to one thread.
 */
#ifndef STARLING_BENCH_XMPPC_H
#define STARLING_BENCH_XMPPC_H

#include "bench/saslc.h"
#include "bench/sm.h"
#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/xmpp/xml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum xmppc_tls {
    XMPPC_TLS_NONE,     /* plain TCP; STARTTLS is not used even when offered */
    XMPPC_TLS_STARTTLS, /* RFC 6120 §5: required; a server that does not offer it fails */
    XMPPC_TLS_DIRECT,   /* XEP-0368: the caller runs TLS before xmppc_start() */
};

/* What every client of a run shares; read-only once clients exist. */
struct xmppc_config {
    const char *domain;
    const char *resource; /* requested in the bind; NULL or "": the server picks one */
    enum xmppc_tls tls;
    enum saslc_mech mech;
    bool roster;            /* fetch the roster before initial presence (as clients do) */
    bool accept_subs;       /* approve every subscription request (presence scenarios) */
    int priority;           /* of initial presence; 0 sends none */
    bool sm;                /* enable XEP-0198 stream management after binding */
    unsigned ack_every;     /* sm: an <r/> after this many stanzas sent; 0: never */
    const char *test_nonce; /* tests only: a fixed SCRAM client nonce; NULL in real runs */
};

/* What the clients of one thread share. */
struct xmppc_shared {
    struct arena arena;
    char scratch[16384]; /* the parsers' scratch (xml_init) */
};

enum xmppc_state {
    XMPPC_IDLE,
    XMPPC_HEADER,   /* our stream header is out; waiting for the server's */
    XMPPC_FEATURES, /* waiting for <stream:features/> */
    XMPPC_STARTTLS, /* <starttls/> sent */
    XMPPC_TLS,      /* the caller runs the TLS handshake */
    XMPPC_SASL,     /* <auth/> sent; challenges until <success/> */
    XMPPC_BIND,     /* bind iq sent */
    XMPPC_SESSION,  /* session iq sent */
    XMPPC_SM,       /* <enable/> sent (XEP-0198) */
    XMPPC_ROSTER,   /* roster get sent */
    XMPPC_PRESENCE, /* initial presence sent; waiting for its echo */
    XMPPC_ONLINE,
    XMPPC_CLOSING, /* </stream:stream> sent */
    XMPPC_CLOSED,  /* the stream is over, cleanly or not */
};

/* Why a stream failed; counted by the engine, named by xmppc_fail_name(). */
enum xmppc_fail {
    XMPPC_FAIL_NONE,
    XMPPC_FAIL_STREAM,   /* <stream:error/>, or the server's XML broke */
    XMPPC_FAIL_TLS,      /* STARTTLS not offered, or refused */
    XMPPC_FAIL_MECH,     /* the mechanism asked for is not offered */
    XMPPC_FAIL_AUTH,     /* SASL <failure/> (detail: its condition) */
    XMPPC_FAIL_SASL,     /* the server's SCRAM messages were wrong: nonce, signature */
    XMPPC_FAIL_BIND,     /* bind or session refused */
    XMPPC_FAIL_CLOSED,   /* the server ended the stream unasked */
    XMPPC_FAIL_PROTOCOL, /* something a login cannot go on from */
    XMPPC_FAIL_MEMORY,
    XMPPC_FAIL_UNSUPPORTED, /* the server lacks a feature asked for (stream management) */
    XMPPC_FAIL_COUNT
};

enum xmppc_ev_kind {
    XMPPC_EV_NONE,     /* every byte fed is consumed: feed more */
    XMPPC_EV_STARTTLS, /* <proceed/>: start TLS on the transport, then xmppc_tls_ready();
                          the bytes fed after <proceed/> were discarded (they predate TLS) */
    XMPPC_EV_ROSTER,   /* a roster result (at login or xmppc_roster_get()): items, both */
    XMPPC_EV_ONLINE,   /* initial presence came back: stanzas flow */
    XMPPC_EV_MESSAGE,  /* x: the stanza */
    XMPPC_EV_PRESENCE, /* x: the stanza (subscription requests are already approved) */
    XMPPC_EV_IQ,       /* x: a result or error for an iq the caller sent */
    XMPPC_EV_SM_ACK,   /* the server's <a/>, checked: h */
    XMPPC_EV_SM_REQ,   /* the server's <r/>, answered */
    XMPPC_EV_CLOSED,   /* the server closed the stream after xmppc_close() */
    XMPPC_EV_FAILED,   /* fail, detail; the stream is dead, close the connection */
};

struct xmppc_ev {
    enum xmppc_ev_kind kind;
    enum xmppc_fail fail;
    const char *detail;        /* FAILED: the error condition, or a static explanation */
    const struct xml_event *x; /* MESSAGE, PRESENCE, IQ */
    uint32_t items, both;      /* ROSTER: items, and those with subscription='both' */
    uint32_t h;                /* SM_ACK: the stanzas of ours the server has handled */
    bool error;                /* ROSTER: the server answered with an error */
};

/* Bytes for the server (plaintext). Must take all n bytes (0) or fail (-errno). */
typedef int (*xmppc_write_fn)(void *ud, const char *p, size_t n);

struct xmppc;

void xmppc_shared_init(struct xmppc_shared *sh);
void xmppc_shared_free(struct xmppc_shared *sh);

/* Prepares x (state IDLE). cfg and sh must outlive it. */
void xmppc_init(struct xmppc *x, const struct xmppc_config *cfg, struct xmppc_shared *sh,
                xmppc_write_fn write, void *ud);

/*
 * Starts a login as user (localpart) with password, sending the stream header; on a
 * Direct TLS connection, once the handshake is done. keys: the account's SCRAM cache
 * (saslc.h), may be NULL; it must outlive the login. 0, or -ENOMEM.
 */
int xmppc_start(struct xmppc *x, const char *user, const char *password, struct saslc_keys *keys);

/* After XMPPC_EV_STARTTLS, once the TLS handshake is done: restarts the stream. */
void xmppc_tls_ready(struct xmppc *x);

/* Lends p[0..n) (see Buffers above). */
void xmppc_feed(struct xmppc *x, const char *p, size_t n);

/* The next event from what was fed. Call until XMPPC_EV_NONE. */
enum xmppc_ev_kind xmppc_next(struct xmppc *x, struct xmppc_ev *ev);

/* Sends one stanza's bytes (online). 0 or the write callback's error. */
int xmppc_send(struct xmppc *x, const char *p, size_t n);

/* The caller wrote n stanzas to the server itself: counted for stream management, and
 * an <r/> follows when one is due. */
void xmppc_sent(struct xmppc *x, uint32_t n);

/* Asks for the roster again (online); its result comes as XMPPC_EV_ROSTER. */
int xmppc_roster_get(struct xmppc *x);

/* Ends the stream: </stream:stream>; XMPPC_EV_CLOSED follows the server's answer. */
void xmppc_close(struct xmppc *x);

/* Counts the client online although its presence never came back (a server that does not
 * echo it). True when it was waiting for the echo. */
bool xmppc_force_online(struct xmppc *x);

/* The element tree of the stanza of the current event, in the shared arena (reset by the
 * next xmppc_next() call). NULL when memory ran out. */
struct xml_node *xmppc_tree(struct xmppc *x, const struct xml_event *ev);

static inline enum xmppc_state xmppc_state(const struct xmppc *x);

/* The full JID bound, NUL-terminated, or NULL before binding. */
static inline const char *xmppc_jid(const struct xmppc *x);

/* Releases the input buffer and parser work area when no stanza is half received. */
void xmppc_trim(struct xmppc *x);

/* Frees everything; x may be initialised again. */
void xmppc_free(struct xmppc *x);

const char *xmppc_fail_name(enum xmppc_fail f);

/* ---- layout: treat as private ----------------------------------------------------------- */

struct xmppc {
    const struct xmppc_config *cfg;
    struct xmppc_shared *sh;
    xmppc_write_fn write;
    void *ud;
    uint8_t state; /* enum xmppc_state */
    bool tls_done, authed, need_session, dead, parsing;
    const char *lend; /* bytes lent by xmppc_feed(), when not copied into in */
    size_t lend_len;
    struct buf in;         /* bytes of an incomplete stanza (and what follows it) */
    char *user, *password; /* copies while logging in */
    char *jid;             /* the bound full JID */
    struct saslc_keys *keys;
    struct saslc sasl;
    struct sm sm;
    struct xml_event ev;
    struct xml_parser xp;
};

static inline enum xmppc_state xmppc_state(const struct xmppc *x)
{
    return (enum xmppc_state)x->state;
}

static inline const char *xmppc_jid(const struct xmppc *x)
{
    return x->jid;
}

#endif
