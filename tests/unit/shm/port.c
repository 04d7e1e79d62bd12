/* Unit tests of shm/port.c (messages of any size in pieces) and of the backlog that
 * holds them: both ends of one ring in one process. */
#include "shm/port.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

#define DATA     4096u
#define MAXF     1024u
#define MAX_KIND 10u
#define PIECE    (MAXF - 8u) /* payload of the largest frame */

struct pair {
    struct shm_ring *sh;
    struct ring p, c;
    struct backlog q;
    struct port_rx rx;
};

static void pair_open(struct pair *x)
{
    memset(x, 0, sizeof *x);
    x->sh = aligned_alloc(SHM_SLOT, ring_footprint(DATA));
    if (!x->sh || ring_format(x->sh, DATA, MAXF) != 0)
        abort();
    CHECK_INT(ring_attach(&x->p, x->sh, NULL, MAX_KIND), ==, 0);
    CHECK_INT(ring_attach(&x->c, x->sh, NULL, MAX_KIND), ==, 0);
    x->rx.max = 1u << 20;
}

static void pair_close(struct pair *x)
{
    backlog_clear(&x->q);
    port_rx_free(&x->rx);
    free(x->sh);
}

static unsigned char *pattern(uint32_t len, unsigned seed)
{
    unsigned char *b = malloc(len ? len : 1);
    for (uint32_t i = 0; i < len; i++)
        b[i] = (unsigned char)(i * 31 + seed);
    return b;
}

/* The next message must be len bytes of pattern(seed), of this kind. */
static void expect(struct pair *x, uint32_t len, uint16_t kind, unsigned seed)
{
    struct ring_frame m;
    int rc = port_recv(&x->c, &x->rx, &m);
    CHECK_INT(rc, ==, 1);
    if (rc != 1)
        return;
    unsigned char *want = pattern(len, seed);
    CHECK_INT(m.len, ==, len);
    CHECK_INT(m.kind, ==, kind);
    CHECK_INT(m.flags & (PORT_F_MORE | PORT_F_CONT), ==, 0);
    CHECK(m.len == len && !memcmp(m.payload, want, len));
    free(want);
}

static void test_small_is_one_frame(void)
{
    struct pair x;
    pair_open(&x);
    unsigned char *b = pattern(100, 1);
    CHECK_INT(port_send(&x.p, &x.q, 3, b, 100, NULL), ==, 0);
    ring_publish(&x.p);
    struct ring_frame f;
    CHECK_INT(ring_peek(&x.c, &f), ==, 1);
    CHECK_INT(f.flags, ==, 0);
    expect(&x, 100, 3, 1);
    free(b);
    pair_close(&x);
}

static void test_large_in_pieces(void)
{
    struct pair x;
    pair_open(&x);
    uint32_t len = 2 * PIECE + 300; /* three pieces: 3 * 1024 bytes fit in 4096 */
    unsigned char *b = pattern(len, 2);
    CHECK_INT(port_send(&x.p, &x.q, 4, b, len, NULL), ==, 0);
    CHECK(backlog_empty(&x.q));
    ring_publish(&x.p);
    expect(&x, len, 4, 2);
    ring_release(&x.c);
    /* Exactly one piece's worth is still one frame. */
    CHECK_INT(port_send(&x.p, &x.q, 5, b, PIECE, NULL), ==, 0);
    ring_publish(&x.p);
    struct ring_frame f;
    CHECK_INT(ring_peek(&x.c, &f), ==, 1);
    CHECK_INT(f.flags, ==, 0);
    expect(&x, PIECE, 5, 2);
    free(b);
    pair_close(&x);
}

static void on_moved(void *arg, void *tag)
{
    unsigned *moved = arg;
    CHECK(tag == (void *)0x1234);
    (*moved)++;
}

/* A message larger than the room left: pieces go now, the rest waits in the backlog and
 * follows, the consumer sees the message only when whole; what comes behind it waits. */
static void test_rest_waits_in_backlog(void)
{
    struct pair x;
    unsigned moved = 0;
    pair_open(&x);
    x.q.moved = on_moved;
    x.q.moved_arg = &moved;
    uint32_t len = 6 * PIECE; /* more than the ring holds */
    unsigned char *b = pattern(len, 3), *small = pattern(10, 4);
    CHECK_INT(port_send(&x.p, &x.q, 6, b, len, (void *)0x1234), ==, 1);
    CHECK(!backlog_empty(&x.q));
    CHECK_INT(port_send(&x.p, &x.q, 7, small, 10, (void *)0x1234), ==, 1); /* behind, in order */
    ring_publish(&x.p);
    struct ring_frame m;
    CHECK_INT(port_recv(&x.c, &x.rx, &m), ==, 0); /* pieces so far, nothing whole */
    CHECK(x.rx.open);
    /* The consumer's buffer holds the pieces: the ring can be given back meanwhile. */
    ring_release(&x.c);
    CHECK_INT(moved, ==, 0);
    backlog_flush(&x.q, &x.p);
    ring_publish(&x.p);
    CHECK(backlog_empty(&x.q));
    CHECK_INT(moved, ==, 2);
    expect(&x, len, 6, 3);
    expect(&x, 10, 7, 4);
    free(b);
    free(small);
    pair_close(&x);
}

/* Writes a piece as a broken producer would. */
static void raw_piece(struct ring *r, uint16_t kind, uint16_t flags, uint32_t len)
{
    void *p;
    CHECK_INT(ring_reserve(r, len, kind, flags, &p), ==, 0);
    memset(p, 0x5a, len);
    ring_commit(r);
    ring_publish(r);
}

static void test_pieces_out_of_order(void)
{
    struct pair x;
    struct ring_frame m;
    pair_open(&x);
    raw_piece(&x.p, 1, PORT_F_CONT, 10); /* a continuation with nothing to continue */
    CHECK_INT(port_recv(&x.c, &x.rx, &m), ==, -EBADMSG);
    pair_close(&x);

    pair_open(&x);
    raw_piece(&x.p, 1, PORT_F_MORE, 10);
    raw_piece(&x.p, 1, 0, 10); /* a new message while one is open */
    CHECK_INT(port_recv(&x.c, &x.rx, &m), ==, -EBADMSG);
    pair_close(&x);

    pair_open(&x);
    raw_piece(&x.p, 1, PORT_F_MORE, 10);
    raw_piece(&x.p, 2, PORT_F_CONT, 10); /* another kind */
    CHECK_INT(port_recv(&x.c, &x.rx, &m), ==, -EBADMSG);
    pair_close(&x);
}

static void test_message_too_large(void)
{
    struct pair x;
    struct ring_frame m;
    pair_open(&x);
    x.rx.max = PIECE + 10;
    unsigned char *b = pattern(2 * PIECE, 5);
    CHECK_INT(port_send(&x.p, &x.q, 1, b, 2 * PIECE, NULL), ==, 0);
    ring_publish(&x.p);
    CHECK_INT(port_recv(&x.c, &x.rx, &m), ==, -EBADMSG);
    free(b);
    pair_close(&x);
}

/* A kind the ring does not carry is refused when its turn comes, instead of blocking
 * everything behind it for good. */
static void test_backlog_refuses_what_never_fits(void)
{
    struct pair x;
    unsigned moved = 0;
    pair_open(&x);
    x.q.moved = on_moved;
    x.q.moved_arg = &moved;
    unsigned char *b = pattern(10, 6);
    CHECK_INT(backlog_push_tag(&x.q, MAX_KIND + 1, b, 10, 0, (void *)0x1234), ==, 0);
    CHECK_INT(backlog_push_tag(&x.q, 2, b, 10, 0, (void *)0x1234), ==, 0);
    backlog_flush(&x.q, &x.p);
    ring_publish(&x.p);
    CHECK(backlog_empty(&x.q));
    CHECK_INT(x.q.refused, ==, 1);
    CHECK_INT(moved, ==, 2);
    expect(&x, 10, 2, 6);
    CHECK_INT(port_send(&x.p, &x.q, MAX_KIND + 1, b, 10, NULL), ==, -EINVAL);
    free(b);
    pair_close(&x);
}

int main(void)
{
    RUN(test_small_is_one_frame);
    RUN(test_large_in_pieces);
    RUN(test_rest_waits_in_backlog);
    RUN(test_pieces_out_of_order);
    RUN(test_message_too_large);
    RUN(test_backlog_refuses_what_never_fits);
    return test_done("port");
}
