/*
 * libFuzzer driver for the consumer side of a ring (shm/ring.c ring_peek) and for what
 * is built on it: messages in pieces (shm/port.c port_recv) and the survivor's walk over
 * frames a dead consumer had not released (ring_unreleased). The input is what a broken
 * or hostile peer process could leave in shared memory: the first 16 bytes are the head
 * and tail indices, the rest the data area (4 KiB, frames of at most 1 KiB). Properties,
 * abort() on any violation:
 *   - every call returns one of its documented values;
 *   - every payload handed out lies inside the data area (or the reassembly buffer) and
 *     is read whole; a message never exceeds the reassembly limit;
 *   - the consumer never moves past the published head, and terminates.
 */
#include "shm/port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define DATA     4096u
#define MAXF     1024u
#define MAX_MSG  (16u * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

static void read_all(const void *p, uint32_t n)
{
    unsigned x = 0;
    for (uint32_t i = 0; i < n; i++)
        x += ((const unsigned char *)p)[i];
    sink += x;
}

static int visit(void *arg, const struct ring_frame *f)
{
    const struct shm_ring *sh = arg;
    const unsigned char *p = f->payload;
    FUZZ_CHECK(p >= sh->data && p + f->len <= sh->data + DATA);
    read_all(p, f->len);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct shm_ring *sh;
    if (!sh && !(sh = aligned_alloc(SHM_SLOT, ring_footprint(DATA))))
        return 0;
    if (size < 16)
        return 0;
    ring_format(sh, DATA, MAXF);
    uint64_t head, tail;
    memcpy(&head, data, 8);
    memcpy(&tail, data + 8, 8);
    size_t n = size - 16 < DATA ? size - 16 : DATA;
    memcpy(sh->data, data + 16, n);
    memset(sh->data + n, 0, DATA - n);
    atomic_store(&sh->head, head);
    atomic_store(&sh->tail, tail);

    struct ring c, p;
    int rc = ring_attach(&c, sh, NULL, 100);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
    if (rc)
        return 0;
    struct port_rx rx = {.max = MAX_MSG};
    struct ring_frame m;
    for (unsigned steps = 0;; steps++) {
        FUZZ_CHECK(steps <= DATA / 8); /* every whole message consumes at least 8 bytes */
        rc = port_recv(&c, &rx, &m);
        FUZZ_CHECK(rc == 1 || rc == 0 || rc == -EBADMSG);
        if (rc != 1)
            break;
        FUZZ_CHECK(m.len <= MAX_MSG && !(m.flags & (PORT_F_MORE | PORT_F_CONT)));
        const unsigned char *q = m.payload;
        FUZZ_CHECK((q >= sh->data && q + m.len <= sh->data + DATA) ||
                   (q == (const unsigned char *)rx.buf && m.len <= rx.len));
        read_all(q, m.len);
        FUZZ_CHECK(ring_consumed(&c) - tail <= head - tail);
        ring_release(&c);
    }
    port_rx_free(&rx);

    /* The same memory as the producer's own frames, the consumer having died. */
    ring_format(sh, DATA, MAXF);
    memcpy(sh->data, data + 16, n);
    atomic_store(&sh->head, head);
    atomic_store(&sh->tail, tail);
    if (ring_attach(&p, sh, NULL, 100) == 0) {
        rc = ring_unreleased(&p, visit, sh);
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
    }
    return 0;
}
