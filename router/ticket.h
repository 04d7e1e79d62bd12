/*
 * ticket: what a shard must finish before it gives a front end's frames back, so that a
 * router that dies loses nothing it was handed (ring.h, "Reset").
 *
 * A shard reads a front end's ring in batches. Each batch gets a ticket, which the shard
 * keeps in that ring's queue (struct ticket_queue) with the ring position after the
 * batch's last whole message. While the batch is handled its ticket is current
 * (shard.cur), and everything that carries the work on later takes a reference: a frame
 * to another shard (the envelope of out_to_shard()), a frame waiting for a user's state
 * (load.c), a store request (the store client's tag hooks), a message waiting in a
 * backlog for room in a front end's ring. Whoever finishes such a piece drops its
 * reference once what it produced is published (ticket_defer(), then ticket_settle()
 * after out_flush()). The ring is released up to the end of the oldest ticket still
 * referenced; when the router dies, c2s takes every frame behind that point back and
 * gives it to the next router (a message may then be handled twice, never lost). Most
 * batches defer nothing: their ticket goes back at once, and their frames are released
 * at the next settle (or with the unfinished batch before them).
 *
 * Threads: a ticket belongs to the shard that made it (only it frees it); any shard may
 * take and drop references. The last drop by another shard rings the owner's bell,
 * since the owner may be asleep with a front end waiting for room.
 */
#ifndef STARLING_ROUTER_TICKET_H
#define STARLING_ROUTER_TICKET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shard;
struct ring;

struct ticket {
    _Atomic unsigned refs;
    uint64_t end;        /* ring position after the batch's last frame */
    struct ticket *next; /* in the owner's queue, or its free list */
    struct shard *owner;
};

/* A front end's ring's tickets, oldest first, and a release due at the next settle for
 * batches that needed no ticket. */
struct ticket_queue {
    struct ticket *head, *tail;
    uint64_t release;
    bool due;
};

/* The shard's part: tickets to drop after the next publish, spare tickets, and tickets
 * of rings that were reset while still referenced. Zeroed is ready. */
struct ticket_state {
    struct ticket **defer;
    size_t ndefer, cap;
    size_t nheld; /* tickets queued and releases due: none, and a settle has nothing to do */
    struct ticket *spare;
    struct ticket *orphans;
};

/* A ticket with one reference (the batch's own), or NULL when memory is short (the
 * batch is then handled without one: what it defers is not waited for). */
struct ticket *ticket_new(struct shard *s);

/* Another reference to t (NULL: none) for a piece of work carried on later. */
static inline struct ticket *ticket_hold(struct ticket *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

/* Gives back a reference taken just now and not needed after all. The current work still
 * holds its own, so this is never the last. */
static inline void ticket_unhold(struct ticket *t)
{
    if (t)
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_relaxed);
}

/* Drops a reference once what the current work produced is published: at the next
 * ticket_settle() of s (the shard that did the work). NULL is ignored. */
void ticket_defer(struct shard *s, struct ticket *t);

/* After out_flush(): drops the deferred references and releases each front end's ring up
 * to its oldest ticket still referenced, ringing the front end when it waits for room. */
void ticket_settle(struct shard *s);

/* The end of a batch read from front end fe, up to ring position end, handled under t
 * (NULL when none could be had, or the batch was only pieces of a message under way). A ticket nothing else took a reference to is done with
 * the batch: the frames are released at the next settle, or with the unfinished batch
 * before them. Otherwise t waits in the ring's queue. */
void ticket_batch_end(struct shard *s, unsigned fe, struct ticket *t, uint64_t end);

/* The ring was reset: its tickets' positions mean nothing any more. Those still
 * referenced are freed when the last reference goes. */
void ticket_queue_drop(struct shard *s, struct ticket_queue *q);

/* Is there a ticket done that ticket_settle() would release? (The sleep re-check.) */
bool ticket_pending(struct shard *s);

/* Frees what the shard holds (the process stops). */
void ticket_state_free(struct ticket_state *ts);

#endif
