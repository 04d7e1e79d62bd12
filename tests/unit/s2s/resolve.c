/*
 * Tests s2s/resolve.c: an s2s thread's resolver driven by the thread's real io_uring loop
 * (fe_run(), with no listener, shard or connection), against dnsmasq (dnsmasq.h). The
 * lookups start from the first thing the loop calls (a control request set before it
 * runs) and the loop stops when the last one has ended.
 */
#include "dnsmasq.h"
#include "s2s/s2s.h"
#include "shm/proto.h"

static const char zone[] = "srv-host=_xmpps-server._tcp.both.test,tls.both.test,5223,0,0\n"
                           "srv-host=_xmpp-server._tcp.both.test,plain.both.test,5269,0,0\n"
                           "host-record=tls.both.test,127.0.0.11\n"
                           "host-record=plain.both.test,127.0.0.12\n"
                           "host-record=nosrv.test,127.0.0.31\n"
                           "host-record=ready.test,127.0.0.1\n";

/* One thread per run, never reused: what the layer keeps until the process exits (its
 * buffers, the port's arrays) stays reachable. */
static struct s2s_thread runs[2], *t;
static int nruns;
static struct shm_bell bell_sh;
static const char *phase; /* "dns" or "silent": what start() looks up */
static struct waiter ws[4];
static int ended;
static struct fe_timer guard;

static void no_wake(struct fe_thread *f)
{
    (void)f;
}

static void start(struct fe_thread *f, unsigned req);

static const struct fe_ops ops = {
    .conn_size = sizeof(struct fe_conn), .wake = no_wake, .control = start};

static void stop(struct fe_thread *f, struct fe_timer *tm)
{
    (void)tm;
    TEST_FAIL("the lookups did not end");
    f->stopping = true;
}

/* Each lookup's end; the last one stops the loop. Lookup 0 starts lookup 3 from its
 * callback, as s2s will when a peer's answer leads to another domain. */
static void done(struct dns_lookup *l, int err, struct dns_result *res)
{
    on_done(l, err, res);
    struct waiter *w = (struct waiter *)l;
    if (w == &ws[0] && !strcmp(phase, "dns")) {
        struct dns_result *r = NULL;
        CHECK_INT(s2s_resolve(t, "nosrv.test", &ws[3].l, done, &r), ==, 1);
    }
    if (++ended == (!strcmp(phase, "dns") ? 3 : 1)) {
        fe_timer_cancel(&guard);
        t->fe.stopping = true;
    }
}

static void start(struct fe_thread *f, unsigned req)
{
    struct dns_result *r = NULL;
    CHECK_INT(req, ==, FE_CTL_ROUTER_UP);
    fe_timer_at(f, &guard, fe_now_us() + 20 * 1000000ull, stop);
    if (!strcmp(phase, "silent")) {
        CHECK_INT(s2s_resolve(t, "both.test", &ws[0].l, done, &r), ==, 1);
        return;
    }
    CHECK_INT(s2s_resolve(t, "both.test", &ws[0].l, done, &r), ==, 1);
    CHECK_INT(s2s_resolve(t, "both.test", &ws[1].l, done, &r), ==, 1); /* joins */
    /* a route: answered now, nothing asked */
    CHECK_INT(s2s_resolve(t, "a.test", &ws[2].l, done, &r), ==, 0);
    CHECK_INT(r ? r->n : 0, ==, 1);
    CHECK_INT(r ? ntohs(r->addr[0].addr.in.sin_port) : 0, ==, 25269);
    dns_result_free(r);
    CHECK(t->ndns_polls > 0); /* the resolver's socket is watched */
}

static void run(const char *server, const char *which)
{
    struct config *c = config_for(server, "routes = [ \"a.test=127.0.0.2:25269\" ];");
    if (!c)
        return;
    t = &runs[nruns++];
    memset(ws, 0, sizeof ws);
    ended = 0;
    phase = which;
    t->fe.ops = &ops;
    t->fe.fe = PROTO_FE_S2S;
    t->fe.cfg = c;
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t->fe.lfd[i] = -1;
    bell_format(&bell_sh);
    CHECK_INT(bell_attach(&t->fe.bell, &bell_sh, bell_eventfd()), ==, 0);
    CHECK_INT(fe_port_init(&t->fe, 0), ==, 0);
    CHECK_INT(fe_pool_init(&t->fe, 1), ==, 0);
    CHECK_INT(s2s_resolve_init(t), ==, 0);
    atomic_store(&t->fe.ctl, FE_CTL_ROUTER_UP);
    CHECK_INT(fe_run(&t->fe), ==, 0);
    s2s_resolve_free(t);
    fe_pool_free(&t->fe);
    close(t->fe.bell.fd);
    config_free(c);
}

static void test_lookups_on_the_loop(void)
{
    run(NULL, "dns");
    CHECK_INT(ws[0].calls, ==, 1);
    CHECK_INT(ws[1].calls, ==, 1);
    CHECK_INT(ws[3].calls, ==, 1);
    CHECK_INT(ws[0].err, ==, 0);
    CHECK(ws[0].res && ws[0].res == ws[1].res);
    CHECK_INT(ws[0].res ? ws[0].res->n : 0, ==, 2);
    CHECK_ADDR(ws[0].res, 0, "127.0.0.11:5223", true);
    CHECK_ADDR(ws[0].res, 1, "127.0.0.12:5269", false);
    CHECK_INT(ws[3].err, ==, 0);
    CHECK_ADDR(ws[3].res, 0, "127.0.0.31:5269", false);
    /* the two lookups of both.test asked once */
    CHECK_INT(log_count("query[SRV] _xmpps-server._tcp.both.test "), ==, 1);
    for (int i = 0; i < 4; i++)
        dns_result_free(ws[i].res);
}

/* Only the timer can end a lookup nobody answers. */
static void test_timeout_on_the_loop(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof sa;
    char silent[32];
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
          getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    snprintf(silent, sizeof silent, "127.0.0.1:%u", ntohs(sa.sin_port));
    int64_t t0 = ms_now();
    run(silent, "silent");
    CHECK_INT(ws[0].calls, ==, 1);
    CHECK_INT(ws[0].err, ==, -ETIMEDOUT);
    CHECK_INT(ms_now() - t0, >=, 900); /* dns_timeout = 1, one try */
    close(fd);
}

int main(void)
{
    if (!dnsmasq_setup(zone)) {
        test_failed++;
    } else {
        RUN(test_lookups_on_the_loop);
        RUN(test_timeout_on_the_loop);
    }
    dnsmasq_teardown();
    return test_done("s2s resolve");
}
