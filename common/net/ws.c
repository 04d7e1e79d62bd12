/* ws.c: the WebSocket handshake and frame headers (ws.h). */
#include "common/net/ws.h"

#include <openssl/base64.h>
#include <openssl/sha.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static enum ws_status refuse(struct ws_request *r, uint16_t status, const char *why)
{
    r->status = status;
    r->why = why;
    return WS_INVALID;
}

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

static bool eq_nocase(const char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return false;
    for (size_t i = 0; i < n; i++)
        if (lower(p[i]) != lit[i])
            return false;
    return true;
}

/* RFC 9110 §5.6.2: a token's characters. */
static bool tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Does the comma-separated list p[0..n) hold `token` (case-insensitive when nocase)? */
static bool list_has(const char *p, size_t n, const char *token, bool nocase)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < n;) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        size_t s = i;
        while (i < n && p[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e - s == tl && (nocase ? eq_nocase(p + s, tl, token) : !memcmp(p + s, token, tl)))
            return true;
    }
    return false;
}

static bool base64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

/* 16 bytes in base64: 22 characters, the last of which carries 2 bits (§4.1: "a
 * randomly selected 16-byte value ... base64-encoded"), then "==". */
static bool key_ok(const char *p, size_t n)
{
    if (n != 24 || p[22] != '=' || p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!base64_char(p[i]))
            return false;
    return strchr("AQgw", p[21]) != NULL;
}

enum ws_status ws_request_parse(const char *p, size_t n, size_t max, struct ws_request *r)
{
    memset(r, 0, sizeof *r);
    /* The end first: nothing is judged before the whole request is there, so that a
     * client sending it in pieces gets the same answer as one sending it at once. */
    size_t lim = n < max ? n : max, end = 0;
    for (size_t i = 3; i < lim; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r') {
            end = i + 1;
            break;
        }
    if (!end)
        return n >= max ? refuse(r, 431, "request too large") : WS_INCOMPLETE;
    r->len = (uint32_t)end;

    /* The request line: GET SP target SP HTTP/1.1 CRLF. */
    size_t i = 0;
    while (i < end && tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || p[i] != ' ')
        return refuse(r, 400, "malformed request line");
    if (i != 3 || memcmp(p, "GET", 3))
        return refuse(r, 405, "method not GET");
    size_t ts = ++i;
    while (i < end && (unsigned char)p[i] > ' ' && (unsigned char)p[i] < 0x7F)
        i++;
    if (i == ts || p[i] != ' ')
        return refuse(r, 400, "malformed request target");
    r->target = (struct ws_span){p + ts, (uint32_t)(i - ts)};
    i++;
    if (end - i < 10 || memcmp(p + i, "HTTP/1.", 7) || p[i + 8] != '\r' || p[i + 9] != '\n')
        return refuse(r, 400, "malformed request line");
    if (p[i + 7] < '1' || p[i + 7] > '9')
        return refuse(r, 505, "not HTTP/1.1");
    i += 10;

    bool host = false, upgrade = false, connection = false, version = false;
    while (i + 2 <= end && !(p[i] == '\r' && p[i + 1] == '\n')) {
        /* name ":" OWS value OWS CRLF; no folded lines (RFC 9112 §5.2). */
        size_t ns = i;
        while (i < end && tchar((unsigned char)p[i]))
            i++;
        if (i == ns || p[i] != ':')
            return refuse(r, 400, "malformed header");
        size_t nl = i - ns;
        i++;
        while (i < end && (p[i] == ' ' || p[i] == '\t'))
            i++;
        size_t vs = i;
        while (i < end && p[i] != '\r' && p[i] != '\n') {
            unsigned char ch = (unsigned char)p[i];
            if ((ch < ' ' && ch != '\t') || ch == 0x7F)
                return refuse(r, 400, "control character in a header");
            i++;
        }
        if (i + 1 >= end || p[i] != '\r' || p[i + 1] != '\n')
            return refuse(r, 400, "malformed header");
        size_t ve = i;
        while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
            ve--;
        const char *name = p + ns, *v = p + vs;
        size_t vl = ve - vs;
        i += 2;
        if (eq_nocase(name, nl, "host")) {
            if (host)
                return refuse(r, 400, "Host twice");
            host = true;
        } else if (eq_nocase(name, nl, "upgrade")) {
            upgrade |= list_has(v, vl, "websocket", true);
        } else if (eq_nocase(name, nl, "connection")) {
            connection |= list_has(v, vl, "upgrade", true);
        } else if (eq_nocase(name, nl, "sec-websocket-version")) {
            if (version)
                return refuse(r, 400, "Sec-WebSocket-Version twice");
            version = vl == 2 && !memcmp(v, "13", 2);
            if (!version)
                return refuse(r, 426, "Sec-WebSocket-Version not 13");
        } else if (eq_nocase(name, nl, "sec-websocket-key")) {
            if (r->key.p)
                return refuse(r, 400, "Sec-WebSocket-Key twice");
            if (!key_ok(v, vl))
                return refuse(r, 400, "Sec-WebSocket-Key not 16 bytes in base64");
            r->key = (struct ws_span){v, (uint32_t)vl};
        } else if (eq_nocase(name, nl, "sec-websocket-protocol")) {
            /* Subprotocol names are compared as they are (§4.1, §11.5). */
            r->xmpp |= list_has(v, vl, "xmpp", false);
        } else if (eq_nocase(name, nl, "origin")) {
            if (r->origin.p)
                return refuse(r, 400, "Origin twice");
            r->origin = (struct ws_span){v, (uint32_t)vl};
        }
    }
    if (!host)
        return refuse(r, 400, "no Host");
    if (!upgrade)
        return refuse(r, 426, "no Upgrade: websocket");
    if (!connection)
        return refuse(r, 400, "no Connection: Upgrade");
    if (!version)
        return refuse(r, 426, "no Sec-WebSocket-Version");
    if (!r->key.p)
        return refuse(r, 400, "no Sec-WebSocket-Key");
    return WS_DONE;
}

void ws_accept(const char *key, size_t len, char out[WS_ACCEPT_LEN + 1])
{
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA_CTX sha;
    SHA1_Init(&sha);
    SHA1_Update(&sha, key, len);
    SHA1_Update(&sha, WS_GUID, sizeof WS_GUID - 1);
    SHA1_Final(md, &sha);
    EVP_EncodeBlock((uint8_t *)out, md, sizeof md);
}

enum ws_status ws_frame_parse(const void *buf, size_t n, uint64_t max, struct ws_frame *f,
                              uint16_t *code)
{
    const uint8_t *p = buf;
    *code = WS_CLOSE_PROTOCOL;
    if (n < 2)
        return WS_INCOMPLETE;
    f->fin = p[0] & 0x80;
    f->opcode = p[0] & 0x0F;
    if (p[0] & 0x70)
        return WS_INVALID; /* RSV1-3: no extension was negotiated */
    bool control = f->opcode & 0x8;
    if (f->opcode > WS_OP_PONG || (f->opcode > WS_OP_BINARY && f->opcode < WS_OP_CLOSE))
        return WS_INVALID;
    if (control && !f->fin)
        return WS_INVALID; /* §5.5: control frames are never fragmented */
    if (!(p[1] & 0x80))
        return WS_INVALID; /* §5.1: a client masks every frame */
    uint64_t len = p[1] & 0x7F;
    size_t h = 2;
    if (len == 126) {
        if (n < 4)
            return WS_INCOMPLETE;
        len = (uint64_t)p[2] << 8 | p[3];
        h = 4;
        if (len < 126)
            return WS_INVALID; /* §5.2: the minimal number of bytes */
    } else if (len == 127) {
        if (n < 10)
            return WS_INCOMPLETE;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | p[i];
        h = 10;
        if (len >> 63 || len < 65536)
            return WS_INVALID;
    }
    if (control && len > WS_CONTROL_MAX)
        return WS_INVALID;
    if (!control && len > max) {
        *code = WS_CLOSE_TOO_BIG;
        return WS_INVALID;
    }
    if (n < h + 4)
        return WS_INCOMPLETE;
    memcpy(f->mask, p + h, 4);
    f->hdr_len = (uint8_t)(h + 4);
    f->len = len;
    *code = 0;
    return WS_DONE;
}

void ws_unmask(void *buf, size_t n, const uint8_t mask[4], uint64_t off)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(off + i) & 3];
}

size_t ws_frame_header(uint8_t out[10], unsigned opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len < 65536) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
