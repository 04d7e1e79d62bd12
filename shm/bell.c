#include "shm/bell.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int bell_eventfd(void)
{
    int fd = eventfd(0, 0);
    return fd < 0 ? -errno : fd;
}

void bell_format(struct shm_bell *sh)
{
    atomic_store_explicit(&sh->sleeping, 0, memory_order_relaxed);
    sh->magic = SHM_BELL_MAGIC;
}

int bell_attach(struct bell *b, struct shm_bell *sh, int fd)
{
    if (sh->magic != SHM_BELL_MAGIC)
        return -EPROTO;
    b->sh = sh;
    b->fd = fd;
    return 0;
}

void bell_prepare_sleep(const struct bell *b)
{
    atomic_store_explicit(&b->sh->sleeping, 1, memory_order_relaxed);
    /* Dekker: pairs with the seq_cst fence in ring_publish() (and ring_release() for a
     * producer waiting for space) that follows the waker's store of head. Orders our store
     * of sleeping before the caller's re-check (load-acquire of head): of the two, at least
     * one side sees the other's store. */
    atomic_thread_fence(memory_order_seq_cst);
}

void bell_cancel_sleep(const struct bell *b)
{
    /* No fence: a waker that still sees 1 rings once more, and the spurious wake-up costs
     * one loop of the owner, never a lost frame. */
    atomic_store_explicit(&b->sh->sleeping, 0, memory_order_relaxed);
}

/* Reads the eventfd's count, which resets it to 0; only the owner reads, so after POLLIN
 * the read cannot block. */
static int bell_consume(const struct bell *b)
{
    uint64_t count;
    ssize_t n = read(b->fd, &count, sizeof count);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    return n == sizeof count ? 1 : -EIO;
}

int bell_wait(const struct bell *b, int timeout_ms)
{
    if (timeout_ms < 0) {
        /* The eventfd is blocking: one read both waits and consumes. */
        uint64_t v;
        ssize_t n = read(b->fd, &v, sizeof v);
        bell_cancel_sleep(b);
        return n == (ssize_t)sizeof v ? 1 : errno == EINTR ? 0 : -errno;
    }
    struct pollfd p = {.fd = b->fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0)
        rc = errno == EINTR ? 0 : -errno;
    else if (rc > 0)
        rc = bell_consume(b);
    bell_cancel_sleep(b);
    return rc;
}

int bell_drain(const struct bell *b)
{
    return bell_wait(b, 0);
}

int bell_ring(const struct bell *b)
{
    uint64_t one = 1;
    if (write(b->fd, &one, sizeof one) == sizeof one)
        return 0;
    /* EAGAIN (only if someone made the fd non-blocking): the count is at its maximum, so
     * the owner has a ring pending anyway. */
    return errno == EAGAIN ? 0 : -errno;
}
