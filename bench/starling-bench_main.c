/*
 * starling-bench: a load generator for any XMPP server (see `starling-bench --help`).
 *
 * This file is the control thread: it parses the command line, starts the workers
 * (load.h), moves the run through its phases (ramp, roster set-up, measured, drain,
 * quit), samples every second the counters, its own CPU (getrusage) and the server's
 * (proc.h), prints a progress line on stderr, and at the end the summary on stdout and
 * the JSON file (result.h). It does no network I/O itself.
 */
#include "bench/load.h"
#include "bench/proc.h"
#include "bench/result.h"
#include "common/auth/tls.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 100000000ull /* the control loop looks at the workers ten times a second */
/* Roster set-up: how long subscriptions may take, and how long without progress means
 * the server will not answer more (Prosody across s2s, which rewrites a roster file per
 * change, takes tens of seconds before the first of 500 subscriptions to one user is approved). */
#define SETUP_MAX_S   300.0
#define SETUP_QUIET_S 60.0
#define VERIFY_MAX_S  10.0

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double cpu_self(double *user, double *sys, long *maxrss_kb)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double u = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    if (user)
        *user = u;
    if (sys)
        *sys = s;
    if (maxrss_kb)
        *maxrss_kb = ru.ru_maxrss;
    return u + s;
}

/* Replaces %u, %p, %d (and %%) of the --adduser template for account number n. */
static int adduser_cmd(const struct opts *o, uint32_t n, char *out, size_t cap)
{
    char user[512], pw[512], num[16];
    opts_expand(o->user, n, user, sizeof user);
    opts_expand(o->password, n, pw, sizeof pw);
    snprintf(num, sizeof num, "%u", n);
    size_t k = 0;
    for (const char *p = o->adduser; *p; p++) {
        const char *ins = NULL;
        char one[2] = {*p, '\0'};
        if (p[0] == '%' && p[1]) {
            ins = p[1] == 'u'   ? user
                  : p[1] == 'p' ? pw
                  : p[1] == 'd' ? num
                  : p[1] == '%' ? "%"
                                : NULL;
            if (ins)
                p++;
        }
        if (!ins)
            ins = one;
        size_t l = strlen(ins);
        if (k + l >= cap)
            return -ENOSPC;
        memcpy(out + k, ins, l);
        k += l;
    }
    out[k] = '\0';
    return 0;
}

/* Creates the accounts with the user's command, one at a time; failures (an account that
 * exists) are counted, not fatal. */
static void adduser(const struct opts *o)
{
    uint32_t n = o->users > o->clients ? o->users : o->clients, failed = 0;
    char cmd[4096];
    fprintf(stderr, "starling-bench: creating %u accounts with: %s\n", n, o->adduser);
    for (uint32_t i = 0; i < n && !interrupted; i++) {
        if (adduser_cmd(o, o->first + i, cmd, sizeof cmd) < 0) {
            failed++;
            continue;
        }
        int st = system(cmd);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
        if ((i + 1) % 1000 == 0)
            fprintf(stderr, "starling-bench: %u accounts done\n", i + 1);
    }
    fprintf(stderr,
            "starling-bench: %u accounts, %u commands failed (existing accounts fail "
            "with most tools)\n",
            n, failed);
}

/* Open files for every connection, and some: raise the soft limit to the hard one. */
static void raise_nofile(const struct opts *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)o->clients + 64)
        fprintf(stderr,
                "starling-bench: warning: %u clients but only %ju open files allowed "
                "(ulimit -n)\n",
                o->clients, (uintmax_t)rl.rlim_cur);
}

/* Failures that end a login (not a drop later, not a skipped stanza). */
static uint64_t login_failures(const uint64_t *v)
{
    uint64_t n = v[ST_ERR_CONNECT] + v[ST_ERR_IO] + v[ST_ERR_TIMEOUT] + v[ST_ERR_TLS];
    for (unsigned f = XMPPC_FAIL_NONE + 1; f < XMPPC_FAIL_COUNT; f++)
        n += v[ST_ERR_XMPP + f];
    return n;
}

static uint64_t errors(const uint64_t *v)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < ST_COUNT; i++)
        if (stats_is_error((enum stats_id)i))
            n += v[i];
    return n;
}

/* Users that change presence, and the mutual contacts each should have. */
static uint64_t presence_users(const struct opts *o)
{
    if (o->scenario == OPTS_PRESENCE)
        return o->clients;
    if (o->scenario != OPTS_MIXED)
        return 0;
    uint64_t n = 0;
    for (uint32_t p = 0; p < o->clients / 2; p++)
        n += scen_mix_kind(p, o->mix) == OPTS_MIX_PRESENCE ? 2 : 0;
    return n;
}

static const char *const phase_names[] = {"ramp", "setup", "verify", "go", "drain", "quit"};

struct ctl {
    struct opts *o;
    struct load_run run;
    struct result res;
    uint64_t t0;
    uint64_t v[ST_COUNT];
    double srv_cpu;
    struct result_sec last; /* the previous second, for the progress line's rates */
};

static void sample(struct ctl *c)
{
    stats_sum(c->v, &c->run.workers[0].st, c->run.nworkers, sizeof c->run.workers[0]);
    if (c->res.have_server) {
        struct proc_sample ps;
        if (proc_sample(c->o->pids, c->o->npids, &ps) == 0) {
            c->srv_cpu = ps.cpu;
            c->res.srv_procs = ps.nprocs;
        }
    }
}

static void second(struct ctl *c, double t, unsigned phase)
{
    struct result_sec s = {.t = t, .phase = phase};
    memcpy(s.v, c->v, sizeof s.v);
    s.gen_cpu = cpu_self(NULL, NULL, NULL);
    s.srv_cpu = c->srv_cpu;
    result_add_sec(&c->res, &s);
    const struct result_sec *p = &c->last;
    double dt = t - p->t > 0 ? t - p->t : 1;
#define R(k) ((double)(s.v[k] - p->v[k]) / dt)
    if (!c->o->quiet) {
        fprintf(stderr,
                "[%6.1fs] %-6s online %" PRIu64 "/%u  sent %.0f/s  recv %.0f/s  logins %.0f/s  "
                "presence %.0f/s  errors %" PRIu64 "  cpu %.0f%%",
                t, phase_names[phase], s.v[ST_ONLINE], c->o->clients, R(ST_MSG_SENT),
                R(c->o->scenario == OPTS_MUC ? ST_MUC_RECV : ST_MSG_RECV), R(ST_LOGINS),
                R(ST_PRES_RECV), errors(s.v), 100 * (s.gen_cpu - p->gen_cpu) / dt);
        if (c->res.have_server)
            fprintf(stderr, "  server cpu %.0f%%", 100 * (s.srv_cpu - p->srv_cpu) / dt);
        fputc('\n', stderr);
    }
#undef R
    c->last = s;
}

static void server_memory(struct ctl *c, uint64_t *rss, uint64_t *anon)
{
    struct proc_sample ps;
    if (c->res.have_server && proc_sample(c->o->pids, c->o->npids, &ps) == 0) {
        *rss = ps.rss;
        *anon = ps.rss_anon;
    }
}

/* The control loop: returns when the workers have exited. */
static void control(struct ctl *c)
{
    const struct opts *o = c->o;
    struct result *r = &c->res;
    enum load_phase ph = LOAD_RAMP;
    double t_phase = 0, t_progress = 0, next_sec = 1;
    uint64_t progress = 0, rosters0 = 0, both0 = 0, pusers = presence_users(o);
    if (o->scenario == OPTS_LOGIN) {
        /* Logins are what is measured: from the first connect on. */
        ph = LOAD_GO;
        r->gen_cpu_go = c->last.gen_cpu;
        r->srv_cpu_go = c->last.srv_cpu;
        load_set_phase(&c->run, ph);
    }
    for (uint64_t tick = 1;; tick++) {
        struct timespec ts = {.tv_sec = (time_t)((c->t0 + tick * TICK_NS) / 1000000000ull),
                              .tv_nsec = (long)((c->t0 + tick * TICK_NS) % 1000000000ull)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        double now = (double)(load_clock() - c->t0) / 1e9;
        bool full_second = now >= next_sec;
        /* Counters every tick; the server's /proc only once a second (and at phase
         * changes): scanning /proc costs about a millisecond, which would otherwise be
         * charged to the generator's CPU per message at low rates. */
        if (full_second)
            sample(c);
        else
            stats_sum(c->v, &c->run.workers[0].st, c->run.nworkers, sizeof c->run.workers[0]);
        const uint64_t *v = c->v;
        enum load_phase next = ph;

        switch (ph) {
        case LOAD_RAMP: {
            uint64_t settled = v[ST_ONLINE] + login_failures(v);
            if (settled != progress) {
                progress = settled;
                t_progress = now;
            }
            bool stalled = now - t_progress > o->timeout + 5;
            if (settled >= o->clients || stalled || interrupted) {
                r->t_up = now;
                r->online_loaded = v[ST_ONLINE];
                fprintf(stderr,
                        "starling-bench: %" PRIu64 " of %u clients online after %.2f s "
                        "(%" PRIu64 " failed)%s\n",
                        v[ST_ONLINE], o->clients, now, login_failures(v),
                        stalled ? ", the rest stalled" : "");
                bool setup =
                    o->scenario == OPTS_MUC || (pusers && o->roster_setup >= 0 &&
                                                (o->roster_setup > 0 || v[ST_NEED_SETUP] > 0));
                if (pusers) {
                    /* The rosters fetched at login tell whether contacts are in place. */
                    r->roster_checked = true;
                    r->roster_users = v[ST_ROSTERS];
                    r->roster_found = v[ST_ROSTER_BOTH];
                    r->roster_expected = pusers;
                    if (o->scenario == OPTS_PRESENCE) {
                        r->roster_expected = 0;
                        for (uint32_t i = 0; i < o->clients; i++)
                            r->roster_expected += scen_ncontacts(o, i);
                    }
                }
                next = setup ? LOAD_SETUP : LOAD_GO;
            }
            break;
        }
        case LOAD_SETUP:
            if (o->scenario == OPTS_MUC) {
                /* The creator's join and the room's configuration, within a login's time. */
                if (v[ST_MUC_READY] || v[ST_MUC_REFUSED] || now - t_phase > o->timeout ||
                    interrupted) {
                    fprintf(stderr, "starling-bench: room %s: %s\n", o->room,
                            v[ST_MUC_READY]     ? "ready"
                            : v[ST_MUC_REFUSED] ? "join refused"
                                                : "no answer");
                    next = v[ST_MUC_READY] ? LOAD_VERIFY : LOAD_STOP; /* nothing to measure */
                }
                break;
            }
            if (v[ST_SUB_ACKED] != progress) {
                progress = v[ST_SUB_ACKED];
                t_progress = now;
            }
            if ((now - t_phase > 0.5 && v[ST_SUB_ACKED] >= v[ST_SUB_SENT]) ||
                now - t_progress > SETUP_QUIET_S || now - t_phase > SETUP_MAX_S || interrupted) {
                fprintf(stderr,
                        "starling-bench: roster set-up: %" PRIu64 " subscriptions asked, %" PRIu64
                        " approved\n",
                        v[ST_SUB_SENT], v[ST_SUB_ACKED]);
                rosters0 = v[ST_ROSTERS];
                both0 = v[ST_ROSTER_BOTH];
                next = LOAD_VERIFY;
            }
            break;
        case LOAD_VERIFY:
            if (o->scenario == OPTS_MUC) {
                /* Everybody joins; a room that broadcasts every occupant's presence
                 * costs N*N/2 stanzas to fill: wait while joins keep completing. */
                uint64_t settled = v[ST_MUC_JOINED] + v[ST_MUC_REFUSED];
                if (settled != progress) {
                    progress = settled;
                    t_progress = now;
                }
                if (settled >= v[ST_ONLINE] || now - t_progress > o->timeout ||
                    now - t_phase > SETUP_MAX_S || interrupted) {
                    fprintf(stderr,
                            "starling-bench: %" PRIu64 " of %" PRIu64 " online joined %s after "
                            "%.2f s (%" PRIu64 " refused)\n",
                            v[ST_MUC_JOINED], v[ST_ONLINE], o->room, now - t_phase,
                            v[ST_MUC_REFUSED]);
                    next = LOAD_GO;
                }
                break;
            }
            if (v[ST_ROSTERS] - rosters0 >= v[ST_ONLINE] * pusers / o->clients ||
                now - t_phase > VERIFY_MAX_S || interrupted) {
                r->roster_users = v[ST_ROSTERS] - rosters0;
                r->roster_found = v[ST_ROSTER_BOTH] - both0;
                fprintf(stderr,
                        "starling-bench: rosters: %" PRIu64 " mutual contacts of %" PRIu64
                        " asked for\n",
                        r->roster_found, r->roster_expected);
                next = LOAD_GO;
            }
            break;
        case LOAD_GO: {
            uint64_t done = o->scenario == OPTS_LOGIN      ? v[ST_LOGINS]
                            : o->scenario == OPTS_PRESENCE ? v[ST_PRES_SENT]
                                                           : v[ST_MSG_SENT];
            if (now - r->t_go >= o->duration || (o->count && done >= o->count) || interrupted ||
                (o->scenario != OPTS_LOGIN && v[ST_ONLINE] == 0)) {
                if (o->scenario != OPTS_LOGIN) {
                    /* Memory with every client still online, after the measured period. */
                    r->online_loaded = v[ST_ONLINE];
                    server_memory(c, &r->srv_rss_loaded, &r->srv_anon_loaded);
                }
                next = LOAD_STOP;
            }
            break;
        }
        case LOAD_STOP: {
            bool drained = v[ST_MSG_SENT] <= v[ST_MSG_RECV] + v[ST_MSG_BOUNCED] &&
                           v[ST_PRES_EXPECT] <= v[ST_PRES_RECV] &&
                           v[ST_MUC_EXPECT] <= v[ST_MUC_RECV];
            if (drained || now - r->t_stop >= o->drain || o->scenario == OPTS_LOGIN ||
                o->scenario == OPTS_IDLE || interrupted > 1)
                next = LOAD_QUIT;
            break;
        }
        default:
            break;
        }

        if (next != ph) {
            if (next == LOAD_GO || (next == LOAD_STOP && ph < LOAD_GO)) {
                sample(c);
                r->t_go = now;
                memcpy(r->go, v, sizeof r->go);
                r->gen_cpu_go = cpu_self(NULL, NULL, NULL);
                r->srv_cpu_go = c->srv_cpu;
            } else if (next == LOAD_STOP) {
                r->t_stop = now;
            } else if (next == LOAD_QUIT) {
                sample(c);
                r->t_end = now;
                memcpy(r->end, c->v, sizeof r->end);
                r->gen_cpu_end = cpu_self(NULL, NULL, NULL);
                r->srv_cpu_end = c->srv_cpu;
            }
            ph = next;
            t_phase = now;
            progress = 0;
            t_progress = now;
            load_set_phase(&c->run, ph);
        }
        if (full_second || ph == LOAD_QUIT) {
            second(c, now, ph);
            while (next_sec <= now)
                next_sec += 1;
        }
        if (ph == LOAD_QUIT)
            break;
    }
    load_join(&c->run);
}

int main(int argc, char **argv)
{
    static struct ctl c;
    static struct opts o;
    char err[512];
    int rc = opts_parse(&o, argc, argv, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "starling-bench: %s (see --help)\n", err);
        return 2;
    }
    c.o = &o;
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(&o);
    if (o.mech == SASLC_PLAIN && o.tls == XMPPC_TLS_NONE)
        fprintf(stderr, "starling-bench: note: PLAIN without TLS sends passwords in clear "
                        "(the server must allow it)\n");
    if (o.adduser)
        adduser(&o);

    struct load_run *run = &c.run;
    run->o = &o;
    bool rosters = o.scenario == OPTS_PRESENCE || o.scenario == OPTS_MIXED;
    run->xcfg = (struct xmppc_config){.domain = o.domain,
                                      .resource = o.resource,
                                      .tls = o.tls,
                                      .mech = o.mech,
                                      .roster = rosters,
                                      .accept_subs = rosters,
                                      .sm = o.scenario == OPTS_SM,
                                      .ack_every = o.ack_every};
    run->xcfg_peer = run->xcfg;
    if (o.peer_domain)
        run->xcfg_peer.domain = o.peer_domain;
    if (o.tls != XMPPC_TLS_NONE) {
        /* XEP-0368 asks Direct TLS clients for ALPN "xmpp-client"; STARTTLS needs none. */
        struct tls_opts to = {.alpn = o.tls == XMPPC_TLS_DIRECT ? "xmpp-client" : NULL};
        run->tls = tls_ctx_new_client(&to, err, sizeof err);
        if (!run->tls) {
            fprintf(stderr, "starling-bench: TLS: %s\n", err);
            return 2;
        }
    }
    run->nkeys = o.users > o.clients ? o.users : o.clients;
    run->keys = calloc(run->nkeys, sizeof *run->keys);
    if (!run->keys) {
        fprintf(stderr, "starling-bench: out of memory\n");
        return 2;
    }

    struct result *r = &c.res;
    r->o = &o;
    r->started = time(NULL);
    hist_init(&r->msg);
    hist_init(&r->pres);
    hist_init(&r->login);
    if (o.npids) {
        struct proc_sample ps;
        if (proc_sample(o.pids, o.npids, &ps) < 0) {
            fprintf(stderr, "starling-bench: --server-pid: no such process\n");
            return 2;
        }
        r->have_server = true;
        r->srv_rss_before = ps.rss;
        r->srv_anon_before = ps.rss_anon;
        r->srv_procs = ps.nprocs;
        c.srv_cpu = ps.cpu;
    }
    if ((rc = load_init(run)) < 0) {
        fprintf(stderr, "starling-bench: %s\n", strerror(-rc));
        return 2;
    }
    c.t0 = load_clock();
    c.last.gen_cpu = cpu_self(NULL, NULL, NULL);
    c.last.srv_cpu = c.srv_cpu;
    c.res.gen_cpu0 = c.last.gen_cpu;
    c.res.srv_cpu0 = c.srv_cpu;
    if ((rc = load_start(run)) < 0) {
        fprintf(stderr, "starling-bench: io_uring: %s\n", strerror(-rc));
        load_set_phase(run, LOAD_QUIT);
        load_join(run);
        return 2;
    }
    control(&c);

    for (unsigned k = 0; k < run->nworkers; k++) {
        hist_merge(&r->msg, &run->workers[k].h_msg);
        hist_merge(&r->pres, &run->workers[k].h_pres);
        hist_merge(&r->login, &run->workers[k].h_login);
        if (run->workers[k].err)
            fprintf(stderr, "starling-bench: worker %u: %s\n", k, strerror(-run->workers[k].err));
    }
    stats_sum(r->totals, &run->workers[0].st, run->nworkers, sizeof run->workers[0]);
    cpu_self(&r->gen_user, &r->gen_sys, &r->gen_maxrss_kb);
    result_judge(r);
    result_print(r, stdout);
    fflush(stdout);
    int status = r->exit_status;
    if (o.json && (rc = result_write_json(r, o.json)) < 0) {
        fprintf(stderr, "starling-bench: %s: %s\n", o.json, strerror(-rc));
        status = 2;
    }
    result_free(r);
    load_free(run);
    free(run->keys);
    tls_ctx_free(run->tls);
    return status;
}
