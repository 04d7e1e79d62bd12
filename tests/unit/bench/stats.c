/* Tests of bench/stats.c: every counter has a distinct JSON-safe name, errors are told
 * apart from the rest, and sums over workers add up (the gauge through wrap-around). */
#include "bench/stats.h"
#include "test.h"

static void names_test(void)
{
    for (unsigned i = 0; i < ST_COUNT; i++) {
        const char *n = stats_name((enum stats_id)i);
        CHECK(n && strcmp(n, "?") != 0);
        for (const char *p = n; p && *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
                TEST_FAIL("counter %u: name '%s' is not [a-z_]", i, n);
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(n, stats_name((enum stats_id)j)))
                TEST_FAIL("counters %u and %u are both '%s'", j, i, n);
    }
    CHECK(stats_is_error(ST_ERR_CONNECT));
    CHECK(stats_is_error(ST_ERR_NO_ECHO));
    CHECK(stats_is_error(ST_ERR_XMPP + XMPPC_FAIL_AUTH));
    CHECK(stats_is_error(ST_MSG_SKIPPED));
    CHECK(!stats_is_error(ST_ERR_XMPP + XMPPC_FAIL_NONE));
    CHECK(!stats_is_error(ST_MSG_RECV));
    CHECK(!stats_is_error(ST_ONLINE));
}

static void sum_test(void)
{
    static struct stats s[3];
    uint64_t v[ST_COUNT];
    stats_add(&s[0], ST_MSG_SENT, 5);
    stats_add(&s[2], ST_MSG_SENT, 7);
    stats_add(&s[0], ST_ONLINE, 2);
    stats_add(&s[1], ST_ONLINE, (uint64_t)-1); /* one went offline on another worker */
    stats_sum(v, s, 3, sizeof s[0]);
    CHECK_INT(v[ST_MSG_SENT], ==, 12);
    CHECK_INT(v[ST_ONLINE], ==, 1);
    CHECK_INT(v[ST_MSG_RECV], ==, 0);
}

int main(void)
{
    RUN(names_test);
    RUN(sum_test);
    return test_done("stats");
}
