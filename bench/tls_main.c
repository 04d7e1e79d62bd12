/*
 * tls: what a server-side TLS connection costs. Opens N connections in memory (a client
 * struct tls per server one, bytes pumped between them), moves a little data each way, frees
 * the clients and keeps the servers idle, then reports:
 *   - the server's CPU per full handshake (time spent in its calls only), TLS 1.3 and 1.2;
 *   - heap bytes per idle server connection, from the allocator's own count (jemalloc's
 *     stats.allocated in release and debug builds, glibc's mallinfo2 otherwise), which
 *     also sees any allocation that bypasses OPENSSL_malloc (the unit test counts through
 *     BoringSSL's hooks instead).
 *
 * usage: tls [-n connections]
 */
#include "common/auth/tls.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* jemalloc's, when it is linked (release and debug builds; not under sanitizers). */
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

static size_t heap_bytes(void)
{
    if (mallctl) {
        uint64_t epoch = 1;
        size_t v = 0, sz = sizeof v, esz = sizeof epoch;
        mallctl("epoch", &epoch, &esz, &epoch, esz);
        mallctl("stats.allocated", &v, &sz, NULL, 0);
        return v;
    }
    return mallinfo2().uordblks;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct q {
    uint8_t *p;
    size_t len, cap;
};

static int sink(void *ud, const void *p, size_t n)
{
    struct q *q = ud;
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8192;
        while (cap < q->len + n)
            cap *= 2;
        uint8_t *np = realloc(q->p, cap);
        if (!np)
            return -ENOMEM;
        q->p = np;
        q->cap = cap;
    }
    memcpy(q->p + q->len, p, n);
    q->len += n;
    return 0;
}

/* Feeds q into t and drains plaintext; returns the nanoseconds that took. */
static double deliver(struct q *q, struct tls *t)
{
    char buf[16384];
    double t0 = now_ns();
    if (q->len) {
        tls_feed(t, q->p, q->len);
        while (tls_read(t, buf, sizeof buf) > 0)
            ;
    }
    q->len = 0;
    return now_ns() - t0;
}

static int run(struct tls_ctx *sc, struct tls_ctx *cc, int n, const char *label)
{
    struct tls **srv = calloc((size_t)n, sizeof *srv);
    struct q sq = {0}, cq = {0};
    static char data[2048];
    double server_ns = 0;

    /* One connection first: the context's lazily made state is nobody's connection. */
    for (int warm = 0; warm < 2; warm++) {
        struct tls *s = tls_new(sc, NULL, sink, &sq), *c = tls_new(cc, "localhost", sink, &cq);
        tls_handshake(c);
        for (int i = 0; i < 10 && (cq.len || sq.len); i++) {
            deliver(&cq, s);
            deliver(&sq, c);
        }
        tls_free(s);
        tls_free(c);
    }

    size_t before = heap_bytes();
    for (int k = 0; k < n; k++) {
        struct tls *s = tls_new(sc, NULL, sink, &sq), *c = tls_new(cc, "localhost", sink, &cq);
        if (!s || !c)
            return 1;
        double t0 = now_ns();
        tls_handshake(s); /* nothing yet; counted for honesty */
        server_ns += now_ns() - t0;
        tls_handshake(c);
        for (int i = 0; i < 10 && (cq.len || sq.len); i++) {
            server_ns += deliver(&cq, s);
            deliver(&sq, c);
        }
        if (!tls_handshake_done(s) || !tls_handshake_done(c)) {
            fprintf(stderr, "handshake failed\n");
            return 1;
        }
        tls_write(c, data, 300);
        deliver(&cq, s);
        tls_write(s, data, sizeof data);
        deliver(&sq, c);
        tls_free(c);
        srv[k] = s;
    }
    size_t after = heap_bytes();
    printf("  %s: server CPU per handshake %.1f us; idle server connection %zu heap bytes "
           "(%s, %d connections)\n",
           label, server_ns / n / 1000, (after - before) / (size_t)n,
           mallctl ? "jemalloc stats.allocated" : "mallinfo2", n);
    for (int k = 0; k < n; k++)
        tls_free(srv[k]);
    free(srv);
    free(sq.p);
    free(cq.p);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 1000, opt;
    char dir[] = "/tmp/starling-tlsbench-XXXXXX", crt[64], key[64], err[256];

    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n') {
            fprintf(stderr, "usage: %s [-n connections]\n", argv[0]);
            return 2;
        }
        n = atoi(optarg);
    }
    if (!mkdtemp(dir))
        return 1;
    snprintf(crt, sizeof crt, "%s/crt.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    if (tls_selfsigned_write(crt, key, "localhost", 1) != 0)
        return 1;
    struct tls_opts so = {.cert_file = crt, .key_file = key, .alpn = "xmpp-client"};
    struct tls_opts c13 = {.alpn = "xmpp-client"},
                    c12 = {.alpn = "xmpp-client", .max_version = TLS_V12};
    struct tls_ctx *sc = tls_ctx_new_server(&so, err, sizeof err);
    struct tls_ctx *cc13 = tls_ctx_new_client(&c13, err, sizeof err);
    struct tls_ctx *cc12 = tls_ctx_new_client(&c12, err, sizeof err);
    if (!sc || !cc13 || !cc12) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("TLS, EC P-256 certificate, X25519, in memory:\n");
    int rc = run(sc, cc13, n, "TLS 1.3") || run(sc, cc12, n, "TLS 1.2");
    tls_ctx_free(sc);
    tls_ctx_free(cc13);
    tls_ctx_free(cc12);
    unlink(crt);
    unlink(key);
    rmdir(dir);
    return rc;
}
