#include "common/core/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t used = b->len - b->off;
    if (b->off && b->cap - used >= n) {
        /* Enough room once the consumed prefix is gone. */
        memmove(b->p, b->p + b->off, used);
        b->off = 0;
        b->len = (uint32_t)used;
        return 0;
    }
    if (n > UINT32_MAX - used)
        return -E2BIG;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < used + n)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    char *p = malloc(cap);
    if (!p)
        return -ENOMEM;
    if (used)
        memcpy(p, b->p + b->off, used);
    free(b->p);
    b->p = p;
    b->off = 0;
    b->len = (uint32_t)used;
    b->cap = (uint32_t)cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    int err = buf_reserve(b, n);
    if (err)
        return err;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += (uint32_t)n;
    return 0;
}

int buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

void buf_consume(struct buf *b, size_t n)
{
    b->off += (uint32_t)n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

void buf_trim(struct buf *b)
{
    if (b->len == b->off) {
        free(b->p);
        b->p = NULL;
        b->off = b->len = b->cap = 0;
    }
}

void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->off = b->len = b->cap = 0;
}
