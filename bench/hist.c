#include "bench/hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

void hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
    if (i < HIST_SUB) {
        *lo = *hi = i;
        return;
    }
    unsigned shift = (i - HIST_SUB) / HIST_SUB;
    uint64_t sub = (i - HIST_SUB) % HIST_SUB;
    *lo = (HIST_SUB + sub) << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (!h->count)
        return 0;
    if (p > 100)
        p = 100;
    /* The rank of the value asked for, 1-based. The tiny relative slack keeps decimal
     * percentiles exact: 99.9 / 100 * 1000 is 999.0000000000001 in binary. */
    double x = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)ceil(x - x * 1e-12);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, hi;
            hist_bucket_range(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            return hi < h->min ? h->min : hi;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
