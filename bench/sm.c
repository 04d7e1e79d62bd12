#include "bench/sm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum sm_elem sm_elem_of(const char *n, size_t len)
{
    static const struct {
        const char *name;
        enum sm_elem el;
    } names[] = {
        {"enabled", SM_EL_ENABLED},
        {"failed", SM_EL_FAILED},
        {"r", SM_EL_R},
        {"a", SM_EL_A},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (len == strlen(names[i].name) && !memcmp(n, names[i].name, len))
            return names[i].el;
    return SM_EL_OTHER;
}

int sm_ack(const struct sm *s, char *out, size_t cap)
{
    int n = snprintf(out, cap, "<a xmlns='" SM_NS "' h='%u'/>", s->in);
    return n > 0 && (size_t)n < cap ? n : -ENOSPC;
}

int sm_on_ack(struct sm *s, const char *h, size_t len)
{
    uint64_t v = 0;
    if (!len || len > 10)
        return -EPROTO;
    for (size_t i = 0; i < len; i++) {
        if (h[i] < '0' || h[i] > '9')
            return -EPROTO;
        v = v * 10 + (uint64_t)(h[i] - '0');
    }
    if (v > UINT32_MAX)
        return -EPROTO;
    /* Modulo 2^32 (§4): the new h lies between the last one and what was sent. */
    uint32_t nh = (uint32_t)v;
    if ((uint32_t)(nh - s->acked) > (uint32_t)(s->out - s->acked))
        return -EPROTO;
    s->acked = nh;
    return 0;
}
