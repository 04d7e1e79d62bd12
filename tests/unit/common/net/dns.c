/*
 * Tests common/net/dns.c against a real DNS server: Debian's dnsmasq, started here on
 * 127.0.0.X (X drawn at random) and a free port with a configuration of our own (no
 * system service, no /etc/resolv.conf, no /etc/hosts: only the records below), and
 * stopped by its PID at the end; it also dies with this process (PR_SET_PDEATHSIG).
 * It logs every query it receives, which is how the cache is seen to ask nothing.
 *
 * The resolver is driven with poll(2) exactly as dns.h tells an io_uring loop to do
 * it: the sockets of dns_watches(), dns_timeout_ms(), dns_process() per ready socket
 * or with -1 when the timeout expires.
 */
#include "common/net/dns.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];           /* dnsmasq's config and log, and our config files */
static char ns[32];            /* "127.0.0.X:PORT" of dnsmasq */
static char silent[32];        /* a UDP socket's address that never answers */
static pid_t dnsmasq = -1;
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

/* ---- dnsmasq ----------------------------------------------------------------------------- */

/* A UDP and TCP port free on ip, or 0. */
static int free_port(const char *ip)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    inet_pton(AF_INET, ip, &sa.sin_addr);
    int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    if (u >= 0 && t >= 0 && bind(u, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(u, (struct sockaddr *)&sa, &len) == 0 &&
        bind(t, (struct sockaddr *)&sa, sizeof sa) == 0)
        port = ntohs(sa.sin_port);
    close(u);
    close(t);
    return port;
}

static bool write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    return ok;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t len = 0;
    if (!f)
        return NULL;
    FILE *m = open_memstream(&text, &len);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;)
        fwrite(buf, 1, n, m);
    fclose(m);
    fclose(f);
    return text;
}

/* Lines of dnsmasq's log that contain s. */
static int log_count(const char *s)
{
    char path[96];
    snprintf(path, sizeof path, "%s/dnsmasq.log", dir);
    char *text = read_text(path);
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, s)); p += strlen(s))
        n++;
    free(text);
    return n;
}

static bool dnsmasq_start(void)
{
    char ip[16], conf[128], confarg[160], log[128], err[128], text[sizeof zone + 512];
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    snprintf(ip, sizeof ip, "127.0.0.%d", 100 + rand() % 100);
    int port = free_port(ip);
    if (!port)
        return false;
    snprintf(ns, sizeof ns, "%s:%d", ip, port);
    snprintf(conf, sizeof conf, "%s/dnsmasq.conf", dir);
    snprintf(log, sizeof log, "%s/dnsmasq.log", dir);
    snprintf(err, sizeof err, "%s/dnsmasq.err", dir);
    struct passwd *pw = getpwuid(geteuid());
    snprintf(text, sizeof text,
             "no-resolv\nno-hosts\nno-poll\nbind-interfaces\nlisten-address=%s\nport=%d\n"
             "local=/test/\nlog-queries\nlog-facility=%s\npid-file=\nuser=%s\n%s",
             ip, port, log, pw ? pw->pw_name : "nobody", zone);
    if (!write_text(conf, text))
        return false;
    pid_t parent = getpid();
    dnsmasq = fork();
    if (dnsmasq == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* dnsmasq's optional arguments take "=": "--conf-file PATH" is junk to it */
        snprintf(confarg, sizeof confarg, "--conf-file=%s", conf);
        execlp("dnsmasq", "dnsmasq", "--keep-in-foreground", confarg, (char *)NULL);
        fprintf(stderr, "cannot run dnsmasq (make deps installs it): %s\n", strerror(errno));
        _exit(127);
    }
    return dnsmasq > 0;
}

static void dnsmasq_stop(void)
{
    if (dnsmasq > 0) {
        kill(dnsmasq, SIGTERM);
        waitpid(dnsmasq, NULL, 0);
        dnsmasq = -1;
    }
}

/* ---- driving ----------------------------------------------------------------------------- */

struct waiter {
    struct dns_lookup l; /* first: the callback's l is the waiter */
    int calls, err;
    struct dns_result *res;
};

static void on_done(struct dns_lookup *l, int err, struct dns_result *res)
{
    struct waiter *w = (struct waiter *)l;
    w->calls++;
    w->err = err;
    w->res = res;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs r as dns.h's loop does until *flag is set or nothing is in flight (or 20 s). */
static void drive(struct dns *r, const int *flag)
{
    int64_t end = ms_now() + 20000;
    while (!*flag && ms_now() < end) {
        const struct dns_watch *w;
        struct pollfd p[16];
        size_t n = dns_watches(r, &w);
        int ms = dns_timeout_ms(r);
        if (n == 0 && ms < 0)
            return; /* nothing in flight: it would never finish */
        if (n > 16)
            n = 16;
        for (size_t i = 0; i < n; i++)
            p[i] = (struct pollfd){.fd = w[i].fd, .events = (short)w[i].events};
        int k = poll(p, n, ms < 0 || ms > 1000 ? 1000 : ms);
        if (k <= 0) {
            dns_process(r, -1, 0);
            continue;
        }
        for (size_t i = 0; i < n; i++)
            if (p[i].revents)
                dns_process(r, p[i].fd, (unsigned)p[i].revents);
    }
}

/* A resolver asking dnsmasq (or `server`), with the s2s directives in `extra`. */
static struct dns *resolver(const char *server, const char *extra)
{
    char path[96], text[1024], err[512];
    struct config *c;
    struct dns *r = NULL;
    snprintf(path, sizeof path, "%s/starling.conf", dir);
    snprintf(text, sizeof text,
             "s2s = {\n  dns_servers = [ \"%s\" ];\n  dns_timeout = 1;\n  dns_tries = 1;\n%s\n};\n",
             server ? server : ns, extra ? extra : "");
    if (!write_text(path, text) || config_load(path, &c, err, sizeof err) != 0) {
        TEST_FAIL("config: %s", err);
        return NULL;
    }
    int rc = dns_new(c, &r);
    config_free(c);
    if (rc)
        TEST_FAIL("dns_new: %d", rc);
    return r;
}

/* Looks domain up and waits for the answer; returns its error, *res its result. */
static int lookup(struct dns *r, const char *domain, struct dns_result **res)
{
    struct waiter w = {0};
    int rc = dns_resolve(r, domain, &w.l, on_done, res);
    if (rc != 1)
        return rc;
    drive(r, &w.calls);
    if (w.calls != 1)
        TEST_FAIL("%s: the callback ran %d times", domain, w.calls);
    *res = w.res;
    return w.err;
}

/* "127.0.0.1:5269", "[::1]:5269" */
static const char *show(const struct dns_addr *a)
{
    static char buf[80];
    char ip[INET6_ADDRSTRLEN];
    if (a->addr.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->addr.in6.sin6_addr, ip, sizeof ip);
        snprintf(buf, sizeof buf, "[%s]:%u", ip, ntohs(a->addr.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &a->addr.in.sin_addr, ip, sizeof ip);
        snprintf(buf, sizeof buf, "%s:%u", ip, ntohs(a->addr.in.sin_port));
    }
    return buf;
}

#define CHECK_ADDR(res, i, text, tls)                                                              \
    do {                                                                                           \
        if ((res) && (i) < (res)->n) {                                                             \
            CHECK_STR(show(&(res)->addr[i]), text);                                                \
            CHECK_INT((res)->addr[i].direct_tls, ==, tls);                                         \
        } else {                                                                                   \
            TEST_FAIL("no address %d", (int)(i));                                                  \
        }                                                                                          \
    } while (0)

/* Waits until dnsmasq answers (it binds its socket after it starts). */
static bool dnsmasq_ready(void)
{
    for (int i = 0; i < 100; i++) {
        if (waitpid(dnsmasq, NULL, WNOHANG) == dnsmasq) {
            dnsmasq = -1; /* it exited: its error file says why */
            return false;
        }
        struct dns *r = resolver(NULL, NULL);
        struct dns_result *res = NULL;
        int rc = r ? lookup(r, "ready.test", &res) : -1;
        dns_result_free(res);
        dns_free(r);
        if (rc == 0)
            return true;
        usleep(50 * 1000);
    }
    return false;
}

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
    snprintf(dir, sizeof dir, "/tmp/starling-dns-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
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

    if (!dnsmasq_start() || !dnsmasq_ready()) {
        char path[96];
        snprintf(path, sizeof path, "%s/dnsmasq.err", dir);
        char *why = read_text(path);
        fprintf(stderr, "dnsmasq did not start: %s\n", why ? why : "?");
        free(why);
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
        RUN(routes_and_literals);
    }
    dnsmasq_stop();
    close(silent_fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_done("dns");
}
