/*
 * router: S shard worker threads. A bare JID belongs to shard jid_hash(bare) % S, which
 * alone keeps its sessions (resources, priority, last presence, the connection of each)
 * and applies the routing rules of RFC 6120 §10 and RFC 6121 §8 to stanzas addressed to
 * it. Shards never touch each other's tables.
 *
 * Files, by job:
 *   main.c     process start, shard threads, control messages from the supervisor
 *   shard.c    a shard's loop: frames in from front-end threads, frames out
 *   session.c  the table of users and their sessions
 *   route.c    routing rules for stanzas
 *   iq.c       stanzas addressed to the server itself
 *   out.c      frames to front-end threads: delivery grouped per thread, errors, and a
 *              queue for a ring that is full (nothing is dropped)
 *
 * Everything here but main.c runs on the shard thread given.
 */
#ifndef STARLING_ROUTER_H
#define STARLING_ROUTER_H

#include "common/arena.h"
#include "common/config.h"
#include "shm/backlog.h"
#include "shm/bell.h"
#include "shm/proto.h"
#include "shm/ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct session {
    struct session *next;
    uint64_t conn;
    char *jid; /* full JID; its first bare_len bytes are the user's bare JID */
    uint16_t jid_len;
    int8_t priority;
    bool available;
    char *presence; /* last available presence, as sent (issue 4: probes) */
    uint32_t presence_len;
};

struct user {
    struct user *next; /* hash chain */
    uint64_t key;
    char *bare;
    uint16_t bare_len;
    struct session *sessions;
};

struct user_table {
    struct user **buckets;
    size_t mask; /* buckets - 1, a power of two minus one */
    size_t count;
};

struct shard {
    unsigned idx;
    const struct config *cfg;
    unsigned nfe;                 /* front-end threads (c2s threads) */
    struct ring *from_fe, *to_fe; /* [nfe] */
    struct bell bell;             /* frames for us, or room in a ring we wait on */
    bool *dirty;                  /* [nfe] committed frames not yet published */
    struct backlog *backlog;      /* [nfe] frames waiting for room */
    bool *broken;                 /* [nfe] inbound ring corrupt: left alone until reset */
    bool retry_out;               /* an outbound ring had room already: flush again */
    struct user_table users;
    struct arena arena; /* per stanza */
    char scratch[16384];
    _Atomic unsigned ctl;      /* control request from main (ROUTER_CTL_*), 0: none */
    _Atomic unsigned ctl_done; /* last request handled */
    unsigned ctl_arg;
    const struct config *next_cfg; /* ROUTER_CTL_RELOAD */
    int ctl_fd;                    /* eventfd main uses to wake the shard for a control request */
    uint64_t frames_in, frames_out, deliveries;
};

enum { ROUTER_CTL_NONE, ROUTER_CTL_FE_DOWN, ROUTER_CTL_STOP, ROUTER_CTL_RELOAD };

/* A stanza frame from a front end, validated, with its strings located. */
struct stanza {
    const struct proto_stanza *h;
    const char *from, *to, *raw;
    size_t from_len, from_bare_len, to_len, to_bare_len, raw_len, head_len;
};

/* The control socket to the supervisor (main.c). */
extern int router_ctl_fd;

/* ---- session.c ---- */
void users_init(struct user_table *t);
void users_free(struct user_table *t);
struct user *user_find(struct user_table *t, uint64_t key, const char *bare, size_t len);
struct user *user_get(struct user_table *t, uint64_t key, const char *bare, size_t len);
void user_drop_if_empty(struct user_table *t, struct user *u);
struct session *session_find(struct user *u, const char *res, size_t len);
struct session *session_by_conn(struct user *u, uint64_t conn);
struct session *session_add(struct user *u, uint64_t conn, const char *jid, size_t len);
void session_remove(struct user *u, struct session *s);
int session_set_presence(struct session *s, const char *p, size_t len, int8_t priority);

/* ---- route.c ---- */
void route_frame_stanza(struct shard *s, const struct stanza *st);
void route_bind(struct shard *s, const struct proto_session *b, const char *jid,
                const char *presence);
void route_unbind(struct shard *s, const struct proto_session *b, const char *jid);
/* Ends a session (connection gone, replaced, front end died): its unavailable presence
 * goes to the user's other resources. The user stays, even without sessions: the
 * caller drops it (user_drop_if_empty) when it is done with it. */
void route_end_session(struct shard *s, struct user *u, struct session *ss);

/* ---- iq.c ---- */
void iq_to_server(struct shard *s, const struct stanza *st);

/* ---- out.c ---- */
/* The stanza bytes to each of conns (any threads): one frame per destination thread. */
void out_deliver(struct shard *s, const uint64_t *conns, unsigned n, const char *stanza,
                 size_t len);
void out_bind_result(struct shard *s, uint64_t conn, int result, const char *jid, size_t len);
void out_close(struct shard *s, uint64_t conn, uint8_t condition);
/* An error answering st (RFC 6120 §8.3) to its sender. */
void out_error(struct shard *s, const struct stanza *st, const char *type, const char *condition);
/* Sends what the backlog holds, publishes, wakes front ends. */
void out_flush(struct shard *s);

/* ---- shard.c ---- */
void *shard_main(void *arg);

#endif
