/* Unit tests of c2s/stream.c: the header exchange and features (RFC 6120 §4.7, §4.3.2),
 * stream errors for bad XML (§4.9.3), stanzas before authentication and binding, the
 * checks on stanzas, the stanza size before authentication, stream errors the router
 * asks for, the stream's end and its timers. A c2s thread without sockets (ct.h). */
#include "ct.h"

#define STREAM_TAIL "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
#define NS_STREAMS  "urn:ietf:params:xml:ns:xmpp-streams"
#define BARE_HEADER "<stream:stream xmlns='jabber:client' to='localhost' " STREAM_TAIL

static struct ct ct;

struct header_case {
    const char *file;
    int line;
    const char *in;
    const char *want[4];  /* substrings of the answer */
    const char *never[3]; /* substrings it must not have */
    int state;            /* enum conn_state after it */
};

/* §4.7: our header answers theirs, with our own id and domain; features follow unless
 * the header is refused. Without TLS configured no STARTTLS is offered; with plain PLAIN
 * allowed, PLAIN is among the mechanisms; no -PLUS mechanism exists without TLS. */
static void header_exchange(void)
{
    static const struct header_case cases[] = {
        {CT_ROW,
         CT_HEADER,
         {"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          "xmlns:stream='http://etherx.jabber.org/streams' id='",
          " from='localhost' version='1.0' xml:lang='en'>",
          "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
          "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>"
          "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"},
         {"starttls", "-PLUS", "<bind"},
         FE_OPEN},
        /* `to` is compared once normalised */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' to='LocalHost' " STREAM_TAIL,
         {"<stream:features>"},
         {"<stream:error>"},
         FE_OPEN},
        /* no `to` at all: served as our domain */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' " STREAM_TAIL,
         {"<stream:features>"},
         {0},
         FE_OPEN},
        /* a `from` that is a JID comes back as our `to` (§4.7.2) */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' from='juliet@localhost' " STREAM_TAIL,
         {" to='juliet@localhost'", "<stream:features>"},
         {0},
         FE_OPEN},
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' from='@@' " STREAM_TAIL,
         {"<stream:features>"},
         {" to="},
         FE_OPEN},
        /* a later minor or major version still speaks 1.0 with us */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='1.1'>",
         {"<stream:features>"},
         {0},
         FE_OPEN},
        /* §4.9.3.6: a domain we do not serve */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' to='example.org' " STREAM_TAIL,
         {"<stream:stream ", "<stream:error><host-unknown xmlns='" NS_STREAMS "'/></stream:error>"
                             "</stream:stream>"},
         {"<stream:features>"},
         FE_CLOSING},
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' to='a@@b' " STREAM_TAIL,
         {"<host-unknown "},
         {"<stream:features>"},
         FE_CLOSING},
        /* §4.7.5: no version is a pre-1.0 peer; our header goes first, then the error */
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
         {" from='localhost' version='1.0'",
          "<stream:error><unsupported-version xmlns='" NS_STREAMS "'/>"},
         {"<stream:features>"},
         FE_CLOSING},
        {CT_ROW,
         "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='0.9'>",
         {"<unsupported-version "},
         {"<stream:features>"},
         FE_CLOSING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct header_case *k = &cases[i];
        ct_open(&ct, 1);
        struct conn *c = ct_conn(&ct);
        ct_send(&ct, c, k->in);
        const char *out = ct_out(&ct, c);
        for (int w = 0; w < 4 && k->want[w]; w++)
            if (!strstr(out, k->want[w]))
                TEST_FAIL("case at %s:%d: expected '%s' in '%s'", k->file, k->line, k->want[w],
                          out);
        for (int w = 0; w < 3 && k->never[w]; w++)
            if (strstr(out, k->never[w]))
                TEST_FAIL("case at %s:%d: did not expect '%s' in '%s'", k->file, k->line,
                          k->never[w], out);
        if (c->fe.state != k->state)
            TEST_FAIL("case at %s:%d: state %u, expected %d", k->file, k->line, c->fe.state, k->state);
        CHECK_INT(ct_frames_skip(&ct), ==, 0);
        ct_close(&ct);
    }
}

/* With c2s.require_encryption and no way to encrypt, no mechanism is offered and an
 * <auth/> is refused with encryption-required (RFC 6120 §6.4.4 / §5.3.1). */
static void encryption_required_without_tls(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.require_encryption = true;
    ct_account(&ct, "alice");
    struct conn *c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    const char *out = ct_out(&ct, c);
    CT_HAS(out, "<stream:features></stream:features>");
    ct_send(&ct, c, ct_plain("alice", CT_PASSWORD));
    CT_HAS(ct_out(&ct, c), "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                           "<encryption-required/></failure>");
    CHECK(!(c->fe.flags & CONN_F_AUTHED));
    /* STARTTLS without TLS configured: failure, and the stream ends (§5.4.2.2) */
    ct_send(&ct, c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    CT_HAS(ct_out(&ct, c), "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>");
    CHECK_INT(c->fe.state, ==, FE_CLOSING);
    ct_close(&ct);
}

struct xml_case {
    const char *file;
    int line;
    bool header; /* our valid header first */
    const char *in;
    const char *condition;
};

/* c2s.max_connections_per_address: a connection over it still hears why, at its header
 * (policy-violation, RFC 6120 §4.9.3.18); one that closes makes room. Another address
 * is not affected. */
static void connections_per_address(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.max_connections_per_address = 2;
    struct conn *a = ct_conn(&ct), *b = ct_conn(&ct), *c = ct_conn(&ct);
    ct_send(&ct, a, CT_HEADER);
    ct_send(&ct, b, CT_HEADER);
    ct_send(&ct, c, CT_HEADER);
    CT_HAS(ct_out(&ct, a), "<stream:features>");
    CT_HAS(ct_out(&ct, b), "<stream:features>");
    const char *out = ct_out(&ct, c);
    CHECK(ct_stream_error(out, "policy-violation"));
    CT_LACKS(out, "<stream:features>");
    ct_drop(c);
    ct_drop(a);
    c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    CT_HAS(ct_out(&ct, c), "<stream:features>");
    c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    CHECK(ct_stream_error(ct_out(&ct, c), "policy-violation"));
    ct.peer = ct_fresh_peer();
    c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    CT_HAS(ct_out(&ct, c), "<stream:features>");
    ct_close(&ct);
}

/* Bad XML is a stream error, each of its own condition (RFC 6120 §4.9.3), with our
 * header first when it had not gone out yet, and the stream closed. */
static void xml_errors(void)
{
    static const struct xml_case cases[] = {
        {CT_ROW, false, "<stream:stream xmlns='jabber:server' " STREAM_TAIL, "invalid-namespace"},
        {CT_ROW, false,
         "<stream:stream xmlns='jabber:client' xmlns:stream='urn:not-streams' version='1.0'>",
         "invalid-namespace"},
        {CT_ROW, false,
         "<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' "
         "version='1.0'>",
         "bad-namespace-prefix"},
        {CT_ROW, false, "<?xml version='2.0'?>" BARE_HEADER, "unsupported-version"},
        {CT_ROW, false, "<?xml version='1.0' encoding='ISO-8859-1'?>" BARE_HEADER,
         "unsupported-encoding"},
        {CT_ROW, false, "\xfe\xff\x00<", "unsupported-encoding"},
        {CT_ROW, false, "<!DOCTYPE stream>" BARE_HEADER, "restricted-xml"},
        {CT_ROW, false, "<?xml version='1.0'?><?xml version='1.0'?>" BARE_HEADER, "restricted-xml"},
        {CT_ROW, false, "<stream:stream xmlns='jabber:client' a='1' a='2' " STREAM_TAIL,
         "not-well-formed"},
        {CT_ROW, true, "<!-- a comment -->", "restricted-xml"},
        {CT_ROW, true, "<?target data?>", "restricted-xml"},
        {CT_ROW, true, "<message><body>&custom;</body></message>", "restricted-xml"},
        {CT_ROW, true, "<message><body></message>", "not-well-formed"},
        {CT_ROW, true, "<message to='a' to='b'/>", "not-well-formed"},
        {CT_ROW, true, "<message><x:y/></message>", "not-well-formed"},
        {CT_ROW, true, "<message><body>\xc3\x28</body></message>", "not-well-formed"},
        {CT_ROW, true, "text at the top level", "bad-format"},
        /* c2s.max_depth (48) */
        {CT_ROW, true,
         "<message><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>"
         "<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a>",
         "policy-violation"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct xml_case *k = &cases[i];
        ct_open(&ct, 1);
        struct conn *c = ct_conn(&ct);
        if (k->header) {
            ct_send(&ct, c, CT_HEADER);
            ct_out(&ct, c);
        }
        ct_send_n(&ct, c, k->in, strlen(k->in) + (k->in[0] == '\xfe' ? 3 : 0));
        const char *out = ct_out(&ct, c);
        if (!ct_stream_error(out, k->condition))
            TEST_FAIL("case at %s:%d: expected the stream error %s, got '%s'", k->file, k->line,
                      k->condition, out);
        if (!k->header && strncmp(out, "<?xml version='1.0'?><stream:stream ", 36) != 0)
            TEST_FAIL("case at %s:%d: no header before the error: '%s'", k->file, k->line, out);
        if (k->header && strstr(out, "<stream:stream "))
            TEST_FAIL("case at %s:%d: a second header: '%s'", k->file, k->line, out);
        if (c->fe.state != FE_CLOSING)
            TEST_FAIL("case at %s:%d: state %u after the error", k->file, k->line, c->fe.state);
        /* Nothing more is read from a closed stream. */
        ct_send(&ct, c, "<message/>");
        CHECK_STR(ct_out(&ct, c), "");
        ct_close(&ct);
    }
}

struct early_case {
    const char *file;
    int line;
    const char *in;
};

/* Before authentication only STARTTLS and SASL are allowed (RFC 6120 §6.4.1); after it,
 * only binding until a resource is bound (§7.1): anything else is not-authorized, and
 * nothing reaches the router. */
static void stanzas_too_early(void)
{
    static const struct early_case cases[] = {
        {CT_ROW, "<message to='bob@localhost'><body>hi</body></message>"},
        {CT_ROW, "<presence/>"},
        {CT_ROW, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"},
        {CT_ROW, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"},
        {CT_ROW,
         "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>"},
    };
    for (int authed = 0; authed < 2; authed++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const struct early_case *k = &cases[i];
            /* once authenticated, bind and session are allowed */
            if (authed && (strstr(k->in, "xmpp-bind") || strstr(k->in, "xmpp-session")))
                continue;
            ct_open(&ct, 1);
            ct_account(&ct, "alice");
            struct conn *c;
            if (authed) {
                c = ct_authed(&ct, "alice");
            } else {
                c = ct_conn(&ct);
                ct_send(&ct, c, CT_HEADER);
                ct_out(&ct, c);
            }
            ct_send(&ct, c, k->in);
            const char *out = ct_out(&ct, c);
            if (!ct_stream_error(out, "not-authorized"))
                TEST_FAIL("case at %s:%d (%s): expected not-authorized, got '%s'", k->file, k->line,
                          authed ? "authenticated" : "new stream", out);
            CHECK_INT(c->fe.state, ==, FE_CLOSING);
            CHECK_INT(ct_frames_skip(&ct), ==, 0);
            ct_close(&ct);
        }
}

/* A message of exactly n bytes (n < 4096). */
static const char *message_of(size_t n)
{
    static char m[4096];
    const char *head = "<message><body>", *tail = "</body></message>";
    size_t h = strlen(head), t = strlen(tail);
    memcpy(m, head, h);
    memset(m + h, 'x', n - h - t);
    memcpy(m + n - t, tail, t + 1);
    return m;
}

/* c2s.max_stanza_size_preauth bounds every element before SASL succeeds; the restart
 * after it brings c2s.max_stanza_size. */
static void stanza_size_before_auth(void)
{
    ct_open(&ct, 1);
    ct.cfg->c2s.max_stanza_size_preauth = 1024;
    ct_account(&ct, "alice");
    /* At the limit it reaches the stanza checks (and is refused as premature). */
    struct conn *c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    ct_send(&ct, c, message_of(1024));
    CHECK(ct_stream_error(ct_out(&ct, c), "not-authorized"));
    /* Over it, the parser stops it before anything else looks at it. */
    c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    ct_send(&ct, c, message_of(1025));
    CHECK(ct_stream_error(ct_out(&ct, c), "policy-violation"));
    /* Once authenticated, much larger stanzas are routed. */
    c = ct_bound(&ct, "alice", "r");
    ct_send(&ct, c, message_of(4000));
    CHECK_STR(ct_out(&ct, c), "");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_STANZA);
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    ct_close(&ct);
}

struct check_case {
    const char *file;
    int line;
    const char *in;
    const char *answer; /* a substring of the stanza error; NULL: routed, or no answer */
    bool routed;
};

/* What a bound client's stanzas must be before they are routed: a known stanza of
 * jabber:client (else unsupported-stanza-type, a stream error), with a type its kind has
 * (else bad-request), an iq with an id (RFC 6120 §8.2.3). An error is never answered with
 * an error (§8.3.1). */
static void stanza_checks(void)
{
    static const struct check_case cases[] = {
        {CT_ROW, "<message to='bob@localhost' type='chat'/>", NULL, true},
        {CT_ROW, "<message to='bob@localhost' type='whatever'/>", NULL,
         true}, /* normal (RFC 6121 §5.2.2) */
        {CT_ROW, "<presence type='probe' to='bob@localhost'/>", NULL, true},
        {CT_ROW, "<presence type='error' to='bob@localhost'/>", NULL, true},
        {CT_ROW, "<iq type='result' id='x' to='bob@localhost/r'/>", NULL, true},
        {CT_ROW, "<presence type='dance' id='p1'/>",
         "<presence type='error' id='p1' from='localhost' to='alice@localhost/r'><error "
         "type='modify'><bad-request "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>",
         false},
        {CT_ROW, "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "<bad-request ", false},
        {CT_ROW, "<iq type='fetch' id='q' to='bob@localhost'><x xmlns='urn:x'/></iq>",
         "<iq type='error' id='q' from='bob@localhost' to='alice@localhost/r'>", false},
        {CT_ROW, "<iq id='q2'/>", "<bad-request ", false},
        /* an error without an id is not answered */
        {CT_ROW, "<iq type='error'/>", NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct check_case *k = &cases[i];
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_bound(&ct, "alice", "r");
        ct_send(&ct, c, k->in);
        const char *out = ct_out(&ct, c);
        bool routed = ct_frame(&ct);
        if (routed != k->routed)
            TEST_FAIL("case at %s:%d: %s", k->file, k->line, routed ? "routed" : "not routed");
        if (k->answer && !strstr(out, k->answer))
            TEST_FAIL("case at %s:%d: expected '%s' in '%s'", k->file, k->line, k->answer, out);
        if (!k->answer && *out)
            TEST_FAIL("case at %s:%d: unexpected answer '%s'", k->file, k->line, out);
        if (c->fe.state != FE_OPEN)
            TEST_FAIL("case at %s:%d: state %u", k->file, k->line, c->fe.state);
        ct_close(&ct);
    }
    /* Stanzas of no kind we route end the stream (RFC 6120 §4.9.3.22). */
    static const char *const bad[] = {"<foo/>", "<x xmlns='urn:example'/>",
                                      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_bound(&ct, "alice", "r");
        ct_send(&ct, c, bad[i]);
        if (!ct_stream_error(ct_out(&ct, c), "unsupported-stanza-type"))
            TEST_FAIL("%s: no unsupported-stanza-type", bad[i]);
        /* the session is over at the router too */
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND);
        ct_close(&ct);
    }
}

/* Feeds xml to c in pieces of `piece` bytes, settling after each. */
static void send_pieces(struct conn *c, const char *xml, size_t piece)
{
    for (size_t off = 0, n = strlen(xml); off < n; off += piece)
        ct_send_n(&ct, c, xml + off, n - off < piece ? n - off : piece);
}

/* TCP cuts a stream anywhere: a whole session, from the header to a routed message, fed
 * in pieces of every size from one byte, gives the same answers and frames as fed at
 * once, and the login's and bind's waits hold what arrives meanwhile. */
static void input_in_pieces(void)
{
    static const size_t pieces[] = {1, 2, 3, 7, 64, 100000};
    char login[1024];
    snprintf(login, sizeof login, "%s%s%s", CT_HEADER, ct_plain("alice", CT_PASSWORD), CT_HEADER);
    const char *rest = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                       "<resource>r</resource></bind></iq>"
                       "<message to='bob@localhost'><body>one</body></message>"
                       "<presence/></stream:stream>";
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        ct_open(&ct, 1);
        ct_account(&ct, "alice");
        struct conn *c = ct_conn(&ct);
        send_pieces(c, login, pieces[i]);
        const char *out = ct_out(&ct, c);
        if (!(c->fe.flags & CONN_F_AUTHED) || !strstr(out, "<success ") || !strstr(out, "<bind "))
            TEST_FAIL("pieces of %zu: no login: '%s'", pieces[i], out);
        send_pieces(c, rest, pieces[i]);
        if (!ct_frame(&ct) || ct.f.kind != PROTO_BIND) {
            TEST_FAIL("pieces of %zu: no bind", pieces[i]);
            ct_close(&ct);
            continue;
        }
        CHECK(!ct_frame(&ct)); /* the rest waits for the bind */
        ct_bind_result(&ct, 0, fe_conn_id(&c->fe), 0, ct.f.s.jid, ct.f.s.h.jid_len);
        out = ct_out(&ct, c);
        if (strcmp(out, "<iq type='result' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                        "<jid>alice@localhost/r</jid></bind></iq></stream:stream>") != 0)
            TEST_FAIL("pieces of %zu: '%s'", pieces[i], out);
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_STANZA && ct.f.st.h.kind == PROTO_MESSAGE);
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_STANZA && ct.f.st.h.kind == PROTO_PRESENCE);
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND);
        CHECK(!ct_frame(&ct));
        CHECK_INT(c->fe.state, ==, FE_CLOSING);
        ct_close(&ct);
    }
}

/* A client's </stream:stream> is answered in kind and ends the session at the router. */
static void client_closes(void)
{
    ct_open(&ct, 2);
    ct_account(&ct, "alice");
    struct conn *c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER "</stream:stream>");
    const char *out = ct_out(&ct, c);
    CT_HAS(out, "<stream:features>");
    CHECK(strstr(out, "</stream:stream>") && !strstr(out, "<stream:error>"));
    CHECK_INT(c->fe.state, ==, FE_CLOSING);
    CHECK_INT(ct_frames_skip(&ct), ==, 0);

    c = ct_bound(&ct, "alice", "r");
    uint64_t id = fe_conn_id(&c->fe);
    ct_send(&ct, c, "</stream:stream>");
    CHECK_STR(ct_out(&ct, c), "</stream:stream>");
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND && ct.f.s.h.conn == id);
    CHECK_SPAN(ct.f.s.jid, ct.f.s.h.jid_len, "alice@localhost/r");
    CHECK(!ct_frame(&ct));
    ct_close(&ct);
}

/* PROTO_CLOSE: the router ends a stream with a condition (a conflict on resource
 * replacement, shutdown...); c2s sends that stream error and tells the router the
 * session is gone. A close for a connection gone since, or a condition out of range,
 * does nothing. */
static void router_closes(void)
{
    static const struct {
        uint8_t code;
        const char *condition;
    } cases[] = {
        {PROTO_SE_CONFLICT, "conflict"},
        {PROTO_SE_SYSTEM_SHUTDOWN, "system-shutdown"},
        {PROTO_SE_POLICY_VIOLATION, "policy-violation"},
        {PROTO_SE_RESET, "reset"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ct_open(&ct, 2);
        ct_account(&ct, "alice");
        struct conn *c = ct_bound(&ct, "alice", "r");
        uint64_t id = fe_conn_id(&c->fe);
        unsigned s = ct_shard_of(&ct, c->key);
        ct_close_conn(&ct, s, id, cases[i].code);
        if (!ct_stream_error(ct_out(&ct, c), cases[i].condition))
            TEST_FAIL("PROTO_CLOSE %u: no %s", cases[i].code, cases[i].condition);
        CHECK_INT(c->fe.state, ==, FE_CLOSING);
        CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND && ct.f.s.h.conn == id);
        ct_close(&ct);
    }

    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *old = ct_bound(&ct, "alice", "old");
    uint64_t stale = fe_conn_id(&old->fe);
    ct_drop(old);
    ct_frames_skip(&ct);
    struct conn *c = ct_bound(&ct, "alice", "new");
    CHECK(c == old); /* the slot again, under a new generation */
    ct_close_conn(&ct, 0, stale, PROTO_SE_CONFLICT);
    CHECK_STR(ct_out(&ct, c), "");
    ct_close_conn(&ct, 0, fe_conn_id(&c->fe), 200);
    CHECK_STR(ct_out(&ct, c), "");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    CHECK(!ct_frame(&ct));
    ct_close(&ct);
}

/* The sweep's per-connection part: the handshake deadline, the idle ping (XEP-0199) and
 * its grace, whitespace keepalives (RFC 6120 §4.6.1). */
static void timers(void)
{
    ct_open(&ct, 1);
    ct_account(&ct, "alice");
    struct conn *c = ct_conn(&ct);
    ct_send(&ct, c, CT_HEADER);
    ct_out(&ct, c);
    ct.t.fe.now += (uint32_t)ct.cfg->c2s.handshake_timeout - 1;
    stream_tick(&c->fe);
    CHECK_STR(ct_out(&ct, c), "");
    ct.t.fe.now += 1;
    stream_tick(&c->fe);
    CHECK(ct_stream_error(ct_out(&ct, c), "connection-timeout"));

    /* Bound: no deadline; a keepalive after c2s.keepalive of silence from us, a ping after
     * c2s.idle_timeout of silence from the client, the end after the grace. */
    c = ct_bound(&ct, "alice", "r");
    CHECK_INT(c->fe.deadline, ==, 0);
    uint32_t t0 = ct.t.fe.now;
    ct.t.fe.now = t0 + (uint32_t)ct.cfg->c2s.keepalive;
    stream_tick(&c->fe);
    CHECK_STR(ct_out(&ct, c), " ");
    ct.t.fe.now = t0 + (uint32_t)ct.cfg->c2s.idle_timeout;
    stream_tick(&c->fe);
    CHECK_STR(ct_out(&ct, c), "<iq type='get' id='c2s-idle-ping' from='localhost' "
                              "to='alice@localhost/r'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(c->fe.flags & CONN_F_PINGED);
    stream_tick(&c->fe); /* one ping, not one a second */
    CHECK_STR(ct_out(&ct, c), "");
    ct.t.fe.now += 59;
    stream_tick(&c->fe);
    CHECK_STR(ct_out(&ct, c), "");
    CHECK_INT(c->fe.state, ==, FE_OPEN);
    ct.t.fe.now += 1;
    stream_tick(&c->fe);
    CHECK(ct_stream_error(ct_out(&ct, c), "connection-timeout"));
    CHECK(ct_frame(&ct) && ct.f.kind == PROTO_UNBIND);
    ct_close(&ct);
}

int main(void)
{
    RUN(header_exchange);
    RUN(encryption_required_without_tls);
    RUN(connections_per_address);
    RUN(xml_errors);
    RUN(stanzas_too_early);
    RUN(stanza_size_before_auth);
    RUN(stanza_checks);
    RUN(input_in_pieces);
    RUN(client_closes);
    RUN(router_closes);
    RUN(timers);
    return test_done("stream");
}
