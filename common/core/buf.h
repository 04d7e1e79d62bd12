/*
 * buf: a growable byte buffer with a consumed prefix, for output queues (append at the
 * end, consume from the front as sends complete) and for building server-generated XML.
 *
 * Memory is held only while there are bytes: buf_consume() of the last byte keeps the
 * allocation for reuse, buf_trim() gives it back (for idle connections). Allocation
 * failure is reported (-ENOMEM), never fatal. One owner thread.
 */
#ifndef STARLING_BUF_H
#define STARLING_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    char *p;
    uint32_t off; /* first unconsumed byte */
    uint32_t len; /* end of the data */
    uint32_t cap;
};

/* Bytes held. */
static inline uint32_t buf_used(const struct buf *b)
{
    return b->len - b->off;
}

static inline char *buf_data(const struct buf *b)
{
    return b->p + b->off;
}

/* Room for n more bytes at buf_end(); 0 or -ENOMEM (or -E2BIG past 4 GiB). */
int buf_reserve(struct buf *b, size_t n);

static inline char *buf_end(const struct buf *b)
{
    return b->p + b->len;
}

int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);

/* Drops n bytes from the front. */
void buf_consume(struct buf *b, size_t n);

/* Frees the allocation if the buffer is empty. */
void buf_trim(struct buf *b);

void buf_free(struct buf *b);

#endif
