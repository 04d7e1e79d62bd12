/*
 * fe: the front-end layer, what c2s and s2s share. One front-end thread owns:
 *   - an io_uring (SINGLE_ISSUER | DEFER_TASKRUN): multishot accept on its listeners,
 *     multishot receive into provided buffers shared by every connection, one send per
 *     connection at a time, batched once per loop iteration, a 1 s sweep, a wake-up timer,
 *     eventfds read through the ring (its bell, the store's and the worker's), and a
 *     front end's own fds and timers (fe_poll_add(), fe_timer_at(): a DNS resolver's);
 *   - a pool of connections: slots allocated in chunks as first used, ids of (front end,
 *     thread, slot, generation) as shm/proto.h draws them;
 *   - each connection's output (double-buffered: `out` is frozen while a send is in
 *     flight, `next` gathers behind it), under TLS when it has it;
 *   - a PROXY protocol header first, on connections from the balancers the front end
 *     names (fe_thread.proxy): their client's address becomes the connection's;
 *   - on a connection the front end makes a WebSocket one (fe_ws_start()), the HTTP
 *     upgrade and WebSocket frames between TLS and the stream (RFC 7395);
 *   - the stream's input: the XML parser fed with what arrives, input held while the
 *     router, the store or a full ring must answer first, stream errors;
 *   - its port to the router's shards: a ring each way per shard, a backlog of messages
 *     that found a ring full, connections paused behind a full ring, messages in pieces,
 *     and what to do when the router dies and comes back (ring.h, "Reset").
 * A front end (c2s, s2s) adds what differs through struct fe_ops, and embeds struct
 * fe_thread and struct fe_conn first in its own thread and connection, which is how
 * its callbacks find their own parts again (fe_ops.conn_size says how large its
 * connection is).
 *
 * Files, by job: loop.c (the io_uring), conn.c (the pool, output, TLS, the paused list),
 * proxy.c (a new connection's address, and its PROXY header), ws.c (the WebSocket
 * transport), stream.c (input, holding, stream errors), port.c (the rings to the
 * shards), serve.c (the process's main thread: the supervisor's messages and signals).
 *
 * Threads: everything here runs on the thread that owns the fe_thread or connection
 * given, but the fields the process's main thread sets before the thread starts, and
 * ctl / ctl_done, through which it asks for control requests (fe_control()).
 */
#ifndef STARLING_FE_H
#define STARLING_FE_H

#include "common/config/config.h"
#include "common/core/arena.h"
#include "common/core/buf.h"
#include "common/net/addr.h"
#include "common/xmpp/xml.h"

#include "shm/backlog.h"
#include "shm/bell.h"
#include "shm/port.h"
#include "shm/ring.h"
#include "shm/stats.h"

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct fe_thread;
struct tls;
struct tls_ctx;
struct store_client;

/* fe_conn.state: the layer's own, and between FE_PROTO and FE_CLOSING a front end's. */
enum fe_state {
    FE_HEADER,  /* waiting for the peer's stream header */
    FE_TLS,     /* TLS handshake in progress */
    FE_OPEN,    /* stream open */
    FE_PROXY,   /* waiting for a balancer's PROXY header: not yet the front end's */
    FE_PROTO,   /* the first of a front end's own states */
    FE_CLOSING = 14, /* stream closed or errored: flushing, then closing the socket */
    FE_FREE = 15,
};

/* fe_conn.flags: the layer's bits; the others (FE_F_PROTO_MASK) are a front end's. */
#define FE_F_TLS      0x0001 /* TLS established (or terminated by a proxy in front of a
                                plain WebSocket listener: the front end says so) */
#define FE_F_DIRECT   0x0002 /* accepted on a Direct TLS listener (XEP-0368) */
#define FE_F_HDR_SENT 0x0010 /* our stream header is out */
#define FE_F_PAUSED   0x0020 /* input held back: a ring to the router is full */
#define FE_F_WAIT     0x0100 /* an answer from the store or router is due: hold input */
#define FE_F_RESTART  0x0200 /* restart the stream after the current stanza (SASL) */
#define FE_F_DEAD     0x0400 /* the socket failed: nothing more can be sent */
#define FE_F_RECV_OFF 0x0800 /* the multishot receive is being cancelled */
#define FE_F_SEND_Q   0x1000 /* on the thread's list of connections with output to send */
#define FE_F_PROTO_MASK 0xE0CC

/* fe_conn.ops: io_uring operations in flight, so a slot is freed only when none is. */
#define FE_OP_RECV 0x1
#define FE_OP_SEND 0x2
#define FE_OP_CONNECT 0x4

struct fe_conn {
    struct fe_thread *t;
    uint32_t slot, gen;
    int fd;
    uint8_t state; /* enum fe_state, or a front end's own */
    uint8_t ops;
    uint16_t flags;
    uint32_t last_rx;  /* thread clock (seconds) of the last byte received */
    uint32_t last_tx;  /* ... and sent */
    uint32_t deadline; /* thread clock by which the current phase must end; 0: none */
    uint8_t listener;  /* the index in fe_thread.lfd of the listener that accepted it */
    /* The peer: the socket's, or the client a PROXY header named; AF_UNSPEC when it
     * has none that is IP. */
    union net_addr peer;
    struct xml_parser xp;
    struct buf in;   /* received plaintext the parser has not released */
    struct buf out;  /* bytes being sent (ciphertext under TLS): frozen while a send is out */
    struct buf next; /* bytes queued behind the send in flight */
    struct buf held; /* a frame for a full ring, sent when it drains */
    uint16_t held_shard, held_kind;
    struct tls *tls;
    struct fe_ws *ws; /* a WebSocket connection's framing (ws.c); NULL: a plain stream */
    /* On a list of paused connections (t->paused, or fe_port_resume()'s own while it
     * runs) exactly while FE_F_PAUSED is set: pprev_paused points at whatever points at
     * us, so a connection that closes leaves its list at once. */
    struct fe_conn *next_paused, **pprev_paused;
    union {
        struct fe_conn *next_send; /* live: the thread's send list */
        struct fe_conn *next_free; /* free: the pool's free list */
    };
};

/* What a front end adds. Every callback runs on the connection's thread. Twelve members,
 * two over STYLE.md's ten: two front ends hook the same life cycle, and merging any two
 * of these would make both harder to read. */
struct fe_ops {
    size_t conn_size; /* of the front end's connection, struct fe_conn first */
    /* A new connection from listener `listener` (its index in fe_thread.lfd), its
     * peer's address known: after its PROXY header when it must send one. */
    void (*accepted)(struct fe_conn *c, unsigned listener);
    /* The connect of fe_connect() finished: res 0, or -errno (the caller closes). */
    void (*connected)(struct fe_conn *c, int res);
    /* A (re)started stream: the parser's limits, the phase's deadline. */
    void (*stream_start)(struct fe_conn *c);
    /* What the parser found (XML_EV_STREAM_OPEN, _STANZA, _STREAM_CLOSE, _ERROR). */
    void (*event)(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev);
    /* Our stream header, for a stream error before the peer sent one. */
    void (*send_header)(struct fe_conn *c);
    /* The connection starts closing (tell the router what it must forget). */
    void (*closing)(struct fe_conn *c);
    /* The slot is being freed: give back what the front end holds. */
    void (*release)(struct fe_conn *c);
    /* Once a second for every open connection: deadlines, idle pings. */
    void (*tick)(struct fe_conn *c);
    /* A message from a router shard. */
    void (*frame)(struct fe_thread *t, const struct ring_frame *f);
    /* The wake-up timer (fe_wake_at()) fired. */
    void (*wake)(struct fe_thread *t);
    /* An FE_CTL_* request, after the layer's part (FE_CTL_ROUTER_UP: register the
     * sessions again, then fe_port_replay() and fe_port_resume()). */
    void (*control)(struct fe_thread *t, unsigned req);
};

/* Control requests from the process's main thread (fe_control()). FE_CTL_DRAIN: the
 * supervisor's CTL_DRAIN, its level (enum ctl_drain) in fe_thread.next_drain. */
enum {
    FE_CTL_NONE,
    FE_CTL_STOP,
    FE_CTL_ROUTER_DOWN,
    FE_CTL_ROUTER_UP,
    FE_CTL_RELOAD,
    FE_CTL_DRAIN,
    FE_CTL_REHOME,
};

/* An eventfd read through the ring, and what to do when it fires. */
struct fe_watch {
    int fd;
    void (*fn)(void *arg);
    void *arg;
    uint64_t val;
};

/* A front end's own fd watched through the ring (fe_poll_add()): one-shot polls, in a
 * table that grows as needed; user_data names the slot and its generation. */
typedef void fe_poll_fn(struct fe_thread *t, uint64_t tag, int res);
struct fe_poll {
    fe_poll_fn *fn; /* NULL: the slot is free */
    uint64_t tag;
    uint32_t gen;
};

/* A front end's own timer (fe_timer_at()): owned by the caller, on the thread's list of
 * timers, earliest first, while armed. */
struct fe_timer {
    uint64_t at; /* fe_now_us() */
    void (*fn)(struct fe_thread *t, struct fe_timer *tm);
    struct fe_timer *next_, **pprev_; /* private: pprev_ NULL when not armed */
};

#define FE_WATCHES 4
/* Listeners per thread (c2s: STARTTLS, Direct TLS, WebSocket, WebSocket over TLS). */
#define FE_LISTENERS 4
/* Slots come in chunks of this many, allocated as connections first need them. */
#define FE_CONN_CHUNK 256

struct fe_thread {
    const struct fe_ops *ops;
    unsigned fe;  /* PROTO_FE_C2S, PROTO_FE_S2S: in connection ids */
    unsigned idx; /* this thread's number */
    const struct config *cfg;
    _Atomic unsigned ctl;          /* an FE_CTL_* request, 0: none */
    _Atomic unsigned ctl_done;     /* requests handled so far */
    const struct config *next_cfg; /* FE_CTL_RELOAD: the snapshot to switch to */
    struct tls_ctx *next_tls;      /* ... and the TLS context (certificate renewed) */
    struct tls_ctx *tls;
    unsigned next_drain;           /* FE_CTL_DRAIN: the level to switch to */
    unsigned drain;                /* enum ctl_drain (common/core/ctl.h): what a front end refuses */
    struct shm_stats *stats;       /* this thread's stats slot (shm/stats.h); NULL: none */
    /* Who must open with a PROXY header, and its bounds: the front end's settings in
     * cfg, set by the front end before fe_run() and at each FE_CTL_RELOAD; NULL: nobody. */
    const struct config_proxy *proxy;
    /* The WebSocket handshake's policy, set as proxy is; NULL when no connection is ever
     * a WebSocket one. */
    const struct config_ws *ws_cfg;

    struct io_uring ring;
    int lfd[FE_LISTENERS]; /* listeners (a front end's, by index); -1 when off */
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs, bufsize;
    struct fe_watch watch[FE_WATCHES];
    unsigned nwatch;
    uint64_t wake_at; /* fe_now_us() the wake-up timer is armed for; 0: none */
    struct __kernel_timespec wake_ts;
    struct fe_poll *polls;    /* [npolls]: fe_poll_add()'s slots */
    uint32_t npolls;
    struct fe_timer *timers;  /* fe_timer_at()'s, earliest first */
    uint64_t timers_at;       /* what their io_uring timeout is armed for; 0: none */
    struct __kernel_timespec timers_ts;
    struct __kernel_timespec tick;

    /* the pool (conn.c) */
    char **chunks;   /* [nconns / FE_CONN_CHUNK, rounded up]: NULL until needed */
    uint32_t nconns; /* slots at most: this thread's share of the front end's limit */
    uint32_t nslots; /* slots used so far, from 0 on: the rest were never touched */
    uint32_t live;   /* connections not free */
    struct fe_conn *free; /* free slots below nslots, the one freed last first */
    struct fe_conn *to_send; /* connections with output, sent once per loop iteration */

    /* the port (port.c) */
    unsigned nshards;
    struct ring *to_shard;   /* [nshards]: this thread produces */
    struct ring *from_shard; /* [nshards]: this thread consumes */
    struct bell bell;        /* rung by a shard: frames for us, or room in a ring we wait on */
    uint64_t bell_val;       /* target of the bell's eventfd read */
    bool *dirty;             /* [nshards]: frames committed, not yet published */
    struct backlog *backlog; /* [nshards]: messages that found their ring full */
    struct port_rx *rx;      /* [nshards]: messages in pieces from each shard */
    struct buf *replay;      /* [nshards]: stanzas a dead router had not finished */
    bool *broken;            /* [nshards]: the ring from that shard is corrupt: left
                                alone until the router is replaced and it is reset */
    struct fe_conn *paused;  /* connections waiting for ring space */
    bool resume_now;         /* a ring has room already: fe_port_resume() without a bell */
    bool router_down;        /* rings are reset; hold input until the router is back */
    int ctl_fd;              /* the control socket to the supervisor (CTL_PEER_BROKEN) */

    uint32_t now;  /* coarse clock, seconds */
    bool stopping; /* FE_CTL_STOP: system-shutdown sent to everyone */
    struct arena arena;  /* trees of stanzas the front end reads itself; reset after each */
    struct buf tmp;      /* a delivery with its recipient's `to` filled in */
    struct buf ws_out;   /* a WebSocket message on its way out (ws.c) */
    char scratch[16384]; /* parser scratch, shared by the thread's parsers */
    char plain[16384];   /* TLS plaintext out of one record */
};

/* The front-end thread running the calling code (store and worker callbacks find their
 * thread through it). */
extern _Thread_local struct fe_thread *fe_current;

/* ---- loop.c ---- */
/* Before fe_run(): t's ops, fe, idx, cfg, tls, listeners (lfd, -1 for none) set, the
 * pool (fe_pool_init()) and port (fe_port_init()) made. Reads `fd` through the ring
 * and calls fn(arg) each time it fires (an eventfd: the store's, a worker's). 0 or
 * -ENOSPC past FE_WATCHES. */
int fe_watch(struct fe_thread *t, int fd, void (*fn)(void *arg), void *arg);
/* The loop, until FE_CTL_STOP and every connection is gone. 0 or -errno. */
int fe_run(struct fe_thread *t);
/* Carries out an FE_CTL_* request of the main thread, which fe_run() finds in t->ctl;
 * tests call it on a thread that runs no loop. */
void fe_control(struct fe_thread *t, unsigned req);
/* The process's main thread: hands req to each of n threads and waits until each has
 * done it (not for FE_CTL_STOP, which ends them: join them instead). */
void fe_request(struct fe_thread *const *ts, unsigned n, unsigned req);
/* Bytes from c's socket: its PROXY header (FE_PROXY), else ciphertext under TLS, else
 * plaintext for fe_input() (through fe_ws_input() on a WebSocket connection). */
void fe_conn_input(struct fe_conn *c, const char *data, size_t n);
void fe_arm_recv(struct fe_conn *c);
void fe_cancel_recv(struct fe_conn *c);
/* A connect in flight gives up (its completion comes back -ECANCELED). */
void fe_cancel_connect(struct fe_conn *c);
/* Output is waiting: the connection's send starts at the end of this loop iteration,
 * with everything written to it by then. */
void fe_want_send(struct fe_conn *c);
void fe_kick_send(struct fe_conn *c);
/* ops->wake() is to run at `at` (fe_now_us() time) or soon after. */
void fe_wake_at(struct fe_thread *t, uint64_t at);
/* CLOCK_MONOTONIC in microseconds. */
uint64_t fe_now_us(void);
/*
 * Watches fd (a front end's own socket: a DNS resolver's, say) for the poll(2) events
 * given, once: fn(t, tag, res) runs from the loop when it is ready, res the revents or a
 * negative errno, and the poll is over (add it again to go on watching). Returns the
 * poll's id (>= 0) or -ENOMEM. An fd must be removed before it is closed: the kernel
 * holds the file while a poll is armed, so it would never complete. These four run on
 * the thread inside fe_run() (from its callbacks): the ring exists only there.
 */
int fe_poll_add(struct fe_thread *t, int fd, unsigned events, uint64_t tag, fe_poll_fn *fn);
/* Forgets the poll of that id: its fn will not run. An id already over is ignored. */
void fe_poll_remove(struct fe_thread *t, int id);
/* tm->fn(t, tm) is to run from the loop at `at` (fe_now_us() time) or soon after; a timer
 * armed already moves. Any number of timers; one io_uring timeout, for the earliest. */
void fe_timer_at(struct fe_thread *t, struct fe_timer *tm, uint64_t at,
                 void (*fn)(struct fe_thread *t, struct fe_timer *tm));
/* Disarms tm (its fn will not run); harmless when it is not armed. */
void fe_timer_cancel(struct fe_timer *tm);
/* An outbound connection to sa (kept by the caller until ops->connected runs): a new
 * connection in state FE_HEADER whose connect is in flight, or NULL with -errno in *err
 * (the pool is full, no socket). */
struct fe_conn *fe_connect(struct fe_thread *t, const struct sockaddr *sa, socklen_t len, int *err);
/* A listener on a, every thread its own (SO_REUSEPORT). The fd or -errno. */
int fe_listen(const struct config_addr *a);
/* The process's main thread, before the threads listen: 0 when nobody else listens on a
 * (waiting two seconds for a predecessor to let go), -EADDRINUSE or another -errno. */
int fe_address_free(const struct config_addr *a);

/* ---- proxy.c ---- */
/* A socket accepted on listener `listener` into c: its peer recorded, then either
 * ops->accepted() or, from an address in t->proxy->from, state FE_PROXY until its
 * header has come (within proxy->timeout; anything else closes it without a word). */
void fe_accepted(struct fe_conn *c, unsigned listener);
/* Bytes from a connection in FE_PROXY (fe_conn_input() hands them on): held until the
 * header is whole, then the peer replaced as it says, ops->accepted() called, and the
 * bytes after it handed to fe_conn_input() as the stream's first. */
void fe_proxy_input(struct fe_conn *c, const char *data, size_t n);
/* The sweep's: a connection still in FE_PROXY past its deadline is closed. */
void fe_proxy_tick(struct fe_conn *c);

/* ---- ws.c ---- */
/* c, just accepted on a WebSocket listener, speaks RFC 7395: an HTTP upgrade first
 * (t->ws_cfg's policy), then one stream element per text message. 0 or -ENOMEM. */
int fe_ws_start(struct fe_conn *c);
/* Plaintext from the peer of a WebSocket connection (fe_conn_input() hands it on): the
 * request, then frames; whole messages go to fe_input() as stream bytes. */
void fe_ws_input(struct fe_conn *c, const char *data, size_t n);
/* fe_write()'s on a WebSocket connection: each first-level element of the stream one
 * message (nothing before the upgrade). */
void fe_ws_write(struct fe_conn *c, const char *p, size_t n);
/* fe_close()'s: the close frame, once, after the upgrade. */
void fe_ws_close(struct fe_conn *c);
/* fe_trim()'s and the slot's release. */
void fe_ws_trim(struct fe_conn *c);
void fe_ws_free(struct fe_conn *c);

/* ---- serve.c ---- */
/* The process's main thread, once the n threads ts run: tells the supervisor it is ready
 * (as `role`, CTL_ROLE_*), then serves the control socket ctl_fd and the signals blocked
 * into signalfd sfd, until SIGTERM, CTL_SHUTDOWN or the supervisor's end. A router that
 * goes down or comes back is handed to the threads (FE_CTL_ROUTER_DOWN, acknowledged;
 * FE_CTL_ROUTER_UP); CTL_RELOAD calls reload(arg). */
void fe_serve(int ctl_fd, int sfd, unsigned role, struct fe_thread *const *ts, unsigned n,
              void (*reload)(void *arg), void *arg);

/* ---- conn.c ---- */
/* The thread's pool: room for max connections, none of it allocated yet. 0 or -ENOMEM. */
int fe_pool_init(struct fe_thread *t, uint32_t max);
void fe_pool_free(struct fe_thread *t);
/* A connection in a free slot (a new chunk of slots when every used one is taken),
 * zeroed but for the layer's fields, or NULL at the limit or out of memory. */
struct fe_conn *fe_conn_new(struct fe_thread *t, int fd, bool direct_tls);
struct fe_conn *fe_conn_by_id(struct fe_thread *t, uint64_t id);
uint64_t fe_conn_id(const struct fe_conn *c);
/* Queues stream bytes for the peer (a WebSocket connection's framed first, ws.c;
 * encrypted under TLS) and makes sure a send is going. */
void fe_write(struct fe_conn *c, const char *p, size_t n);
/* The same for bytes as they go on the connection (encrypted under TLS only): the
 * WebSocket transport's frames and HTTP answers. */
void fe_write_wire(struct fe_conn *c, const char *p, size_t n);
void fe_puts(struct fe_conn *c, const char *s);
/* The next bytes are a TLS handshake (we are the server). 0 or -errno. */
int fe_start_tls(struct fe_conn *c);
/* We start a TLS handshake as the client on context ctx, sending sni (NULL: none):
 * the ClientHello goes out now. 0 or -errno. */
int fe_start_tls_client(struct fe_conn *c, struct tls_ctx *ctx, const char *sni);
/* Stops reading and closes the socket once the output is flushed. */
void fe_close(struct fe_conn *c);
/* Frees the slot once no operation is in flight on a closing connection. */
void fe_maybe_release(struct fe_conn *c);
/* Releases memory an idle connection does not need. */
void fe_trim(struct fe_conn *c);
/* Puts c at the head of a list of paused connections / takes it off its list. */
void fe_paused_add(struct fe_conn **list, struct fe_conn *c);
void fe_paused_del(struct fe_conn *c);

/* The connection in a slot (it may be free), or NULL for a slot never used. Loops over a
 * thread's connections run over slots 0 to nslots - 1. */
static inline struct fe_conn *fe_slot(const struct fe_thread *t, uint32_t slot)
{
    if (slot >= t->nslots)
        return NULL;
    return (struct fe_conn *)(t->chunks[slot / FE_CONN_CHUNK] +
                              (size_t)(slot % FE_CONN_CHUNK) * t->ops->conn_size);
}

/* ---- stream.c ---- */
/* Plaintext bytes from the peer (data may be NULL to resume held input): parsed, and
 * each event handed to ops->event, until the input is held. */
void fe_input(struct fe_conn *c, const char *data, size_t n);
/* Is the peer's input held (a full ring, the store or router to answer first)? */
bool fe_held(const struct fe_conn *c);
/* Restart the stream once the current stanza is handled (after SASL success). */
static inline void fe_restart(struct fe_conn *c)
{
    c->flags |= FE_F_RESTART;
}
/* Sends <stream:error/> with this condition (and our header first if not yet sent). */
void fe_stream_error(struct fe_conn *c, const char *condition);
/* The same with text as the condition element's content (escaped): see-other-host's
 * "host:port" (RFC 6120 §4.9.3.19). */
void fe_stream_error_text(struct fe_conn *c, const char *condition, const char *text);
/* Ends the stream (our closing tag if our header is out) and the connection. */
void fe_stream_close(struct fe_conn *c);

/* ---- port.c ---- */
/* The thread's rings to nshards shards (attached by the caller: to_shard, from_shard and
 * the bell), with their backlogs and the rest. 0 or -ENOMEM. */
int fe_port_init(struct fe_thread *t, unsigned nshards);
/* Which shard owns a bare JID's key (jid_hash()). */
unsigned fe_shard_of(const struct fe_thread *t, uint64_t key);
/* Room in the ring to `shard` for a frame of len bytes from c: where to write it, in the
 * ring (*held false) or, when the ring is full or the router away, in c's held frame
 * (*held true: c is paused once fe_port_commit() is called, and resumes when the ring
 * has room). NULL: -EMSGSIZE (never fits) or out of memory, in *err. */
void *fe_port_reserve(struct fe_conn *c, unsigned shard, uint32_t len, uint16_t kind,
                      bool *held, int *err);
/* The frame written where fe_port_reserve() said goes out (or waits). */
void fe_port_commit(struct fe_conn *c, unsigned shard, bool held);
/* A message that cannot wait on a socket (a session's frames): written now, or queued in
 * order behind others for that shard; any size. 0 or -ENOMEM. */
int fe_port_send(struct fe_thread *t, unsigned shard, uint16_t kind, const void *p, uint32_t len);
/* Is a frame from the router waiting? (Re-check before sleeping.) */
bool fe_port_pending(struct fe_thread *t);
/* Frames from the router, to ops->frame. Returns how many were handled. */
unsigned fe_port_drain(struct fe_thread *t);
/* Publishes committed frames and wakes shards. */
void fe_port_flush(struct fe_thread *t);
/* Retries paused connections once rings have room. */
void fe_port_resume(struct fe_thread *t);
/* The router died and was reaped: what it published is delivered, the stanzas it had not
 * finished are kept (fe_port_replay()), and the rings start over (ring.h, "Reset"). */
void fe_port_down(struct fe_thread *t);
/* After the front end registered its sessions with the new router: what the old one had
 * not finished goes to it, behind them and ahead of everything held since. */
void fe_port_replay(struct fe_thread *t);
/* Rings to the router that stayed quiet give their pages back (the sweep). */
void fe_port_trim(struct fe_thread *t);

#endif
