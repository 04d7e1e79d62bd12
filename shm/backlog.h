/*
 * backlog: messages that found their ring full, kept in order until it has room.
 *
 * A ring never drops a frame (ring.h); where the producer cannot simply stop reading
 * the input that made the message (a router shard answering many connections, a front
 * end reporting a closed session) the message waits here, whole, and goes out in pieces
 * when it is larger than a ring frame (port.h). Whoever pushes must flush before writing
 * the same ring directly again, or messages would overtake each other (port_send() does
 * that). One owner thread per backlog.
 *
 * A message may carry a tag, an opaque pointer its owner gets back through `moved` once
 * the message is wholly in the ring (committed): a shard uses it to know when what it
 * produced has left it.
 */
#ifndef STARLING_SHM_BACKLOG_H
#define STARLING_SHM_BACKLOG_H

#include "shm/ring.h"

#include <stddef.h>
#include <stdint.h>

struct backlog_frame;

struct backlog {
    struct backlog_frame *head, *tail;
    size_t bytes; /* payload bytes held */
    /* Optional: called by backlog_flush() and backlog_clear() with the tag of each
     * message that has left (moved to the ring, or dropped). */
    void (*moved)(void *arg, void *tag);
    void *moved_arg;
    uint64_t refused; /* messages the ring refused outright (a kind it does not carry) */
};

static inline bool backlog_empty(const struct backlog *q)
{
    return q->head == NULL;
}

/* Appends a copy of payload[0..len). 0 or -ENOMEM. */
int backlog_push(struct backlog *q, uint16_t kind, const void *payload, uint32_t len);

/* The same, with a tag, for a message whose first `sent` bytes are in the ring already
 * (pieces port_send() wrote before the ring filled). 0 or -ENOMEM. */
int backlog_push_tag(struct backlog *q, uint16_t kind, const void *payload, uint32_t len,
                     uint32_t sent, void *tag);

/* Moves as much as fits into r, committed but not published; a message larger than a
 * frame goes in pieces, and may stop halfway. Returns the number of frames written; when
 * messages remain, the ring is full (the caller arms ring_wait_prepare()). */
unsigned backlog_flush(struct backlog *q, struct ring *r);

/* Drops everything (the other end died). */
void backlog_clear(struct backlog *q);

#endif
