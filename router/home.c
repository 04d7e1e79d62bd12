/*
 * home.c: the consistent-hash ring of the cluster (home.h).
 */
#include "router/home.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int by_hash(const void *a, const void *b)
{
    const struct home_point *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node; /* ties: the same order everywhere */
}

struct home_view *home_view_new(const char *const *names, const uint16_t *shards, unsigned n,
                                unsigned self, uint64_t epoch)
{
    uint32_t np = 0;
    for (unsigned i = 0; i < n && i < HOME_NODES_MAX; i++)
        np += (uint32_t)shards[i] * HOME_POINTS_PER_SHARD;
    struct home_view *v = calloc(1, sizeof *v + np * sizeof v->points[0]);
    if (!v)
        return NULL;
    v->epoch = epoch;
    v->self = self;
    uint32_t k = 0;
    for (unsigned i = 0; i < n && i < HOME_NODES_MAX; i++) {
        if (!shards[i])
            continue;
        v->up |= 1ull << i;
        v->shards[i] = shards[i];
        size_t len = strlen(names[i]);
        XXH64_hash_t seed = XXH3_64bits(names[i], len);
        for (uint32_t p = 0; p < (uint32_t)shards[i] * HOME_POINTS_PER_SHARD; p++)
            v->points[k++] = (struct home_point){XXH3_64bits_withSeed(&p, sizeof p, seed), i};
    }
    v->npoints = k;
    qsort(v->points, k, sizeof v->points[0], by_hash);
    return v;
}

void home_view_free(struct home_view *v)
{
    while (v) {
        struct home_view *o = v->older;
        free(v);
        v = o;
    }
}

unsigned home_node(const struct home_view *v, uint64_t key)
{
    if (!v->npoints)
        return v->self;
    /* The key is already a hash, but of a bare JID, whose low bits also pick the shard:
     * mixed again so the node and the shard are independent choices. */
    uint64_t h = XXH3_64bits(&key, sizeof key);
    uint32_t lo = 0, hi = v->npoints;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (v->points[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return v->points[lo == v->npoints ? 0 : lo].node;
}
