/*
 * Unit tests of common/fe/ws.c, the WebSocket transport, on a thread that runs no loop
 * (its io_uring takes the SQEs a connection prepares; nothing is submitted) and a front
 * end that records the parser's events. Output: what the stream writes, in any pieces,
 * comes out as one text frame per first-level element, each a document of its own (the
 * stream header as <open/>, its end as <close/>, namespaces declared, CDATA and quoted
 * '>' respected), a whitespace keepalive as a ping. Input: masked frames, fragmented or
 * not, become the stream the parser expects (<open/> as the header, <close/> as its end).
 */
#include "common/fe/fe.h"
#include "common/net/ws.h"
#include "shm/proto.h"
#include "test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#define FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

static struct fe_thread t;
static struct config_ws ws_cfg = {.origins = "", .max_request = 8192};

/* What the parser reported, one line per event. */
static char events[4096];

static void none(struct fe_conn *c)
{
    (void)c;
}

static void on_event(struct fe_conn *c, enum xml_ev_kind kind, const struct xml_event *ev)
{
    (void)c;
    size_t n = strlen(events);
    if (kind == XML_EV_STREAM_OPEN)
        snprintf(events + n, sizeof events - n, "open to=%.*s lang=%.*s\n",
                 (int)ev->attr[XML_ATTR_TO].len, ev->attr[XML_ATTR_TO].p,
                 (int)ev->attr[XML_ATTR_LANG].len, ev->attr[XML_ATTR_LANG].p);
    else if (kind == XML_EV_STANZA)
        snprintf(events + n, sizeof events - n, "stanza %.*s\n", (int)ev->raw.len, ev->raw.p);
    else if (kind == XML_EV_STREAM_CLOSE)
        snprintf(events + n, sizeof events - n, "close\n");
    else if (kind == XML_EV_ERROR)
        snprintf(events + n, sizeof events - n, "error %s\n", xml_err_condition(ev->err));
}

/* Our stream header, before an early stream error. */
static void send_header(struct fe_conn *c)
{
    fe_puts(c, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
               "from='localhost' version='1.0'>");
    c->flags |= FE_F_HDR_SENT;
}

static const struct fe_ops ops = {.conn_size = sizeof(struct fe_conn), .closing = none,
                                  .release = none, .event = on_event, .send_header = send_header};

static struct fe_conn *open_ws(void)
{
    memset(&t, 0, sizeof t);
    t.ops = &ops;
    t.fe = PROTO_FE_C2S;
    t.cfg = config_defaults();
    t.ws_cfg = &ws_cfg;
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t.lfd[i] = -1;
    CHECK(io_uring_queue_init(64, &t.ring, 0) == 0);
    CHECK_INT(fe_pool_init(&t, 4), ==, 0);
    struct fe_conn *c = fe_conn_new(&t, open("/dev/null", O_RDWR | O_CLOEXEC), false);
    if (!c) {
        TEST_FAIL("no connection");
        exit(1);
    }
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    lim.max_stanza = 2000;
    xml_init(&c->xp, &lim, XML_CONTENT_CLIENT, t.scratch, sizeof t.scratch);
    CHECK_INT(fe_ws_start(c), ==, 0);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Protocol: xmpp\r\n\r\n";
    fe_ws_input(c, req, strlen(req));
    const char *ok = "HTTP/1.1 101 Switching Protocols\r\n";
    CHECK(buf_used(&c->out) > strlen(ok) && !memcmp(buf_data(&c->out), ok, strlen(ok)));
    CHECK(strstr(buf_data(&c->out), "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    buf_consume(&c->out, buf_used(&c->out));
    events[0] = 0;
    return c;
}

static void close_ws(struct fe_conn *c)
{
    c->flags |= FE_F_DEAD; /* nothing is sent: the socket is /dev/null */
    fe_close(c);
    c->ops = 0;
    fe_maybe_release(c);
    fe_pool_free(&t);
    io_uring_queue_exit(&t.ring);
    buf_free(&t.ws_out);
    config_free(t.cfg);
}

/* The next frame the server wrote: its opcode, its payload NUL-terminated in out; -1
 * when there is none. */
static int next_frame(struct fe_conn *c, char *out, size_t cap)
{
    const uint8_t *p = (const uint8_t *)buf_data(&c->out);
    size_t n = buf_used(&c->out);
    if (n < 2)
        return -1;
    CHECK(p[0] & 0x80);    /* final */
    CHECK(!(p[1] & 0x80)); /* unmasked */
    size_t len = p[1] & 0x7F, h = 2;
    if (len == 126) {
        len = (size_t)p[2] << 8 | p[3];
        h = 4;
    }
    if (h + len > n || len >= cap)
        return -1;
    memcpy(out, p + h, len);
    out[len] = 0;
    buf_consume(&c->out, h + len);
    return p[0] & 0x0F;
}

#define CHECK_FRAME(c, op, text)                                                                   \
    do {                                                                                           \
        char got_[4096];                                                                           \
        CHECK_INT(next_frame(c, got_, sizeof got_), ==, op);                                       \
        CHECK_STR(got_, text);                                                                     \
    } while (0)

static void out_stream(void)
{
    struct fe_conn *c = open_ws();
    fe_puts(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
               "xmlns:stream='http://etherx.jabber.org/streams' id='ab&amp;c' from='localhost' "
               "version='1.0' xml:lang='en'>");
    CHECK_FRAME(c, WS_OP_TEXT,
                "<open xmlns='" FRAMING "' id='ab&amp;c' from='localhost' version='1.0' "
                "xml:lang='en'/>");
    fe_puts(c, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
               "</stream:features>");
    CHECK_FRAME(c, WS_OP_TEXT,
                "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind "
                "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    fe_puts(c, " ");
    CHECK_FRAME(c, WS_OP_PING, "");
    fe_puts(c, "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
               "</stream:error></stream:stream>");
    CHECK_FRAME(c, WS_OP_TEXT,
                "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict "
                "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    CHECK_FRAME(c, WS_OP_TEXT, "<close xmlns='" FRAMING "'/>");
    CHECK_INT(buf_used(&c->out), ==, 0);
    close_ws(c);
}

static void out_stanzas(void)
{
    struct fe_conn *c = open_ws();
    /* A '>' and a '/>' in attribute values, a CDATA section holding markup, nesting, an
     * element of the same name inside: one message, jabber:client declared. */
    const char *m = "<message to='a@b' id='x>y' type=\"chat/>\"><body><![CDATA[</message> <x/>]]>"
                    "</body><message/><c xmlns='urn:x'><message>t</message></c></message>";
    size_t n = strlen(m);
    /* Written in three pieces, cut inside a quote, the CDATA section and an end tag. */
    fe_write(c, m, 20);
    fe_write(c, m + 20, 43);
    CHECK_INT(buf_used(&c->out), ==, 0);
    fe_write(c, m + 63, n - 63 - 4);
    CHECK_INT(buf_used(&c->out), ==, 0);
    fe_write(c, m + n - 4, 4);
    char want[1024];
    snprintf(want, sizeof want, "<message xmlns='jabber:client'%s", m + 8);
    CHECK_FRAME(c, WS_OP_TEXT, want);
    /* One that declares its namespace stays as it is; two in one write are two messages. */
    fe_puts(c, "<iq xmlns='jabber:client' type='result' id='1'/><presence xmlns:foo='urn:f'/>");
    CHECK_FRAME(c, WS_OP_TEXT, "<iq xmlns='jabber:client' type='result' id='1'/>");
    CHECK_FRAME(c, WS_OP_TEXT, "<presence xmlns='jabber:client' xmlns:foo='urn:f'/>");
    CHECK_INT(buf_used(&c->out), ==, 0);
    close_ws(c);
}

/* A client frame (masked) into b. */
static size_t client_frame(uint8_t *b, unsigned b0, const char *payload)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = strlen(payload), h = ws_frame_header(b, b0 & 0x0F, n);
    b[0] = (uint8_t)b0;
    b[1] |= 0x80;
    memcpy(b + h, mask, 4);
    for (size_t i = 0; i < n; i++)
        b[h + 4 + i] = (uint8_t)(payload[i] ^ mask[i & 3]);
    return h + 4 + n;
}

static void in_stream(void)
{
    struct fe_conn *c = open_ws();
    uint8_t b[4096];
    size_t n = client_frame(b, 0x81, "<open xmlns='" FRAMING "' to='localhost' version='1.0' "
                                     "xml:lang='fr' from='x&apos;y'/>");
    /* Byte by byte: frames cut anywhere. */
    for (size_t i = 0; i < n; i++)
        fe_ws_input(c, (const char *)b + i, 1);
    CHECK_STR(events, "open to=localhost lang=fr\n");
    events[0] = 0;
    /* A stanza in three fragments, a ping among them, all in one receive. */
    n = client_frame(b, 0x01, "<message to='b@localhost'><bo");
    n += client_frame(b + n, 0x89, "hi");
    n += client_frame(b + n, 0x00, "dy>x</body>");
    n += client_frame(b + n, 0x80, "</message>");
    fe_ws_input(c, (const char *)b, n);
    CHECK_STR(events, "stanza <message to='b@localhost'><body>x</body></message>\n");
    CHECK_FRAME(c, WS_OP_PONG, "hi");
    events[0] = 0;
    /* An element named close in another namespace is a stanza (the stream refuses it);
     * the framing one, with a prefix, is the stream's end. */
    n = client_frame(b, 0x81, "<close xmlns='urn:x'/>");
    n += client_frame(b + n, 0x81, "<fr:close xmlns:fr='" FRAMING "'/>");
    fe_ws_input(c, (const char *)b, n);
    CHECK_STR(events, "stanza <close xmlns='urn:x'/>\nclose\n");
    close_ws(c);
}

static void in_limits(void)
{
    struct fe_conn *c = open_ws();
    uint8_t b[8192];
    size_t n = client_frame(b, 0x81, "<open xmlns='" FRAMING "' to='localhost' version='1.0'/>");
    fe_ws_input(c, (const char *)b, n);
    /* The parser's stanza limit (2000 here) bounds a message over its fragments: 1200
     * and then 900 more is over. */
    char big[1300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    memcpy(big, "<message>", 9);
    n = client_frame(b, 0x01, big);
    fe_ws_input(c, (const char *)b, n);
    CHECK(c->state != FE_CLOSING);
    big[900] = 0;
    n = client_frame(b, 0x80, big + 10);
    fe_ws_input(c, (const char *)b, n);
    CHECK(c->state == FE_CLOSING);
    /* policy-violation, <close/>, then close code 1009 (0x03F1). */
    char f[4096];
    CHECK_FRAME(c, WS_OP_TEXT, "<open xmlns='" FRAMING "' from='localhost' version='1.0'/>");
    CHECK_INT(next_frame(c, f, sizeof f), ==, WS_OP_TEXT);
    CHECK(strstr(f, "<stream:error") && strstr(f, "policy-violation"));
    CHECK_FRAME(c, WS_OP_TEXT, "<close xmlns='" FRAMING "'/>");
    CHECK_FRAME(c, WS_OP_CLOSE, "\x03\xf1");
    close_ws(c);
}

int main(void)
{
    RUN(out_stream);
    RUN(out_stanzas);
    RUN(in_stream);
    RUN(in_limits);
    return test_done("fe_ws");
}
