/* Unit tests of common/fe/proxy.c: a connection from a balancer (c2s.proxy_from) and its
 * PROXY header, as the loop hands received bytes over (fe_conn_input()), on a thread that
 * runs no loop (its ring exists for the receives and sends the layer arms; nothing
 * completes). The front end here counts ops->accepted() calls and records the stream's
 * first XML event; sockets are real loopback TCP connections, so each has a peer.
 *
 * Checked: a header cut at every byte and the stream header after it (v1 and v2) give one
 * accepted(), with the client's address, and the stream's first event, whatever the cut;
 * LOCAL keeps the balancer's address; no header, a broken one, an oversized one, or none in
 * time close without a byte written; a peer not in proxy_from never has a header read. */
#include "common/fe/fe.h"
#include "shm/proto.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define STREAM                                                                                     \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

static struct fe_thread t;
static struct config_proxy proxy;
static int lfd;
static unsigned accepts, opens, errors, listener_seen;
static char scratch[4096];

static void none(struct fe_conn *c)
{
    (void)c;
}

static void accepted(struct fe_conn *c, unsigned listener)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    accepts++;
    listener_seen = listener;
    xml_init(&c->xp, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    c->state = FE_HEADER;
    fe_arm_recv(c);
}

static void event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev)
{
    (void)ev;
    if (kind == XML_EV_STREAM_OPEN) {
        opens++;
    } else if (kind == XML_EV_ERROR) {
        errors++;
        fe_close(c); /* as a front end ends its stream */
    }
}

static const struct fe_ops ops = {.conn_size = sizeof(struct fe_conn), .accepted = accepted,
                                  .event = event, .send_header = none, .closing = none,
                                  .release = none, .tick = none};

static void thread_open(const char *from)
{
    static struct net_prefix prefix;
    char why[128];
    memset(&t, 0, sizeof t);
    t.ops = &ops;
    t.fe = PROTO_FE_C2S;
    t.cfg = config_defaults();
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t.lfd[i] = -1;
    CHECK_INT(net_prefix_parse(from, &prefix, why, sizeof why), ==, 0);
    proxy = (struct config_proxy){.from = {.n = 1, .prefixes = &prefix}, .timeout = 5, .max_header = 512};
    t.proxy = &proxy;
    CHECK_INT(io_uring_queue_init(256, &t.ring, 0), ==, 0);
    CHECK_INT(fe_pool_init(&t, 8), ==, 0);
    fe_current = &t;

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 16) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
}

static void thread_close(void)
{
    for (uint32_t i = 0; i < t.nslots; i++) {
        struct fe_conn *c = fe_slot(&t, i);
        if (c->state != FE_FREE) {
            fe_close(c);
            c->ops = 0;
            fe_maybe_release(c);
        }
    }
    fe_pool_free(&t);
    io_uring_queue_exit(&t.ring);
    config_free(t.cfg);
    close(lfd);
}

/* A connection accepted on listener 1 from 127.0.0.1, as the loop takes it; *client gets
 * the client's end (closed by the caller). */
static struct fe_conn *connect_one(int *client)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(connect(*client, (struct sockaddr *)&sa, sizeof sa) == 0);
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    CHECK(fd >= 0);
    struct fe_conn *c = fe_conn_new(&t, fd, false);
    CHECK(c != NULL);
    accepts = opens = errors = 0;
    listener_seen = 9;
    fe_accepted(c, 1);
    return c;
}

static void drop(struct fe_conn *c, int client)
{
    fe_close(c);
    c->ops = 0; /* the loop would see its receive and send end */
    fe_maybe_release(c);
    close(client);
}

static const char *peer(const struct fe_conn *c)
{
    static char buf[NET_ADDR_TEXT];
    return net_addr_text(&c->peer, buf);
}

static bool written(const struct fe_conn *c)
{
    return buf_used(&c->out) || buf_used(&c->next);
}

/* A v2 PROXY header over TCP/IPv4 for 192.0.2.1:56324 -> 198.51.100.1:5222, and a TLV. */
static size_t v2_tcp4(uint8_t *b, unsigned cmd)
{
    static const uint8_t h[] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n',
                                0x20, 0x11, 0, 12 + 5, 192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04,
                                0x14, 0x66, 0x05, 0, 2, 'i', 'd'};
    memcpy(b, h, sizeof h);
    b[12] = (uint8_t)(0x20 | cmd);
    return sizeof h;
}

/* The header and the stream header after it, in two receives cut at every byte. */
static void cut_everywhere(const uint8_t *msg, size_t n, const char *client_addr)
{
    for (size_t k = 0; k <= n; k++) {
        int client;
        struct fe_conn *c = connect_one(&client);
        CHECK_INT(c->state, ==, FE_PROXY);
        CHECK_INT(accepts, ==, 0);
        if (k)
            fe_conn_input(c, (const char *)msg, k);
        if (k < n)
            fe_conn_input(c, (const char *)msg + k, n - k);
        if (accepts != 1 || opens != 1 || errors || strcmp(peer(c), client_addr) || written(c))
            TEST_FAIL("cut at %zu: %u accepts, %u opens, %u errors, peer %s", k, accepts, opens,
                      errors, peer(c));
        CHECK_INT(listener_seen, ==, 1);
        CHECK_INT(buf_used(&c->in), ==, 0);
        drop(c, client);
    }
}

static void header_cut_everywhere(void)
{
    thread_open("127.0.0.1");
    char v1[256];
    snprintf(v1, sizeof v1, "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\r\n%s", STREAM);
    cut_everywhere((const uint8_t *)v1, strlen(v1), "192.0.2.1:56324");
    snprintf(v1, sizeof v1, "PROXY TCP6 2001:db8::1 ::1 1 5222\r\n%s", STREAM);
    cut_everywhere((const uint8_t *)v1, strlen(v1), "[2001:db8::1]:1");
    uint8_t v2[256];
    size_t n = v2_tcp4(v2, 1);
    memcpy(v2 + n, STREAM, strlen(STREAM));
    cut_everywhere(v2, n + strlen(STREAM), "192.0.2.1:56324");
    thread_close();
}

/* LOCAL (a health check) and UNKNOWN keep the balancer's address: the socket's. */
static void local_keeps_the_balancer(void)
{
    thread_open("127.0.0.0/8");
    uint8_t b[256];
    size_t n = v2_tcp4(b, 0);
    memcpy(b + n, STREAM, strlen(STREAM));
    int client;
    struct fe_conn *c = connect_one(&client);
    fe_conn_input(c, (const char *)b, n + strlen(STREAM));
    CHECK_INT(accepts, ==, 1);
    CHECK_INT(opens, ==, 1);
    CHECK(!strncmp(peer(c), "127.0.0.1:", 10));
    drop(c, client);
    c = connect_one(&client);
    fe_conn_input(c, "PROXY UNKNOWN\r\n", 15);
    CHECK_INT(accepts, ==, 1);
    CHECK(!strncmp(peer(c), "127.0.0.1:", 10));
    drop(c, client);
    thread_close();
}

/* What is not a whole, valid header in time closes the connection, with nothing written
 * and the front end never told. */
static void no_header_closed(void)
{
    thread_open("127.0.0.1/32");
    uint8_t big[600];
    size_t n = v2_tcp4(big, 1);
    big[14] = 0x02, big[15] = 0x00; /* 512 bytes after the 16: over max_header */
    const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {STREAM, strlen(STREAM)},
        {"PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\n", 45},
        {(const char *)big, n},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int client;
        struct fe_conn *c = connect_one(&client);
        fe_conn_input(c, bad[i].p, bad[i].n);
        if (c->state != FE_CLOSING || accepts || written(c))
            TEST_FAIL("case %zu: state %u, %u accepts", i, c->state, accepts);
        drop(c, client);
    }
    /* In pieces, the oversized header is refused as soon as its length is in. */
    int client;
    struct fe_conn *c = connect_one(&client);
    fe_conn_input(c, (const char *)big, 15);
    CHECK_INT(c->state, ==, FE_PROXY);
    fe_conn_input(c, (const char *)big + 15, 1);
    CHECK_INT(c->state, ==, FE_CLOSING);
    drop(c, client);
    /* None in time: the sweep closes it; before its deadline it waits. */
    c = connect_one(&client);
    fe_conn_input(c, "PROXY TCP4", 10);
    fe_proxy_tick(c);
    CHECK_INT(c->state, ==, FE_PROXY);
    t.now = c->deadline;
    fe_proxy_tick(c);
    CHECK_INT(c->state, ==, FE_CLOSING);
    CHECK(!written(c) && !accepts);
    drop(c, client);
    /* A stream error (system-shutdown at a stop) says nothing to a balancer. */
    c = connect_one(&client);
    fe_stream_error(c, "system-shutdown");
    CHECK_INT(c->state, ==, FE_CLOSING);
    CHECK(!written(c));
    drop(c, client);
    thread_close();
}

/* From an address not in proxy_from, the front end has the connection at once, with the
 * socket's address, and a header is its stream's first bytes (not XML). */
static void others_never_read_a_header(void)
{
    thread_open("10.0.0.0/8");
    int client;
    struct fe_conn *c = connect_one(&client);
    CHECK_INT(accepts, ==, 1);
    CHECK_INT(c->state, ==, FE_HEADER);
    CHECK(!strncmp(peer(c), "127.0.0.1:", 10));
    const char *h = "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\r\n" STREAM;
    fe_conn_input(c, h, strlen(h));
    CHECK_INT(opens, ==, 0);
    CHECK_INT(errors, ==, 1);
    CHECK(!strncmp(peer(c), "127.0.0.1:", 10));
    drop(c, client);
    thread_close();
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    RUN(header_cut_everywhere);
    RUN(local_keeps_the_balancer);
    RUN(no_header_closed);
    RUN(others_never_read_a_header);
    return test_done("fe_proxy");
}
