/*
 * libFuzzer driver of SASL EXTERNAL between servers (common/auth/external.c): what an
 * initiating server sends to our receiving side, and what a receiving server answers our
 * initiating side, for each thing the certificate may or may not have proved.
 *
 * Input: one mode byte, then messages separated by the two bytes FF FE, each led by a byte
 * that says what it is (the rest of the message is its text):
 *   0  <auth mechanism='EXTERNAL'>text</auth>     1  <auth mechanism='text'/>
 *   2  <response>text</response>                  3  <abort/>
 *   4  an element the receiving server answers our <auth/> with (read on a jabber:server
 *      stream), or a <stream:features/> for external_client_offered()
 *   5  our own <auth/> with text as the authorization identity
 * Mode: bit 0 TLS, bit 1 chain verified, bit 2 name matched, bit 3 the stream has 'from'.
 * Checks, besides ASan/UBSan: SUCCESS only when the certificate proved the stream's 'from',
 * and for that domain; nothing succeeds twice; every answer we write is one element that
 * our initiating side reads back as the same event and condition; our <auth/> decodes to
 * the authorization identity it was given.
 */
#include "common/auth/external.h"
#include "common/xmpp/xml.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/base64.h>

#define HEADER                                                                                     \
    "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "       \
    "version='1.0'>"

static struct arena arena;
static char scratch[16384];

/* The tree of the one element in xml[0..len) on a jabber:server stream, or NULL. */
static struct xml_node *parse(const char *xml, size_t len)
{
    static char in[1 << 16];
    struct xml_limits lim = {.max_stanza = 8192, .max_depth = 16, .max_attrs = 16, .max_name = 64};
    struct xml_parser p;
    struct xml_event ev;
    struct xml_node *n = NULL;
    size_t hl = strlen(HEADER);
    if (hl + len > sizeof in)
        return NULL;
    memcpy(in, HEADER, hl);
    memcpy(in + hl, xml, len);
    xml_init(&p, &lim, XML_CONTENT_SERVER, scratch, sizeof scratch);
    if (xml_next(&p, in, hl + len, &ev) == XML_EV_STREAM_OPEN &&
        xml_next(&p, in, hl + len, &ev) == XML_EV_STANZA && xml_release(&p) == hl + len)
        n = xml_tree_parse(&p, ev.raw.p, ev.raw.len, &arena, scratch, sizeof scratch);
    xml_free(&p);
    return n;
}

/* Our answer in out reads back, on the initiating side, as the event it came with. */
static void check_answer(struct buf *out, enum sasl_ev kind, const struct external_event *ev)
{
    enum sasl_cond cond;
    if (kind != ev->kind)
        abort();
    if (!kind) { /* only when memory ran out, and then nothing was appended */
        if (buf_used(out))
            abort();
        return;
    }
    struct xml_node *n = parse(buf_data(out), buf_used(out));
    if (!n || external_client_answer(n, &cond) != kind)
        abort();
    if (kind == SASL_EV_FAILURE && (cond != ev->cond || !sasl_cond_name(cond)))
        abort();
    buf_consume(out, buf_used(out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    struct external x;
    struct external_event ev;
    struct buf out = {0};
    bool succeeded = false;

    if (!ready) {
        arena_init(&arena, 4096);
        ready = true;
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    struct external_peer peer = {
        .tls = mode & 1,
        .cert_ok = mode & 2,
        .name_ok = mode & 4,
        .from = (mode & 8) ? "capulet.lit" : NULL,
    };
    bool proved = peer.tls && peer.cert_ok && peer.name_ok && peer.from;
    if (external_offer(&peer) != proved)
        abort();
    external_init(&x, &peer);

    const uint8_t *p = data + 1, *end = data + size;
    while (p < end) {
        const uint8_t *q = p;
        while (q + 1 < end && !(q[0] == 0xff && q[1] == 0xfe))
            q++;
        if (q + 1 >= end)
            q = end;
        const char *text = (const char *)p + 1;
        size_t len = q > p ? (size_t)(q - p) - 1 : 0;
        enum sasl_ev kind = 0;
        enum sasl_cond cond;
        switch (q > p ? p[0] : 0xff) {
        case 0:
            kind = external_start(&x, "EXTERNAL", 8, text, len, &out, &ev);
            break;
        case 1:
            kind = external_start(&x, text, len, "", 0, &out, &ev);
            break;
        case 2:
            kind = external_step(&x, text, len, &out, &ev);
            break;
        case 3:
            kind = external_abort(&x, &out, &ev);
            break;
        case 4: {
            struct xml_node *n = parse(text, len);
            if (n) {
                external_client_answer(n, &cond);
                external_client_offered(n);
            }
            break;
        }
        case 5: {
            char id[JID_PART_MAX + 1];
            uint8_t dec[JID_PART_MAX + 1];
            size_t n = len < JID_PART_MAX ? len : JID_PART_MAX, dl = 0;
            memcpy(id, text, n);
            id[n] = '\0';
            n = strlen(id);
            if (external_client_auth(&out, id) < 0)
                abort();
            /* <auth xmlns='...' mechanism='EXTERNAL'>b64</auth>: the text decodes to id. */
            const char *b = memchr(buf_data(&out), '>', buf_used(&out));
            const char *e = b ? memchr(b, '<', buf_used(&out) - (size_t)(b - buf_data(&out))) : NULL;
            if (!e)
                abort();
            b++;
            if (n ? !EVP_DecodeBase64(dec, &dl, sizeof dec, (const uint8_t *)b, (size_t)(e - b)) ||
                        dl != n || memcmp(dec, id, n)
                  : e - b != 1 || *b != '=')
                abort();
            buf_consume(&out, buf_used(&out));
            break;
        }
        default:
            break;
        }
        if (q > p && p[0] <= 3) {
            check_answer(&out, kind, &ev);
            if (kind == SASL_EV_SUCCESS) {
                if (!proved || succeeded || strcmp(ev.domain, peer.from) != 0)
                    abort();
                succeeded = true;
            }
        }
        arena_reset(&arena);
        if (q == end)
            break;
        p = q + 2;
    }
    buf_free(&out);
    return 0;
}
