/* SRV answers read from the wire, and RFC 2782's order. */
#include "common/net/dns_srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DNS_HEADER   12    /* bytes: id, flags, and the four section counts */
#define DNS_RR_FIXED 10    /* bytes after an RR's owner name: type, class, TTL, RDLENGTH */
#define DNS_MSG_MAX  65535 /* a message over TCP has a 16-bit length */

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t dns_srv_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Steps over the name at *off without following its compression pointer. */
static int name_skip(const uint8_t *m, size_t len, size_t *off)
{
    for (size_t o = *off; o < len;) {
        uint8_t c = m[o];
        if (c == 0) {
            *off = o + 1;
            return 0;
        }
        if ((c & 0xc0) == 0xc0) {
            if (o + 2 > len)
                return -EBADMSG;
            *off = o + 2;
            return 0;
        }
        if (c & 0xc0) /* 0x40 and 0x80: label types nobody uses (RFC 6891 §5) */
            return -EBADMSG;
        o += 1u + c;
    }
    return -EBADMSG;
}

/*
 * Reads the name at off into out (DNS_NAME_MAX + 1 bytes), lower case, without the final
 * dot. Returns its length (0 for the root, "."), -EBADMSG when it does not fit in the
 * message or loops, -EINVAL when it is not a host name. Each compression pointer must
 * point before the previous one's target (the name's start, at first): offsets only
 * decrease, so a hostile message cannot make this loop.
 */
static int name_read(const uint8_t *m, size_t len, size_t off, char *out)
{
    size_t n = 0, floor = off;
    bool host = true;
    for (;;) {
        if (off >= len)
            return -EBADMSG;
        uint8_t c = m[off];
        if (c == 0)
            break;
        if ((c & 0xc0) == 0xc0) {
            if (off + 2 > len)
                return -EBADMSG;
            size_t to = (size_t)(c & 0x3f) << 8 | m[off + 1];
            if (to >= floor)
                return -EBADMSG;
            off = floor = to;
            continue;
        }
        if (c & 0xc0 || off + 1 + c > len)
            return -EBADMSG;
        if (n + (n > 0) + c > DNS_NAME_MAX)
            host = false;
        for (size_t i = 0; host && i < c; i++) {
            char ch = (char)m[off + 1 + i];
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
                host = false;
            else
                out[n + (n > 0) + i] = ch;
        }
        if (host && n > 0)
            out[n] = '.';
        n += (n > 0) + c;
        off += 1u + c;
    }
    out[host ? n : 0] = '\0';
    return host ? (int)n : -EINVAL;
}

static int by_priority(const void *a, const void *b)
{
    const struct dns_srv_rr *x = a, *y = b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

/* RFC 2782: the weight-0 records stand first, then a running sum of the weights; a draw
 * x in 0..total picks the first record whose running sum reaches it. */
static size_t draw(const struct dns_srv_rr *rr, size_t from, size_t end, uint64_t *rng)
{
    uint64_t total = 0, sum = 0;
    for (size_t i = from; i < end; i++)
        total += rr[i].weight;
    if (total == 0)
        return from + (size_t)(dns_srv_rand(rng) % (end - from));
    uint64_t x = dns_srv_rand(rng) % (total + 1);
    for (size_t i = from; x == 0 && i < end; i++)
        if (rr[i].weight == 0)
            return i;
    for (size_t i = from; i < end; i++) {
        sum += rr[i].weight;
        if (rr[i].weight && sum >= x)
            return i;
    }
    return end - 1; /* not reached: the sum ends at total >= x */
}

void dns_srv_order(struct dns_srv_rr *rr, size_t n, size_t keep, uint64_t *rng)
{
    if (n > 1) /* rr may be NULL when n is 0 */
        qsort(rr, n, sizeof *rr, by_priority);
    for (size_t i = 0; i < n && i < keep;) {
        size_t end = i;
        while (end < n && rr[end].priority == rr[i].priority)
            end++;
        for (; i < end && i < keep; i++) {
            size_t p = draw(rr, i, end, rng);
            struct dns_srv_rr t = rr[i];
            rr[i] = rr[p];
            rr[p] = t;
        }
        i = end;
    }
}

int dns_srv_parse(const uint8_t *msg, size_t len, struct dns_srv *out, size_t max, uint64_t *rng,
                  struct dns_srv_answer *ans)
{
    struct dns_srv_rr *rr = NULL;
    size_t off = DNS_HEADER, n = 0;
    char name[DNS_NAME_MAX + 1];
    int rc = -EBADMSG;

    ans->n = 0;
    ans->dot = false;
    ans->ttl = UINT32_MAX;
    if (len < DNS_HEADER || len > DNS_MSG_MAX)
        return -EBADMSG;
    unsigned qd = get16(msg + 4), an = get16(msg + 6);
    for (unsigned i = 0; i < qd; i++) {
        if (name_skip(msg, len, &off) < 0 || off + 4 > len)
            return -EBADMSG;
        off += 4; /* QTYPE, QCLASS */
    }
    /* Every record takes at least a one-byte name and the fixed part. */
    size_t cap = an < len / (1 + DNS_RR_FIXED) ? an : len / (1 + DNS_RR_FIXED);
    if (cap && !(rr = malloc(cap * sizeof *rr)))
        return -ENOMEM;
    for (unsigned i = 0; i < an; i++) {
        if (name_skip(msg, len, &off) < 0 || off + DNS_RR_FIXED > len)
            goto out;
        uint16_t type = get16(msg + off), class = get16(msg + off + 2);
        uint32_t ttl = get32(msg + off + 4);
        size_t rdlen = get16(msg + off + 8), rd = off + DNS_RR_FIXED;
        if (rd + rdlen > len)
            goto out;
        off = rd + rdlen;
        if (class != DNS_C_IN || (type != DNS_T_SRV && type != DNS_T_CNAME))
            continue;
        if (ttl & 0x80000000u)
            ttl = 0;
        if (ttl < ans->ttl)
            ans->ttl = ttl;
        if (type != DNS_T_SRV)
            continue;
        size_t end = rd + 6;
        if (rdlen < 7 || name_skip(msg, len, &end) < 0 || end > rd + rdlen)
            goto out;
        int nl = name_read(msg, len, rd + 6, name);
        if (nl == -EBADMSG)
            goto out;
        uint16_t port = get16(msg + rd + 4);
        if (nl == 0)
            ans->dot = true;
        else if (nl > 0 && port != 0 && n < cap)
            rr[n++] =
                (struct dns_srv_rr){get16(msg + rd), get16(msg + rd + 2), port, (uint16_t)(rd + 6)};
    }
    dns_srv_order(rr, n, max, rng);
    for (size_t i = 0; i < n && i < max; i++) {
        out[i].priority = rr[i].priority;
        out[i].weight = rr[i].weight;
        out[i].port = rr[i].port;
        name_read(msg, len, rr[i].target, out[i].target); /* read once already: it is valid */
    }
    ans->n = n < max ? n : max;
    rc = 0;
out:
    free(rr);
    return rc;
}
