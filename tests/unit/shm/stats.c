/* Unit tests of shm/stats.c: slots written through one mapping are summed through another,
 * as c2s writes and the supervisor reads; gauges go negative and back; the store's
 * histogram buckets; a dead process's gauges zeroed, its counters kept. */
#include "shm/stats.h"
#include "shm/seg.h"
#include "test.h"

static void test_sum_across_mappings(void)
{
    struct seg_layout l;
    struct seg w, r;
    CHECK_INT(seg_plan(&l, 1, 1, 3, 4096, 256), ==, 0);
    CHECK_INT(seg_create(&r, "starling-test", &l), ==, 0);
    CHECK_INT(seg_map(&w, r.fd, &l), ==, 0);
    CHECK(seg_stats(&w, 3) == NULL);
    for (uint32_t i = 0; i < 3; i++)
        CHECK_INT(stats_sum(&r, i, i + 1, STAT_C2S_LOGINS), ==, 0); /* zeroed */

    stats_add(seg_stats(&w, 0), STAT_C2S_LOGINS, 2);
    stats_add(seg_stats(&w, 2), STAT_C2S_LOGINS, 5);
    CHECK_INT(stats_sum(&r, 0, 3, STAT_C2S_LOGINS), ==, 7);
    CHECK_INT(stats_sum(&r, 1, 3, STAT_C2S_LOGINS), ==, 5);

    /* A gauge one thread raises and another lowers sums right read as signed. */
    stats_add(seg_stats(&w, 0), STAT_C2S_CONNECTIONS, 3);
    stats_sub(seg_stats(&w, 1), STAT_C2S_CONNECTIONS, 1);
    CHECK_INT((int64_t)stats_sum(&r, 0, 3, STAT_C2S_CONNECTIONS), ==, 2);
    CHECK_INT((int64_t)stats_sum(&r, 1, 2, STAT_C2S_CONNECTIONS), ==, -1);

    /* The process of slot 0 died: its gauges go, its counters stay. */
    stats_zero_gauges(seg_stats(&r, 0));
    CHECK_INT((int64_t)stats_sum(&r, 0, 1, STAT_C2S_CONNECTIONS), ==, 0);
    CHECK_INT(stats_sum(&r, 0, 1, STAT_C2S_LOGINS), ==, 2);

    stats_add(NULL, STAT_C2S_LOGINS, 1); /* no slot: nothing, no crash */
    seg_close(&w);
    seg_close(&r);
}

static void test_kinds(void)
{
    CHECK(stats_is_gauge(STAT_C2S_CONNECTIONS));
    CHECK(stats_is_gauge(STAT_STORE_QUEUE));
    CHECK(!stats_is_gauge(STAT_C2S_LOGINS));
    CHECK(!stats_is_gauge(STAT_STORE_TIME_US));
    CHECK(!stats_is_gauge(STAT_COUNT_));
}

static void test_store_histogram(void)
{
    struct shm_stats s = {0};
    stats_store_done(&s, 0);       /* <= 100 us */
    stats_store_done(&s, 100);     /* <= 100 us: bounds are inclusive */
    stats_store_done(&s, 101);     /* <= 250 us */
    stats_store_done(&s, 2000000); /* past the last bound: +Inf */
    CHECK_INT(s.v[STAT_STORE_BUCKET], ==, 2);
    CHECK_INT(s.v[STAT_STORE_BUCKET + 1], ==, 1);
    CHECK_INT(s.v[STAT_STORE_BUCKET + STATS_STORE_BUCKETS], ==, 1);
    CHECK_INT(s.v[STAT_STORE_TIME_US], ==, 2000201);
}

int main(void)
{
    RUN(test_sum_across_mappings);
    RUN(test_kinds);
    RUN(test_store_histogram);
    return test_done("stats");
}
