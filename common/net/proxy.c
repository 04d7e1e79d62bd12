/* proxy.c: the PROXY protocol's header, versions 1 and 2 (proxy.h). */
#include "common/net/proxy.h"

#include <arpa/inet.h>
#include <string.h>

static const uint8_t v2_sig[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};

/* v2's family (high nibble) and transport (low nibble) bytes. */
enum { V2_AF_UNSPEC, V2_AF_INET, V2_AF_INET6, V2_AF_UNIX };
enum { V2_TP_UNSPEC, V2_TP_STREAM, V2_TP_DGRAM };
/* Bytes of the address block of each family. */
static const uint16_t v2_addr_len[] = {0, 12, 36, 216};

static enum proxy_status invalid(struct proxy_header *h, const char *why)
{
    h->why = why;
    return PROXY_INVALID;
}

/* A port as v1 writes it: 0..65535, decimal, no leading zero. */
static bool v1_port(const char *s, uint16_t *port)
{
    uint32_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 5 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = htons((uint16_t)v);
    return true;
}

/* One of v1's addresses into a: the family its protocol (TCP4, TCP6) says. */
static bool v1_addr(int family, const char *s, union net_addr *a)
{
    a->sa.sa_family = (sa_family_t)family;
    return inet_pton(family, s, family == AF_INET ? (void *)&a->in.sin_addr
                                                   : (void *)&a->in6.sin6_addr) == 1;
}

/* The line between "PROXY " and CR LF (line[0..n), printable ASCII, no CR). */
static enum proxy_status v1_line(const char *line, size_t n, struct proxy_header *h)
{
    char buf[PROXY_V1_MAX + 1], *f[5];
    unsigned nf = 0;
    int family;

    /* UNKNOWN: whatever follows it is to be ignored (proxy-protocol.txt, 2.1). */
    if (n >= 7 && !memcmp(line, "UNKNOWN", 7) && (n == 7 || line[7] == ' '))
        return PROXY_DONE;
    memcpy(buf, line, n);
    buf[n] = 0;
    /* Five fields, one space between each: empty ones (two spaces) are not a header. */
    for (char *p = buf;;) {
        char *sp = strchr(p, ' ');
        if (nf == 5 || (sp == p) || !*p)
            return invalid(h, "a v1 header that is not PROTO SRC DST SPORT DPORT");
        f[nf++] = p;
        if (!sp)
            break;
        *sp = 0;
        p = sp + 1;
    }
    if (nf != 5)
        return invalid(h, "a v1 header that is not PROTO SRC DST SPORT DPORT");
    if (!strcmp(f[0], "TCP4"))
        family = AF_INET;
    else if (!strcmp(f[0], "TCP6"))
        family = AF_INET6;
    else
        return invalid(h, "a v1 header of a protocol other than TCP4, TCP6 or UNKNOWN");
    uint16_t sport, dport;
    if (!v1_addr(family, f[1], &h->src) || !v1_addr(family, f[2], &h->dst))
        return invalid(h, "a v1 header with an address that is not of its protocol");
    if (!v1_port(f[3], &sport) || !v1_port(f[4], &dport))
        return invalid(h, "a v1 header with a bad port");
    if (family == AF_INET) {
        h->src.in.sin_port = sport;
        h->dst.in.sin_port = dport;
    } else {
        h->src.in6.sin6_port = sport;
        h->dst.in6.sin6_port = dport;
    }
    h->has_addr = true;
    return PROXY_DONE;
}

static enum proxy_status v1(const uint8_t *b, size_t n, struct proxy_header *h)
{
    size_t lim = n < PROXY_V1_MAX ? n : PROXY_V1_MAX, i;
    for (i = 6; i < lim && b[i] != '\r'; i++)
        if (b[i] < 0x20 || b[i] > 0x7e)
            return invalid(h, "a v1 header with a byte that is not printable ASCII");
    if (i + 2 > PROXY_V1_MAX)
        return invalid(h, "a v1 header longer than 107 bytes");
    if (i + 1 >= n)
        return PROXY_INCOMPLETE;
    if (b[i + 1] != '\n')
        return invalid(h, "a v1 header whose CR is not followed by LF");
    enum proxy_status st = v1_line((const char *)b + 6, i - 6, h);
    if (st == PROXY_DONE)
        h->len = (uint32_t)(i + 2);
    return st;
}

static enum proxy_status v2(const uint8_t *b, size_t n, size_t max_v2, struct proxy_header *h)
{
    if (n < PROXY_V2_FIXED)
        return PROXY_INCOMPLETE;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0xf, af = b[13] >> 4, tp = b[13] & 0xf;
    size_t len = (size_t)b[14] << 8 | b[15], total = PROXY_V2_FIXED + len;
    if (ver != 2)
        return invalid(h, "a v2 header of another version");
    if (cmd > 1)
        return invalid(h, "a v2 header of a command other than LOCAL and PROXY");
    if (total > max_v2)
        return invalid(h, "a v2 header longer than allowed");
    /* LOCAL: the family is to be ignored (proxy-protocol.txt, 2.2), so not checked. */
    if (cmd == 1 && (af > V2_AF_UNIX || tp > V2_TP_DGRAM))
        return invalid(h, "a v2 header of an unknown family or transport");
    if (n < total)
        return PROXY_INCOMPLETE;
    if (cmd == 0) {
        h->len = (uint32_t)total;
        return PROXY_DONE;
    }
    size_t off = PROXY_V2_FIXED + v2_addr_len[af];
    if (off > total)
        return invalid(h, "a v2 header too short for its addresses");
    /* TLVs: a type byte, a 16-bit length, the value; they must end with the header. */
    while (off < total) {
        if (total - off < 3 || total - off - 3 < ((size_t)b[off + 1] << 8 | b[off + 2]))
            return invalid(h, "a v2 header whose TLVs overrun it");
        off += 3 + ((size_t)b[off + 1] << 8 | b[off + 2]);
    }
    const uint8_t *a = b + PROXY_V2_FIXED;
    if (tp == V2_TP_STREAM && af == V2_AF_INET) {
        h->src.in.sin_family = h->dst.in.sin_family = AF_INET;
        memcpy(&h->src.in.sin_addr, a, 4);
        memcpy(&h->dst.in.sin_addr, a + 4, 4);
        memcpy(&h->src.in.sin_port, a + 8, 2);
        memcpy(&h->dst.in.sin_port, a + 10, 2);
        h->has_addr = true;
    } else if (tp == V2_TP_STREAM && af == V2_AF_INET6) {
        h->src.in6.sin6_family = h->dst.in6.sin6_family = AF_INET6;
        memcpy(&h->src.in6.sin6_addr, a, 16);
        memcpy(&h->dst.in6.sin6_addr, a + 16, 16);
        memcpy(&h->src.in6.sin6_port, a + 32, 2);
        memcpy(&h->dst.in6.sin6_port, a + 34, 2);
        h->has_addr = true;
    }
    h->len = (uint32_t)total;
    return PROXY_DONE;
}

enum proxy_status proxy_parse(const void *p, size_t n, size_t max_v2, struct proxy_header *h)
{
    const uint8_t *b = p;
    memset(h, 0, sizeof *h);
    if (n == 0)
        return PROXY_INCOMPLETE;
    if (b[0] == 'P') {
        h->version = 1;
        if (memcmp(b, "PROXY ", n < 6 ? n : 6))
            return invalid(h, "not a PROXY protocol header");
        return n < 6 ? PROXY_INCOMPLETE : v1(b, n, h);
    }
    if (b[0] == '\r') {
        h->version = 2;
        if (memcmp(b, v2_sig, n < sizeof v2_sig ? n : sizeof v2_sig))
            return invalid(h, "not a PROXY protocol header");
        return v2(b, n, max_v2, h);
    }
    return invalid(h, "not a PROXY protocol header");
}
