/*
 * libFuzzer driver for the frame headers of common/net/ws.c: the input is what a client
 * sends after the upgrade, read frame after frame as common/fe/ws.c reads them. The
 * first byte picks the bound on a data frame's payload (16 * byte), the rest is the
 * bytes. Properties, abort() on any violation:
 *   - one of the three statuses; never a read outside the input (ASan);
 *   - WS_INVALID gives close code 1002 or 1009, and 1009 only for a data frame over
 *     the bound;
 *   - WS_DONE: a masked header of 6, 8 or 14 bytes within the input, a known opcode, a
 *     control frame final and at most 125 bytes, a data frame at most the bound; every
 *     shorter prefix of the header is WS_INCOMPLETE; the header we would write for the
 *     same payload is 4 bytes shorter (no mask) and reads back the same length;
 *   - unmasking twice gives back the bytes (the mask is an involution at any offset).
 * Then the same bytes go to a WebSocket connection of the front-end layer after its
 * upgrade (common/fe/ws.c: messages assembled from fragments, control frames among them,
 * the stream's limits), under a stream that answers as c2s does: our header for the
 * client's, each stanza echoed, stream errors. Whatever the client sent, what the
 * connection wrote is a sequence of whole server frames (final, unmasked, a known
 * opcode), and the connection's memory is all given back (LeakSanitizer).
 */
#include "common/core/log.h"
#include "common/fe/fe.h"
#include "common/net/ws.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void none(struct fe_conn *c)
{
    (void)c;
}

static void send_header(struct fe_conn *c)
{
    fe_puts(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' "
               "version='1.0' xml:lang='en'>");
    c->flags |= FE_F_HDR_SENT;
}

/* As c2s answers: a header, then features; each stanza back; the end; the error. */
static void on_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev)
{
    if (kind == XML_EV_STREAM_OPEN) {
        send_header(c);
        fe_puts(c, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                   "</stream:features> ");
    } else if (kind == XML_EV_STANZA) {
        fe_write(c, ev->raw.p, ev->raw.len);
    } else if (kind == XML_EV_STREAM_CLOSE) {
        fe_stream_close(c);
    } else if (kind == XML_EV_ERROR) {
        fe_stream_error(c, xml_err_condition(ev->err));
    }
}

static const struct fe_ops ops = {.conn_size = sizeof(struct fe_conn), .closing = none,
                                  .release = none, .event = on_event, .send_header = send_header};
static const struct config_ws ws_cfg = {.origins = "", .max_request = 8192};
static struct fe_thread t;

/* The client's bytes after a good upgrade, to a connection of the layer. */
static void connection(const uint8_t *data, size_t size)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Protocol: xmpp\r\n\r\n";
    if (!t.ops) {
        log_set_level(LOG_LEVEL_ERROR);
        t.ops = &ops;
        t.ws_cfg = &ws_cfg;
        for (unsigned i = 0; i < FE_LISTENERS; i++)
            t.lfd[i] = -1;
        FUZZ_CHECK(io_uring_queue_init(64, &t.ring, 0) == 0 && fe_pool_init(&t, 1) == 0);
    }
    struct fe_conn *c = fe_conn_new(&t, open("/dev/null", O_RDWR | O_CLOEXEC), false);
    FUZZ_CHECK(c != NULL);
    struct xml_limits lim = {.max_stanza = 4096, .max_depth = 16, .max_attrs = 16, .max_name = 64};
    xml_init(&c->xp, &lim, XML_CONTENT_CLIENT, t.scratch, sizeof t.scratch);
    FUZZ_CHECK(fe_ws_start(c) == 0);
    fe_ws_input(c, req, sizeof req - 1);
    buf_consume(&c->out, buf_used(&c->out)); /* the 101 */
    /* In two receives, cut where the input's last byte says. */
    size_t cut = size ? data[size - 1] % (size + 1) : 0;
    fe_ws_input(c, (const char *)data, cut);
    if (c->state != FE_CLOSING)
        fe_ws_input(c, (const char *)data + cut, size - cut);
    fe_close(c);
    const uint8_t *p = (const uint8_t *)buf_data(&c->out);
    size_t n = buf_used(&c->out);
    while (n) {
        FUZZ_CHECK(n >= 2 && (p[0] & 0xF0) == 0x80 && !(p[1] & 0x80));
        unsigned op = p[0] & 0x0F;
        FUZZ_CHECK(op == WS_OP_TEXT || op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG);
        size_t len = p[1], h = 2;
        if (len == 126) {
            FUZZ_CHECK(n >= 4);
            len = (size_t)p[2] << 8 | p[3];
            h = 4;
        } else {
            FUZZ_CHECK(len < 126); /* nothing of ours is 64 KiB here */
        }
        FUZZ_CHECK(h + len <= n);
        p += h + len;
        n -= h + len;
    }
    c->flags |= FE_F_DEAD;
    c->ops = 0;
    fe_maybe_release(c);
    FUZZ_CHECK(c->state == FE_FREE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint64_t max = 16 * (uint64_t)data[0];
    data++, size--;
    uint8_t copy[256];
    for (size_t off = 0; off < size;) {
        struct ws_frame f, g;
        uint16_t code = 0;
        enum ws_status st = ws_frame_parse(data + off, size - off, max, &f, &code);
        FUZZ_CHECK(st == WS_INCOMPLETE || st == WS_DONE || st == WS_INVALID);
        if (st == WS_INVALID) {
            FUZZ_CHECK(code == WS_CLOSE_PROTOCOL || code == WS_CLOSE_TOO_BIG);
            FUZZ_CHECK(code != WS_CLOSE_TOO_BIG || !(data[off] & 0x08));
        }
        if (st != WS_DONE)
            break;
        FUZZ_CHECK(f.hdr_len == 6 || f.hdr_len == 8 || f.hdr_len == 14);
        FUZZ_CHECK(f.hdr_len <= size - off && (data[off + 1] & 0x80));
        bool control = f.opcode & 0x08;
        FUZZ_CHECK(f.opcode <= WS_OP_BINARY || (f.opcode >= WS_OP_CLOSE && f.opcode <= WS_OP_PONG));
        FUZZ_CHECK(control ? f.fin && f.len <= WS_CONTROL_MAX : f.len <= max);
        for (size_t k = 0; k < f.hdr_len; k++)
            FUZZ_CHECK(ws_frame_parse(data + off, k, max, &g, &code) == WS_INCOMPLETE);
        uint8_t h[10];
        FUZZ_CHECK(ws_frame_header(h, f.opcode, f.len) + 4 == f.hdr_len);
        off += f.hdr_len;
        size_t n = f.len < size - off ? (size_t)f.len : size - off;
        size_t m = n < sizeof copy ? n : sizeof copy;
        memcpy(copy, data + off, m);
        ws_unmask(copy, m, f.mask, off & 7);
        ws_unmask(copy, m, f.mask, off & 7);
        FUZZ_CHECK(!memcmp(copy, data + off, m));
        off += n;
    }
    connection(data, size);
    return 0;
}
