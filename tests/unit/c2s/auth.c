/* Unit tests of c2s/auth.c: SASL negotiation (RFC 6120 §6) on a c2s thread without
 * sockets (ct.h), with the real store and PLAIN worker: success and the stream restart,
 * failures and their conditions, the five-failure limit, logins whose client leaves
 * meanwhile, and the limits on logins (c2s.login_rate, c2s.auth_failures_per_*,
 * c2s.max_plain_pending). */
#include "ct.h"

#include <errno.h>

#define FAILURE(cond) "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><" cond "/></failure>"
#define SUCCESS       "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define AUTH(mech, text)                                                                           \
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" mech "'>" text "</auth>"

static struct ct ct;

/* A connection that has read our features. */
static struct conn *opened(void)
{
    struct conn *c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    ct_out(&ct, c);
    return c;
}

/* PLAIN (RFC 4616): <success/>, the account's normalised localpart, and after the
 * client's new header (RFC 6120 §6.4.6) a fresh stream whose features are binding's. */
static void plain_success(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = opened();
    ct_send(&ct, c, ct_plain("Alice", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    CHECK(c->fe.flags & CONN_F_AUTHED);
    CHECK_STR(c->user, "alice");
    CHECK(c->sasl == NULL);
    CHECK_INT(c->fe.state, ==, FE_HEADER);
    ct_send(&ct, c, CT_HEADER);
    const char *out = ct_out(&ct, c);
    CT_HAS(out, "<?xml version='1.0'?><stream:stream ");
    CT_HAS(out, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>");
    CT_LACKS(out, "<mechanisms");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    CHECK_INT(c->auth_failures, ==, 0);
    CHECK_INT(ct_frames_skip(&ct), ==, 0);

    /* Without an initial response: an empty challenge, then the response. */
    c = opened();
    ct_send(&ct, c, AUTH("PLAIN", ""));
    CHECK_STR(ct_out(&ct, c), "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</challenge>");
    CHECK_INT(c->fe.state, ==, CONN_SASL);
    const char *auth = ct_plain("alice", CT_PASSWORD);
    char resp[256];
    const char *b64 = strchr(auth, '>') + 1;
    snprintf(resp, sizeof resp,
             "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%.*s</response>",
             (int)(strchr(b64, '<') - b64), b64);
    ct_send(&ct, c, resp);
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    CHECK(c->fe.flags & CONN_F_AUTHED);

    /* A client that sends its new header right behind its <auth/> (before <success/>)
     * gets it read as the new stream, once the login is through. */
    c = opened();
    char both[1024];
    snprintf(both, sizeof both, "%s%s", ct_plain("alice", CT_PASSWORD), CT_HEADER);
    ct_send(&ct, c, both);
    out = ct_out(&ct, c);
    CT_HAS(out, SUCCESS "<?xml version='1.0'?><stream:stream ");
    CT_HAS(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    ct_close(&ct);
}

struct fail_case {
    const char *file;
    int line;
    const char *in;
    const char *answer;
};

/* Each failure has its condition (RFC 6120 §6.5); the stream stays open for a retry. */
static void failures(void)
{
    static const struct fail_case cases[] = {
        /* "\0alice\0wrong": a wrong password */
        {CT_ROW, AUTH("PLAIN", "AGFsaWNlAHdyb25n"), FAILURE("not-authorized")},
        /* "\0nobody\0secret": no such account, the same answer */
        {CT_ROW, AUTH("PLAIN", "AG5vYm9keQBzZWNyZXQ="), FAILURE("not-authorized")},
        {CT_ROW, AUTH("DIGEST-MD5", ""), FAILURE("invalid-mechanism")},
        {CT_ROW, AUTH("", "="), FAILURE("invalid-mechanism")},
        {CT_ROW, AUTH("PLAIN", "!!!not base64"), FAILURE("incorrect-encoding")},
        /* "bob@localhost\0alice\0secret": alice may not speak for bob */
        {CT_ROW, AUTH("PLAIN", "Ym9iQGxvY2FsaG9zdABhbGljZQBzZWNyZXQ="), FAILURE("invalid-authzid")},
        {CT_ROW, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>=</response>",
         FAILURE("malformed-request")},
        {CT_ROW, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", FAILURE("aborted")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct fail_case *k = &cases[i];
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = opened();
        ct_send(&ct, c, k->in);
        const char *out = ct_out(&ct, c);
        if (strcmp(out, k->answer) != 0)
            TEST_FAIL("case at %s:%d: expected '%s', got '%s'", k->file, k->line, k->answer, out);
        if (c->fe.state != FE_OPEN || (c->fe.flags & (CONN_F_AUTHED | FE_F_WAIT)) || c->sasl)
            TEST_FAIL("case at %s:%d: state %u flags %#x", k->file, k->line, c->fe.state, c->fe.flags);
        /* and the next attempt may succeed */
        ct_send(&ct, c, ct_plain("alice", CT_PASSWORD));
        if (strcmp(ct_out(&ct, c), SUCCESS) != 0)
            TEST_FAIL("case at %s:%d: no success after it", k->file, k->line);
        ct_close(&ct);
    }
    /* A SASL element that is none of auth, response, abort ends the stream. */
    ct_open(&ct, 1);
    struct conn *c = opened();
    ct_send(&ct, c, SUCCESS);
    CHECK(ct_stream_error(ct_out(&ct, c), "unsupported-stanza-type"));
    ct_close(&ct);
}

/* SCRAM through auth.c: the credentials come from the store, the first challenge goes
 * out and the exchange waits for the client; a wrong proof fails, an <abort/> aborts. */
static void scram_exchange(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = opened();
    /* n,,n=alice,r=rOprNGfwEbeRWgbNEkqO */
    ct_send(&ct, c, AUTH("SCRAM-SHA-256", "biwsbj1hbGljZSxyPXJPcHJOR2Z3RWJlUldnYk5Fa3FP"));
    const char *out = ct_out(&ct, c);
    CT_HAS(out, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
    CHECK_INT(c->fe.state, ==, CONN_SASL);
    CHECK(c->sasl != NULL && !(c->fe.flags & FE_F_WAIT));
    ct_send(&ct, c, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK_STR(ct_out(&ct, c), FAILURE("aborted"));
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    CHECK(c->sasl == NULL);

    ct_send(&ct, c, AUTH("SCRAM-SHA-1", "biwsbj1hbGljZSxyPXJPcHJOR2Z3RWJlUldnYk5Fa3FP"));
    CT_HAS(ct_out(&ct, c), "<challenge ");
    /* c=biws,r=<not the nonce>,p=<junk> */
    ct_send(&ct, c,
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "Yz1iaXdzLHI9eHl6LHA9QUFBQQ==</response>");
    out = ct_out(&ct, c);
    CT_HAS(out, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    CHECK(!(c->fe.flags & CONN_F_AUTHED));
    /* A new <auth/> in the middle of an exchange starts over (RFC 6120 §6.4.2). */
    ct_send(&ct, c, AUTH("SCRAM-SHA-256", "biwsbj1hbGljZSxyPXJPcHJOR2Z3RWJlUldnYk5Fa3FP"));
    CT_HAS(ct_out(&ct, c), "<challenge ");
    ct_send(&ct, c, ct_plain("alice", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    ct_close(&ct);
}

/* RFC 6120 §6.4.5: a stream gets five failures, then a policy-violation. An abort is
 * not a failure; a refused mechanism is. */
static void five_failures(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = opened();
    for (int i = 0; i < 3; i++) {
        ct_send(&ct, c, ct_plain("alice", "wrong"));
        CHECK_STR(ct_out(&ct, c), FAILURE("not-authorized"));
    }
    ct_send(&ct, c, AUTH("PLAIN", ""));
    ct_send(&ct, c, "<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    ct_out(&ct, c);
    ct_send(&ct, c, AUTH("X-NONE", ""));
    CHECK_STR(ct_out(&ct, c), FAILURE("invalid-mechanism"));
    CHECK_INT(c->auth_failures, ==, 4);
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    ct_send(&ct, c, ct_plain("alice", "wrong"));
    const char *out = ct_out(&ct, c);
    CT_HAS(out, FAILURE("not-authorized") "<stream:error><policy-violation ");
    CHECK(ct_stream_error(out, "policy-violation"));
    CHECK_INT(c->fe.state, ==, FE_CLOSING);
    ct_close(&ct);
}

/* Polls the store only (the worker's completions stay queued) until cond holds. */
#define STORE_UNTIL(cond)                                                                          \
    do {                                                                                           \
        for (int i_ = 0; i_ < 5000 && !(cond); i_++) {                                             \
            store_poll(ct.t.store);                                                                \
            usleep(1000);                                                                          \
        }                                                                                          \
        CHECK(cond);                                                                               \
    } while (0)

/* A client that leaves while its login waits for the store or the worker: the answer
 * finds no connection (or a new one in its slot, which it must not touch), and the
 * machine the worker held is freed. */
static void client_leaves_mid_login(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    /* waiting for the store */
    struct conn *c = opened();
    fe_input(&c->fe, ct_plain("alice", CT_PASSWORD), strlen(ct_plain("alice", CT_PASSWORD)));
    CHECK(c->fe.flags & FE_F_WAIT);
    CHECK_INT(store_client_pending(ct.t.store), ==, 1);
    ct_drop(c);
    struct conn *n = opened();
    CHECK(n == c);
    ct_settle(&ct);
    CHECK_STR(ct_out(&ct, n), "");
    CHECK(!(n->fe.flags & CONN_F_AUTHED));
    ct_drop(n);

    /* waiting for the worker */
    c = opened();
    fe_input(&c->fe, ct_plain("alice", CT_PASSWORD), strlen(ct_plain("alice", CT_PASSWORD)));
    STORE_UNTIL(ct.t.verify_pending == 1);
    CHECK(c->sasl == NULL && (c->fe.flags & FE_F_WAIT));
    ct_drop(c);
    n = opened();
    ct_settle(&ct);
    CHECK_INT(ct.t.verify_pending, ==, 0);
    CHECK_STR(ct_out(&ct, n), "");
    CHECK(!(n->fe.flags & CONN_F_AUTHED) && n->sasl == NULL);
    ct_close(&ct);
}

/* c2s.max_plain_pending: a PLAIN login beyond it fails at once (temporary), rather than
 * queue behind the worker. */
static void plain_pending_limit(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.max_plain_pending = 1;
    ct_account(&ct, "alice");
    struct conn *a = opened(), *b = opened();
    const char *auth = ct_plain("alice", CT_PASSWORD);
    fe_input(&a->fe, auth, strlen(auth));
    STORE_UNTIL(ct.t.verify_pending == 1);
    fe_input(&b->fe, auth, strlen(auth));
    STORE_UNTIL(store_client_pending(ct.t.store) == 0);
    CHECK_STR(ct_out(&ct, b), FAILURE("temporary-auth-failure"));
    ct_settle(&ct);
    CHECK_STR(ct_out(&ct, a), SUCCESS);
    /* the worker is free again */
    ct_send(&ct, b, auth);
    CHECK_STR(ct_out(&ct, b), SUCCESS);
    ct_close(&ct);
}

/* c2s.login_rate: a burst beyond c2s.login_burst waits for its turn on the wake-up
 * timer, holding its input, and is not refused; one whose turn would come too close to
 * its handshake deadline is refused (temporary). */
static void login_pacing(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.login_rate = 10; /* a turn every 100 ms: far more than a login takes */
    ct.cfg->c2s.login_burst = 1;
    ct_account(&ct, "alice");
    const char *auth = ct_plain("alice", CT_PASSWORD);
    struct conn *a = opened(), *b = opened();
    ct_send(&ct, a, auth);
    CHECK_STR(ct_out(&ct, a), SUCCESS);
    ct_send(&ct, b, auth);
    CHECK_STR(ct_out(&ct, b), "");
    CHECK_INT(b->fe.state, ==, CONN_SASL);
    CHECK(b->fe.flags & FE_F_WAIT);
    CHECK_INT(ct.t.nwaits, ==, 1);
    CHECK(ct.t.fe.wake_at != 0);
    /* what the client sends meanwhile waits too */
    ct_send(&ct, b, CT_HEADER);
    CHECK_STR(ct_out(&ct, b), "");
    ct_wake(&ct);
    const char *out = ct_out(&ct, b);
    CT_HAS(out, SUCCESS "<?xml version='1.0'?><stream:stream ");
    CT_HAS(out, "<bind ");
    CHECK_INT(ct.t.nwaits, ==, 0);

    /* A client that leaves while it waits: its turn starts nothing, not even in the new
     * connection in its slot. */
    struct conn *c = opened();
    ct_send(&ct, c, auth);
    CHECK_INT(ct.t.nwaits, ==, 1);
    ct_drop(c);
    struct conn *n = opened();
    CHECK(n == c);
    ct_wake(&ct);
    CHECK_STR(ct_out(&ct, n), "");
    CHECK(!(n->fe.flags & CONN_F_AUTHED));
    CHECK_INT(n->fe.state, ==, FE_OPEN);
    CHECK_INT(ct.t.nwaits, ==, 0);

    /* A turn that would come after the handshake deadline (less two seconds) is refused. */
    ct.cfg->c2s.login_rate = 1;
    ct.peer = ct_fresh_peer();
    c = opened();
    ct_send(&ct, c, auth); /* takes the address's turn now */
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    c = opened();
    c->fe.deadline = ct.t.fe.now + 2;
    ct_send(&ct, c, auth);
    CHECK_STR(ct_out(&ct, c), FAILURE("temporary-auth-failure"));
    CHECK_INT(ct.t.nwaits, ==, 0);
    ct_close(&ct);
}

/* c2s.auth_failures_per_account and _per_address: once an account has failed its share
 * within the window, even the right password is refused (temporary-auth-failure) before
 * its credentials are fetched; once an address has failed on its share of accounts,
 * every login from it is. Other accounts and addresses are not affected. */
static void failure_limits(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.auth_failures_per_account = 3;
    ct_account(&ct, "alice");
    ct_account(&ct, "bob");
    for (int i = 0; i < 3; i++) {
        struct conn *c = opened();
        ct_send(&ct, c, ct_plain("alice", "wrong"));
        CHECK_STR(ct_out(&ct, c), FAILURE("not-authorized"));
    }
    /* refusals that tested no password are not charged */
    struct conn *c = opened();
    ct_send(&ct, c, AUTH("PLAIN", "!!"));
    CHECK_STR(ct_out(&ct, c), FAILURE("incorrect-encoding"));
    ct_send(&ct, c, ct_plain("alice", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), FAILURE("temporary-auth-failure"));
    CHECK_INT(store_client_pending(ct.t.store), ==, 0);
    ct_send(&ct, c, ct_plain("bob", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    ct_close(&ct);

    ct_open(&ct, 1);
    ct.cfg->c2s.auth_failures_per_address = 2;
    ct_account(&ct, "alice");
    ct_account(&ct, "bob");
    ct_account(&ct, "carol");
    c = opened();
    /* the same account twice counts once for the address */
    ct_send(&ct, c, ct_plain("alice", "wrong"));
    ct_send(&ct, c, ct_plain("alice", "wrong"));
    ct_send(&ct, c, ct_plain("carol", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), FAILURE("not-authorized") FAILURE("not-authorized") SUCCESS);
    c = opened();
    ct_send(&ct, c, ct_plain("bob", "wrong"));
    ct_send(&ct, c, ct_plain("carol", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), FAILURE("not-authorized") FAILURE("temporary-auth-failure"));
    ct.peer = ct_fresh_peer(); /* another address */
    c = opened();
    ct_send(&ct, c, ct_plain("carol", CT_PASSWORD));
    CHECK_STR(ct_out(&ct, c), SUCCESS);
    ct_close(&ct);
}

int main(void)
{
    RUN(plain_success);
    RUN(failures);
    RUN(scram_exchange);
    RUN(five_failures);
    RUN(client_leaves_mid_login);
    RUN(plain_pending_limit);
    RUN(login_pacing);
    RUN(failure_limits);
    return test_done("auth");
}
