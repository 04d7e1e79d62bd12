/*
 * libFuzzer driver for common/net/dns_srv.c: the input is a DNS response as a DNS server
 * (or anyone who can spoof one) could send it. Properties, abort() on any violation:
 *   - dns_srv_parse() returns 0, -EBADMSG or -ENOMEM, and never reads outside the input
 *     (ASan) nor loops (libFuzzer's timeout);
 *   - on 0: at most `max` targets, each a non-empty lower-case host name of at most
 *     DNS_NAME_MAX bytes with a port, in non-decreasing priority;
 *   - the same input and seed give the same answer (the draw depends on nothing else).
 */
#include "common/net/dns_srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool host_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > DNS_NAME_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_.") == n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX = 16 };
    static struct dns_srv a[MAX], b[MAX];
    struct dns_srv_answer aa, ab;
    uint64_t r1 = 99, r2 = 99;
    int rc = dns_srv_parse(data, size, a, MAX, &r1, &aa);
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
    if (rc != 0)
        return 0;
    FUZZ_CHECK(aa.n <= MAX);
    for (size_t i = 0; i < aa.n; i++) {
        FUZZ_CHECK(host_name(a[i].target) && a[i].port != 0);
        FUZZ_CHECK(i == 0 || a[i - 1].priority <= a[i].priority);
    }
    FUZZ_CHECK(dns_srv_parse(data, size, b, MAX, &r2, &ab) == 0);
    FUZZ_CHECK(ab.n == aa.n && ab.dot == aa.dot && ab.ttl == aa.ttl);
    for (size_t i = 0; i < aa.n; i++)
        FUZZ_CHECK(!strcmp(a[i].target, b[i].target) && a[i].port == b[i].port);
    return 0;
}
