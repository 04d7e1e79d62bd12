#include "bench/bid.h"

static const char hex[] = "0123456789abcdef";

static void put_hex(char *o, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        o[i] = hex[v & 0xF];
        v >>= 4;
    }
}

void bid_write(char *out, const struct bid *b)
{
    out[0] = 'b';
    out[1] = b->kind;
    put_hex(out + 2, b->idx, 8);
    out[10] = '.';
    put_hex(out + 11, b->seq, 8);
    out[19] = '.';
    put_hex(out + 20, b->t, 16);
}

static bool get_hex(const char *p, int digits, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < digits; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        x = x << 4 | d;
    }
    *v = x;
    return true;
}

bool bid_parse(const char *p, size_t n, struct bid *b)
{
    uint64_t idx, seq, t;
    if (n != BID_LEN || p[0] != 'b' || (p[1] != BID_MESSAGE && p[1] != BID_PRESENCE) ||
        p[10] != '.' || p[19] != '.' || !get_hex(p + 2, 8, &idx) || !get_hex(p + 11, 8, &seq) ||
        !get_hex(p + 20, 16, &t))
        return false;
    b->kind = p[1];
    b->idx = (uint32_t)idx;
    b->seq = (uint32_t)seq;
    b->t = t;
    return true;
}
