/*
 * metrics.c: the exposition (metrics.h). One table: the stats slots' rows come from
 * STATS_METRICS, the computed ones after them, each a function of the node.
 */
#include "common/admin/metrics.h"
#include "shm/ring.h"
#include "shm/stats.h"
#include "shm/topo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct metric {
    const char *name, *type, *labels, *help;
    /* A slot's stat summed over every slot, or, with fn, whatever fn writes (its own
     * sample lines, after the # HELP and # TYPE of name). */
    enum stats_id id;
    int (*fn)(struct buf *b, const struct metric *m, const struct metrics_node *n);
    unsigned arg;
};

static int out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int out(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || buf_reserve(b, (size_t)len + 1) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(buf_end(b), (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->len += (uint32_t)len;
    return 0;
}

/* `name{labels} value` (no braces without labels). */
static int sample(struct buf *b, const char *name, const char *suffix, const char *labels,
                  const char *value)
{
    return out(b, "%s%s%s%s%s %s\n", name, suffix, labels[0] ? "{" : "", labels,
               labels[0] ? "}" : "", value);
}

static int sample_u(struct buf *b, const char *name, const char *labels, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return sample(b, name, "", labels, s);
}

static int from_slots(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    uint64_t v = stats_sum(n->seg, 0, n->seg->l.n_stats, m->id);
    char s[24];
    if (stats_is_gauge(m->id))
        snprintf(s, sizeof s, "%" PRId64, (int64_t)v);
    else
        snprintf(s, sizeof s, "%" PRIu64, v);
    return sample(b, m->name, "", m->labels, s);
}

static int proc_up(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    char labels[64];
    for (unsigned i = 0; i < METRICS_PROCS; i++) {
        snprintf(labels, sizeof labels, "process=\"%s\"", n->proc[i]);
        if (sample_u(b, m->name, labels, n->up[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int flag(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    return sample_u(b, m->name, "", m->arg ? n->draining : n->ready);
}

/* Rings [from, to) of the segment: arg 0 the front ends' to the router, 1 the router's to
 * the front ends (topo.h). Bytes in all (fn ring_total) or in the fullest (ring_max). */
static void ring_range(const struct metrics_node *n, unsigned dir, uint32_t *from, uint32_t *to)
{
    uint32_t per = topo_fe_threads(n->cfg) * topo_shards(n->cfg);
    *from = dir ? per : 0;
    *to = *from + per;
}

static const char *const ring_dir[] = {"direction=\"to_router\"", "direction=\"from_router\""};

static int ring_bytes(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    for (unsigned dir = 0; dir < 2; dir++) {
        uint32_t from, to;
        uint64_t v = 0;
        ring_range(n, dir, &from, &to);
        for (uint32_t i = from; i < to && i < n->seg->l.n_rings; i++) {
            uint64_t used = ring_occupancy(seg_ring(n->seg, i));
            v = m->arg ? (used > v ? used : v) : v + used;
        }
        if (sample_u(b, m->name, ring_dir[dir], v) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int ring_size(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    return sample_u(b, m->name, "", n->seg->l.ring_data_size);
}

static int store_hist(struct buf *b, const struct metric *m, const struct metrics_node *n)
{
    static const uint64_t bounds[STATS_STORE_BUCKETS] = {STATS_STORE_BOUNDS_US};
    const char *backend =
        n->cfg->storage.backend == STORE_BACKEND_POSTGRESQL ? "postgresql" : "sqlite";
    char labels[96], v[32];
    uint64_t cum = 0;
    /* Cumulative, and the count is the last bucket: consistent whatever the writers did
     * between two loads. */
    for (unsigned i = 0; i <= STATS_STORE_BUCKETS; i++) {
        cum += stats_sum(n->seg, 0, n->seg->l.n_stats, (enum stats_id)(STAT_STORE_BUCKET + i));
        if (i < STATS_STORE_BUCKETS)
            snprintf(labels, sizeof labels, "backend=\"%s\",le=\"%g\"", backend,
                     (double)bounds[i] / 1e6);
        else
            snprintf(labels, sizeof labels, "backend=\"%s\",le=\"+Inf\"", backend);
        snprintf(v, sizeof v, "%" PRIu64, cum);
        if (sample(b, m->name, "_bucket", labels, v) < 0)
            return -ENOMEM;
    }
    snprintf(labels, sizeof labels, "backend=\"%s\"", backend);
    snprintf(v, sizeof v, "%.6f",
             (double)stats_sum(n->seg, 0, n->seg->l.n_stats, STAT_STORE_TIME_US) / 1e6);
    if (sample(b, m->name, "_sum", labels, v) < 0)
        return -ENOMEM;
    snprintf(v, sizeof v, "%" PRIu64, cum);
    return sample(b, m->name, "_count", labels, v);
}

static const struct metric metrics[] = {
#define METRIC_ROW_(id_, type_, name_, labels_, help_)                                             \
    {.name = name_,                                                                                \
     .type = STATS_TYPE_##type_,                                                                   \
     .labels = labels_,                                                                            \
     .help = help_,                                                                                \
     .id = STAT_##id_,                                                                             \
     .fn = from_slots},
#define STATS_TYPE_COUNTER "counter"
#define STATS_TYPE_GAUGE   "gauge"
    STATS_METRICS(METRIC_ROW_)
#undef METRIC_ROW_
        {"starling_process_up", "gauge", "", "1 while the process runs and serves.", 0, proc_up, 0},
    {"starling_ready", "gauge", "", "1 while /ready answers 200.", 0, flag, 0},
    {"starling_draining", "gauge", "", "1 from starlingctl drain to undrain.", 0, flag, 1},
    {"starling_ring_bytes", "gauge", "",
     "Bytes in the shared-memory rings, all of one direction together.", 0, ring_bytes, 0},
    {"starling_ring_bytes_max", "gauge", "", "Bytes in the fullest ring of one direction.", 0,
     ring_bytes, 1},
    {"starling_ring_size_bytes", "gauge", "", "The data size of one ring (shm.ring_size).", 0,
     ring_size, 0},
    {"starling_store_request_seconds", "histogram", "",
     "Time from a storage request's submission to its callback, on the thread that made it.", 0,
     store_hist, 0},
};

int metrics_write(struct buf *b, const struct metrics_node *n)
{
    const char *last = "";
    for (size_t i = 0; i < sizeof metrics / sizeof metrics[0]; i++) {
        const struct metric *m = &metrics[i];
        if (strcmp(m->name, last) != 0 &&
            out(b, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type) < 0)
            return -ENOMEM;
        last = m->name;
        if (m->fn(b, m, n) < 0)
            return -ENOMEM;
    }
    return 0;
}
