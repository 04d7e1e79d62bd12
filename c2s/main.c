/*
 * starling-c2s: the client front end process. Started by the supervisor (common/core/args.h);
 * runs c2s.threads io_uring threads (loop.c); its main thread serves the control socket
 * and signals, and hands requests to the threads through their ctl word and bell.
 */
#include "c2s/c2s.h"
#include "common/core/args.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "common/auth/sasl.h"
#include "common/auth/secret.h"
#include "common/store/store.h"
#include "common/auth/tls.h"
#include "common/core/worker.h"
#include "shm/proto.h"
#include "shm/topo.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

static struct c2s_thread *threads;
static unsigned nthreads;
static struct sasl_config sasl_cfg;

static void *thread_main(void *arg)
{
    struct c2s_thread *t = arg;
    char label[32];
    snprintf(label, sizeof label, "thread %u", t->fe.idx);
    log_thread_set(label);
    int err = fe_run(&t->fe);
    auth_waits_free(t);
    if (err < 0) {
        LOG_ERROR("c2s thread %u stopped: %s", t->fe.idx, strerror(-err));
        exit(1); /* the supervisor restarts the process */
    }
    return NULL;
}

/* Hands a request to every thread and waits until each has done it. */
static void to_threads(unsigned req)
{
    struct fe_thread *fes[256];
    for (unsigned i = 0; i < nthreads; i++)
        fes[i] = &threads[i].fe;
    fe_request(fes, nthreads, req);
}

/* SIGHUP: a new snapshot for what may change at run time (restart-only directives are
 * reported and keep their old values in effect), and the certificate read again so a
 * renewed one is used without a restart. Old snapshots and TLS contexts stay allocated:
 * connections and the SASL configuration point into them, and reloads are rare. */
struct reload_ctx {
    const char *path;
    struct tls_ctx **tls;
};

static void reload(void *arg)
{
    struct reload_ctx *rc = arg;
    const char *path = rc->path;
    struct tls_ctx **tls = rc->tls;
    const struct config *cur = threads[0].fe.cfg, **cfg = &cur;
    char err[512];
    struct config *fresh;
    if (config_load(path, &fresh, err, sizeof err) < 0) {
        LOG_ERROR("reload refused: %s", err);
        return;
    }
    const char *fixed = config_changed(*cfg, fresh, true);
    if (fixed) {
        LOG_WARN("reload: %s changes only on restart; keeping the running config", fixed);
        config_free(fresh);
        return;
    }
    log_set_level(fresh->log.level);
    struct tls_ctx *t = NULL;
    if (*tls && fresh->c2s.certificate) {
        struct tls_opts o = {
            .cert_file = fresh->c2s.certificate, .key_file = fresh->c2s.key, .alpn = "xmpp-client"};
        t = tls_ctx_new_server(&o, err, sizeof err);
        if (!t)
            LOG_ERROR("reload: keeping the old certificate: %s", err);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        threads[i].fe.next_cfg = fresh;
        threads[i].fe.next_tls = t;
    }
    to_threads(FE_CTL_RELOAD);
    config_retire(*cfg);
    *cfg = fresh;
    if (t) {
        tls_ctx_retire(*tls);
        *tls = t;
    }
    LOG_INFO("reloaded %s", path);
}

static void poll_store(void *arg)
{
    store_poll(arg);
}

static void poll_worker(void *arg)
{
    worker_poll(arg);
}

/* One thread's part of the front-end layer: rings, pool, listeners, eventfds. */
static int attach(struct c2s_thread *t, const struct seg *seg, const struct config *cfg,
                  const int *bell_fds, int ctl_fd)
{
    int err = fe_port_init(&t->fe, topo_shards(cfg));
    if (!err)
        err = topo_attach(cfg, seg, bell_fds, true, t->fe.idx, &t->fe.bell, t->fe.to_shard,
                          t->fe.from_shard);
    if (!err)
        err = fe_pool_init(&t->fe, (uint32_t)((cfg->c2s.max_connections + nthreads - 1) / nthreads));
    if (err)
        return err;
    t->fe.ops = &c2s_ops;
    t->fe.fe = PROTO_FE_C2S;
    t->fe.proxy = &cfg->c2s.proxy;
    t->fe.ws_cfg = &cfg->c2s.ws;
    t->fe.ctl_fd = ctl_fd;
    t->fe.stats = seg_stats(seg, topo_stats_fe(cfg, topo_fe_index(cfg, PROTO_FE_C2S, t->fe.idx)));
    store_client_stats(t->store, t->fe.stats);
    arena_init(&t->fe.arena, 8192);
    const struct config_addr *addrs[FE_LISTENERS] = {
        [C2S_LISTEN] = &cfg->c2s.listen,
        [C2S_LISTEN_TLS] = &cfg->c2s.listen_tls,
        [C2S_LISTEN_WS] = &cfg->c2s.websocket_listen,
        [C2S_LISTEN_WS_TLS] = &cfg->c2s.websocket_tls_listen,
    };
    for (unsigned i = 0; i < FE_LISTENERS; i++) {
        t->fe.lfd[i] = -1;
        if (!addrs[i]->len || ((i == C2S_LISTEN_TLS || i == C2S_LISTEN_WS_TLS) && !t->fe.tls))
            continue;
        if ((t->fe.lfd[i] = fe_listen(addrs[i])) < 0) {
            LOG_ERROR("cannot listen on %s: %s", addrs[i]->text, strerror(-t->fe.lfd[i]));
            return t->fe.lfd[i];
        }
    }
    if ((err = fe_watch(&t->fe, store_client_fd(t->store), poll_store, t->store)) < 0 ||
        (err = fe_watch(&t->fe, worker_client_fd(t->verify), poll_worker, t->verify)) < 0)
        return err;
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    char err[512];
    struct config *cfg;
    struct seg seg;
    struct tls_ctx *tls = NULL;
    struct store *store = NULL;
    struct worker *verify = NULL;

    if (args_parse(&a, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "starling-c2s: %s\n", err);
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);

    if (config_load(a.config, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starling-c2s: %s\n", err);
        return 2;
    }
    log_init("c2s", (enum log_level)cfg->log.level);
    signal(SIGPIPE, SIG_IGN);

    if (cfg->c2s.certificate && access(cfg->c2s.certificate, R_OK) == 0) {
        struct tls_opts o = {
            .cert_file = cfg->c2s.certificate,
            .key_file = cfg->c2s.key,
            .alpn = "xmpp-client",
        };
        tls = tls_ctx_new_server(&o, err, sizeof err);
        if (!tls) {
            LOG_ERROR("TLS: %s", err);
            return 1;
        }
    } else if (cfg->c2s.require_encryption) {
        LOG_ERROR("c2s.require_encryption is on but %s cannot be read", cfg->c2s.certificate);
        return 1;
    }
    struct store_opts so = {
        .backend = cfg->storage.backend,
        .path = cfg->storage.path,
        .dsn = cfg->storage.dsn,
        .password_file = cfg->storage.password_file,
        .timeout_ms = cfg->storage.timeout * 1000,
        .cache = cfg->storage.cache_size,
    };
    int rc = store_open(&so, &store);
    if (rc < 0) {
        LOG_ERROR("storage: %s", strerror(-rc));
        return 1;
    }
    if ((rc = worker_start(&verify)) < 0) {
        LOG_ERROR("cannot start the password worker: %s", strerror(-rc));
        return 1;
    }

    sasl_cfg.domain = cfg->domain;
    sasl_cfg.mechs = (1u << SASL_MECH_COUNT) - 1 - 1; /* all of them; PLAIN only over TLS */
    sasl_cfg.fake_iterations = cfg->c2s.scram_iterations;
    /* The secret unknown users' fake SCRAM credentials derive from must not change across
     * restarts, or a client could tell unknown users from known ones (secret.h). */
    if ((rc = secret_load(cfg->storage.path, ".secret", sasl_cfg.secret)) < 0) {
        LOG_ERROR("cannot keep the SASL secret beside %s: %s", cfg->storage.path, strerror(-rc));
        return 1;
    }

    struct seg_layout l;
    rc = topo_plan(cfg, &l);
    if (rc == 0 && a.nbells < (int)topo_bells(cfg))
        rc = -EINVAL;
    if (rc == 0)
        rc = seg_map(&seg, a.shm_fd, &l);
    if (rc < 0) {
        LOG_ERROR("shared memory: %s", strerror(-rc));
        return 1;
    }
    const struct config_addr *addrs[FE_LISTENERS] = {
        [C2S_LISTEN] = &cfg->c2s.listen,
        [C2S_LISTEN_TLS] = tls ? &cfg->c2s.listen_tls : NULL,
        [C2S_LISTEN_WS] = &cfg->c2s.websocket_listen,
        [C2S_LISTEN_WS_TLS] = tls ? &cfg->c2s.websocket_tls_listen : NULL,
    };
    for (int i = 0; i < FE_LISTENERS; i++)
        if (addrs[i] && addrs[i]->len && (rc = fe_address_free(addrs[i])) < 0) {
            LOG_ERROR("cannot listen on %s: %s%s", addrs[i]->text, strerror(-rc),
                      rc == -EADDRINUSE ? " (another server, or another starling, is there)" : "");
            return 1;
        }
    nthreads = topo_threads(cfg);
    threads = calloc(nthreads, sizeof *threads);
    if (!threads)
        return 1;
    for (unsigned i = 0; i < nthreads; i++) {
        struct c2s_thread *t = &threads[i];
        t->fe.idx = i;
        t->fe.cfg = cfg;
        t->fe.tls = tls;
        if ((rc = store_client_new(store, &t->store)) < 0 ||
            (rc = worker_client_new(verify, &t->verify)) < 0 ||
            (rc = attach(t, &seg, cfg, a.bell_fds, a.ctl_fd)) < 0) {
            LOG_ERROR("c2s thread %u: %s", i, strerror(-rc));
            return 1;
        }
        t->sasl_cfg = &sasl_cfg;
    }

    /* Signals reach the main thread only: the loops must never be interrupted. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    pthread_t *th = calloc(nthreads, sizeof *th);
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, thread_main, &threads[i]) != 0) {
            LOG_ERROR("cannot start c2s thread %u", i);
            return 1;
        }
    LOG_INFO("listening on %s (STARTTLS) and %s (Direct TLS) with %u threads",
             cfg->c2s.listen.len ? cfg->c2s.listen.text : "-",
             tls && cfg->c2s.listen_tls.len ? cfg->c2s.listen_tls.text : "-", nthreads);
    if (cfg->c2s.websocket_listen.len || (tls && cfg->c2s.websocket_tls_listen.len))
        LOG_INFO("WebSocket (RFC 7395) on %s (plain, behind a TLS proxy) and %s (TLS)",
                 cfg->c2s.websocket_listen.len ? cfg->c2s.websocket_listen.text : "-",
                 tls && cfg->c2s.websocket_tls_listen.len ? cfg->c2s.websocket_tls_listen.text
                                                          : "-");

    struct fe_thread *fes[256];
    for (unsigned i = 0; i < nthreads; i++)
        fes[i] = &threads[i].fe;
    struct reload_ctx rctx = {a.config, &tls};
    fe_serve(a.ctl_fd, sfd, CTL_ROLE_C2S, fes, nthreads, reload, &rctx);
    /* Every client hears system-shutdown; the threads end once their connections are
     * closed (each gets a few seconds to read its last words). */
    to_threads(FE_CTL_STOP);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    free(th);
    for (unsigned i = 0; i < nthreads; i++) {
        store_client_free(threads[i].store);
        worker_client_free(threads[i].verify);
    }
    worker_stop(verify);
    store_close(store);
    config_retired_free();
    tls_ctx_retired_free();
    LOG_INFO("stopped");
    return 0;
}
