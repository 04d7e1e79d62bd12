/*
 * Tests of common/auth/external.c: SASL EXTERNAL between servers, XEP-0178 §3's flow and
 * XEP-0288's example exchange, every refusal with its RFC 6120 §6.5 condition, and the
 * initiating side's elements read back by the receiving side.
 */
#include "common/auth/external.h"
#include "common/xmpp/xml.h"
#include "test.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NS         "urn:ietf:params:xml:ns:xmpp-sasl"
#define SUCCESS    "<success xmlns='" NS "'/>"
#define FAILURE(c) "<failure xmlns='" NS "'><" c "/></failure>"
#define ROW        __FILE__, __LINE__

static struct buf out;
static struct arena arena;
static char scratch[8192];

static const char *take(void)
{
    static char s[4096];
    size_t n = buf_used(&out) < sizeof s - 1 ? buf_used(&out) : sizeof s - 1;
    memcpy(s, buf_data(&out), n);
    s[n] = '\0';
    buf_consume(&out, buf_used(&out));
    return s;
}

/* The tree of one element on a jabber:server stream. */
static struct xml_node *elem(const char *xml)
{
    static char in[8192];
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    struct xml_node *n = NULL;
    int len = snprintf(in, sizeof in,
                       "<stream:stream xmlns='jabber:server' "
                       "xmlns:stream='http://etherx.jabber.org/streams'>%s",
                       xml);
    xml_init(&p, &lim, XML_CONTENT_SERVER, scratch, sizeof scratch);
    if (xml_next(&p, in, (size_t)len, &ev) == XML_EV_STREAM_OPEN &&
        xml_next(&p, in, (size_t)len, &ev) == XML_EV_STANZA)
        n = xml_tree_parse(&p, ev.raw.p, ev.raw.len, &arena, scratch, sizeof scratch);
    xml_free(&p);
    CHECK(n != NULL);
    return n;
}

static const struct external_peer verified = {
    .tls = true, .cert_ok = true, .name_ok = true, .from = "capulet.lit"};

static void offer_test(void)
{
    static const struct {
        const char *file;
        int line;
        struct external_peer peer;
        bool offer;
    } rows[] = {
        {ROW, {true, true, true, "capulet.lit"}, true},
        {ROW, {false, true, true, "capulet.lit"}, false}, /* no TLS */
        {ROW, {true, false, true, "capulet.lit"}, false}, /* chain not verified */
        {ROW, {true, true, false, "capulet.lit"}, false}, /* names another domain */
        {ROW, {true, true, true, NULL}, false},           /* nothing to match */
        {ROW, {true, true, true, ""}, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (external_offer(&rows[i].peer) != rows[i].offer)
            TEST_FAIL("row at %s:%d", rows[i].file, rows[i].line);
    CHECK_INT(external_mechanisms(&out), ==, 0);
    CHECK_STR(take(), "<mechanisms xmlns='" NS "'><mechanism>EXTERNAL</mechanism></mechanisms>");
}

/* One <auth/> each: the answer, its event and condition. */
static void auth_test(void)
{
    static const struct {
        const char *file;
        int line;
        struct external_peer peer;
        const char *mech, *b64, *answer;
        enum sasl_cond cond;
    } rows[] = {
        /* XEP-0178 §3 step 10: "=" */
        {ROW,
         {true, true, true, "conference.example.org"},
         "EXTERNAL",
         "=",
         SUCCESS,
         SASL_COND_NONE},
        /* XEP-0288's example: the domain, wrapped in line breaks */
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "\nY2FwdWxldC5saXQ=\n",
         SUCCESS,
         SASL_COND_NONE},
        /* "Capulet.LIT" is the same domain */
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "Q2FwdWxldC5MSVQ=",
         SUCCESS,
         SASL_COND_NONE},
        /* "montague.lit": not the stream's */
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "bW9udGFndWUubGl0",
         FAILURE("invalid-authzid"),
         SASL_INVALID_AUTHZID},
        /* "juliet@capulet.lit": not a domain */
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "anVsaWV0QGNhcHVsZXQubGl0",
         FAILURE("invalid-authzid"),
         SASL_INVALID_AUTHZID},
        /* "capulet.lit" but the stream said no 'from' */
        {ROW,
         {true, true, true, NULL},
         "EXTERNAL",
         "Y2FwdWxldC5saXQ=",
         FAILURE("invalid-authzid"),
         SASL_INVALID_AUTHZID},
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "!!not base64",
         FAILURE("incorrect-encoding"),
         SASL_INCORRECT_ENCODING},
        {ROW,
         {true, true, true, "capulet.lit"},
         "EXTERNAL",
         "Y2Fw dWxldC5saXQ=",
         FAILURE("incorrect-encoding"),
         SASL_INCORRECT_ENCODING},
        {ROW,
         {true, true, true, "capulet.lit"},
         "PLAIN",
         "=",
         FAILURE("invalid-mechanism"),
         SASL_INVALID_MECHANISM},
        {ROW,
         {true, true, true, "capulet.lit"},
         "external",
         "=",
         FAILURE("invalid-mechanism"),
         SASL_INVALID_MECHANISM},
        {ROW,
         {false, true, true, "capulet.lit"},
         "EXTERNAL",
         "=",
         FAILURE("encryption-required"),
         SASL_ENCRYPTION_REQUIRED},
        /* XEP-0178 §3 step 11b: the certificate does not identify the domain */
        {ROW,
         {true, true, false, "capulet.lit"},
         "EXTERNAL",
         "=",
         FAILURE("not-authorized"),
         SASL_NOT_AUTHORIZED},
        {ROW,
         {true, false, true, "capulet.lit"},
         "EXTERNAL",
         "Y2FwdWxldC5saXQ=",
         FAILURE("not-authorized"),
         SASL_NOT_AUTHORIZED},
        {ROW,
         {true, true, true, NULL},
         "EXTERNAL",
         "=",
         FAILURE("not-authorized"),
         SASL_NOT_AUTHORIZED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct external x;
        struct external_event ev;
        external_init(&x, &rows[i].peer);
        enum sasl_ev k = external_start(&x, rows[i].mech, strlen(rows[i].mech), rows[i].b64,
                                        strlen(rows[i].b64), &out, &ev);
        const char *got = take();
        bool ok = rows[i].cond ? k == SASL_EV_FAILURE && ev.cond == rows[i].cond
                               : k == SASL_EV_SUCCESS && ev.domain &&
                                     strcmp(ev.domain, rows[i].peer.from) == 0;
        if (!ok || strcmp(got, rows[i].answer) != 0)
            TEST_FAIL("row at %s:%d: event %d cond %d, sent '%s'", rows[i].file, rows[i].line, k,
                      ev.cond, got);
    }
}

static void exchange_test(void)
{
    struct external x;
    struct external_event ev;

    /* No initial response: an empty challenge, then the authzid in a <response/>. */
    external_init(&x, &verified);
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "", 0, &out, &ev), ==, SASL_EV_CHALLENGE);
    CHECK_STR(take(), "<challenge xmlns='" NS "'>=</challenge>");
    CHECK_INT(external_step(&x, "Y2FwdWxldC5saXQ=", 16, &out, &ev), ==, SASL_EV_SUCCESS);
    CHECK_STR(ev.domain, "capulet.lit");
    CHECK_STR(take(), SUCCESS);
    /* after success, nothing more until the stream restarts */
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "=", 1, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_MALFORMED_REQUEST);
    /* and that refusal does not reopen the exchange: a second success would authorise
     * the pair twice on one stream */
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "", 0, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(external_step(&x, "=", 1, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(external_abort(&x, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "=", 1, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_MALFORMED_REQUEST);
    take();

    /* an empty <response/> is an empty authzid */
    external_init(&x, &verified);
    external_start(&x, "EXTERNAL", 8, "", 0, &out, &ev);
    CHECK_INT(external_step(&x, "", 0, &out, &ev), ==, SASL_EV_SUCCESS);
    take();

    /* a <response/> with nothing asked, a bad one, an <abort/> */
    external_init(&x, &verified);
    CHECK_INT(external_step(&x, "=", 1, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_MALFORMED_REQUEST);
    external_start(&x, "EXTERNAL", 8, "", 0, &out, &ev);
    CHECK_INT(external_step(&x, "***", 3, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_INCORRECT_ENCODING);
    CHECK_INT(external_abort(&x, &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_ABORTED);
    take();
    /* a failure leaves room for another <auth/> (or dialback) on the same stream */
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "=", 1, &out, &ev), ==, SASL_EV_SUCCESS);
    CHECK_STR(take(), SUCCESS);

    /* an authzid longer than any domain is refused without decoding it */
    char big[2048];
    memset(big, 'Q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    external_init(&x, &verified);
    CHECK_INT(external_start(&x, "EXTERNAL", 8, big, strlen(big), &out, &ev), ==, SASL_EV_FAILURE);
    CHECK_INT(ev.cond, ==, SASL_INVALID_AUTHZID);
    take();

    /* external_init() keeps its own copy of from */
    char from[] = "capulet.lit";
    struct external_peer p = verified;
    p.from = from;
    external_init(&x, &p);
    from[0] = 'X';
    CHECK_INT(external_start(&x, "EXTERNAL", 8, "=", 1, &out, &ev), ==, SASL_EV_SUCCESS);
    CHECK_STR(ev.domain, "capulet.lit");
    take();
}

/* The initiating side, and what the receiving side makes of its <auth/>. */
static void client_test(void)
{
    struct external x;
    struct external_event ev;
    enum sasl_cond cond;

    CHECK_INT(external_client_auth(&out, NULL), ==, 0);
    CHECK_STR(take(), "<auth xmlns='" NS "' mechanism='EXTERNAL'>=</auth>");
    CHECK_INT(external_client_auth(&out, ""), ==, 0);
    CHECK_STR(take(), "<auth xmlns='" NS "' mechanism='EXTERNAL'>=</auth>");
    CHECK_INT(external_client_auth(&out, "capulet.lit"), ==, 0);
    const char *auth = take();
    CHECK_STR(auth, "<auth xmlns='" NS "' mechanism='EXTERNAL'>Y2FwdWxldC5saXQ=</auth>");
    struct xml_node *n = elem(auth);
    if (n) {
        const char *mech = xml_node_attr(n, "mechanism"), *text = xml_node_text(n, &arena);
        external_init(&x, &verified);
        CHECK_INT(external_start(&x, mech, strlen(mech), text, strlen(text), &out, &ev), ==,
                  SASL_EV_SUCCESS);
        take();
    }
    char big[JID_PART_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(external_client_auth(&out, big), ==, -EINVAL);
    CHECK_INT(external_client_abort(&out), ==, 0);
    CHECK_STR(take(), "<abort xmlns='" NS "'/>");

    /* XEP-0178 §3 step 9 (with its typo, <mechanism> for </mechanism>, fixed) */
    CHECK(external_client_offered(elem("<stream:features>\n<mechanisms xmlns='" NS "'>\n"
                                       "<mechanism>EXTERNAL</mechanism>\n</mechanisms>\n"
                                       "</stream:features>")));
    CHECK(external_client_offered(elem("<stream:features><mechanisms xmlns='" NS "'>"
                                       "<mechanism>SCRAM-SHA-1</mechanism><mechanism>EXTERNAL"
                                       "</mechanism></mechanisms></stream:features>")));
    /* XEP-0288's dialback example: an empty list */
    CHECK(!external_client_offered(elem("<stream:features><mechanisms xmlns='" NS "'/><bidi "
                                        "xmlns='urn:xmpp:features:bidi'/></stream:features>")));
    CHECK(!external_client_offered(elem("<stream:features><mechanisms xmlns='" NS "'>"
                                        "<mechanism>EXTERNAL-X</mechanism></mechanisms>"
                                        "</stream:features>")));

    static const struct {
        const char *file;
        int line;
        const char *xml;
        enum sasl_ev kind;
        enum sasl_cond cond;
    } rows[] = {
        {ROW, SUCCESS, SASL_EV_SUCCESS, SASL_COND_NONE},
        {ROW, FAILURE("not-authorized"), SASL_EV_FAILURE, SASL_NOT_AUTHORIZED},
        {ROW,
         "<failure xmlns='" NS "'><text xml:lang='en'>Certificate host name mismatch</text>"
         "<not-authorized/></failure>",
         SASL_EV_FAILURE, SASL_NOT_AUTHORIZED},
        {ROW, FAILURE("invalid-authzid"), SASL_EV_FAILURE, SASL_INVALID_AUTHZID},
        {ROW, FAILURE("made-up"), SASL_EV_FAILURE, SASL_COND_NONE},
        {ROW, "<failure xmlns='" NS "'/>", SASL_EV_FAILURE, SASL_COND_NONE},
        {ROW, "<challenge xmlns='" NS "'>=</challenge>", SASL_EV_CHALLENGE, SASL_COND_NONE},
        {ROW, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", 0, SASL_COND_NONE},
        {ROW, "<auth xmlns='" NS "'/>", 0, SASL_COND_NONE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct xml_node *a = elem(rows[i].xml);
        if (!a)
            continue;
        enum sasl_ev k = external_client_answer(a, &cond);
        if (k != rows[i].kind || cond != rows[i].cond)
            TEST_FAIL("row at %s:%d: %d %d", rows[i].file, rows[i].line, k, cond);
    }
}

int main(void)
{
    arena_init(&arena, 4096);
    RUN(offer_test);
    RUN(auth_test);
    RUN(exchange_test);
    RUN(client_test);
    buf_free(&out);
    arena_free(&arena);
    return test_done("common/auth/external");
}
