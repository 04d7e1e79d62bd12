/*
 * c2s: the client front end. One process, T threads; each thread owns an io_uring, its
 * SO_REUSEPORT listeners, a pool of connections, and its ends of the rings to every
 * router shard. Nothing is shared between threads but the read-only configuration and
 * the per-address and per-account limits (limit.c, each table under its mutex).
 *
 * Files, by job:
 *   loop.c    io_uring: accept, multishot receive into provided buffers, sends, timers
 *   conn.c    the connection pool (slot + generation ids) and output queue
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

#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/config/config.h"
#include "common/xmpp/xml.h"

#include "shm/backlog.h"
#include "shm/bell.h"
#include "shm/port.h"
#include "shm/ring.h"

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct auth_wait;
struct c2s_thread;
struct sasl;
struct tls;
struct tls_ctx;
struct store;
struct store_client;
struct worker_client;

enum conn_state {
    CONN_HEADER,  /* waiting for the client's stream header */
    CONN_TLS,     /* TLS handshake in progress */
    CONN_OPEN,    /* stream open: negotiating or, once bound, routing stanzas */
    CONN_SASL,    /* SASL exchange in progress (waiting for the client or the store) */
    CONN_BINDING, /* bind request at the router */
    CONN_CLOSING, /* stream closed or errored: flushing, then closing the socket */
    CONN_FREE,
};

/* conn.flags */
#define CONN_F_TLS       0x01  /* TLS established */
#define CONN_F_DIRECT    0x02  /* accepted on the Direct TLS port (XEP-0368) */
#define CONN_F_AUTHED    0x04  /* SASL succeeded */
#define CONN_F_BOUND     0x08  /* a resource is bound: stanzas are routed */
#define CONN_F_HDR_SENT  0x10  /* our stream header is out */
#define CONN_F_PAUSED    0x20  /* input held back: a ring to the router is full */
#define CONN_F_AVAILABLE 0x40  /* sent available presence */
#define CONN_F_PINGED    0x80  /* idle: we sent a ping and wait for any byte */
#define CONN_F_WAIT      0x100 /* an answer from the store or router is due: hold input */
#define CONN_F_RESTART   0x200 /* restart the stream after the current stanza (SASL) */
#define CONN_F_DEAD      0x400 /* the socket failed: nothing more can be sent */
#define CONN_F_RECV_OFF  0x800 /* the multishot receive is being cancelled */
#define CONN_F_SEND_Q    0x1000 /* on the thread\'s list of connections with output to send */
#define CONN_F_REFUSED   0x2000 /* over c2s.max_connections_per_address: refused at its header */

/* conn.ops: io_uring operations in flight, so a slot is freed only when none is. */
#define CONN_OP_RECV 0x1
#define CONN_OP_SEND 0x2

struct conn {
    struct c2s_thread *t;
    uint32_t slot, gen;
    int fd;
    uint8_t state; /* enum conn_state */
    uint8_t ops;
    uint16_t flags;
    uint8_t auth_failures;
    uint8_t sasl_hash; /* enum scram_hash the SASL exchange waits for */
    int8_t priority;
    uint32_t peer_hash; /* limit_peer(): the client's address, for the limits on it */
    uint32_t last_rx;   /* thread clock (seconds) of the last byte received */
    uint32_t last_tx;   /* ... and sent */
    uint32_t deadline;  /* thread clock by which the current phase must end; 0: none */
    struct xml_parser xp;
    struct buf in;   /* received plaintext the parser has not released */
    struct buf out;  /* bytes being sent (ciphertext under TLS): frozen while a send is out */
    struct buf next; /* bytes queued behind the send in flight */
    struct buf held; /* a frame for a full ring, sent when it drains */
    uint16_t held_shard;
    struct tls *tls;
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
    /* On a list of paused connections (t->paused, or route_resume()'s own while it
     * runs) exactly while CONN_F_PAUSED is set: pprev_paused points at whatever points
     * at us, so a connection that closes leaves its list at once. */
    struct conn *next_paused, **pprev_paused;
    union {
        struct conn *next_send; /* live: the thread's send list */
        struct conn *next_free; /* free: the pool's free list */
    };
};

/* Slots come in chunks of this many, allocated as connections first need them. */
#define CONN_CHUNK 256

/* Requests from the process's main thread, through c2s_thread.ctl. */
enum { C2S_CTL_NONE, C2S_CTL_STOP, C2S_CTL_ROUTER_DOWN, C2S_CTL_ROUTER_UP, C2S_CTL_RELOAD };

struct c2s_thread {
    unsigned idx;
    _Atomic unsigned ctl;          /* a C2S_CTL_* request, 0: none */
    _Atomic unsigned ctl_done;     /* requests handled so far */
    const struct config *next_cfg; /* C2S_CTL_RELOAD: the snapshot to switch to */
    struct tls_ctx *next_tls;      /* ... and the TLS context (certificate renewed) */
    const struct config *cfg;
    struct io_uring ring;
    int lfd[2]; /* plain (STARTTLS) and Direct TLS listeners; -1 when off */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs, bufsize;
    struct conn **chunks; /* [nconns / CONN_CHUNK, rounded up]: NULL until needed */
    uint32_t nconns;      /* slots at most: this thread's share of c2s.max_connections */
    uint32_t nslots;      /* slots used so far, from 0 on: the rest were never touched */
    uint32_t live;        /* connections not free */
    struct conn *free;    /* free slots below nslots, the one freed last first */
    unsigned nshards;
    struct ring *to_shard;   /* [nshards]: this thread produces */
    struct ring *from_shard; /* [nshards]: this thread consumes */
    struct bell bell;        /* rung by a shard: frames for us, or room in a ring we wait on */
    uint64_t bell_val;       /* target of the eventfd read */
    bool *dirty;             /* [nshards]: frames committed, not yet published */
    struct backlog *backlog; /* [nshards]: session frames that found their ring full */
    struct port_rx *rx;      /* [nshards]: messages in pieces from each shard */
    struct buf *replay;      /* [nshards]: stanzas a dead router had not finished */
    struct conn *paused;     /* connections waiting for ring space */
    struct conn *to_send; /* connections with output, sent once per loop iteration */
    bool resume_now;         /* a ring has room already: route_resume() without a bell */
    bool *broken;            /* [nshards]: the ring from that shard is corrupt: left
                                alone until the router is replaced and it is reset */
    struct tls_ctx *tls;
    struct store_client *store;
    const struct sasl_config *sasl_cfg;
    uint64_t store_val;           /* target of the store eventfd read */
    struct worker_client *verify; /* PLAIN's PBKDF2, off this thread */
    uint64_t verify_val;
    uint32_t verify_pending; /* jobs of ours the worker has not handed back */
    struct auth_wait *waits; /* logins waiting for their turn (auth.c): a min-heap */
    uint32_t nwaits, waits_cap;
    uint64_t wake_at; /* limit_now_us() the wake-up timer is armed for; 0: none */
    struct __kernel_timespec wake_ts;
    uint32_t now;                  /* coarse clock, seconds */
    bool stopping;                 /* system-shutdown sent to everyone */
    bool router_down;              /* rings are reset; hold input until the router is back */
    struct arena arena;            /* trees of stanzas c2s reads itself; reset after each */
    struct buf tmp; /* a delivery with its recipient\'s `to` filled in */
    struct __kernel_timespec tick; /* the sweep's period */
    char scratch[16384];           /* parser scratch, shared by the thread's parsers */
    char plain[16384];             /* TLS plaintext out of one record */
};

/* The thread running the calling code: store callbacks find their thread through it. */
extern _Thread_local struct c2s_thread *c2s_current;
/* The control socket to the supervisor (main.c). */
extern int c2s_ctl_fd;

/* ---- conn.c ---- */
/* The thread's pool: room for max connections, none of it allocated yet. 0 or -ENOMEM. */
int conn_pool_init(struct c2s_thread *t, uint32_t max);
/* A connection in a free slot (a new chunk of slots when every used one is taken), or
 * NULL at the limit or out of memory. */
struct conn *conn_new(struct c2s_thread *t, int fd, bool direct_tls);
struct conn *conn_by_id(struct c2s_thread *t, uint64_t id);
uint64_t conn_id(const struct conn *c);
/* Queues bytes for the client (encrypting under TLS) and makes sure a send is going. */
void conn_write(struct conn *c, const char *p, size_t n);
void conn_puts(struct conn *c, const char *s);
/* After <proceed/>: the next bytes are a TLS handshake. 0 or -errno. */
int conn_start_tls(struct conn *c);
/* Stops reading and closes the socket once the output is flushed. */
void conn_close(struct conn *c);
/* Called by the loop when no operation is in flight on a closing connection. */
void conn_release(struct conn *c);
/* Releases memory an idle connection does not need. */
void conn_trim(struct conn *c);
/* Puts c at the head of a list of paused connections / takes it off its list. */
void conn_paused_add(struct conn **list, struct conn *c);
void conn_paused_del(struct conn *c);

/* ---- loop.c ---- */
void loop_arm_recv(struct conn *c);
/* Output is waiting: the connection's send starts at the end of this loop iteration,
 * with everything written to it by then. */
void loop_want_send(struct conn *c);
void loop_kick_send(struct conn *c);
void loop_cancel_recv(struct conn *c);
/* auth_wake() is to run at `at` (limit_now_us() time) or soon after. */
void loop_wake_at(struct c2s_thread *t, uint64_t at);
/* Carries out a C2S_CTL_* request of the main thread (main.c), which loop_run() finds in
 * t->ctl; tests call it on a thread that runs no loop. */
void loop_control(struct c2s_thread *t, unsigned req);
int loop_run(struct c2s_thread *t);

/* ---- stream.c ---- */
void stream_start(struct conn *c);
/* Is the client's input held (a full ring, the store or router to answer first)? */
bool stream_held(const struct conn *c);
/* Plaintext bytes from the client (data may be NULL to resume held input). */
void stream_input(struct conn *c, const char *data, size_t n);
/* Sends <stream:error/> with this condition (and our header first if not yet sent). */
void stream_error(struct conn *c, const char *condition);
void stream_close(struct conn *c);
/* Answers the stanza of ev with a stanza error (RFC 6120 §8.3) of this type
 * ("cancel", "modify"...) and defined condition. */
void stream_stanza_error(struct conn *c, const struct xml_event *ev, const char *type,
                         const char *condition);
/* Restart the stream once the current stanza is handled (after SASL success). */
void stream_restart(struct conn *c);
/* After the TLS handshake. */
void stream_tls_ready(struct conn *c);
/* Features after a (re)start of the stream. */
void stream_features(struct conn *c);
/* The timers' sweep: deadlines and idle pings. */
void stream_tick(struct conn *c);

/* ---- auth.c ---- */
void auth_features(struct conn *c, struct buf *b);
void auth_stanza(struct conn *c, const struct xml_event *ev);
/* The wake-up timer fired: starts the waiting logins whose turn has come. */
void auth_wake(struct c2s_thread *t);
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
/* Is a frame from the router waiting? (Re-check before sleeping.) */
bool route_pending(struct c2s_thread *t);
/* Frames from the router. Returns how many were handled. */
unsigned route_drain(struct c2s_thread *t);
/* Publishes committed frames and wakes shards. */
void route_flush(struct c2s_thread *t);
/* Retries paused connections once rings have room. */
void route_resume(struct c2s_thread *t);
/* The router died and was reaped: what it published is delivered, what it had not
 * finished is kept for the next one, and the rings start over (ring.h, "Reset"). */
void route_router_down(struct c2s_thread *t);
/* After a router restart: register every bound session again, then hand the new router
 * what the old one had not finished. */
void route_reregister(struct c2s_thread *t);

/* The connection in a slot (it may be free), or NULL for a slot never used. Loops over a
 * thread's connections run over slots 0 to nslots - 1. */
static inline struct conn *conn_slot(const struct c2s_thread *t, uint32_t slot)
{
    return slot < t->nslots ? &t->chunks[slot / CONN_CHUNK][slot % CONN_CHUNK] : NULL;
}

#endif
