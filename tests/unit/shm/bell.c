/* Unit tests of shm/bell.c: the eventfd side of a bell, in one process and across a fork. */
#include "shm/bell.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void test_attach(void)
{
    struct shm_bell sh;
    struct bell b;
    memset(&sh, 0, sizeof sh);
    CHECK_INT(bell_attach(&b, &sh, 3), ==, -EPROTO); /* never formatted */
    bell_format(&sh);
    CHECK_INT(bell_attach(&b, &sh, 3), ==, 0);
    CHECK_INT(bell_fd(&b), ==, 3);
}

static void test_ring_and_wait(void)
{
    struct shm_bell sh;
    struct bell b;
    int fd = bell_eventfd();
    CHECK_INT(fd, >=, 0);
    bell_format(&sh);
    bell_attach(&b, &sh, fd);

    CHECK_INT(bell_wait(&b, 0), ==, 0); /* nothing rung: times out */
    CHECK_INT(bell_ring(&b), ==, 0);
    CHECK_INT(bell_ring(&b), ==, 0);
    CHECK_INT(bell_wait(&b, 0), ==, 1); /* two rings, one wake-up */
    CHECK_INT(bell_wait(&b, 0), ==, 0);
    CHECK_INT(bell_drain(&b), ==, 0);
    CHECK_INT(bell_ring(&b), ==, 0);
    bell_prepare_sleep(&b);
    CHECK_INT(bell_drain(&b), ==, 1);
    CHECK_INT(atomic_load(&sh.sleeping), ==, 0); /* drain ends the sleep */

    /* A timeout really waits, and ends the sleep too. */
    struct timespec t0, t1;
    bell_prepare_sleep(&b);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_INT(bell_wait(&b, 20), ==, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK_INT(ms, >=, 19);
    CHECK_INT(atomic_load(&sh.sleeping), ==, 0);
    close(fd);
}

static void test_claim(void)
{
    struct shm_bell sh;
    struct bell b;
    bell_format(&sh);
    bell_attach(&b, &sh, -1);
    CHECK(!bell_claim(&b)); /* awake */
    bell_prepare_sleep(&b);
    CHECK_INT(atomic_load(&sh.sleeping), ==, 1);
    CHECK(bell_claim(&b));  /* the first waker rings */
    CHECK(!bell_claim(&b)); /* the others need not */
    bell_prepare_sleep(&b);
    bell_cancel_sleep(&b);
    CHECK(!bell_claim(&b));
}

/* The child sleeps on the bell; the parent sees the flag, claims it and rings. The child's
 * exit status says whether it was woken by the ring (not by its 5 s timeout). */
static void test_across_fork(void)
{
    struct shm_bell *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    if (sh == MAP_FAILED)
        return;
    int fd = bell_eventfd();
    bell_format(sh);
    pid_t pid = fork();
    if (pid == 0) {
        struct bell b;
        bell_attach(&b, sh, fd);
        bell_prepare_sleep(&b);
        _exit(bell_wait(&b, 5000) == 1 ? 0 : 1);
    }
    CHECK_INT(pid, >, 0);
    struct bell b;
    bell_attach(&b, sh, fd);
    struct timespec nap = {0, 100000};
    for (int i = 0; i < 50000 && !bell_claim(&b); i++)
        nanosleep(&nap, NULL);
    CHECK_INT(bell_ring(&b), ==, 0);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    munmap(sh, sizeof *sh);
}

int main(void)
{
    RUN(test_attach);
    RUN(test_ring_and_wait);
    RUN(test_claim);
    RUN(test_across_fork);
    return test_done("bell");
}
