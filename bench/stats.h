/*
 * stats: the counters of one generator thread, and their names in the summary and JSON.
 *
 * Each worker owns one struct stats and is the only writer; the control thread reads
 * every worker's counters once a second for the progress line and the series. Counters
 * are relaxed atomics updated by a load and a store, not a read-modify-write: with a
 * single writer nothing is lost, and on x86 that is a plain add, with no lock prefix on
 * the hot path. A reader may see a value a few operations old, never a torn one.
 */
#ifndef STARLING_BENCH_STATS_H
#define STARLING_BENCH_STATS_H

#include "bench/xmppc.h"

#include <stdatomic.h>
#include <stdint.h>

enum stats_id {
    ST_CONNECTS,    /* TCP connections attempted */
    ST_LOGINS,      /* logins completed (initial presence echoed) */
    ST_ONLINE,      /* gauge: connections online now (+1 / -1; sums wrap to the value) */
    ST_LOGOUTS,     /* streams we ended on purpose */
    ST_MSG_SENT,    /* bench messages written */
    ST_MSG_RECV,    /* bench messages received by their addressee */
    ST_MSG_BOUNCED, /* bench messages returned as type='error' */
    ST_MSG_LATE,    /* received with a sequence number below one seen already */
    ST_MSG_SKIPPED, /* due but not sent: the sender was offline or its queue full */
    ST_PRES_SENT,   /* presence changes broadcast */
    ST_PRES_EXPECT, /* deliveries those changes should make (contacts online) */
    ST_PRES_RECV,   /* presence changes received from contacts */
    ST_SUB_SENT,    /* subscription requests sent (roster set-up) */
    ST_SUB_ACKED,   /* subscriptions approved by contacts */
    ST_ROSTERS,     /* roster results received */
    ST_ROSTER_BOTH, /* items with subscription='both' in them */
    ST_ROSTER_ERR,  /* roster requests answered with an error */
    ST_NEED_SETUP,  /* presence users whose roster lacked contacts at login */
    ST_OTHER,       /* stanzas that were none of ours */
    ST_MUC_READY,   /* muc: the room was created and unlocked (or existed) */
    ST_MUC_JOINED,  /* muc: self-presences (status 110) received: occupants joined */
    ST_MUC_REFUSED, /* muc: joins answered with an error (no MUC there?) */
    ST_MUC_EXPECT,  /* muc: deliveries owed: occupants in the room at each post */
    ST_MUC_RECV,    /* muc: groupchat messages of ours received by occupants */
    ST_SM_REQ_RECV, /* sm: the server's <r/>, answered */
    ST_SM_ACK_RECV, /* sm: the server's <a/>, checked */
    ST_BYTES_IN,    /* from the sockets (ciphertext under TLS) */
    ST_BYTES_OUT,   /* to the sockets */
    ST_ERR_CONNECT, /* connect() failed */
    ST_ERR_IO,      /* the socket failed or closed during a login */
    ST_ERR_TIMEOUT, /* a login took longer than --timeout */
    ST_ERR_TLS,     /* the TLS handshake failed */
    ST_ERR_DROPPED, /* an online connection ended without our asking */
    ST_ERR_NO_ECHO, /* initial presence never came back (RFC 6121 §4.2.2 says it must):
                       the client was counted online after a wait */
    ST_ERR_XMPP,    /* first of XMPPC_FAIL_COUNT counters: xmppc's reasons */
    ST_COUNT = ST_ERR_XMPP + XMPPC_FAIL_COUNT
};

struct stats {
    _Atomic uint64_t v[ST_COUNT];
};

/* The name of counter i in the summary and JSON ("msg_sent", "err_auth-failed"...). */
const char *stats_name(enum stats_id i);

/* True for the counters that are failures (counted in the exit status). */
int stats_is_error(enum stats_id i);

static inline void stats_add(struct stats *s, enum stats_id i, uint64_t n)
{
    uint64_t v = atomic_load_explicit(&s->v[i], memory_order_relaxed);
    atomic_store_explicit(&s->v[i], v + n, memory_order_relaxed);
}

static inline uint64_t stats_get(const struct stats *s, enum stats_id i)
{
    return atomic_load_explicit(&s->v[i], memory_order_relaxed);
}

/* dst[i] = sum over n stats of v[i]. */
void stats_sum(uint64_t dst[ST_COUNT], const struct stats *s, unsigned n, size_t stride);

#endif
