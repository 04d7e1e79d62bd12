/* Unit tests of common/admin/metrics.c: the exposition of a node's segment, checked line by
 * line against the text format (version 0.0.4): every sample's family has one # HELP and
 * one # TYPE before it, names and labels are well-formed, counters end in _total, values
 * parse; and the values: sums over slots, signed gauges, rings filled by hand, the store's
 * histogram cumulative with its count, the supervisor's flags. */
#include "common/admin/metrics.h"
#include "shm/ring.h"
#include "shm/stats.h"
#include "shm/topo.h"
#include "test.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool name_ok(const char *p, size_t n)
{
    if (!n || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
            return false;
    return true;
}

/* Checks the whole text; returns how many samples it has. */
static int check_format(const char *text)
{
    char typed[128][64], helped[128][64];
    int ntyped = 0, nhelped = 0, samples = 0;
    char cur[64] = "", curtype[16] = "";
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            TEST_FAIL("no newline at the end");
        if (!nl)
            return samples;
        size_t len = (size_t)(nl - line);
        char l[1024];
        snprintf(l, sizeof l, "%.*s", (int)len, line);
        line = nl + 1;
        if (!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7)) {
            char *name = l + 7, *sp = strchr(name, ' ');
            if (!sp || !name_ok(name, (size_t)(sp - name))) {
                TEST_FAIL("bad comment line: %s", l);
                continue;
            }
            *sp = '\0';
            if (l[2] == 'H') {
                for (int i = 0; i < nhelped; i++)
                    if (!strcmp(helped[i], name))
                        TEST_FAIL("HELP twice for %s", name);
                if (nhelped < 128)
                    snprintf(helped[nhelped++], 64, "%.63s", name);
                continue;
            }
            for (int i = 0; i < ntyped; i++)
                if (!strcmp(typed[i], name))
                    TEST_FAIL("TYPE twice for %s", name);
            if (ntyped < 128)
                snprintf(typed[ntyped++], 64, "%.63s", name);
            snprintf(cur, sizeof cur, "%.63s", name);
            snprintf(curtype, sizeof curtype, "%.15s", sp + 1);
            if (strcmp(curtype, "counter") && strcmp(curtype, "gauge") &&
                strcmp(curtype, "histogram"))
                TEST_FAIL("bad type %s", curtype);
            if (!strcmp(curtype, "counter") &&
                (strlen(name) < 6 || strcmp(name + strlen(name) - 6, "_total")))
                TEST_FAIL("counter %s does not end in _total", name);
            if (nhelped == 0 || strcmp(helped[nhelped - 1], name))
                TEST_FAIL("TYPE of %s without its HELP first", name);
            continue;
        }
        /* A sample: name, optional {labels}, a space, a value. */
        size_t n = strcspn(l, "{ ");
        if (!name_ok(l, n)) {
            TEST_FAIL("bad sample name: %s", l);
            continue;
        }
        size_t cl = strlen(cur);
        bool mine = n == cl && !strncmp(l, cur, n);
        if (!strcmp(curtype, "histogram") && !mine)
            mine = n > cl && !strncmp(l, cur, cl) &&
                   (!strcmp(l + cl, "_bucket") || !strncmp(l + cl, "_bucket{", 8) ||
                    !strncmp(l + cl, "_sum", 4) || !strncmp(l + cl, "_count", 6));
        if (!mine)
            TEST_FAIL("sample %s is not of the family typed last (%s)", l, cur);
        char *p = l + n;
        if (*p == '{') {
            p++;
            while (*p != '}') {
                size_t k = strcspn(p, "=");
                if (!name_ok(p, k) || p[k] != '=' || p[k + 1] != '"') {
                    TEST_FAIL("bad label in %s", l);
                    break;
                }
                p += k + 2;
                while (*p && *p != '"')
                    p += *p == '\\' ? 2 : 1;
                if (*p != '"') {
                    TEST_FAIL("unterminated label in %s", l);
                    break;
                }
                p++;
                if (*p == ',')
                    p++;
                else if (*p != '}') {
                    TEST_FAIL("bad label list in %s", l);
                    break;
                }
            }
            if (*p == '}')
                p++;
        }
        if (*p != ' ') {
            TEST_FAIL("no space before the value: %s", l);
            continue;
        }
        char *end;
        strtod(p + 1, &end);
        if (end == p + 1 || *end)
            TEST_FAIL("bad value: %s", l);
        samples++;
    }
    return samples;
}

/* The value of the sample line `prefix value`. */
static double value_of(const char *text, const char *prefix)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        size_t n = strlen(prefix);
        if (!strncmp(l, prefix, n) && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    }
    TEST_FAIL("no sample %s", prefix);
    return -1;
}

static void test_exposition(void)
{
    struct config *cfg = config_defaults();
    struct seg_layout l;
    struct seg seg;
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    cfg->c2s.threads = 2;
    cfg->s2s.threads = 1;
    cfg->router.shards = 2;
    CHECK_INT(topo_plan(cfg, &l), ==, 0);
    CHECK_INT(seg_create(&seg, "starling-test", &l), ==, 0);

    /* Two c2s threads, a shard, the s2s thread. */
    stats_add(seg_stats(&seg, topo_stats_fe(cfg, 0)), STAT_C2S_CONNECTIONS, 2);
    stats_add(seg_stats(&seg, topo_stats_fe(cfg, 1)), STAT_C2S_CONNECTIONS, 1);
    stats_add(seg_stats(&seg, topo_stats_fe(cfg, 1)), STAT_C2S_LOGINS, 3);
    stats_add(seg_stats(&seg, topo_stats_fe(cfg, 0)), STAT_C2S_IN_MESSAGE, 5);
    stats_sub(seg_stats(&seg, topo_stats_fe(cfg, 2)), STAT_S2S_CONN_OUT,
              1); /* a bug, shown as is */
    stats_add(seg_stats(&seg, topo_stats_shard(cfg, 1)), STAT_SHARD_DELIVERIES, 7);
    stats_store_done(seg_stats(&seg, topo_stats_shard(cfg, 0)), 300);
    stats_store_done(seg_stats(&seg, topo_stats_fe(cfg, 1)), 50);
    stats_store_done(seg_stats(&seg, topo_stats_fe(cfg, 1)), 5000000);
    /* 24 bytes in one ring from c2s thread 1 to shard 0, 16 + 8 in two of the router's. */
    struct ring r;
    void *pay;
    uint32_t rings[3] = {topo_ring_up(cfg, 1, 0), topo_ring_down(cfg, 0, 0),
                         topo_ring_down(cfg, 2, 1)};
    uint32_t sizes[3] = {16, 8, 1};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(ring_attach(&r, seg_ring(&seg, rings[i]), NULL, 10), ==, 0);
        CHECK_INT(ring_reserve(&r, sizes[i], 1, 0, &pay), ==, 0);
        ring_commit(&r);
        ring_publish(&r);
    }

    struct metrics_node n = {
        .seg = &seg,
        .cfg = cfg,
        .proc = {"router", "c2s", "s2s"},
        .up = {true, true, false},
        .ready = false,
        .draining = true,
    };
    struct buf b = {0};
    CHECK_INT(metrics_write(&b, &n), ==, 0);
    CHECK_INT(buf_reserve(&b, 1), ==, 0);
    *buf_end(&b) = '\0';
    const char *t = buf_data(&b);
    CHECK_INT(check_format(t), >, 40);

    CHECK(value_of(t, "starling_c2s_connections") == 3);
    CHECK(value_of(t, "starling_c2s_logins_total") == 3);
    CHECK(value_of(t, "starling_c2s_auth_failures_total") == 0);
    CHECK(value_of(t, "starling_stanzas_in_total{front_end=\"c2s\",kind=\"message\"}") == 5);
    CHECK(value_of(t, "starling_stanzas_in_total{front_end=\"c2s\",kind=\"iq\"}") == 0);
    CHECK(value_of(t, "starling_s2s_connections{direction=\"out\"}") == -1);
    CHECK(value_of(t, "starling_router_deliveries_total") == 7);
    CHECK(value_of(t, "starling_process_up{process=\"c2s\"}") == 1);
    CHECK(value_of(t, "starling_process_up{process=\"s2s\"}") == 0);
    CHECK(value_of(t, "starling_ready") == 0);
    CHECK(value_of(t, "starling_draining") == 1);
    CHECK(value_of(t, "starling_ring_bytes{direction=\"to_router\"}") == 24);
    CHECK(value_of(t, "starling_ring_bytes{direction=\"from_router\"}") == 16 + 16);
    CHECK(value_of(t, "starling_ring_bytes_max{direction=\"from_router\"}") == 16);
    CHECK(value_of(t, "starling_ring_size_bytes") == l.ring_data_size);
    CHECK(value_of(t, "starling_store_request_seconds_bucket{backend=\"sqlite\",le=\"0.0001\"}") ==
          1);
    CHECK(value_of(t, "starling_store_request_seconds_bucket{backend=\"sqlite\",le=\"0.0005\"}") ==
          2);
    CHECK(value_of(t, "starling_store_request_seconds_bucket{backend=\"sqlite\",le=\"1\"}") == 2);
    CHECK(value_of(t, "starling_store_request_seconds_bucket{backend=\"sqlite\",le=\"+Inf\"}") ==
          3);
    CHECK(value_of(t, "starling_store_request_seconds_count{backend=\"sqlite\"}") == 3);
    CHECK(value_of(t, "starling_store_request_seconds_sum{backend=\"sqlite\"}") == 5.00035);

    buf_free(&b);
    seg_close(&seg);
    config_free(cfg);
}

int main(void)
{
    RUN(test_exposition);
    return test_done("metrics");
}
