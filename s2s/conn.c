/*
 * conn.c: what s2s adds to the front-end layer's connection and thread (fe.h).
 */
#include "s2s/s2s.h"
#include "common/core/log.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Connections from the peer's address (IPv6: its /64) among this thread's inbound ones
 * (s2s.max_connections_per_address); a thread holds few, so a walk is cheap. */
static bool address_full(struct s2s_conn *c)
{
    struct fe_thread *t = c->fe.t;
    uint32_t max = t->cfg->s2s.max_connections_per_address;
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->nslots && n < max; i++) {
        struct s2s_conn *o = (struct s2s_conn *)fe_slot(t, i);
        if (o != c && o->fe.state != FE_FREE && o->fe.state != FE_CLOSING &&
            !(o->fe.flags & S2S_F_OUTBOUND) && o->addr_key == c->addr_key)
            n++;
    }
    return n >= max;
}

static uint64_t address_key(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    uint64_t k = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        memcpy(&k, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    } else if (ss.ss_family == AF_INET6) {
        memcpy(&k, &((struct sockaddr_in6 *)&ss)->sin6_addr, 8); /* the /64 */
        k ^= 1ull << 63;
    }
    return k;
}

static void accepted(struct fe_conn *f, unsigned listener)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    s2s_stream_start(f);
    c->addr_key = address_key(f->fd);
    if (address_full(c)) {
        LOG_RL(LOG_LEVEL_WARN, "s2s: too many connections from one address");
        fe_stream_error(f, "policy-violation");
        return;
    }
    if (listener == 1) { /* Direct TLS (XEP-0368) */
        f->flags |= FE_F_DIRECT;
        if (fe_start_tls(f) < 0) {
            fe_close(f);
            return;
        }
        f->state = FE_TLS;
    }
    fe_arm_recv(f);
}

static void connected(struct fe_conn *f, int res)
{
    out_connected((struct s2s_conn *)f, res);
}

static void closing(struct fe_conn *f)
{
    if (f->flags & S2S_F_OUTBOUND)
        out_closing((struct s2s_conn *)f);
}

static void release(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    free(c->remote);
    c->remote = NULL;
    if (c->db_ready) {
        dialback_free(&c->db);
        authz_free(&c->authz);
        c->db_ready = false;
    }
}

static void wake(struct fe_thread *t)
{
    out_wake((struct s2s_thread *)t);
}

static void control(struct fe_thread *t, unsigned req)
{
    /* s2s registers no sessions: after the router's return, only what it had not
     * finished goes again. */
    if (req == FE_CTL_ROUTER_UP) {
        fe_port_replay(t);
        fe_port_resume(t);
    }
}

const struct fe_ops s2s_ops = {
    .conn_size = sizeof(struct s2s_conn),
    .accepted = accepted,
    .connected = connected,
    .stream_start = s2s_stream_start,
    .event = s2s_stream_event,
    .send_header = s2s_send_header,
    .closing = closing,
    .release = release,
    .tick = s2s_stream_tick,
    .frame = remote_frame,
    .wake = wake,
    .control = control,
};
