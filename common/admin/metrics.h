/*
 * metrics: the node's numbers in Prometheus's text exposition format, version 0.0.4
 * (# HELP and # TYPE once per name, then `name{labels} value` lines), for the admin
 * listener's /metrics.
 *
 * Sources. Most rows are the stats slots of the node's segment (shm/stats.h: every
 * thread's counters and gauges, summed here), one row per line of STATS_METRICS. The
 * rest is computed here from what the supervisor knows and the segment shows: which
 * processes serve, readiness and draining, how full the rings are (each direction's
 * bytes in all rings, the fullest ring, a ring's size) and the store's request times (a
 * histogram per the configured back end). Adding one of those is a row in the table of
 * metrics.c.
 *
 * The supervisor's thread; reads the segment without a lock (stats.h says why the sums
 * are sound).
 */
#ifndef STARLING_METRICS_H
#define STARLING_METRICS_H

#include "common/config/config.h"
#include "common/core/buf.h"
#include "shm/seg.h"

#include <stdbool.h>

#define METRICS_PROCS 3

/* What the supervisor tells. */
struct metrics_node {
    const struct seg *seg;
    const struct config *cfg;
    const char *proc[METRICS_PROCS]; /* "router", "c2s", "s2s" */
    bool up[METRICS_PROCS];          /* running and said it serves */
    bool ready, draining;
};

/* The Content-Type of what metrics_write() writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends the exposition to b. 0 or -ENOMEM. */
int metrics_write(struct buf *b, const struct metrics_node *n);

#endif
