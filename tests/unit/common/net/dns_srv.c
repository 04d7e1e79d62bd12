/*
 * Tests common/net/dns_srv.c: SRV answers built byte by byte (RFC 1035 §4.1 layout, RFC
 * 2782 records): targets, ".", TTLs, compression, names that are not host names, every
 * kind of malformed message; and RFC 2782's order, its weighted draw measured over many
 * draws from a fixed seed.
 */
#include "common/net/dns_srv.h"

#include <errno.h>
#include <stdbool.h>

#include "test.h"

/* ---- a message builder ------------------------------------------------------------------- */

struct msg {
    uint8_t b[4096];
    size_t n;
};

static void put8(struct msg *m, unsigned v)
{
    m->b[m->n++] = (uint8_t)v;
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v & 0xff);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* A name in labels; "" is the root. */
static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)len);
        memcpy(m->b + m->n, name, len);
        m->n += len;
        name += len + (dot ? 1 : 0);
    }
    put8(m, 0);
}

/* A response header with one question and `an` answers, then the question. */
static void start(struct msg *m, unsigned an)
{
    m->n = 0;
    put16(m, 0x1234);
    put16(m, 0x8180); /* a response, recursion desired and available, NOERROR */
    put16(m, 1);
    put16(m, an);
    put16(m, 0);
    put16(m, 0);
    put_name(m, "_xmpp-server._tcp.example.net");
    put16(m, DNS_T_SRV);
    put16(m, DNS_C_IN);
}

/* An SRV record owned by the question's name (a pointer to offset 12). */
static void put_srv(struct msg *m, uint32_t ttl, unsigned prio, unsigned weight, unsigned port,
                    const char *target)
{
    put16(m, 0xc00c);
    put16(m, DNS_T_SRV);
    put16(m, DNS_C_IN);
    put32(m, ttl);
    size_t len_at = m->n;
    put16(m, 0);
    put16(m, prio);
    put16(m, weight);
    put16(m, port);
    put_name(m, target);
    size_t rdlen = m->n - len_at - 2;
    m->b[len_at] = (uint8_t)(rdlen >> 8);
    m->b[len_at + 1] = (uint8_t)rdlen;
}

static int parse(const struct msg *m, struct dns_srv *out, size_t max, struct dns_srv_answer *a)
{
    uint64_t rng = 42;
    return dns_srv_parse(m->b, m->n, out, max, &rng, a);
}

/* ---- reading ----------------------------------------------------------------------------- */

static void targets_and_ttl(void)
{
    struct msg m;
    struct dns_srv out[8];
    struct dns_srv_answer a;
    /* RFC 6120 §3.2.1's kind of answer: two priorities; a CNAME first, as a recursive
     * server writes the alias it followed (its TTL counts too). */
    start(&m, 4);
    put16(&m, 0xc00c);
    put16(&m, DNS_T_CNAME);
    put16(&m, DNS_C_IN);
    put32(&m, 50);
    put16(&m, 2);
    put16(&m, 0xc00c);
    put_srv(&m, 300, 10, 0, 5269, "Backup.Example.NET");
    put_srv(&m, 120, 0, 0, 5269, "xmpp.example.net");
    put_srv(&m, 0x80000005, 20, 0, 5270, "last.example.net"); /* top bit: counts as 0 */
    CHECK_INT(parse(&m, out, 8, &a), ==, 0);
    CHECK_INT(a.n, ==, 3);
    CHECK(!a.dot);
    CHECK_INT(a.ttl, ==, 0);
    CHECK_STR(out[0].target, "xmpp.example.net");
    CHECK_INT(out[0].priority, ==, 0);
    CHECK_STR(out[1].target, "backup.example.net"); /* lower case */
    CHECK_INT(out[1].port, ==, 5269);
    CHECK_STR(out[2].target, "last.example.net");
    CHECK_INT(out[2].port, ==, 5270);

    /* The TTL is the least of those read; max keeps the first targets in order. */
    start(&m, 3);
    put_srv(&m, 600, 5, 0, 1, "c.example");
    put_srv(&m, 300, 1, 0, 1, "a.example");
    put_srv(&m, 900, 3, 0, 1, "b.example");
    CHECK_INT(parse(&m, out, 2, &a), ==, 0);
    CHECK_INT(a.n, ==, 2);
    CHECK_INT(a.ttl, ==, 300);
    CHECK_STR(out[0].target, "a.example");
    CHECK_STR(out[1].target, "b.example");

    /* No SRV record at all (a CNAME only): n = 0, no TTL of an SRV. */
    start(&m, 0);
    CHECK_INT(parse(&m, out, 8, &a), ==, 0);
    CHECK_INT(a.n, ==, 0);
    CHECK_INT(a.ttl, ==, UINT32_MAX);
}

static void dot_and_skipped_records(void)
{
    struct msg m;
    struct dns_srv out[8];
    struct dns_srv_answer a;
    static char longname[300];
    /* 4 labels of 63 bytes: 255 bytes in text, over DNS_NAME_MAX */
    for (int i = 0; i < 4; i++) {
        memset(longname + i * 64, 'a', 63);
        longname[i * 64 + 63] = i < 3 ? '.' : '\0';
    }
    start(&m, 6);
    put_srv(&m, 60, 0, 0, 0, "."); /* RFC 2782: "decidedly not available" */
    put_srv(&m, 60, 0, 0, 5269, "");
    put_srv(&m, 60, 0, 0, 0, "portless.example"); /* port 0: nothing to connect to */
    put_srv(&m, 60, 0, 0, 5269, "bad name.example");
    put_srv(&m, 60, 0, 0, 5269, longname);
    put_srv(&m, 60, 1, 0, 5269, "good_1-x.example");
    CHECK_INT(parse(&m, out, 8, &a), ==, 0);
    CHECK(a.dot);
    CHECK_INT(a.n, ==, 1);
    CHECK_STR(out[0].target, "good_1-x.example");
}

static void compression(void)
{
    struct msg m;
    struct dns_srv out[2];
    struct dns_srv_answer a;
    /* A target compressed against the question: "xmpp" + pointer to "example.net"
     * (offset 12 + 1 + 12 + 1 + 4 = 30 in the question). */
    start(&m, 1);
    put16(&m, 0xc00c);
    put16(&m, DNS_T_SRV);
    put16(&m, DNS_C_IN);
    put32(&m, 60);
    put16(&m, 6 + 5 + 2);
    put16(&m, 0);
    put16(&m, 0);
    put16(&m, 5269);
    put8(&m, 4);
    memcpy(m.b + m.n, "xmpp", 4);
    m.n += 4;
    put16(&m, 0xc000 | 30);
    CHECK_INT(parse(&m, out, 2, &a), ==, 0);
    CHECK_INT(a.n, ==, 1);
    CHECK_STR(out[0].target, "xmpp.example.net");
}

/* Each message must be refused whole, without reading outside it. */
static void malformed(void)
{
    struct msg m;
    struct dns_srv out[2];
    struct dns_srv_answer a;
    size_t base;

    start(&m, 1);
    CHECK_INT(dns_srv_parse(m.b, 11, out, 2, &(uint64_t){1}, &a), ==, -EBADMSG); /* header */
    m.n -= 2;
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG); /* question cut */

    start(&m, 2);
    put_srv(&m, 60, 0, 0, 5269, "a.example");
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG); /* one answer of two */

    start(&m, 1);
    put_srv(&m, 60, 0, 0, 5269, "a.example");
    m.n -= 1;
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG); /* RDATA cut */

    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "a.example");
    m.b[base + 11] = 3; /* RDLENGTH 3: shorter than an SRV's fixed part */
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);

    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "a.example");
    m.b[base + 11] -= 2; /* the target runs past RDLENGTH */
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);

    /* Compression pointers that loop or point forward. */
    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "x");
    m.b[base + 18] = 0xc0; /* the target "x" becomes a pointer to itself */
    m.b[base + 19] = (uint8_t)(base + 18);
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);

    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "x");
    m.b[base + 18] = 0xc0; /* a pointer forward, past the message */
    m.b[base + 19] = 0xff;
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);

    /* a label of the reserved types 0x40 and 0x80 */
    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "abc.example");
    m.b[base + 18] = 0x43;
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);

    /* A pointer back to its own name's start ("ab", then a pointer to "ab"...): a loop. */
    start(&m, 1);
    base = m.n;
    put_srv(&m, 60, 0, 0, 5269, "ab");
    m.b[base + 21] = 0xc0; /* the final 0 of "ab" */
    m.b[base + 22] = (uint8_t)(base + 18);
    m.n++;
    m.b[base + 11] += 1;
    CHECK_INT(parse(&m, out, 2, &a), ==, -EBADMSG);
}

/* ---- order ------------------------------------------------------------------------------- */

/* Draws the first pick of rr over many orderings; counts how often each index wins. */
static void first_picks(const struct dns_srv_rr *rr, size_t n, unsigned *wins, unsigned draws)
{
    uint64_t rng = 7;
    struct dns_srv_rr t[8];
    memset(wins, 0, n * sizeof *wins);
    for (unsigned d = 0; d < draws; d++) {
        memcpy(t, rr, n * sizeof *t);
        dns_srv_order(t, n, n, &rng);
        wins[t[0].target]++; /* the target field carries the index here */
    }
}

static void weighted_order(void)
{
    enum { DRAWS = 20000 };
    unsigned wins[8];
    /* Weights 60, 30, 10 (and 0) at one priority: the first pick follows the weights;
     * weight 0 wins only on a draw of exactly 0 (1 in 101). */
    const struct dns_srv_rr w[] = {{0, 0, 1, 0}, {0, 60, 1, 1}, {0, 30, 1, 2}, {0, 10, 1, 3}};
    first_picks(w, 4, wins, DRAWS);
    CHECK_INT(wins[0], >, DRAWS / 200);
    CHECK_INT(wins[0], <, DRAWS / 50);
    CHECK_INT(wins[1], >, DRAWS * 56 / 100);
    CHECK_INT(wins[1], <, DRAWS * 64 / 100);
    CHECK_INT(wins[2], >, DRAWS * 27 / 100);
    CHECK_INT(wins[2], <, DRAWS * 33 / 100);
    CHECK_INT(wins[3], >, DRAWS * 8 / 100);
    CHECK_INT(wins[3], <, DRAWS * 12 / 100);

    /* Every weight 0: each as likely as the others. */
    const struct dns_srv_rr z[] = {{0, 0, 1, 0}, {0, 0, 1, 1}, {0, 0, 1, 2}, {0, 0, 1, 3}};
    first_picks(z, 4, wins, DRAWS);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(wins[i], >, DRAWS * 22 / 100);
        CHECK_INT(wins[i], <, DRAWS * 28 / 100);
    }

    /* Priority first, whatever the weights: a lower priority always comes first, and
     * every record appears exactly once. */
    struct dns_srv_rr p[] = {{20, 1000, 1, 0}, {10, 1, 1, 1}, {10, 1, 1, 2}, {30, 5, 1, 3}};
    uint64_t rng = 1;
    dns_srv_order(p, 4, 4, &rng);
    CHECK_INT(p[0].priority, ==, 10);
    CHECK_INT(p[1].priority, ==, 10);
    CHECK_INT(p[2].priority, ==, 20);
    CHECK_INT(p[3].priority, ==, 30);
    CHECK_INT(p[0].target + p[1].target, ==, 3);

    /* keep stops the draw, the kept ones are the best priorities */
    struct dns_srv_rr k[] = {{3, 1, 1, 0}, {1, 1, 1, 1}, {2, 1, 1, 2}};
    dns_srv_order(k, 3, 1, &rng);
    CHECK_INT(k[0].priority, ==, 1);
}

int main(void)
{
    RUN(targets_and_ttl);
    RUN(dot_and_skipped_records);
    RUN(compression);
    RUN(malformed);
    RUN(weighted_order);
    return test_done("dns_srv");
}
