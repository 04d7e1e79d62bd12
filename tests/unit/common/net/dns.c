/*
 * Tests common/net/dns.c against a real DNS server, dnsmasq serving the zone below
 * (dnsmasq.h); its query log is how the cache is seen to ask nothing.
 */
#include "dnsmasq.h"

static char silent[32]; /* a UDP socket's address that never answers */
static int silent_fd = -1;

/* The zone. Weights and priorities as RFC 2782 examples use them; local-ttl gives every
 * record without a TTL of its own 600 seconds. */
static const char zone[] =
    "local-ttl=600\n"
    /* both services: xmpps first (priority 0, then 5), then xmpp (0 and 0, then 10) */
    "srv-host=_xmpps-server._tcp.both.test,tls1.both.test,5223,0,10\n"
    "srv-host=_xmpps-server._tcp.both.test,tls2.both.test,5224,5,10\n"
    "srv-host=_xmpp-server._tcp.both.test,plain1.both.test,5269,0,90\n"
    "srv-host=_xmpp-server._tcp.both.test,plain2.both.test,5270,0,10\n"
    "srv-host=_xmpp-server._tcp.both.test,plain3.both.test,5271,10,0\n"
    "host-record=tls1.both.test,127.0.0.11,::11\n"
    "host-record=tls2.both.test,127.0.0.12\n"
    "host-record=plain1.both.test,127.0.0.13,::13\n"
    "host-record=plain2.both.test,127.0.0.14\n"
    "host-record=plain3.both.test,127.0.0.15\n"
    /* only _xmpp-server */
    "srv-host=_xmpp-server._tcp.only.test,xmpp.only.test,5275,0,0\n"
    "host-record=xmpp.only.test,127.0.0.21\n"
    /* no SRV: the domain itself on 5269 */
    "host-record=nosrv.test,127.0.0.31,::31\n"
    /* "." for xmpp: not available, though the domain has an address */
    "srv-host=_xmpp-server._tcp.dot.test\n"
    "host-record=dot.test,127.0.0.41\n"
    /* "." for xmpps only: no Direct TLS, the STARTTLS fallback stands */
    "srv-host=_xmpps-server._tcp.dottls.test\n"
    "host-record=dottls.test,127.0.0.51\n"
    /* a target without an address */
    "srv-host=_xmpp-server._tcp.noaddr.test,missing.noaddr.test,5269,0,0\n"
    /* a record TTL of 2 seconds */
    "host-record=ttl.test,127.0.0.61,2\n"
    /* an IDN, published in A-labels (bücher.test) */
    "host-record=xn--bcher-kva.test,127.0.0.71\n"
    /* more targets and addresses than the limits the test sets (3 and 2) */
    "srv-host=_xmpp-server._tcp.many.test,m0.many.test,5269,0,0\n"
    "srv-host=_xmpp-server._tcp.many.test,m1.many.test,5269,1,0\n"
    "srv-host=_xmpp-server._tcp.many.test,m2.many.test,5269,2,0\n"
    "srv-host=_xmpp-server._tcp.many.test,m3.many.test,5269,3,0\n"
    "srv-host=_xmpp-server._tcp.many.test,m4.many.test,5269,4,0\n"
    "host-record=m0.many.test,127.0.0.80,::80\n"
    "host-record=m0.many.test,127.0.0.81\n"
    "host-record=m0.many.test,127.0.0.82\n"
    "host-record=m1.many.test,127.0.0.83\n"
    "host-record=m2.many.test,127.0.0.84\n"
    "host-record=m3.many.test,127.0.0.85\n"
    "host-record=m4.many.test,127.0.0.86\n"
    "host-record=ready.test,127.0.0.1\n";

/* ---- the cases --------------------------------------------------------------------------- */

static void both_services(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    CHECK_INT(lookup(r, "both.test", &res), ==, 0);
    /* xmpps by priority (tls1's IPv6 first), then xmpp's priority 0 in weighted order,
     * then its priority 10 */
    CHECK_INT(res ? res->n : 0, ==, 7);
    CHECK_ADDR(res, 0, "[::11]:5223", true);
    CHECK_ADDR(res, 1, "127.0.0.11:5223", true);
    CHECK_ADDR(res, 2, "127.0.0.12:5224", true);
    if (res && res->n == 7) {
        CHECK_STR(res->addr[0].host, "tls1.both.test");
        bool plain1_first = !strcmp(res->addr[3].host, "plain1.both.test");
        CHECK_ADDR(res, plain1_first ? 3 : 4, "[::13]:5269", false);
        CHECK_ADDR(res, plain1_first ? 4 : 5, "127.0.0.13:5269", false);
        CHECK_ADDR(res, plain1_first ? 5 : 3, "127.0.0.14:5270", false);
    }
    CHECK_ADDR(res, 6, "127.0.0.15:5271", false);
    /* 2 SRV questions, then A and AAAA for each of the 5 hosts */
    CHECK_INT(dns_stats(r)->queries, ==, 12);
    dns_result_free(res);
    dns_free(r);
}

/* RFC 2782's weights, through the whole resolver: plain1 (weight 90) comes before
 * plain2 (weight 10) about nine lookups in ten. Each lookup is a fresh resolver with
 * dns_max_ttl = 0, so nothing is remembered between them. */
static void weights_through_dns(void)
{
    enum { LOOKUPS = 40 };
    int plain1_first = 0;
    for (int i = 0; i < LOOKUPS; i++) {
        struct dns *r = resolver(NULL, "dns_max_ttl = 0;");
        struct dns_result *res = NULL;
        if (!r)
            return;
        if (lookup(r, "both.test", &res) == 0 && res->n == 7)
            plain1_first += !strcmp(res->addr[3].host, "plain1.both.test");
        dns_result_free(res);
        dns_free(r);
    }
    /* binomial(40, 0.9): mean 36, below 26 with a probability under 1e-5 */
    CHECK_INT(plain1_first, >=, 26);
    CHECK_INT(plain1_first, <, LOOKUPS);
}

static void only_xmpp_server(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    CHECK_INT(lookup(r, "only.test", &res), ==, 0);
    CHECK_INT(res ? res->n : 0, ==, 1);
    CHECK_ADDR(res, 0, "127.0.0.21:5275", false);
    CHECK_INT(dns_stats(r)->queries, ==, 4);
    dns_result_free(res);
    dns_free(r);
}

static void fallback_without_srv(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    CHECK_INT(lookup(r, "nosrv.test", &res), ==, 0);
    CHECK_INT(res ? res->n : 0, ==, 2);
    CHECK_ADDR(res, 0, "[::31]:5269", false);
    CHECK_ADDR(res, 1, "127.0.0.31:5269", false);
    if (res)
        CHECK_STR(res->addr[0].host, "nosrv.test");
    dns_result_free(res);
    res = NULL;
    /* An xmpps "." only rules out Direct TLS: the fallback stands. */
    CHECK_INT(lookup(r, "dottls.test", &res), ==, 0);
    CHECK_INT(res ? res->n : 0, ==, 1);
    CHECK_ADDR(res, 0, "127.0.0.51:5269", false);
    dns_result_free(res);
    res = NULL;
    /* An IDN is asked for in A-labels. */
    CHECK_INT(lookup(r, "bücher.test", &res), ==, 0);
    CHECK_ADDR(res, 0, "127.0.0.71:5269", false);
    CHECK_INT(log_count("query[A] xn--bcher-kva.test "), ==, 1);
    dns_result_free(res);
    dns_free(r);
}

static void dot_target(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    /* dot.test has an A record, but its SRV says "not here": no fallback to it. */
    CHECK_INT(lookup(r, "dot.test", &res), ==, -ECONNREFUSED);
    CHECK(res == NULL);
    CHECK_INT(dns_stats(r)->queries, ==, 2);
    CHECK_INT(log_count("query[A] dot.test "), ==, 0);
    /* remembered, as a negative answer */
    CHECK_INT(dns_resolve(r, "dot.test", &(struct dns_lookup){0}, on_done, &res), ==,
              -ECONNREFUSED);
    CHECK_INT(dns_stats(r)->queries, ==, 2);
    dns_free(r);
}

static void nxdomain_and_no_address(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    CHECK_INT(lookup(r, "nx.test", &res), ==, -ENOENT);
    CHECK_INT(dns_stats(r)->queries, ==, 4); /* 2 SRV, then the fallback's A and AAAA */
    /* the negative answer is remembered: no query the second time */
    CHECK_INT(dns_resolve(r, "nx.test", &(struct dns_lookup){0}, on_done, &res), ==, -ENOENT);
    CHECK_INT(dns_stats(r)->queries, ==, 4);
    CHECK_INT(dns_stats(r)->cached, ==, 1);
    CHECK_INT(lookup(r, "noaddr.test", &res), ==, -ENOENT);
    CHECK(res == NULL);
    /* A name dnsmasq does not serve is REFUSED: a server's error, not remembered. */
    CHECK_INT(lookup(r, "refused.example", &res), ==, -EIO);
    struct waiter w = {0};
    CHECK_INT(dns_resolve(r, "refused.example", &w.l, on_done, &res), ==, 1);
    dns_cancel(&w.l);
    drive(r, &w.calls);
    CHECK_INT(w.calls, ==, 0);
    dns_free(r);
}

static void timeout(void)
{
    struct dns *r = resolver(silent, NULL);
    struct dns_result *res = NULL;
    if (!r)
        return;
    int64_t t0 = ms_now();
    CHECK_INT(lookup(r, "both.test", &res), ==, -ETIMEDOUT);
    /* dns_timeout = 1, one try: about a second (no fallback after a timeout) */
    CHECK_INT(ms_now() - t0, >=, 900);
    CHECK_INT(dns_stats(r)->queries, ==, 2);
    /* not remembered: the next lookup asks again; freed while it is in flight */
    struct waiter w = {0};
    CHECK_INT(dns_resolve(r, "both.test", &w.l, on_done, &res), ==, 1);
    CHECK_INT(dns_stats(r)->queries, ==, 4);
    dns_free(r);
    CHECK_INT(w.calls, ==, 0);
}

static void cache(void)
{
    struct dns *r = resolver(NULL, NULL);
    struct dns_result *a = NULL, *b = NULL;
    struct dns_lookup l = {0};
    if (!r)
        return;
    int before = log_count("query[SRV] _xmpp-server._tcp.only.test ");
    CHECK_INT(lookup(r, "only.test", &a), ==, 0);
    uint64_t q = dns_stats(r)->queries;
    /* answered at once, the same result, no query */
    CHECK_INT(dns_resolve(r, "only.test", &l, on_done, &b), ==, 0);
    CHECK(a && a == b);
    CHECK_INT(dns_stats(r)->queries, ==, q);
    CHECK_INT(dns_stats(r)->cached, ==, 1);
    /* dnsmasq saw one SRV query: the lookup of a sentinel after the cached one shows
     * that the log is written up to there */
    struct dns_result *s = NULL;
    CHECK_INT(lookup(r, "sentinel.test", &s), ==, -ENOENT);
    CHECK_INT(log_count("query[AAAA] sentinel.test "), ==, 1);
    CHECK_INT(log_count("query[SRV] _xmpp-server._tcp.only.test ") - before, ==, 1);
    dns_result_free(a);
    dns_result_free(b);
    dns_free(r);

    /* Concurrent lookups of one domain share its queries. */
    r = resolver(NULL, NULL);
    struct waiter w1 = {0}, w2 = {0};
    if (!r)
        return;
    CHECK_INT(dns_resolve(r, "only.test", &w1.l, on_done, &a), ==, 1);
    CHECK_INT(dns_resolve(r, "only.test", &w2.l, on_done, &a), ==, 1);
    CHECK_INT(dns_stats(r)->joined, ==, 1);
    drive(r, &w2.calls);
    drive(r, &w1.calls);
    CHECK_INT(w1.calls, ==, 1);
    CHECK_INT(w2.calls, ==, 1);
    CHECK(w1.res && w1.res == w2.res);
    CHECK_INT(dns_stats(r)->queries, ==, 4);
    dns_result_free(w1.res);
    dns_result_free(w2.res);
    /* A cancelled lookup is not called back; its queries still fill the cache. */
    struct waiter w3 = {0};
    CHECK_INT(dns_resolve(r, "nosrv.test", &w3.l, on_done, &a), ==, 1);
    dns_cancel(&w3.l);
    dns_cancel(&w3.l); /* twice is harmless */
    drive(r, &w3.calls);
    CHECK_INT(w3.calls, ==, 0);
    CHECK_INT(dns_resolve(r, "nosrv.test", &l, on_done, &a), ==, 0);
    dns_result_free(a);
    dns_free(r);
}

static void ttl(void)
{
    /* dns_max_ttl caps: 0 remembers nothing */
    struct dns *r = resolver(NULL, "dns_max_ttl = 0;");
    struct dns_result *res = NULL;
    struct waiter w = {0};
    if (!r)
        return;
    CHECK_INT(lookup(r, "only.test", &res), ==, 0);
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "only.test", &w.l, on_done, &res), ==, 1);
    dns_cancel(&w.l);
    dns_free(r);

    /* ttl.test's A record lives 2 seconds: remembered that long, then asked again. */
    r = resolver(NULL, NULL);
    if (!r)
        return;
    CHECK_INT(lookup(r, "ttl.test", &res), ==, 0);
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "ttl.test", &w.l, on_done, &res), ==, 0);
    dns_result_free(res);
    usleep(2200 * 1000);
    uint64_t q = dns_stats(r)->queries;
    CHECK_INT(lookup(r, "ttl.test", &res), ==, 0);
    CHECK_INT(dns_stats(r)->queries, ==, q + 4);
    CHECK_ADDR(res, 0, "127.0.0.61:5269", false);
    dns_result_free(res);
    dns_free(r);
}

static void limits(void)
{
    struct dns *r =
        resolver(NULL, "dns_max_targets = 3; dns_max_addresses = 2; dns_cache_size = 2;");
    struct dns_result *res = NULL;
    struct waiter w1 = {0}, w2 = {0}, w3 = {0};
    if (!r)
        return;
    /* 5 targets, 3 kept; m0's 4 addresses, 2 kept (IPv6 first) */
    CHECK_INT(lookup(r, "many.test", &res), ==, 0);
    CHECK_INT(res ? res->n : 0, ==, 4);
    CHECK_ADDR(res, 0, "[::80]:5269", false);
    CHECK_STR(res ? res->addr[1].host : "", "m0.many.test");
    CHECK_ADDR(res, 2, "127.0.0.83:5269", false);
    CHECK_ADDR(res, 3, "127.0.0.84:5269", false);
    CHECK_INT(dns_stats(r)->queries, ==, 2 + 3 * 2);
    CHECK_INT(log_count("query[A] m3.many.test "), ==, 0);
    dns_result_free(res);

    /* dns_cache_size = 2: a third domain makes the least recently used forgotten */
    CHECK_INT(lookup(r, "only.test", &res), ==, 0);
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "many.test", &w1.l, on_done, &res), ==, 0); /* many is newer */
    dns_result_free(res);
    CHECK_INT(lookup(r, "nosrv.test", &res), ==, 0); /* only.test goes */
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "many.test", &w1.l, on_done, &res), ==, 0);
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "only.test", &w1.l, on_done, &res), ==, 1);
    /* ... and while both places are lookups in flight, a third cannot start */
    CHECK_INT(dns_resolve(r, "dottls.test", &w2.l, on_done, &res), ==, 1);
    CHECK_INT(dns_resolve(r, "both.test", &w3.l, on_done, &res), ==, -EAGAIN);
    drive(r, &w1.calls);
    drive(r, &w2.calls);
    CHECK_INT(w1.err, ==, 0);
    CHECK_INT(w2.err, ==, 0);
    dns_result_free(w1.res);
    dns_result_free(w2.res);
    dns_free(r);
}

/* A callback that looks its domain up again, while other lookups of it wait for their
 * callbacks: with dns_max_ttl = 0 the answer is already stale, so the entry starts over
 * in place and drops the cache's reference to the result the others are still to get. */
static struct dns *again_r;
static struct waiter again_w;

static void look_again(struct dns_lookup *l, int err, struct dns_result *res)
{
    on_done(l, err, res);
    dns_result_free(res);
    struct waiter *w = (struct waiter *)l;
    w->res = NULL;
    struct dns_result *r2 = NULL;
    CHECK_INT(dns_resolve(again_r, "only.test", &again_w.l, on_done, &r2), ==, 1);
}

static void lookup_from_a_callback(void)
{
    struct dns *r = again_r = resolver(NULL, "dns_max_ttl = 0;");
    struct dns_result *res = NULL;
    struct waiter w1 = {0}, w2 = {0};
    if (!r)
        return;
    memset(&again_w, 0, sizeof again_w);
    /* w2 waits first, w1 joins: the waiters' list calls w1 back first */
    CHECK_INT(dns_resolve(r, "only.test", &w2.l, on_done, &res), ==, 1);
    CHECK_INT(dns_resolve(r, "only.test", &w1.l, look_again, &res), ==, 1);
    drive(r, &w2.calls);
    CHECK_INT(w1.calls, ==, 1);
    CHECK_INT(w2.calls, ==, 1);
    CHECK_INT(w2.err, ==, 0);
    CHECK_INT(w2.res ? w2.res->n : 0, ==, 1);
    CHECK_ADDR(w2.res, 0, "127.0.0.21:5275", false);
    dns_result_free(w2.res);
    drive(r, &again_w.calls);
    CHECK_INT(again_w.calls, ==, 1);
    CHECK_ADDR(again_w.res, 0, "127.0.0.21:5275", false);
    dns_result_free(again_w.res);
    dns_free(r);
}

static void routes_and_literals(void)
{
    struct dns *r = resolver(
        NULL, "routes = [ \"a.test=127.0.0.2:25269\", \"both.test=[::1]:5269\" ];");
    struct dns_result *res = NULL;
    struct dns_lookup l = {0};
    if (!r)
        return;
    CHECK_INT(dns_resolve(r, "a.test", &l, on_done, &res), ==, 0);
    CHECK_INT(res ? res->n : 0, ==, 1);
    CHECK_ADDR(res, 0, "127.0.0.2:25269", false);
    dns_result_free(res);
    /* a route wins over what DNS says */
    CHECK_INT(dns_resolve(r, "both.test", &l, on_done, &res), ==, 0);
    CHECK_ADDR(res, 0, "[::1]:5269", false);
    dns_result_free(res);
    /* IP literals are their own address */
    CHECK_INT(dns_resolve(r, "127.0.0.9", &l, on_done, &res), ==, 0);
    CHECK_ADDR(res, 0, "127.0.0.9:5269", false);
    dns_result_free(res);
    CHECK_INT(dns_resolve(r, "[::1]", &l, on_done, &res), ==, 0);
    CHECK_ADDR(res, 0, "[::1]:5269", false);
    dns_result_free(res);
    CHECK_INT(dns_stats(r)->queries, ==, 0);
    CHECK_INT(dns_stats(r)->routes, ==, 4);
    /* not a DNS name: a label over 63 bytes */
    char name[80];
    memset(name, 'a', 64);
    strcpy(name + 64, ".test");
    CHECK_INT(dns_resolve(r, name, &l, on_done, &res), ==, -EINVAL);
    CHECK(res == NULL);
    dns_free(r);
}

int main(void)
{
    /* The server that never answers: a socket nobody reads. */
    silent_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof sa;
    if (silent_fd < 0 || bind(silent_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(silent_fd, (struct sockaddr *)&sa, &len) != 0) {
        perror("silent socket");
        return 1;
    }
    snprintf(silent, sizeof silent, "127.0.0.1:%u", ntohs(sa.sin_port));

    if (!dnsmasq_setup(zone)) {
        test_failed++;
    } else {
        RUN(both_services);
        RUN(weights_through_dns);
        RUN(only_xmpp_server);
        RUN(fallback_without_srv);
        RUN(dot_target);
        RUN(nxdomain_and_no_address);
        RUN(timeout);
        RUN(cache);
        RUN(ttl);
        RUN(limits);
        RUN(lookup_from_a_callback);
        RUN(routes_and_literals);
    }
    dnsmasq_teardown();
    close(silent_fd);
    return test_done("dns");
}
