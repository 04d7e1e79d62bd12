/*
 * ws: the WebSocket protocol's wire formats (RFC 6455), as a server reads and writes
 * them: the client's opening handshake (an HTTP/1.1 GET asking to upgrade), the answer's
 * Sec-WebSocket-Accept, and frame headers both ways. Decoding only, no I/O and no state
 * between calls: the front-end layer's WebSocket transport (common/fe/ws.c) hands it what
 * a connection sent so far; the fuzz drivers (fuzz/ws_request.c, fuzz/ws_frame.c) hand it
 * anything.
 *
 * The handshake (§4.2.1). ws_request_parse() takes everything received so far and
 * answers INCOMPLETE until the blank line that ends the request has come, within `max`
 * bytes (else INVALID with 431). A whole request must be `GET target HTTP/1.1`, with
 * Host, an Upgrade listing websocket, a Connection listing upgrade, Sec-WebSocket-Version
 * 13 and a Sec-WebSocket-Key of 24 base64 characters (16 bytes); anything else is INVALID
 * with the HTTP status to answer and why. The subprotocols asked for and the Origin are
 * reported, not judged: which are acceptable is the caller's policy.
 *
 * Frames (§5.2). A client's frames must be masked; RSV bits (no extension is ever
 * negotiated), unknown opcodes, control frames that are fragmented or longer than 125
 * bytes, and lengths not in their shortest form are protocol errors (close code 1002); a
 * data frame longer than the caller's bound is 1009. The payload is the caller's to read
 * and unmask (ws_unmask(), resumable at any offset).
 *
 * Any thread may call any of these.
 */
#ifndef STARLING_NET_WS_H
#define STARLING_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_FRAME_MAX_HEADER 14 /* bytes of a client frame's header at most: 2 + 8 + 4 */
#define WS_CONTROL_MAX      125
#define WS_ACCEPT_LEN       28 /* base64 of a SHA-1 */

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* Close codes (§7.4.1). */
enum ws_close {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003, /* a binary message: XMPP over WebSocket is text */
    WS_CLOSE_INVALID_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
};

enum ws_status {
    WS_INCOMPLETE, /* more bytes are needed */
    WS_DONE,       /* a whole request, or a frame's whole header */
    WS_INVALID,    /* the request or frame is refused: see its status or close code */
};

/* A span of the caller's bytes; p NULL when absent. */
struct ws_span {
    const char *p;
    uint32_t len;
};

struct ws_request {
    uint32_t len;          /* DONE: bytes of the request, its blank line included */
    struct ws_span target; /* DONE: the request target (a path, as sent) */
    struct ws_span key;    /* DONE: Sec-WebSocket-Key, 24 characters */
    struct ws_span origin; /* DONE: Origin as sent; p NULL without one (not a browser) */
    bool xmpp;             /* DONE: Sec-WebSocket-Protocol lists "xmpp" (RFC 7395 §3.1) */
    uint16_t status;       /* INVALID: the HTTP status to answer: 400, 405, 426, 431, 505 */
    const char *why;       /* INVALID: a static string for the log and the answer's body */
};

/* Decodes the opening handshake at the start of p[0..n), at most max bytes of it. The
 * spans point into p. */
enum ws_status ws_request_parse(const char *p, size_t n, size_t max, struct ws_request *r);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2): base64(SHA-1(key GUID)), NUL
 * terminated. */
void ws_accept(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1]);

struct ws_frame {
    bool fin;
    uint8_t opcode;  /* enum ws_opcode */
    uint8_t hdr_len; /* bytes of the header; the payload follows */
    uint64_t len;    /* bytes of the payload */
    uint8_t mask[4];
};

/* Decodes a client frame's header at the start of p[0..n). A data frame's payload may be
 * at most max bytes. INVALID: *code is the close code to send. */
enum ws_status ws_frame_parse(const void *p, size_t n, uint64_t max, struct ws_frame *f,
                              uint16_t *code);

/* Unmasks n payload bytes at p in place, the first being byte `off` of the payload. */
void ws_unmask(void *p, size_t n, const uint8_t mask[4], uint64_t off);

/* A server frame's header (final, unmasked) for a payload of len bytes into out: its
 * size, 2, 4 or 10. */
size_t ws_frame_header(uint8_t out[10], unsigned opcode, uint64_t len);

#endif
