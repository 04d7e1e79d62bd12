/*
 * auth.c: SASL negotiation (RFC 6120 §6) around the sasl core, which does the
 * mechanisms. This file advertises them (with XEP-0440 channel-binding types), turns
 * <auth/>, <response/> and <abort/> into core calls, fetches stored credentials from
 * the store asynchronously (the connection holds its input meanwhile), limits logins
 * per client address, and restarts the stream on success.
 *
 * Five failures end the stream (RFC 6120 §6.4.5: at least two retries, at most five).
 * Clients that predate XEP-0440 spend two on -PLUS attempts over TLS 1.3 (sasl.c).
 */
#include "c2s/c2s.h"
#include "common/creds.h"
#include "common/log.h"
#include "common/sasl.h"
#include "common/store.h"
#include "common/tls.h"
#include "common/worker.h"
#include "common/xml_tree.h"

#include <errno.h>
#include <pthread.h>
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
    st->active = (c->flags & CONN_F_TLS) || c->t->cfg->c2s.allow_plain_without_tls;
    if (!(c->flags & CONN_F_TLS))
        return;
    if (tls_cb_exporter(c->tls, st->exporter) == 0)
        st->cb |= SASL_CB_TLS_EXPORTER;
    if (tls_cb_server_end_point(c->tls, st->end_point, &st->end_point_len) == 0)
        st->cb |= SASL_CB_TLS_SERVER_END_POINT;
    if (tls_cb_unique(c->tls, st->unique, &st->unique_len) == 0)
        st->cb |= SASL_CB_TLS_UNIQUE;
}

void auth_features(struct conn *c, struct buf *b)
{
    struct sasl_tls st;
    transport(c, &st);
    unsigned mechs = sasl_offer(c->t->sasl_cfg, &st);
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
    c->flags &= (uint16_t)~CONN_F_WAIT;
    if (c->state == CONN_SASL)
        c->state = CONN_OPEN;
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
    struct c2s_thread *t = c2s_current;
    struct conn *c = t ? conn_by_id(t, j->conn) : NULL;
    if (c && !c->sasl && (c->flags & CONN_F_WAIT)) {
        c->sasl = j->sasl;
        c->flags &= (uint16_t)~CONN_F_WAIT;
        struct sasl_event ev;
        enum sasl_ev k = sasl_resume(c->sasl, &ev);
        handle(c, k, &ev);
        stream_input(c, NULL, 0); /* anything the client sent meanwhile */
    } else {
        sasl_wipe(j->sasl); /* the client left meanwhile */
        free(j->sasl);
    }
    free(j);
}

/* Acts on what the core said. */
static void handle(struct conn *c, enum sasl_ev k, const struct sasl_event *ev)
{
    struct buf b = {0};
    switch (k) {
    case SASL_EV_CHALLENGE:
        buf_puts(&b, "<challenge xmlns='" NS_SASL "'>");
        buf_append(&b, ev->text, ev->len);
        buf_puts(&b, "</challenge>");
        conn_write(c, buf_data(&b), buf_used(&b));
        c->state = CONN_SASL;
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
        conn_write(c, buf_data(&b), buf_used(&b));
        end_exchange(c);
        if (!user) {
            stream_error(c, "internal-server-error");
            break;
        }
        free(c->user);
        c->user = user;
        c->flags |= CONN_F_AUTHED;
        LOG_DEBUG("conn %u: authenticated as %s", c->slot, user);
        stream_restart(c); /* RFC 6120 §6.4.6: the client opens a new stream */
        break;
    }
    case SASL_EV_FAILURE:
        buf_puts(&b, "<failure xmlns='" NS_SASL "'><");
        buf_puts(&b, sasl_cond_name(ev->cond));
        buf_puts(&b, "/></failure>");
        conn_write(c, buf_data(&b), buf_used(&b));
        end_exchange(c);
        if (ev->cond != SASL_ABORTED && ++c->auth_failures >= MAX_FAILURES)
            stream_error(c, "policy-violation");
        break;
    case SASL_EV_NEED_CREDS: {
        c->state = CONN_SASL;
        c->flags |= CONN_F_WAIT;
        /* The connection's id, not a pointer: it may be gone when the answer comes. */
        uintptr_t id = (uintptr_t)conn_id(c);
        if (store_creds_get(c->t->store, ev->user, on_creds, (void *)id) < 0) {
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
        struct verify_job *j = malloc(sizeof *j);
        if (!j) {
            struct sasl_event fe;
            enum sasl_ev fk = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &fe);
            handle(c, fk, &fe);
            break;
        }
        j->job.run = verify_run;
        j->job.done = verify_done;
        j->conn = conn_id(c);
        j->sasl = c->sasl;
        c->sasl = NULL;
        c->state = CONN_SASL;
        c->flags |= CONN_F_WAIT;
        worker_submit(c->t->verify, &j->job);
        break;
    }
    }
    buf_free(&b);
}

static void on_creds(void *arg, int res, const struct store_creds *sc)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    struct c2s_thread *t = c2s_current;
    struct conn *c = t ? conn_by_id(t, id) : NULL;
    if (!c || !c->sasl || !(c->flags & CONN_F_WAIT))
        return;
    c->flags &= (uint16_t)~CONN_F_WAIT;
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
    stream_input(c, NULL, 0); /* anything the client sent meanwhile */
}

/* A token bucket per client address, for the whole process (SO_REUSEPORT spreads one
 * address's connections over every thread): an address that logs in more than
 * c2s.login_rate times a second gets temporary-auth-failure. The table is lossy (one
 * bucket per hash slot, a colliding address takes it over) and bounded. A login is
 * rare next to a message, so a mutex here costs nothing that matters. */
#define LOGIN_BUCKETS 4096
static struct {
    pthread_mutex_t lock;
    struct {
        uint32_t addr, tokens, stamp;
    } b[LOGIN_BUCKETS];
} logins = {.lock = PTHREAD_MUTEX_INITIALIZER};

bool auth_login_allowed(const struct c2s_thread *t, uint32_t peer_hash)
{
    uint32_t rate = t->cfg->c2s.login_rate, now = t->now;
    if (!rate)
        return true;
    pthread_mutex_lock(&logins.lock);
    __typeof__(logins.b[0]) *lb = &logins.b[peer_hash % LOGIN_BUCKETS];
    /* Threads' coarse clocks may disagree by a tick: never count time backwards. */
    int32_t dt = (int32_t)(now - lb->stamp);
    if (lb->addr != peer_hash || dt > 60) {
        lb->addr = peer_hash;
        lb->tokens = rate;
        lb->stamp = now;
    } else if (dt > 0) {
        uint64_t tok = lb->tokens + (uint64_t)dt * rate;
        lb->tokens = (uint32_t)(tok > rate ? rate : tok);
        lb->stamp = now;
    }
    bool ok = lb->tokens > 0;
    if (ok)
        lb->tokens--;
    pthread_mutex_unlock(&logins.lock);
    return ok;
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
            conn_puts(c, "<failure xmlns='" NS_SASL "'><aborted/></failure>");
            return;
        }
        k = sasl_fail(c->sasl, SASL_ABORTED, &se);
        handle(c, k, &se);
        return;
    }
    if (!is_auth && !is_response) {
        stream_error(c, "unsupported-stanza-type");
        return;
    }
    if (is_response && !c->sasl) {
        conn_puts(c, "<failure xmlns='" NS_SASL "'><malformed-request/></failure>");
        return;
    }
    struct xml_node *n = xml_tree_parse(&c->xp, ev->raw.p, ev->raw.len, &c->t->arena, c->t->scratch,
                                        sizeof c->t->scratch);
    const char *text = n ? xml_node_text(n, &c->t->arena) : NULL;
    if (!text) {
        stream_error(c, "internal-server-error");
        goto out;
    }
    if (is_response) {
        k = sasl_step(c->sasl, text, strlen(text), &se);
    } else {
        const char *mech = xml_node_attr(n, "mechanism");
        if (c->sasl)
            end_exchange(c); /* a new <auth/> starts over (RFC 6120 §6.4.2) */
        c->sasl = malloc(sizeof *c->sasl);
        if (!c->sasl) {
            conn_puts(c, "<failure xmlns='" NS_SASL "'><temporary-auth-failure/></failure>");
            goto out;
        }
        struct sasl_tls st;
        transport(c, &st);
        sasl_init(c->sasl, c->t->sasl_cfg, &st);
        if (!auth_login_allowed(c->t, c->peer_hash)) {
            LOG_RL(LOG_LEVEL_WARN, "conn %u: login rate exceeded for its address", c->slot);
            k = sasl_fail(c->sasl, SASL_TEMPORARY_AUTH_FAILURE, &se);
        } else {
            k = sasl_start(c->sasl, mech ? mech : "", mech ? strlen(mech) : 0, text, strlen(text),
                           &se);
        }
    }
    if (k == SASL_EV_NEED_CREDS)
        c->sasl_hash = (uint8_t)se.hash;
    handle(c, k, &se);
out:
    arena_reset(&c->t->arena);
}
