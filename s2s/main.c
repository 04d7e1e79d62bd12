/*
 * starling-s2s: the server-to-server front end process. Started by the supervisor
 * (common/core/args.h); runs s2s.threads front-end threads (common/fe); its main thread
 * serves the control socket and signals, and hands requests to the threads.
 */
#include "s2s/s2s.h"
#include "common/auth/secret.h"
#include "common/auth/tls.h"
#include "common/core/args.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "s2s/resolve.h"
#include "shm/proto.h"
#include "shm/topo.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

static struct s2s_thread *threads;
static unsigned nthreads;
static struct dialback_config db_cfg;
static const char *db_domains[2]; /* the main domain, the chat service's */

/* The server and client contexts from cfg's certificate and trust roots: one
 * certificate for both roles, the domain's (XEP-0178 wants the same identity whether we
 * connect or are connected to). *server stays NULL without a certificate file. */
static int tls_contexts(const struct config *cfg, struct tls_ctx **server, struct tls_ctx **client)
{
    char err[512];
    bool have_cert = cfg->c2s.certificate && access(cfg->c2s.certificate, R_OK) == 0;
    struct tls_opts o = {
        .cert_file = have_cert ? cfg->c2s.certificate : NULL,
        .key_file = have_cert ? cfg->c2s.key : NULL,
        .ca_file = cfg->s2s.ca_file && *cfg->s2s.ca_file ? cfg->s2s.ca_file : NULL,
        .ca_dir = cfg->s2s.ca_dir && *cfg->s2s.ca_dir ? cfg->s2s.ca_dir : NULL,
        .alpn = "xmpp-server",
        .request_cert = true,
    };
    *server = *client = NULL;
    if (have_cert && !(*server = tls_ctx_new_server(&o, err, sizeof err))) {
        LOG_ERROR("TLS: %s", err);
        return -1;
    }
    if (!(*client = tls_ctx_new_client(&o, err, sizeof err))) {
        LOG_ERROR("TLS (client): %s", err);
        tls_ctx_free(*server);
        *server = NULL;
        return -1;
    }
    return 0;
}

/* SIGHUP through the supervisor: limits and timeouts at once, the certificate and trust
 * roots for new streams; what changes only on restart is refused whole. */
static void to_threads(unsigned req);

static void reload(void *arg)
{
    const char *path = ((const struct args *)arg)->config;
    char err[512];
    struct config *fresh;
    if (config_load(path, &fresh, err, sizeof err) < 0) {
        LOG_ERROR("reload refused: %s", err);
        return;
    }
    const char *fixed = config_changed(threads[0].fe.cfg, fresh, true);
    if (fixed) {
        LOG_WARN("reload: %s changes only on restart; keeping the running config", fixed);
        config_free(fresh);
        return;
    }
    log_set_level(fresh->log.level);
    struct tls_ctx *server, *client;
    if (tls_contexts(fresh, &server, &client) < 0) {
        LOG_ERROR("reload: keeping the old certificate and trust roots");
        server = client = NULL;
    }
    const struct config *old = threads[0].fe.cfg;
    struct tls_ctx *old_server = threads[0].fe.tls, *old_client = threads[0].client_tls;
    for (unsigned i = 0; i < nthreads; i++) {
        threads[i].fe.next_cfg = fresh;
        threads[i].fe.next_tls = server;
        threads[i].next_client_tls = client;
    }
    to_threads(FE_CTL_RELOAD);
    config_retire(old);
    if (server)
        tls_ctx_retire(old_server);
    if (client)
        tls_ctx_retire(old_client);
    LOG_INFO("reloaded %s", path);
}

static void *thread_main(void *arg)
{
    struct s2s_thread *t = arg;
    char label[32];
    snprintf(label, sizeof label, "thread %u", t->fe.idx);
    log_thread_set(label);
    int err = fe_run(&t->fe);
    if (err < 0) {
        LOG_ERROR("s2s thread %u stopped: %s", t->fe.idx, strerror(-err));
        exit(1); /* the supervisor restarts the process */
    }
    LOG_INFO("stanzas sent %" PRIu64 ", received %" PRIu64 ", returned %" PRIu64
             "; presence fan-out: %" PRIu64 " frames carried %" PRIu64 " stanzas (%" PRIu64
             " frames saved), %" PRIu64 " lost to unreachable servers; XEP-0033: %" PRIu64
             " multicast stanzas carried %" PRIu64 " (%" PRIu64 " stanzas, %" PRId64
             " bytes saved), %" PRIu64 " received for %" PRIu64 " recipients",
             t->sent, t->received, t->bounced, t->fanout_frames, t->fanout_stanzas,
             t->fanout_stanzas - t->fanout_frames, t->fanout_lost, t->mc_sent, t->mc_rcpts,
             t->mc_rcpts - t->mc_sent, t->mc_saved_bytes, t->mc_received, t->mc_delivered);
    return NULL;
}

static void to_threads(unsigned req)
{
    struct fe_thread *fes[64];
    for (unsigned i = 0; i < nthreads; i++)
        fes[i] = &threads[i].fe;
    fe_request(fes, nthreads, req);
}

static int attach(struct s2s_thread *t, const struct seg *seg, const struct config *cfg,
                  const int *bell_fds, int ctl_fd)
{
    int err = fe_port_init(&t->fe, topo_shards(cfg));
    if (!err)
        err = topo_attach(cfg, seg, bell_fds, true, topo_fe_index(cfg, PROTO_FE_S2S, t->fe.idx),
                          &t->fe.bell, t->fe.to_shard, t->fe.from_shard);
    if (!err)
        err = fe_pool_init(&t->fe, (uint32_t)((cfg->s2s.max_connections + nthreads - 1) / nthreads));
    if (err)
        return err;
    t->fe.ops = &s2s_ops;
    t->fe.fe = PROTO_FE_S2S;
    t->fe.ctl_fd = ctl_fd;
    t->fe.stats = seg_stats(seg, topo_stats_fe(cfg, topo_fe_index(cfg, PROTO_FE_S2S, t->fe.idx)));
    arena_init(&t->fe.arena, 8192);
    t->db_cfg = &db_cfg;
    if (!(t->acks = calloc(topo_shards(cfg), sizeof *t->acks)))
        return -ENOMEM;
    t->authz_lim = (struct authz_limits){cfg->s2s.max_domain_pairs, cfg->s2s.max_dialback_pending};
    if ((err = out_init(t)) < 0 || (err = s2s_resolve_init(t)) < 0)
        return err;
    for (unsigned i = 0; i < FE_LISTENERS; i++)
        t->fe.lfd[i] = -1;
    const struct config_addr *ls[2] = {&cfg->s2s.listen, &cfg->s2s.listen_tls};
    for (unsigned i = 0; i < 2; i++)
        if (ls[i]->len && (t->fe.lfd[i] = fe_listen(ls[i])) < 0) {
            LOG_ERROR("cannot listen on %s: %s", ls[i]->text, strerror(-t->fe.lfd[i]));
            return t->fe.lfd[i];
        }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    char err[512];
    struct config *cfg;
    struct seg seg;
    struct tls_ctx *tls = NULL;
    int rc;

    if (args_parse(&a, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "starling-s2s: %s\n", err);
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (config_load(a.config, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "starling-s2s: %s\n", err);
        return 2;
    }
    log_init("s2s", (enum log_level)cfg->log.level);
    signal(SIGPIPE, SIG_IGN);
    struct tls_ctx *client_tls = NULL;
    if (tls_contexts(cfg, &tls, &client_tls) < 0)
        return 1;
    uint8_t secret[SECRET_LEN];
    if ((rc = secret_load(cfg->storage.path, ".dialback", secret)) < 0) {
        LOG_ERROR("the dialback secret beside %s: %s", cfg->storage.path, strerror(-rc));
        return 1;
    }
    dialback_config_secret(&db_cfg, secret, sizeof secret);
    db_domains[0] = cfg->domain;
    db_domains[1] = cfg->muc.domain; /* the chat service answers dialback as a server */
    db_cfg.domains = db_domains;
    db_cfg.ndomains = cfg->muc.enabled ? 2 : 1;
    db_cfg.timeout = cfg->s2s.dialback_timeout;
    db_cfg.max_pending = cfg->s2s.max_dialback_pending;
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
    const struct config_addr *ls[2] = {&cfg->s2s.listen, &cfg->s2s.listen_tls};
    for (unsigned i = 0; i < 2; i++)
        if (ls[i]->len && (rc = fe_address_free(ls[i])) < 0) {
            LOG_ERROR("cannot listen on %s: %s", ls[i]->text, strerror(-rc));
            return 1;
        }
    nthreads = topo_s2s_threads(cfg);
    threads = calloc(nthreads, sizeof *threads);
    if (!threads)
        return 1;
    for (unsigned i = 0; i < nthreads; i++) {
        struct s2s_thread *t = &threads[i];
        t->fe.idx = i;
        t->fe.cfg = cfg;
        t->fe.tls = tls;
        t->client_tls = client_tls;
        if ((rc = attach(t, &seg, cfg, a.bell_fds, a.ctl_fd)) < 0) {
            LOG_ERROR("s2s thread %u: %s", i, strerror(-rc));
            return 1;
        }
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
            LOG_ERROR("cannot start s2s thread %u", i);
            return 1;
        }
    LOG_INFO("listening on %s with %u threads",
             cfg->s2s.listen.len ? cfg->s2s.listen.text : "-", nthreads);

    struct fe_thread *fes[64];
    for (unsigned i = 0; i < nthreads; i++)
        fes[i] = &threads[i].fe;
    fe_serve(a.ctl_fd, sfd, CTL_ROLE_S2S, fes, nthreads, reload, &a);
    to_threads(FE_CTL_STOP);
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        s2s_resolve_free(&threads[i]);
    }
    free(th);
    config_retired_free();
    tls_ctx_retired_free();
    LOG_INFO("stopped");
    return 0;
}
