/*
 * hist: a latency histogram with HDR-style log-linear buckets, for starling-bench.
 *
 * Values (nanoseconds, or any unsigned 64-bit quantity) below 2^HIST_SUB_BITS are
 * counted exactly; above, every power of two is split into 2^HIST_SUB_BITS equal
 * buckets, so a bucket is never wider than 1/128 of its lower bound: any percentile
 * read back is within 0.8 % of the true sample value, over the whole 64-bit range, with
 * a fixed 58 KiB of counters and no allocation. Recording is a few shifts and one
 * increment: cheap enough for every message of a load test.
 *
 * The exact minimum, maximum and sum are kept beside the buckets, so max and mean are
 * exact. A percentile is reported as the highest value its bucket can hold (HDR's
 * "highest equivalent value"), clamped to the exact maximum: a histogram never
 * under-reports latency.
 *
 * Threads: a histogram belongs to one thread; merge per-thread histograms with
 * hist_merge() once the threads are done.
 */
#ifndef STARLING_BENCH_HIST_H
#define STARLING_BENCH_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB      (1u << HIST_SUB_BITS)
/* Buckets: the exact range [0, 2^7), then 128 for each exponent 7..63. */
#define HIST_BUCKETS (HIST_SUB + (64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t sum; /* of every value recorded; wraps only after 584 years of nanoseconds */
    uint64_t min, max;
    uint64_t b[HIST_BUCKETS];
};

/* Empties h. */
void hist_init(struct hist *h);

/* Counts v once. */
static inline void hist_record(struct hist *h, uint64_t v);

/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/* The value at percentile p (0 < p <= 100): the upper bound of the bucket holding the
 * ceil(p/100 * count)-th smallest value, at most the exact maximum. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

/* Mean of the values recorded; 0 when empty. */
double hist_mean(const struct hist *h);

/* The bucket of v, and the range [lo, hi] of values bucket i holds. */
static inline unsigned hist_bucket(uint64_t v);
void hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

/* ---- inline bodies ----------------------------------------------------------------------- */

static inline unsigned hist_bucket(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= HIST_SUB_BITS */
    unsigned shift = e - HIST_SUB_BITS;
    /* v >> shift is in [128, 256): its low 7 bits pick the linear sub-bucket. */
    return HIST_SUB + shift * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static inline void hist_record(struct hist *h, uint64_t v)
{
    h->b[hist_bucket(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

#endif
