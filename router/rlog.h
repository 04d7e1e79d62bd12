/*
 * rlog: frames a shard handed to s2s, kept until s2s acknowledges them (rlog.c says
 * why). Shard thread only.
 */
#ifndef STARLING_ROUTER_RLOG_H
#define STARLING_ROUTER_RLOG_H

#include <stdint.h>

struct rlog;
struct shard;

int rlog_init(struct shard *s);
void rlog_free(struct shard *s);
/* Sends payload (malloc'd; the log keeps it) as a `kind` frame to s2s thread fe. */
void rlog_send(struct shard *s, unsigned fe, uint16_t kind, char *payload, uint32_t len);
/* A PROTO_REMOTE_ACK frame from s2s. */
void rlog_ack(struct shard *s, const void *frame, uint32_t len);
/* s2s thread fe was replaced (its rings reset): what it had not acknowledged goes again. */
void rlog_replay(struct shard *s, unsigned fe);

#endif
