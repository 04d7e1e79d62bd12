/*
 * backlog: frames that found their ring full, kept in order until it has room.
 *
 * A ring never drops a frame (ring.h); where the producer cannot simply stop reading
 * the input that made the frame (a router shard answering many connections, a front
 * end reporting a closed session) the frame waits here. Whoever pushes must flush
 * before writing the same ring directly again, or frames would overtake each other.
 * One owner thread per backlog.
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
};

static inline bool backlog_empty(const struct backlog *q)
{
    return q->head == NULL;
}

/* Appends a copy of payload[0..len). 0 or -ENOMEM. */
int backlog_push(struct backlog *q, uint16_t kind, const void *payload, uint32_t len);

/* Moves as many frames as fit into r, committed but not published. Returns the number
 * moved; when frames remain, the ring is full (the caller arms ring_wait_prepare()). */
unsigned backlog_flush(struct backlog *q, struct ring *r);

/* Drops everything (the other end died). */
void backlog_clear(struct backlog *q);

#endif
