/*
 * home.c: the cluster's consistent-hash ring (router/home.h). Evenness, weight by
 * shards, minimal movement when a node joins or leaves, and the same answer on every
 * node for the same members.
 */
#include "router/home.h"
#include "test.h"

#include <stdlib.h>
#include <xxhash.h>

#define KEYS 60000

static const char *const names[] = {"node1", "node2", "node3", "node4"};

static uint64_t key(unsigned i)
{
    return XXH3_64bits(&i, sizeof i); /* as jid_hash() gives them */
}

static void counts(const struct home_view *v, unsigned *c)
{
    for (unsigned i = 0; i < 4; i++)
        c[i] = 0;
    for (unsigned i = 0; i < KEYS; i++)
        c[home_node(v, key(i))]++;
}

static void test_even(void)
{
    uint16_t shards[4] = {2, 2, 2, 0};
    struct home_view *v = home_view_new(names, shards, 4, 0, 1);
    CHECK(v != NULL);
    unsigned c[4];
    counts(v, c);
    for (unsigned i = 0; i < 3; i++) /* a third each, within 15% */
        CHECK(c[i] > KEYS / 3 * 85 / 100 && c[i] < KEYS / 3 * 115 / 100);
    CHECK_INT(c[3], ==, 0); /* not in the ring: no key */
    CHECK(home_up(v, 2) && !home_up(v, 3));
    home_view_free(v);
}

static void test_weighted(void)
{
    uint16_t shards[4] = {4, 2, 0, 0};
    struct home_view *v = home_view_new(names, shards, 4, 1, 1);
    unsigned c[4];
    counts(v, c);
    CHECK(c[0] > c[1] * 16 / 10 && c[0] < c[1] * 24 / 10); /* twice, within 20% */
    home_view_free(v);
}

static void test_minimal_movement(void)
{
    uint16_t three[4] = {2, 2, 2, 0}, four[4] = {2, 2, 2, 2};
    struct home_view *a = home_view_new(names, three, 4, 0, 1);
    struct home_view *b = home_view_new(names, four, 4, 0, 2);
    unsigned moved = 0, wrong = 0;
    for (unsigned i = 0; i < KEYS; i++) {
        unsigned x = home_node(a, key(i)), y = home_node(b, key(i));
        if (x != y) {
            moved++;
            wrong += y != 3; /* a key that moves goes to the new node, nowhere else */
        }
    }
    CHECK_INT(wrong, ==, 0);
    CHECK(moved > KEYS / 4 * 80 / 100 && moved < KEYS / 4 * 120 / 100); /* its share */
    /* node2 leaves: only its keys move, spread over the rest. */
    uint16_t without[4] = {2, 0, 2, 2};
    struct home_view *c = home_view_new(names, without, 4, 0, 3);
    unsigned others = 0;
    for (unsigned i = 0; i < KEYS; i++) {
        unsigned x = home_node(b, key(i)), y = home_node(c, key(i));
        others += x != 1 && x != y;
        CHECK(y != 1);
    }
    CHECK_INT(others, ==, 0);
    home_view_free(a);
    home_view_free(b);
    home_view_free(c);
}

static void test_same_everywhere(void)
{
    /* Three nodes build their views (self differs, and the order of points as built):
     * every key has one home. */
    uint16_t shards[4] = {2, 3, 2, 0};
    struct home_view *v[3];
    for (unsigned n = 0; n < 3; n++)
        v[n] = home_view_new(names, shards, 3, n, 1);
    for (unsigned i = 0; i < KEYS; i++) {
        unsigned h = home_node(v[0], key(i));
        CHECK_INT(home_node(v[1], key(i)), ==, h);
        CHECK_INT(home_node(v[2], key(i)), ==, h);
    }
    /* Alone, a node is home to everything. */
    uint16_t alone[4] = {2, 0, 0, 0};
    struct home_view *one = home_view_new(names, alone, 4, 0, 1);
    for (unsigned i = 0; i < 1000; i++)
        CHECK_INT(home_node(one, key(i)), ==, 0);
    home_view_free(one);
    /* Older views are freed with the newest. */
    v[1]->older = v[0];
    v[2]->older = v[1];
    home_view_free(v[2]);
}

int main(void)
{
    RUN(test_even);
    RUN(test_weighted);
    RUN(test_minimal_movement);
    RUN(test_same_everywhere);
    return test_done("home");
}
