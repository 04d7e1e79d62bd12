/* addr.c: peers' addresses and address prefixes (addr.h). */
#include "common/net/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void net_addr_unmap(union net_addr *a)
{
    if (a->sa.sa_family != AF_INET6 || memcmp(a->in6.sin6_addr.s6_addr, v4_mapped, 12))
        return;
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = a->in6.sin6_port};
    memcpy(&in.sin_addr, a->in6.sin6_addr.s6_addr + 12, 4);
    memset(a, 0, sizeof *a);
    a->in = in;
}

int net_addr_peer(int fd, union net_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    memset(a, 0, sizeof *a);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET && len >= sizeof a->in)
        memcpy(&a->in, &ss, sizeof a->in);
    else if (ss.ss_family == AF_INET6 && len >= sizeof a->in6)
        memcpy(&a->in6, &ss, sizeof a->in6);
    else
        return -EAFNOSUPPORT;
    net_addr_unmap(a);
    return 0;
}

const char *net_addr_text(const union net_addr *a, char *buf)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->sa.sa_family == AF_INET && inet_ntop(AF_INET, &a->in.sin_addr, ip, sizeof ip))
        snprintf(buf, NET_ADDR_TEXT, "%s:%u", ip, ntohs(a->in.sin_port));
    else if (a->sa.sa_family == AF_INET6 && inet_ntop(AF_INET6, &a->in6.sin6_addr, ip, sizeof ip))
        snprintf(buf, NET_ADDR_TEXT, "[%s]:%u", ip, ntohs(a->in6.sin6_port));
    else
        snprintf(buf, NET_ADDR_TEXT, "-");
    return buf;
}

int net_prefix_parse(const char *s, struct net_prefix *p, char *why, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t len = slash ? (size_t)(slash - s) : strlen(s);
    unsigned long bits = 0;

    memset(p, 0, sizeof *p);
    if (len == 0 || len >= sizeof ip)
        goto bad;
    memcpy(ip, s, len);
    ip[len] = 0;
    if (inet_pton(AF_INET, ip, p->addr) == 1)
        p->family = AF_INET;
    else if (inet_pton(AF_INET6, ip, p->addr) == 1)
        p->family = AF_INET6;
    else
        goto bad;
    unsigned max = p->family == AF_INET ? 32 : 128;
    bits = max;
    if (slash) {
        char *end;
        const char *d = slash + 1;
        /* Digits only, no sign, no leading zero but "0" itself. */
        if (*d < '0' || *d > '9' || (d[0] == '0' && d[1]))
            goto bad;
        bits = strtoul(d, &end, 10);
        if (*end || bits > max)
            goto bad;
    }
    /* An IPv4-mapped prefix is the IPv4 prefix it maps: addresses are unmapped. */
    if (p->family == AF_INET6 && bits >= 96 && !memcmp(p->addr, v4_mapped, 12)) {
        memmove(p->addr, p->addr + 12, 4);
        memset(p->addr + 4, 0, 12);
        p->family = AF_INET;
        bits -= 96;
        max = 32;
    }
    p->bits = (uint8_t)bits;
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
        if (p->addr[i] & (uint8_t)(0xffu >> keep)) {
            snprintf(why, n, "\"%s\" has bits set past its /%lu prefix", s, bits);
            return -EINVAL;
        }
    }
    inet_ntop(p->family, p->addr, ip, sizeof ip);
    snprintf(p->text, sizeof p->text, "%s/%u", ip, p->bits);
    return 0;
bad:
    snprintf(why, n, "\"%.80s\" is not an IPv4 or IPv6 address, or one with a /prefix length", s);
    return -EINVAL;
}

bool net_prefix_match(const struct net_prefix *p, const union net_addr *a)
{
    const uint8_t *b;
    if (a->sa.sa_family != p->family)
        return false;
    b = p->family == AF_INET ? (const uint8_t *)&a->in.sin_addr : a->in6.sin6_addr.s6_addr;
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (memcmp(b, p->addr, full))
        return false;
    return !rest || ((b[full] ^ p->addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}
