/*
 * stream.c: a stream's input and its end (RFC 6120 §4). What arrives is parsed as it
 * comes and each event goes to the front end (ops->event); while the front end holds
 * the input (a full ring, the router away, the store or router to answer the peer's own
 * request first) bytes wait in the connection, bounded, and reading stops so that TCP
 * pushes back. Stream errors (§4.9) and the closing tag are the same for every stream.
 */
#include "common/fe/fe.h"
#include "common/core/log.h"
#include "common/xmpp/xmlw.h"

#include <string.h>

#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"

/* Bytes held for a peer beyond one stanza while its input waits (ring full, store,
 * router away). Reading stops when input is held (in a short wait, past HOLD_READING);
 * what still arrives was already in flight (the socket's receive buffer at most), so
 * this bounds only the absurd. */
#define HOLD_SLACK (16u << 20)
/* Bytes held during a short wait before reading stops too (fe_input). */
#define HOLD_READING (64u << 10)

void fe_stream_error(struct fe_conn *c, const char *condition)
{
    fe_stream_error_text(c, condition, NULL);
}

void fe_stream_error_text(struct fe_conn *c, const char *condition, const char *text)
{
    if (c->state == FE_CLOSING || c->state == FE_FREE)
        return;
    if (c->state == FE_PROXY) {
        /* A balancer before its header (system-shutdown, say): no XML is due to it. */
        fe_close(c);
        return;
    }
    if (!(c->flags & FE_F_HDR_SENT))
        c->t->ops->send_header(c);
    struct buf b = {0};
    buf_puts(&b, "<stream:error><");
    buf_puts(&b, condition);
    if (text) {
        buf_puts(&b, " xmlns='" NS_STREAM_ERR "'>");
        xmlw_text(&b, text, strlen(text));
        buf_puts(&b, "</");
        buf_puts(&b, condition);
        buf_puts(&b, "></stream:error></stream:stream>");
    } else {
        buf_puts(&b, " xmlns='" NS_STREAM_ERR "'/></stream:error></stream:stream>");
    }
    fe_write(c, buf_data(&b), buf_used(&b));
    buf_free(&b);
    c->ended = true;
    char a[NET_ADDR_TEXT];
    LOG_RL(LOG_LEVEL_INFO, "conn %u: %s: stream error %s", c->slot, net_addr_text(&c->peer, a),
           condition);
    fe_close(c);
}

void fe_stream_close(struct fe_conn *c)
{
    if (c->state == FE_CLOSING || c->state == FE_FREE)
        return;
    if (c->flags & FE_F_HDR_SENT)
        fe_puts(c, "</stream:stream>");
    c->ended = true;
    fe_close(c);
}

bool fe_held(const struct fe_conn *c)
{
    return (c->flags & (FE_F_PAUSED | FE_F_WAIT)) || c->t->router_down;
}

static void hold(struct fe_conn *c, const char *p, size_t n)
{
    if (!n)
        return;
    if (buf_used(&c->in) + n > c->xp.lim.max_stanza + HOLD_SLACK || buf_append(&c->in, p, n) < 0)
        fe_stream_error(c, "resource-constraint");
}

void fe_input(struct fe_conn *c, const char *data, size_t n)
{
    if (data && (buf_used(&c->in) || fe_held(c))) {
        hold(c, data, n);
        data = NULL;
    }
    for (;;) {
        bool own = data == NULL;
        const char *buf = own ? buf_data(&c->in) : data;
        size_t len = own ? buf_used(&c->in) : n;
        bool discard = false;

        if (c->state == FE_CLOSING || c->state == FE_FREE)
            return;
        while (!fe_held(c) && !(c->flags & FE_F_RESTART)) {
            struct xml_event ev;
            enum xml_ev_kind k = xml_next(&c->xp, buf, len, &ev);
            if (k == XML_EV_NONE)
                break;
            c->t->ops->event(c, k, &ev);
            if (c->state == FE_CLOSING || c->state == FE_FREE)
                return;
            if (c->state == FE_TLS) {
                discard = true;
                break;
            }
        }
        size_t drop = xml_release(&c->xp);
        if (discard) {
            /* Bytes after <starttls/> predate TLS: never trust them (CVE-2011-0411). A
             * peer waits for <proceed/> before it starts TLS (RFC 6120 §5.4.2), so
             * anything but whitespace there comes from one that will not complete a
             * handshake (garbage, or a ClientHello sent too early, which is gone now):
             * close at once rather than at the handshake timeout. */
            for (size_t i = drop; i < len; i++)
                if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n') {
                    LOG_RL(LOG_LEVEL_INFO, "conn %u: bytes after <starttls/>: closed", c->slot);
                    fe_close(c);
                    break;
                }
            drop = len;
        }
        if (own)
            buf_consume(&c->in, drop);
        else
            hold(c, buf + drop, len - drop);
        if (!(c->flags & FE_F_RESTART) || c->state == FE_CLOSING)
            break;
        /* A stream restart after SASL success (RFC 6120 §6.4.6): what follows belongs
         * to the new stream. */
        c->flags &= (uint16_t)~FE_F_RESTART;
        xml_free(&c->xp);
        c->t->ops->stream_start(c);
        data = NULL;
    }
    if (!buf_used(&c->in))
        buf_trim(&c->in);
    /* Held input means the peer must wait: stop reading, so TCP pushes back. Except in
     * a short wait for the answer to the peer's own request (FE_F_WAIT: the store at
     * SASL, the router at bind), where a peer has nothing more to send: there a cancel
     * and a re-arm at every step cost more than the wait, so reading stops only if input
     * piles up anyway. */
    if (fe_held(c) &&
        ((c->flags & FE_F_PAUSED) || c->t->router_down || buf_used(&c->in) > HOLD_READING))
        fe_cancel_recv(c);
    else
        fe_arm_recv(c);
}
