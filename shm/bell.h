/*
 * bell: a doorbell that lets a thread sleep when it has nothing to do and be woken by
 * threads of other processes, at no cost while everybody is busy.
 *
 * A bell is an eventfd plus a `sleeping` flag in shared memory (struct shm_bell, abi.h).
 * The supervisor creates both (bell_eventfd(), bell_format()) before it forks, and each
 * child attaches a process-local struct bell to the flag and the inherited fd. There is one
 * bell per thread that can sleep: a router shard, a c2s or s2s thread. It serves all the
 * rings that thread reads, and the rings it writes when it waits for space (ring.h).
 *
 * Sleeping is a Dekker-style handshake between the sleeper S and any waker W:
 *
 *   S: bell_prepare_sleep()            W: store-release the index S waits for
 *        sleeping = 1                       (ring_publish / ring_release)
 *        full fence  -------- pairs ------- full fence
 *      re-check every ring                 if bell_claim(): sleeping was 1 and W cleared
 *        (load-acquire of the indices)       it: W rings the eventfd (bell_ring)
 *      work found: bell_cancel_sleep()
 *      else: bell_wait() or an io_uring read/poll on bell_fd(), then go back to work
 *
 * With both fences in place at least one side sees the other's store: either S's re-check
 * sees W's index and S does not sleep, or W sees sleeping == 1 and rings. No wake-up is
 * lost, and W makes no syscall unless S is really going to sleep. bell_claim() clears the
 * flag with an exchange so that of several wakers only one pays for the write(2).
 * Spurious wake-ups are possible (a ring that arrives after S cancelled its sleep leaves a
 * count in the eventfd) and harmless: S re-checks its rings and sleeps again.
 *
 * Threads: the owning thread calls prepare/cancel/wait/drain; any thread of any process
 * may call bell_claim() and bell_ring(). A struct bell is immutable after bell_attach(),
 * so the threads of one process may share it.
 */
#ifndef STARLING_SHM_BELL_H
#define STARLING_SHM_BELL_H

#include "shm/abi.h"

#include <stdbool.h>

struct bell {
    struct shm_bell *sh; /* the flag, in shared memory */
    int fd;              /* the eventfd, inherited from the supervisor */
};

/* A new eventfd for a bell: blocking, and not close-on-exec because the supervisor's
 * children inherit it. Returns the fd or -errno. The supervisor owns it and closes it. */
int bell_eventfd(void);

/* Initialises a bell's shared flag. The supervisor calls it when it creates the segment,
 * and again before it starts a replacement for a dead owner (whose flag may be stuck at 1). */
void bell_format(struct shm_bell *sh);

/* Binds a process-local bell to its shared flag and eventfd. -EPROTO when sh was not
 * formatted. Does not take ownership of fd. */
int bell_attach(struct bell *b, struct shm_bell *sh, int fd);

/* The eventfd, for an io_uring POLL_ADD (then bell_drain()) or READ (then
 * bell_cancel_sleep()). Prefer POLL_ADD with IORING_POLL_ADD_MULTI: it stays armed. */
static inline int bell_fd(const struct bell *b)
{
    return b->fd;
}

/* Owner: announce the sleep. Sets sleeping and issues a full fence; the caller must then
 * re-check every ring it would be woken for (ring_empty(), ring_wait_prepare()) before it
 * blocks, and call bell_cancel_sleep() if it found work. */
void bell_prepare_sleep(const struct bell *b);

/* Owner: found work after bell_prepare_sleep(); clears sleeping. */
void bell_cancel_sleep(const struct bell *b);

/* Owner: blocks until the bell rings or timeout_ms passes (-1: forever), then consumes the
 * eventfd count and clears sleeping. 1 when rung, 0 on timeout or EINTR, -errno on error. */
int bell_wait(const struct bell *b, int timeout_ms);

/* Owner: without blocking, consumes any pending ring and clears sleeping (after an io_uring
 * POLL completion on bell_fd()). 1 when a ring was pending, 0 when not, -errno on error. */
int bell_drain(const struct bell *b);

/* Waker: write 1 to the eventfd. 0 or -errno. Call it only after bell_claim() said so. */
int bell_ring(const struct bell *b);

/* Waker: true when the owner is going to sleep and this caller is the one that must ring.
 * Must follow the waker's store of the index and a seq_cst fence (ring.c does this). */
static inline bool bell_claim(const struct bell *b)
{
    /* Relaxed is enough: the data the sleeper needs travels through the ring indices
     * (release/acquire); this flag only decides who makes the syscall. The plain load first
     * keeps the line shared while the owner is awake: no write, no ping-pong. */
    return atomic_load_explicit(&b->sh->sleeping, memory_order_relaxed) &&
           atomic_exchange_explicit(&b->sh->sleeping, 0, memory_order_relaxed);
}

#endif
