/*
 * port: messages of any size over a ring. A ring frame is at most ring_max_payload()
 * bytes; a message larger than that (a roster of a few hundred KB, a presence broadcast to
 * a large roster, a session re-registered with a long directed-presence list) travels as
 * consecutive pieces, and the consumer puts it back together before anyone looks at it.
 *
 *   piece 1            piece 2            ...   piece n
 *   flags: MORE        flags: MORE|CONT         flags: CONT        (one piece: neither)
 *   kind: the message's kind on every piece
 *
 * The pieces of one message are consecutive in their ring: port_send() writes all of them
 * in one call, to the ring or, once it is full, in order to the backlog, and nothing else
 * is written to that ring by the single producer in between.
 *
 * Producer: port_send() (any size; through the backlog when the ring is full or the
 * backlog holds frames already). Consumer: port_recv() instead of ring_peek()/
 * ring_consume(); it consumes what it reads, pieces included (they are copied out), and
 * the caller releases (ring_release(), or ring_release_to() what it has finished with).
 * A consumer must release the pieces it read even when no message came of them yet: a
 * message larger than the ring only arrives if they make room for the rest.
 *
 * Trust: pieces are checked like any frame (ring.h); a message that grows past rx->max,
 * or a piece out of sequence, is -EBADMSG: the producer is broken.
 *
 * One owner thread per struct port_rx, the ring's consumer.
 */
#ifndef STARLING_SHM_PORT_H
#define STARLING_SHM_PORT_H

#include "shm/backlog.h"
#include "shm/ring.h"

#include <stdbool.h>
#include <stdint.h>

/* Flags of a piece (struct shm_frame.flags). Other flags belong to the callers. */
#define PORT_F_MORE 0x8000u /* pieces of the same message follow */
#define PORT_F_CONT 0x4000u /* this piece continues a message */

/* A reassembly buffer this large is given back after its message, not kept. */
#define PORT_RX_KEEP (64u * 1024)

/* A consumer's message being put back together. Zeroed is ready; set max first. */
struct port_rx {
    char *buf;
    uint32_t len, cap;
    uint32_t max;  /* bytes of the largest message accepted */
    uint16_t kind; /* of the message under way */
    bool open;     /* pieces are under way */
};

/* Sends len bytes of payload as one message of this kind: one frame when it fits, pieces
 * otherwise; whatever finds the ring full, or the backlog non-empty, goes to the backlog
 * (with tag, see backlog.h). Committed, not published. 0 when it is all in the ring, 1
 * when (the rest of) it waits in the backlog with tag, -ENOMEM (nothing of it was sent:
 * pieces written already are taken back), -EINVAL for a kind the ring refuses, -EBADMSG
 * when the ring is unusable. */
int port_send(struct ring *r, struct backlog *q, uint16_t kind, const void *payload, uint32_t len,
              void *tag);

/* The pieces of payload[*off..len) that fit, committed; *off advances past them. 1 when
 * the message is complete, 0 when the ring filled first, or ring_reserve()'s error.
 * What port_send() and backlog_flush() are made of. */
int port_write(struct ring *r, uint16_t kind, const void *payload, uint32_t len, uint32_t *off);

/* The next whole message, consumed:
 *   1        *m is it: m->payload points into the ring (valid until released) for a
 *            single frame, or into rx->buf (valid until the next call) for pieces.
 *            m->flags has the piece flags cleared.
 *   0        nothing whole yet (pieces read so far are kept).
 *   -EBADMSG the ring is corrupt (ring_peek()), or the pieces are. Stays until reset.
 * A single frame with no message under way, the common case, is handled here inline. */
int port_recv_slow(struct ring *r, struct port_rx *rx, struct ring_frame *m);

static inline int port_recv(struct ring *r, struct port_rx *rx, struct ring_frame *m)
{
    if (rx->open || rx->cap > PORT_RX_KEEP)
        return port_recv_slow(r, rx, m);
    int rc = ring_peek(r, m);
    if (rc != 1 || (m->flags & (PORT_F_MORE | PORT_F_CONT)))
        return rc == 1 ? port_recv_slow(r, rx, m) : rc;
    ring_consume(r);
    return 1;
}

/* Forgets a message under way (the ring was reset) and gives large buffers back. */
void port_rx_reset(struct port_rx *rx);
void port_rx_free(struct port_rx *rx);

#endif
