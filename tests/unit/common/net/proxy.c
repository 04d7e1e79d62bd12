/*
 * Tests common/net/proxy.c: PROXY protocol headers as HAProxy's proxy-protocol.txt writes
 * them: v1 over TCP4, TCP6 and UNKNOWN; v2 PROXY over IPv4 and IPv6, with TLVs, LOCAL,
 * UNSPEC, Unix sockets and UDP; each incomplete at every byte short of its end (as a
 * header cut anywhere arrives) and followed by the client's bytes; then what must be refused:
 * other signatures, truncated and oversized headers, bad fields and lengths.
 */
#include "common/net/proxy.h"

#include <arpa/inet.h>

#include "test.h"

#define MAX_V2 1024

/* A v2 header: the signature, ver_cmd, fam, then body[0..len) (the length is len). */
static size_t v2(uint8_t *out, unsigned ver_cmd, unsigned fam, const void *body, size_t len)
{
    static const uint8_t sig[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
    memcpy(out, sig, 12);
    out[12] = (uint8_t)ver_cmd;
    out[13] = (uint8_t)fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    memcpy(out + 16, body, len);
    return 16 + len;
}

/* The IPv4 block: 192.0.2.1:56324 -> 198.51.100.1:5222. */
static const uint8_t v4_block[12] = {192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0x14, 0x66};

static const char *text(const union net_addr *a)
{
    static char buf[2][NET_ADDR_TEXT];
    static int i;
    i ^= 1;
    return net_addr_text(a, buf[i]);
}

/* p[0..n) is a whole header of hlen bytes (then the client's bytes): DONE for all of it,
 * DONE alike with only the header, INCOMPLETE for every shorter prefix. Returns the
 * answer for all of p. */
static struct proxy_header whole(const void *p, size_t n, size_t hlen)
{
    struct proxy_header h, g;
    CHECK_INT(proxy_parse(p, n, MAX_V2, &h), ==, PROXY_DONE);
    CHECK_INT(h.len, ==, hlen);
    CHECK_INT(proxy_parse(p, hlen, MAX_V2, &g), ==, PROXY_DONE);
    CHECK(!memcmp(&g.src, &h.src, sizeof g.src) && g.has_addr == h.has_addr);
    for (size_t k = 0; k < hlen; k++)
        if (proxy_parse(p, k, MAX_V2, &g) != PROXY_INCOMPLETE)
            TEST_FAIL("a prefix of %zu of %zu bytes is not incomplete: %s", k, hlen,
                      g.why ? g.why : "done");
    return h;
}

static void v1_tcp4(void)
{
    const char *s = "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\r\n<?xml version='1.0'?>";
    struct proxy_header h = whole(s, strlen(s), strlen(s) - strlen("<?xml version='1.0'?>"));
    CHECK_INT(h.version, ==, 1);
    CHECK(h.has_addr);
    CHECK_STR(text(&h.src), "192.0.2.1:56324");
    CHECK_STR(text(&h.dst), "198.51.100.1:5222");
}

static void v1_tcp6(void)
{
    const char *s = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n\x16\x03\x01";
    struct proxy_header h = whole(s, strlen(s), strlen(s) - 3);
    CHECK(h.has_addr);
    CHECK_STR(text(&h.src), "[2001:db8::1]:65535");
    CHECK_STR(text(&h.dst), "[2001:db8::2]:0");
    /* An IPv4-mapped source is the header's to say; the layer unmaps it. */
    s = "PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n";
    h = whole(s, strlen(s), strlen(s));
    net_addr_unmap(&h.src);
    CHECK_STR(text(&h.src), "192.0.2.7:1");
}

static void v1_unknown(void)
{
    const char *s = "PROXY UNKNOWN\r\n";
    struct proxy_header h = whole(s, strlen(s), strlen(s));
    CHECK(!h.has_addr);
    CHECK_INT(h.src.sa.sa_family, ==, AF_UNSPEC);
    /* What follows UNKNOWN up to the CR LF is ignored. */
    s = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nxyz";
    h = whole(s, strlen(s), strlen(s) - 3);
    CHECK(!h.has_addr);
}

/* The longest TCP line is 104 bytes (TCP6, full-length addresses and ports); UNKNOWN may
 * carry more, up to the 107 bytes of any v1 line. */
static void v1_longest(void)
{
    const char *s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    CHECK_INT(strlen(s), ==, 104);
    whole(s, strlen(s), 104);
    char longest[160], longer[160];
    snprintf(longest, sizeof longest, "PROXY UNKNOWN %91s\r\n", "x");
    CHECK_INT(strlen(longest), ==, PROXY_V1_MAX);
    whole(longest, strlen(longest), PROXY_V1_MAX);
    /* 108 bytes of a line, even with a CR LF at its end, are not a header... */
    snprintf(longer, sizeof longer, "PROXY UNKNOWN %92s\r\n", "x");
    CHECK_INT(strlen(longer), ==, PROXY_V1_MAX + 1);
    struct proxy_header h;
    CHECK_INT(proxy_parse(longer, strlen(longer), MAX_V2, &h), ==, PROXY_INVALID);
    /* ...and that is known once 106 bytes hold no CR: the line cannot end in time. */
    CHECK_INT(proxy_parse(longer, PROXY_V1_MAX - 1, MAX_V2, &h), ==, PROXY_INVALID);
    CHECK_INT(proxy_parse(longer, PROXY_V1_MAX - 2, MAX_V2, &h), ==, PROXY_INCOMPLETE);
}

static void v1_bad(void)
{
    static const char *const bad[] = {
        "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\n",      /* LF without CR */
        "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222\rX",     /* CR without LF */
        "PROXY TCP4 192.0.2.1  198.51.100.1 56324 5222\r\n",   /* two spaces */
        "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222 \r\n",   /* a trailing space */
        "PROXY TCP4 192.0.2.1 198.51.100.1 56324\r\n",         /* a field missing */
        "PROXY TCP4 192.0.2.1 198.51.100.1 56324 5222 1\r\n",  /* a field more */
        "PROXY TCP4 2001:db8::1 198.51.100.1 56324 5222\r\n",  /* IPv6 in TCP4 */
        "PROXY TCP6 192.0.2.1 2001:db8::1 56324 5222\r\n",     /* IPv4 in TCP6 */
        "PROXY TCP4 192.0.2.256 198.51.100.1 56324 5222\r\n",  /* not an address */
        "PROXY TCP4 192.0.2.1 198.51.100.1 65536 5222\r\n",    /* port too large */
        "PROXY TCP4 192.0.2.1 198.51.100.1 05222 5222\r\n",    /* leading zero */
        "PROXY TCP4 192.0.2.1 198.51.100.1 -1 5222\r\n",       /* a sign */
        "PROXY TCP4 192.0.2.1 198.51.100.1 5x 5222\r\n",       /* not a number */
        "PROXY UDP4 192.0.2.1 198.51.100.1 56324 5222\r\n",    /* not TCP */
        "PROXY tcp4 192.0.2.1 198.51.100.1 56324 5222\r\n",    /* case matters */
        "PROXY UNKNOWNX\r\n",                                  /* not UNKNOWN */
        "PROXY \r\n",                                          /* nothing */
        "PROXY TCP4 192.0.2.1 198.51.100.1 5\t 5222\r\n",      /* a control byte */
        "PROXY TCP4 192.0.2.1 198.51.100.1 5\xc3\xa9 5222\r\n", /* not ASCII */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct proxy_header h;
        if (proxy_parse(bad[i], strlen(bad[i]), MAX_V2, &h) != PROXY_INVALID)
            TEST_FAIL("accepted: %s", bad[i]);
        else
            CHECK(h.why != NULL);
    }
}

static void v2_tcp4(void)
{
    uint8_t b[64];
    size_t n = v2(b, 0x21, 0x11, v4_block, sizeof v4_block);
    memcpy(b + n, "<?xml", 5);
    struct proxy_header h = whole(b, n + 5, n);
    CHECK_INT(h.version, ==, 2);
    CHECK(h.has_addr);
    CHECK_STR(text(&h.src), "192.0.2.1:56324");
    CHECK_STR(text(&h.dst), "198.51.100.1:5222");
}

static void v2_tcp6(void)
{
    uint8_t body[36] = {0}, b[64];
    inet_pton(AF_INET6, "2001:db8::1", body);
    inet_pton(AF_INET6, "2001:db8::2", body + 16);
    body[32] = 0x12, body[33] = 0x34, body[34] = 0x14, body[35] = 0x66;
    size_t n = v2(b, 0x21, 0x21, body, sizeof body);
    struct proxy_header h = whole(b, n, n);
    CHECK(h.has_addr);
    CHECK_STR(text(&h.src), "[2001:db8::1]:4660");
    CHECK_STR(text(&h.dst), "[2001:db8::2]:5222");
}

/* TLVs (AWS's, HAProxy's unique id, a NOOP of padding) are skipped, but must fill the
 * header exactly. */
static void v2_tlvs(void)
{
    uint8_t body[64], b[128];
    memcpy(body, v4_block, 12);
    size_t n = 12;
    const uint8_t tlvs[] = {0x05, 0, 4, 'a', 'b', 'c', 'd', /* PP2_TYPE_UNIQUE_ID */
                            0x04, 0, 0,                     /* PP2_TYPE_NOOP, empty */
                            0xEA, 0, 2, 1, 'x'};            /* PP2_TYPE_AWS */
    memcpy(body + n, tlvs, sizeof tlvs);
    n += sizeof tlvs;
    size_t hn = v2(b, 0x21, 0x11, body, n);
    struct proxy_header h = whole(b, hn, hn);
    CHECK_STR(text(&h.src), "192.0.2.1:56324");
    /* A TLV whose length runs past the header, and one cut before its length. */
    body[12 + 2] = 5;
    hn = v2(b, 0x21, 0x11, body, n);
    CHECK_INT(proxy_parse(b, hn, MAX_V2, &h), ==, PROXY_INVALID);
    body[12 + 2] = 4;
    hn = v2(b, 0x21, 0x11, body, 12 + 2);
    CHECK_INT(proxy_parse(b, hn, MAX_V2, &h), ==, PROXY_INVALID);
}

/* LOCAL (a balancer's health check) keeps the connection's address, whatever its family
 * byte and block say; so do UNSPEC, Unix sockets and UDP under PROXY. */
static void v2_no_client(void)
{
    static const struct {
        unsigned ver_cmd, fam;
        size_t len;
    } cases[] = {
        {0x20, 0x00, 0}, {0x20, 0x11, 12}, {0x20, 0xff, 5}, /* LOCAL */
        {0x21, 0x00, 0}, {0x21, 0x00, 7},                   /* PROXY, UNSPEC */
        {0x21, 0x31, 216}, {0x21, 0x32, 216},               /* Unix sockets */
        {0x21, 0x12, 12}, {0x21, 0x22, 36},                 /* UDP */
        {0x21, 0x10, 12},                                   /* IPv4, UNSPEC transport */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint8_t body[216] = {0}, b[256];
        if (cases[i].fam == 0x00 && cases[i].len == 7) /* UNSPEC's block is all TLVs */
            memcpy(body, (uint8_t[]){0x04, 0, 4, 1, 2, 3, 4}, 7);
        size_t n = v2(b, cases[i].ver_cmd, cases[i].fam, body, cases[i].len);
        struct proxy_header h = whole(b, n, n);
        if (h.has_addr || h.src.sa.sa_family != AF_UNSPEC)
            TEST_FAIL("case %zu names a client", i);
    }
}

static void v2_bad(void)
{
    uint8_t b[2048], body[1100] = {0};
    struct proxy_header h;
    size_t n;
    /* Version 1 or 3 in the binary form; a command past PROXY. */
    n = v2(b, 0x11, 0x11, v4_block, 12);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    n = v2(b, 0x31, 0x11, v4_block, 12);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    n = v2(b, 0x22, 0x11, v4_block, 12);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    /* Unknown families and transports, refused from the fixed part on. */
    n = v2(b, 0x21, 0x41, v4_block, 12);
    CHECK_INT(proxy_parse(b, 16, MAX_V2, &h), ==, PROXY_INVALID);
    n = v2(b, 0x21, 0x13, v4_block, 12);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    /* A block too short for its addresses. */
    n = v2(b, 0x21, 0x11, v4_block, 11);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    n = v2(b, 0x21, 0x21, body, 35);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_INVALID);
    /* Longer than the bound: refused once the length is in, before the rest comes. */
    n = v2(b, 0x21, 0x11, body, MAX_V2 - 16 + 1);
    CHECK_INT(proxy_parse(b, 16, MAX_V2, &h), ==, PROXY_INVALID);
    CHECK_INT(proxy_parse(b, 15, MAX_V2, &h), ==, PROXY_INCOMPLETE);
    n = v2(b, 0x20, 0x00, body, MAX_V2 - 16);
    CHECK_INT(proxy_parse(b, n, MAX_V2, &h), ==, PROXY_DONE);
    /* Truncated: a header that ends before its length says is incomplete, never done. */
    n = v2(b, 0x21, 0x11, v4_block, 12);
    CHECK_INT(proxy_parse(b, n - 1, MAX_V2, &h), ==, PROXY_INCOMPLETE);
}

static void bad_signatures(void)
{
    static const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {"<?xml version='1.0'?>", 21}, /* a client that did not go through the balancer */
        {"\x16\x03\x01\x02\x00", 5},   /* a TLS ClientHello */
        {"GET / HTTP/1.1\r\n", 16},
        {"PROXYX", 6},                 /* "PROXY" then a byte other than a space */
        {"proxy TCP4", 10},
        {"\r\n\r\n\0\r\nQUIT\r", 12},   /* v2's signature but its last byte */
        {"\r\n\r\n\r\n", 6},
        {"", 1},                       /* a NUL */
    };
    struct proxy_header h;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (proxy_parse(bad[i].p, bad[i].n, MAX_V2, &h) != PROXY_INVALID)
            TEST_FAIL("signature %zu accepted", i);
    }
    /* What could still become a signature waits; the first byte that cannot is refused. */
    CHECK_INT(proxy_parse("", 0, MAX_V2, &h), ==, PROXY_INCOMPLETE);
    CHECK_INT(proxy_parse("PROX", 4, MAX_V2, &h), ==, PROXY_INCOMPLETE);
    CHECK_INT(proxy_parse("PROXY ", 6, MAX_V2, &h), ==, PROXY_INCOMPLETE);
    CHECK_INT(proxy_parse("\r\n\r\n\0\r", 6, MAX_V2, &h), ==, PROXY_INCOMPLETE);
    CHECK_INT(proxy_parse("PRX", 3, MAX_V2, &h), ==, PROXY_INVALID);
}

int main(void)
{
    RUN(v1_tcp4);
    RUN(v1_tcp6);
    RUN(v1_unknown);
    RUN(v1_longest);
    RUN(v1_bad);
    RUN(v2_tcp4);
    RUN(v2_tcp6);
    RUN(v2_tlvs);
    RUN(v2_no_client);
    RUN(v2_bad);
    RUN(bad_signatures);
    return test_done("proxy");
}
