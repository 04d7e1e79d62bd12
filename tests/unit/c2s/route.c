/* Unit tests of c2s/route.c on a c2s thread without sockets (ct.h), the test playing the
 * router: stamping (RFC 6120 §8.1.2.1: `from` is ours, a client's own cut out; the
 * stream's prefix declarations a stanza uses), the routing fields of PROTO_STANZA (kind,
 * type, the normalised `to`, flags, head_len, priority), jid-malformed for a bad `to`,
 * PROTO_DELIVER written to the right connections with each one's `to`, and what a router
 * crash leaves: re-registration, the replay of what the dead router had not finished. */
#include "ct.h"

#include "common/xmpp/jid.h"

#define ME "alice@localhost/r"

static struct ct ct;

struct stamp_case {
    const char *file;
    int line;
    const char *in;
    const char *stamped; /* the stanza the router gets */
    uint8_t kind, type, flags;
    const char *to; /* normalised; NULL: none in the frame */
    int8_t priority;
};

static void check_frame(const struct stamp_case *k, const struct conn *c)
{
    if (!ct_frame(&ct) || ct.f.kind != PROTO_STANZA) {
        TEST_FAIL("case at %s:%d: no PROTO_STANZA", k->file, k->line);
        return;
    }
    const struct decode_stanza *f = &ct.f.st;
    const struct proto_stanza *h = &f->h;
    size_t to_len = k->to ? strlen(k->to) : 0;
    size_t to_bare = k->to ? strcspn(k->to, "/") : 0;
    const char *at = k->to ? memchr(k->to, '@', to_bare) : NULL;
    size_t doff = at ? (size_t)(at + 1 - k->to) : 0;
    if (h->stanza_len != strlen(k->stamped) || memcmp(f->raw, k->stamped, h->stanza_len))
        TEST_FAIL("case at %s:%d: stamped '%.*s', expected '%s'", k->file, k->line,
                  (int)h->stanza_len, f->raw, k->stamped);
    const char *gt = memchr(f->raw, '>', h->stanza_len);
    if (!gt || h->head_len != (uint32_t)(gt + 1 - f->raw))
        TEST_FAIL("case at %s:%d: head_len %u", k->file, k->line, h->head_len);
    if (h->kind != k->kind || h->type != k->type || h->flags != k->flags)
        TEST_FAIL("case at %s:%d: kind %u type %u flags %#x, expected %u %u %#x", k->file, k->line,
                  h->kind, h->type, h->flags, k->kind, k->type, k->flags);
    if (h->priority != k->priority)
        TEST_FAIL("case at %s:%d: priority %d, expected %d", k->file, k->line, h->priority,
                  k->priority);
    if (h->from_len != strlen(ME) || memcmp(f->from, ME, h->from_len) || h->from_bare_len != 15 ||
        h->key != jid_hash(ME, 15) || h->conn != fe_conn_id(&c->fe))
        TEST_FAIL("case at %s:%d: sender fields", k->file, k->line);
    if (h->to_len != to_len || (to_len && memcmp(f->to, k->to, to_len)) ||
        h->to_bare_len != to_bare || h->to_domain_off != (k->to ? doff : 0) ||
        h->to_domain_len != (k->to ? to_bare - doff : 0) ||
        h->to_key != (k->to ? jid_hash(k->to, to_bare) : 0))
        TEST_FAIL("case at %s:%d: to '%.*s' bare %u domain %u+%u, expected '%s'", k->file, k->line,
                  (int)h->to_len, f->to, h->to_bare_len, h->to_domain_off, h->to_domain_len,
                  k->to ? k->to : "(none)");
    if (ct.f.shard != ct_shard_of(&ct, h->key))
        TEST_FAIL("case at %s:%d: went to shard %u", k->file, k->line, ct.f.shard);
}

#define LOCAL     PROTO_STANZA_LOCAL
#define TO_SERVER (PROTO_STANZA_TO_SERVER | PROTO_STANZA_LOCAL)

/* A stanza from a bound client as the router gets it. */
static void stamping(void)
{
    static const struct stamp_case cases[] = {
        {CT_ROW, "<message to='bob@localhost' type='chat'><body>hi</body></message>",
         "<message from='" ME "' to='bob@localhost' type='chat'><body>hi</body></message>",
         PROTO_MESSAGE, PROTO_MSG_CHAT, LOCAL, "bob@localhost", 0},
        /* the client's own from, wherever it is and however quoted, is cut out */
        {CT_ROW, "<message from='mallory@evil.example/x' to='bob@localhost'/>",
         "<message from='" ME "'  to='bob@localhost'/>", PROTO_MESSAGE, PROTO_MSG_NORMAL, LOCAL,
         "bob@localhost", 0},
        {CT_ROW, "<message to='bob@localhost' from=\"a'>b\"><body/></message>",
         "<message from='" ME "' to='bob@localhost' ><body/></message>", PROTO_MESSAGE,
         PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<message\n\tfrom = 'x'\n\tto='bob@localhost'>x</message>",
         "<message from='" ME "'\n\t\n\tto='bob@localhost'>x</message>", PROTO_MESSAGE,
         PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
        /* `to` is normalised in the frame (the stanza keeps what the client wrote) */
        {CT_ROW, "<message to='BOB@LocalHost/Desk' type='groupchat'/>",
         "<message from='" ME "' to='BOB@LocalHost/Desk' type='groupchat'/>", PROTO_MESSAGE,
         PROTO_MSG_GROUPCHAT, LOCAL, "bob@localhost/Desk", 0},
        {CT_ROW, "<message to='juliet@example.org' type='headline'/>",
         "<message from='" ME "' to='juliet@example.org' type='headline'/>", PROTO_MESSAGE,
         PROTO_MSG_HEADLINE, 0, "juliet@example.org", 0},
        {CT_ROW, "<message type='error' to='example.org'/>",
         "<message from='" ME "' type='error' to='example.org'/>", PROTO_MESSAGE, PROTO_MSG_ERROR,
         0, "example.org", 0},
        /* §10.3.1: a message without `to` is for the sender's bare JID */
        {CT_ROW, "<message><body>note</body></message>",
         "<message from='" ME "'><body>note</body></message>", PROTO_MESSAGE, PROTO_MSG_NORMAL,
         LOCAL, "alice@localhost", 0},
        {CT_ROW, "<message to='alice@localhost'/>", "<message from='" ME "' to='alice@localhost'/>",
         PROTO_MESSAGE, PROTO_MSG_NORMAL, LOCAL, "alice@localhost", 0},
        /* the server: no `to`, our domain, or (an iq) the account's bare JID */
        {CT_ROW, "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>",
         "<iq from='" ME "' type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>", PROTO_IQ,
         PROTO_IQ_GET, TO_SERVER, NULL, 0},
        {CT_ROW, "<iq type='set' id='2' to='LOCALHOST'/>",
         "<iq from='" ME "' type='set' id='2' to='LOCALHOST'/>", PROTO_IQ, PROTO_IQ_SET, TO_SERVER,
         "localhost", 0},
        {CT_ROW, "<iq type='get' id='3' to='alice@localhost'/>",
         "<iq from='" ME "' type='get' id='3' to='alice@localhost'/>", PROTO_IQ, PROTO_IQ_GET,
         TO_SERVER, "alice@localhost", 0},
        {CT_ROW, "<iq type='result' id='4' to='alice@localhost/other'/>",
         "<iq from='" ME "' type='result' id='4' to='alice@localhost/other'/>", PROTO_IQ,
         PROTO_IQ_RESULT, LOCAL, "alice@localhost/other", 0},
        {CT_ROW, "<iq type='error' id='5' to='localhost/x'/>",
         "<iq from='" ME "' type='error' id='5' to='localhost/x'/>", PROTO_IQ, PROTO_IQ_ERROR,
         LOCAL, "localhost/x", 0},
        /* presence: broadcast with its priority (clamped), directed, subscriptions from the
         * bare JID (RFC 6121 §3.1.2) */
        {CT_ROW, "<presence><priority>5</priority></presence>",
         "<presence from='" ME "'><priority>5</priority></presence>", PROTO_PRESENCE,
         PROTO_PRES_AVAILABLE, TO_SERVER, NULL, 5},
        {CT_ROW, "<presence><priority>-300</priority></presence>",
         "<presence from='" ME "'><priority>-300</priority></presence>", PROTO_PRESENCE,
         PROTO_PRES_AVAILABLE, TO_SERVER, NULL, -128},
        {CT_ROW, "<presence><priority>1000</priority></presence>",
         "<presence from='" ME "'><priority>1000</priority></presence>", PROTO_PRESENCE,
         PROTO_PRES_AVAILABLE, TO_SERVER, NULL, 127},
        {CT_ROW, "<presence type='unavailable'/>", "<presence from='" ME "' type='unavailable'/>",
         PROTO_PRESENCE, PROTO_PRES_UNAVAILABLE, TO_SERVER, NULL, 0},
        {CT_ROW, "<presence to='room@muc.example.org/nick'><priority>3</priority></presence>",
         "<presence from='" ME "' to='room@muc.example.org/nick'><priority>3</priority></presence>",
         PROTO_PRESENCE, PROTO_PRES_AVAILABLE, 0, "room@muc.example.org/nick", 0},
        {CT_ROW, "<presence type='subscribe' to='bob@localhost'/>",
         "<presence from='alice@localhost' type='subscribe' to='bob@localhost'/>", PROTO_PRESENCE,
         PROTO_PRES_SUBSCRIBE, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<presence type='subscribed' to='bob@localhost' from='x'/>",
         "<presence from='alice@localhost' type='subscribed' to='bob@localhost' />", PROTO_PRESENCE,
         PROTO_PRES_SUBSCRIBED, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<presence type='unsubscribe' to='bob@localhost'/>",
         "<presence from='alice@localhost' type='unsubscribe' to='bob@localhost'/>", PROTO_PRESENCE,
         PROTO_PRES_UNSUBSCRIBE, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<presence type='unsubscribed' to='bob@localhost'/>",
         "<presence from='alice@localhost' type='unsubscribed' to='bob@localhost'/>",
         PROTO_PRESENCE, PROTO_PRES_UNSUBSCRIBED, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<presence type='probe' to='bob@localhost'/>",
         "<presence from='" ME "' type='probe' to='bob@localhost'/>", PROTO_PRESENCE,
         PROTO_PRES_PROBE, LOCAL, "bob@localhost", 0},
    };
    for (unsigned shards = 1; shards <= 2; shards++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            ct_open(&ct, shards);
            ct_account(&ct, "alice");
            struct conn *c = ct_bound(&ct, "alice", "r");
            ct_send(&ct, c, cases[i].in);
            const char *out = ct_out(&ct, c);
            if (*out)
                TEST_FAIL("case at %s:%d: answered '%s'", cases[i].file, cases[i].line, out);
            check_frame(&cases[i], c);
            CHECK(!ct_frame(&ct));
            ct_close(&ct);
        }
}

/* The stream's prefix declarations: a stanza that uses a prefix bound on the client's
 * header gets its declaration, so it stands alone at the router and at the recipient;
 * one that declares the prefix itself does not get a second one. */
static void stream_prefixes(void)
{
    static const struct stamp_case cases[] = {
        {CT_ROW, "<message to='bob@localhost'><e:x/></message>",
         "<message from='" ME "' xmlns:e='urn:example' to='bob@localhost'><e:x/></message>",
         PROTO_MESSAGE, PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<message to='bob@localhost' xmlns:e='urn:mine'><e:x/></message>",
         "<message from='" ME "' to='bob@localhost' xmlns:e='urn:mine'><e:x/></message>",
         PROTO_MESSAGE, PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<message to='bob@localhost'><body>none</body></message>",
         "<message from='" ME "' to='bob@localhost'><body>none</body></message>", PROTO_MESSAGE,
         PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
        {CT_ROW, "<message to='bob@localhost'><x xmlns:e='urn:inner'><e:y/></x><f:z/></message>",
         "<message from='" ME "' xmlns:f='urn:f' to='bob@localhost'><x xmlns:e='urn:inner'><e:y/>"
         "</x><f:z/></message>",
         PROTO_MESSAGE, PROTO_MSG_NORMAL, LOCAL, "bob@localhost", 0},
    };
    static const char header[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "xmlns:e='urn:example' xmlns:f='urn:f' to='localhost' version='1.0'>";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_authed_ex(&ct, "alice", header);
        ct_bind(&ct, c, "r");
        ct_send(&ct, c, cases[i].in);
        CHECK_STR(ct_out(&ct, c), "");
        check_frame(&cases[i], c);
        ct_close(&ct);
    }
}

/* A `to` that is no JID is the sender's error (RFC 6120 §8.3.3.8), and nothing is routed. */
static void bad_to(void)
{
    static const char *const tos[] = {"@localhost",       "bob@",    "a@b@c", "bob@localhost/",
                                      "bob@exa mple.org", "bob@[::1"};
    for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_bound(&ct, "alice", "r");
        char in[128], want[256];
        snprintf(in, sizeof in, "<message id='m1' to='%s'><body>x</body></message>", tos[i]);
        ct_send(&ct, c, in);
        snprintf(want, sizeof want,
                 "<message type='error' id='m1' from='%s' to='" ME "'><error type='modify'>"
                 "<jid-malformed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
                 tos[i]);
        const char *out = ct_out(&ct, c);
        if (strcmp(out, want) != 0)
            TEST_FAIL("to='%s': got '%s'", tos[i], out);
        if (ct_frame(&ct) || c->fe.state != FE_OPEN)
            TEST_FAIL("to='%s': routed, or state %u", tos[i], c->fe.state);
        ct_close(&ct);
    }
}

/* The last available presence is kept, to the byte, to register the session again after
 * a router restart; unavailable forgets it. Directed presence changes nothing. */
static void presence_kept(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = ct_bound(&ct, "alice", "r");
    ct_send(&ct, c, "<presence><show>away</show><priority>2</priority></presence>");
    ct_frames_skip(&ct);
    const char *kept = "<presence from='" ME "'><show>away</show><priority>2</priority></presence>";
    CHECK_SPAN(c->presence, c->presence_len, kept);
    CHECK(c->fe.flags & CONN_F_AVAILABLE);
    CHECK_INT(c->priority, ==, 2);
    ct_send(&ct, c, "<presence to='bob@localhost' type='unavailable'/>");
    CHECK_SPAN(c->presence, c->presence_len, kept);
    ct_send(&ct, c, "<presence type='unavailable'/>");
    CHECK(c->presence == NULL && c->presence_len == 0);
    CHECK(!(c->fe.flags & CONN_F_AVAILABLE));
    CHECK_INT(ct_frames_skip(&ct), ==, 2);
    ct_close(&ct);
}

/* PROTO_DELIVER: the stanza goes to each named connection of the thread that is bound,
 * with its own `to` inserted where the router says, or as is; a connection gone since
 * (its slot reused) or not bound gets nothing. */
static void delivery(void)
{
    ct_open(&ct, 2);
    ct_account(&ct, "alice");
    ct_account(&ct, "bob");
    struct conn *a = ct_bound(&ct, "alice", "r");
    struct conn *b1 = ct_bound(&ct, "bob", "one");
    struct conn *gone = ct_bound(&ct, "bob", "gone");
    uint64_t gone_id = fe_conn_id(&gone->fe);
    ct_drop(gone);
    ct_frames_skip(&ct);
    struct conn *unbound = ct_authed(&ct, "bob"); /* gone's slot, not bound */
    CHECK(unbound == gone);
    struct conn *b2 = ct_bound(&ct, "bob", "two");

    const char *st = "<message from='" ME "' type='chat'><body>hi &amp; bye</body></message>";
    uint32_t to_at = (uint32_t)strlen("<message");
    uint64_t ids[] = {fe_conn_id(&b1->fe), gone_id, fe_conn_id(&unbound->fe), fe_conn_id(&b2->fe), fe_conn_id(&a->fe)};
    const char *tos[] = {"bob@localhost/one", "bob@localhost/gone", "bob@localhost", NULL,
                         "it's <me>"};
    ct_deliver(&ct, 1, ids, tos, 5, st, to_at);
    CHECK_STR(ct_out(&ct, b1), "<message to='bob@localhost/one' from='" ME
                               "' type='chat'><body>hi &amp; bye</body></message>");
    CHECK_STR(ct_out(&ct, b2), st);
    CHECK_STR(ct_out(&ct, unbound), "");
    CHECK_STR(ct_out(&ct, a), "<message to='it&apos;s &lt;me&gt;' from='" ME
                              "' type='chat'><body>hi &amp; bye</body></message>");
    /* A malformed delivery (its recipients run past the frame) writes nothing. */
    struct proto_deliver h = {.nrcpt = 1000, .stanza_len = 4};
    char bad[sizeof h + sizeof(struct proto_rcpt) + 4];
    struct proto_rcpt r = {.conn = fe_conn_id(&b1->fe)};
    memcpy(bad, &h, sizeof h);
    memcpy(bad + sizeof h, &r, sizeof r);
    memcpy(bad + sizeof h + sizeof r, "<a/>", 4);
    ct_to_c2s(&ct, 0, PROTO_DELIVER, bad, sizeof bad);
    CHECK_STR(ct_out(&ct, b1), "");
    CHECK(!ct_frame(&ct));
    ct_close(&ct);
}

/* One frame the new router reads: what it is, for whom. */
static void expect(unsigned shard, uint16_t kind, uint64_t conn, const char *what)
{
    bool ok = ct_frame(&ct) && ct.f.shard == shard && ct.f.kind == kind &&
              (kind == PROTO_STANZA ? ct.f.st.h.conn : ct.f.s.h.conn) == conn;
    if (ok && kind == PROTO_STANZA)
        ok = memmem(ct.f.st.raw, ct.f.st.h.stanza_len, what, strlen(what)) != NULL;
    if (!ok)
        TEST_FAIL("expected %s (kind %u) on shard %u, got kind %u on shard %u", what, kind, shard,
                  ct.f.kind, ct.f.shard);
}

/* A router crash: what the dead router published is delivered; what it had read but not
 * finished, and what it never read, goes to the new one after the sessions are
 * registered again (each with its presence, priority and the state the router had
 * handed back), a bind under way is asked again, and input held meanwhile follows. */
static void router_restart(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    ct_account(&ct, "bob");
    ct_account(&ct, "carol");
    struct conn *a = ct_bound(&ct, "alice", "r");
    struct conn *b = ct_bound(&ct, "bob", "r");
    ct_send(&ct, a, "<presence><priority>3</priority></presence>");
    ct_frames_skip(&ct);
    static const char *const directed[] = {"room@muc.example.org/al", "dave@example.org"};
    ct_session_state(&ct, 0, fe_conn_id(&a->fe), PROTO_SESSION_ROSTER | PROTO_SESSION_CARBONS, directed, 2);
    struct conn *c = ct_authed(&ct, "carol");
    ct_send(&ct, c,
            "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>r</resource></bind></iq>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_BIND);

    ct_send(&ct, a, "<message to='bob@localhost'><body>m1</body></message>");
    CHECK(ct_frame_ex(&ct, true)); /* read, never finished */
    ct_send(&ct, a, "<message to='bob@localhost'><body>m2</body></message>"); /* never read */
    /* published by the router before it died */
    uint64_t bid = fe_conn_id(&b->fe);
    struct ct_shard *sh = &ct.sh[0];
    port_send(&sh->down, &sh->q, PROTO_DELIVER, "", 0, NULL); /* malformed: skipped */
    const char *st = "<message from='alice@localhost/r'><body>m0</body></message>";
    struct proto_deliver h = {.nrcpt = 1, .stanza_len = (uint32_t)strlen(st)};
    struct proto_rcpt r = {.conn = bid};
    char frame[256];
    memcpy(frame, &h, sizeof h);
    memcpy(frame + sizeof h, &r, sizeof r);
    memcpy(frame + sizeof h + sizeof r, st, h.stanza_len);
    port_send(&sh->down, &sh->q, PROTO_DELIVER, frame,
              (uint32_t)(sizeof h + sizeof r + h.stanza_len), NULL);
    ring_publish(&sh->down);

    ct_router_down(&ct);
    CHECK_STR(ct_out(&ct, b), st);
    /* while it is away, input waits unread in its connection, which stops reading */
    ct_send(&ct, a, "<message to='bob@localhost'><body>m3</body></message>");
    CHECK(buf_used(&a->fe.in) > 0);
    CHECK(a->fe.flags & FE_F_RECV_OFF);

    ct_router_up(&ct);
    expect(0, PROTO_BIND, fe_conn_id(&a->fe), "alice");
    const struct decode_session *s = &ct.f.s;
    CHECK_INT(s->h.flags, ==,
              PROTO_SESSION_REREGISTER | PROTO_SESSION_ROSTER | PROTO_SESSION_CARBONS);
    CHECK_INT(s->h.priority, ==, 3);
    CHECK_SPAN(s->jid, s->h.jid_len, "alice@localhost/r");
    CHECK_SPAN(s->presence, s->h.presence_len,
               "<presence from='alice@localhost/r'><priority>3</priority></presence>");
    const char *p = s->directed, *end = s->directed + s->h.directed_len, *jid;
    uint16_t len;
    for (unsigned i = 0; i < 2; i++)
        CHECK(decode_directed_next(&p, end, &jid, &len) && len == strlen(directed[i]) &&
              !memcmp(jid, directed[i], len));
    CHECK(p == end);
    expect(0, PROTO_BIND, bid, "bob");
    CHECK_INT(ct.f.s.h.flags, ==, PROTO_SESSION_REREGISTER);
    CHECK_INT(ct.f.s.h.presence_len, ==, 0);
    expect(0, PROTO_BIND, fe_conn_id(&c->fe), "carol"); /* its request was lost: asked anew */
    CHECK_INT(ct.f.s.h.flags, ==, 0);
    expect(0, PROTO_STANZA, fe_conn_id(&a->fe), ">m1<");
    expect(0, PROTO_STANZA, fe_conn_id(&a->fe), ">m2<");
    expect(0, PROTO_STANZA, fe_conn_id(&a->fe), ">m3<");
    CHECK(!ct_frame(&ct));
    ct_bind_result(&ct, 0, fe_conn_id(&c->fe), 0, "carol@localhost/r", 17);
    CT_HAS(ct_out(&ct, c), "<jid>carol@localhost/r</jid>");
    ct_close(&ct);
}

int main(void)
{
    RUN(stamping);
    RUN(stream_prefixes);
    RUN(bad_to);
    RUN(presence_kept);
    RUN(delivery);
    RUN(router_restart);
    return test_done("route");
}
