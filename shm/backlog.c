#include "shm/backlog.h"
#include "shm/port.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct backlog_frame {
    struct backlog_frame *next;
    void *tag;
    uint32_t len;
    uint32_t sent; /* bytes already in the ring, as pieces */
    uint16_t kind;
    char payload[];
};

int backlog_push(struct backlog *q, uint16_t kind, const void *payload, uint32_t len)
{
    return backlog_push_tag(q, kind, payload, len, 0, NULL);
}

int backlog_push_tag(struct backlog *q, uint16_t kind, const void *payload, uint32_t len,
                     uint32_t sent, void *tag)
{
    struct backlog_frame *f = malloc(sizeof *f + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->tag = tag;
    f->len = len;
    f->sent = sent;
    f->kind = kind;
    memcpy(f->payload, payload, len);
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->bytes += len;
    return 0;
}

/* Unlinks the head, which has left (or never will). */
static void pop(struct backlog *q)
{
    struct backlog_frame *f = q->head;
    q->head = f->next;
    if (!q->head)
        q->tail = NULL;
    q->bytes -= f->len;
    if (q->moved)
        q->moved(q->moved_arg, f->tag);
    free(f);
}

unsigned backlog_flush(struct backlog *q, struct ring *r)
{
    unsigned moved = 0;
    while (q->head) {
        struct backlog_frame *f = q->head;
        uint32_t was = f->sent;
        int rc = port_write(r, f->kind, f->payload, f->len, &f->sent);
        moved += f->sent != was || rc == 1;
        if (rc == -EINVAL) {
            /* Never fits this ring: waiting would block everything behind it for good. */
            q->refused++;
            pop(q);
            continue;
        }
        if (rc != 1)
            break; /* full, or the ring is unusable until reset */
        pop(q);
    }
    return moved;
}

void backlog_clear(struct backlog *q)
{
    while (q->head)
        pop(q);
}
