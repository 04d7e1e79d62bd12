/*
 * storebench: the store's latency and throughput, SQLite or PostgreSQL, through the
 * store's own asynchronous interface (one client, as a router shard has).
 *
 *   storebench sqlite PATH [N]
 *   storebench postgresql DSN [N]
 *
 * For a roster get (a user with 20 items, 2 groups each, 5 blocked JIDs), an offline
 * push (a 200-byte stanza) and an account lookup (the cheapest request: one index
 * probe, so that the round trip is most of it), it measures the latency of one request at a time
 * (submitted, polled to completion, then the next: p50, p99) and the throughput with
 * 1 and with 64 requests outstanding (the next submitted as each completes), N requests
 * per figure (default 5000), each figure the best of 3 rounds (this machine is shared:
 * the best round is the one least disturbed). Then the message archive's appends
 * (store_mam.h): N rows of that stanza written one row per request (1 and 64
 * outstanding) and in batches of 16 and 256 rows with one request outstanding (what a
 * router shard does, mam.batch), in rows per second. bench/store.sh runs it on both back
 * ends.
 */
#include "common/core/log.h"
#include "common/store/store.h"
#include "common/store/store_mam.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct run {
    int done, failed;
};

static void on_roster(void *arg, int res, const struct store_roster *r)
{
    struct run *x = arg;
    x->done++;
    x->failed += res != 0 || !r || r->n != 20;
}

static void on_done(void *arg, int res)
{
    struct run *x = arg;
    x->done++;
    x->failed += res != 0;
}

static const char stanza[] =
    "<message to='juliet@localhost' from='romeo@localhost/balcony' type='chat' id='m1'>"
    "<body>But, soft! what light through yonder window breaks? It is the east, and Juliet is"
    " the sun.</body></message>";

static const struct store_offline_quota quota = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};

static int submit(struct store_client *cl, int op, struct run *x)
{
    if (op == 0)
        return store_roster_get(cl, "juliet", on_roster, x);
    if (op == 2)
        return store_account_exists(cl, "juliet", on_done, x);
    return store_offline_push(cl, "juliet", "romeo@localhost", stanza, sizeof stanza - 1, &quota,
                              on_done, x);
}

static void wait_some(struct store_client *cl)
{
    struct pollfd p = {.fd = store_client_fd(cl), .events = POLLIN};
    poll(&p, 1, 1000);
    store_poll(cl);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One at a time: p50 and p99 in microseconds. */
static int latency(struct store_client *cl, int op, int n, double *p50, double *p99)
{
    int64_t *t = malloc((size_t)n * sizeof *t);
    struct run x = {0};
    if (!t)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        if (submit(cl, op, &x) < 0)
            break;
        while (x.done <= i)
            wait_some(cl);
        t[i] = now_ns() - t0;
    }
    qsort(t, (size_t)n, sizeof *t, cmp_i64);
    *p50 = (double)t[n / 2] / 1000;
    *p99 = (double)t[n * 99 / 100] / 1000;
    free(t);
    return x.failed ? -EIO : 0;
}

/* `window` outstanding: requests per second. */
static int throughput(struct store_client *cl, int op, int n, int window, double *rps)
{
    struct run x = {0};
    int sent = 0;
    int64_t t0 = now_ns();
    while (x.done < n) {
        while (sent < n && sent - x.done < window && submit(cl, op, &x) == 0)
            sent++;
        wait_some(cl);
    }
    *rps = (double)n * 1e9 / (double)(now_ns() - t0);
    return x.failed ? -EIO : 0;
}

static void on_rows(void *arg, int res)
{
    struct run *x = arg;
    x->done++;
    x->failed += res < 0;
}

/* n archive rows, `batch` to a request, `window` requests outstanding: rows per second. */
static int mam_rows(struct store_client *cl, int n, int batch, int window, double *rows_s)
{
    static uint64_t id;
    struct store_mam_row *rows = malloc((size_t)batch * sizeof *rows);
    struct run x = {0};
    int sent = 0, reqs = (n + batch - 1) / batch;
    if (!rows)
        return -ENOMEM;
    int64_t t0 = now_ns();
    while (x.done < reqs) {
        while (sent < reqs && sent - x.done < window) {
            for (int i = 0; i < batch; i++)
                rows[i] = (struct store_mam_row){.owner = "juliet",
                                                 .id = ++id,
                                                 .with = "romeo@localhost/balcony",
                                                 .with_bare_len = 15,
                                                 .stanza = stanza,
                                                 .len = sizeof stanza - 1};
            if (store_mam_append(cl, rows, (size_t)batch, on_rows, &x) < 0)
                break;
            sent++;
        }
        wait_some(cl);
    }
    *rows_s = (double)reqs * batch * 1e9 / (double)(now_ns() - t0);
    free(rows);
    return x.failed ? -EIO : 0;
}

static int setup(struct store *st)
{
    struct store_creds c = {.sha256 = {.iterations = 4096, .salt_len = 16}};
    const char *blocked[] = {"a@spam.example", "b@spam.example", "c@spam.example",
                             "d@spam.example", "e@spam.example"};
    const char *groups[] = {"Family", "Verona"};
    char jid[64];
    int rc = store_account_create_sync(st, "juliet", &c);
    if (rc < 0 && rc != -EEXIST)
        return rc;
    for (int i = 0; i < 20; i++) {
        snprintf(jid, sizeof jid, "contact%02d@localhost", i);
        struct store_roster_item it = {.jid = jid, .name = "A contact", .sub = STORE_SUB_BOTH,
                                       .groups = groups, .ngroups = 2};
        if ((rc = store_roster_put_sync(st, "juliet", &it, NULL)) < 0)
            return rc;
    }
    rc = store_block_add_sync(st, "juliet", blocked, 5);
    return rc < 0 ? rc : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: storebench sqlite PATH [N] | storebench postgresql DSN [N]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 5000;
    bool pg = !strcmp(argv[1], "postgresql");
    struct store_opts o = {.backend = pg ? STORE_BACKEND_POSTGRESQL : STORE_BACKEND_SQLITE,
                           .path = pg ? NULL : argv[2],
                           .dsn = pg ? argv[2] : NULL};
    struct store *st;
    struct store_client *cl;
    log_init("storebench", LOG_LEVEL_WARN);
    int rc = store_open(&o, &st);
    if (rc < 0) {
        fprintf(stderr, "storebench: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = setup(st)) < 0 || (rc = store_client_new(st, &cl)) < 0) {
        fprintf(stderr, "storebench: setup: %s\n", strerror(-rc));
        return 1;
    }
    static const char *const names[] = {"roster get", "offline push", "account exists"};
    printf("%s, %d requests per figure, best of 3 rounds\n", argv[1], n);
    printf("%-15s %10s %10s %14s %14s %8s\n", "request", "p50 us", "p99 us", "req/s (1)",
           "req/s (64)", "x64/x1");
    for (int op = 0; op < 3; op++) {
        double p50 = 1e300, p99 = 1e300, r1 = 0, r64 = 0;
        for (int round = 0; rc == 0 && round < 3; round++) {
            double a, b, c, d;
            rc = latency(cl, op, n, &a, &b);
            rc = rc ? rc : throughput(cl, op, n, 1, &c);
            rc = rc ? rc : throughput(cl, op, n, 64, &d);
            p50 = a < p50 ? a : p50;
            p99 = b < p99 ? b : p99;
            r1 = c > r1 ? c : r1;
            r64 = d > r64 ? d : r64;
            store_offline_delete_sync(st, "juliet", UINT64_MAX);
        }
        if (rc < 0) {
            fprintf(stderr, "storebench: %s: %s\n", names[op], strerror(-rc));
            return 1;
        }
        printf("%-15s %10.1f %10.1f %14.0f %14.0f %8.2f\n", names[op], p50, p99, r1, r64,
               r64 / r1);
    }
    printf("\n%-26s %14s\n", "archive append", "rows/s");
    static const int shapes[][2] = {{1, 1}, {1, 64}, {16, 1}, {256, 1}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        double best = 0;
        for (int round = 0; rc == 0 && round < 3; round++) {
            double r;
            rc = mam_rows(cl, n, shapes[k][0], shapes[k][1], &r);
            best = r > best ? r : best;
            store_mam_expire_sync(st, INT64_MAX, STORE_LIST_MAX * 10);
        }
        if (rc < 0) {
            fprintf(stderr, "storebench: archive append: %s\n", strerror(-rc));
            return 1;
        }
        char what[64];
        snprintf(what, sizeof what, "%d row%s a request, %d out", shapes[k][0],
                 shapes[k][0] > 1 ? "s" : "", shapes[k][1]);
        printf("%-26s %14.0f\n", what, best);
    }
    store_client_free(cl);
    store_close(st);
    return 0;
}
