#include "shm/backlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct backlog_frame {
    struct backlog_frame *next;
    uint32_t len;
    uint16_t kind;
    char payload[];
};

int backlog_push(struct backlog *q, uint16_t kind, const void *payload, uint32_t len)
{
    struct backlog_frame *f = malloc(sizeof *f + len);
    if (!f)
        return -ENOMEM;
    f->next = NULL;
    f->len = len;
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

unsigned backlog_flush(struct backlog *q, struct ring *r)
{
    unsigned moved = 0;
    while (q->head) {
        struct backlog_frame *f = q->head;
        void *dst;
        if (ring_reserve(r, f->len, f->kind, 0, &dst) < 0)
            break;
        memcpy(dst, f->payload, f->len);
        ring_commit(r);
        q->head = f->next;
        if (!q->head)
            q->tail = NULL;
        q->bytes -= f->len;
        free(f);
        moved++;
    }
    return moved;
}

void backlog_clear(struct backlog *q)
{
    while (q->head) {
        struct backlog_frame *f = q->head;
        q->head = f->next;
        free(f);
    }
    q->tail = NULL;
    q->bytes = 0;
}
