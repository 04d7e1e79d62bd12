/*
 * libFuzzer driver of the XML stream parser. The first input byte picks the chunk size,
 * the content namespace and tight or default limits; the rest is the stream. Checks:
 *  - no crash, no leak, no read outside the buffer (ASan, UBSan);
 *  - feeding in chunks (with release and move, as c2s does) gives exactly the events of
 *    feeding everything at once;
 *  - the parser never holds more than one stanza's worth of bytes;
 *  - every reported stanza builds a tree.
 */
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static char scratch[65536];

static void mix(XXH3_state_t *h, const void *p, size_t n)
{
    XXH3_64bits_update(h, &n, sizeof n);
    if (n)
        XXH3_64bits_update(h, p, n);
}

static void mix_str(XXH3_state_t *h, struct xml_str s)
{
    mix(h, s.p ? s.p : "", s.p ? s.len : 0);
    uint8_t present = s.p != NULL;
    XXH3_64bits_update(h, &present, 1);
}

/* Hash of every event the parser reports for data fed in chunks of `chunk` (0: whole). */
static uint64_t run(const char *data, size_t len, size_t chunk, const struct xml_limits *lim,
                    enum xml_content content, unsigned *events)
{
    XXH3_state_t h;
    struct xml_parser p;
    struct xml_event ev;
    struct arena a;
    char *buf = malloc(len + 1);
    size_t have = 0, fed = 0;

    XXH3_64bits_reset(&h);
    arena_init(&a, 4096);
    xml_init(&p, lim, content, scratch, sizeof scratch);
    *events = 0;
    while (fed < len) {
        size_t n = chunk && chunk < len - fed ? chunk : len - fed;
        memcpy(buf + have, data + fed, n);
        have += n;
        fed += n;
        for (;;) {
            enum xml_ev_kind k = xml_next(&p, buf, have, &ev);
            if (k == XML_EV_NONE)
                break;
            ++*events;
            XXH3_64bits_update(&h, &k, sizeof k);
            if (k == XML_EV_ERROR) {
                XXH3_64bits_update(&h, &ev.err, sizeof ev.err);
                goto out;
            }
            if (k == XML_EV_STREAM_CLOSE)
                continue; /* carries nothing but its kind */
            mix_str(&h, ev.raw);
            mix_str(&h, ev.name);
            mix_str(&h, ev.ns);
            for (int i = 0; i < XML_ATTR_KNOWN; i++) {
                mix_str(&h, ev.attr[i]);
                XXH3_64bits_update(&h, &ev.attr_raw[i], sizeof ev.attr_raw[i]);
            }
            XXH3_64bits_update(&h, &ev.flags, sizeof ev.flags);
            if (k == XML_EV_STANZA) {
                if (!xml_tree_parse(&p, ev.raw.p, ev.raw.len, &a, scratch, sizeof scratch))
                    abort(); /* a stanza the parser accepted must build a tree */
                arena_reset(&a);
            }
        }
        size_t drop = xml_release(&p);
        if (drop > have)
            abort();
        memmove(buf, buf + drop, have - drop);
        have -= drop;
        /* One incomplete unit at most, plus a look-ahead of a few bytes and the chunk. */
        if (have > (size_t)lim->max_stanza + 32 + (chunk ? chunk : len))
            abort();
        xml_trim(&p);
    }
out:
    xml_free(&p);
    arena_free(&a);
    free(buf);
    return XXH3_64bits_digest(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    if (mode & 0x80) {
        lim.max_stanza = 512;
        lim.max_depth = 4;
        lim.max_attrs = 4;
        lim.max_name = 16;
    }
    enum xml_content content = (mode & 0x40) ? XML_CONTENT_SERVER : XML_CONTENT_CLIENT;
    size_t chunk = 1 + (mode & 0x0F);

    unsigned ew, ec;
    uint64_t whole = run(in, len, 0, &lim, content, &ew);
    uint64_t parts = run(in, len, chunk, &lim, content, &ec);
    if (whole != parts || ew != ec) {
        fprintf(stderr, "chunk %zu: %u events vs %u whole\n", chunk, ec, ew);
        abort();
    }
    return 0;
}
