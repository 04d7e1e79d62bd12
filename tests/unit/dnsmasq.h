/*
 * dnsmasq.h: a real DNS server for the unit tests of the peer resolver (included by one
 * test file per binary, like test.h): Debian's dnsmasq, started on 127.0.0.X (X drawn at
 * random) and a free port with a configuration of the test's own (no system service, no
 * /etc/resolv.conf, no /etc/hosts: only the zone given), and stopped by its PID at the
 * end; it also dies with the test (PR_SET_PDEATHSIG). It logs every query it receives
 * (log_count()).
 *
 * Also here: a resolver (common/net/dns.h) asking it, driven with poll(2) exactly as
 * dns.h tells an io_uring loop to do it: the sockets of dns_watches(),
 * dns_timeout_ms(), dns_process() per ready socket or with -1 when the timeout expires.
 */
#ifndef STARLING_TEST_DNSMASQ_H
#define STARLING_TEST_DNSMASQ_H

#include "common/net/dns.h"
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];    /* dnsmasq's config and log, and our config files */
static char ns[32];     /* "127.0.0.X:PORT" of dnsmasq */
static pid_t dnsmasq = -1;

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

static bool dnsmasq_start(const char *zone)
{
    char ip[16], conf[128], confarg[160], log[128], err[128];
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
    char *text = NULL;
    if (asprintf(&text,
             "no-resolv\nno-hosts\nno-poll\nbind-interfaces\nlisten-address=%s\nport=%d\n"
             "local=/test/\nlog-queries\nlog-facility=%s\npid-file=\nuser=%s\n%s",
             ip, port, log, pw ? pw->pw_name : "nobody", zone) < 0)
        return false;
    bool ok = write_text(conf, text);
    free(text);
    if (!ok)
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

/* A configuration whose resolver asks dnsmasq (or `server`), with the s2s directives
 * in `extra`; NULL after a failure. */
static struct config *config_for(const char *server, const char *extra)
{
    char path[96], text[1024], err[512];
    struct config *c;
    snprintf(path, sizeof path, "%s/starling.conf", dir);
    snprintf(text, sizeof text,
             "s2s = {\n  dns_servers = [ \"%s\" ];\n  dns_timeout = 1;\n  dns_tries = 1;\n%s\n};\n",
             server ? server : ns, extra ? extra : "");
    if (!write_text(path, text) || config_load(path, &c, err, sizeof err) != 0) {
        TEST_FAIL("config: %s", err);
        return NULL;
    }
    return c;
}

/* A resolver asking dnsmasq (or `server`), with the s2s directives in `extra`. */
static struct dns *resolver(const char *server, const char *extra)
{
    struct config *c = config_for(server, extra);
    struct dns *r = NULL;
    if (!c)
        return NULL;
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


/* A folder for the files, dnsmasq serving zone (with "host-record=ready.test,127.0.0.1"
 * among its lines) and answering. false, with the reason on stderr, when it did not. */
static bool dnsmasq_setup(const char *zone)
{
    snprintf(dir, sizeof dir, "/tmp/starling-dns-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return false;
    }
    if (dnsmasq_start(zone) && dnsmasq_ready())
        return true;
    char path[96];
    snprintf(path, sizeof path, "%s/dnsmasq.err", dir);
    char *why = read_text(path);
    fprintf(stderr, "dnsmasq did not start: %s\n", why ? why : "?");
    free(why);
    return false;
}

/* Stops dnsmasq and removes the folder. */
static void dnsmasq_teardown(void)
{
    dnsmasq_stop();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
