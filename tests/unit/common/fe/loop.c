/* Unit tests of common/fe/loop.c's watching of a front end's own fds (fe_poll_add(),
 * fe_poll_remove()) and its timers (fe_timer_at(), fe_timer_cancel()), through the real
 * loop (fe_run()) of a thread with no listener, no shard and no connection. The ring
 * exists only inside fe_run(): the test starts from the first thing the loop calls, a
 * control request set before it runs (FE_CTL_ROUTER_UP, harmless here), and stops when
 * a callback sets t.stopping. */
#include "common/fe/fe.h"
#include "shm/proto.h"
#include "test.h"

#include <poll.h>
#include <unistd.h>

static void no_wake(struct fe_thread *t)
{
    (void)t;
}

static void start(struct fe_thread *t, unsigned req);

static const struct fe_ops ops = {
    .conn_size = sizeof(struct fe_conn), .wake = no_wake, .control = start};

static struct fe_thread t;
static struct shm_bell bell_sh;

static void thread_open(void)
{
    memset(&t, 0, sizeof t);
    t.ops = &ops;
    t.fe = PROTO_FE_C2S;
    t.cfg = config_defaults();
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t.lfd[i] = -1;
    bell_format(&bell_sh);
    CHECK(t.cfg != NULL);
    CHECK_INT(bell_attach(&t.bell, &bell_sh, bell_eventfd()), ==, 0);
    CHECK_INT(fe_port_init(&t, 0), ==, 0);
    CHECK_INT(fe_pool_init(&t, 1), ==, 0);
}

static void thread_close(void)
{
    close(t.bell.fd);
    fe_pool_free(&t);
    config_free(t.cfg);
}

/* What the callbacks saw, in order. */
static char seen[64];
static int pipes[2][2];
static int poll_ids[2];

static void note(char c)
{
    size_t n = strlen(seen);
    if (n + 1 < sizeof seen)
        seen[n] = c;
}

static void on_ready(struct fe_thread *th, uint64_t tag, int res)
{
    CHECK_INT(res & POLLIN, ==, POLLIN);
    char buf[8];
    CHECK_INT(read(pipes[tag][0], buf, sizeof buf), ==, 1);
    note(tag == 0 ? 'p' : 'q');
    if (tag == 0 && strchr(seen, 'p') == strrchr(seen, 'p')) /* the first time: again */
        CHECK_INT(fe_poll_add(th, pipes[0][0], POLLIN, 0, on_ready), >=, 0);
}

static void on_timer(struct fe_thread *th, struct fe_timer *tm);
static struct fe_timer tms[5];

static void on_timer(struct fe_thread *th, struct fe_timer *tm)
{
    int i = (int)(tm - tms);
    note((char)('0' + i));
    if (i == 1 || i == 3) /* wake the polls: pipe 0 twice, and pipe 1 (removed) */
        CHECK_INT(write(pipes[0][1], "x", 1), ==, 1);
    if (i == 1)
        CHECK_INT(write(pipes[1][1], "x", 1), ==, 1);
    if (i == 4)
        th->stopping = true;
}

static uint64_t t0;

static void start(struct fe_thread *th, unsigned req)
{
    CHECK_INT(req, ==, FE_CTL_ROUTER_UP);
    struct fe_thread *tp = th; /* the loop's thread, t */
    for (int i = 0; i < 2; i++)
        CHECK_INT(pipe(pipes[i]), ==, 0);
    poll_ids[0] = fe_poll_add(tp, pipes[0][0], POLLIN, 0, on_ready);
    poll_ids[1] = fe_poll_add(tp, pipes[1][0], POLLIN, 1, on_ready);
    CHECK_INT(poll_ids[0], >=, 0);
    CHECK_INT(poll_ids[1], >, poll_ids[0]);
    fe_poll_remove(tp, poll_ids[1]);
    fe_poll_remove(tp, poll_ids[1]); /* twice is harmless */

    uint64_t now = t0 = fe_now_us();
    /* armed out of order; 2 is cancelled; 0 moves from first to after 3 */
    fe_timer_at(tp, &tms[0], now + 10000, on_timer);
    fe_timer_at(tp, &tms[3], now + 60000, on_timer);
    fe_timer_at(tp, &tms[1], now + 20000, on_timer);
    fe_timer_at(tp, &tms[2], now + 30000, on_timer);
    fe_timer_at(tp, &tms[4], now + 150000, on_timer);
    fe_timer_cancel(&tms[2]);
    fe_timer_cancel(&tms[2]);
    fe_timer_at(tp, &tms[0], now + 100000, on_timer);
}

static void test_polls_and_timers(void)
{
    thread_open();
    atomic_store(&t.ctl, FE_CTL_ROUTER_UP);
    CHECK_INT(fe_run(&t), ==, 0);
    /* 1 fires, wakes pipe 0 (p, which re-adds itself) and pipe 1 (removed: nothing);
     * 3 wakes pipe 0 again (p); then 0 and 4 */
    CHECK_STR(seen, "1p3p04");
    CHECK(fe_now_us() - t0 >= 150000);
    for (int i = 0; i < 2; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    thread_close();
}

int main(void)
{
    RUN(test_polls_and_timers);
    return test_done("fe_loop");
}
