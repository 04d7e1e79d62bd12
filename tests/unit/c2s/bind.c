/* Unit tests of c2s/bind.c: resource binding (RFC 6120 §7) and the session iq, on a c2s
 * thread without sockets (ct.h) whose router is the test: the PROTO_BIND frame, each
 * answer of the router, generated resources, and the session's end at the router when
 * the client leaves while its bind is under way (also behind a full ring). */
#include "ct.h"

#include "common/xmpp/jid.h"

#include <errno.h>

#define BIND_IQ(id, inner)                                                                         \
    "<iq type='set' id='" id "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>" inner             \
    "</bind></iq>"

static struct ct ct;

/* A bind request whose <bind/> holds inner. */
static void send_bind(struct conn *c, const char *inner)
{
    char iq[512];
    snprintf(iq, sizeof iq, BIND_IQ("b1", "%s"), inner);
    ct_send(&ct, c, iq);
}

struct resource_case {
    const char *file;
    int line;
    const char *inner; /* what the <bind/> holds */
    const char *jid;   /* the full JID asked for; NULL: a generated resource */
};

/* The request the router gets: the connection, the shard key, the full JID with the
 * resource normalised (resourceprep keeps case; NFKC), in the shard of the bare JID;
 * meanwhile the connection waits, holding what the client sends. */
static void bind_request(void)
{
    static const struct resource_case cases[] = {
        {CT_ROW, "<resource>balcony</resource>", "alice@localhost/balcony"},
        {CT_ROW, "<resource>Balcony Two</resource>", "alice@localhost/Balcony Two"},
        {CT_ROW, "<resource>\xef\xbc\xa1</resource>", "alice@localhost/A"}, /* fullwidth A */
        {CT_ROW, "<resource>a/b@c</resource>", "alice@localhost/a/b@c"},
        {CT_ROW, "<resource>it&apos;s &amp; more</resource>", "alice@localhost/it's & more"},
        {CT_ROW, "<resource></resource>", NULL},
        {CT_ROW, "", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct resource_case *k = &cases[i];
        ct_open(&ct, 2);
        ct_account(&ct, "alice");
        struct conn *c = ct_authed(&ct, "alice");
        send_bind(c, k->inner);
        CHECK_STR(ct_out(&ct, c), "");
        if (c->fe.state != CONN_BINDING || !(c->fe.flags & FE_F_WAIT))
            TEST_FAIL("case at %s:%d: state %u flags %#x", k->file, k->line, c->fe.state, c->fe.flags);
        if (!ct_frame(&ct) || ct.f.kind != PROTO_BIND) {
            TEST_FAIL("case at %s:%d: no PROTO_BIND", k->file, k->line);
            ct_close(&ct);
            continue;
        }
        const struct decode_session *s = &ct.f.s;
        uint64_t key = jid_hash("alice@localhost", 15);
        if (s->h.conn != fe_conn_id(&c->fe) || s->h.key != key || s->h.bare_len != 15 || s->h.flags ||
            s->h.presence_len || s->h.directed_len || ct.f.shard != key % 2)
            TEST_FAIL("case at %s:%d: frame fields", k->file, k->line);
        if (k->jid && (s->h.jid_len != strlen(k->jid) || memcmp(s->jid, k->jid, s->h.jid_len)))
            TEST_FAIL("case at %s:%d: bound '%.*s', expected '%s'", k->file, k->line,
                      (int)s->h.jid_len, s->jid, k->jid);
        if (!k->jid) {
            /* 16 hex digits of randomness */
            bool hex = s->h.jid_len == 16 + 16;
            for (unsigned j = 16; hex && j < s->h.jid_len; j++)
                hex = strchr("0123456789abcdef", s->jid[j]) != NULL;
            if (memcmp(s->jid, "alice@localhost/", 16) || !hex)
                TEST_FAIL("case at %s:%d: generated '%.*s'", k->file, k->line, (int)s->h.jid_len,
                          s->jid);
        }
        CHECK(!ct_frame(&ct));
        /* held until the answer */
        ct_send(&ct, c, "<message to='bob@localhost'><body>early</body></message>");
        CHECK(!ct_frame(&ct));
        CHECK_STR(ct_out(&ct, c), "");
        ct_close(&ct);
    }

    /* Two binds without a resource get two resources. */
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    char first[64] = "";
    for (int i = 0; i < 2; i++) {
        struct conn *c = ct_authed(&ct, "alice");
        ct_send(&ct, c, BIND_IQ("g", ""));
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_BIND);
        if (i == 0)
            snprintf(first, sizeof first, "%.*s", (int)ct.f.s.h.jid_len, ct.f.s.jid);
        else
            CHECK(strlen(first) == ct.f.s.h.jid_len && memcmp(first, ct.f.s.jid, strlen(first)));
    }
    ct_close(&ct);
}

/* Requests bind.c refuses itself: an unusable resource (bad-request, RFC 6120
 * §7.7.2.1), nothing sent to the router, the stream open for another try. */
static void bind_refused(void)
{
    static const struct resource_case cases[] = {
        {CT_ROW, "<resource>a&#10;b</resource>", NULL},      /* a control character */
        {CT_ROW, "<resource>\xe2\x80\x8b</resource>", NULL}, /* only a zero-width space */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct resource_case *k = &cases[i];
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_authed(&ct, "alice");
        send_bind(c, k->inner);
        const char *want = "<iq type='error' id='b1'><error type='modify'><bad-request "
                           "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        const char *out = ct_out(&ct, c);
        if (strcmp(out, want) != 0)
            TEST_FAIL("case at %s:%d: got '%s'", k->file, k->line, out);
        if (ct_frame(&ct) || c->fe.state != FE_OPEN)
            TEST_FAIL("case at %s:%d: frame or state %u", k->file, k->line, c->fe.state);
        ct_close(&ct);
    }
}

struct result_case {
    const char *file;
    int line;
    int result;
    const char *answer;
};

/* The router's answer, as the client hears it: the bound JID (§7.6.1), a conflict under
 * c2s.resource_conflict = refuse (§7.7.2.2), too many sessions (router.max_sessions,
 * §7.6.2.1), or anything else as internal-server-error. The id is the request's,
 * escaped; input held meanwhile goes on. */
static void bind_results(void)
{
    static const struct result_case cases[] = {
        {CT_ROW, 0,
         "<iq type='result' id='a&apos;b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>"
         "alice@localhost/it's</jid></bind></iq>"},
        {CT_ROW, -EEXIST,
         "<iq type='error' id='a&apos;b'><error type='cancel'><conflict "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
        {CT_ROW, -EDQUOT,
         "<iq type='error' id='a&apos;b'><error type='wait'><resource-constraint "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
        {CT_ROW, -EIO,
         "<iq type='error' id='a&apos;b'><error type='cancel'><internal-server-error "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct result_case *k = &cases[i];
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_authed(&ct, "alice");
        ct_send(&ct, c,
                "<iq type='set' id=\"a'b\"><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<resource>it's</resource></bind></iq>"
                "<message to='bob@localhost'><body>held</body></message>");
        if (!ct_frame(&ct) || ct.f.kind != PROTO_BIND) {
            TEST_FAIL("case at %s:%d: no PROTO_BIND", k->file, k->line);
            ct_close(&ct);
            continue;
        }
        ct_bind_result(&ct, 0, fe_conn_id(&c->fe), k->result, ct.f.s.jid, ct.f.s.h.jid_len);
        const char *out = ct_out(&ct, c);
        bool ok = k->result == 0;
        if (ok ? strcmp(out, k->answer) != 0 : strncmp(out, k->answer, strlen(k->answer)) != 0)
            TEST_FAIL("case at %s:%d: got '%s'", k->file, k->line, out);
        if (!!(c->fe.flags & CONN_F_BOUND) != ok || (c->fe.flags & FE_F_WAIT) || c->iq_id)
            TEST_FAIL("case at %s:%d: flags %#x", k->file, k->line, c->fe.flags);
        /* the held message: routed once bound, premature (not-authorized) if not */
        bool routed = ct_frame(&ct) && ct.f.kind == PROTO_STANZA;
        if (routed != ok || (!ok && !ct_stream_error(out, "not-authorized")))
            TEST_FAIL("case at %s:%d: the held message %s", k->file, k->line,
                      routed ? "was routed" : "was not routed");
        if (ok) {
            CHECK_INT(c->fe.state, ==, FE_OPEN);
            CHECK_INT(c->fe.deadline, ==, 0);
            CHECK_SPAN(c->jid, c->jid_len, "alice@localhost/it's");
            CHECK_INT(c->bare_len, ==, 15);
        } else {
            CHECK(c->jid == NULL);
        }
        ct_close(&ct);
    }

    /* After a refusal the client may try another resource. */
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = ct_authed(&ct, "alice");
    ct_send(&ct, c, BIND_IQ("1", "<resource>taken</resource>"));
    CHECK(ct_frame(&ct));
    ct_bind_result(&ct, 0, fe_conn_id(&c->fe), -EEXIST, NULL, 0);
    CT_HAS(ct_out(&ct, c), "<conflict ");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    ct_send(&ct, c, BIND_IQ("2", "<resource>free</resource>"));
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_BIND);
    CHECK_SPAN(ct.f.s.jid, ct.f.s.h.jid_len, "alice@localhost/free");
    ct_bind_result(&ct, 0, fe_conn_id(&c->fe), 0, ct.f.s.jid, ct.f.s.h.jid_len);
    CT_HAS(ct_out(&ct, c), "<jid>alice@localhost/free</jid>");
    CHECK(c->fe.flags & CONN_F_BOUND);
    /* A result for no bind under way, or for a connection gone, changes nothing. */
    ct_bind_result(&ct, 0, fe_conn_id(&c->fe), -EEXIST, NULL, 0);
    CHECK_STR(ct_out(&ct, c), "");
    CHECK(c->fe.flags & CONN_F_BOUND);
    ct_bind_result(&ct, 0, proto_conn_id(PROTO_FE_C2S, 0, 77, 0), 0, NULL, 0);
    ct_close(&ct);
}

/* The legacy session iq (RFC 3921 §3) is answered by c2s, before binding or after. */
static void session_iq(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = ct_authed(&ct, "alice");
    const char *iq =
        "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>";
    ct_send(&ct, c, iq);
    CHECK_STR(ct_out(&ct, c), "<iq type='result' id='s1'/>");
    CHECK(!ct_frame(&ct));
    c = ct_bound(&ct, "alice", "r");
    ct_send(&ct, c, iq);
    CHECK_STR(ct_out(&ct, c), "<iq type='result' id='s1'/>");
    CHECK(!ct_frame(&ct));
    /* addressed to the server by name, it is the same */
    ct_send(&ct, c,
            "<iq type='set' id='s2' to='localhost'><session "
            "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
    CHECK_STR(ct_out(&ct, c), "<iq type='result' id='s2'/>");
    /* any other iq of a bound client goes to the router */
    ct_send(&ct, c, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_STANZA && ct.f.st.h.kind == PROTO_IQ);
    ct_close(&ct);
}

/* A bind or session iq addressed to the server by name is the server's however the name
 * is written: domains compare once normalised (RFC 7622 §3.2), as route.c compares them. */
static void addressed_to_server(void)
{
    static const char *const tos[] = {"localhost", "LocalHost", "localhost."};
    for (size_t i = 0; i < sizeof tos / sizeof tos[0]; i++) {
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_authed(&ct, "alice");
        char iq[256];
        snprintf(iq, sizeof iq,
                 "<iq type='set' id='b' to='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<resource>r</resource></bind></iq>",
                 tos[i]);
        ct_send(&ct, c, iq);
        if (!ct_frame(&ct) || ct.f.kind != PROTO_BIND) {
            TEST_FAIL("to='%s': no bind request: '%s'", tos[i], ct_out(&ct, c));
            ct_close(&ct);
            continue;
        }
        ct_bind_result(&ct, 0, fe_conn_id(&c->fe), 0, ct.f.s.jid, ct.f.s.h.jid_len);
        CT_HAS(ct_out(&ct, c), "<jid>alice@localhost/r</jid>");
        snprintf(iq, sizeof iq,
                 "<iq type='set' id='s' to='%s'><session "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
                 tos[i]);
        ct_send(&ct, c, iq);
        if (strcmp(ct_out(&ct, c), "<iq type='result' id='s'/>") != 0 || ct_frame(&ct))
            TEST_FAIL("to='%s': the session iq was not answered by c2s", tos[i]);
        ct_close(&ct);
    }
}

/* A bind under way makes a session at the router whether or not its answer is back:
 * a client that leaves meanwhile sends PROTO_UNBIND after its PROTO_BIND, through the
 * same ring, and the late answer is dropped. */
static void closed_mid_bind(void)
{
    ct_open(&ct, 2);
    ct_account(&ct, "alice");
    struct conn *c = ct_authed(&ct, "alice");
    uint64_t id = fe_conn_id(&c->fe);
    ct_send(&ct, c, BIND_IQ("b", "<resource>gone</resource>"));
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_BIND && ct.f.s.h.conn == id);
    unsigned shard = ct.f.shard;
    fe_close(&c->fe); /* the socket went away */
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND);
    CHECK(ct.f.s.h.conn == id && ct.f.shard == shard);
    CHECK_SPAN(ct.f.s.jid, ct.f.s.h.jid_len, "alice@localhost/gone");
    CHECK_INT(ct.f.s.h.bare_len, ==, 15);
    CHECK(!ct_frame(&ct));
    ct_bind_result(&ct, shard, id, 0, "alice@localhost/gone", 20);
    CHECK_STR(ct_out(&ct, c), "");
    CHECK(!(c->fe.flags & CONN_F_BOUND));
    ct_drop(c);
    /* the slot's next connection is not the one the late answer names */
    struct conn *n = ct_authed(&ct, "alice");
    CHECK(n == c);
    ct_bind_result(&ct, shard, id, 0, "alice@localhost/gone", 20);
    CHECK_STR(ct_out(&ct, n), "");
    CHECK(!(n->fe.flags & CONN_F_BOUND));
    CHECK(!ct_frame(&ct));
    /* a connection that never asked to bind, or was refused, has nothing to end */
    fe_close(&n->fe);
    CHECK(!ct_frame(&ct));
    ct_close(&ct);
}

/* The same with the ring to the shard full: the bind waits in the thread's backlog, the
 * unbind behind it, and both reach the router in that order once it makes room. The
 * stanza that found the ring full waits in its connection, which stops reading, until
 * the backlog is out; what the client sent meanwhile follows it. */
static void closed_mid_bind_ring_full(void)
{
    ct_open_ex(&ct, 1, RING_MIN_DATA);
    ct_account(&ct, "alice");
    ct_account(&ct, "bob");
    struct conn *a = ct_bound(&ct, "alice", "r");
    unsigned sent = 0;
    while (!(a->fe.flags & FE_F_PAUSED) && sent < 1000) {
        ct_send(&ct, a, "<message to='carol@localhost'/>");
        sent++;
    }
    CHECK(a->fe.flags & FE_F_PAUSED);
    CHECK(ct.t.fe.paused == &a->fe);
    ct_send(&ct, a, "<presence/>");
    CHECK(a->fe.flags & FE_F_RECV_OFF);

    /* A bind frame larger than any room the messages left. */
    struct conn *b = ct_authed(&ct, "bob");
    uint64_t bid = fe_conn_id(&b->fe);
    char res[256] = "<resource>";
    memset(res + 10, 'x', 200);
    strcpy(res + 210, "</resource>");
    send_bind(b, res);
    CHECK_INT(b->fe.state, ==, CONN_BINDING);
    CHECK(!backlog_empty(&ct.t.fe.backlog[0]));
    fe_close(&b->fe);

    /* What the router reads: M for a message, P the presence, B and U bob's frames. */
    char seq[1100];
    size_t n = 0;
    for (int guard = 0; guard < 2000 && n < sizeof seq - 1; guard++) {
        if (!ct_frame(&ct)) {
            ct_step(&ct);
            if (!ct_frame(&ct))
                break;
        }
        if (ct.f.kind == PROTO_STANZA)
            seq[n++] = ct.f.st.h.kind == PROTO_PRESENCE ? 'P' : 'M';
        else if (ct.f.kind == PROTO_BIND || ct.f.kind == PROTO_UNBIND)
            seq[n++] = ct.f.s.h.conn == bid ? (ct.f.kind == PROTO_BIND ? 'B' : 'U') : '?';
        else
            seq[n++] = '?';
        ct_step(&ct);
    }
    seq[n] = '\0';
    char want[1100];
    memset(want, 'M', sent - 1);
    snprintf(want + sent - 1, sizeof want - (sent - 1), "BUMP");
    CHECK_STR(seq, want);
    CHECK(!(a->fe.flags & FE_F_PAUSED) && ct.t.fe.paused == NULL);
    CHECK(backlog_empty(&ct.t.fe.backlog[0]));
    ct_close(&ct);
}

int main(void)
{
    RUN(bind_request);
    RUN(bind_refused);
    RUN(bind_results);
    RUN(session_iq);
    RUN(addressed_to_server);
    RUN(closed_mid_bind);
    RUN(closed_mid_bind_ring_full);
    return test_done("bind");
}
