/* Unit tests of common/admin/http.c: the requests Prometheus, curl, a load balancer's check
 * and Python's http.client send; every refusal with its status; requests in pieces; the
 * size limit. */
#include "common/admin/http.h"
#include "test.h"

#include <string.h>

#define MAX 8192

struct http_case {
    const char *in;
    int status;
    const char *path; /* for 200 */
    unsigned minor;
};

static const struct http_case cases[] = {
    /* What clients send. */
    {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:5280\r\nUser-Agent: Prometheus/2.45.0\r\n"
     "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
     "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
     200, "/metrics", 1},
    {"GET /ready HTTP/1.0\r\n\r\n", 200, "/ready", 0}, /* HAProxy's httpchk */
    {"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, "/health", 1},
    {"GET /ready?full=1#frag HTTP/1.1\r\nHost: x\r\n\r\n", 200, "/ready", 1},
    {"GET /health HTTP/1.1\nHost: x\n\n", 200, "/health", 1}, /* bare LF (§2.2) */
    {"\r\n\r\nGET / HTTP/1.0\r\n\r\n", 200, "/", 0},          /* empty lines first */
    {"GET http://127.0.0.1:5280/metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, "/metrics", 1},
    {"GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n", 200, "/", 1},
    {"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n", 200, "/", 1},
    {"GET / HTTP/1.0\r\nHost: a\r\n\r\n", 200, "/", 0},
    /* Methods other than GET, as soon as the request line is there. */
    {"POST /ready HTTP/1.1\r\n", 405, NULL, 0},
    {"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", 405, NULL, 0},
    {"get / HTTP/1.1\r\nHost: x\r\n\r\n", 405, NULL, 0}, /* methods are case-sensitive */
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, NULL, 0},
    /* Versions. */
    {"GET / HTTP/1.2\r\n\r\n", 505, NULL, 0},
    {"GET / HTTP/0.9\r\n\r\n", 505, NULL, 0},
    {"GET / HTTP/1.1x\r\n\r\n", 400, NULL, 0},
    {"GET / http/1.1\r\n\r\n", 400, NULL, 0},
    {"GET /\r\n\r\n", 400, NULL, 0}, /* HTTP/0.9's simple request */
    /* Malformed request lines. */
    {"GET  / HTTP/1.1\r\n\r\n", 400, NULL, 0},
    {"GET / HTTP/1.1 \r\n\r\n", 400, NULL, 0},
    {" GET / HTTP/1.1\r\n\r\n", 400, NULL, 0},
    {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL, 0},
    {"GET ftp://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400, NULL, 0},
    {"GET /a\x01 HTTP/1.1\r\n\r\n", 400, NULL, 0},
    {"GET /a\rb HTTP/1.1\r\n\r\n", 400, NULL, 0},
    {"G\xc3\xa9T / HTTP/1.1\r\n\r\n", 400, NULL, 0},
    /* Garbage before any line ends: refused at once, not at the timeout. */
    {"\x16\x03\x01\x02\x04\x01\x05\x01\xfc\x03\x03", 400, NULL, 0}, /* a TLS ClientHello */
    {"GET /a\x01", 400, NULL, 0},
    {"GE(", 400, NULL, 0},
    {"GET /\r", 0, NULL, 0}, /* a CR may end the line */
    /* Headers. */
    {"GET / HTTP/1.1\r\n\r\n", 400, NULL, 0},                       /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, NULL, 0}, /* two */
    {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", 400, NULL, 0},
    {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, NULL, 0},           /* space before ':' */
    {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, NULL, 0}, /* obs-fold */
    {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400, NULL, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400, NULL, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n", 400, NULL, 0},
    {"GET / HTTP/1.1\r\nHost: x\r\nA: b\x7f\r\n\r\n", 400, NULL, 0},
    /* Not complete yet. */
    {"", 0, NULL, 0},
    {"\r\n", 0, NULL, 0},
    {"GET /metrics HTTP/1.1", 0, NULL, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, NULL, 0},
    {"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", 0, NULL, 0},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct http_case *t = &cases[i];
        struct http_request r;
        size_t n = strlen(t->in);
        int st = http_parse(t->in, n, MAX, &r);
        if (st != t->status)
            TEST_FAIL("case %zu (%s): status %d, want %d", i, t->in, st, t->status);
        if (st != 200 || !t->path)
            continue;
        CHECK_SPAN(r.path, r.path_len, t->path);
        CHECK_INT(r.minor, ==, t->minor);
        CHECK_INT(r.len, ==, n);
    }
}

/* Bytes after the headers (a body, a pipelined request) are not the parser's. */
static void test_length(void)
{
    const char *in = "GET /ready HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\n";
    struct http_request r;
    CHECK_INT(http_parse(in, strlen(in), MAX, &r), ==, 200);
    CHECK_INT(r.len, ==, strlen("GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_SPAN(r.path, r.path_len, "/ready");
}

/* Byte by byte, as a slow client sends it: 0 until the last byte, then the answer. */
static void test_pieces(void)
{
    const char *in = "GET /health HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    size_t n = strlen(in);
    struct http_request r;
    for (size_t k = 0; k < n; k++)
        if (http_parse(in, k, MAX, &r) != 0)
            TEST_FAIL("answered after %zu of %zu bytes", k, n);
    CHECK_INT(http_parse(in, n, MAX, &r), ==, 200);
}

static void test_limit(void)
{
    char big[MAX + 64];
    struct http_request r;
    /* A request line that never ends: 414 once max bytes came. */
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    CHECK_INT(http_parse(big, MAX - 1, MAX, &r), ==, 0);
    CHECK_INT(http_parse(big, MAX, MAX, &r), ==, 414);
    /* Headers that never end: 431. */
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\n");
    while (n + 8 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, "A: b\r\n");
    CHECK_INT(http_parse(big, MAX, MAX, &r), ==, 431);
    /* The whole request fits exactly: served. */
    const char *in = "GET / HTTP/1.0\r\n\r\n";
    CHECK_INT(http_parse(in, strlen(in), strlen(in), &r), ==, 200);
    CHECK_INT(http_parse(in, strlen(in), strlen(in) - 1, &r), ==, 431);
}

static void test_reason(void)
{
    CHECK_STR(http_reason(200), "OK");
    CHECK_STR(http_reason(503), "Service Unavailable");
    CHECK_STR(http_reason(431), "Request Header Fields Too Large");
}

int main(void)
{
    RUN(test_table);
    RUN(test_length);
    RUN(test_pieces);
    RUN(test_limit);
    RUN(test_reason);
    return test_done("http");
}
