/*
 * seg: the shared-memory segment that holds a node's rings, bells and stats slots (layout:
 * struct shm_seg in abi.h).
 *
 * The supervisor plans the layout from the counts and sizes in its config (seg_plan),
 * creates the segment (seg_create: memfd_create, ftruncate, seals, mmap MAP_SHARED, formats
 * every ring and bell) and keeps its fd open across fork and exec. Each child computes the
 * same plan from the same config and maps the inherited fd (seg_map), which checks that the
 * segment's header agrees with its plan, so that two processes built or configured
 * differently refuse to talk instead of corrupting each other. Offsets are a pure function of
 * the plan; which ring index serves which (thread, shard, direction) is the caller's
 * convention, not this module's.
 *
 * The segment is sealed against shrinking and growing: no process can truncate it under
 * another's feet (which would turn the other's accesses into SIGBUS).
 *
 * Not thread-safe while creating or mapping; afterwards a struct seg is read-only and the
 * threads of a process share it.
 */
#ifndef STARLING_SHM_SEG_H
#define STARLING_SHM_SEG_H

#include "shm/abi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where everything is; a pure function of the five numbers seg_plan() takes. */
struct seg_layout {
    uint32_t n_rings, n_bells, n_stats;
    uint32_t ring_data_size, max_frame;
    size_t ring_stride; /* ring_footprint(ring_data_size), rounded up to SHM_SLOT */
    size_t bells_off, stats_off, rings_off, size;
};

struct seg {
    void *base;
    int fd;
    bool owns_fd; /* seg_create() made fd, so seg_close() closes it */
    struct seg_layout l;
};

/* Plans a segment of n_rings rings (each with ring_data_size bytes of data, frames of at most
 * max_frame bytes, see ring_format()), n_bells bells and n_stats stats slots (zeroed by
 * seg_create()). 0, or -EINVAL for sizes ring_format() would refuse, -EOVERFLOW when the
 * total does not fit. */
int seg_plan(struct seg_layout *l, uint32_t n_rings, uint32_t n_bells, uint32_t n_stats,
             uint32_t ring_data_size, uint32_t max_frame);

/* Supervisor: creates, maps and formats a segment laid out as l; name shows in
 * /proc/<pid>/fd (memfd:name). s owns the fd (not close-on-exec, for the children).
 * 0 or -errno. */
int seg_create(struct seg *s, const char *name, const struct seg_layout *l);

/* Child: maps the inherited fd. With l, the segment must be laid out exactly as l; with
 * l == NULL, the layout is taken from the segment's header (after checking it is one that
 * seg_plan() yields: for tools that inspect a live segment). The fd stays the caller's.
 * 0, -EPROTO for a segment of another kind or version, -EBADMSG for a header that disagrees
 * with the plan or the file's size, or -errno from fstat/mmap. */
int seg_map(struct seg *s, int fd, const struct seg_layout *l);

/* Unmaps the segment, and closes the fd when seg_create() made it. */
void seg_close(struct seg *s);

/* The memory of ring i (for ring_attach()) and of bell i (for bell_attach()). */
static inline void *seg_ring(const struct seg *s, uint32_t i)
{
    return (unsigned char *)s->base + s->l.rings_off + (size_t)i * s->l.ring_stride;
}

static inline struct shm_bell *seg_bell(const struct seg *s, uint32_t i)
{
    return (struct shm_bell *)((unsigned char *)s->base + s->l.bells_off) + i;
}

/* Stats slot i (stats.h), or NULL past the plan's n_stats. */
static inline struct shm_stats *seg_stats(const struct seg *s, uint32_t i)
{
    if (i >= s->l.n_stats)
        return NULL;
    return (struct shm_stats *)((unsigned char *)s->base + s->l.stats_off) + i;
}

#endif
