/* Tests of bench/sm.c: XEP-0198's element names, the <a/> the client answers with, the
 * checks on the server's h (modulo 2^32, §4) and when an <r/> is due. */
#include "bench/sm.h"
#include "test.h"

#include <errno.h>

static void elem_test(void)
{
    CHECK_INT(sm_elem_of("enabled", 7), ==, SM_EL_ENABLED);
    CHECK_INT(sm_elem_of("failed", 6), ==, SM_EL_FAILED);
    CHECK_INT(sm_elem_of("r", 1), ==, SM_EL_R);
    CHECK_INT(sm_elem_of("a", 1), ==, SM_EL_A);
    CHECK_INT(sm_elem_of("resumed", 7), ==, SM_EL_OTHER);
    CHECK_INT(sm_elem_of("ab", 1), ==, SM_EL_A); /* the length decides, not a NUL */
    CHECK_INT(sm_elem_of("ab", 2), ==, SM_EL_OTHER);
}

static void ack_test(void)
{
    struct sm s = {.on = true, .in = 4294967295u};
    char a[SM_ACK_MAX];
    int n = sm_ack(&s, a, sizeof a);
    CHECK_SPAN(a, (size_t)n, "<a xmlns='urn:xmpp:sm:3' h='4294967295'/>");
    CHECK_INT(sm_ack(&s, a, 10), ==, -ENOSPC);
}

static void on_ack_test(void)
{
    struct sm s = {.on = true};
    CHECK(!sm_sent(&s, 3, 0));
    CHECK_INT(sm_on_ack(&s, "0", 1), ==, 0);
    CHECK_INT(sm_on_ack(&s, "2", 1), ==, 0);
    CHECK_INT(s.acked, ==, 2);
    CHECK_INT(sm_on_ack(&s, "3", 1), ==, 0);
    CHECK_INT(sm_on_ack(&s, "4", 1), ==, -EPROTO); /* more than was sent */
    CHECK_INT(sm_on_ack(&s, "2", 1), ==, -EPROTO); /* went back */
    CHECK_INT(sm_on_ack(&s, "", 0), ==, -EPROTO);
    CHECK_INT(sm_on_ack(&s, "3x", 2), ==, -EPROTO);
    CHECK_INT(sm_on_ack(&s, "4294967296", 10), ==, -EPROTO);
    CHECK_INT(s.acked, ==, 3);
    /* Across the wrap: 2^32 - 2 acknowledged, 4 more sent, h = 1 is two past the wrap. */
    s = (struct sm){.on = true, .out = 4294967294u, .acked = 4294967294u};
    sm_sent(&s, 4, 0);
    CHECK_INT(s.out, ==, 2);
    CHECK_INT(sm_on_ack(&s, "1", 1), ==, 0);
    CHECK_INT(sm_on_ack(&s, "4294967295", 10), ==, -EPROTO);
    CHECK_INT(sm_on_ack(&s, "2", 1), ==, 0);
}

static void sent_test(void)
{
    struct sm s = {0};
    CHECK(!sm_sent(&s, 5, 1)); /* not enabled: nothing counts */
    CHECK_INT(s.out, ==, 0);
    s.on = true;
    CHECK(!sm_sent(&s, 1, 3));
    CHECK(!sm_sent(&s, 1, 3));
    CHECK(sm_sent(&s, 1, 3));
    sm_requested(&s);
    CHECK(!sm_sent(&s, 2, 3));
    CHECK(sm_sent(&s, 5, 3));
    CHECK_INT(s.out, ==, 10);
    CHECK(!sm_sent(&s, 100, 0)); /* every 0: never */
}

int main(void)
{
    RUN(elem_test);
    RUN(ack_test);
    RUN(on_ack_test);
    RUN(sent_test);
    return test_done("sm");
}
