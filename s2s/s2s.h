/*
 * s2s: the server-to-server front end (federation). One process, U threads; each thread
 * is a front-end thread (common/fe/fe.h: its io_uring, listeners, connections, rings to
 * every router shard) plus what server streams need. A remote domain's outbound streams
 * belong to one thread (topo_s2s_of() of the domain), which is where the router sends
 * every stanza for it (PROTO_REMOTE).
 *
 * Files, by job:
 *   conn.c    what s2s adds to the layer's connection and thread: the ops table
 *   stream.c  server streams (jabber:server): headers, features, stream errors
 *   remote.c  stanzas the router hands over for remote domains; bounces (RFC 6120 §8.3)
 *   main.c    process start, threads, control messages from the supervisor
 *
 * Every function here runs on the thread that owns the connection or thread it is given.
 */
#ifndef STARLING_S2S_H
#define STARLING_S2S_H

#include "common/fe/fe.h"

#include <stdbool.h>
#include <stdint.h>

/* s2s_conn.fe.state: s2s's own, between the layer's FE_OPEN and FE_CLOSING. */
enum s2s_state {
    S2S_AUTHED = FE_PROTO, /* the peer is authenticated for a domain pair: stanzas flow */
};

/* s2s_conn.fe.flags: s2s's bits (FE_F_PROTO_MASK). */
#define S2S_F_OUTBOUND 0x0004 /* we opened it */

struct s2s_conn {
    struct fe_conn fe; /* first: the layer's part */
    char *remote;      /* the peer's domain, once its header named it */
};

struct s2s_thread {
    struct fe_thread fe; /* first: the layer's part */
};

/* ---- conn.c ---- */
extern const struct fe_ops s2s_ops;

/* ---- stream.c ---- */
void s2s_stream_start(struct fe_conn *c);
void s2s_stream_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev);
void s2s_send_header(struct fe_conn *c);
void s2s_stream_tick(struct fe_conn *c);

/* ---- remote.c ---- */
/* A frame from the router (fe_ops.frame): a stanza for a remote domain. */
void remote_frame(struct fe_thread *t, const struct ring_frame *f);
/* An error answering the stanza of the PROTO_STANZA frame `frame` (from a local sender
 * to a remote JID) goes back to its sender through the router; nothing for an error or
 * a result (RFC 6120 §8.3.1). */
void remote_bounce(struct s2s_thread *t, const void *frame, uint32_t len, const char *condition);

#endif
