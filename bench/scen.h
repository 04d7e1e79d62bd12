/*
 * scen: what starling-bench's clients do once online, per scenario: chat pairs, presence
 * fan-out over rosters, churn, idling; and what they measure when stanzas come back.
 *
 * Who is who. Connection i of a run (its "home", 0-based) logs into account first + i
 * (login: cycles through accounts i, i + clients, ...). Users 2k and 2k + 1 form pair k
 * (the accounts numbered 2k+1 and 2k+2 with the default --first 1); pair k lives on worker
 * k % threads, so both ends of a pair, and everything a chat pair counts, stay on one
 * thread. Presence contacts of user i are its ring neighbours i +- 1 .. i +- contacts/2.
 *
 * Pacing. Open loop (-r, and presence changes): a worker's share of the rate is one
 * schedule, a stanza every 1/rate seconds round robin over its senders, each stamped
 * (bid.h) with the time it was *due*, not sent, so a server that stalls the generator's
 * sends or its own deliveries is charged for the whole wait (no coordinated omission).
 * Closed loop (-w): each chat sender keeps W messages in flight; the receipt of one by
 * the partner releases the next, stamped when it is written.
 *
 * Loss. Sequence numbers run per sender; the receiver checks them per pair. A message is
 * lost when it was sent but neither received nor bounced (type='error') once the run has
 * drained; a presence delivery is lost when a contact that was online did not get it.
 *
 * MUC (the muc scenario). Every client is an occupant of one room, its nick its account
 * name. Set-up phase: user 0 joins, which creates the room, and accepts the default
 * configuration (an instant room); the verify phase: everybody else joins. Users
 * 0 .. --senders - 1 post; a groupchat message is owed to every occupant in the room when
 * it is sent (the sender too, whose copy, reflected by the room, closes its window) and
 * lost when one of them did not get it. Latency is taken at each delivery.
 *
 * SM (the sm scenario) is chat over streams with XEP-0198 on (xmppc.h, sm.h).
 *
 * Every function runs on the worker's thread.
 */
#ifndef STARLING_BENCH_SCEN_H
#define STARLING_BENCH_SCEN_H

#include "bench/xmppc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct load_conn;
struct load_worker;

/* Per connection. */
struct scen_conn {
    uint32_t msg_seq, pres_seq; /* next sequence numbers sent */
    char *tmpl;                 /* chat: the message to the partner, its id patched in */
    uint32_t tmpl_len;
    uint16_t id_off;
    uint8_t kind;       /* enum opts_mix: the user's behaviour */
    bool roster_ok;     /* presence: the roster holds every contact with subscription both */
    bool joined;        /* muc: in the room (counted in load_run.occupants) */
    uint64_t logout_at; /* mixed churn: when to log out; 0: not scheduled */
};

/* Per pair of users. */
struct scen_pair {
    uint32_t inflight[2]; /* closed loop: side s's messages neither received nor bounced */
    uint32_t rx_next[2];  /* the sequence number expected next from side s */
};

/* An open-loop schedule over a worker's senders. */
struct scen_sched {
    double interval; /* ns between two stanzas; 0: off */
    double due;      /* when the next is due (ns; fractional so the rate stays exact) */
    uint32_t *senders;
    uint32_t nsenders, rr;
    uint64_t quota; /* stanzas left to send; UINT64_MAX: no limit */
};

/* Per worker. */
struct scen_worker {
    struct scen_pair *pairs; /* local pair k holds slots 2k and 2k + 1 */
    uint32_t npairs;
    struct scen_sched msg, pres;
    uint64_t msg_quota; /* closed loop: messages left to send */
    bool sending;       /* the GO phase */
};

/* Prepares the scenario for a worker whose connections exist (homes assigned). 0 or
 * -ENOMEM. */
int scen_init(struct load_worker *w);
void scen_free(struct load_worker *w);

/* The worker entered phase p (enum load_phase) at now. */
void scen_phase(struct load_worker *w, unsigned p, uint64_t now);

/* Sends what is due by now; returns when the next stanza is due (UINT64_MAX: none). */
uint64_t scen_tick(struct load_worker *w, uint64_t now);

/* Every 100 ms: churn. */
void scen_housekeeping(struct load_worker *w, uint64_t now);

/* c came online (its initial presence echoed). */
void scen_online(struct load_conn *c, uint64_t now);

/* A message, presence, iq or roster event for c, received at now. */
void scen_event(struct load_conn *c, const struct xmppc_ev *ev, uint64_t now);

/* c is DOWN again (logout done, failure or quit): whether and when it logs in again. */
void scen_down(struct load_conn *c, uint64_t now);

/* ---- pure helpers, unit-tested -------------------------------------------------------- */

/* The k-th contact (0 <= k < contacts) of user i among n: i+1, i-1, i+2, i-2... mod n. */
uint32_t scen_contact(uint32_t i, unsigned k, uint32_t n, unsigned contacts);

struct opts;

/* Presence: how many contacts user i has, and its k-th. With --hub, user 0's contacts are
 * every user on the other server (--peer: the odd ones) or every other user, theirs is
 * user 0, and the rest have none; otherwise -k each, as scen_contact. */
unsigned scen_ncontacts(const struct opts *o, uint32_t i);
uint32_t scen_contact_of(const struct opts *o, uint32_t i, unsigned k);

/* The behaviour (enum opts_mix) of pair p for weights w[OPTS_MIX_COUNT]: spread by the
 * golden-ratio sequence, so any prefix of pairs has close to the asked proportions. */
unsigned scen_mix_kind(uint32_t p, const unsigned *w);

/* Writes the message template `<message to='TO' type='TYPE' id='<BID_LEN bytes>'>
 * <body>...</body></message>` (to escaped; body bytes of filler) into a new allocation;
 * *id_off is where the id goes. The length, or -ENOMEM. */
int scen_template(const char *to, const char *type, size_t body, char **out, uint16_t *id_off);

#endif
