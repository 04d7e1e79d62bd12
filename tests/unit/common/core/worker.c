/* Unit tests of common/core/worker.c: jobs run on the worker thread and come back, in order,
 * on the submitting thread, which the eventfd wakes. */
#include "common/core/worker.h"
#include "test.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

struct job {
    struct worker_job job;
    int seq;
    pthread_t ran_on;
    unsigned long result;
};

static int next_done;
static int out_of_order;

static void run(struct worker_job *j)
{
    struct job *x = (struct job *)j;
    x->ran_on = pthread_self();
    unsigned long v = (unsigned long)x->seq;
    for (int i = 0; i < 1000; i++)
        v = v * 6364136223846793005ul + 1442695040888963407ul;
    x->result = v;
}

static void done(struct worker_job *j)
{
    struct job *x = (struct job *)j;
    if (x->seq != next_done)
        out_of_order++;
    next_done++;
}

static void test_round_trip(void)
{
    struct worker *w;
    struct worker_client *cl;
    enum { N = 2000 };
    struct job *jobs = calloc(N, sizeof *jobs);

    CHECK_INT(worker_start(&w), ==, 0);
    CHECK_INT(worker_client_new(w, &cl), ==, 0);
    for (int i = 0; i < N; i++) {
        jobs[i].seq = i;
        jobs[i].job.run = run;
        jobs[i].job.done = done;
        worker_submit(cl, &jobs[i].job);
    }
    unsigned total = 0;
    while (total < N) {
        struct pollfd pf = {worker_client_fd(cl), POLLIN, 0};
        if (poll(&pf, 1, 5000) != 1) {
            TEST_FAIL("no wake-up after %u of %d jobs", total, N);
            break;
        }
        total += worker_poll(cl);
    }
    CHECK_INT(total, ==, N);
    CHECK_INT(next_done, ==, N);
    CHECK_INT(out_of_order, ==, 0);
    int elsewhere = 0;
    for (int i = 0; i < N; i++)
        elsewhere += !pthread_equal(jobs[i].ran_on, pthread_self()) && jobs[i].result != 0;
    CHECK_INT(elsewhere, ==, N);
    /* Nothing left: a poll now runs nothing. */
    CHECK_INT(worker_poll(cl), ==, 0);
    worker_client_free(cl);
    worker_stop(w);
    free(jobs);
}

int main(void)
{
    RUN(test_round_trip);
    return test_done("worker");
}
