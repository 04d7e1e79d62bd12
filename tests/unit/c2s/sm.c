/* Unit tests of c2s/sm.c and c2s/csi.c on a c2s thread without sockets (ct.h) whose router
 * is the test: XEP-0198's counts both ways and the queue they trim, the end of a session
 * with stanzas never acknowledged (the unbind, then PROTO_SM_ORPHAN for the messages and
 * iq requests only), parking a session whose connection drops (no unbind; deliveries to
 * its id wait), the handoff to a new connection (PROTO_SM_TAKEOVER answered with the
 * queue, <resumed/> with what the client's h left), a failed resumption, and XEP-0352's
 * holding of presence and chat states, the latest per sender. */
#include "ct.h"

#include "common/xmpp/jid.h"

#include <errno.h>

#define NS_SM "urn:xmpp:sm:3"
#define ME    "alice@localhost/phone"

static struct ct ct;

static void deliver(struct conn *c, const char *stanza)
{
    uint64_t id = fe_conn_id(&c->fe);
    ct_deliver(&ct, ct_shard_of(&ct, c->key), &id, NULL, 1, stanza, 0);
}

static void deliver_id(uint64_t id, unsigned shard, const char *stanza)
{
    ct_deliver(&ct, shard, &id, NULL, 1, stanza, 0);
}

#define MSG(n) "<message from='bob@localhost/x' to='" ME "' type='chat'><body>" n "</body></message>"

/* A bound connection with SM enabled (resume asked): its <enabled/> read, its token the
 * router got (PROTO_SM_ENABLE) copied to token. */
static struct conn *enabled(uint8_t *token)
{
    struct conn *c = ct_bound(&ct, "alice", "phone");
    ct_send(&ct, c, "<enable xmlns='" NS_SM "' resume='true'/>");
    const char *out = ct_out(&ct, c);
    CHECK(strstr(out, "<enabled xmlns='" NS_SM "' id='") && strstr(out, "resume='true' max='300'"));
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_ENABLE);
    struct proto_sm_token t;
    memcpy(&t, buf_data(&ct.f.bytes), sizeof t);
    CHECK(t.conn == fe_conn_id(&c->fe) && t.key == c->key && t.bare_len == 15);
    char hex[2 * PROTO_SM_TOKEN_LEN + 1];
    for (unsigned i = 0; i < PROTO_SM_TOKEN_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", t.token[i]);
    CHECK(strstr(out, hex) != NULL);
    memcpy(token, t.token, PROTO_SM_TOKEN_LEN);
    return c;
}

static void counts(void)
{
    uint8_t token[PROTO_SM_TOKEN_LEN];
    ct_open(&ct, 2);
    ct_account(&ct, "alice");
    struct conn *c = enabled(token);
    ct_send(&ct, c, "<r xmlns='" NS_SM "'/>");
    CHECK_STR(ct_out(&ct, c), "<a xmlns='" NS_SM "' h='0'/>");
    /* Two stanzas handled (routed), then asked. */
    ct_send(&ct, c, "<message to='bob@localhost'><body>1</body></message><presence/>");
    CHECK_INT(ct_frames_skip(&ct), ==, 2);
    ct_send(&ct, c, "<r xmlns='" NS_SM "'/>");
    CHECK_STR(ct_out(&ct, c), "<a xmlns='" NS_SM "' h='2'/>");
    /* Three sent; the first two acknowledged. */
    deliver(c, MSG("a"));
    deliver(c, MSG("b"));
    deliver(c, "<iq from='bob@localhost/x' to='" ME "' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK_STR(ct_out(&ct, c), MSG("a") MSG("b")
              "<iq from='bob@localhost/x' to='" ME "' type='get' id='q'><ping xmlns='urn:xmpp:ping'/></iq>");
    ct_send(&ct, c, "<a xmlns='" NS_SM "' h='1'/>");
    deliver(c, "<presence from='bob@localhost/x' to='" ME "'/>");
    ct_out(&ct, c);
    /* The client's close ends the session: unbind, then the message and the iq it never
     * acknowledged (the presence has nothing to go back to). */
    ct_send(&ct, c, "</stream:stream>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND);
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_ORPHAN);
    CHECK_SPAN(ct.f.st.raw, ct.f.st.h.stanza_len, MSG("b"));
    CHECK_SPAN(ct.f.st.from, ct.f.st.h.from_len, "bob@localhost/x");
    CHECK_SPAN(ct.f.st.to, ct.f.st.h.to_len, ME);
    CHECK(ct.f.st.h.kind == PROTO_MESSAGE && ct.f.st.h.type == PROTO_MSG_CHAT);
    CHECK(ct.f.st.h.to_key == jid_hash("alice@localhost", 15));
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_ORPHAN && ct.f.st.h.kind == PROTO_IQ);
    CHECK(!ct_frame(&ct));
    CHECK_STR(ct_out(&ct, c), "</stream:stream>");
    ct_close(&ct);
}

static void acks_checked(void)
{
    uint8_t token[PROTO_SM_TOKEN_LEN];
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = enabled(token);
    /* The server asks once 8 stanzas wait. */
    for (int i = 0; i < 8; i++)
        deliver(c, MSG("x"));
    const char *out = ct_out(&ct, c);
    CHECK(strstr(out, "<r xmlns='" NS_SM "'/>") != NULL);
    ct_send(&ct, c, "<a xmlns='" NS_SM "' h='9'/>");
    CHECK(ct_stream_error(ct_out(&ct, c), "undefined-condition"));
    ct_close(&ct);
}

/* The connection drops: parked. Deliveries wait; the router's takeover gets them all. */
static void park_and_resume(void)
{
    uint8_t token[PROTO_SM_TOKEN_LEN];
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = enabled(token);
    uint64_t old = fe_conn_id(&c->fe);
    uint64_t key = c->key;
    ct_send(&ct, c, "<presence/>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_STANZA);
    deliver(c, MSG("1"));
    deliver(c, MSG("2"));
    ct_out(&ct, c);
    ct_drop(c); /* the socket failed: no unbind */
    CHECK(!ct_frame(&ct));
    CHECK(sm_parked(&ct.t, old) != NULL);
    deliver_id(old, 0, MSG("3"));

    /* A new connection asks to resume with h=1. */
    struct conn *n = ct_authed(&ct, "alice");
    char req[160];
    char hex[2 * PROTO_SM_TOKEN_LEN + 1];
    for (unsigned i = 0; i < PROTO_SM_TOKEN_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", token[i]);
    snprintf(req, sizeof req, "<resume xmlns='" NS_SM "' previd='%s' h='1'/>", hex);
    ct_send(&ct, n, req);
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_RESUME);
    struct proto_sm_token rt;
    memcpy(&rt, buf_data(&ct.f.bytes), sizeof rt);
    CHECK(rt.conn == fe_conn_id(&n->fe) && rt.key == key && !memcmp(rt.token, token, sizeof token));
    /* The router gives the session to n and asks the old one's thread. */
    struct proto_sm_takeover tk = {.conn = old, .to = rt.conn, .key = key};
    deliver_id(rt.conn, 0, MSG("4")); /* routed to n meanwhile: waits behind the queue */
    CHECK_STR(ct_out(&ct, n), "");
    ct_to_c2s(&ct, 0, PROTO_SM_TAKEOVER, &tk, sizeof tk);
    CHECK(sm_parked(&ct.t, old) == NULL);
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_HANDOFF);
    struct proto_sm_state h;
    memcpy(&h, buf_data(&ct.f.bytes), sizeof h);
    CHECK(h.result == 0 && h.conn == old && h.to == rt.conn && h.in_h == 1 && h.out_acked == 0);
    CHECK(h.out_sent == 3 && h.queue_len > 0); /* 1 and 2 sent, 3 parked */
    CHECK_SPAN(buf_data(&ct.f.bytes) + sizeof h, h.jid_len, ME);
    struct buf fwd = {0};
    buf_append(&fwd, buf_data(&ct.f.bytes), buf_used(&ct.f.bytes));
    ct_to_c2s(&ct, 0, PROTO_SM_RESUMED, buf_data(&fwd), buf_used(&fwd));
    buf_free(&fwd);
    const char *out = ct_out(&ct, n);
    char want[1024];
    snprintf(want, sizeof want,
             "<resumed xmlns='" NS_SM "' previd='%s' h='1'/>" MSG("2") MSG("3") MSG("4")
             "<r xmlns='" NS_SM "'/>",
             hex);
    CHECK_STR(out, want);
    CHECK(n->fe.flags & CONN_F_BOUND);
    CHECK_SPAN(n->jid, n->jid_len, ME);
    CHECK(!ct_frame(&ct));
    /* Its close ends the session: what it has not acknowledged (all three) goes back. */
    ct_send(&ct, n, "</stream:stream>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND && ct.f.s.h.conn == rt.conn);
    CHECK_INT(ct_frames_skip(&ct), ==, 3);
    ct_out(&ct, n);
    ct_close(&ct);
    sm_parks_free(&ct.t);
}

static void resume_failed(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *n = ct_authed(&ct, "alice");
    ct_send(&ct, n, "<resume xmlns='" NS_SM "' previd='nonsense' h='0'/>");
    CHECK_STR(ct_out(&ct, n), "<failed xmlns='" NS_SM "'><item-not-found "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    CHECK(!ct_frame(&ct));
    ct_send(&ct, n, "<resume xmlns='" NS_SM "' previd='00000000000000000000000000000000' h='0'/>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_SM_RESUME);
    struct proto_sm_state f = {.conn = fe_conn_id(&n->fe), .to = fe_conn_id(&n->fe),
                               .result = -ENOENT};
    ct_to_c2s(&ct, 0, PROTO_SM_RESUMED, &f, sizeof f);
    CHECK_STR(ct_out(&ct, n), "<failed xmlns='" NS_SM "'><item-not-found "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    /* It may bind now. */
    ct_bind(&ct, n, "desk");
    ct_close(&ct);
}

#define PRES(s) "<presence from='bob@localhost/x' to='" ME "'><status>" s "</status></presence>"
#define STATE(s)                                                                                   \
    "<message from='bob@localhost/x' to='" ME "' type='chat'><" s                                  \
    " xmlns='http://jabber.org/protocol/chatstates'/></message>"

static void csi(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = ct_bound(&ct, "alice", "phone");
    ct_send(&ct, c, "<inactive xmlns='urn:xmpp:csi:0'/>");
    deliver(c, PRES("1"));
    deliver(c, STATE("composing"));
    deliver(c, PRES("2"));
    deliver(c, "<presence from='carol@localhost/y' to='" ME "'/>");
    deliver(c, STATE("paused"));
    CHECK_STR(ct_out(&ct, c), "");
    /* A body goes at once, behind the latest of each. */
    deliver(c, MSG("now"));
    CHECK_STR(ct_out(&ct, c), PRES("2") "<presence from='carol@localhost/y' to='" ME "'/>"
                              STATE("paused") MSG("now"));
    /* A subscription request does not wait; <active/> sends what does. */
    deliver(c, PRES("3"));
    deliver(c, "<presence from='bob@localhost' to='" ME "' type='subscribe'/>");
    CHECK_STR(ct_out(&ct, c), PRES("3") "<presence from='bob@localhost' to='" ME "' type='subscribe'/>");
    deliver(c, PRES("4"));
    CHECK_STR(ct_out(&ct, c), "");
    ct_send(&ct, c, "<active xmlns='urn:xmpp:csi:0'/>");
    CHECK_STR(ct_out(&ct, c), PRES("4"));
    deliver(c, PRES("5"));
    CHECK_STR(ct_out(&ct, c), PRES("5"));
    ct_close(&ct);
}

int main(void)
{
    RUN(counts);
    RUN(acks_checked);
    RUN(park_and_resume);
    RUN(resume_failed);
    RUN(csi);
    return test_done("c2s sm");
}
