/*
 * Tests of bench/hist.c: bucket boundaries, percentiles of known data (exact below 128,
 * within one bucket's width above), merging, and the empty histogram.
 */
#include "bench/hist.h"
#include "test.h"

#include <stdlib.h>

static struct hist h, h2;

/* True when got is the true value or above it by less than one bucket (1/128). */
static bool near(uint64_t got, uint64_t want)
{
    return got >= want && (double)(got - want) <= (double)want / HIST_SUB + 1;
}

static void buckets_test(void)
{
    /* Exact below 2^7, then 2^shift-wide buckets that tile the range without gaps. */
    CHECK_INT(hist_bucket(0), ==, 0);
    CHECK_INT(hist_bucket(127), ==, 127);
    CHECK_INT(hist_bucket(128), ==, 128);
    CHECK_INT(hist_bucket(255), ==, 255);
    CHECK_INT(hist_bucket(256), ==, 256);
    CHECK_INT(hist_bucket(257), ==, 256);
    CHECK_INT(hist_bucket(UINT64_MAX), ==, HIST_BUCKETS - 1);
    uint64_t next = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        uint64_t lo, hi;
        hist_bucket_range(i, &lo, &hi);
        if (lo != next || hi < lo || hist_bucket(lo) != i || hist_bucket(hi) != i) {
            TEST_FAIL("bucket %u: [%ju, %ju], expected to start at %ju", i, (uintmax_t)lo,
                      (uintmax_t)hi, (uintmax_t)next);
            return;
        }
        /* A bucket is at most 1/128 of its lower bound wide: the precision promised. */
        if (lo >= HIST_SUB && (hi - lo + 1) * HIST_SUB > lo) {
            TEST_FAIL("bucket %u too wide", i);
            return;
        }
        next = hi + 1;
    }
    CHECK(next == 0); /* the last bucket ends at UINT64_MAX */
}

static void exact_small_test(void)
{
    hist_init(&h);
    for (uint64_t v = 1; v <= 100; v++)
        hist_record(&h, v);
    CHECK_INT(h.count, ==, 100);
    CHECK_INT(hist_percentile(&h, 50), ==, 50);
    CHECK_INT(hist_percentile(&h, 90), ==, 90);
    CHECK_INT(hist_percentile(&h, 99), ==, 99);
    CHECK_INT(hist_percentile(&h, 99.9), ==, 100);
    CHECK_INT(hist_percentile(&h, 100), ==, 100);
    CHECK_INT(hist_percentile(&h, 0.001), ==, 1);
    CHECK_INT(h.min, ==, 1);
    CHECK_INT(h.max, ==, 100);
    CHECK(hist_mean(&h) == 50.5);
}

static void uniform_test(void)
{
    /* 1..1,000,000 ns: the p-th percentile is p * 10,000. */
    hist_init(&h);
    for (uint64_t v = 1; v <= 1000000; v++)
        hist_record(&h, v);
    const double ps[] = {50, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = (uint64_t)(ps[i] * 10000 + 0.5), got = hist_percentile(&h, ps[i]);
        if (!near(got, want))
            TEST_FAIL("p%g: %ju, expected %ju", ps[i], (uintmax_t)got, (uintmax_t)want);
    }
    CHECK_INT(hist_percentile(&h, 100), ==, 1000000); /* clamped to the exact max */
}

static void skewed_test(void)
{
    /* 990 fast values and 10 slow ones: p99 is still fast, p99.9 is slow. The exact
     * maximum survives although its bucket is 2^23 ns wide. */
    hist_init(&h);
    for (int i = 0; i < 990; i++)
        hist_record(&h, 20000);
    for (int i = 0; i < 9; i++)
        hist_record(&h, 5000000);
    hist_record(&h, 1234567891);
    CHECK(near(hist_percentile(&h, 50), 20000));
    CHECK(near(hist_percentile(&h, 99), 20000));
    CHECK(near(hist_percentile(&h, 99.5), 5000000));
    CHECK(near(hist_percentile(&h, 99.9), 5000000));
    CHECK_INT(hist_percentile(&h, 100), ==, 1234567891);
    CHECK_INT(h.max, ==, 1234567891);
}

static void merge_test(void)
{
    hist_init(&h);
    hist_init(&h2);
    for (uint64_t v = 1; v <= 500; v++)
        hist_record(&h, v * 1000);
    for (uint64_t v = 501; v <= 1000; v++)
        hist_record(&h2, v * 1000);
    hist_merge(&h, &h2);
    CHECK_INT(h.count, ==, 1000);
    CHECK_INT(h.min, ==, 1000);
    CHECK_INT(h.max, ==, 1000000);
    CHECK(near(hist_percentile(&h, 50), 500000));
    CHECK(near(hist_percentile(&h, 99), 990000));
    CHECK(hist_mean(&h) == 500500.0);
    /* Merging an empty histogram changes nothing, min included. */
    hist_init(&h2);
    hist_merge(&h, &h2);
    CHECK_INT(h.count, ==, 1000);
    CHECK_INT(h.min, ==, 1000);
}

static void empty_test(void)
{
    hist_init(&h);
    CHECK_INT(hist_percentile(&h, 50), ==, 0);
    CHECK_INT(hist_percentile(&h, 100), ==, 0);
    CHECK(hist_mean(&h) == 0.0);
    hist_record(&h, 0);
    CHECK_INT(hist_percentile(&h, 99), ==, 0);
    CHECK_INT(h.count, ==, 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void random_test(void)
{
    /* Fixed seed: values spread over nine decades, checked against a sorted copy. */
    enum { N = 20000 };
    static uint64_t v[N];
    uint64_t x = 0x9E3779B97F4A7C15u;
    hist_init(&h);
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v[i] = (x % 1000) << (x >> 60) % 30;
        hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof v[0], cmp_u64);
    const double ps[] = {10, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        uint64_t want = v[(size_t)(ps[i] / 100 * N + 0.999999) - 1];
        uint64_t got = hist_percentile(&h, ps[i]);
        if (!near(got, want))
            TEST_FAIL("p%g: %ju, expected %ju", ps[i], (uintmax_t)got, (uintmax_t)want);
    }
}

int main(void)
{
    RUN(buckets_test);
    RUN(exact_small_test);
    RUN(uniform_test);
    RUN(skewed_test);
    RUN(merge_test);
    RUN(empty_test);
    RUN(random_test);
    return test_done("hist");
}
