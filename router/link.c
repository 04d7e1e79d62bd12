/*
 * link.c: the link thread (link.h) and the checks of what arrives on a link.
 *
 * One thread owns every nanomsg socket of the router: it moves frames from the shards'
 * rings to the links and from the links to the shards' rings, sends heartbeats, decides
 * who is up, builds the view (home.h) at each change and publishes it, and rewrites the
 * status file each second. It sleeps in poll() on its bell (the shards ring it when
 * they write to an empty ring, as any consumer's), the PULL socket's NN_RCVFD, and the
 * NN_SNDFD of each link with frames waiting, until the next timer.
 *
 * nanomsg's sockets are safe to share between threads, but nothing here needs that: one
 * thread, NN_DONTWAIT everywhere, so a slow link never blocks anyone.
 */
#include "router/link.h"
#include "router/router.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "shm/stats.h"
#include "shm/topo.h"

#include <errno.h>
#include <inttypes.h>
#include <nanomsg/nn.h>
#include <nanomsg/pipeline.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Bytes waiting for the shards' inbound rings before the links are no longer read. */
#define RX_BACKLOG_MAX (8u << 20)
#define BATCH 256

/* ---- what arrives ------------------------------------------------------------------------ */

bool link_kind_ok(uint16_t kind)
{
    switch (kind) {
    case PROTO_BIND:
    case PROTO_UNBIND:
    case PROTO_STANZA:
    case PROTO_BIND_RESULT:
    case PROTO_DELIVER:
    case PROTO_CLOSE:
    case PROTO_SESSION_STATE:
    case PROTO_REMOTE:
    case PROTO_REMOTE_FANOUT:
    case PROTO_SM_ENABLE:
    case PROTO_SM_RESUME:
    case PROTO_SM_TAKEOVER:
    case PROTO_SM_HANDOFF:
    case PROTO_SM_RESUMED:
    case RK_INBOUND:
    case RK_FANOUT:
    case RK_PROBE:
        return true;
    }
    return false;
}

int link_decode(const void *msg, size_t len, unsigned self, unsigned nnodes, unsigned nshards,
                struct link_hdr *h, const void **payload)
{
    if (len < sizeof *h)
        return -EBADMSG;
    memcpy(h, msg, sizeof *h);
    if (h->magic != LINK_MAGIC || h->len > len - sizeof *h || h->src >= nnodes ||
        h->src == self || h->dst != self || h->hops > LINK_MAX_HOPS)
        return -EBADMSG;
    if (h->kind == LINK_HEARTBEAT ? h->shard != 0 : !link_kind_ok(h->kind) || h->shard >= nshards)
        return -EBADMSG;
    *payload = (const char *)msg + sizeof *h;
    return 0;
}

int link_decode_hb(const void *payload, uint32_t len, struct link_hb *hb, const char **name)
{
    if (len < sizeof *hb)
        return -EBADMSG;
    memcpy(hb, payload, sizeof *hb);
    if (hb->name_len == 0 || hb->name_len != len - sizeof *hb || hb->shards == 0 ||
        hb->shards > 256)
        return -EBADMSG;
    *name = (const char *)payload + sizeof *hb;
    return 0;
}

/* ---- the thread's state ------------------------------------------------------------------ */

struct lmsg {
    struct lmsg *next;
    uint32_t len;
    char data[]; /* records: struct link_hdr, then the payload */
};

struct peer {
    char name[64];
    char url[96];
    int sock, sndfd; /* NN_PUSH to it; -1 for this node */
    struct buf bundle; /* records of this round, not sent yet */
    struct lmsg *head, *tail; /* messages that found the socket full, in order */
    size_t qbytes;
    uint64_t heard;       /* CLOCK_MONOTONIC ms of its last message, 0: never */
    uint64_t incarnation; /* of its router, from heartbeats */
    uint16_t shards;
    struct link_peer_stats st;
};

struct cluster {
    const struct config *cfg;
    unsigned self, n;
    const char *names[HOME_NODES_MAX];
    struct peer peers[HOME_NODES_MAX];
    int pull, rcvfd;
    struct shard *shards;
    unsigned nshards;
    struct shm_bell *bell_sh;
    struct bell bell;
    struct ring *in, *out; /* [nshards]: the link thread's ends of to_link and from_link */
    struct port_rx *rx;    /* [nshards] */
    struct backlog *q;     /* [nshards]: waiting for room in from_link */
    bool *dirty;           /* [nshards] */
    _Atomic(const struct home_view *) view;
    struct home_view *cur; /* the newest, which links the older ones */
    uint64_t incarnation;
    _Atomic bool stop;
    pthread_t th;
    bool started;
    _Atomic uint64_t rehome_want; /* epoch after which c2s must register again, 0: none */
    uint64_t rehome_done;
    uint64_t next_hb, next_status;
    struct shm_stats *slot; /* the router's stats slot (shm/stats.h), or NULL */
    /* cluster.discovery = "postgresql": the discovery thread's findings, by slot, for
     * the link thread (under mu; found_new says there is news). */
    struct store *store;
    pthread_t disc_th;
    bool disc_started;
    pthread_mutex_t mu;
    struct {
        char name[64], addr[96];
    } found[HOME_NODES_MAX];
    _Atomic bool found_new;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int peer_connect(struct peer *p);

static bool discovering(const struct cluster *cl)
{
    return cl->cfg->cluster.discovery == CONFIG_DISCOVERY_POSTGRESQL;
}

/* One heartbeat in the database: our row, and the live others into found[]. 0 or
 * -errno; *self our slot. */
static int beat(struct cluster *cl, unsigned *self)
{
    struct store_list live;
    int rc = store_cluster_beat_sync(cl->store, cl->cfg->cluster.node, cl->cfg->cluster.listen.text,
                                     topo_shards(cl->cfg), cl->incarnation,
                                     cl->cfg->cluster.dead_after * 1000, self, &live);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < live.n; i++) {
        unsigned slot;
        char name[64], addr[96];
        if (sscanf(live.names[i], "%u %63s %95s", &slot, name, addr) != 3 ||
            slot >= HOME_NODES_MAX || !name_ok(name))
            continue;
        memcpy(cl->found[slot].name, name, sizeof name);
        memcpy(cl->found[slot].addr, addr, sizeof addr);
    }
    pthread_mutex_unlock(&cl->mu);
    store_list_free(&live);
    return 0;
}

/* Link thread (and cluster_new, before it): nodes found in the database that we have
 * no link to yet get one. A slot is a name's for good, so a known peer stays as it is. */
static void take_found(struct cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    for (unsigned i = 0; i < HOME_NODES_MAX; i++) {
        struct peer *p = &cl->peers[i];
        if (i == cl->self || p->name[0] || !cl->found[i].name[0])
            continue;
        snprintf(p->name, sizeof p->name, "%s", cl->found[i].name);
        snprintf(p->url, sizeof p->url, "tcp://%s", cl->found[i].addr);
        LOG_INFO("cluster: found node %s (%u) at %s", p->name, i, cl->found[i].addr);
        if (cl->pull >= 0 && p->sock < 0 && peer_connect(p) < 0)
            LOG_ERROR("link: cannot make a link to %s: %s", p->url, nn_strerror(nn_errno()));
    }
    pthread_mutex_unlock(&cl->mu);
}

static void *disc_main(void *arg)
{
    struct cluster *cl = arg;
    log_thread_set("discovery");
    while (!atomic_load_explicit(&cl->stop, memory_order_acquire)) {
        unsigned self;
        int rc = beat(cl, &self);
        if (rc < 0)
            LOG_RL(LOG_LEVEL_WARN, "cluster: no heartbeat in the database: %s", strerror(-rc));
        else if (self != cl->self)
            LOG_RL(LOG_LEVEL_ERROR, "cluster: the database gives %s slot %u, not %u",
                   cl->cfg->cluster.node, self, cl->self);
        atomic_store_explicit(&cl->found_new, true, memory_order_release);
        bell_ring(&cl->bell);
        uint64_t until = now_ms() + (uint64_t)cl->cfg->cluster.heartbeat * 1000;
        while (now_ms() < until && !atomic_load_explicit(&cl->stop, memory_order_acquire))
            usleep(50 * 1000);
    }
    return NULL;
}

/* Discovery: our slot from the database (retried for storage.timeout), and whoever is
 * there already. */
static int discover(struct cluster *cl, char *err, size_t errlen)
{
    if (cl->cfg->storage.backend != STORE_BACKEND_POSTGRESQL || cl->cfg->cluster.nodes.n) {
        snprintf(err, errlen, "cluster.discovery = \"postgresql\" needs storage.backend = "
                              "\"postgresql\" and an empty cluster.nodes");
        return -EINVAL;
    }
    cl->n = HOME_NODES_MAX;
    for (unsigned i = 0; i < HOME_NODES_MAX; i++) {
        cl->peers[i].sock = cl->peers[i].sndfd = -1;
        cl->names[i] = cl->peers[i].name;
    }
    unsigned self = 0;
    int rc = -EIO;
    uint64_t until = now_ms() + (uint64_t)cl->cfg->storage.timeout * 1000;
    while ((rc = beat(cl, &self)) < 0 && rc != -ENOTSUP && rc != -ENOSPC && now_ms() < until)
        usleep(200 * 1000);
    if (rc < 0) {
        snprintf(err, errlen, "cluster: no heartbeat in the database: %s", strerror(-rc));
        return rc;
    }
    cl->self = self;
    snprintf(cl->peers[self].name, sizeof cl->peers[self].name, "%s", cl->cfg->cluster.node);
    snprintf(cl->peers[self].url, sizeof cl->peers[self].url, "tcp://%s",
             cl->cfg->cluster.listen.text);
    take_found(cl);
    return 0;
}

int cluster_new(const struct config *cfg, struct store *store, struct cluster **out, char *err,
                size_t errlen)
{
    *out = NULL;
    if (!*cfg->cluster.node)
        return 0;
    if (!name_ok(cfg->cluster.node) || !cfg->cluster.listen.len) {
        snprintf(err, errlen, "cluster.node must be a name of a-z, 0-9, '-', '.', and "
                              "cluster.listen an address");
        return -EINVAL;
    }
    if (cfg->cluster.dead_after < 2 * cfg->cluster.heartbeat) {
        snprintf(err, errlen, "cluster.dead_after must be at least twice cluster.heartbeat");
        return -EINVAL;
    }
    struct cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    cl->cfg = cfg;
    cl->pull = -1;
    cl->store = store;
    pthread_mutex_init(&cl->mu, NULL);
    if (getrandom(&cl->incarnation, sizeof cl->incarnation, 0) != sizeof cl->incarnation)
        cl->incarnation = wall_ms();
    if (discovering(cl)) {
        int rc = discover(cl, err, errlen);
        if (rc < 0) {
            free(cl);
            return rc;
        }
        *out = cl;
        return 0;
    }
    const char *names[HOME_NODES_MAX];
    const struct config_list *l = &cfg->cluster.nodes;
    names[0] = cfg->cluster.node;
    cl->n = 1 + l->n;
    for (uint32_t i = 0; i < l->n; i++) {
        names[1 + i] = l->routes[i].domain;
        if (!name_ok(names[1 + i]) || !strcmp(names[1 + i], cfg->cluster.node)) {
            snprintf(err, errlen, "cluster.nodes: '%s' is not a node name, or is this node's",
                     names[1 + i]);
            free(cl);
            return -EINVAL;
        }
    }
    /* Every node sorts the same names: a node's index is the same everywhere. */
    qsort(names, cl->n, sizeof names[0], by_name);
    for (unsigned i = 0; i < cl->n; i++) {
        struct peer *p = &cl->peers[i];
        if (i && !strcmp(names[i], names[i - 1])) {
            snprintf(err, errlen, "cluster.nodes: '%s' twice", names[i]);
            free(cl);
            return -EINVAL;
        }
        snprintf(p->name, sizeof p->name, "%s", names[i]);
        cl->names[i] = p->name;
        p->sock = p->sndfd = -1;
        const struct config_addr *a = &cfg->cluster.listen;
        for (uint32_t k = 0; k < l->n; k++)
            if (!strcmp(l->routes[k].domain, names[i]))
                a = &l->routes[k].addr;
        snprintf(p->url, sizeof p->url, "tcp://%s", a->text);
        if (!strcmp(names[i], cfg->cluster.node))
            cl->self = i;
    }
    *out = cl;
    return 0;
}

const struct home_view *cluster_view(const struct cluster *cl)
{
    return atomic_load_explicit(&cl->view, memory_order_acquire);
}

/* The links' numbers into the router's stats slot for /metrics: at each view and each
 * second (what a scrape every few seconds needs, at no cost per frame). */
static void publish_stats(struct cluster *cl)
{
    uint64_t up = 0, bo = 0, bi = 0, fo = 0, fi = 0, q = 0, refused = 0;
    for (unsigned i = 0; i < cl->n; i++) {
        const struct link_peer_stats *st = &cl->peers[i].st;
        if (i == cl->self)
            continue;
        up += atomic_load_explicit(&st->up, memory_order_relaxed);
        bo += atomic_load_explicit(&st->bytes_out, memory_order_relaxed);
        bi += atomic_load_explicit(&st->bytes_in, memory_order_relaxed);
        fo += atomic_load_explicit(&st->frames_out, memory_order_relaxed);
        fi += atomic_load_explicit(&st->frames_in, memory_order_relaxed);
        q += atomic_load_explicit(&st->queued_bytes, memory_order_relaxed);
        refused += atomic_load_explicit(&st->bounced, memory_order_relaxed);
    }
    stats_set(cl->slot, STAT_CLUSTER_LINKS_UP, up);
    stats_set(cl->slot, STAT_CLUSTER_NODES_UP, up + 1);
    stats_set(cl->slot, STAT_CLUSTER_LINK_BYTES_OUT, bo);
    stats_set(cl->slot, STAT_CLUSTER_LINK_BYTES_IN, bi);
    stats_set(cl->slot, STAT_CLUSTER_LINK_FRAMES_OUT, fo);
    stats_set(cl->slot, STAT_CLUSTER_LINK_FRAMES_IN, fi);
    stats_set(cl->slot, STAT_CLUSTER_LINK_QUEUE_BYTES, q);
    stats_set(cl->slot, STAT_CLUSTER_LINK_REFUSED, refused);
}

/* A new view from who is up now; the shards take it at their next round. */
static int publish_view(struct cluster *cl)
{
    uint16_t shards[HOME_NODES_MAX] = {0};
    for (unsigned i = 0; i < cl->n; i++)
        shards[i] = i == cl->self ? (uint16_t)cl->nshards
                    : atomic_load_explicit(&cl->peers[i].st.up, memory_order_relaxed)
                        ? cl->peers[i].shards
                        : 0;
    uint64_t epoch = cl->cur ? cl->cur->epoch + 1 : 1;
    struct home_view *v = home_view_new(cl->names, shards, cl->n, cl->self, epoch);
    if (!v)
        return -ENOMEM;
    v->older = cl->cur;
    cl->cur = v;
    atomic_store_explicit(&cl->view, v, memory_order_release);
    publish_stats(cl);
    /* Pairs with the shards' bell_prepare_sleep(), as ring.c's wakers do. */
    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned i = 0; cl->shards && i < cl->nshards; i++)
        if (bell_claim(&cl->shards[i].bell))
            bell_ring(&cl->shards[i].bell);
    return 0;
}

/* ---- out: shards to links ---------------------------------------------------------------- */

/* A frame back to the shard that sent it (RK_BOUNCE). */
static void bounce(struct cluster *cl, unsigned shard, const void *data, uint32_t len)
{
    if (port_send(&cl->out[shard], &cl->q[shard], RK_BOUNCE, data, len, NULL) < 0)
        LOG_RL(LOG_LEVEL_ERROR, "link: a frame nobody took is lost");
    cl->dirty[shard] = true;
}

/* Each record of a message we made back to its shard. */
static void bounce_records(struct cluster *cl, struct peer *p, const char *d, size_t len)
{
    while (len >= sizeof(struct link_hdr)) {
        struct link_hdr h;
        memcpy(&h, d, sizeof h);
        size_t n = sizeof h + h.len;
        bounce(cl, h.from < cl->nshards ? h.from : 0, d, (uint32_t)n);
        atomic_fetch_add_explicit(&p->st.bounced, 1, memory_order_relaxed);
        d += n;
        len -= n;
    }
}

static void peer_bounce_all(struct cluster *cl, struct peer *p)
{
    while (p->head) {
        struct lmsg *m = p->head;
        p->head = m->next;
        bounce_records(cl, p, m->data, m->len);
        free(m);
    }
    bounce_records(cl, p, buf_data(&p->bundle), buf_used(&p->bundle));
    p->bundle.off = p->bundle.len = 0;
    p->tail = NULL;
    p->qbytes = 0;
    atomic_store_explicit(&p->st.queued_bytes, 0, memory_order_relaxed);
}

static bool try_send(struct peer *p, const void *data, uint32_t len)
{
    if (nn_send(p->sock, data, len, NN_DONTWAIT) < 0)
        return false; /* EAGAIN: no room, or nobody connected yet */
    atomic_fetch_add_explicit(&p->st.bytes_out, len, memory_order_relaxed);
    return true;
}

/* The round's records for p go: to the socket, or behind what waits for it. */
static void peer_flush_bundle(struct peer *p)
{
    uint32_t len = buf_used(&p->bundle);
    if (!len)
        return;
    if (!p->head && try_send(p, buf_data(&p->bundle), len)) {
        p->bundle.off = p->bundle.len = 0;
        return;
    }
    struct lmsg *m = malloc(sizeof *m + len);
    if (!m)
        return; /* kept in the bundle: tried again next round */
    m->next = NULL;
    m->len = len;
    memcpy(m->data, buf_data(&p->bundle), len);
    p->bundle.off = p->bundle.len = 0;
    if (p->tail)
        p->tail->next = m;
    else
        p->head = m;
    p->tail = m;
    p->qbytes += len;
    atomic_store_explicit(&p->st.queued_bytes, p->qbytes, memory_order_relaxed);
}

static void from_shard(struct cluster *cl, unsigned shard, const struct ring_frame *f)
{
    struct link_hdr h;
    if (f->len < sizeof h)
        return;
    memcpy(&h, f->payload, sizeof h);
    struct peer *p = h.dst < cl->n && h.dst != cl->self ? &cl->peers[h.dst] : NULL;
    if (!p || !atomic_load_explicit(&p->st.up, memory_order_relaxed) ||
        p->qbytes + buf_used(&p->bundle) + f->len > cl->cfg->cluster.max_link_bytes) {
        if (p)
            atomic_fetch_add_explicit(&p->st.bounced, 1, memory_order_relaxed);
        bounce(cl, shard, f->payload, f->len);
        return;
    }
    if (buf_used(&p->bundle) && buf_used(&p->bundle) + f->len > LINK_BUNDLE)
        peer_flush_bundle(p);
    h.from = (uint8_t)shard;
    uint32_t was = p->bundle.len;
    if (buf_append(&p->bundle, &h, sizeof h) < 0 ||
        buf_append(&p->bundle, (const char *)f->payload + sizeof h, f->len - sizeof h) < 0) {
        p->bundle.len = was; /* no half record */
        bounce(cl, shard, f->payload, f->len);
        return;
    }
    atomic_fetch_add_explicit(&p->st.frames_out, 1, memory_order_relaxed);
}

static unsigned drain_shards(struct cluster *cl)
{
    unsigned total = 0;
    for (unsigned i = 0; i < cl->nshards; i++) {
        struct ring_frame f;
        unsigned n = 0;
        int rc = 0;
        while (n < BATCH && (rc = port_recv(&cl->in[i], &cl->rx[i], &f)) == 1) {
            n++;
            from_shard(cl, i, &f);
        }
        if (ring_release(&cl->in[i]))
            bell_ring(cl->in[i].peer);
        if (rc < 0)
            LOG_RL(LOG_LEVEL_ERROR, "link: the ring from shard %u is corrupt", i);
        total += n;
    }
    for (unsigned i = 0; i < cl->n; i++)
        if (i != cl->self)
            peer_flush_bundle(&cl->peers[i]);
    return total;
}

static unsigned flush_peers(struct cluster *cl)
{
    unsigned n = 0;
    for (unsigned i = 0; i < cl->n; i++) {
        struct peer *p = &cl->peers[i];
        while (p->head && try_send(p, p->head->data, p->head->len)) {
            struct lmsg *m = p->head;
            p->head = m->next;
            if (!p->head)
                p->tail = NULL;
            p->qbytes -= m->len;
            free(m);
            n++;
        }
        atomic_store_explicit(&p->st.queued_bytes, p->qbytes, memory_order_relaxed);
    }
    return n;
}

/* ---- in: links to shards ----------------------------------------------------------------- */

static size_t rx_backlog(const struct cluster *cl)
{
    size_t b = 0;
    for (unsigned i = 0; i < cl->nshards; i++)
        b += cl->q[i].bytes;
    return b;
}

static void heard(struct cluster *cl, struct peer *p, uint64_t now)
{
    p->heard = now;
    if (atomic_load_explicit(&p->st.up, memory_order_relaxed) || !p->shards)
        return;
    atomic_store_explicit(&p->st.up, true, memory_order_relaxed);
    LOG_INFO("node %s is up (%u shards)", p->name, p->shards);
    if (publish_view(cl) < 0)
        LOG_ERROR("link: out of memory: the view is not rebuilt");
}

static void heartbeat_in(struct cluster *cl, struct peer *p, const void *payload, uint32_t len,
                         uint64_t now)
{
    struct link_hb hb;
    const char *name;
    if (!p->name[0])
        return; /* a node our discovery has not found yet: its row comes at the next beat */
    if (link_decode_hb(payload, len, &hb, &name) < 0 || hb.name_len != strlen(p->name) ||
        memcmp(name, p->name, hb.name_len)) {
        LOG_RL(LOG_LEVEL_ERROR, "link: a heartbeat that is not %s's: are both configs alike?",
               p->name);
        return;
    }
    atomic_store_explicit(&p->st.sessions, hb.sessions, memory_order_relaxed);
    if (p->incarnation && hb.incarnation != p->incarnation &&
        atomic_load_explicit(&p->st.up, memory_order_relaxed)) {
        /* Its router restarted within dead_after: the sessions it was home to are gone
         * with its memory, and ours must register there again. */
        LOG_WARN("node %s restarted its router: registering sessions again", p->name);
        atomic_store_explicit(&cl->rehome_want, cl->cur->epoch, memory_order_release);
    }
    p->incarnation = hb.incarnation;
    if (p->shards && p->shards != hb.shards &&
        atomic_load_explicit(&p->st.up, memory_order_relaxed)) {
        p->shards = hb.shards;
        publish_view(cl);
    }
    p->shards = hb.shards;
    heard(cl, p, now);
}

static unsigned drain_links(struct cluster *cl, uint64_t now)
{
    unsigned n = 0;
    while (n < BATCH && rx_backlog(cl) < RX_BACKLOG_MAX) {
        void *msg;
        int len = nn_recv(cl->pull, &msg, NN_MSG, NN_DONTWAIT);
        if (len < 0)
            break;
        n++;
        const char *rec = msg;
        size_t left = (size_t)len;
        while (left) {
            struct link_hdr h;
            const void *payload;
            if (link_decode(rec, left, cl->self, cl->n, cl->nshards, &h, &payload) < 0) {
                LOG_RL(LOG_LEVEL_ERROR, "link: a malformed message (%zu bytes left of %d) is "
                       "dropped", left, len);
                break;
            }
            uint32_t rlen = (uint32_t)sizeof h + h.len;
            struct peer *p = &cl->peers[h.src];
            atomic_fetch_add_explicit(&p->st.frames_in, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->st.bytes_in, rlen, memory_order_relaxed);
            if (h.kind == LINK_HEARTBEAT) {
                heartbeat_in(cl, p, payload, h.len, now);
            } else {
                heard(cl, p, now);
                if (port_send(&cl->out[h.shard], &cl->q[h.shard], h.kind, rec, rlen, NULL) < 0)
                    LOG_RL(LOG_LEVEL_ERROR, "link: out of memory: a frame from %s is lost",
                           p->name);
                cl->dirty[h.shard] = true;
            }
            rec += rlen;
            left -= rlen;
        }
        nn_freemsg(msg);
    }
    return n;
}

/* Publishes what was written to the shards' rings; true when one is full with more
 * waiting and no bell will say when it has room. */
static bool flush_shards(struct cluster *cl)
{
    bool retry = false;
    for (unsigned i = 0; i < cl->nshards; i++) {
        struct ring *r = &cl->out[i];
        if (!backlog_empty(&cl->q[i]) && backlog_flush(&cl->q[i], r))
            cl->dirty[i] = true;
        if (cl->dirty[i]) {
            cl->dirty[i] = false;
            if (ring_publish(r))
                bell_ring(r->peer);
        }
        if (!backlog_empty(&cl->q[i]) && ring_wait_prepare(r) == 0)
            retry = true;
    }
    return retry;
}

/* ---- timers ------------------------------------------------------------------------------ */

static void send_heartbeats(struct cluster *cl)
{
    uint64_t sessions = 0;
    for (unsigned i = 0; i < cl->nshards; i++)
        sessions += atomic_load_explicit(&cl->shards[i].pub.sessions, memory_order_relaxed);
    const char *name = cl->peers[cl->self].name;
    size_t nlen = strlen(name);
    char buf[sizeof(struct link_hdr) + sizeof(struct link_hb) + 64];
    struct link_hb hb = {cl->incarnation, sessions, (uint16_t)cl->nshards, (uint16_t)nlen, 0};
    for (unsigned i = 0; i < cl->n; i++) {
        if (i == cl->self || cl->peers[i].sock < 0)
            continue;
        struct link_hdr h = {LINK_MAGIC, LINK_HEARTBEAT, 0, (uint8_t)cl->self, (uint8_t)i, 0, 0,
                             (uint32_t)(sizeof hb + nlen)};
        atomic_fetch_add_explicit(&cl->peers[i].st.frames_out, 1, memory_order_relaxed);
        memcpy(buf, &h, sizeof h);
        memcpy(buf + sizeof h, &hb, sizeof hb);
        memcpy(buf + sizeof h + sizeof hb, name, nlen);
        /* Not queued: a heartbeat that does not fit now says nothing later. */
        try_send(&cl->peers[i], buf, (uint32_t)(sizeof h + sizeof hb + nlen));
    }
}

static void check_dead(struct cluster *cl, uint64_t now)
{
    bool changed = false;
    for (unsigned i = 0; i < cl->n; i++) {
        struct peer *p = &cl->peers[i];
        if (i == cl->self || !atomic_load_explicit(&p->st.up, memory_order_relaxed) ||
            now - p->heard < (uint64_t)cl->cfg->cluster.dead_after * 1000)
            continue;
        LOG_WARN("node %s is down: nothing heard for %u s", p->name, cl->cfg->cluster.dead_after);
        atomic_store_explicit(&p->st.up, false, memory_order_relaxed);
        p->incarnation = 0;
        changed = true;
    }
    if (!changed)
        return;
    if (publish_view(cl) < 0) {
        LOG_ERROR("link: out of memory: the view is not rebuilt");
        return;
    }
    /* After the view: the shards send what comes back to the homes it names. */
    for (unsigned i = 0; i < cl->n; i++)
        if (i != cl->self && !atomic_load_explicit(&cl->peers[i].st.up, memory_order_relaxed))
            peer_bounce_all(cl, &cl->peers[i]);
    atomic_store_explicit(&cl->rehome_want, cl->cur->epoch, memory_order_release);
}

bool cluster_rehome_due(struct cluster *cl)
{
    uint64_t want = atomic_load_explicit(&cl->rehome_want, memory_order_acquire);
    if (!want || want == cl->rehome_done)
        return false;
    for (unsigned i = 0; i < cl->nshards; i++)
        if (atomic_load_explicit(&cl->shards[i].view_seen, memory_order_acquire) < want)
            return false;
    cl->rehome_done = want;
    return true;
}

/* The status file: one line per node, then the shards' link counters. Written whole
 * beside its place and renamed, so a reader never sees half of it. */
static void write_status(struct cluster *cl, uint64_t now)
{
    const char *path = cl->cfg->cluster.status_file;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        LOG_RL(LOG_LEVEL_WARN, "link: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    uint64_t wall = wall_ms();
    fprintf(f, "written_ms %" PRIu64 "\nself %s\nepoch %" PRIu64 "\n", wall,
            cl->peers[cl->self].name, cl->cur ? cl->cur->epoch : 0);
    uint64_t sessions = 0;
    for (unsigned i = 0; i < cl->nshards; i++)
        sessions += atomic_load_explicit(&cl->shards[i].pub.sessions, memory_order_relaxed);
    for (unsigned i = 0; i < cl->n; i++) {
        struct peer *p = &cl->peers[i];
        const char *addr = p->url + 6; /* after tcp:// */
        if (!p->name[0])
            continue; /* a slot nobody holds (discovery) */
        if (i == cl->self) {
            fprintf(f, "node %s addr=%s state=self shards=%u sessions=%" PRIu64 "\n", p->name,
                    addr, cl->nshards, sessions);
            continue;
        }
        bool up = atomic_load_explicit(&p->st.up, memory_order_relaxed);
        fprintf(f,
                "node %s addr=%s state=%s heard_ms_ago=%" PRId64 " shards=%u sessions=%" PRIu64
                " frames_out=%" PRIu64 " bytes_out=%" PRIu64 " frames_in=%" PRIu64
                " bytes_in=%" PRIu64 " queued_bytes=%zu bounced=%" PRIu64 "\n",
                p->name, addr, up ? "up" : "down", p->heard ? (int64_t)(now - p->heard) : -1,
                up ? p->shards : 0, up ? (uint64_t)p->st.sessions : 0, (uint64_t)p->st.frames_out,
                (uint64_t)p->st.bytes_out, (uint64_t)p->st.frames_in, (uint64_t)p->st.bytes_in,
                p->qbytes, (uint64_t)p->st.bounced);
    }
    uint64_t c[9] = {0};
    for (unsigned i = 0; i < cl->nshards; i++) {
        const struct shard_pub *s = &cl->shards[i].pub;
        c[0] += s->link_frames;
        c[1] += s->link_bytes;
        c[2] += s->link_fanout_frames;
        c[3] += s->link_fanout_contacts;
        c[4] += s->link_deliver_frames;
        c[5] += s->link_deliveries;
        c[6] += s->link_bytes_saved;
        c[7] += s->link_forwarded;
        c[8] += s->link_bounced;
    }
    fprintf(f,
            "shards link_frames=%" PRIu64 " link_bytes=%" PRIu64 " link_fanout_frames=%" PRIu64
            " link_fanout_contacts=%" PRIu64 " link_deliver_frames=%" PRIu64
            " link_deliveries=%" PRIu64 " link_bytes_saved=%" PRIu64 " link_forwarded=%" PRIu64
            " link_bounced=%" PRIu64 "\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        LOG_RL(LOG_LEVEL_WARN, "link: cannot write %s: %s", path, strerror(errno));
}

/* ---- the loop ---------------------------------------------------------------------------- */

static bool rings_pending(const struct cluster *cl)
{
    for (unsigned i = 0; i < cl->nshards; i++)
        if (!ring_empty(&cl->in[i]))
            return true;
    return false;
}

static void *link_main(void *arg)
{
    struct cluster *cl = arg;
    log_thread_set("link");
    uint64_t hb_ms = (uint64_t)cl->cfg->cluster.heartbeat * 1000;
    while (!atomic_load_explicit(&cl->stop, memory_order_acquire)) {
        uint64_t now = now_ms();
        if (atomic_exchange_explicit(&cl->found_new, false, memory_order_acquire))
            take_found(cl);
        unsigned work = drain_shards(cl);
        work += flush_peers(cl);
        work += drain_links(cl, now);
        bool retry = flush_shards(cl);
        if (now >= cl->next_hb) {
            send_heartbeats(cl);
            check_dead(cl, now);
            cl->next_hb = now + hb_ms;
        }
        if (now >= cl->next_status) {
            write_status(cl, now);
            publish_stats(cl);
            cl->next_status = now + 1000;
        }
        if (work || retry)
            continue;
        struct pollfd pf[2 + HOME_NODES_MAX];
        unsigned np = 0;
        pf[np++] = (struct pollfd){bell_fd(&cl->bell), POLLIN, 0};
        if (rx_backlog(cl) < RX_BACKLOG_MAX)
            pf[np++] = (struct pollfd){cl->rcvfd, POLLIN, 0};
        for (unsigned i = 0; i < cl->n; i++)
            if (cl->peers[i].head)
                pf[np++] = (struct pollfd){cl->peers[i].sndfd, POLLIN, 0};
        uint64_t next = cl->next_hb < cl->next_status ? cl->next_hb : cl->next_status;
        int timeout = next > now ? (int)(next - now) : 0;
        bell_prepare_sleep(&cl->bell);
        if (rings_pending(cl)) {
            bell_cancel_sleep(&cl->bell);
            continue;
        }
        poll(pf, np, timeout);
        bell_drain(&cl->bell);
    }
    return NULL;
}

static int setopt(int sock, int opt, int v)
{
    return nn_setsockopt(sock, NN_SOL_SOCKET, opt, &v, sizeof v);
}

/* IPv6 addresses need NN_IPV4ONLY off; nanomsg 1.1.5 aborts (an assertion in its
 * usock) connecting to an IPv4 address with it off, so only for those. */
static int family(int sock, const char *url)
{
    return strchr(url, '[') ? setopt(sock, NN_IPV4ONLY, 0) : 0;
}

static int getfd(int sock, int opt)
{
    int fd = -1;
    size_t sz = sizeof fd;
    return nn_getsockopt(sock, NN_SOL_SOCKET, opt, &fd, &sz) < 0 ? -1 : fd;
}

/* The PUSH socket to p. 0, or -1 with nn_errno() (p->sock may be open: freed at exit). */
static int peer_connect(struct peer *p)
{
    if ((p->sock = nn_socket(AF_SP, NN_PUSH)) < 0 || family(p->sock, p->url) < 0 ||
        setopt(p->sock, NN_LINGER, 0) < 0 || nn_connect(p->sock, p->url) < 0 ||
        (p->sndfd = getfd(p->sock, NN_SNDFD)) < 0)
        return -1;
    return 0;
}

int cluster_start(struct cluster *cl, struct shard *shards, unsigned nshards, uint32_t ring_data,
                  uint32_t max_frame, struct shm_stats *slot)
{
    cl->slot = slot;
    cl->shards = shards;
    cl->nshards = nshards;
    cl->in = calloc(nshards, sizeof *cl->in);
    cl->out = calloc(nshards, sizeof *cl->out);
    cl->rx = calloc(nshards, sizeof *cl->rx);
    cl->q = calloc(nshards, sizeof *cl->q);
    cl->dirty = calloc(nshards, sizeof *cl->dirty);
    cl->bell_sh = aligned_alloc(SHM_SLOT, SHM_SLOT);
    if (!cl->in || !cl->out || !cl->rx || !cl->q || !cl->dirty || !cl->bell_sh)
        return -ENOMEM;
    bell_format(cl->bell_sh);
    int fd = bell_eventfd();
    if (fd < 0)
        return fd;
    int rc = bell_attach(&cl->bell, cl->bell_sh, fd);
    if (rc < 0)
        return rc;
    size_t bytes = (ring_footprint(ring_data) + SHM_SLOT - 1) / SHM_SLOT * SHM_SLOT;
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *s = &shards[i];
        void *up = aligned_alloc(SHM_SLOT, bytes), *down = aligned_alloc(SHM_SLOT, bytes);
        if (!up || !down)
            return -ENOMEM;
        if ((rc = ring_format(up, ring_data, max_frame)) < 0 ||
            (rc = ring_format(down, ring_data, max_frame)) < 0 ||
            (rc = ring_attach(&s->to_link, up, &cl->bell, RK_KIND_MAX - 1)) < 0 ||
            (rc = ring_attach(&cl->in[i], up, &s->bell, RK_KIND_MAX - 1)) < 0 ||
            (rc = ring_attach(&cl->out[i], down, &s->bell, RK_KIND_MAX - 1)) < 0 ||
            (rc = ring_attach(&s->from_link, down, &cl->bell, RK_KIND_MAX - 1)) < 0)
            return rc;
        cl->rx[i].max = TOPO_MAX_MESSAGE + (uint32_t)sizeof(struct link_hdr);
    }
    char url[96];
    snprintf(url, sizeof url, "tcp://%s", cl->cfg->cluster.listen.text);
    if ((cl->pull = nn_socket(AF_SP, NN_PULL)) < 0 || family(cl->pull, url) < 0 ||
        setopt(cl->pull, NN_RCVMAXSIZE, (int)LINK_MAX_MESSAGE) < 0)
        return -nn_errno();
    if (nn_bind(cl->pull, url) < 0) {
        LOG_ERROR("link: cannot listen on %s: %s", url, nn_strerror(nn_errno()));
        return -nn_errno();
    }
    if ((cl->rcvfd = getfd(cl->pull, NN_RCVFD)) < 0)
        return -EIO;
    for (unsigned i = 0; i < cl->n; i++)
        if (i != cl->self && cl->peers[i].name[0] && peer_connect(&cl->peers[i]) < 0)
            return -EIO;
    if ((rc = publish_view(cl)) < 0)
        return rc;
    for (unsigned i = 0; i < nshards; i++) {
        shards[i].cl = cl;
        shards[i].node = cl->self;
        shards[i].node_bits = (uint64_t)cl->self << PROTO_CONN_NODE_SHIFT;
        shards[i].view = cl->cur;
        atomic_store_explicit(&shards[i].view_seen, cl->cur->epoch, memory_order_relaxed);
    }
    if (pthread_create(&cl->th, NULL, link_main, cl) != 0)
        return -EAGAIN;
    cl->started = true;
    if (discovering(cl)) {
        if (pthread_create(&cl->disc_th, NULL, disc_main, cl) != 0)
            return -EAGAIN;
        cl->disc_started = true;
    }
    LOG_INFO("cluster: node %s (%u of %u), links on %s", cl->peers[cl->self].name, cl->self,
             cl->n, url);
    return 0;
}

void cluster_free(struct cluster *cl)
{
    if (!cl)
        return;
    if (cl->started) {
        atomic_store_explicit(&cl->stop, true, memory_order_release);
        bell_ring(&cl->bell);
        pthread_join(cl->th, NULL);
    }
    if (cl->disc_started)
        pthread_join(cl->disc_th, NULL);
    pthread_mutex_destroy(&cl->mu);
    for (unsigned i = 0; i < cl->n; i++) {
        struct peer *p = &cl->peers[i];
        while (p->head) {
            struct lmsg *m = p->head;
            p->head = m->next;
            free(m);
        }
        buf_free(&p->bundle);
        if (p->sock >= 0)
            nn_close(p->sock);
    }
    if (cl->pull >= 0)
        nn_close(cl->pull);
    for (unsigned i = 0; cl->in && i < cl->nshards; i++) {
        free(cl->in[i].sh); /* the link thread frees both rings' memory */
        free(cl->out[i].sh);
        port_rx_free(&cl->rx[i]);
        backlog_clear(&cl->q[i]);
    }
    if (cl->bell.fd > 0)
        close(cl->bell.fd);
    free(cl->in);
    free(cl->out);
    free(cl->rx);
    free(cl->q);
    free(cl->dirty);
    free(cl->bell_sh);
    home_view_free(cl->cur);
    free(cl);
}
