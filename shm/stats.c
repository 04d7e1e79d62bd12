/*
 * stats.c: the slots' helpers that are not inline (stats.h).
 */
#include "shm/stats.h"
#include "shm/proto.h"
#include "shm/seg.h"

/* Writers add a stanza's kind to the message row of its group. */
#define STATS_KINDS_OK(first)                                                                      \
    _Static_assert(STAT_##first##_MESSAGE + PROTO_PRESENCE == STAT_##first##_PRESENCE &&           \
                       STAT_##first##_MESSAGE + PROTO_IQ == STAT_##first##_IQ &&                   \
                       PROTO_MESSAGE == 0,                                                         \
                   #first ": rows out of enum proto_stanza_kind's order")
STATS_KINDS_OK(C2S_IN);
STATS_KINDS_OK(C2S_OUT);
STATS_KINDS_OK(S2S_IN);
STATS_KINDS_OK(S2S_OUT);

static const bool stats_gauge[STAT_COUNT_] = {
#define STATS_GAUGE_(id, type, name, labels, help) [STAT_##id] = STATS_T_##type,
#define STATS_T_GAUGE                              true
#define STATS_T_COUNTER                            false
    STATS_METRICS(STATS_GAUGE_)
#undef STATS_GAUGE_
#undef STATS_T_GAUGE
#undef STATS_T_COUNTER
};

bool stats_is_gauge(enum stats_id id)
{
    return (unsigned)id < STAT_COUNT_ && stats_gauge[id];
}

void stats_store_done(struct shm_stats *s, uint64_t us)
{
    static const uint64_t bounds[STATS_STORE_BUCKETS] = {STATS_STORE_BOUNDS_US};
    unsigned b = 0;
    while (b < STATS_STORE_BUCKETS && us > bounds[b])
        b++;
    stats_add(s, (enum stats_id)(STAT_STORE_BUCKET + b), 1);
    stats_add(s, STAT_STORE_TIME_US, us);
}

uint64_t stats_sum(const struct seg *seg, uint32_t from, uint32_t to, enum stats_id id)
{
    uint64_t sum = 0;
    for (uint32_t i = from; i < to; i++) {
        const struct shm_stats *s = seg_stats(seg, i);
        if (s)
            sum += atomic_load_explicit(&s->v[id], memory_order_relaxed);
    }
    return sum;
}

void stats_zero_gauges(struct shm_stats *s)
{
    for (unsigned id = 0; s && id < STAT_COUNT_; id++)
        if (stats_gauge[id])
            atomic_store_explicit(&s->v[id], 0, memory_order_relaxed);
}
