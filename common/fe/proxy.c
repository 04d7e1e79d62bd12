/*
 * proxy.c: a new connection's peer address and, from a load balancer, the PROXY protocol
 * header (common/net/proxy.h) that comes before anything else on it.
 *
 * A connection from an address in the front end's proxy->from must start with a header.
 * Until the header is whole the connection is in FE_PROXY and nothing of it is the front
 * end's yet: ops->accepted() has not run, so no limit has counted it, no TLS and no parser
 * exist. It has proxy->timeout to finish. Anything that is not a header, a broken one, one
 * too long, or none in time closes it without a word: the peer is a balancer, which reads
 * no XML. A connection from any other address never has its bytes read as a header, so a
 * client cannot claim another's address.
 *
 * A header cut across receives waits in c->in (its bound and one receive buffer at most).
 * The bytes after it in the same receive are the client's first: the stream header, or
 * the ClientHello on a Direct TLS listener, whose TLS ops->accepted() starts. They go to
 * fe_conn_input() as if just received, so none is lost and TLS begins after the header.
 */
#include "common/fe/fe.h"
#include "common/core/log.h"
#include "common/net/proxy.h"

#include <errno.h>

static bool from_balancer(const struct fe_thread *t, const union net_addr *a)
{
    const struct config_proxy *p = t->proxy;
    for (uint32_t i = 0; p && i < p->from.n; i++)
        if (net_prefix_match(&p->from.prefixes[i], a))
            return true;
    return false;
}

void fe_accepted(struct fe_conn *c, unsigned listener)
{
    struct fe_thread *t = c->t;
    c->listener = (uint8_t)listener;
    if (net_addr_peer(c->fd, &c->peer) == -ENOTCONN) {
        /* Reset before we looked (a balancer's health check does that): whatever it
         * sent is nobody's to read. */
        c->flags |= FE_F_DEAD;
        fe_close(c);
        return;
    }
    if (!from_balancer(t, &c->peer)) {
        t->ops->accepted(c, listener);
        return;
    }
    c->state = FE_PROXY;
    c->deadline = t->now + t->proxy->timeout;
    fe_arm_recv(c);
}

void fe_proxy_tick(struct fe_conn *c)
{
    char a[NET_ADDR_TEXT];
    if (c->t->now < c->deadline)
        return;
    LOG_RL(LOG_LEVEL_WARN, "conn %u: no PROXY header from %s in time: closed", c->slot,
           net_addr_text(&c->peer, a));
    fe_close(c);
}

void fe_proxy_input(struct fe_conn *c, const char *data, size_t n)
{
    struct fe_thread *t = c->t;
    char a[NET_ADDR_TEXT], b[NET_ADDR_TEXT];
    struct proxy_header h;
    const char *p = data;
    size_t len = n;

    if (buf_used(&c->in)) {
        if (buf_append(&c->in, data, n) < 0) {
            fe_close(c);
            return;
        }
        p = buf_data(&c->in);
        len = buf_used(&c->in);
    }
    switch (proxy_parse(p, len, t->proxy->max_header, &h)) {
    case PROXY_INCOMPLETE:
        if (p == data && buf_append(&c->in, data, n) < 0)
            fe_close(c);
        return;
    case PROXY_INVALID:
        LOG_RL(LOG_LEVEL_WARN, "conn %u: %s, which must send a PROXY header, sent %s: closed",
               c->slot, net_addr_text(&c->peer, a), h.why);
        fe_close(c);
        return;
    case PROXY_DONE:
        break;
    }
    if (h.has_addr) {
        union net_addr balancer = c->peer;
        c->peer = h.src;
        net_addr_unmap(&c->peer);
        LOG_DEBUG("conn %u: client %s, through the proxy %s (PROXY v%u)", c->slot,
                  net_addr_text(&c->peer, a), net_addr_text(&balancer, b), h.version);
    } else {
        LOG_DEBUG("conn %u: the proxy %s, for itself (PROXY v%u, no TCP client)", c->slot,
                  net_addr_text(&c->peer, a), h.version);
    }
    /* What follows the header is the stream's; c->in is the stream's buffer from now on,
     * so what it holds is taken out before it is handed on. */
    struct buf held = c->in;
    c->in = (struct buf){0};
    c->state = FE_HEADER;
    c->deadline = 0;
    t->ops->accepted(c, c->listener);
    if (len > h.len && c->state != FE_CLOSING && c->state != FE_FREE)
        fe_conn_input(c, p + h.len, len - h.len);
    buf_free(&held);
}
