/*
 * libFuzzer driver for shm/decode.c: every decoder of the frames front ends and router
 * exchange. The first byte picks the decoder (what the router reads: stanza, session and
 * its directed-presence list; what c2s reads: delivery with its recipients, bind result,
 * session state, close), the rest is the frame, copied to an 8-aligned buffer of exactly
 * its size so that AddressSanitizer sees any read past it. Properties, abort() on any
 * violation:
 *   - a decoder returns 0 or -EBADMSG;
 *   - what an accepted frame points to lies inside it: every span is read whole;
 *   - the spans a decoder hands back add up to no more than the frame.
 */
#include "shm/decode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sink;

/* Reads every byte of a span and checks it lies in [frame, frame + len). */
static void span(const void *frame, uint32_t len, const char *p, size_t n)
{
    const char *f = frame;
    FUZZ_CHECK(p >= f && n <= len && (size_t)(p - f) <= len - n);
    unsigned x = 0;
    for (size_t i = 0; i < n; i++)
        x += (unsigned char)p[i];
    sink += x;
}

static void fuzz(unsigned which, const void *f, uint32_t len)
{
    int rc;
    switch (which % 9) {
    case 0: {
        struct decode_stanza d;
        if ((rc = decode_stanza(f, len, &d)) == 0) {
            span(f, len, d.from, d.h.from_len);
            span(f, len, d.to, d.h.to_len);
            span(f, len, d.raw, d.h.stanza_len);
            FUZZ_CHECK(d.h.from_bare_len <= d.h.from_len && d.h.to_bare_len <= d.h.to_len &&
                       d.h.head_len <= d.h.stanza_len && d.h.kind <= PROTO_IQ);
        }
        break;
    }
    case 1: {
        struct decode_session d;
        if ((rc = decode_session(f, len, &d)) == 0) {
            span(f, len, d.jid, d.h.jid_len);
            span(f, len, d.presence, d.h.presence_len);
            span(f, len, d.directed, d.h.directed_len);
            FUZZ_CHECK(d.h.bare_len < d.h.jid_len && d.jid[d.h.bare_len] == '/');
            const char *p = d.directed, *end = p + d.h.directed_len, *jid;
            uint16_t n;
            while (decode_directed_next(&p, end, &jid, &n)) {
                span(f, len, jid, n);
                FUZZ_CHECK(p <= end);
            }
        }
        break;
    }
    case 2: {
        struct decode_deliver d;
        if ((rc = decode_deliver(f, len, &d)) == 0) {
            span(f, len, d.stanza, d.h.stanza_len);
            span(f, len, d.attrs, d.h.attr_len);
            FUZZ_CHECK(d.h.to_at <= d.h.stanza_len);
            for (uint32_t i = 0; i < d.h.nrcpt; i++) {
                struct proto_rcpt r;
                int rr = decode_rcpt(&d, i, &r);
                FUZZ_CHECK(rr == 0 || rr == -EBADMSG);
                if (rr == 0)
                    span(f, len, d.attrs + r.to_off, r.to_len);
            }
        }
        break;
    }
    case 3: {
        struct decode_bind_result d;
        if ((rc = decode_bind_result(f, len, &d)) == 0)
            span(f, len, d.jid, d.h.jid_len);
        break;
    }
    case 5: {
        struct decode_remote_fanout d;
        if ((rc = decode_remote_fanout(f, len, &d)) == 0) {
            span(f, len, d.domain, d.h.domain_len);
            span(f, len, d.stanza, d.h.stanza_len);
            FUZZ_CHECK(d.h.to_at <= d.h.stanza_len && d.end == (const char *)f + len);
            const char *p = d.list, *jid;
            uint16_t n;
            while (decode_fanout_next(&p, d.end, &jid, &n)) {
                span(f, len, jid, n);
                FUZZ_CHECK(p <= d.end && n);
            }
        }
        break;
    }
    case 6: {
        struct proto_remote_env env;
        const void *pl;
        uint32_t plen;
        if ((rc = decode_remote_env(f, len, &env, &pl, &plen)) == 0)
            span(f, len, pl, plen);
        break;
    }
    case 7: {
        struct decode_remote_ack d;
        if ((rc = decode_remote_ack(f, len, &d)) == 0) {
            span(f, len, d.seqs, (size_t)d.h.n * 8);
            for (uint32_t i = 0; i < d.h.n; i++)
                sink += (unsigned)decode_remote_ack_at(&d, i);
        }
        break;
    }
    case 4: {
        struct decode_session_state d;
        if ((rc = decode_session_state(f, len, &d)) == 0)
            span(f, len, d.directed, d.h.directed_len);
        break;
    }
    default: {
        struct proto_close c;
        if ((rc = decode_close(f, len, &c)) == 0)
            FUZZ_CHECK(c.condition <= PROTO_SE_RESET);
        break;
    }
    }
    FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size || size > (1u << 20))
        return 0;
    uint32_t len = (uint32_t)(size - 1);
    /* Exactly len bytes (malloc aligns them as frames are): a read past them is caught. */
    void *f = malloc(len ? len : 1);
    if (!f)
        return 0;
    memcpy(f, data + 1, len);
    fuzz(data[0], f, len);
    free(f);
    return 0;
}
