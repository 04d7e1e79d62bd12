/*
 * c2s: the client front end. One process, T threads; each thread is a front-end thread
 * (common/fe/fe.h: its io_uring, listeners, connections, rings to every router shard)
 * plus what clients need. Nothing is shared between threads but the read-only
 * configuration and the per-address and per-account limits (limit.c, each table under
 * its mutex).
 *
 * Files, by job:
 *   conn.c    what c2s adds to the layer's connection and thread: the ops table
 *   stream.c  the XMPP stream: headers, features, STARTTLS, stream errors, stanza checks
 *   auth.c    SASL negotiation around the sasl core; credentials come from the store
 *   limit.c   what one client address or account may do, across threads (limit.h)
 *   bind.c    resource binding and the legacy session iq
 *   route.c   frames to and from the router: `from` stamping, delivery, re-registration
 *   main.c    process start, threads, control messages from the supervisor
 *
 * Every function here runs on the thread that owns the connection or thread it is given.
 */
#ifndef STARLING_C2S_H
#define STARLING_C2S_H

#include "common/fe/fe.h"

#include <stdbool.h>
#include <stdint.h>

struct auth_wait;
struct sasl;
struct store_client;
struct worker_client;

/* c2s's listeners: indexes in fe_thread.lfd and the `listener` of fe_ops.accepted. */
enum c2s_listener {
    C2S_LISTEN,        /* c2s.listen: STARTTLS */
    C2S_LISTEN_TLS,    /* c2s.listen_tls: Direct TLS (XEP-0368) */
    C2S_LISTEN_WS,     /* c2s.websocket_listen: WebSocket, TLS terminated in front */
    C2S_LISTEN_WS_TLS, /* c2s.websocket_tls_listen: WebSocket over TLS */
};

/* conn.fe.state: c2s's own states, between the layer's FE_OPEN and FE_CLOSING. */
enum conn_state {
    CONN_SASL = FE_PROTO, /* SASL exchange in progress (waiting for the client or the store) */
    CONN_BINDING,         /* bind request at the router */
};

/* conn.fe.flags: c2s's bits (FE_F_PROTO_MASK); the layer's are FE_F_*. */
#define CONN_F_AUTHED    0x0004 /* SASL succeeded */
#define CONN_F_BOUND     0x0008 /* a resource is bound: stanzas are routed */
#define CONN_F_AVAILABLE 0x0040 /* sent available presence */
#define CONN_F_PINGED    0x0080 /* idle: we sent a ping and wait for any byte */
#define CONN_F_REFUSED   0x2000 /* over c2s.max_connections_per_address: refused at its header */

struct conn {
    struct fe_conn fe; /* first: the layer's part */
    uint8_t auth_failures;
    uint8_t sasl_hash; /* enum scram_hash the SASL exchange waits for */
    int8_t priority;
    uint32_t peer_hash; /* limit_peer_of(fe.peer): the client's address, for its limits */
    struct sasl *sasl;
    char *user;      /* after SASL: the normalised localpart */
    char *jid;       /* after binding: the full JID; its first bare_len bytes are the bare JID */
    char *from_attr; /* ` from='<full JID, escaped>'`, stamped on every stanza; its prefix
                        up to from_bare_len, closed with a quote, is the bare form */
    uint16_t from_attr_len, from_bare_len;
    uint16_t jid_len, bare_len;
    uint64_t key;   /* jid_hash() of the bare JID */
    char *iq_id;    /* the bind iq's id while binding */
    char *presence; /* last available presence, to re-register after a router restart;
                       allocated to the byte: every idle session keeps one */
    uint32_t presence_len;
    char *directed; /* the router's PROTO_SESSION_STATE, handed back at re-registration */
    uint32_t directed_len;
    uint8_t router_flags;
};

struct c2s_thread {
    struct fe_thread fe; /* first: the layer's part */
    struct store_client *store;
    const struct sasl_config *sasl_cfg;
    struct worker_client *verify; /* PLAIN's PBKDF2, off this thread */
    uint32_t verify_pending;      /* jobs of ours the worker has not handed back */
    struct auth_wait *waits;      /* logins waiting for their turn (auth.c): a min-heap */
    uint32_t nwaits, waits_cap;
};

/* The c2s thread running the calling code (store and worker callbacks find it so). */
#define C2S_CURRENT ((struct c2s_thread *)fe_current)

static inline struct c2s_thread *conn_thread(const struct conn *c)
{
    return (struct c2s_thread *)c->fe.t;
}

static inline struct conn *conn_by_id(struct c2s_thread *t, uint64_t id)
{
    return (struct conn *)fe_conn_by_id(&t->fe, id);
}

/* ---- conn.c ---- */
/* What c2s adds to the front-end layer. */
extern const struct fe_ops c2s_ops;

/* ---- stream.c ---- */
/* The layer's hooks (fe_ops): a (re)started stream, a parser event, our header for an
 * early stream error, the sweep's deadlines and idle pings. */
void stream_start(struct fe_conn *c);
void stream_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev);
void stream_send_header(struct fe_conn *c);
void stream_tick(struct fe_conn *c);
/* Answers the stanza of ev with a stanza error (RFC 6120 §8.3) of this type
 * ("cancel", "modify"...) and defined condition. */
void stream_stanza_error(struct conn *c, const struct xml_event *ev, const char *type,
                         const char *condition);
/* Features after a (re)start of the stream. */
void stream_features(struct conn *c);
/* Draining (admin.h): ends the stream with <see-other-host/> naming admin.drain_redirect,
 * or <system-shutdown/> when there is none. */
void stream_drained(struct conn *c);

/* ---- auth.c ---- */
void auth_features(struct conn *c, struct buf *b);
void auth_stanza(struct conn *c, const struct xml_event *ev);
/* The wake-up timer fired: starts the waiting logins whose turn has come (fe_ops.wake). */
void auth_wake(struct fe_thread *t);
/* Frees the waiting logins when the thread ends. */
void auth_waits_free(struct c2s_thread *t);

/* ---- bind.c ---- */
void bind_features(struct conn *c, struct buf *b);
/* An iq before binding (bind, session) or a session iq after. true when handled. */
bool bind_iq(struct conn *c, const struct xml_event *ev);
void bind_result(struct conn *c, int result, const char *jid, size_t jid_len);

/* ---- route.c ---- */
/* A validated stanza from a bound client: stamp `from`, route it. */
void route_stanza(struct conn *c, const struct xml_event *ev, uint8_t kind, uint8_t type);
int route_bind(struct conn *c, const char *jid, size_t len, size_t bare_len, bool rereg);
void route_unbind(struct conn *c);
/* A frame from the router (fe_ops.frame). */
void route_frame(struct fe_thread *t, const struct ring_frame *f);
/* Registers every bound session again. After a router restart (restarted), also the
 * binds it lost, then hand the new router what the old one had not finished
 * (fe_port_replay()); without (the cluster lost a node: CTL_REHOME), bound sessions only,
 * which their new home takes in (a session it has already is replaced by the same). */
void route_reregister(struct c2s_thread *t, bool restarted);

#endif
