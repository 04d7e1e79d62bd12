#include "bench/result.h"
#include "bench/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const double pcts[] = {1,    10,   25,    50,    75,     90,     95, 99,
                              99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100};

bool result_add_sec(struct result *r, const struct result_sec *s)
{
    if (r->nsecs == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 256;
        struct result_sec *t = realloc(r->secs, nc * sizeof *t);
        if (!t)
            return false;
        r->secs = t;
        r->cap = nc;
    }
    r->secs[r->nsecs++] = *s;
    return true;
}

void result_free(struct result *r)
{
    free(r->secs);
    r->secs = NULL;
    r->nsecs = r->cap = 0;
}

static void problem(struct result *r, const char *fmt, ...)
{
    if (r->nproblems == sizeof r->problems / sizeof r->problems[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->problems[r->nproblems++], sizeof r->problems[0], fmt, ap);
    va_end(ap);
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Stanzas the run was about, for CPU per unit: "message", "presence delivery", "login". */
static const char *unit_of(const struct opts *o)
{
    switch (o->scenario) {
    case OPTS_CHAT:
    case OPTS_SM:
        return "message";
    case OPTS_MUC:
        return "groupchat delivery";
    case OPTS_PRESENCE:
        return "presence delivery";
    case OPTS_LOGIN:
        return "login";
    case OPTS_MIXED:
        return "stanza delivered";
    default:
        return NULL;
    }
}

static uint64_t units(const struct result *r)
{
    const uint64_t *a = r->go, *b = r->end;
    switch (r->o->scenario) {
    case OPTS_CHAT:
    case OPTS_SM:
        return b[ST_MSG_RECV] - a[ST_MSG_RECV];
    case OPTS_MUC:
        return b[ST_MUC_RECV] - a[ST_MUC_RECV];
    case OPTS_PRESENCE:
        return b[ST_PRES_RECV] - a[ST_PRES_RECV];
    case OPTS_LOGIN:
        return b[ST_LOGINS] - a[ST_LOGINS];
    case OPTS_MIXED:
        return b[ST_MSG_RECV] - a[ST_MSG_RECV] + b[ST_PRES_RECV] - a[ST_PRES_RECV];
    default:
        return 0;
    }
}

void result_judge(struct result *r)
{
    const struct opts *o = r->o;
    const uint64_t *t = r->totals;
    bool no_roster = false, no_feature = false;
    uint64_t errors = 0;
    char which[160] = "";
    for (unsigned i = 0; i < ST_COUNT; i++) {
        if (!stats_is_error((enum stats_id)i) || !t[i])
            continue;
        errors += t[i];
        size_t l = strlen(which);
        snprintf(which + l, sizeof which - l, "%s%s %" PRIu64, l ? ", " : "",
                 stats_name((enum stats_id)i), t[i]);
    }
    if (errors)
        problem(r, "%" PRIu64 " errors (%s)", errors, which);
    uint64_t lost = sub0(t[ST_MSG_SENT], t[ST_MSG_RECV] + t[ST_MSG_BOUNCED]);
    if (t[ST_MSG_BOUNCED])
        problem(r, "%" PRIu64 " messages bounced by the server", t[ST_MSG_BOUNCED]);
    if (lost)
        problem(r, "%" PRIu64 " messages lost", lost);
    uint64_t plost = sub0(t[ST_PRES_EXPECT], t[ST_PRES_RECV]);
    if (r->roster_checked && r->roster_users && !r->roster_found) {
        no_roster = true;
        problem(r,
                "the server established no subscription: %" PRIu64 " rosters hold none of "
                "the %" PRIu64 " mutual contacts asked for (roster support missing?)",
                r->roster_users, r->roster_expected);
    }
    if (plost)
        problem(r, "%" PRIu64 " of %" PRIu64 " presence deliveries lost", plost, t[ST_PRES_EXPECT]);
    uint64_t glost = sub0(t[ST_MUC_EXPECT], t[ST_MUC_RECV]);
    if (glost)
        problem(r, "%" PRIu64 " of %" PRIu64 " groupchat deliveries lost", glost, t[ST_MUC_EXPECT]);
    if (o->scenario == OPTS_MUC && (!t[ST_MUC_READY] || t[ST_MUC_REFUSED])) {
        no_feature = !t[ST_MUC_READY];
        problem(r, "%s: %" PRIu64 " joins refused%s", o->room, t[ST_MUC_REFUSED],
                t[ST_MUC_READY] ? "" : ", the room never opened (no MUC service there?)");
    }
    if (t[ST_ERR_XMPP + XMPPC_FAIL_UNSUPPORTED]) {
        no_feature = true;
        problem(r, "the server lacks what the scenario needs (stream management)");
    }
    switch (o->scenario) {
    case OPTS_CHAT:
    case OPTS_SM:
        if (!t[ST_MSG_RECV])
            problem(r, "no message was delivered");
        break;
    case OPTS_MUC:
        if (!t[ST_MUC_RECV])
            problem(r, "no groupchat message was delivered");
        break;
    case OPTS_PRESENCE:
        if (!t[ST_PRES_RECV])
            problem(r, "no presence change was delivered");
        break;
    case OPTS_LOGIN:
        if (!t[ST_LOGINS])
            problem(r, "no login completed");
        break;
    case OPTS_IDLE:
        if (r->online_loaded < o->clients)
            problem(r, "only %" PRIu64 " of %u clients were online", r->online_loaded, o->clients);
        break;
    case OPTS_MIXED:
        if (!t[ST_MSG_RECV] && o->mix[OPTS_MIX_CHAT])
            problem(r, "no message was delivered");
        break;
    }
    r->exit_status = no_roster || no_feature ? 3 : r->nproblems ? 1 : 0;
}

/* 1234567 -> "1,234,567" (one of eight rotating buffers, for use in one printf). */
static const char *n3(uint64_t v)
{
    static char bufs[8][32];
    static unsigned k;
    char *b = bufs[k++ % 8], tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0)
            b[o++] = ',';
        b[o++] = tmp[i];
    }
    b[o] = '\0';
    return b;
}

static void print_lat(FILE *f, const char *what, const struct hist *h, double div, const char *unit)
{
    if (!h->count)
        return;
    fprintf(f,
            "  %s latency (%s): p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  "
            "mean %.1f  (%s samples)\n",
            what, unit, hist_percentile(h, 50) / div, hist_percentile(h, 90) / div,
            hist_percentile(h, 99) / div, hist_percentile(h, 99.9) / div, h->max / div,
            hist_mean(h) / div, n3(h->count));
}

static const char *tls_name(enum xmppc_tls t)
{
    return t == XMPPC_TLS_STARTTLS ? "starttls" : t == XMPPC_TLS_DIRECT ? "direct" : "none";
}

void result_print(const struct result *r, FILE *f)
{
    const struct opts *o = r->o;
    const uint64_t *t = r->totals, *a = r->go, *b = r->end;
    double secs = r->t_stop - r->t_go;
    char when[64];
    struct tm tm;
    gmtime_r(&r->started, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(f, "starling-bench %s against %s (%s:%u, %s), %s\n", opts_scenario_name(o->scenario),
            o->label, o->host, o->port, o->domain, when);
    fprintf(f, "  clients %s, threads %u, tls %s, %s", n3(o->clients), o->threads, tls_name(o->tls),
            saslc_mech_name(o->mech));
    if (opts_pairs_chat(o) || o->scenario == OPTS_MIXED || o->scenario == OPTS_MUC) {
        if (o->rate > 0)
            fprintf(f, ", open loop %s msgs/s", n3((uint64_t)o->rate));
        else
            fprintf(f, ", window %u", o->window);
        fprintf(f, ", body %u B", o->body);
    }
    if (o->scenario == OPTS_MUC)
        fprintf(f, ", room %s, %u senders, presence of %s broadcast", o->room, o->senders,
                o->broadcast ? o->broadcast : "all roles");
    if (o->scenario == OPTS_SM)
        fprintf(f, ", XEP-0198 with an <r/> every %u stanzas", o->ack_every);
    if (o->scenario == OPTS_PRESENCE)
    {
        if (o->hub)
            fprintf(f, ", user 1 the hub of all contacts");
        else
            fprintf(f, ", %u contacts", o->contacts);
        fprintf(f, ", %.0f changes/s", o->presence_rate);
    }
    fprintf(f, "\n");
    if (o->scenario != OPTS_LOGIN)
        fprintf(f, "  online: %s of %u after %.2f s\n", n3(r->online_loaded), o->clients, r->t_up);
    fprintf(f, "  measured %.2f s", secs);
    if (r->t_end > r->t_stop)
        fprintf(f, " (+%.2f s draining)", r->t_end - r->t_stop);
    fprintf(f, "\n");
    uint64_t logins = b[ST_LOGINS] - a[ST_LOGINS];
    if (o->scenario == OPTS_LOGIN || (o->scenario == OPTS_MIXED && logins))
        fprintf(f, "  logins: %s (%.1f/s)\n", n3(logins), secs > 0 ? logins / secs : 0);
    if (t[ST_MSG_SENT]) {
        uint64_t recv = b[ST_MSG_RECV] - a[ST_MSG_RECV];
        fprintf(f,
                "  messages: %s sent, %s received (%.0f/s), %s bounced, %s lost, %s late, "
                "%s skipped\n",
                n3(t[ST_MSG_SENT]), n3(t[ST_MSG_RECV]), secs > 0 ? recv / secs : 0,
                n3(t[ST_MSG_BOUNCED]), n3(sub0(t[ST_MSG_SENT], t[ST_MSG_RECV] + t[ST_MSG_BOUNCED])),
                n3(t[ST_MSG_LATE]), n3(t[ST_MSG_SKIPPED]));
    }
    if (o->scenario == OPTS_MUC)
        fprintf(f, "  groupchat: %s occupants joined, %s of %s deliveries (%.0f/s), %s lost\n",
                n3(t[ST_MUC_JOINED]), n3(t[ST_MUC_RECV]), n3(t[ST_MUC_EXPECT]),
                secs > 0 ? (b[ST_MUC_RECV] - a[ST_MUC_RECV]) / secs : 0,
                n3(sub0(t[ST_MUC_EXPECT], t[ST_MUC_RECV])));
    if (o->scenario == OPTS_SM)
        fprintf(f, "  stream management: %s acks received, %s ack requests answered\n",
                n3(t[ST_SM_ACK_RECV]), n3(t[ST_SM_REQ_RECV]));
    if (t[ST_PRES_SENT])
        fprintf(f, "  presence: %s changes, %s of %s deliveries (%.0f/s)\n", n3(t[ST_PRES_SENT]),
                n3(t[ST_PRES_RECV]), n3(t[ST_PRES_EXPECT]),
                secs > 0 ? (b[ST_PRES_RECV] - a[ST_PRES_RECV]) / secs : 0);
    if (r->roster_checked)
        fprintf(f,
                "  rosters: %s mutual contacts of %s asked for, in %s rosters (roster "
                "requests answered with an error, at login and after set-up: %s)\n",
                n3(r->roster_found), n3(r->roster_expected), n3(r->roster_users),
                n3(t[ST_ROSTER_ERR]));
    print_lat(f, "message", &r->msg, 1000, "us");
    print_lat(f, "presence", &r->pres, 1000, "us");
    print_lat(f, "login", &r->login, 1e6, "ms");
    const char *unit = unit_of(o);
    uint64_t u = units(r);
    double gcpu = r->gen_cpu_end - r->gen_cpu_go;
    fprintf(f, "  generator CPU: %.2f s measured", gcpu);
    if (unit && u)
        fprintf(f, " = %.2f us per %s", gcpu * 1e6 / u, unit);
    fprintf(f, " (whole run: user %.2f s, sys %.2f s; max RSS %ld MiB)\n", r->gen_user, r->gen_sys,
            r->gen_maxrss_kb / 1024);
    if (r->have_server) {
        double scpu = r->srv_cpu_end - r->srv_cpu_go;
        fprintf(f, "  server CPU (%u processes): %.2f s measured", r->srv_procs, scpu);
        if (unit && u)
            fprintf(f, " = %.2f us per %s", scpu * 1e6 / u, unit);
        fprintf(f, "\n");
        if (r->online_loaded) {
            double d = (double)r->srv_rss_loaded - (double)r->srv_rss_before;
            double da = (double)r->srv_anon_loaded - (double)r->srv_anon_before;
            fprintf(f,
                    "  server memory: RSS %.1f -> %.1f MiB with %s online: %.0f B per "
                    "connection (anonymous: %.0f B)\n",
                    r->srv_rss_before / 1048576.0, r->srv_rss_loaded / 1048576.0,
                    n3(r->online_loaded), d / r->online_loaded, da / r->online_loaded);
        }
    }
    if (!r->nproblems)
        fprintf(f, "  result: OK\n");
    for (unsigned i = 0; i < r->nproblems; i++)
        fprintf(f, "  problem: %s\n", r->problems[i]);
}

static void json_hist(struct json *j, const char *key, const struct hist *h)
{
    json_obj(j, key);
    json_str(j, "unit", "us");
    json_u64(j, "count", h->count);
    json_num(j, "min", h->count ? h->min / 1000.0 : 0);
    json_num(j, "mean", hist_mean(h) / 1000.0);
    json_num(j, "max", h->max / 1000.0);
    json_num(j, "p50", hist_percentile(h, 50) / 1000.0);
    json_num(j, "p90", hist_percentile(h, 90) / 1000.0);
    json_num(j, "p99", hist_percentile(h, 99) / 1000.0);
    json_num(j, "p99_9", hist_percentile(h, 99.9) / 1000.0);
    json_num(j, "p99_99", hist_percentile(h, 99.99) / 1000.0);
    json_arr(j, "percentiles", false);
    for (size_t i = 0; h->count && i < sizeof pcts / sizeof pcts[0]; i++) {
        json_arr(j, NULL, true);
        json_num(j, NULL, pcts[i]);
        json_num(j, NULL, hist_percentile(h, pcts[i]) / 1000.0);
        json_end(j);
    }
    json_end(j);
    /* Every non-empty bucket, exact: [lowest ns, highest ns, count]. */
    json_str(j, "bucket_unit", "ns");
    json_arr(j, "buckets", false);
    for (unsigned i = 0; h->count && i < HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        uint64_t lo, hi;
        hist_bucket_range(i, &lo, &hi);
        json_arr(j, NULL, true);
        json_u64(j, NULL, lo);
        json_u64(j, NULL, hi);
        json_u64(j, NULL, h->b[i]);
        json_end(j);
    }
    json_end(j);
    json_end(j);
}

static const char *phase_name(unsigned p)
{
    static const char *const n[] = {"ramp", "setup", "verify", "go", "stop", "quit"};
    return p < sizeof n / sizeof n[0] ? n[p] : "?";
}

static void json_params(struct json *j, const struct opts *o)
{
    json_obj(j, "params");
    json_str(j, "host", o->host);
    json_u64(j, "port", o->port);
    json_str(j, "domain", o->domain);
    json_str(j, "user", o->user);
    json_u64(j, "first", o->first);
    json_u64(j, "clients", o->clients);
    json_u64(j, "users", o->users);
    json_u64(j, "threads", o->threads);
    json_num(j, "duration", o->duration);
    json_u64(j, "count", o->count);
    json_num(j, "rate", o->rate);
    json_u64(j, "window", o->rate > 0 ? 0 : o->window);
    json_u64(j, "body", o->body);
    json_str(j, "tls", tls_name(o->tls));
    json_str(j, "mech", saslc_mech_name(o->mech));
    json_num(j, "ramp", o->ramp);
    json_u64(j, "pending", o->pending);
    json_num(j, "timeout", o->timeout);
    json_num(j, "drain", o->drain);
    json_u64(j, "contacts", o->contacts);
    json_bool(j, "hub", o->hub);
    json_str(j, "peer_host", o->peer_host);
    json_u64(j, "peer_port", o->peer_port);
    json_str(j, "peer_domain", o->peer_domain);
    json_num(j, "presence_rate", o->presence_rate);
    json_i64(j, "roster_setup", o->roster_setup);
    if (o->scenario == OPTS_MUC) {
        json_str(j, "room", o->room);
        json_u64(j, "senders", o->senders);
        json_str(j, "broadcast", o->broadcast ? o->broadcast : "all");
    }
    if (o->scenario == OPTS_SM)
        json_u64(j, "ack_every", o->ack_every);
    if (o->scenario == OPTS_MIXED) {
        json_obj(j, "mix");
        for (unsigned m = 0; m < OPTS_MIX_COUNT; m++)
            json_u64(j, opts_mix_name((enum opts_mix)m), o->mix[m]);
        json_end(j);
        json_num(j, "think", o->think);
    }
    json_u64(j, "sources", o->nsources);
    json_end(j);
}

int result_write_json(const struct result *r, const char *path)
{
    const struct opts *o = r->o;
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    struct json jj, *j = &jj;
    char when[64];
    struct tm tm;
    gmtime_r(&r->started, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const uint64_t *a = r->go, *b = r->end, *t = r->totals;
    double secs = r->t_stop - r->t_go;

    json_init(j, f);
    json_obj(j, NULL);
    json_str(j, "tool", "starling-bench");
    json_u64(j, "version", 1);
    json_str(j, "scenario", opts_scenario_name(o->scenario));
    json_str(j, "label", o->label);
    json_str(j, "started", when);
    json_params(j, o);

    json_obj(j, "phases");
    json_num(j, "ramp_s", r->t_up);
    json_num(j, "setup_s", r->t_go - r->t_up);
    json_num(j, "measured_s", secs);
    json_num(j, "drain_s", r->t_end - r->t_stop);
    json_end(j);

    json_obj(j, "totals");
    for (unsigned i = 0; i < ST_COUNT; i++)
        json_u64(j, stats_name((enum stats_id)i), t[i]);
    json_end(j);

    json_obj(j, "measured");
    json_u64(j, "online", r->online_loaded);
    json_u64(j, "logins", b[ST_LOGINS] - a[ST_LOGINS]);
    json_u64(j, "msg_sent", b[ST_MSG_SENT] - a[ST_MSG_SENT]);
    json_u64(j, "msg_received", b[ST_MSG_RECV] - a[ST_MSG_RECV]);
    json_u64(j, "presence_received", b[ST_PRES_RECV] - a[ST_PRES_RECV]);
    json_num(j, "logins_per_s", secs > 0 ? (b[ST_LOGINS] - a[ST_LOGINS]) / secs : 0);
    json_num(j, "msgs_per_s", secs > 0 ? (b[ST_MSG_RECV] - a[ST_MSG_RECV]) / secs : 0);
    json_num(j, "presence_per_s", secs > 0 ? (b[ST_PRES_RECV] - a[ST_PRES_RECV]) / secs : 0);
    json_u64(j, "msg_lost", sub0(t[ST_MSG_SENT], t[ST_MSG_RECV] + t[ST_MSG_BOUNCED]));
    json_u64(j, "presence_lost", sub0(t[ST_PRES_EXPECT], t[ST_PRES_RECV]));
    json_u64(j, "groupchat_received", b[ST_MUC_RECV] - a[ST_MUC_RECV]);
    json_num(j, "groupchat_per_s", secs > 0 ? (b[ST_MUC_RECV] - a[ST_MUC_RECV]) / secs : 0);
    json_u64(j, "groupchat_lost", sub0(t[ST_MUC_EXPECT], t[ST_MUC_RECV]));
    json_end(j);

    const char *unit = unit_of(o);
    uint64_t u = units(r);
    json_obj(j, "cpu");
    json_str(j, "unit", unit);
    json_u64(j, "units", u);
    json_num(j, "generator_s", r->gen_cpu_end - r->gen_cpu_go);
    json_num(j, "generator_us_per_unit", u ? (r->gen_cpu_end - r->gen_cpu_go) * 1e6 / u : 0);
    json_num(j, "generator_user_s", r->gen_user);
    json_num(j, "generator_sys_s", r->gen_sys);
    json_u64(j, "generator_maxrss_kb", (uint64_t)r->gen_maxrss_kb);
    if (r->have_server) {
        json_num(j, "server_s", r->srv_cpu_end - r->srv_cpu_go);
        json_num(j, "server_us_per_unit", u ? (r->srv_cpu_end - r->srv_cpu_go) * 1e6 / u : 0);
    }
    json_end(j);

    if (r->have_server) {
        json_obj(j, "server");
        json_u64(j, "processes", r->srv_procs);
        json_u64(j, "rss_before", r->srv_rss_before);
        json_u64(j, "rss_loaded", r->srv_rss_loaded);
        json_u64(j, "anon_before", r->srv_anon_before);
        json_u64(j, "anon_loaded", r->srv_anon_loaded);
        json_u64(j, "online_loaded", r->online_loaded);
        double d = (double)r->srv_rss_loaded - (double)r->srv_rss_before;
        double da = (double)r->srv_anon_loaded - (double)r->srv_anon_before;
        json_num(j, "rss_per_connection", r->online_loaded ? d / r->online_loaded : 0);
        json_num(j, "anon_per_connection", r->online_loaded ? da / r->online_loaded : 0);
        json_end(j);
    }
    if (r->roster_checked) {
        json_obj(j, "roster");
        json_u64(j, "users", r->roster_users);
        json_u64(j, "mutual_found", r->roster_found);
        json_u64(j, "mutual_expected", r->roster_expected);
        json_end(j);
    }

    json_arr(j, "series", false);
    for (size_t i = 0; i < r->nsecs; i++) {
        const struct result_sec *s = &r->secs[i], *p = i ? &r->secs[i - 1] : NULL;
        double dt = p ? s->t - p->t : s->t;
        uint64_t err = 0, perr = 0;
        for (unsigned k = 0; k < ST_COUNT; k++)
            if (stats_is_error((enum stats_id)k)) {
                err += s->v[k];
                perr += p ? p->v[k] : 0;
            }
#define D(k) (s->v[k] - (p ? p->v[k] : 0))
        json_obj(j, NULL);
        j->inline_[j->depth] = true; /* one line per second */
        json_num(j, "t", s->t);
        json_str(j, "phase", phase_name(s->phase));
        json_u64(j, "online", s->v[ST_ONLINE]);
        json_u64(j, "sent", D(ST_MSG_SENT));
        json_u64(j, "received", D(ST_MSG_RECV));
        json_u64(j, "logins", D(ST_LOGINS));
        json_u64(j, "presence_sent", D(ST_PRES_SENT));
        json_u64(j, "presence_received", D(ST_PRES_RECV));
        json_u64(j, "bounced", D(ST_MSG_BOUNCED));
        json_u64(j, "errors", err - perr);
        json_num(j, "generator_cpu",
                 dt > 0 ? (s->gen_cpu - (p ? p->gen_cpu : r->gen_cpu0)) / dt : 0);
        if (r->have_server)
            json_num(j, "server_cpu",
                     dt > 0 ? (s->srv_cpu - (p ? p->srv_cpu : r->srv_cpu0)) / dt : 0);
        json_end(j);
#undef D
    }
    json_end(j);

    json_hist(j, "latency", &r->msg);
    json_hist(j, "presence_latency", &r->pres);
    json_hist(j, "login_latency", &r->login);

    json_obj(j, "verdict");
    json_u64(j, "exit_status", (uint64_t)r->exit_status);
    json_arr(j, "problems", false);
    for (unsigned i = 0; i < r->nproblems; i++)
        json_str(j, NULL, r->problems[i]);
    json_end(j);
    json_end(j);
    json_end(j);
    int err = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && !err)
        err = -errno;
    return err;
}
