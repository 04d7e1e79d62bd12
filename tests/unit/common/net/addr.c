/*
 * Tests common/net/addr.c: prefixes as c2s.proxy_from lists them (their normal form, what
 * is refused) and which addresses they hold, IPv4-mapped addresses as their IPv4 selves,
 * addresses written for a log line, and the peer of a socket.
 */
#include "common/net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>

#include "test.h"

static union net_addr ip(const char *s, uint16_t port)
{
    union net_addr a = {0};
    if (inet_pton(AF_INET, s, &a.in.sin_addr) == 1) {
        a.in.sin_family = AF_INET;
        a.in.sin_port = htons(port);
    } else if (inet_pton(AF_INET6, s, &a.in6.sin6_addr) == 1) {
        a.in6.sin6_family = AF_INET6;
        a.in6.sin6_port = htons(port);
    }
    return a;
}

static void prefixes(void)
{
    static const struct {
        const char *in, *norm;
    } ok[] = {
        {"127.0.0.1", "127.0.0.1/32"},   {"10.0.0.0/8", "10.0.0.0/8"},
        {"0.0.0.0/0", "0.0.0.0/0"},      {"192.0.2.128/25", "192.0.2.128/25"},
        {"::1", "::1/128"},              {"2001:DB8::/32", "2001:db8::/32"},
        {"::/0", "::/0"},                {"::ffff:192.0.2.0/120", "192.0.2.0/24"},
        {"::ffff:10.1.2.3", "10.1.2.3/32"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        struct net_prefix p;
        char why[160];
        if (net_prefix_parse(ok[i].in, &p, why, sizeof why) != 0)
            TEST_FAIL("%s refused: %s", ok[i].in, why);
        else
            CHECK_STR(p.text, ok[i].norm);
    }
    static const char *const bad[] = {
        "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/08", "10.0.0.0/8/8", "10.0.0.0 /8", "localhost", "[::1]", "127.0.0.1:5222",
        "10.0.0.1/8", "2001:db8::1/32", "192.0.2.129/25",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct net_prefix p;
        char why[160] = "";
        if (net_prefix_parse(bad[i], &p, why, sizeof why) != -EINVAL)
            TEST_FAIL("accepted: \"%s\"", bad[i]);
        CHECK(why[0]);
    }
}

static bool in(const char *prefix, const char *addr)
{
    struct net_prefix p;
    char why[160];
    union net_addr a = ip(addr, 1);
    net_addr_unmap(&a);
    return net_prefix_parse(prefix, &p, why, sizeof why) == 0 && net_prefix_match(&p, &a);
}

static void matches(void)
{
    CHECK(in("10.0.0.0/8", "10.255.1.2"));
    CHECK(!in("10.0.0.0/8", "11.0.0.0"));
    CHECK(in("192.0.2.128/25", "192.0.2.255"));
    CHECK(!in("192.0.2.128/25", "192.0.2.127"));
    CHECK(in("127.0.0.2", "127.0.0.2"));
    CHECK(!in("127.0.0.2", "127.0.0.3"));
    CHECK(in("0.0.0.0/0", "203.0.113.9"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!in("2001:db8::/33", "2001:db8:8000::1"));
    CHECK(in("::1", "::1"));
    /* Families never meet; a mapped address is its IPv4 address, whichever way written. */
    CHECK(!in("::/0", "127.0.0.1"));
    CHECK(!in("0.0.0.0/0", "::1"));
    CHECK(in("127.0.0.0/8", "::ffff:127.0.0.9"));
    CHECK(in("::ffff:127.0.0.0/104", "127.0.0.9"));
}

static void texts(void)
{
    char buf[NET_ADDR_TEXT];
    union net_addr a = ip("192.0.2.1", 5222), none = {0};
    CHECK_STR(net_addr_text(&a, buf), "192.0.2.1:5222");
    a = ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535); /* the longest */
    CHECK_STR(net_addr_text(&a, buf), "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
    a = ip("::ffff:192.0.2.1", 7);
    net_addr_unmap(&a);
    CHECK_INT(a.sa.sa_family, ==, AF_INET);
    CHECK_STR(net_addr_text(&a, buf), "192.0.2.1:7");
    CHECK_STR(net_addr_text(&none, buf), "-");
}

static void peers(void)
{
    union net_addr a;
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK_INT(net_addr_peer(sv[0], &a), ==, -EAFNOSUPPORT);
    CHECK_INT(a.sa.sa_family, ==, AF_UNSPEC);
    close(sv[0]);
    close(sv[1]);
    CHECK_INT(net_addr_peer(-1, &a), ==, -EBADF);
    CHECK_INT(net_addr_peer(0 /* not a socket, or one with no peer */, &a), <, 0);
}

int main(void)
{
    RUN(prefixes);
    RUN(matches);
    RUN(texts);
    RUN(peers);
    return test_done("addr");
}
