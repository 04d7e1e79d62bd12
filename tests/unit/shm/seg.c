/* Unit tests of shm/seg.c: planning, creating, mapping an fd as a child would, and a first
 * frame across a fork through a segment's ring. */
#include "shm/seg.h"
#include "shm/ring.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_plan(void)
{
    struct seg_layout l, m;
    CHECK_INT(seg_plan(&l, 6, 4, 0, 65536, 4096), ==, 0);
    CHECK_INT(l.bells_off, ==, 4096);
    CHECK_INT(l.rings_off, ==, 8192);
    CHECK_INT(l.ring_stride, ==, 65536 + 512);
    CHECK_INT(l.size, ==, 405504); /* 8192 + 6 x 66048, rounded up to a page */
    CHECK_INT(l.size % 4096, ==, 0);
    CHECK_INT(l.ring_stride % SHM_SLOT, ==, 0);
    /* The same inputs, the same offsets: that is the whole point. */
    CHECK_INT(seg_plan(&m, 6, 4, 0, 65536, 4096), ==, 0);
    CHECK(memcmp(&l, &m, sizeof l) == 0);
    /* Stats slots sit between the bells and the rings. */
    CHECK_INT(seg_plan(&l, 6, 4, 3, 65536, 4096), ==, 0);
    CHECK_INT(l.stats_off, ==, 4096 + 4 * 128);
    CHECK_INT(l.rings_off, ==, 8192);
    CHECK_INT(seg_plan(&l, 6, 4, 8, 65536, 4096), ==, 0);
    CHECK_INT(l.rings_off, ==, 12288); /* 512 + 8 x 512 bytes spill into a second page */
    /* 33 bells spill into a second page; rings still start page-aligned. */
    CHECK_INT(seg_plan(&l, 1, 33, 0, 4096, 64), ==, 0);
    CHECK_INT(l.rings_off, ==, 4096 + 8192);
    CHECK_INT(seg_plan(&l, 1, 1, 0, 4095, 64), ==, -EINVAL);
    CHECK_INT(seg_plan(&l, 1, 1, 0, 4096, 2049), ==, -EINVAL);
    CHECK_INT(seg_plan(&l, 0, 0, 0, 4096, 64), ==, 0); /* empty is allowed */
}

static void test_create_and_map(void)
{
    struct seg_layout l;
    struct seg s, t;
    seg_plan(&l, 3, 2, 2, 8192, 1024);
    CHECK_INT(seg_create(&s, "starling-test", &l), ==, 0);
    CHECK_INT(s.fd, >=, 0);

    /* Everything formatted. */
    struct ring r;
    struct bell b;
    for (uint32_t i = 0; i < 3; i++)
        CHECK_INT(ring_attach(&r, seg_ring(&s, i), NULL, 1), ==, 0);
    for (uint32_t i = 0; i < 2; i++)
        CHECK_INT(bell_attach(&b, seg_bell(&s, i), -1), ==, 0);

    /* A second mapping of the fd, as a child makes it: same bytes. */
    CHECK_INT(seg_map(&t, s.fd, &l), ==, 0);
    CHECK(t.base != s.base);
    CHECK(memcmp(&t.l, &l, sizeof l) == 0);
    struct ring p, c;
    struct ring_frame f;
    void *pay;
    CHECK_INT(ring_attach(&p, seg_ring(&s, 2), NULL, 1), ==, 0);
    CHECK_INT(ring_attach(&c, seg_ring(&t, 2), NULL, 1), ==, 0);
    CHECK_INT(ring_reserve(&p, 3, 1, 0, &pay), ==, 0);
    memcpy(pay, "abc", 3);
    ring_commit(&p);
    ring_publish(&p);
    CHECK_INT(ring_peek(&c, &f), ==, 1);
    CHECK_SPAN(f.payload, f.len, "abc");
    seg_close(&t);
    CHECK_INT(fcntl(s.fd, F_GETFD), >=, 0); /* a mapping does not own the fd */

    /* Adopting the header's layout, for tools. */
    CHECK_INT(seg_map(&t, s.fd, NULL), ==, 0);
    CHECK_INT(t.l.n_rings, ==, 3);
    CHECK_INT(t.l.size, ==, l.size);
    seg_close(&t);

    /* A child with another plan refuses. */
    struct seg_layout other;
    seg_plan(&other, 3, 2, 2, 16384, 1024);
    CHECK_INT(seg_map(&t, s.fd, &other), ==, -EBADMSG);
    seg_plan(&other, 3, 3, 2, 8192, 1024);
    CHECK_INT(seg_map(&t, s.fd, &other), ==, -EBADMSG);
    seg_plan(&other, 3, 2, 3, 8192, 1024);
    CHECK_INT(seg_map(&t, s.fd, &other), ==, -EBADMSG);

    /* Sealed: nobody can shrink it under the others. */
    CHECK_INT(ftruncate(s.fd, 4096), ==, -1);
    CHECK_INT(errno, ==, EPERM);

    /* A header that lies about its offsets. */
    ((struct shm_seg *)s.base)->rings_off += 4096;
    CHECK_INT(seg_map(&t, s.fd, NULL), ==, -EBADMSG);
    ((struct shm_seg *)s.base)->rings_off -= 4096;
    ((struct shm_seg *)s.base)->version++;
    CHECK_INT(seg_map(&t, s.fd, NULL), ==, -EPROTO);
    ((struct shm_seg *)s.base)->version--;
    CHECK_INT(seg_map(&t, s.fd, NULL), ==, 0);
    seg_close(&t);

    int fd = s.fd;
    seg_close(&s);
    CHECK_INT(fcntl(fd, F_GETFD), ==, -1); /* the creator's close closes the fd */
}

static void test_map_rejects_other_files(void)
{
    struct seg t;
    int fd = memfd_create("not-a-segment", 0);
    CHECK_INT(seg_map(&t, fd, NULL), ==, -EBADMSG); /* empty */
    CHECK_INT(ftruncate(fd, 65536), ==, 0);
    CHECK_INT(seg_map(&t, fd, NULL), ==, -EPROTO); /* zeroes */
    close(fd);
    CHECK_INT(seg_map(&t, fd, NULL), ==, -EBADF);
}

/* The supervisor's pattern: create, fork, the child maps the inherited fd and produces. */
static void test_fork_inherits(void)
{
    struct seg_layout l;
    struct seg s;
    seg_plan(&l, 1, 1, 0, 4096, 256);
    CHECK_INT(seg_create(&s, "starling-test-fork", &l), ==, 0);
    int efd = bell_eventfd();
    pid_t pid = fork();
    if (pid == 0) {
        struct seg cs;
        struct bell cb;
        struct ring p;
        void *pay;
        int ok = seg_map(&cs, s.fd, &l) == 0 && bell_attach(&cb, seg_bell(&cs, 0), efd) == 0 &&
                 ring_attach(&p, seg_ring(&cs, 0), &cb, 7) == 0 &&
                 ring_reserve(&p, 5, 7, 0, &pay) == 0;
        if (ok) {
            memcpy(pay, "child", 5);
            ring_commit(&p);
            if (ring_publish(&p))
                bell_ring(&cb);
        }
        _exit(ok ? 0 : 1);
    }
    struct bell b;
    struct ring c;
    struct ring_frame f;
    bell_attach(&b, seg_bell(&s, 0), efd);
    CHECK_INT(ring_attach(&c, seg_ring(&s, 0), NULL, 7), ==, 0);
    int rc = 0;
    for (int i = 0; i < 100 && (rc = ring_peek(&c, &f)) == 0; i++) {
        bell_prepare_sleep(&b);
        if (!ring_empty(&c)) {
            bell_cancel_sleep(&b);
            continue;
        }
        bell_wait(&b, 100);
    }
    CHECK_INT(rc, ==, 1);
    if (rc == 1)
        CHECK_SPAN(f.payload, f.len, "child");
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(efd);
    seg_close(&s);
}

int main(void)
{
    RUN(test_plan);
    RUN(test_create_and_map);
    RUN(test_map_rejects_other_files);
    RUN(test_fork_inherits);
    return test_done("seg");
}
