/*
 * starling-router: the router process. Started by the supervisor with the node's config,
 * the shared-memory segment and the bells' eventfds inherited (see common/core/args.h); runs
 * router.shards shard threads, and in a cluster the link thread (link.h); its main thread
 * serves the control socket and is the arbiter (arbiter()).
 */
#include "common/core/args.h"
#include "common/config/config.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "common/store/store.h"
#include "router/mam.h"
#include "router/router.h"
#include "shm/topo.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct shard *shards;
static unsigned nshards;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The arbiter: a node that has not reached its store (PostgreSQL) for cluster.dead_after
 * tells the supervisor (CTL_STORE), which stops new logins and fails /ready until it is
 * reachable again, so that a node cut off from the shared database sends its clients to
 * the nodes that still reach it instead of serving users whose state it cannot load or
 * save. *lost_since: when it was first seen unreachable (0: reachable); *fenced: told. */
static void arbiter(const struct store *st, const struct config *cfg, int ctl_fd,
                    uint64_t *lost_since, bool *fenced)
{
    uint64_t now = mono_ms();
    if (store_reachable(st)) {
        *lost_since = 0;
        if (*fenced) {
            *fenced = false;
            LOG_INFO("storage reachable again: taking logins");
            ctl_tell(ctl_fd, CTL_STORE, 0);
        }
        return;
    }
    if (!*lost_since)
        *lost_since = now;
    if (!*fenced && now - *lost_since >= (uint64_t)cfg->cluster.dead_after * 1000) {
        *fenced = true;
        LOG_WARN("storage unreachable for %u s (cluster.dead_after): no new logins until it "
                 "is back", cfg->cluster.dead_after);
        ctl_tell(ctl_fd, CTL_STORE, 1);
    }
}

/* Hands a control request to every shard and waits until each has handled it. */
static void to_shards(unsigned req, unsigned arg)
{
    unsigned before[256];
    for (unsigned i = 0; i < nshards; i++) {
        before[i] = atomic_load_explicit(&shards[i].ctl_done, memory_order_acquire);
        shards[i].ctl_arg = arg;
        /* Pairs with the shard's acquire load of ctl: ctl_arg is visible with it. */
        atomic_store_explicit(&shards[i].ctl, req, memory_order_release);
        bell_ring(&shards[i].bell);
    }
    if (req == ROUTER_CTL_STOP)
        return;
    for (unsigned i = 0; i < nshards; i++)
        while (atomic_load_explicit(&shards[i].ctl_done, memory_order_acquire) == before[i])
            usleep(1000);
}

static int attach(struct shard *s, const struct seg *seg, const struct config *cfg,
                  const int *bell_fds)
{
    unsigned nfe = topo_fe_threads(cfg);
    s->nfe = nfe;
    s->cfg = cfg;
    s->from_fe = calloc(nfe, sizeof *s->from_fe);
    s->to_fe = calloc(nfe, sizeof *s->to_fe);
    s->dirty = calloc(nfe, sizeof *s->dirty);
    s->backlog = calloc(nfe, sizeof *s->backlog);
    s->broken = calloc(nfe, sizeof *s->broken);
    if (!s->from_fe || !s->to_fe || !s->dirty || !s->backlog || !s->broken)
        return -ENOMEM;
    return topo_attach(cfg, seg, bell_fds, false, s->idx, &s->bell, s->to_fe, s->from_fe);
}

int main(int argc, char **argv)
{
    struct args a;
    char err[512];
    struct config *cfg;
    struct seg seg;

    if (args_parse(&a, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "starling-router: %s\n", err);
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the supervisor */
    router_ctl_fd = a.ctl_fd;
    signal(SIGINT, SIG_IGN); /* the terminal's Ctrl-C: the supervisor decides */
    signal(SIGPIPE, SIG_IGN);
    if (config_load(a.config, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starling-router: %s\n", err);
        return 2;
    }
    log_init("router", (enum log_level)cfg->log.level);
    struct seg_layout l;
    int rc = topo_plan(cfg, &l);
    if (rc == 0)
        rc = seg_map(&seg, a.shm_fd, &l);
    if (rc < 0) {
        LOG_ERROR("shared memory: %s", strerror(-rc));
        return 1;
    }
    struct store *store;
    struct store_opts so = {.backend = cfg->storage.backend,
                            .path = cfg->storage.path,
                            .dsn = cfg->storage.dsn,
                            .password_file = cfg->storage.password_file,
                            .timeout_ms = cfg->storage.timeout * 1000,
                            .cache = cfg->storage.cache_size};
    if ((rc = store_open(&so, &store)) < 0) {
        LOG_ERROR("storage: %s", strerror(-rc));
        return 1;
    }
    if ((rc = mam_router_start(store)) < 0) {
        LOG_ERROR("storage: the archive's last id: %s", strerror(-rc));
        return 1;
    }
    struct cluster *cl;
    if (cluster_new(cfg, store, &cl, err, sizeof err) < 0) {
        LOG_ERROR("%s", err);
        return 2;
    }
    nshards = topo_shards(cfg);
    shards = calloc(nshards, sizeof *shards);
    if (!shards)
        return 1;
    for (unsigned i = 0; i < nshards; i++) {
        shards[i].idx = i;
        shards[i].nshards = nshards;
        if ((rc = attach(&shards[i], &seg, cfg, a.bell_fds)) < 0 ||
            (rc = store_client_new_notify(store, shard_store_notify, &shards[i],
                                          &shards[i].store)) < 0) {
            LOG_ERROR("shard %u: %s", i, strerror(-rc));
            return 1;
        }
        shards[i].slot = seg_stats(&seg, topo_stats_shard(cfg, i));
        store_client_stats(shards[i].store, shards[i].slot);
    }
    if ((rc = shard_link(shards, nshards, l.ring_data_size, l.max_frame)) < 0) {
        LOG_ERROR("cannot link the shards: %s", strerror(-rc));
        return 1;
    }
    if (cl && (rc = cluster_start(cl, shards, nshards, l.ring_data_size, l.max_frame,
                                       seg_stats(&seg, topo_stats_router(cfg)))) < 0) {
        LOG_ERROR("cluster: %s", strerror(-rc));
        return 1;
    }
    for (unsigned i = 0; i < nshards; i++)
        if ((rc = shard_init(&shards[i])) < 0) {
            LOG_ERROR("shard %u: %s", i, strerror(-rc));
            return 1;
        }
    pthread_t *th = calloc(nshards, sizeof *th);
    for (unsigned i = 0; i < nshards; i++)
        if (pthread_create(&th[i], NULL, shard_main, &shards[i]) != 0) {
            LOG_ERROR("cannot start shard %u", i);
            return 1;
        }
    LOG_INFO("serving %s with %u shards", cfg->domain, nshards);

    struct ctl_msg m = {CTL_READY, CTL_ROLE_ROUTER};
    send(a.ctl_fd, &m, sizeof m, MSG_NOSIGNAL);
    time_t last_tick = time(NULL);
    bool pg = cfg->storage.backend == STORE_BACKEND_POSTGRESQL, fenced = false;
    uint64_t lost_since = 0;
    for (;;) {
        /* A tick a second between control messages: idle shards trim their rings. In a
         * cluster, a look every 100 ms for a lost node whose users must re-register; with
         * PostgreSQL, at the store's reachability. */
        struct pollfd pf = {a.ctl_fd, POLLIN, 0};
        int ready = poll(&pf, 1, cl || pg ? 100 : 1000);
        if (pg)
            arbiter(store, cfg, a.ctl_fd, &lost_since, &fenced);
        if (cl && cluster_rehome_due(cl)) {
            LOG_INFO("cluster: a node left; c2s registers its sessions with their homes again");
            ctl_tell(a.ctl_fd, CTL_REHOME, 0);
        }
        if (ready == 0) {
            if (time(NULL) != last_tick) {
                last_tick = time(NULL);
                for (unsigned i = 0; i < nshards; i++)
                    shard_trim_tick(&shards[i]);
                mam_router_tick(store, cfg);
            }
            continue;
        }
        ssize_t n = recv(a.ctl_fd, &m, sizeof m, 0);
        if (n == 0 || (n < 0 && errno != EINTR))
            break; /* the supervisor is gone */
        if (n != (ssize_t)sizeof m)
            continue;
        if (m.type == CTL_SHUTDOWN)
            break;
        if (m.type == CTL_RELOAD) {
            /* Old snapshots are kept: shards may have pointers into them mid-stanza. */
            struct config *fresh;
            if (config_load(a.config, &fresh, err, sizeof err) < 0) {
                LOG_ERROR("reload refused: %s", err);
            } else if (config_changed(cfg, fresh, true)) {
                LOG_WARN("reload: %s changes only on restart; keeping the running config",
                         config_changed(cfg, fresh, true));
                config_free(fresh);
            } else {
                log_set_level(fresh->log.level);
                for (unsigned i = 0; i < nshards; i++)
                    shards[i].next_cfg = fresh;
                to_shards(ROUTER_CTL_RELOAD, 0);
                config_retire(cfg);
                cfg = fresh;
                LOG_INFO("reloaded %s", a.config);
            }
        } else if (m.type == CTL_PEER_DOWN) {
            LOG_INFO("front end %u went down: dropping its sessions", m.arg);
            to_shards(ROUTER_CTL_FE_DOWN, m.arg);
            struct ctl_msg ack = {CTL_PEER_RESET, m.arg};
            send(a.ctl_fd, &ack, sizeof ack, MSG_NOSIGNAL);
        }
    }
    to_shards(ROUTER_CTL_STOP, 0);
    for (unsigned i = 0; i < nshards; i++)
        pthread_join(th[i], NULL);
    free(th);
    cluster_free(cl);
    store_close(store);
    config_retired_free();
    LOG_INFO("stopped");
    return 0;
}
