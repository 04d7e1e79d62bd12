#include "shm/port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int port_write(struct ring *r, uint16_t kind, const void *payload, uint32_t len, uint32_t *off)
{
    uint32_t max = ring_max_payload(r);
    do {
        uint32_t n = len - *off < max ? len - *off : max;
        uint16_t flags = (uint16_t)((*off ? PORT_F_CONT : 0) | (*off + n < len ? PORT_F_MORE : 0));
        void *dst;
        int rc = ring_reserve(r, n, kind, flags, &dst);
        if (rc == -ENOBUFS)
            return 0;
        if (rc < 0)
            return rc;
        memcpy(dst, (const char *)payload + *off, n);
        ring_commit(r);
        *off += n;
    } while (*off < len);
    return 1;
}

int port_send(struct ring *r, struct backlog *q, uint16_t kind, const void *payload, uint32_t len,
              void *tag)
{
    int rc;
    if (!backlog_empty(q)) {
        rc = backlog_push_tag(q, kind, payload, len, 0, tag);
        return rc < 0 ? rc : 1;
    }
    uint64_t mark = ring_committed(r);
    uint32_t off = 0;
    if ((rc = port_write(r, kind, payload, len, &off)) != 0)
        return rc < 0 ? rc : 0;
    /* The ring filled: the rest waits, in order, behind what went. Should that fail, the
     * pieces sent are taken back (nothing published them), so no half message is left. */
    if ((rc = backlog_push_tag(q, kind, payload, len, off, tag)) < 0) {
        ring_uncommit(r, mark);
        return rc;
    }
    return 1;
}

static int append(struct port_rx *rx, const struct ring_frame *f)
{
    if (f->len > rx->max - rx->len)
        return -EBADMSG;
    if (!f->len)
        return 0;
    if (rx->len + f->len > rx->cap) {
        uint32_t cap = rx->cap ? rx->cap : 4096;
        while (cap < rx->len + f->len)
            cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
        char *b = realloc(rx->buf, cap);
        if (!b)
            return -ENOMEM;
        rx->buf = b;
        rx->cap = cap;
    }
    memcpy(rx->buf + rx->len, f->payload, f->len);
    rx->len += f->len;
    return 0;
}

int port_recv_slow(struct ring *r, struct port_rx *rx, struct ring_frame *m)
{
    if (!rx->open && rx->cap > PORT_RX_KEEP)
        port_rx_reset(rx);
    for (;;) {
        struct ring_frame f;
        int rc = ring_peek(r, &f);
        if (rc <= 0)
            return rc;
        bool more = f.flags & PORT_F_MORE, cont = f.flags & PORT_F_CONT;
        if (!rx->open && !cont && !more) {
            ring_consume(r);
            *m = f;
            return 1;
        }
        if (rx->open != cont || (cont && f.kind != rx->kind))
            return -EBADMSG; /* a piece out of its message */
        if (!rx->open) {
            rx->open = true;
            rx->kind = f.kind;
            rx->len = 0;
        }
        /* Out of memory: the piece stays in the ring, to be read again on the next call. */
        if ((rc = append(rx, &f)) < 0)
            return rc == -ENOMEM ? 0 : rc;
        ring_consume(r);
        if (more)
            continue;
        rx->open = false;
        m->payload = rx->buf;
        m->len = rx->len;
        m->kind = rx->kind;
        m->flags = (uint16_t)(f.flags & ~(PORT_F_MORE | PORT_F_CONT));
        return 1;
    }
}

void port_rx_reset(struct port_rx *rx)
{
    rx->open = false;
    rx->len = 0;
    if (rx->cap > PORT_RX_KEEP) {
        free(rx->buf);
        rx->buf = NULL;
        rx->cap = 0;
    }
}

void port_rx_free(struct port_rx *rx)
{
    free(rx->buf);
    rx->buf = NULL;
    rx->cap = rx->len = 0;
    rx->open = false;
}
