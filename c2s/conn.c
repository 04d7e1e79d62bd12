/*
 * conn.c: what c2s adds to the front-end layer's connection and thread (fe.h): a client
 * connection's own parts (SASL, the session's JIDs, the presence kept for a router
 * restart), given back when its slot is; the limits on its address (the client's
 * behind a balancer, c2s.proxy_from); the unbind the
 * router must hear when it closes; and the control requests only c2s has more to do for.
 */
#include "c2s/c2s.h"
#include "c2s/limit.h"
#include "common/auth/sasl.h"
#include "common/auth/tls.h"
#include "common/core/ctl.h"
#include "common/core/log.h"

#include <stdlib.h>
#include <string.h>

static void accepted(struct fe_conn *c, unsigned listener)
{
    struct conn *cc = (struct conn *)c;
    stats_add(c->t->stats, STAT_C2S_CONNECTIONS, 1);
    stream_start(c);
    /* Over its address's limit, a client still hears why, at its stream header (after
     * the TLS handshake on the Direct TLS port). The address is the client's, behind a
     * balancer that sent a PROXY header. */
    cc->peer_hash = limit_peer_of(&c->peer.sa);
    if (!limit_conn_open(cc->peer_hash, c->t->cfg->c2s.max_connections_per_address)) {
        char a[NET_ADDR_TEXT];
        LOG_RL(LOG_LEVEL_WARN, "conn %u: %s has c2s.max_connections_per_address already: refused",
               c->slot, net_addr_text(&c->peer, a));
        c->flags |= CONN_F_REFUSED;
    }
    if ((listener == C2S_LISTEN_WS || listener == C2S_LISTEN_WS_TLS) && fe_ws_start(c) < 0) {
        fe_close(c);
        return;
    }
    /* c2s.websocket_listen sits behind a proxy that terminated TLS (or serves a browser
     * on this machine): its streams count as encrypted, without channel bindings. */
    if (listener == C2S_LISTEN_WS)
        c->flags |= FE_F_TLS;
    if (listener == C2S_LISTEN_TLS || listener == C2S_LISTEN_WS_TLS) {
        c->flags |= FE_F_DIRECT;
        if (fe_start_tls(c) < 0) {
            fe_close(c);
            return;
        }
        c->state = FE_TLS;
    }
    fe_arm_recv(c);
}

static void closing(struct fe_conn *f)
{
    struct conn *c = (struct conn *)f;
    /* A bind in flight makes a session in the router whether or not its answer is
     * back: the unbind follows the bind through the same ring, so in order. */
    if ((f->flags & CONN_F_BOUND) || f->state == CONN_BINDING)
        route_unbind(c);
    f->flags &= (uint16_t)~CONN_F_BOUND;
}

static void release(struct fe_conn *f)
{
    struct conn *c = (struct conn *)f;
    stats_sub(f->t->stats, STAT_C2S_CONNECTIONS, 1);
    limit_conn_close(c->peer_hash);
    free(c->presence);
    free(c->directed);
    c->directed_len = 0;
    c->router_flags = 0;
    if (c->sasl)
        sasl_wipe(c->sasl);
    free(c->sasl);
    free(c->user);
    free(c->jid);
    free(c->from_attr);
    free(c->iq_id);
    c->sasl = NULL;
    c->user = c->jid = c->from_attr = c->iq_id = c->presence = c->directed = NULL;
}

static void control(struct fe_thread *ft, unsigned req)
{
    struct c2s_thread *t = (struct c2s_thread *)ft;
    if (req == FE_CTL_DRAIN && ft->drain == CTL_DRAIN_ALL)
        for (uint32_t i = 0; i < ft->nslots; i++) {
            struct fe_conn *c = fe_slot(ft, i);
            if (c->state != FE_FREE && c->state != FE_CLOSING)
                stream_drained((struct conn *)c);
        }
    if (req == FE_CTL_RELOAD) {
        ft->proxy = &ft->cfg->c2s.proxy; /* the new snapshot's */
        ft->ws_cfg = &ft->cfg->c2s.ws;
    }
    if (req == FE_CTL_REHOME) {
        /* The router is there (when it is not, its return registers everything). */
        if (!ft->router_down)
            route_reregister(t, false);
        return;
    }
    if (req != FE_CTL_ROUTER_UP)
        return;
    route_reregister(t, true);
    fe_port_resume(ft);
    /* Held input flows again and reading resumes. */
    for (uint32_t i = 0; i < ft->nslots; i++) {
        struct fe_conn *c = fe_slot(ft, i);
        if (c->state != FE_FREE && c->state != FE_CLOSING && c->state != FE_TLS &&
            c->state != FE_PROXY && !(c->flags & FE_F_PAUSED))
            fe_input(c, NULL, 0);
    }
}

const struct fe_ops c2s_ops = {
    .conn_size = sizeof(struct conn),
    .accepted = accepted,
    .stream_start = stream_start,
    .event = stream_event,
    .send_header = stream_send_header,
    .closing = closing,
    .release = release,
    .tick = stream_tick,
    .frame = route_frame,
    .wake = auth_wake,
    .control = control,
};
