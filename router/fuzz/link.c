/*
 * libFuzzer driver for router/link.c's checks of what arrives on a cluster link: a
 * message's records one after another as the link thread reads them (link_decode) and,
 * for a heartbeat, its payload (link_decode_hb). The input is copied to a buffer of
 * exactly its size so that AddressSanitizer sees any read past it. Properties, abort()
 * on any violation: 0 or -EBADMSG; an accepted record lies inside what is left of the
 * message, its kind is one a link carries, its nodes and shard are in range; a
 * heartbeat's name lies inside its payload.
 */
#include "router/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *m = malloc(size ? size : 1);
    if (!m)
        return 0;
    memcpy(m, data, size);
    const char *rec = m;
    size_t left = size;
    while (left) {
        struct link_hdr h;
        const void *p;
        int rc = link_decode(rec, left, 0, 3, 2, &h, &p);
        FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
        if (rc < 0)
            break;
        FUZZ_CHECK((const char *)p == rec + sizeof h && sizeof h + h.len <= left);
        FUZZ_CHECK(h.src > 0 && h.src < 3 && h.dst == 0);
        if (h.kind == LINK_HEARTBEAT) {
            struct link_hb hb;
            const char *name;
            rc = link_decode_hb(p, h.len, &hb, &name);
            FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
            if (rc == 0)
                FUZZ_CHECK(name == (const char *)p + sizeof hb &&
                           sizeof hb + hb.name_len == h.len && hb.shards > 0);
        } else {
            FUZZ_CHECK(link_kind_ok(h.kind) && h.shard < 2);
        }
        volatile unsigned x = 0;
        for (uint32_t i = 0; i < h.len; i++)
            x += ((const unsigned char *)p)[i];
        rec += sizeof h + h.len;
        left -= sizeof h + h.len;
    }
    free(m);
    return 0;
}
