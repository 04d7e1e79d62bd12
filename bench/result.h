/*
 * result: what a starling-bench run found, as the control thread gathered it, and its
 * two outputs: the summary on stdout and the JSON file that bench/report reads.
 *
 * JSON layout (version 1; bench/report relies on it):
 *   tool, version, scenario, label, started (UTC), params {...}
 *   phases {ramp_s, setup_s, measured_s, drain_s}
 *   totals {every counter of stats.h}
 *   measured {counters over the measured window, rates per second, lost, cpu}
 *   cpu {generator_s, generator_us_per_unit, server_s, server_us_per_unit, unit}
 *   server {processes, rss_before, rss_loaded, rss_per_connection, anon_...} (with --server-pid)
 *   roster {users, contacts_each, mutual_found, mutual_expected} (presence, mixed)
 *   series [{t, phase, online, sent, received, logins, presence_sent, presence_received,
 *            bounced, errors, generator_cpu, server_cpu}...]  (per second; rates are
 *            counts in that second, cpu is in cores)
 *   latency, presence_latency, login_latency: {unit: "us", count, min, mean, max, p50, p90,
 *            p99, p99_9, p99_99, percentiles: [[p, value]...], buckets: [[lo, hi, count]...]}
 *   verdict {exit_status, problems: [...]}
 */
#ifndef STARLING_BENCH_RESULT_H
#define STARLING_BENCH_RESULT_H

#include "bench/hist.h"
#include "bench/opts.h"
#include "bench/stats.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* One second of the run: cumulative values at its end. */
struct result_sec {
    double t; /* seconds since the start */
    unsigned phase;
    uint64_t v[ST_COUNT];
    double gen_cpu, srv_cpu; /* cumulative seconds */
};

struct result {
    const struct opts *o;
    time_t started;
    uint64_t totals[ST_COUNT];
    uint64_t go[ST_COUNT], end[ST_COUNT]; /* counters when measuring began and ended */
    double t_up, t_go, t_stop, t_end;     /* seconds since the start */
    double gen_cpu_go, gen_cpu_end, gen_user, gen_sys;
    double gen_cpu0, srv_cpu0; /* at the start: the base of the first second's CPU */
    long gen_maxrss_kb;
    bool have_server;
    double srv_cpu_go, srv_cpu_end;
    unsigned srv_procs;
    uint64_t srv_rss_before, srv_rss_loaded, srv_anon_before, srv_anon_loaded;
    uint64_t online_loaded; /* connections online when srv_rss_loaded was taken */
    uint64_t roster_users, roster_found, roster_expected;
    bool roster_checked;
    struct hist msg, pres, login;
    struct result_sec *secs;
    size_t nsecs, cap;
    int exit_status;
    char problems[8][160];
    unsigned nproblems;
};

/* Appends one second; false when memory ran out (the series is then cut). */
bool result_add_sec(struct result *r, const struct result_sec *s);

/* Decides the exit status and the list of problems from what was gathered. */
void result_judge(struct result *r);

void result_print(const struct result *r, FILE *f);

/* Writes the JSON document; 0 or -errno. */
int result_write_json(const struct result *r, const char *path);

void result_free(struct result *r);

#endif
