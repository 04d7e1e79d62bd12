/*
 * Tests common/net/ws.c: RFC 6455's own examples (the handshake of §1.3 and §4.2.2, the
 * frames of §5.7), an upgrade as browsers send it, incomplete at every byte short of its
 * end; what must be refused with which status; frame headers of every length form, cut
 * anywhere; the protocol errors and their close codes; and unmasking at any offset.
 */
#include "common/net/ws.h"

#include "test.h"

#define MAX_REQ 8192

/* A browser's request (Chromium's headers, in its order). */
#define REQ_HEAD                                                                                   \
    "GET /xmpp-websocket HTTP/1.1\r\n"                                                             \
    "Host: 127.0.0.1:5290\r\n"                                                                     \
    "Connection: Upgrade\r\n"                                                                      \
    "Pragma: no-cache\r\n"                                                                         \
    "Upgrade: websocket\r\n"                                                                       \
    "Origin: http://127.0.0.1:8000\r\n"                                                            \
    "Sec-WebSocket-Version: 13\r\n"                                                                \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"                                              \
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

static void accept_example(void)
{
    char out[WS_ACCEPT_LEN + 1];
    ws_accept("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
}

static void request_browser(void)
{
    const char *req = REQ_HEAD "Sec-WebSocket-Protocol: xmpp\r\n\r\n";
    size_t n = strlen(req);
    struct ws_request r;
    CHECK_INT(ws_request_parse(req, n, MAX_REQ, &r), ==, WS_DONE);
    CHECK_INT(r.len, ==, n);
    CHECK(r.xmpp);
    CHECK_SPAN(r.key.p, r.key.len, "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK_SPAN(r.origin.p, r.origin.len, "http://127.0.0.1:8000");
    CHECK_SPAN(r.target.p, r.target.len, "/xmpp-websocket");
    /* Cut anywhere, it is incomplete; frames after it are not its bytes. */
    for (size_t k = 0; k < n; k++)
        CHECK_INT(ws_request_parse(req, k, MAX_REQ, &r), ==, WS_INCOMPLETE);
    char more[1024];
    snprintf(more, sizeof more, "%s\x81\x85", req);
    CHECK_INT(ws_request_parse(more, strlen(more), MAX_REQ, &r), ==, WS_DONE);
    CHECK_INT(r.len, ==, n);
}

static void request_lists(void)
{
    struct ws_request r;
    /* Protocols in a list and over two headers; tokens in any case where the RFC says so. */
    const char *a = "GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\n"
                    "sec-websocket-version: 13\r\nsec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                    "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: mqtt ,  xmpp\r\n\r\n";
    CHECK_INT(ws_request_parse(a, strlen(a), MAX_REQ, &r), ==, WS_DONE);
    CHECK(r.xmpp);
    CHECK(!r.origin.p);
    /* Subprotocols are compared exactly: XMPP is not xmpp. */
    const char *b = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"
                    "Sec-WebSocket-Protocol: XMPP, xmpp2\r\n\r\n";
    CHECK_INT(ws_request_parse(b, strlen(b), MAX_REQ, &r), ==, WS_DONE);
    CHECK(!r.xmpp);
}

static void request_refused(void)
{
    static const struct {
        const char *req;
        unsigned status;
    } cases[] = {
        {"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 405},
        {"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 400},
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET /\r\nHost: x\r\n\r\n", 400},
        {"G\x01T / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\x01y\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\nUpgrade: websocket\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", 400}, /* no Connection */
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", 426},
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Version: 8\r\n\r\n",
         426},
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400}, /* no key */
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAB==\r\n\r\n",
         400}, /* not 16 bytes: the last character carries bits past them */
        {"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAA*==\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: x\r\nOrigin: a\r\nOrigin: b\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ws_request r;
        enum ws_status st = ws_request_parse(cases[i].req, strlen(cases[i].req), MAX_REQ, &r);
        if (st != WS_INVALID || r.status != cases[i].status)
            TEST_FAIL("case %zu: %d %u (%s), expected %u", i, st, r.status, r.why ? r.why : "",
                      cases[i].status);
        else
            CHECK(r.why != NULL);
    }
}

static void request_too_large(void)
{
    char big[300];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    struct ws_request r;
    CHECK_INT(ws_request_parse(big, 255, 256, &r), ==, WS_INCOMPLETE);
    CHECK_INT(ws_request_parse(big, 256, 256, &r), ==, WS_INVALID);
    CHECK_INT(r.status, ==, 431);
    /* A whole request within the bound is read whatever follows past it. */
    const char *req = REQ_HEAD "Sec-WebSocket-Protocol: xmpp\r\n\r\n";
    CHECK_INT(ws_request_parse(req, strlen(req), strlen(req), &r), ==, WS_DONE);
    CHECK_INT(ws_request_parse(req, strlen(req), strlen(req) - 1, &r), ==, WS_INVALID);
}

/* RFC 6455 §5.7: "Hello", masked, from a client; then the server's unmasked forms. */
static void frame_examples(void)
{
    uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    struct ws_frame f;
    uint16_t code;
    CHECK_INT(ws_frame_parse(hello, sizeof hello, 1000, &f, &code), ==, WS_DONE);
    CHECK(f.fin);
    CHECK_INT(f.opcode, ==, WS_OP_TEXT);
    CHECK_INT(f.hdr_len, ==, 6);
    CHECK_INT(f.len, ==, 5);
    /* Unmasked in two pieces, as it may arrive. */
    ws_unmask(hello + 6, 2, f.mask, 0);
    ws_unmask(hello + 8, 3, f.mask, 2);
    CHECK_SPAN(hello + 6, 5, "Hello");
    for (size_t k = 0; k < 6; k++)
        CHECK_INT(ws_frame_parse(hello, k, 1000, &f, &code), ==, WS_INCOMPLETE);

    uint8_t h[10];
    CHECK_INT(ws_frame_header(h, WS_OP_TEXT, 5), ==, 2);
    CHECK(h[0] == 0x81 && h[1] == 0x05);
    CHECK_INT(ws_frame_header(h, WS_OP_PONG, 0), ==, 2);
    CHECK(h[0] == 0x8a && h[1] == 0);
    CHECK_INT(ws_frame_header(h, WS_OP_TEXT, 256), ==, 4);
    CHECK(h[1] == 126 && h[2] == 0x01 && h[3] == 0x00);
    CHECK_INT(ws_frame_header(h, WS_OP_TEXT, 65536), ==, 10);
    CHECK(h[1] == 127 && h[7] == 0x01 && h[8] == 0 && h[9] == 0);
}

/* A masked client header for len (the shortest form) into out: its size. */
static size_t client_header(uint8_t *out, uint8_t b0, uint64_t len)
{
    size_t n = ws_frame_header(out, b0 & 0x0F, len);
    out[0] = b0;
    out[1] |= 0x80;
    memcpy(out + n, "\x01\x02\x03\x04", 4);
    return n + 4;
}

static void frame_lengths(void)
{
    static const uint64_t lens[] = {0, 125, 126, 65535, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t h[WS_FRAME_MAX_HEADER];
        size_t n = client_header(h, 0x01, lens[i]); /* not final: a first fragment */
        struct ws_frame f;
        uint16_t code;
        CHECK_INT(ws_frame_parse(h, n, 1u << 20, &f, &code), ==, WS_DONE);
        CHECK_INT(f.len, ==, lens[i]);
        CHECK_INT(f.hdr_len, ==, n);
        CHECK(!f.fin && f.opcode == WS_OP_TEXT);
        CHECK(!memcmp(f.mask, "\x01\x02\x03\x04", 4));
        for (size_t k = 0; k < n; k++)
            CHECK_INT(ws_frame_parse(h, k, 1u << 20, &f, &code), ==, WS_INCOMPLETE);
        /* One byte over the caller's bound: too big, as soon as the length is known. */
        if (lens[i]) {
            CHECK_INT(ws_frame_parse(h, n - 4, lens[i] - 1, &f, &code), ==, WS_INVALID);
            CHECK_INT(code, ==, WS_CLOSE_TOO_BIG);
        }
    }
}

static void frame_errors(void)
{
    static const struct {
        uint8_t b[14];
        size_t n;
        uint16_t code;
    } cases[] = {
        {{0x81, 0x05}, 2, WS_CLOSE_PROTOCOL},                          /* unmasked */
        {{0xC1, 0x85}, 2, WS_CLOSE_PROTOCOL},                          /* RSV1 */
        {{0xA1, 0x85}, 2, WS_CLOSE_PROTOCOL},                          /* RSV2 */
        {{0x83, 0x85}, 2, WS_CLOSE_PROTOCOL},                          /* opcode 3 */
        {{0x8B, 0x85}, 2, WS_CLOSE_PROTOCOL},                          /* opcode 0xB */
        {{0x09, 0x80}, 2, WS_CLOSE_PROTOCOL},                          /* a fragmented ping */
        {{0x89, 0xFE, 0x00, 0x7E}, 4, WS_CLOSE_PROTOCOL},              /* a ping of 126 */
        {{0x88, 0xFE, 0x00, 0x7D}, 4, WS_CLOSE_PROTOCOL},              /* 125 in 16 bits */
        {{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 10, WS_CLOSE_PROTOCOL}, /* 65535 in 64 */
        {{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0}, 10, WS_CLOSE_PROTOCOL},    /* the top bit */
        {{0x81, 0xFF, 0, 0, 0, 0, 0x10, 0, 0, 0}, 10, WS_CLOSE_TOO_BIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ws_frame f;
        uint16_t code = 0;
        enum ws_status st = ws_frame_parse(cases[i].b, cases[i].n, 1u << 20, &f, &code);
        if (st != WS_INVALID || code != cases[i].code)
            TEST_FAIL("case %zu: %d %u, expected close %u", i, st, code, cases[i].code);
    }
    /* Control frames are not bounded by the caller's data bound. */
    uint8_t h[WS_FRAME_MAX_HEADER];
    size_t n = client_header(h, 0x89, 125);
    struct ws_frame f;
    uint16_t code;
    CHECK_INT(ws_frame_parse(h, n, 0, &f, &code), ==, WS_DONE);
}

int main(void)
{
    RUN(accept_example);
    RUN(request_browser);
    RUN(request_lists);
    RUN(request_refused);
    RUN(request_too_large);
    RUN(frame_examples);
    RUN(frame_lengths);
    RUN(frame_errors);
    return test_done("ws");
}
