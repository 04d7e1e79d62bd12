/*
 * ring: a single-producer/single-consumer ring of variable-length frames in shared memory,
 * between two threads of two processes (a c2s/s2s thread and a router shard, one ring per
 * pair and direction). The layout is struct shm_ring in abi.h.
 *
 * Ownership. The supervisor formats the ring (ring_format) inside a segment (seg.h). Then
 * exactly one thread attaches as producer and exactly one as consumer, each with its own
 * process-local struct ring (ring_attach). Only the producer calls the producer functions
 * and only the consumer the consumer ones; a struct ring is never shared between threads.
 * The local struct caches the other side's index, so the shared cache lines are touched
 * once per batch, not once per frame.
 *
 * Producer:  ring_reserve() -> write the payload -> ring_commit()   (repeat: a batch)
 *            ring_publish()  one store-release of head for the whole batch; when it returns
 *                            true the consumer sleeps: ring its bell (bell_ring(peer)).
 *            ring_reserve() == -ENOBUFS is back-pressure: stop reading the socket that
 *                            produced the frame, and ring_wait_prepare() to be woken when
 *                            space returns. A ring never drops a frame.
 *            ring_trim()     about once a second while idle: a quiet ring's pages go back
 *                            to the system.
 * Consumer:  ring_peek() -> use the frame -> ring_consume()          (repeat: a batch)
 *            ring_release()  one store-release of tail for the batch; when it returns true
 *                            the producer waits for space: ring its bell.
 *
 * Trust. The consumer validates every frame header before it hands it out (length, bounds,
 * alignment, kind), so a bug in the producing process yields -EBADMSG, never a read outside
 * the ring. The frame is returned as a validated process-local copy of its header and a
 * pointer to the payload; the payload bytes stay in shared memory and are as trustworthy as
 * the peer that wrote them: whatever they say (offsets, lengths) is checked before use.
 * Likewise the producer checks the tail the consumer publishes.
 *
 * Wake-ups are the bell's handshake (bell.h); the seq_cst fences that pair with the
 * sleeper's are inside ring_publish(), ring_release() and ring_wait_prepare().
 *
 * Reset (ring_reset). When the process at one end dies, the ring must be made empty before
 * its replacement attaches. The rules:
 *   - Only the survivor: the thread that is attached to the other end of this ring.
 *   - Only after the supervisor has reaped the dead process (waitpid), so that nothing else
 *     can store to the ring, and before it starts the replacement: the supervisor waits for
 *     every survivor to report its rings reset, then forks. That hand-over (a message or a
 *     pipe) orders the reset before the replacement's ring_attach().
 *   - A surviving consumer may first drain what was published: a frame is published only
 *     once complete, so everything below head is whole. Whatever the dead producer had
 *     reserved but not published is discarded. A surviving producer may first take back
 *     what it had committed and the consumer had not released (ring_unreleased()): a
 *     consumer that releases a frame only once it has finished with it (ring_release_to())
 *     loses nothing it was given when it dies; everything else is discarded.
 *   - The supervisor also re-formats the dead threads' bells (bell_format).
 * ring_reset() stores head = tail = 0, disarms wake_tail and resets the survivor's local
 * state, as if the ring had just been formatted.
 */
#ifndef STARLING_SHM_RING_H
#define STARLING_SHM_RING_H

#include "shm/abi.h"
#include "shm/bell.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of a ring's data area (a power of two) and of a frame (header included). */
#define RING_MIN_DATA  4096u
#define RING_MAX_DATA  (1u << 30)
#define RING_MIN_FRAME 16u

/* A frame as the consumer sees it: a validated copy of the header and the payload. */
struct ring_frame {
    const void *payload; /* in shared memory; len bytes */
    uint32_t len;        /* payload bytes (the shm header's len minus 8) */
    uint16_t kind;
    uint16_t flags;
};

/* Process-local view of one ring end. Fields are private to ring.c. */
struct ring {
    struct shm_ring *sh;
    unsigned char *data;
    const struct bell *peer; /* the other end's thread's bell, or NULL */
    uint64_t mask;           /* data_size - 1 */
    uint32_t size;           /* data_size */
    uint32_t max_frame;      /* header included */
    uint16_t max_kind;

    /* producer */
    uint64_t head;      /* end of the last committed frame */
    uint64_t resv;      /* end of the reserved frame; == head when none */
    uint64_t pub;       /* the head last stored to sh->head */
    uint64_t tail_seen; /* sh->tail as last loaded */
    uint64_t want;      /* bytes the last refused reservation needed */
    uint64_t quiet_pub; /* pub at the previous ring_trim() */
    uint64_t trimmed;   /* pub when the data area was last given back (ring_trim) */

    /* consumer */
    uint64_t tail;      /* start of the next frame to read */
    uint64_t next;      /* end of the frame ring_peek() returned */
    uint64_t rel;       /* the tail last stored to sh->tail */
    uint64_t head_seen; /* sh->head as last loaded */
};

/* Bytes a ring with a data area of data_size needs (header + data), or 0 if data_size is not
 * a power of two in [RING_MIN_DATA, RING_MAX_DATA]. */
size_t ring_footprint(uint32_t data_size);

/* Creator only, before anyone attaches: formats mem (ring_footprint(data_size) bytes,
 * aligned to SHM_SLOT) as an empty ring whose frames are at most max_frame bytes, header
 * included. max_frame must lie in [RING_MIN_FRAME, data_size / 2], which guarantees that a
 * frame of max_frame bytes always fits in an empty ring, pad frame included.
 * 0, or -EINVAL for bad sizes or alignment. */
int ring_format(void *mem, uint32_t data_size, uint32_t max_frame);

/* Anyone, without attaching (the supervisor's /metrics): bytes published into the formatted
 * ring at mem and not yet released, frames and padding included; 0 for memory that is not a
 * ring. A moment's value: both ends go on moving. */
uint64_t ring_occupancy(const void *mem);

/* Either end, once per thread: binds r to the formatted ring at mem. peer is the bell of the
 * thread at the other end (the consumer's for a producer, the producer's for a consumer), or
 * NULL when that thread never sleeps. Frames of kind > max_kind are refused by both ends;
 * max_kind must be below SHM_KIND_PAD. 0, -EPROTO when mem is not a ring of this version,
 * -EBADMSG when its header or indices are inconsistent, -EINVAL for a bad max_kind. */
int ring_attach(struct ring *r, void *mem, const struct bell *peer, uint16_t max_kind);

/* The largest payload a frame may carry. */
static inline uint32_t ring_max_payload(const struct ring *r)
{
    return r->max_frame - (uint32_t)sizeof(struct shm_frame);
}

/* ---- producer ---- */

/* Reserves a frame with a payload of len bytes and sets *payload to where to write it
 * (8-byte aligned). The frame becomes part of the batch at ring_commit() and visible at
 * ring_publish(); reserving again before committing forgets the previous reservation.
 *   0         reserved.
 *   -ENOBUFS  the ring is full (back-pressure). Nothing was written. Publish what is
 *             batched, then ring_wait_prepare().
 *   -EMSGSIZE len > ring_max_payload(): it never fits; refuse the input that produced it.
 *   -EINVAL   kind > max_kind.
 *   -EBADMSG  the consumer published an impossible tail; the ring is unusable until reset. */
int ring_reserve(struct ring *r, uint32_t len, uint16_t kind, uint16_t flags, void **payload);

/* Adds the reserved frame to the batch (a no-op without a reservation). */
static inline void ring_commit(struct ring *r)
{
    r->head = r->resv;
}

/* The position after the last committed frame, a mark for ring_uncommit(). */
static inline uint64_t ring_committed(const struct ring *r)
{
    return r->head;
}

/* Takes back the frames committed after mark, none of which may have been published yet
 * (a message in pieces that cannot be finished). */
static inline void ring_uncommit(struct ring *r, uint64_t mark)
{
    if (mark - r->pub <= r->head - r->pub)
        r->head = r->resv = mark;
}

/* Makes every committed frame visible to the consumer with one store-release. Returns true
 * when the consumer is going to sleep and the caller must bell_ring(r->peer) (a caller may
 * also do it through io_uring, or ring each bell once after publishing several rings). */
bool ring_publish(struct ring *r);

/* After -ENOBUFS and ring_publish(): arms wake_tail so that the consumer's ring_release()
 * returns true, and the consumer rings this producer's bell, once half the ring (or the
 * refused frame, if larger) is free; waiting for half a ring makes the wake-ups batch.
 *   1        armed: sleep (bell_wait()), or carry on with other work until the bell rings.
 *   0        the space is already there: reserve again now. Nothing is armed, so no ring
 *            will come for it.
 *   -EBUSY   frames are committed but not published: the consumer could never free space.
 *   -EBADMSG the consumer published an impossible tail.
 * Its seq_cst fence pairs with the one in ring_release(), as in the bell's handshake. */
int ring_wait_prepare(struct ring *r);

/* Memory at rest: gives the pages of the data area back to the system when the ring has
 * been quiet, so an idle ring holds none (they come back, zeroed, as frames reach them
 * again: one page fault each). Quiet means: nothing reserved or batched, nothing published
 * since the previous call, and everything published consumed and released. Call it every
 * second or so while idle: a busy ring is left alone. In a memfd segment MADV_REMOVE frees
 * the pages for both processes at once; a ring in private memory (between two threads)
 * gets MADV_DONTNEED. The pages at the edges of the data area, shared with the header or
 * the next ring, stay.
 *   1        trimmed.
 *   0        not quiet, or nothing written since the last trim.
 *   -EBADMSG the consumer published an impossible tail.
 *   -errno   from madvise(); nothing was given back. */
int ring_trim(struct ring *r);

/* Nothing written since the last trim (or since the ring was formatted or reset). */
static inline bool ring_trimmed(const struct ring *r)
{
    return r->trimmed == r->pub;
}

/* ---- consumer ---- */

/* The next frame, without consuming it.
 *   1        *f is the next frame (pad frames are skipped here).
 *   0        the ring is empty.
 *   -EBADMSG the next frame is invalid (len shorter than a header or longer than max_frame,
 *            past the published head, straddling the end, a pad that does not reach the
 *            end, kind > max_kind) or the published head is (misaligned, too far ahead).
 *            Nothing is consumed and the error stays: the producer's process is broken and
 *            must be replaced (then ring_reset()). Until then leave the ring out of the
 *            sleep re-check too, since ring_empty() keeps calling it non-empty. */
int ring_peek(struct ring *r, struct ring_frame *f);

/* Consumes the frame ring_peek() returned (locally: the producer sees it at release). */
static inline void ring_consume(struct ring *r)
{
    r->tail = r->next;
}

/* Returns every consumed frame's space to the producer with one store-release. Returns true
 * when the producer waits for that space and the caller must bell_ring(r->peer). */
bool ring_release(struct ring *r);

/* Where the next frame starts: the position just after everything consumed so far. */
static inline uint64_t ring_consumed(const struct ring *r)
{
    return r->tail;
}

/* ring_release(), but only up to pos, a position ring_consumed() returned (frames behind it
 * are still in use: a consumer that must not give a frame back before it has finished with
 * it, so that a replacement of this process finds it again, see "Reset"). pos must not be
 * before what was released already nor after ring_consumed(). */
bool ring_release_to(struct ring *r, uint64_t pos);

/* True when nothing is published beyond what this consumer has read. Always loads the shared
 * head: use it to re-check rings after bell_prepare_sleep(). */
bool ring_empty(struct ring *r);

/* ---- either end ---- */

/* The survivor's reset after the process at the other end died (see the top of this file
 * for who and when). */
void ring_reset(struct ring *r);

/* Producer, after the consumer died and before ring_reset(): calls fn for every committed
 * frame the consumer had not released (published or not), oldest first, so that the
 * survivor can hand them to the consumer's replacement. The released position comes from
 * the dead process and is checked like any tail. 0, -EBADMSG when that position or a frame
 * behind it is impossible (frames before the bad one were visited), or fn's first
 * non-zero return. */
int ring_unreleased(struct ring *r, int (*fn)(void *arg, const struct ring_frame *f), void *arg);

#endif
