/*
 * conn.c: what s2s adds to the front-end layer's connection and thread (fe.h), and the
 * count of inbound connections per address that every thread shares.
 */
#include "s2s/s2s.h"
#include "common/core/log.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Inbound connections per peer address (IPv6: its /64) across the process, for
 * s2s.max_connections_per_address: SO_REUSEPORT spreads one address's connections over
 * every thread, so a count per thread would allow s2s.threads times the limit. Few
 * addresses connect to a server at once and only an accept or a release touches the
 * list: a walk under a mutex is cheap. */
static struct {
    pthread_mutex_t lock;
    struct addr_count {
        uint64_t key;
        uint32_t n;
    } *v;
    size_t n, cap;
} addrs = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Counts a connection from key unless it would make more than max: false then. Without
 * memory the connection goes uncounted (allowed) and true is returned, *counted false. */
static bool address_open(uint64_t key, uint32_t max, bool *counted)
{
    bool ok = true;
    *counted = false;
    pthread_mutex_lock(&addrs.lock);
    size_t i = 0;
    while (i < addrs.n && addrs.v[i].key != key)
        i++;
    if (i == addrs.n) {
        if (addrs.n == addrs.cap) {
            size_t cap = addrs.cap ? 2 * addrs.cap : 16;
            struct addr_count *v = realloc(addrs.v, cap * sizeof *v);
            if (!v)
                goto out;
            addrs.v = v;
            addrs.cap = cap;
        }
        addrs.v[addrs.n++] = (struct addr_count){key, 0};
    }
    ok = addrs.v[i].n < max;
    if (ok) {
        addrs.v[i].n++;
        *counted = true;
    }
out:
    pthread_mutex_unlock(&addrs.lock);
    return ok;
}

static void address_close(uint64_t key)
{
    pthread_mutex_lock(&addrs.lock);
    for (size_t i = 0; i < addrs.n; i++)
        if (addrs.v[i].key == key) {
            if (!--addrs.v[i].n)
                addrs.v[i] = addrs.v[--addrs.n];
            break;
        }
    pthread_mutex_unlock(&addrs.lock);
}

/* The peer as the layer recorded it (an IPv4-mapped address as its IPv4 address). */
static uint64_t address_key(const union net_addr *a)
{
    uint64_t k = 0;
    if (a->sa.sa_family == AF_INET) {
        memcpy(&k, &a->in.sin_addr, 4);
    } else if (a->sa.sa_family == AF_INET6) {
        memcpy(&k, &a->in6.sin6_addr, 8); /* the /64 */
        k ^= 1ull << 63;
    }
    return k;
}

static void accepted(struct fe_conn *f, unsigned listener)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    stats_add(f->t->stats, STAT_S2S_CONN_IN, 1);
    s2s_stream_start(f);
    c->addr_key = address_key(&f->peer);
    if (!address_open(c->addr_key, f->t->cfg->s2s.max_connections_per_address,
                      &c->addr_counted)) {
        LOG_RL(LOG_LEVEL_WARN, "s2s: too many connections from one address");
        /* Over Direct TLS the peer can only hear why inside TLS: at its header. */
        if (listener != 1) {
            fe_stream_error(f, "policy-violation");
            return;
        }
        f->flags |= S2S_F_REFUSED;
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
    else
        out_detach((struct s2s_conn *)f); /* an inbound bidi stream carrying ours */
}

static void release(struct fe_conn *f)
{
    struct s2s_conn *c = (struct s2s_conn *)f;
    stats_sub(f->t->stats, (f->flags & S2S_F_OUTBOUND) ? STAT_S2S_CONN_OUT : STAT_S2S_CONN_IN, 1);
    free(c->remote);
    c->remote = NULL;
    c->local = S2S_LOCAL_MAIN;
    if (c->addr_counted)
        address_close(c->addr_key);
    c->addr_counted = false;
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
    } else if (req == FE_CTL_ROUTER_DOWN) {
        remote_ack_reset((struct s2s_thread *)t);
    } else if (req == FE_CTL_RELOAD) {
        /* New outbound streams show the renewed certificate and trust the new roots;
         * established ones keep theirs (the old context stays: they point at it). */
        struct s2s_thread *st = (struct s2s_thread *)t;
        if (st->next_client_tls)
            st->client_tls = st->next_client_tls;
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
