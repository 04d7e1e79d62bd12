/* Unit tests of common/fe/conn.c: the connection pool (slots in chunks allocated as first
 * used, ids with generations) and the paused list, on a thread that runs no loop, with a
 * front end that adds nothing. Connections get /dev/null as their socket: nothing here
 * sends or receives. */
#include "common/fe/fe.h"
#include "shm/proto.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static void none(struct fe_conn *c)
{
    (void)c;
}

static const struct fe_ops ops = {.conn_size = sizeof(struct fe_conn), .closing = none,
                                  .release = none};

static struct fe_thread t;

static void thread_open(uint32_t max)
{
    memset(&t, 0, sizeof t);
    t.ops = &ops;
    t.fe = PROTO_FE_C2S;
    t.cfg = config_defaults();
    CHECK(t.cfg != NULL);
    CHECK_INT(fe_pool_init(&t, max), ==, 0);
}

static void thread_close(void)
{
    for (uint32_t i = 0; i < t.nslots; i++) {
        struct fe_conn *c = fe_slot(&t, i);
        if (c->state != FE_FREE) {
            fe_close(c);
            fe_maybe_release(c);
        }
    }
    fe_pool_free(&t);
    config_free(t.cfg);
}

static struct fe_conn *open_one(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    struct fe_conn *c = fe_conn_new(&t, fd, false);
    if (!c)
        close(fd);
    return c;
}

static void drop(struct fe_conn *c)
{
    fe_close(c);
    fe_maybe_release(c);
}

static void test_slots_as_used(void)
{
    /* Room for two full chunks and part of a third; nothing allocated yet. */
    const uint32_t max = 2 * FE_CONN_CHUNK + 88;
    thread_open(max);
    CHECK_INT(t.nslots, ==, 0);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(t.chunks[i] == NULL);
    CHECK(fe_slot(&t, 0) == NULL);

    static struct fe_conn *cs[2 * FE_CONN_CHUNK + 88];
    for (uint32_t i = 0; i < max; i++) {
        cs[i] = open_one();
        CHECK(cs[i] != NULL);
        if (!cs[i])
            return;
        CHECK_INT(cs[i]->slot, ==, i); /* in order, from 0 */
        CHECK_INT(t.nslots, ==, i + 1);
        /* A chunk comes with its first slot, not before. */
        CHECK(t.chunks[i / FE_CONN_CHUNK] != NULL);
        if (i / FE_CONN_CHUNK + 1 < 3)
            CHECK(t.chunks[i / FE_CONN_CHUNK + 1] == NULL);
    }
    CHECK_INT(t.live, ==, max);
    CHECK(open_one() == NULL); /* the limit */

    /* Every id finds its connection, whichever chunk it is in; others find none. */
    for (uint32_t i = 0; i < max; i++) {
        CHECK(fe_conn_by_id(&t, fe_conn_id(cs[i])) == cs[i]);
        CHECK(fe_slot(&t, i) == cs[i]);
    }
    CHECK(fe_conn_by_id(&t, proto_conn_id(PROTO_FE_C2S, 0, max, 0)) == NULL);
    CHECK(fe_conn_by_id(&t, proto_conn_id(PROTO_FE_C2S, 0, 0xFFFFFF, 0)) == NULL);
    CHECK(fe_slot(&t, max) == NULL);
    thread_close();
}

static void test_reuse_and_generation(void)
{
    thread_open(1000);
    struct fe_conn *a = NULL, *b = NULL;
    for (uint32_t i = 0; i < FE_CONN_CHUNK + 10; i++) {
        struct fe_conn *c = open_one();
        if (i == 3)
            a = c;
        if (i == FE_CONN_CHUNK + 5)
            b = c;
    }
    CHECK(a && b);
    if (!a || !b)
        return;
    uint64_t ida = fe_conn_id(a), idb = fe_conn_id(b);
    drop(a);
    drop(b);
    CHECK_INT(t.live, ==, FE_CONN_CHUNK + 8);
    CHECK(fe_conn_by_id(&t, ida) == NULL);
    CHECK(fe_conn_by_id(&t, idb) == NULL);
    /* The slot freed last is reused first, under a new generation; no slot is added. */
    uint32_t used = t.nslots;
    struct fe_conn *c = open_one(), *d = open_one(), *e = open_one();
    CHECK(c == b && d == a);
    CHECK_INT(t.nslots, ==, used + 1);
    CHECK(e == fe_slot(&t, used));
    CHECK(fe_conn_by_id(&t, idb) == NULL);
    CHECK(fe_conn_by_id(&t, fe_conn_id(c)) == c);
    CHECK_INT(PROTO_CONN_GEN(fe_conn_id(c)), ==, (PROTO_CONN_GEN(idb) + 1) & 0xFFFFFF);
    thread_close();
}

static unsigned list_len(struct fe_conn *list)
{
    unsigned n = 0;
    for (struct fe_conn *c = list; c && n < 100; c = c->next_paused)
        n++;
    return n;
}

static void test_paused_list(void)
{
    thread_open(100);
    struct fe_conn *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = open_one();
        if (!c[i])
            return;
        c[i]->flags |= FE_F_PAUSED;
        fe_paused_add(&t.paused, c[i]);
    }
    CHECK_INT(list_len(t.paused), ==, 4);
    CHECK(t.paused == c[3]);
    /* Closing one takes it off the list, wherever it is: the rest stays linked. */
    drop(c[1]);
    CHECK_INT(list_len(t.paused), ==, 3);
    CHECK(c[2]->next_paused == c[0]);
    drop(c[3]);
    CHECK(t.paused == c[2]);
    CHECK_INT(list_len(t.paused), ==, 2);
    /* A new connection in a freed slot is on no list, and pausing it keeps the list a
     * list (before, the freed slot still on it pointed back into it). */
    struct fe_conn *n = open_one();
    CHECK(n == c[3]);
    CHECK(n->next_paused == NULL && n->pprev_paused == NULL);
    n->flags |= FE_F_PAUSED;
    fe_paused_add(&t.paused, n);
    CHECK_INT(list_len(t.paused), ==, 3);
    drop(c[0]);
    CHECK_INT(list_len(t.paused), ==, 2);
    CHECK(c[2]->next_paused == NULL);
    thread_close();
    CHECK(t.paused == NULL);
}

int main(void)
{
    RUN(test_slots_as_used);
    RUN(test_reuse_and_generation);
    RUN(test_paused_list);
    return test_done("fe conn");
}
