/*
 * Tests of s2s/authz.c: pairs in each direction and state, the bounds, and what a stream
 * may carry with and without XEP-0288.
 */
#include "s2s/authz.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define S(s) (s), strlen(s)

static const struct authz_limits lim = {.max_pairs = 3, .max_pending = 2};

static void states_test(void)
{
    struct authz a;
    authz_init(&a, &lim, true);
    CHECK_INT(authz_add(&a, AUTHZ_IN, S("capulet.example"), S("montague.example"), true, 5), ==, 0);
    CHECK_INT(authz_add(&a, AUTHZ_IN, S("capulet.example"), S("montague.example"), false, 6), ==,
              -EEXIST);
    const struct authz_pair *p =
        authz_find(&a, AUTHZ_IN, S("capulet.example"), S("montague.example"));
    CHECK(p && p->pending && p->since == 5 && strcmp(p->from, "capulet.example") == 0 &&
          strcmp(p->to, "montague.example") == 0 && p->from_len == 15 && p->to_len == 16);
    CHECK(authz_find(&a, AUTHZ_OUT, S("capulet.example"), S("montague.example")) == NULL);
    CHECK(authz_find(&a, AUTHZ_IN, S("montague.example"), S("capulet.example")) == NULL);
    /* pending carries nothing */
    CHECK(!authz_may_receive(&a, S("capulet.example"), S("montague.example")));
    CHECK_INT(authz_pending(&a), ==, 1);
    CHECK_INT(authz_settle(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")), ==, 0);
    CHECK_INT(authz_settle(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")), ==, -ENOENT);
    CHECK(authz_may_receive(&a, S("capulet.example"), S("montague.example")));
    /* a prefix or an extension of a domain is another domain */
    CHECK(!authz_may_receive(&a, S("capulet.exampl"), S("montague.example")));
    CHECK(!authz_may_receive(&a, S("capulet.example"), S("montague.example.org")));
    CHECK_INT(authz_pending(&a), ==, 0);
    CHECK_INT(authz_valid(&a, AUTHZ_IN), ==, 1);
    CHECK_INT(authz_remove(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")), ==, 0);
    CHECK_INT(authz_remove(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")), ==, -ENOENT);
    CHECK(!authz_may_receive(&a, S("capulet.example"), S("montague.example")));
    CHECK_INT(authz_valid(&a, AUTHZ_IN), ==, 0);
    /* taking a pair hands over its strings and counts it out like a removal */
    CHECK_INT(authz_add(&a, AUTHZ_IN, S("capulet.example"), S("montague.example"), true, 7), ==, 0);
    char *blk = authz_take(&a, AUTHZ_IN, S("capulet.example"), S("montague.example"));
    CHECK(blk && strcmp(blk, "capulet.example") == 0 && strcmp(blk + 16, "montague.example") == 0);
    free(blk);
    CHECK_INT(authz_pending(&a), ==, 0);
    CHECK(authz_find(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")) == NULL);
    CHECK(authz_take(&a, AUTHZ_IN, S("capulet.example"), S("montague.example")) == NULL);
    /* domains: none empty, none longer than a JID part */
    char big[1100];
    memset(big, 'a', sizeof big);
    CHECK_INT(authz_add(&a, AUTHZ_IN, "", 0, S("montague.example"), false, 0), ==, -EINVAL);
    CHECK_INT(authz_add(&a, AUTHZ_IN, big, 1024, S("montague.example"), false, 0), ==, -EINVAL);
    CHECK_INT(authz_add(&a, AUTHZ_IN, big, 1023, S("montague.example"), false, 0), ==, 0);
    authz_free(&a);
}

static void bounds_test(void)
{
    struct authz a;
    authz_init(&a, &lim, false);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("a.example"), S("x.example"), true, 0), ==, 0);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("b.example"), S("x.example"), true, 0), ==, 0);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("c.example"), S("x.example"), true, 0), ==, -ENOSPC);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("c.example"), S("x.example"), false, 0), ==, 0);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("d.example"), S("x.example"), false, 0), ==, -ENOSPC);
    /* removing one makes room, and walks keep the order of insertion */
    CHECK_INT(authz_remove(&a, AUTHZ_OUT, S("a.example"), S("x.example")), ==, 0);
    CHECK_INT(authz_add(&a, AUTHZ_OUT, S("d.example"), S("x.example"), false, 0), ==, 0);
    static const char *const order[] = {"b.example", "c.example", "d.example"};
    for (unsigned i = 0; i < 3; i++)
        CHECK_STR(authz_at(&a, i)->from, order[i]);
    CHECK(authz_at(&a, 3) == NULL);
    authz_free(&a);
}

/* Without bidi a stream carries one direction; with it, every valid pair's inverse too. */
static void bidi_test(void)
{
    struct authz in, out;
    authz_init(&in, &lim, true);
    authz_init(&out, &lim, false);
    CHECK_INT(authz_add(&in, AUTHZ_OUT, S("montague.lit"), S("capulet.lit"), true, 0), ==, -EPERM);
    CHECK_INT(authz_add(&out, AUTHZ_IN, S("montague.lit"), S("capulet.lit"), true, 0), ==, -EPERM);

    /* XEP-0288 §3, first example: capulet.lit authenticated to montague.lit by SASL */
    CHECK_INT(authz_add(&in, AUTHZ_IN, S("capulet.lit"), S("montague.lit"), false, 0), ==, 0);
    CHECK_INT(authz_add(&out, AUTHZ_OUT, S("capulet.lit"), S("montague.lit"), false, 0), ==, 0);
    CHECK(!authz_may_send(&in, S("montague.lit"), S("capulet.lit")));
    CHECK(!authz_may_receive(&out, S("montague.lit"), S("capulet.lit")));
    authz_set_bidi(&in);
    authz_set_bidi(&out);
    /* "S is allowed to send C stanzas from montague.lit to capulet.lit" */
    CHECK(authz_may_send(&in, S("montague.lit"), S("capulet.lit")));
    CHECK(authz_may_receive(&out, S("montague.lit"), S("capulet.lit")));
    /* and only that inverse */
    CHECK(!authz_may_send(&in, S("conference.montague.lit"), S("capulet.lit")));
    CHECK(!authz_may_send(&in, S("capulet.lit"), S("montague.lit")));
    CHECK(!authz_may_receive(&out, S("capulet.lit"), S("montague.lit")));
    /* the second example: the receiving server asks for another of its domains */
    CHECK_INT(authz_add(&in, AUTHZ_OUT, S("conference.montague.lit"), S("capulet.lit"), true, 0),
              ==, 0);
    CHECK(!authz_may_send(&in, S("conference.montague.lit"), S("capulet.lit")));
    authz_settle(&in, AUTHZ_OUT, S("conference.montague.lit"), S("capulet.lit"));
    CHECK(authz_may_send(&in, S("conference.montague.lit"), S("capulet.lit")));
    CHECK(authz_may_receive(&in, S("capulet.lit"), S("conference.montague.lit")));
    authz_free(&in);
    authz_free(&out);
}

int main(void)
{
    RUN(states_test);
    RUN(bounds_test);
    RUN(bidi_test);
    return test_done("s2s/authz");
}
