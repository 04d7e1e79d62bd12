/* Tests c2s/limit.c: address keys, connection counts, the login pace, failure allowances. */
#include "c2s/limit.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#define S 1000000ull /* microseconds */

/* Start far from 0, as CLOCK_MONOTONIC is: tat arithmetic must not rely on a small now. */
#define T0 (1000 * S)

static uint32_t key4(const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    return limit_peer_of((struct sockaddr *)&a);
}

static uint32_t key6(const char *ip)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return limit_peer_of((struct sockaddr *)&a);
}

static void address_keys(void)
{
    CHECK(key4("192.0.2.1") != 0);
    CHECK(key4("192.0.2.1") == key4("192.0.2.1"));
    CHECK(key4("192.0.2.1") != key4("192.0.2.2"));
    /* An IPv6 /64 is one address; the next /64 is another. */
    CHECK(key6("2001:db8::1") == key6("2001:db8::ffff:1234:5678:9abc"));
    CHECK(key6("2001:db8::1") != key6("2001:db8:0:1::1"));
    /* An IPv4-mapped address is its IPv4 address, and IPv4 never meets IPv6 space. */
    CHECK(key6("::ffff:192.0.2.1") == key4("192.0.2.1"));
    CHECK(key6("c000:201::") != key4("192.0.2.1"));
    struct sockaddr other = {.sa_family = AF_UNIX};
    CHECK_INT(limit_peer_of(&other), ==, 0);
    struct sockaddr none = {.sa_family = AF_UNSPEC}; /* a connection with no IP peer */
    CHECK_INT(limit_peer_of(&none), ==, 0);
}

static void connection_counts(void)
{
    uint32_t a = key4("198.51.100.1"), b = key4("198.51.100.2");
    CHECK(limit_conn_open(a, 2));
    CHECK(limit_conn_open(a, 2));
    CHECK(!limit_conn_open(a, 2)); /* the third: refused, but counted */
    CHECK(limit_conn_open(b, 2));  /* another address is not affected */
    limit_conn_close(a);
    CHECK(!limit_conn_open(a, 2));
    limit_conn_close(a);
    limit_conn_close(a);
    CHECK(limit_conn_open(a, 2));
    CHECK(limit_conn_open(a, 0)); /* 0: no limit */
    CHECK(limit_conn_open(0, 1)); /* an unknown address is never counted */
    CHECK(limit_conn_open(0, 1));
    limit_conn_close(0);
    for (int i = 0; i < 3; i++)
        limit_conn_close(a);
    limit_conn_close(b);
    limit_conn_close(b); /* more closes than opens do not go below zero */
    CHECK(limit_conn_open(b, 1));
    limit_conn_close(b);
}

/* Thousands of addresses: the table grows, and entries removed from the middle of a
 * probe run leave every other one findable. */
static void connection_counts_many(void)
{
    enum { N = 3000 };
    uint32_t k[N];
    for (int i = 0; i < N; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "10.%d.%d.1", i / 256, i % 256);
        k[i] = key4(ip);
        CHECK(limit_conn_open(k[i], 2));
        CHECK(limit_conn_open(k[i], 2));
    }
    for (int i = 0; i < N; i += 3) /* every third address leaves entirely */
        limit_conn_close(k[i]), limit_conn_close(k[i]);
    for (int i = 0; i < N; i++)
        CHECK(limit_conn_open(k[i], 2) == (i % 3 == 0));
    for (int i = 0; i < N; i++) {
        int n = i % 3 == 0 ? 1 : 3;
        while (n--)
            limit_conn_close(k[i]);
        CHECK(limit_conn_open(k[i], 1));
        limit_conn_close(k[i]);
    }
}

static void login_pace(void)
{
    uint32_t p = key4("203.0.113.1"), q = key4("203.0.113.2");
    /* 10 a second (one per 100 ms) after a burst of 3. */
    for (int i = 0; i < 3; i++)
        CHECK_INT(limit_login(p, T0, 10, 3, 10 * S), ==, 0);
    CHECK_INT(limit_login(p, T0, 10, 3, 10 * S), ==, S / 10);
    CHECK_INT(limit_login(p, T0, 10, 3, 10 * S), ==, 2 * S / 10);
    /* A wait longer than allowed is refused and reserves nothing. */
    CHECK_INT(limit_login(p, T0, 10, 3, S / 10), ==, -1);
    CHECK_INT(limit_login(p, T0, 10, 3, 10 * S), ==, 3 * S / 10);
    /* Another address has its own burst. */
    CHECK_INT(limit_login(q, T0, 10, 3, 0), ==, 0);
    /* Time passing pays the debt back: 400 ms of turns were taken at T0. */
    CHECK_INT(limit_login(p, T0 + S / 2, 10, 3, 10 * S), ==, 0);
    CHECK_INT(limit_login(p, T0 + 10 * S, 10, 3, 0), ==, 0);
    /* rate 0: no limit. */
    for (int i = 0; i < 1000; i++)
        CHECK_INT(limit_login(q, T0, 0, 1, 0), ==, 0);
}

static void account_failures(void)
{
    uint64_t acct = limit_account("juliet"), other = limit_account("romeo");
    uint32_t p = key4("203.0.113.10");
    /* 3 failures within 60 s; then one more every 20 s. */
    CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0, 3, 60));
    for (int i = 0; i < 3; i++) {
        CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0, 3, 60));
        limit_failure(p, acct, T0, 0, 3, 60);
    }
    CHECK(limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0, 3, 60));
    CHECK(limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0 + 19 * S, 3, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, other, T0, 3, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0 + 20 * S, 3, 60));
    limit_failure(p, acct, T0 + 20 * S, 0, 3, 60);
    CHECK(limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0 + 20 * S, 3, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0 + 80 * S, 3, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ACCOUNT, acct, T0 + 20 * S, 0, 60)); /* 0: none */
    /* max_address 0: the address is not charged. */
    CHECK(!limit_failures_exhausted(LIMIT_ADDRESS, p, T0, 1, 60));
}

static void address_failures(void)
{
    uint32_t p = key4("203.0.113.20"), q = key4("203.0.113.21");
    uint64_t a = limit_account("a"), b = limit_account("b"), c = limit_account("c");
    /* Failures on one account count once for the address... */
    for (int i = 0; i < 10; i++)
        limit_failure(p, a, T0, 2, 0, 60);
    CHECK(!limit_failures_exhausted(LIMIT_ADDRESS, p, T0, 2, 60));
    /* ...the second account makes two. */
    limit_failure(p, b, T0, 2, 0, 60);
    CHECK(limit_failures_exhausted(LIMIT_ADDRESS, p, T0, 2, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ADDRESS, q, T0, 2, 60));
    /* Half the window later one more account may fail; after the window all is clear. */
    CHECK(!limit_failures_exhausted(LIMIT_ADDRESS, p, T0 + 30 * S, 2, 60));
    limit_failure(p, c, T0 + 30 * S, 2, 0, 60);
    CHECK(limit_failures_exhausted(LIMIT_ADDRESS, p, T0 + 30 * S, 2, 60));
    CHECK(!limit_failures_exhausted(LIMIT_ADDRESS, p, T0 + 90 * S, 2, 60));
    /* A window later, failing on `a` again counts again. */
    limit_failure(p, a, T0 + 90 * S, 2, 0, 60);
    limit_failure(p, b, T0 + 90 * S, 2, 0, 60);
    CHECK(limit_failures_exhausted(LIMIT_ADDRESS, p, T0 + 90 * S, 2, 60));
}

/* A set of the lossy table is full: a new key takes the entry that owes least, so an
 * account under attack keeps its record while others come and go. Account keys are
 * chosen here to share a set (the set is the key's low bits). */
static void eviction_spares_the_busiest(void)
{
    uint64_t set = 77, busy = set,
             k[4] = {set + 4096, set + 2 * 4096, set + 3 * 4096, set + 4 * 4096};
    uint32_t p = key4("203.0.113.30");
    for (int i = 0; i < 5; i++)
        limit_failure(p, busy, T0, 0, 5, 600);
    CHECK(limit_failures_exhausted(LIMIT_ACCOUNT, busy, T0, 5, 600));
    for (int i = 0; i < 4; i++)
        limit_failure(p, k[i], T0 + (uint64_t)i * S, 0, 5, 600);
    CHECK(limit_failures_exhausted(LIMIT_ACCOUNT, busy, T0 + 4 * S, 5, 600));
}

int main(void)
{
    RUN(address_keys);
    RUN(connection_counts);
    RUN(connection_counts_many);
    RUN(login_pace);
    RUN(account_failures);
    RUN(address_failures);
    RUN(eviction_spares_the_busiest);
    return test_done("limit");
}
