/*
 * arena: a bump allocator for memory that lives exactly as long as one unit of work
 * (a stanza being handled, a config being loaded). Allocations are never freed one by
 * one; arena_reset() drops them all and keeps the first chunk for the next unit.
 *
 * Not thread-safe: an arena belongs to one thread at a time.
 */
#ifndef STARLING_ARENA_H
#define STARLING_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head; /* the chunk being filled; older ones follow */
    size_t chunk_size;        /* size of a regular chunk's payload */
};

/* chunk_size: payload bytes per chunk; a larger request gets a chunk of its own. */
void arena_init(struct arena *a, size_t chunk_size);

/* n bytes aligned for any type, or NULL when memory is exhausted. */
void *arena_alloc(struct arena *a, size_t n);

/* A NUL-terminated copy of s[0..n), or NULL. */
char *arena_strndup(struct arena *a, const char *s, size_t n);

/* Frees everything allocated, keeping one regular chunk. */
void arena_reset(struct arena *a);

/* Frees everything. The arena may be reused after arena_init(). */
void arena_free(struct arena *a);

#endif
