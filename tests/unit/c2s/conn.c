/* Unit tests of c2s/conn.c: the connection pool (slots in chunks allocated as first used,
 * ids with generations) and the paused list, on a thread that runs no loop. Connections
 * get /dev/null as their socket: nothing here sends or receives. */
#include "c2s/c2s.h"
#include "shm/proto.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int c2s_ctl_fd = -1; /* main.c's, which is not in the library */

static struct c2s_thread t;

static void thread_open(uint32_t max)
{
    memset(&t, 0, sizeof t);
    t.cfg = config_defaults();
    CHECK(t.cfg != NULL);
    CHECK_INT(conn_pool_init(&t, max), ==, 0);
}

static void thread_close(void)
{
    for (uint32_t i = 0; i < t.nslots; i++) {
        struct conn *c = conn_slot(&t, i);
        if (c->state != CONN_FREE) {
            conn_close(c);
            conn_release(c);
        }
    }
    for (uint32_t i = 0; i < (t.nconns + CONN_CHUNK - 1) / CONN_CHUNK; i++)
        free(t.chunks[i]);
    free(t.chunks);
    config_free(t.cfg);
}

static struct conn *open_one(void)
{
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    struct conn *c = conn_new(&t, fd, false);
    if (!c)
        close(fd);
    return c;
}

static void drop(struct conn *c)
{
    conn_close(c);
    conn_release(c);
}

static void test_slots_as_used(void)
{
    /* Room for two full chunks and part of a third; nothing allocated yet. */
    const uint32_t max = 2 * CONN_CHUNK + 88;
    thread_open(max);
    CHECK_INT(t.nslots, ==, 0);
    for (uint32_t i = 0; i < 3; i++)
        CHECK(t.chunks[i] == NULL);
    CHECK(conn_slot(&t, 0) == NULL);

    static struct conn *cs[2 * CONN_CHUNK + 88];
    for (uint32_t i = 0; i < max; i++) {
        cs[i] = open_one();
        CHECK(cs[i] != NULL);
        if (!cs[i])
            return;
        CHECK_INT(cs[i]->slot, ==, i); /* in order, from 0 */
        CHECK_INT(t.nslots, ==, i + 1);
        /* A chunk comes with its first slot, not before. */
        CHECK(t.chunks[i / CONN_CHUNK] != NULL);
        if (i / CONN_CHUNK + 1 < 3)
            CHECK(t.chunks[i / CONN_CHUNK + 1] == NULL);
    }
    CHECK_INT(t.live, ==, max);
    CHECK(open_one() == NULL); /* the limit */

    /* Every id finds its connection, whichever chunk it is in; others find none. */
    for (uint32_t i = 0; i < max; i++) {
        CHECK(conn_by_id(&t, conn_id(cs[i])) == cs[i]);
        CHECK(conn_slot(&t, i) == cs[i]);
    }
    CHECK(conn_by_id(&t, proto_conn_id(PROTO_FE_C2S, 0, max, 0)) == NULL);
    CHECK(conn_by_id(&t, proto_conn_id(PROTO_FE_C2S, 0, 0xFFFFFF, 0)) == NULL);
    CHECK(conn_slot(&t, max) == NULL);
    thread_close();
}

static void test_reuse_and_generation(void)
{
    thread_open(1000);
    struct conn *a = NULL, *b = NULL;
    for (uint32_t i = 0; i < CONN_CHUNK + 10; i++) {
        struct conn *c = open_one();
        if (i == 3)
            a = c;
        if (i == CONN_CHUNK + 5)
            b = c;
    }
    CHECK(a && b);
    if (!a || !b)
        return;
    uint64_t ida = conn_id(a), idb = conn_id(b);
    drop(a);
    drop(b);
    CHECK_INT(t.live, ==, CONN_CHUNK + 8);
    CHECK(conn_by_id(&t, ida) == NULL);
    CHECK(conn_by_id(&t, idb) == NULL);
    /* The slot freed last is reused first, under a new generation; no slot is added. */
    uint32_t used = t.nslots;
    struct conn *c = open_one(), *d = open_one(), *e = open_one();
    CHECK(c == b && d == a);
    CHECK_INT(t.nslots, ==, used + 1);
    CHECK(e == conn_slot(&t, used));
    CHECK(conn_by_id(&t, idb) == NULL);
    CHECK(conn_by_id(&t, conn_id(c)) == c);
    CHECK_INT(PROTO_CONN_GEN(conn_id(c)), ==, (PROTO_CONN_GEN(idb) + 1) & 0xFFFFFF);
    thread_close();
}

static unsigned list_len(struct conn *list)
{
    unsigned n = 0;
    for (struct conn *c = list; c && n < 100; c = c->next_paused)
        n++;
    return n;
}

static void test_paused_list(void)
{
    thread_open(100);
    struct conn *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = open_one();
        if (!c[i])
            return;
        c[i]->flags |= CONN_F_PAUSED;
        conn_paused_add(&t.paused, c[i]);
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
    struct conn *n = open_one();
    CHECK(n == c[3]);
    CHECK(n->next_paused == NULL && n->pprev_paused == NULL);
    n->flags |= CONN_F_PAUSED;
    conn_paused_add(&t.paused, n);
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
    return test_done("conn");
}
