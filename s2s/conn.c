/*
 * conn.c: what s2s adds to the front-end layer's connection and thread (fe.h).
 */
#include "s2s/s2s.h"
#include "common/core/log.h"

#include <stdlib.h>

static void accepted(struct fe_conn *c, unsigned listener)
{
    s2s_stream_start(c);
    if (listener == 1) { /* Direct TLS (XEP-0368) */
        c->flags |= FE_F_DIRECT;
        if (fe_start_tls(c) < 0) {
            fe_close(c);
            return;
        }
        c->state = FE_TLS;
    }
    fe_arm_recv(c);
}

static void closing(struct fe_conn *c)
{
    (void)c;
}

static void release(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    free(c->remote);
    c->remote = NULL;
}

static void wake(struct fe_thread *t)
{
    (void)t;
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
