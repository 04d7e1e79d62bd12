/*
 * load: starling-bench's engine. Worker threads, each with one io_uring
 * (SINGLE_ISSUER | DEFER_TASKRUN), its share of the client connections, their sockets,
 * TLS and XMPP streams; the scenario (scen.h) decides what each online client does.
 *
 * Per worker, operations in flight and how they come back:
 *   connect  one per connecting socket
 *   recv     multishot per connection into the worker's provided-buffer ring; a buffer
 *            goes back to the ring as soon as its bytes are parsed (an incomplete stanza
 *            is copied into the client's own buffer by xmppc)
 *   send     at most one per connection, over the frozen `out` buffer; whatever is
 *            written meanwhile gathers in `next` and leaves in the next send. Writes of
 *            one loop iteration are therefore batched into one send per connection, and
 *            every SQE of an iteration is submitted with one io_uring_enter.
 *   read     on the worker's eventfd: the control thread announces a phase change
 * user_data packs op (8 bits), slot (24) and generation (32), so the completion of an
 * operation on a slot reused since is recognised and ignored.
 *
 * A connection's life (struct load_conn.state):
 *
 *   DOWN --connect--> CONNECTING --connected--> [TLS: Direct TLS handshake] --> LOGIN
 *   LOGIN (xmppc: header, STARTTLS, SASL, bind, presence) --echo--> ONLINE
 *   ONLINE --load_logout--> CLOSING (</stream:stream>) --server's close or EOF--> DEAD
 *   any --failure, timeout, quit--> DEAD (cancel, shutdown) --no op in flight--> DOWN
 *
 * Time: CLOCK_MONOTONIC nanoseconds. The loop sleeps in io_uring_submit_and_wait_timeout
 * until the next completion or the earliest of: the scenario's next due stanza, the next
 * connection the ramp allows, the 100 ms housekeeping (timeouts, presence echo, memory
 * trimming). The clock is read once per completion batch and once per receive.
 *
 * Threads: the control thread (main) creates the run, starts the workers and moves
 * run.phase forward; everything in a worker is touched by its thread alone, except the
 * counters it publishes (stats.h) and, after the thread is joined, its histograms.
 */
#ifndef STARLING_BENCH_LOAD_H
#define STARLING_BENCH_LOAD_H

#include "bench/hist.h"
#include "bench/opts.h"
#include "bench/scen.h"
#include "bench/stats.h"
#include "bench/xmppc.h"
#include "common/core/buf.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tls;
struct tls_ctx;

/* The run's phases, moved forward by the control thread only. */
enum load_phase {
    LOAD_RAMP,   /* connections are logging in */
    LOAD_SETUP,  /* presence: contacts subscribe to each other */
    LOAD_VERIFY, /* presence: rosters fetched again and counted */
    LOAD_GO,     /* measured: the scenario sends */
    LOAD_STOP,   /* no new stanzas; those in flight may still arrive */
    LOAD_QUIT,   /* streams are closed; workers exit */
};

enum load_state {
    LC_DOWN,
    LC_CONNECTING,
    LC_TLS, /* Direct TLS handshake before the stream */
    LC_LOGIN,
    LC_ONLINE,
    LC_CLOSING,
    LC_DEAD,
};

/* Bytes queued for one connection beyond which the scenario's stanza is skipped: the
 * server does not read that socket, and an open-loop sender must not grow without end. */
#define LOAD_QUEUE_MAX (4u << 20)

struct load_conn {
    struct load_worker *w;
    uint32_t slot, gen;
    uint32_t home;    /* the connection's index in the run: its pair and thread */
    uint32_t account; /* index of the account logged into (the number is first + it) */
    int fd;
    uint8_t state;    /* enum load_state */
    uint8_t ops;      /* LOAD_OP_* in flight */
    bool dirty;       /* on the worker's flush list */
    bool was_online;  /* counted in ST_ONLINE and run.online */
    bool failed;      /* the last attempt failed (scen_down backs off before retrying) */
    uint64_t t_start; /* connect began */
    uint64_t t_phase; /* presence sent (echo wait), or closing began */
    uint64_t t_rx;    /* last bytes received */
    uint64_t t_retry; /* DOWN: may connect again from then */
    struct load_conn *dirty_next;
    struct tls *tls;
    struct buf out;  /* being sent: frozen while a send is in flight */
    struct buf next; /* queued behind it */
    struct buf ptx;  /* TLS: plaintext written this iteration, encrypted at the flush */
    struct xmppc xc;
    struct scen_conn sc;
};

struct load_run;

struct load_worker {
    unsigned idx;
    struct load_run *run;
    pthread_t thread;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    unsigned nbufs, bufsize;
    int efd; /* the control thread's wake-ups */
    uint64_t efd_val;
    struct load_conn *conns;
    uint32_t nconns;
    /* Connections waiting to connect, in order: a ring of slots, each at most once. */
    uint32_t *startq;
    uint32_t sq_head, sq_len;
    uint32_t connecting; /* connections between connect and online */
    uint32_t pending;    /* at most this many connecting at once (--pending / threads) */
    uint64_t ramp_due;   /* when the ramp allows the next connect */
    uint64_t ramp_ns;    /* interval between connects on this worker; 0: none */
    uint32_t live;       /* connections not DOWN */
    enum load_phase phase;
    uint64_t now;
    uint64_t housekeeping;
    struct load_conn *dirty;
    struct xmppc_shared xs;
    struct stats st;
    struct hist h_msg, h_pres, h_login;
    struct scen_worker sw;
    _Atomic int ready; /* 1 once the ring is set up, -errno if that failed */
    int err;           /* the loop failed: -errno */
    char plain[16384];
};

struct load_run {
    const struct opts *o;
    struct xmppc_config xcfg;
    struct xmppc_config xcfg_peer; /* the same for users on the --peer server */
    struct tls_ctx *tls;
    struct saslc_keys *keys; /* one per account, touched only by the thread logging in */
    uint32_t nkeys;
    unsigned nworkers;
    struct load_worker *workers;
    _Atomic uint8_t *online;    /* [clients] by home: online now (read by any worker) */
    _Atomic uint32_t occupants; /* muc: clients in the room now (scen.c) */
    uint64_t t_start;           /* load_init's clock: stamps older than this are not ours */
    _Atomic unsigned phase;     /* enum load_phase */
};

/* Creates the workers' state for run (connections assigned, scenario prepared), without
 * starting threads. 0 or -errno. */
int load_init(struct load_run *run);

/* Starts every worker thread and waits until each has its ring. 0 or -errno. */
int load_start(struct load_run *run);

/* Moves the run to phase p and wakes every worker. */
void load_set_phase(struct load_run *run, enum load_phase p);

/* Waits for the workers to exit and frees what load_init made (not the histograms'
 * and counters' values, which stay readable in run->workers until load_free). */
void load_join(struct load_run *run);
void load_free(struct load_run *run);

/* ---- for the scenario (scen.c), on the worker's thread ----------------------------------- */

/* Room for n plaintext bytes at the end of c's output, or NULL when the connection is
 * not online or its queue is full (LOAD_QUEUE_MAX). load_commit() sends them. */
char *load_reserve(struct load_conn *c, size_t n);
void load_commit(struct load_conn *c, size_t n);

/* Sends p[0..n) on an online connection; false as for load_reserve. */
bool load_send(struct load_conn *c, const char *p, size_t n);

/* Ends the stream (logout). */
void load_logout(struct load_conn *c);

/* Starts (again) the login of a DOWN connection, as account `account`, no sooner than
 * at time `when`. */
void load_connect_at(struct load_conn *c, uint32_t account, uint64_t when);

uint64_t load_clock(void);

#endif
