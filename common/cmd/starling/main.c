/*
 * starling: the supervisor, like nginx's master process. It validates the config,
 * creates the shared-memory segment and the bells, starts starling-router,
 * starling-c2s and starling-s2s, restarts a child that dies (with backoff), shuts
 * everything down cleanly on SIGTERM or SIGINT and has the children reload on SIGHUP. It
 * routes nothing. `starling --check --config FILE` only loads the config and says whether
 * it is valid (exit 0, or 2 with the error).
 *
 * The router shares rings with each front end (c2s, s2s); the front ends share none.
 * When a child dies, each survivor that shares rings with it must reset them before a
 * replacement attaches (shm/ring.h, "Reset"; common/core/ctl.h): the supervisor reaps the
 * child, sends CTL_PEER_DOWN to those survivors, waits for every CTL_PEER_RESET,
 * re-formats the dead child's bells and only then starts the replacement. A survivor that
 * does not answer within RESET_TIMEOUT_MS is killed too; rings whose processes at both
 * ends are dead the supervisor re-formats itself.
 *
 * Draining (SIGUSR1, `starlingctl drain`): /ready fails at once and c2s hears CTL_DRAIN
 * (CTL_DRAIN_LOGINS: no new login); admin.drain_grace later, CTL_DRAIN_ALL (every client
 * stream ends with see-other-host or system-shutdown). The node goes on running, not
 * ready, until it is stopped or SIGUSR2 (`starlingctl undrain`) sends CTL_DRAIN_OFF. A c2s
 * that starts while the node drains hears the level at once. s2s is left alone: its peers'
 * streams carry stanzas for users who may still be here, and a peer reconnects by itself
 * to whichever node DNS names when this one stops.
 *
 * The arbiter (router/main.c): while the router says the store is unreachable
 * (CTL_STORE), /ready fails with "storage unreachable" and c2s refuses new logins
 * (CTL_DRAIN_STORE) unless a drain says more; a new router starts again from reachable.
 *
 * The admin listener (admin.listen, common/admin/admin.h) answers /health, /ready and
 * /metrics from this loop.
 *
 * Single-threaded: one poll loop over a signalfd, the children's control sockets and the
 * admin listener's sockets.
 */
#include "common/admin/admin.h"
#include "common/admin/metrics.h"
#include "common/config/config.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "shm/bell.h"
#include "shm/ring.h"
#include "shm/stats.h"
#include "shm/topo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESET_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS  10000
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
/* A child that ran this long before dying is not crash-looping: no backoff. */
#define STABLE_MS 10000
/* A child that dies this many times in a row without ever serving cannot start (a port
 * taken, a certificate missing): the node stops instead of retrying forever. */
#define MAX_START_FAILURES 5

enum child_state {
    CH_DOWN,    /* not running; start at retry_at */
    CH_RUNNING, /* started, READY or not */
    CH_WAITING, /* dead; waiting for the survivor's CTL_PEER_RESET */
};

struct child {
    const char *name;
    enum ctl_role role;
    char bin[PATH_MAX + 32]; /* our own directory plus the child's name */
    enum child_state state;
    pid_t pid;
    int ctl;
    bool ready;
    bool told_down;          /* its peers heard CTL_PEER_DOWN for it and wait for CTL_PEER_UP */
    unsigned resets_due;     /* CH_WAITING: survivors yet to answer CTL_PEER_RESET */
    unsigned start_failures; /* deaths in a row before CTL_READY */
    unsigned backoff_ms;
    uint64_t started, retry_at, wait_until;
};

static struct {
    const char *config_path;
    struct config *cfg;
    struct seg seg;
    int *bell_fds;
    unsigned nbells;
    struct child kids[3]; /* router, c2s, s2s */
    bool stopping;
    int exit_code;
    uint64_t stop_deadline;
    struct admin admin;
    unsigned drain;       /* enum ctl_drain */
    bool store_lost;      /* CTL_STORE from the router */
    uint64_t drain_until; /* CTL_DRAIN_LOGINS: when CTL_DRAIN_ALL is due */
    bool wrote_pid;
} S;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What c2s refuses: a drain's level, else the arbiter's. */
static unsigned c2s_drain(void)
{
    return S.drain != CTL_DRAIN_OFF ? S.drain : S.store_lost ? CTL_DRAIN_STORE : CTL_DRAIN_OFF;
}

static struct child *router(void)
{
    return &S.kids[0];
}

static struct child *c2s(void)
{
    return &S.kids[1];
}

static struct child *s2s(void)
{
    return &S.kids[2];
}

#define NKIDS 3

/* Do a and b share rings? The router with each front end; front ends with nobody. */
static bool peers(const struct child *a, const struct child *b)
{
    return a != b && (a == router() || b == router());
}

static struct child *by_role(uint32_t role)
{
    return role == CTL_ROLE_ROUTER ? router() : role == CTL_ROLE_C2S ? c2s() : s2s();
}

static void send_ctl(struct child *c, uint32_t type, uint32_t arg)
{
    struct ctl_msg m = {type, arg};
    if (c->ctl >= 0 && c->state == CH_RUNNING)
        send(c->ctl, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static int spawn(struct child *c)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    char shm[16], ctl[16], bells[8 * 1024];
    size_t off = 0;
    snprintf(shm, sizeof shm, "%d", S.seg.fd);
    snprintf(ctl, sizeof ctl, "%d", sv[1]);
    for (unsigned i = 0; i < S.nbells && off + 16 < sizeof bells; i++)
        off +=
            (size_t)snprintf(bells + off, sizeof bells - off, "%s%d", i ? "," : "", S.bell_fds[i]);
    pid_t pid = fork();
    if (pid < 0) {
        int err = -errno;
        close(sv[0]);
        close(sv[1]);
        return err;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        fcntl(sv[1], F_SETFD, 0); /* the child's end survives exec */
        char *argv[] = {c->bin,     "--config", (char *)S.config_path, "--shm-fd", shm,
                        "--ctl-fd", ctl,        "--bell-fds",          bells,      NULL};
        execv(c->bin, argv);
        fprintf(stderr, "starling: cannot run %s: %s\n", c->bin, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    c->pid = pid;
    c->ctl = sv[0];
    c->ready = false;
    c->state = CH_RUNNING;
    c->started = now_ms();
    LOG_INFO("started %s (pid %d)", c->name, (int)pid);
    return 0;
}

/* The front-end thread indices of a front end (shm/topo.h): [*from, *to). */
static void fe_range(const struct child *c, unsigned *from, unsigned *to)
{
    *from = c == s2s() ? topo_threads(S.cfg) : 0;
    *to = c == s2s() ? topo_fe_threads(S.cfg) : topo_threads(S.cfg);
}

/* Bells of the threads of a dead child may have been left "sleeping", and its gauges
 * (stats.h) say what it held. */
static void format_bells(struct child *c)
{
    const struct config *cfg = S.cfg;
    unsigned from, to;
    if (c == router()) {
        for (unsigned s = 0; s < topo_shards(cfg); s++) {
            bell_format(seg_bell(&S.seg, topo_bell_shard(cfg, s)));
            stats_zero_gauges(seg_stats(&S.seg, topo_stats_shard(cfg, s)));
        }
        stats_zero_gauges(seg_stats(&S.seg, topo_stats_router(cfg)));
        return;
    }
    fe_range(c, &from, &to);
    for (unsigned g = from; g < to; g++) {
        bell_format(seg_bell(&S.seg, topo_bell_fe(cfg, g)));
        stats_zero_gauges(seg_stats(&S.seg, topo_stats_fe(cfg, g)));
    }
}

/* The rings between the router and front end f, both dead: nobody is left to reset
 * them but us. */
static void format_rings(struct child *f)
{
    const struct config *cfg = S.cfg;
    struct seg_layout l = S.seg.l;
    unsigned from, to;
    fe_range(f, &from, &to);
    for (unsigned g = from; g < to; g++)
        for (unsigned s = 0; s < topo_shards(cfg); s++) {
            ring_format(seg_ring(&S.seg, topo_ring_up(cfg, g, s)), l.ring_data_size, l.max_frame);
            ring_format(seg_ring(&S.seg, topo_ring_down(cfg, g, s)), l.ring_data_size,
                        l.max_frame);
        }
}

static void schedule_start(struct child *c)
{
    uint64_t now = now_ms();
    if (now - c->started >= STABLE_MS)
        c->backoff_ms = 0;
    c->state = CH_DOWN;
    c->retry_at = now + c->backoff_ms;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
}

static void begin_stop(void);

static void on_death(struct child *c, int status)
{
    if (c->ctl >= 0)
        close(c->ctl);
    c->ctl = -1;
    c->pid = 0;
    if (S.stopping) {
        c->state = CH_DOWN;
        return;
    }
    if (WIFSIGNALED(status))
        LOG_ERROR("%s died of signal %d; restarting it", c->name, WTERMSIG(status));
    else
        LOG_ERROR("%s exited with status %d; restarting it", c->name, WEXITSTATUS(status));
    if (!c->ready && ++c->start_failures >= MAX_START_FAILURES) {
        LOG_ERROR("%s failed to start %u times in a row: stopping the node", c->name,
                  c->start_failures);
        S.exit_code = 1;
        c->state = CH_DOWN;
        begin_stop();
        return;
    }
    c->resets_due = 0;
    for (int i = 0; i < NKIDS; i++) {
        struct child *p = &S.kids[i];
        if (!peers(c, p))
            continue;
        if (p->state == CH_RUNNING) {
            send_ctl(p, CTL_PEER_DOWN, c->role);
            c->resets_due++;
        } else {
            /* Both ends of these rings are dead: they are ours to reset. A peer that
             * waited for our reset waits no more. */
            format_rings(c == router() ? p : c);
            if (p->state == CH_WAITING && p->resets_due && !--p->resets_due) {
                format_bells(p);
                schedule_start(p);
            }
        }
    }
    if (c->resets_due) {
        c->state = CH_WAITING;
        c->wait_until = now_ms() + RESET_TIMEOUT_MS;
        c->told_down = true;
        return;
    }
    format_bells(c);
    schedule_start(c);
}

static void on_message(struct child *c)
{
    struct ctl_msg m;
    ssize_t n = recv(c->ctl, &m, sizeof m, MSG_DONTWAIT);
    if (n != (ssize_t)sizeof m)
        return;
    struct child *p = by_role(m.arg);
    if (m.type == CTL_READY) {
        c->ready = true;
        c->start_failures = 0;
        LOG_INFO("%s is serving", c->name);
        for (int i = 0; c->told_down && i < NKIDS; i++)
            if (peers(c, &S.kids[i]) && S.kids[i].state == CH_RUNNING)
                send_ctl(&S.kids[i], CTL_PEER_UP, c->role);
        c->told_down = false;
        if (c == router() && S.store_lost) {
            S.store_lost = false; /* a new router tells again if it must */
            send_ctl(c2s(), CTL_DRAIN, c2s_drain());
        }
        if (c == c2s() && c2s_drain() != CTL_DRAIN_OFF)
            send_ctl(c, CTL_DRAIN, c2s_drain());
    } else if (m.type == CTL_PEER_BROKEN && peers(c, p) && p->pid > 0 && p->state == CH_RUNNING) {
        LOG_ERROR("%s reports that %s wrote a corrupt frame: replacing %s", c->name, p->name,
                  p->name);
        kill(p->pid, SIGKILL);
    } else if (m.type == CTL_STORE && c == router() && S.store_lost != !!m.arg) {
        S.store_lost = m.arg;
        send_ctl(c2s(), CTL_DRAIN, c2s_drain());
    } else if (m.type == CTL_REHOME && c == router()) {
        if (c2s()->state == CH_RUNNING)
            send_ctl(c2s(), CTL_REHOME, 0);
    } else if (m.type == CTL_PEER_RESET && p->state == CH_WAITING && p->resets_due &&
               !--p->resets_due) {
        format_bells(p);
        schedule_start(p);
    }
}

static void reap(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < NKIDS; i++)
            if (S.kids[i].pid == pid)
                on_death(&S.kids[i], status);
}

static void begin_stop(void)
{
    if (S.stopping)
        return;
    S.stopping = true;
    S.stop_deadline = now_ms() + STOP_TIMEOUT_MS;
    LOG_INFO("shutting down");
    /* The front ends first (clients and peers get system-shutdown), the router once they
     * are gone. */
    send_ctl(c2s(), CTL_SHUTDOWN, 0);
    send_ctl(s2s(), CTL_SHUTDOWN, 0);
    if (c2s()->state != CH_RUNNING && s2s()->state != CH_RUNNING)
        send_ctl(router(), CTL_SHUTDOWN, 0);
}

static void reload(void)
{
    struct config *fresh;
    char err[512];
    if (config_load(S.config_path, &fresh, err, sizeof err) < 0) {
        LOG_ERROR("reload refused, keeping the running config: %s", err);
        return;
    }
    const char *fixed = config_changed(S.cfg, fresh, true);
    if (fixed) {
        LOG_WARN("reload refused: %s changes only on restart", fixed);
        config_free(fresh);
        return;
    }
    log_set_level(fresh->log.level);
    /* What may change at run time (the admin listener's limits, drain_grace) comes from
     * the new snapshot; the rest is the same in both. */
    config_free(S.cfg);
    S.cfg = fresh;
    S.admin.cfg = fresh;
    for (int i = 0; i < NKIDS; i++)
        send_ctl(&S.kids[i], CTL_RELOAD, 0);
    LOG_INFO("reloading %s", S.config_path);
}

/* ---- draining and the admin listener ------------------------------------------------------ */

static void drain_set(unsigned level)
{
    if (level == S.drain)
        return;
    S.drain = level;
    if (level == CTL_DRAIN_LOGINS)
        S.drain_until = now_ms() + (uint64_t)S.cfg->admin.drain_grace * 1000;
    LOG_INFO("%s", level == CTL_DRAIN_OFF      ? "undrained: serving again"
                   : level == CTL_DRAIN_LOGINS ? "draining: not ready, no new logins"
                                               : "drain grace over: ending every client stream");
    send_ctl(c2s(), CTL_DRAIN, c2s_drain());
}

/* Are all processes up? Else why not, into why. */
static bool healthy(struct buf *why)
{
    bool ok = true;
    for (int i = 0; i < NKIDS; i++) {
        const struct child *c = &S.kids[i];
        if (c->state == CH_RUNNING && c->ready)
            continue;
        ok = false;
        buf_puts(why, c->name);
        buf_puts(why, c->state == CH_RUNNING ? " is starting\n" : " is down\n");
    }
    if (S.stopping) {
        ok = false;
        buf_puts(why, "stopping\n");
    }
    return ok;
}

/* /ready: serving, not draining, and the store reachable (as the router last said). */
static bool ready(struct buf *why)
{
    bool ok = healthy(why);
    if (S.drain != CTL_DRAIN_OFF) {
        ok = false;
        buf_puts(why, "draining\n");
    }
    if (S.store_lost) {
        ok = false;
        buf_puts(why, "storage unreachable\n");
    }
    return ok;
}

static int answer(void *arg, const char *path, size_t len, struct buf *body, const char **type)
{
    (void)arg;
    struct buf why = {0};
    int status = 404;
    bool ok;
    if (len == 7 && !memcmp(path, "/health", 7)) {
        ok = healthy(&why);
        status = ok ? 200 : 503;
        buf_puts(body, ok ? "ok\n" : "");
    } else if (len == 6 && !memcmp(path, "/ready", 6)) {
        ok = ready(&why);
        status = ok ? 200 : 503;
        buf_puts(body, ok ? "ready\n" : "");
    } else if (len == 8 && !memcmp(path, "/metrics", 8)) {
        struct metrics_node n = {.seg = &S.seg, .cfg = S.cfg, .draining = S.drain != CTL_DRAIN_OFF};
        for (int i = 0; i < NKIDS; i++) {
            n.proc[i] = S.kids[i].name;
            n.up[i] = S.kids[i].state == CH_RUNNING && S.kids[i].ready;
        }
        n.ready = ready(&why);
        buf_free(&why);
        status = metrics_write(body, &n) < 0 ? 500 : 200;
        *type = METRICS_CONTENT_TYPE;
    } else {
        buf_puts(body, "not found: /health, /ready and /metrics are\n");
    }
    if (status == 503)
        buf_append(body, buf_data(&why), buf_used(&why));
    buf_free(&why);
    return status;
}

/* admin.pid_file, when set: our pid, for starlingctl drain. 0 or -errno. */
static int write_pid(const char *path)
{
    if (!path[0])
        return 0;
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0)
        return -errno;
    S.wrote_pid = true;
    return 0;
}

static void find_bins(const char *argv0)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(self, sizeof self, "%s", argv0);
        n = (ssize_t)strlen(self);
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        slash[1] = '\0';
    else
        self[0] = '\0';
    snprintf(router()->bin, sizeof router()->bin, "%sstarling-router", self);
    snprintf(c2s()->bin, sizeof c2s()->bin, "%sstarling-c2s", self);
    snprintf(s2s()->bin, sizeof s2s()->bin, "%sstarling-s2s", self);
}

/*
 * Every process and thread of the node runs under SCHED_BATCH, set here once and inherited
 * through fork, exec and pthread_create. A stanza crosses threads (c2s, shard, c2s, and a
 * store thread at login), each waking the next; under SCHED_OTHER the woken thread
 * preempts its waker, which had only a few microseconds left before it went to sleep by
 * itself, and both pay for the extra switch. SCHED_BATCH only drops that wake-up
 * preemption (and sched_yield() semantics, unused here): time slices and nice are as
 * before. Measured on 2 cores (bench/RESULTS.md, "Scheduling"): a third less CPU per
 * message at 2,000 msgs/s and a fifth less per login. Failing to set it costs only speed.
 */
static void sched_batch(void)
{
    /* Each thread of ours, not just this one: jemalloc's background thread is older
     * than main(). */
    struct sched_param p = {0};
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.' && sched_setscheduler(atoi(e->d_name), SCHED_BATCH, &p) < 0)
            LOG_WARN("SCHED_BATCH: %s; running under the default policy", strerror(errno));
    if (d)
        closedir(d);
}

int main(int argc, char **argv)
{
    char err[512];

    /* --check (like nginx -t): load the config as a start would, report, start nothing.
     * Deployment checks and `ExecStartPre=` run it. */
    bool check = argc == 4 && !strcmp(argv[1], "--check");
    if (argc != 3 + check || strcmp(argv[1 + check], "--config") != 0) {
        fprintf(stderr, "usage: %s [--check] --config FILE\n", argv[0]);
        return 2;
    }
    S.config_path = argv[2 + check];
    if (config_load(S.config_path, &S.cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starling: %s\n", err);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", S.config_path);
        config_free(S.cfg);
        return 0;
    }
    log_init("starling", (enum log_level)S.cfg->log.level);
    find_bins(argv[0]);
    sched_batch();

    struct seg_layout l;
    int rc = topo_plan(S.cfg, &l);
    if (rc == 0)
        rc = seg_create(&S.seg, "starling", &l);
    if (rc < 0) {
        LOG_ERROR("cannot create the shared-memory segment: %s", strerror(-rc));
        return 1;
    }
    S.nbells = l.n_bells;
    S.bell_fds = calloc(S.nbells, sizeof *S.bell_fds);
    for (unsigned i = 0; S.bell_fds && i < S.nbells; i++)
        if ((S.bell_fds[i] = bell_eventfd()) < 0) {
            LOG_ERROR("eventfd: %s", strerror(-S.bell_fds[i]));
            return 1;
        }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGUSR2);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);

    if ((rc = admin_open(&S.admin, S.cfg, answer, NULL)) < 0) {
        LOG_ERROR("admin.listen %s: %s", S.cfg->admin.listen.text, strerror(-rc));
        return 1;
    }
    if (S.admin.lfd >= 0)
        LOG_INFO("admin listener on %s: /health /ready /metrics", S.cfg->admin.listen.text);
    if ((rc = write_pid(S.cfg->admin.pid_file)) < 0) {
        LOG_ERROR("admin.pid_file %s: %s", S.cfg->admin.pid_file, strerror(-rc));
        return 1;
    }
    unsigned nfds = 1 + NKIDS + admin_nfds(&S.admin);
    struct pollfd *pf = calloc(nfds, sizeof *pf);
    if (!pf)
        return 1;

    router()->name = "router";
    router()->role = CTL_ROLE_ROUTER;
    c2s()->name = "c2s";
    c2s()->role = CTL_ROLE_C2S;
    s2s()->name = "s2s";
    s2s()->role = CTL_ROLE_S2S;
    for (int i = 0; i < NKIDS; i++) {
        S.kids[i].ctl = -1;
        S.kids[i].state = CH_DOWN;
        S.kids[i].retry_at = 0;
    }
    LOG_INFO("starling for %s: %u c2s threads, %u s2s threads, %u router shards", S.cfg->domain,
             topo_threads(S.cfg), topo_s2s_threads(S.cfg), topo_shards(S.cfg));

    for (;;) {
        uint64_t now = now_ms();
        int timeout = 1000;
        for (int i = 0; i < NKIDS && !S.stopping; i++) {
            struct child *c = &S.kids[i];
            if (c->state == CH_DOWN) {
                if (now >= c->retry_at) {
                    if (spawn(c) < 0)
                        schedule_start(c);
                } else if ((int)(c->retry_at - now) < timeout) {
                    timeout = (int)(c->retry_at - now);
                }
            } else if (c->state == CH_WAITING && now >= c->wait_until) {
                for (int k = 0; k < NKIDS; k++) {
                    struct child *p = &S.kids[k];
                    if (!peers(c, p) || p->pid <= 0)
                        continue;
                    LOG_ERROR("%s did not reset its rings in time; restarting it too", p->name);
                    kill(p->pid, SIGKILL);
                }
                c->wait_until = now + RESET_TIMEOUT_MS;
            }
        }
        if (S.drain == CTL_DRAIN_LOGINS && !S.stopping) {
            if (now >= S.drain_until)
                drain_set(CTL_DRAIN_ALL);
            else if (S.drain_until - now < (uint64_t)timeout)
                timeout = (int)(S.drain_until - now);
        }
        int at = admin_timeout(&S.admin, now);
        if (at >= 0 && at < timeout)
            timeout = at;
        if (S.stopping) {
            bool fronts = c2s()->state == CH_RUNNING || s2s()->state == CH_RUNNING;
            if (!fronts && router()->state == CH_RUNNING)
                send_ctl(router(), CTL_SHUTDOWN, 0);
            if (!fronts && router()->state != CH_RUNNING)
                break;
            if (now >= S.stop_deadline)
                for (int i = 0; i < NKIDS; i++)
                    if (S.kids[i].pid > 0)
                        kill(S.kids[i].pid, SIGKILL);
            timeout = 100;
        }

        pf[0] = (struct pollfd){sfd, POLLIN, 0};
        for (int i = 0; i < NKIDS; i++)
            pf[1 + i] = (struct pollfd){S.kids[i].ctl, POLLIN, 0};
        admin_fill(&S.admin, pf + 1 + NKIDS);
        if (poll(pf, nfds, timeout) < 0) {
            if (errno != EINTR)
                break;
            for (unsigned i = 0; i < nfds; i++)
                pf[i].revents = 0;
        }
        if (pf[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD)
                    reap();
                else if (si.ssi_signo == SIGHUP)
                    reload();
                else if (si.ssi_signo == SIGUSR1)
                    drain_set(S.drain == CTL_DRAIN_OFF ? CTL_DRAIN_LOGINS : S.drain);
                else if (si.ssi_signo == SIGUSR2)
                    drain_set(CTL_DRAIN_OFF);
                else
                    begin_stop();
            }
        }
        for (int i = 0; i < NKIDS; i++)
            if (pf[1 + i].revents & POLLIN)
                on_message(&S.kids[i]);
        admin_serve(&S.admin, pf + 1 + NKIDS, now_ms());
        reap();
    }
    LOG_INFO("stopped");
    if (S.wrote_pid)
        unlink(S.cfg->admin.pid_file);
    admin_close(&S.admin);
    free(pf);
    seg_close(&S.seg);
    config_free(S.cfg);
    return S.exit_code;
}
