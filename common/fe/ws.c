/*
 * ws.c: XMPP over WebSocket (RFC 7395) as a transport of the front-end layer, between
 * TLS (or the socket) and the stream: a connection accepted on a WebSocket listener
 * speaks HTTP first, then WebSocket frames, and the stream above it never knows.
 *
 * Why a transport and not a parser mode: RFC 7395 replaces the stream's framing only
 * (an <open/> and <close/> in urn:ietf:params:xml:ns:xmpp-framing instead of the
 * <stream:stream> root, one element per message); everything inside is the stream of
 * RFC 6120. So the translation happens at the two ends of the layer, and the parser,
 * SASL, binding and the router are the ones every TCP client goes through:
 *
 *   in   a message holding <open .../> becomes the stream header
 *        <stream:stream xmlns='jabber:client' xmlns:stream=... to= from= version= xml:lang=>
 *        with the values the client gave (decoded, escaped again); <close/> becomes
 *        </stream:stream>; anything else is stream content, as it is. The parser then
 *        checks it as it checks a TCP stream (a message of two stanzas, or a stanza cut
 *        over two messages, parse the same; RFC 7395 asks clients for one each).
 *   out  what the stream writes (fe_write()) is cut into its first-level elements, each
 *        one text message: the XML declaration is dropped; our <stream:stream ...> header
 *        becomes <open xmlns=framing .../> with its attributes but the namespace
 *        declarations; </stream:stream> becomes <close/>; a stream:-prefixed element
 *        (features, errors) gets its xmlns:stream declaration and any other one without a
 *        default namespace declaration gets xmlns='jabber:client' (§3.3.3: each message is
 *        a document of its own); a whitespace keepalive becomes a ping frame (§3.6).
 *        Only our own output passes there, well-formed by the layer's invariant, so the
 *        scan needs to know tags, quotes and CDATA sections, no more.
 *
 * Bounds: the request at most fe_thread.ws_cfg->max_request bytes and, as every login,
 * within the front end's handshake deadline (the stream's tick closes it silently: no
 * XML goes out before the upgrade); a message at most the parser's stanza limit
 * (c2s.max_stanza_size, c2s.max_stanza_size_preauth before SASL), else policy-violation
 * and close code 1009; control frames at most 125 bytes. A client's frame that breaks
 * RFC 6455 (unmasked, RSV bits, unknown opcode, fragmented control frame, continuation
 * without a start, a new message inside a fragmented one) closes with 1002, a binary
 * message with 1003, without a stream error: the framing, not the stream, is broken.
 *
 * Tests: tests/unit/common/fe/ws.c drives a connection in-process; the fuzz driver
 * common/net/fuzz/ws_frame.c feeds one whatever a client could send after the upgrade.
 */
#include "common/fe/fe.h"
#include "common/core/log.h"
#include "common/net/ws.h"
#include "common/xmpp/xmlw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

enum { WS_HTTP, WS_OPEN, WS_CLOSED };

struct fe_ws {
    uint8_t state;
    uint8_t hdr_n;    /* bytes of a frame header cut across receives, in hdr */
    uint8_t msg_op;   /* the opcode of the message being assembled; 0: none */
    bool in_frame;    /* reading the payload of f */
    uint8_t hdr[WS_FRAME_MAX_HEADER];
    uint16_t close_code; /* what fe_ws_close() sends; 0: 1000 */
    uint8_t ctl_n;
    uint8_t ctl[WS_CONTROL_MAX]; /* a control frame's payload */
    struct ws_frame f;
    uint64_t got;   /* bytes of f's payload read so far */
    struct buf msg; /* the request (WS_HTTP), then the message being assembled, unmasked */
    struct buf out; /* stream output that is not a whole element yet */
};

static bool live(const struct fe_conn *c)
{
    return c->state != FE_CLOSING && c->state != FE_FREE;
}

int fe_ws_start(struct fe_conn *c)
{
    c->ws = calloc(1, sizeof *c->ws);
    return c->ws ? 0 : -ENOMEM;
}

void fe_ws_free(struct fe_conn *c)
{
    if (!c->ws)
        return;
    buf_free(&c->ws->msg);
    buf_free(&c->ws->out);
    free(c->ws);
    c->ws = NULL;
}

void fe_ws_trim(struct fe_conn *c)
{
    if (!c->ws)
        return;
    buf_trim(&c->ws->msg);
    buf_trim(&c->ws->out);
    buf_trim(&c->t->ws_out);
}

/* One frame of ours (final, unmasked) with payload p[0..n), onto the wire. */
static void send_frame(struct fe_conn *c, unsigned opcode, const void *p, size_t n)
{
    struct buf *b = &c->t->ws_out;
    uint8_t h[10];
    size_t hl = ws_frame_header(h, opcode, n);
    buf_consume(b, buf_used(b));
    if (buf_append(b, h, hl) < 0 || buf_append(b, p, n) < 0) {
        fe_close(c);
        return;
    }
    fe_write_wire(c, buf_data(b), buf_used(b));
}

void fe_ws_close(struct fe_conn *c)
{
    struct fe_ws *w = c->ws;
    if (w->state != WS_OPEN)
        return;
    uint16_t code = w->close_code ? w->close_code : WS_CLOSE_NORMAL;
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_frame(c, WS_OP_CLOSE, p, sizeof p);
    w->state = WS_CLOSED;
}

/* A violation of the framing: the close frame says which, and the connection ends. */
static void fail(struct fe_conn *c, uint16_t code, const char *why)
{
    char a[NET_ADDR_TEXT];
    LOG_RL(LOG_LEVEL_INFO, "conn %u: %s: WebSocket %s: closed (%u)", c->slot,
           net_addr_text(&c->peer, a), why, code);
    c->ws->close_code = code;
    fe_close(c);
}

/* ---- output: the stream's elements, one message each ------------------------------------ */

enum top { TOP_DECL, TOP_OPEN, TOP_CLOSE, TOP_ELEM };

struct elem {
    enum top kind;
    size_t name_end; /* the start tag's name ends here */
    size_t head_end; /* ... and the tag itself here (after '>') */
    bool xmlns;      /* the start tag declares a default namespace */
};

static bool space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* The end of the tag that starts at p[i] == '<' (after its '>'), quotes respected; 0
 * when it is not all there. *empty: it ends with "/>". */
static size_t tag_end(const char *p, size_t n, size_t i, bool *empty)
{
    char q = 0;
    for (size_t j = i + 1; j < n; j++) {
        char ch = p[j];
        if (q) {
            if (ch == q)
                q = 0;
        } else if (ch == '\'' || ch == '"') {
            q = ch;
        } else if (ch == '>') {
            *empty = p[j - 1] == '/';
            return j + 1;
        }
    }
    return 0;
}

static size_t find(const char *p, size_t n, size_t i, const char *lit)
{
    size_t m = strlen(lit);
    for (; i + m <= n; i++)
        if (p[i] == lit[0] && !memcmp(p + i, lit, m))
            return i + m;
    return 0;
}

/* The first-level element (or declaration, or stream tag) at p[0] == '<': its length,
 * or 0 when it is not all there. */
static size_t element(const char *p, size_t n, struct elem *e)
{
    bool empty = false;
    memset(e, 0, sizeof *e);
    if (n < 2)
        return 0;
    if (p[1] == '?') {
        e->kind = TOP_DECL;
        return find(p, n, 2, "?>");
    }
    if (p[1] == '/') {
        e->kind = TOP_CLOSE; /* </stream:stream>: the only end tag at the first level */
        return tag_end(p, n, 0, &empty);
    }
    size_t i = 1;
    while (i < n && !space(p[i]) && p[i] != '/' && p[i] != '>')
        i++;
    e->name_end = i;
    if (!(e->head_end = tag_end(p, n, 0, &empty)))
        return 0;
    /* A default namespace declaration: an attribute named exactly xmlns. */
    char q = 0;
    for (size_t j = i; j + 6 < e->head_end; j++) {
        if (q) {
            q = p[j] == q ? 0 : q;
        } else if (p[j] == '\'' || p[j] == '"') {
            q = p[j];
        } else if (space(p[j]) && !memcmp(p + j + 1, "xmlns", 5) &&
                   (p[j + 6] == '=' || space(p[j + 6]))) {
            e->xmlns = true;
        }
    }
    if (e->name_end == 14 && !memcmp(p, "<stream:stream", 14)) {
        e->kind = TOP_OPEN; /* the stream's root: its start tag alone */
        return e->head_end;
    }
    e->kind = TOP_ELEM;
    if (empty)
        return e->head_end;
    unsigned depth = 1;
    for (size_t j = e->head_end;;) {
        while (j < n && p[j] != '<')
            j++; /* character data holds no '<' */
        if (j + 1 >= n)
            return 0;
        if (p[j + 1] == '!') { /* a CDATA section: the only markup declaration in a stream */
            if (!(j = find(p, n, j + 2, "]]>")))
                return 0;
            continue;
        }
        size_t s = j;
        if (!(j = tag_end(p, n, j, &empty)))
            return 0;
        /* an end tag lowers the depth, a start tag that is not empty raises it */
        if (p[s + 1] == '/') {
            if (--depth == 0)
                return j;
        } else if (!empty) {
            depth++;
        }
    }
}

/* A copy of the stream header's attributes but its namespace declarations, into b. */
static int header_attrs(struct buf *b, const char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to;) {
        while (i < to && space(p[i]))
            i++;
        size_t s = i;
        while (i < to && p[i] != '=' && !space(p[i]) && p[i] != '/' && p[i] != '>')
            i++;
        if (i == s)
            break;
        size_t name_len = i - s;
        while (i < to && p[i] != '\'' && p[i] != '"')
            i++;
        if (i == to)
            break;
        char q = p[i++];
        while (i < to && p[i] != q)
            i++;
        i++;
        bool decl = (name_len == 5 && !memcmp(p + s, "xmlns", 5)) ||
                    (name_len > 6 && !memcmp(p + s, "xmlns:", 6));
        if (!decl && (buf_puts(b, " ") < 0 || buf_append(b, p + s, i - s) < 0))
            return -ENOMEM;
    }
    return 0;
}

/* One first-level element of ours as one message. */
static void message(struct fe_conn *c, const char *p, size_t n, const struct elem *e)
{
    struct buf b = {0};
    const char *ins = NULL;
    switch (e->kind) {
    case TOP_DECL:
        return;
    case TOP_CLOSE:
        send_frame(c, WS_OP_TEXT, "<close xmlns='" NS_FRAMING "'/>",
                   sizeof "<close xmlns='" NS_FRAMING "'/>" - 1);
        return;
    case TOP_OPEN:
        if (buf_puts(&b, "<open xmlns='" NS_FRAMING "'") < 0 ||
            header_attrs(&b, p, e->name_end, e->head_end) < 0 || buf_puts(&b, "/>") < 0)
            fe_close(c);
        else
            send_frame(c, WS_OP_TEXT, buf_data(&b), buf_used(&b));
        buf_free(&b);
        return;
    case TOP_ELEM:
        if (e->name_end > 8 && !memcmp(p + 1, "stream:", 7))
            ins = " xmlns:stream='" XML_NS_STREAMS "'";
        else if (!e->xmlns)
            ins = " xmlns='" XML_NS_CLIENT "'";
        break;
    }
    size_t il = ins ? strlen(ins) : 0;
    struct buf *f = &c->t->ws_out;
    uint8_t h[10];
    size_t hl = ws_frame_header(h, WS_OP_TEXT, n + il);
    buf_consume(f, buf_used(f));
    if (buf_append(f, h, hl) < 0 || buf_append(f, p, e->name_end) < 0 ||
        buf_append(f, ins, il) < 0 || buf_append(f, p + e->name_end, n - e->name_end) < 0) {
        fe_close(c);
        return;
    }
    fe_write_wire(c, buf_data(f), buf_used(f));
}

/* The whole elements at the start of p[0..n), sent; returns the bytes they took. */
static size_t elements(struct fe_conn *c, const char *p, size_t n)
{
    size_t i = 0;
    bool text = false, sent = false;
    while (i < n && c->ws->state == WS_OPEN) {
        if (p[i] != '<') {
            text = true; /* whitespace between elements: a keepalive */
            i++;
            continue;
        }
        struct elem e;
        size_t len = element(p + i, n - i, &e);
        if (!len)
            break;
        message(c, p + i, len, &e);
        sent = true;
        i += len;
    }
    if (text && !sent && c->ws->state == WS_OPEN)
        send_frame(c, WS_OP_PING, NULL, 0);
    return i;
}

void fe_ws_write(struct fe_conn *c, const char *p, size_t n)
{
    struct fe_ws *w = c->ws;
    if (w->state != WS_OPEN)
        return; /* no stream before the upgrade, nothing after our close frame */
    if (!buf_used(&w->out)) {
        size_t done = elements(c, p, n);
        if (done < n && buf_append(&w->out, p + done, n - done) < 0)
            fe_close(c);
        return;
    }
    if (buf_append(&w->out, p, n) < 0) {
        fe_close(c);
        return;
    }
    buf_consume(&w->out, elements(c, buf_data(&w->out), buf_used(&w->out)));
}

/* ---- input: messages to the stream -------------------------------------------------- */

static bool str_is(struct xml_str s, const char *lit)
{
    size_t n = strlen(lit);
    return s.p && s.len == n && !memcmp(s.p, lit, n);
}

/* The client's <open/> as the stream header its attributes make. */
static void open_header(struct fe_conn *c, struct xml_parser *fp, const char *p)
{
    struct buf b = {0};
    struct xml_attr a;
    char v[1024];
    int err = buf_puts(&b, "<stream:stream xmlns='" XML_NS_CLIENT
                           "' xmlns:stream='" XML_NS_STREAMS "'");
    for (unsigned i = 0; err == 0 && xml_attr_at(fp, p, i, &a); i++) {
        const char *name = NULL;
        if (!a.ns.len && (str_is(a.name, "to") || str_is(a.name, "from") ||
                          str_is(a.name, "version") || str_is(a.name, "id")))
            name = a.name.len == 2 ? (a.name.p[0] == 't' ? "to" : "id")
                   : a.name.len == 4 ? "from" : "version";
        else if (str_is(a.ns, XML_NS_XML) && str_is(a.name, "lang"))
            name = "xml:lang";
        if (!name || a.raw.len > sizeof v)
            continue;
        size_t vl = a.decode ? xml_decode(a.raw.p, a.raw.len, true, v) : a.raw.len;
        if (!a.decode)
            memcpy(v, a.raw.p, vl);
        err = xmlw_attr(&b, name, v, vl);
    }
    if (err == 0)
        err = buf_puts(&b, ">");
    if (err < 0)
        fe_close(c);
    else
        fe_input(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
}

/* Might the element starting p[0..n) be <open/> or <close/> (of any prefix)? The
 * parser then says whether it is; every other message is a stanza, fed as it is. */
static bool maybe_framing(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && space(p[i]))
        i++;
    if (i == n || p[i] != '<')
        return false;
    size_t s = ++i;
    while (i < n && !space(p[i]) && p[i] != '/' && p[i] != '>')
        i++;
    const char *name = memchr(p + s, ':', i - s);
    size_t ns = name ? (size_t)(name + 1 - p) : s, len = i - ns;
    return (len == 4 && !memcmp(p + ns, "open", 4)) || (len == 5 && !memcmp(p + ns, "close", 5));
}

/* A whole message from the client. */
static void dispatch(struct fe_conn *c, const char *p, size_t n)
{
    if (!maybe_framing(p, n)) {
        fe_input(c, p, n);
        return;
    }
    struct xml_parser fp;
    struct xml_event ev;
    xml_init_fragment(&fp, NULL, c->t->scratch, sizeof c->t->scratch);
    enum xml_ev_kind k = xml_next(&fp, p, n, &ev);
    bool framing = k == XML_EV_START && str_is(ev.ns, NS_FRAMING);
    if (framing && str_is(ev.name, "open"))
        open_header(c, &fp, p);
    else if (framing && str_is(ev.name, "close"))
        fe_input(c, "</stream:stream>", 16);
    else
        fe_input(c, p, n);
    xml_free(&fp);
}

/* A control frame, or the last frame of a message, whole. */
static void frame_done(struct fe_conn *c)
{
    struct fe_ws *w = c->ws;
    switch (w->f.opcode) {
    case WS_OP_PING:
        send_frame(c, WS_OP_PONG, w->ctl, w->ctl_n);
        break;
    case WS_OP_PONG:
        break;
    case WS_OP_CLOSE:
        /* The client ends the connection (after its <close/>, or instead of it): our
         * close frame echoes its code (§5.5.1), and the stream ends as a TCP close would
         * end it. */
        if (w->ctl_n == 1) {
            fail(c, WS_CLOSE_PROTOCOL, "close frame of 1 byte");
            break;
        }
        w->close_code = w->ctl_n >= 2 ? (uint16_t)(w->ctl[0] << 8 | w->ctl[1]) : 0;
        fe_close(c);
        break;
    default:
        if (!w->f.fin)
            break;
        w->msg_op = 0;
        if (buf_used(&w->msg)) /* an empty message says nothing */
            dispatch(c, buf_data(&w->msg), buf_used(&w->msg));
        buf_consume(&w->msg, buf_used(&w->msg));
        break;
    }
    w->ctl_n = 0;
}

/* A new frame's header is in: is it allowed where it comes? */
static bool frame_start(struct fe_conn *c)
{
    struct fe_ws *w = c->ws;
    uint8_t op = w->f.opcode;
    if (op & 0x8)
        return true;
    if (op == WS_OP_CONT && !w->msg_op) {
        fail(c, WS_CLOSE_PROTOCOL, "continuation without a message");
        return false;
    }
    if (op != WS_OP_CONT && w->msg_op) {
        fail(c, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        return false;
    }
    if (op == WS_OP_BINARY) {
        fail(c, WS_CLOSE_UNSUPPORTED, "binary message");
        return false;
    }
    if (op == WS_OP_TEXT)
        w->msg_op = op;
    return true;
}

static void frames(struct fe_conn *c, const uint8_t *p, size_t n)
{
    struct fe_ws *w = c->ws;
    while (n && live(c) && w->state == WS_OPEN) {
        if (!w->in_frame) {
            const uint8_t *h = p;
            size_t hn = n, had = w->hdr_n;
            if (had) {
                size_t take = n < sizeof w->hdr - had ? n : sizeof w->hdr - had;
                memcpy(w->hdr + had, p, take);
                h = w->hdr;
                hn = had + take;
            }
            uint32_t limit = c->xp.lim.max_stanza;
            uint64_t room = buf_used(&w->msg) < limit ? limit - buf_used(&w->msg) : 0;
            uint16_t code;
            enum ws_status st = ws_frame_parse(h, hn, room, &w->f, &code);
            if (st == WS_INCOMPLETE) {
                if (!had)
                    memcpy(w->hdr, p, n);
                w->hdr_n = (uint8_t)hn;
                return;
            }
            if (st == WS_INVALID) {
                if (code == WS_CLOSE_TOO_BIG) {
                    /* The stream's own limit: the stream error it would get over TCP. */
                    w->close_code = code;
                    fe_stream_error(c, "policy-violation");
                } else {
                    fail(c, code, "protocol error");
                }
                return;
            }
            size_t used = w->f.hdr_len - had;
            p += used;
            n -= used;
            w->hdr_n = 0;
            if (!frame_start(c))
                return;
            w->in_frame = true;
            w->got = 0;
        }
        size_t take = w->f.len - w->got < n ? (size_t)(w->f.len - w->got) : n;
        if (!take) {
            /* a header alone, or an empty payload: nothing to copy */
        } else if (w->f.opcode & 0x8) {
            memcpy(w->ctl + w->ctl_n, p, take);
            ws_unmask(w->ctl + w->ctl_n, take, w->f.mask, w->got);
            w->ctl_n = (uint8_t)(w->ctl_n + take);
        } else {
            if (buf_append(&w->msg, p, take) < 0) {
                fe_stream_error(c, "resource-constraint");
                return;
            }
            ws_unmask(buf_end(&w->msg) - take, take, w->f.mask, w->got);
        }
        w->got += take;
        p += take;
        n -= take;
        if (w->got == w->f.len) {
            w->in_frame = false;
            frame_done(c);
        }
    }
}

/* ---- the opening handshake ---------------------------------------------------------- */

static bool origin_ok(const struct config_ws *cfg, struct ws_span o)
{
    const char *s = cfg->origins;
    if (!s[0] || !o.p)
        return true; /* any origin; or no browser, whom an origin protects */
    while (*s) {
        while (*s == ' ')
            s++;
        size_t l = strcspn(s, " ");
        if (l && l == o.len && !strncasecmp(s, o.p, l))
            return true;
        s += l;
    }
    return false;
}

static void refuse(struct fe_conn *c, unsigned status, const char *why)
{
    static const char *const reasons[] = {
        [400 - 400] = "Bad Request", [403 - 400] = "Forbidden",
        [405 - 400] = "Method Not Allowed", [426 - 400] = "Upgrade Required",
        [431 - 400] = "Request Header Fields Too Large",
    };
    const char *reason = status >= 400 && status <= 431 && reasons[status - 400]
                             ? reasons[status - 400]
                             : "HTTP Version Not Supported";
    char a[NET_ADDR_TEXT];
    struct buf b = {0};
    char line[160];
    snprintf(line, sizeof line, "HTTP/1.1 %u %s\r\n", status, reason);
    buf_puts(&b, line);
    if (status == 426)
        buf_puts(&b, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    if (status == 405)
        buf_puts(&b, "Allow: GET\r\n");
    snprintf(line, sizeof line,
             "Content-Type: text/plain\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
             strlen(why) + 1);
    buf_puts(&b, line);
    buf_puts(&b, why);
    buf_puts(&b, "\n");
    fe_write_wire(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    LOG_RL(LOG_LEVEL_INFO, "conn %u: %s: WebSocket handshake refused: %u %s", c->slot,
           net_addr_text(&c->peer, a), status, why);
    fe_close(c);
}

static void handshake(struct fe_conn *c, const char *data, size_t n)
{
    struct fe_ws *w = c->ws;
    const struct config_ws *cfg = c->t->ws_cfg;
    const char *p = data;
    size_t len = n;
    struct ws_request r;

    if (buf_used(&w->msg)) {
        if (buf_append(&w->msg, data, n) < 0) {
            fe_close(c);
            return;
        }
        p = buf_data(&w->msg);
        len = buf_used(&w->msg);
    }
    switch (ws_request_parse(p, len, cfg->max_request, &r)) {
    case WS_INCOMPLETE:
        if (p == data && buf_append(&w->msg, data, n) < 0)
            fe_close(c);
        return;
    case WS_INVALID:
        refuse(c, r.status, r.why);
        return;
    case WS_DONE:
        break;
    }
    if (!r.xmpp) {
        refuse(c, 400, "no Sec-WebSocket-Protocol: xmpp (RFC 7395)");
        return;
    }
    if (!origin_ok(cfg, r.origin)) {
        refuse(c, 403, "Origin not allowed (c2s.websocket_origins)");
        return;
    }
    char accept[WS_ACCEPT_LEN + 1];
    ws_accept(r.key.p, r.key.len, accept);
    struct buf b = {0};
    buf_puts(&b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Protocol: xmpp\r\nSec-WebSocket-Accept: ");
    buf_puts(&b, accept);
    buf_puts(&b, "\r\n\r\n");
    fe_write_wire(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    w->state = WS_OPEN;
    /* What came after the request (a client that did not wait for our answer) is
     * frames; the request's bytes are given back first. */
    struct buf held = w->msg;
    w->msg = (struct buf){0};
    if (len > r.len)
        frames(c, (const uint8_t *)p + r.len, len - r.len);
    buf_free(&held);
}

void fe_ws_input(struct fe_conn *c, const char *data, size_t n)
{
    if (c->ws->state == WS_HTTP)
        handshake(c, data, n);
    else
        frames(c, (const uint8_t *)data, n);
}
