/*
 * auth.c: SASL negotiation (RFC 6120 §6) around the sasl core, which does the
 * mechanisms. This file advertises them (with XEP-0440 channel-binding types), turns
 * <auth/>, <response/> and <abort/> into core calls, fetches stored credentials from
 * the store asynchronously (the connection holds its input meanwhile), applies the
 * limits on logins (limit.h), and restarts the stream on success.
 *
 * The limits, in the order a login meets them: its address has failed on too many
 * accounts lately (temporary-auth-failure at once); its address logs in faster than
 * c2s.login_rate (the <auth/> waits for its turn on the thread's wake-up timer, the
 * connection holding its input; refused only when the turn would come too close to the
 * handshake deadline); its account has failed too often lately (refused before its
 * credentials are fetched); PLAIN only: too many verifications wait for the worker
 * already. A failure at the password check is charged to the account and the address.
 *
 * Five failures end the stream (RFC 6120 §6.4.5: at least two retries, at most five).
 * Clients that predate XEP-0440 spend two on -PLUS attempts over TLS 1.3 (sasl.c).
 */
#include "c2s/c2s.h"
#include "c2s/limit.h"
#include "common/auth/creds.h"
#include "common/core/ctl.h"
#include "common/core/log.h"
#include "common/auth/sasl.h"
#include "common/store/store.h"
#include "common/auth/tls.h"
#include "common/core/worker.h"
#include "common/xmpp/xml_tree.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NS_SASL      "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_SASL_CB   "urn:xmpp:sasl-cb:0"
#define MAX_FAILURES 5

/* What the transport gives SASL: whether it is encrypted, and its channel bindings. */
static void transport(const struct conn *c, struct sasl_tls *st)
{
    memset(st, 0, sizeof *st);
    /* With c2s.allow_plain_without_tls the operator accepts PLAIN on a plain stream:
     * the core offers PLAIN on "encrypted" streams only, so that is what it is told.
     * No channel binding exists there, so no -PLUS mechanism is offered. */
    st->active = (c->fe.flags & FE_F_TLS) || c->fe.t->cfg->c2s.allow_plain_without_tls;
    if (!(c->fe.flags & FE_F_TLS) || !c->fe.tls)
        return; /* no TLS, or a proxy's in front of a plain WebSocket listener */
    if (tls_cb_exporter(c->fe.tls, st->exporter) == 0)
        st->cb |= SASL_CB_TLS_EXPORTER;
    if (tls_cb_server_end_point(c->fe.tls, st->end_point, &st->end_point_len) == 0)
        st->cb |= SASL_CB_TLS_SERVER_END_POINT;
    if (tls_cb_unique(c->fe.tls, st->unique, &st->unique_len) == 0)
        st->cb |= SASL_CB_TLS_UNIQUE;
}

void auth_features(struct conn *c, struct buf *b)
{
    struct sasl_tls st;
    transport(c, &st);
    unsigned mechs = sasl_offer(conn_thread(c)->sasl_cfg, &st);
    buf_puts(b, "<mechanisms xmlns='" NS_SASL "'>");
    for (int m = SASL_MECH_NONE + 1; m < SASL_MECH_COUNT; m++)
        if (mechs & SASL_MECH_BIT(m)) {
            buf_puts(b, "<mechanism>");
            buf_puts(b, sasl_mech_name((enum sasl_mech)m));
            buf_puts(b, "</mechanism>");
        }
    buf_puts(b, "</mechanisms>");
    unsigned cb = sasl_cb_offer(&st);
    if (cb) {
        buf_puts(b, "<sasl-channel-binding xmlns='" NS_SASL_CB "'>");
        for (unsigned bit = 1; bit <= cb; bit <<= 1)
            if (cb & bit) {
                buf_puts(b, "<channel-binding type='");
                buf_puts(b, sasl_cb_name((enum sasl_cb)bit));
                buf_puts(b, "'/>");
            }
        buf_puts(b, "</sasl-channel-binding>");
    }
}

static void end_exchange(struct conn *c)
{
    if (c->sasl) {
        sasl_wipe(c->sasl);
        free(c->sasl);
        c->sasl = NULL;
    }
    c->fe.flags &= (uint16_t)~FE_F_WAIT;
    if (c->fe.state == CONN_SASL)
        c->fe.state = FE_OPEN;
}

/* <failure/> with cond, counted against the stream's allowance (RFC 6120 §6.4.5). */
static void send_failure(struct conn *c, enum sasl_cond cond)
{
    struct buf b = {0};
    buf_puts(&b, "<failure xmlns='" NS_SASL "'><");
    buf_puts(&b, sasl_cond_name(cond));
    buf_puts(&b, "/></failure>");
    fe_write(&c->fe, buf_data(&b), buf_used(&b));
    buf_free(&b);
    if (cond != SASL_ABORTED)
        stats_add(c->fe.t->stats, STAT_C2S_AUTH_FAILURES, 1);
    if (cond != SASL_ABORTED && ++c->auth_failures >= MAX_FAILURES)
        fe_stream_error(&c->fe, "policy-violation");
}

static void on_creds(void *arg, int res, const struct store_creds *sc);

struct verify_job {
    struct worker_job job; /* first: the worker hands this pointer back */
    uint64_t conn;
    struct sasl *sasl;
};

static void handle(struct conn *c, enum sasl_ev k, const struct sasl_event *ev);

static void verify_run(struct worker_job *job)
{
    sasl_verify(((struct verify_job *)job)->sasl);
}

static void verify_done(struct worker_job *job)
{
    struct verify_job *j = (struct verify_job *)job;
    struct c2s_thread *t = C2S_CURRENT;
    if (t)
        t->verify_pending--;
    struct conn *c = t ? conn_by_id(t, j->conn) : NULL;
    if (c && !c->sasl && (c->fe.flags & FE_F_WAIT)) {
        c->sasl = j->sasl;
        c->fe.flags &= (uint16_t)~FE_F_WAIT;
        struct sasl_event ev;
        enum sasl_ev k = sasl_resume(c->sasl, &ev);
        handle(c, k, &ev);
        fe_input(&c->fe, NULL, 0); /* anything the client sent meanwhile */
    } else {
        sasl_wipe(j->sasl); /* the client left meanwhile */
        free(j->sasl);
    }
    free(j);
}

/* Acts on what the core said. */
static void handle(struct conn *c, enum sasl_ev k, const struct sasl_event *ev)
{
    const struct config *cfg = c->fe.t->cfg;
    struct buf b = {0};
    switch (k) {
    case SASL_EV_CHALLENGE:
        buf_puts(&b, "<challenge xmlns='" NS_SASL "'>");
        buf_append(&b, ev->text, ev->len);
        buf_puts(&b, "</challenge>");
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
        c->fe.state = CONN_SASL;
        break;
    case SASL_EV_SUCCESS: {
        char *user = strdup(ev->user);
        if (ev->len) {
            buf_puts(&b, "<success xmlns='" NS_SASL "'>");
            buf_append(&b, ev->text, ev->len);
            buf_puts(&b, "</success>");
        } else {
            buf_puts(&b, "<success xmlns='" NS_SASL "'/>");
        }
        fe_write(&c->fe, buf_data(&b), buf_used(&b));
        end_exchange(c);
        if (!user) {
            fe_stream_error(&c->fe, "internal-server-error");
            break;
        }
        free(c->user);
        c->user = user;
        c->fe.flags |= CONN_F_AUTHED;
        stats_add(c->fe.t->stats, STAT_C2S_LOGINS, 1);
        LOG_DEBUG("conn %u: authenticated as %s", c->fe.slot, user);
        fe_restart(&c->fe); /* RFC 6120 §6.4.6: the client opens a new stream */
        break;
    }
    case SASL_EV_FAILURE:
        if (ev->tested) /* before end_exchange(): ev->user is in the machine */
            limit_failure(c->peer_hash, limit_account(ev->user), limit_now_us(),
                          cfg->c2s.auth_failures_per_address, cfg->c2s.auth_failures_per_account,
                          cfg->c2s.auth_failure_window);
        end_exchange(c);
        send_failure(c, ev->cond);
        break;
    case SASL_EV_NEED_CREDS: {
        if (limit_failures_exhausted(LIMIT_ACCOUNT, limit_account(ev->user), limit_now_us(),
                                     cfg->c2s.auth_failures_per_account,
                                     cfg->c2s.auth_failure_window)) {
            char a[NET_ADDR_TEXT];
            LOG_RL(LOG_LEVEL_WARN, "conn %u: %s: too many failed logins on %s lately", c->fe.slot,
                   net_addr_text(&c->fe.peer, a), ev->user);
            struct sasl_event fe;
            enum sasl_ev fk = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &fe);
            handle(c, fk, &fe);
            break;
        }
        c->sasl_hash = (uint8_t)ev->hash;
        c->fe.state = CONN_SASL;
        c->fe.flags |= FE_F_WAIT;
        /* The connection's id, not a pointer: it may be gone when the answer comes. */
        uintptr_t id = (uintptr_t)fe_conn_id(&c->fe);
        if (store_creds_get(conn_thread(c)->store, ev->user, on_creds, (void *)id) < 0) {
            struct sasl_event fe;
            enum sasl_ev fk = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &fe);
            handle(c, fk, &fe);
        }
        break;
    }
    case SASL_EV_NEED_VERIFY: {
        /* PBKDF2 of the offered password takes milliseconds: the worker thread does it.
         * The job owns the machine meanwhile, so closing the connection cannot free it
         * under the worker's feet. */
        struct verify_job *j =
            conn_thread(c)->verify_pending < cfg->c2s.max_plain_pending ? malloc(sizeof *j) : NULL;
        if (!j) {
            LOG_RL(LOG_LEVEL_WARN, "conn %u: %u PLAIN logins wait for the worker already", c->fe.slot,
                   conn_thread(c)->verify_pending);
            struct sasl_event fe;
            enum sasl_ev fk = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &fe);
            handle(c, fk, &fe);
            break;
        }
        j->job.run = verify_run;
        j->job.done = verify_done;
        j->conn = fe_conn_id(&c->fe);
        j->sasl = c->sasl;
        c->sasl = NULL;
        c->fe.state = CONN_SASL;
        c->fe.flags |= FE_F_WAIT;
        conn_thread(c)->verify_pending++;
        worker_submit(conn_thread(c)->verify, &j->job);
        break;
    }
    }
    buf_free(&b);
}

static void on_creds(void *arg, int res, const struct store_creds *sc)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    struct c2s_thread *t = C2S_CURRENT;
    struct conn *c = t ? conn_by_id(t, id) : NULL;
    if (!c || !c->sasl || !(c->fe.flags & FE_F_WAIT))
        return;
    c->fe.flags &= (uint16_t)~FE_F_WAIT;
    struct sasl_event ev;
    enum sasl_ev k;
    if (res == 0 || res == -ENOENT) {
        struct scram_creds creds;
        if (res == 0)
            creds_get(sc, (enum scram_hash)c->sasl_hash, &creds);
        k = sasl_creds(c->sasl, res == 0 ? &creds : NULL, &ev);
        memset(&creds, 0, sizeof creds);
    } else {
        k = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &ev);
    }
    handle(c, k, &ev);
    fe_input(&c->fe, NULL, 0); /* anything the client sent meanwhile */
}

/* ---- starting a login: the limits on addresses, and the wait for a turn --------------- */

/* A login waiting for its turn under c2s.login_rate: what its <auth/> said. */
struct auth_wait {
    uint64_t at;   /* limit_now_us() time it may start */
    uint64_t conn; /* conn_id(): the connection may be gone by then */
    char *auth;    /* the mechanism, NUL, the initial response, NUL */
};

static void start(struct conn *c, const char *mech, const char *text)
{
    struct sasl_event se;
    struct sasl_tls st;

    c->sasl = malloc(sizeof *c->sasl);
    if (!c->sasl) {
        send_failure(c, SASL_TEMPORARY_AUTH_FAILURE);
        return;
    }
    transport(c, &st);
    sasl_init(c->sasl, conn_thread(c)->sasl_cfg, &st);
    enum sasl_ev k = sasl_start(c->sasl, mech, strlen(mech), text, strlen(text), &se);
    handle(c, k, &se);
}

/* The waits form a binary min-heap on `at`, so the timer is armed for waits[0]. */
static void wait_swap(struct auth_wait *a, struct auth_wait *b)
{
    struct auth_wait x = *a;
    *a = *b;
    *b = x;
}

static struct auth_wait wait_pop(struct c2s_thread *t)
{
    struct auth_wait *h = t->waits, top = h[0];
    h[0] = h[--t->nwaits];
    for (uint32_t i = 0;;) {
        uint32_t l = 2 * i + 1, m = i;
        if (l < t->nwaits && h[l].at < h[m].at)
            m = l;
        if (l + 1 < t->nwaits && h[l + 1].at < h[m].at)
            m = l + 1;
        if (m == i)
            break;
        wait_swap(&h[i], &h[m]);
        i = m;
    }
    return top;
}

/* Holds the login until `at`. false when memory is short. */
static bool defer(struct conn *c, uint64_t at, const char *mech, const char *text)
{
    struct c2s_thread *t = conn_thread(c);
    size_t ml = strlen(mech) + 1, tl = strlen(text) + 1;
    char *auth = malloc(ml + tl);
    if (!auth)
        return false;
    if (t->nwaits == t->waits_cap) {
        uint32_t cap = t->waits_cap ? 2 * t->waits_cap : 16;
        struct auth_wait *w = realloc(t->waits, cap * sizeof *w);
        if (!w) {
            free(auth);
            return false;
        }
        t->waits = w;
        t->waits_cap = cap;
    }
    memcpy(auth, mech, ml);
    memcpy(auth + ml, text, tl);
    uint32_t i = t->nwaits++;
    t->waits[i] = (struct auth_wait){at, fe_conn_id(&c->fe), auth};
    for (; i && t->waits[(i - 1) / 2].at > t->waits[i].at; i = (i - 1) / 2)
        wait_swap(&t->waits[i], &t->waits[(i - 1) / 2]);
    c->fe.state = CONN_SASL;
    c->fe.flags |= FE_F_WAIT;
    fe_wake_at(&t->fe, t->waits[0].at);
    return true;
}

/* An <auth/>: refused, made to wait for its turn, or started. */
static void login(struct conn *c, const char *mech, const char *text)
{
    struct c2s_thread *t = conn_thread(c);
    const struct config *cfg = t->fe.cfg;
    uint64_t now = limit_now_us();

    if (t->fe.drain != CTL_DRAIN_OFF) {
        stream_drained(c); /* no new login on a draining node (stream.c) */
        return;
    }
    if (limit_failures_exhausted(LIMIT_ADDRESS, c->peer_hash, now,
                                 cfg->c2s.auth_failures_per_address,
                                 cfg->c2s.auth_failure_window)) {
        char a[NET_ADDR_TEXT];
        LOG_RL(LOG_LEVEL_WARN, "conn %u: %s failed on too many accounts lately", c->fe.slot,
               net_addr_text(&c->fe.peer, a));
        send_failure(c, SASL_TEMPORARY_AUTH_FAILURE);
        return;
    }
    /* The turn must come a second before the handshake deadline at least, for the
     * exchange itself. The deadline is in the thread's clock, which the sweep moves
     * once a second, so it may be a second behind: hence two. */
    uint32_t end = c->fe.deadline ? c->fe.deadline : t->fe.now + cfg->c2s.handshake_timeout;
    uint64_t left = end > t->fe.now + 2 ? (uint64_t)(end - t->fe.now - 2) * 1000000 : 0;
    int64_t wait = limit_login(c->peer_hash, now, cfg->c2s.login_rate, cfg->c2s.login_burst, left);
    if (wait < 0) {
        char a[NET_ADDR_TEXT];
        LOG_RL(LOG_LEVEL_WARN, "conn %u: %s logs in too fast to have a turn in time", c->fe.slot,
               net_addr_text(&c->fe.peer, a));
        send_failure(c, SASL_TEMPORARY_AUTH_FAILURE);
    } else if (wait == 0) {
        start(c, mech, text);
    } else if (!defer(c, now + (uint64_t)wait, mech, text)) {
        send_failure(c, SASL_TEMPORARY_AUTH_FAILURE);
    }
}

void auth_wake(struct fe_thread *ft)
{
    struct c2s_thread *t = (struct c2s_thread *)ft;
    uint64_t now = limit_now_us();
    while (t->nwaits && t->waits[0].at <= now) {
        struct auth_wait w = wait_pop(t);
        struct conn *c = conn_by_id(t, w.conn);
        /* Still waiting: not closed, and its slot not reused, meanwhile. */
        if (c && c->fe.state == CONN_SASL && (c->fe.flags & FE_F_WAIT) && !c->sasl) {
            c->fe.flags &= (uint16_t)~FE_F_WAIT;
            c->fe.state = FE_OPEN;
            start(c, w.auth, w.auth + strlen(w.auth) + 1);
            fe_input(&c->fe, NULL, 0); /* anything the client sent meanwhile */
        }
        free(w.auth);
    }
    if (t->nwaits)
        fe_wake_at(&t->fe, t->waits[0].at);
}

void auth_waits_free(struct c2s_thread *t)
{
    for (uint32_t i = 0; i < t->nwaits; i++)
        free(t->waits[i].auth);
    free(t->waits);
    t->waits = NULL;
    t->nwaits = t->waits_cap = 0;
}

void auth_stanza(struct conn *c, const struct xml_event *ev)
{
    struct sasl_event se;
    enum sasl_ev k;
    bool is_auth = ev->name.len == 4 && !memcmp(ev->name.p, "auth", 4);
    bool is_response = ev->name.len == 8 && !memcmp(ev->name.p, "response", 8);
    bool is_abort = ev->name.len == 5 && !memcmp(ev->name.p, "abort", 5);

    if (is_abort) {
        if (!c->sasl) {
            fe_puts(&c->fe, "<failure xmlns='" NS_SASL "'><aborted/></failure>");
            return;
        }
        k = sasl_fail(c->sasl, SASL_ABORTED, &se);
        handle(c, k, &se);
        return;
    }
    if (!is_auth && !is_response) {
        fe_stream_error(&c->fe, "unsupported-stanza-type");
        return;
    }
    if (is_response && !c->sasl) {
        fe_puts(&c->fe, "<failure xmlns='" NS_SASL "'><malformed-request/></failure>");
        return;
    }
    struct xml_node *n = xml_tree_parse(&c->fe.xp, ev->raw.p, ev->raw.len, &c->fe.t->arena, c->fe.t->scratch,
                                        sizeof c->fe.t->scratch);
    const char *text = n ? xml_node_text(n, &c->fe.t->arena) : NULL;
    if (!text) {
        fe_stream_error(&c->fe, "internal-server-error");
    } else if (is_response) {
        k = sasl_step(c->sasl, text, strlen(text), &se);
        handle(c, k, &se);
    } else {
        const char *mech = xml_node_attr(n, "mechanism");
        if (c->sasl)
            end_exchange(c); /* a new <auth/> starts over (RFC 6120 §6.4.2) */
        login(c, mech ? mech : "", text);
    }
    arena_reset(&c->fe.t->arena);
}
