/*
 * Tests of bench/xmppc.c and bench/bid.c: whole logins against canned server
 * transcripts (SCRAM-SHA-256 with RFC 7677's exchange, STARTTLS with PLAIN, a session iq,
 * a roster, XEP-0198 stream management), what the client answers online (pings, unknown
 * requests, subscription requests, ack requests), and how each kind of failure is
 * reported. Every transcript is fed whole and
 * in chunks of 1, 2, 3 and 7 bytes and must give the same events and the same output.
 */
#include "bench/bid.h"
#include "bench/xmppc.h"
#include "test.h"

#include <stdlib.h>

#define SRV_HDR                                                                                    \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' "                    \
    "version='1.0' xml:lang='en'>"
#define CLI_HDR                                                                                    \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"
#define NS_SASL  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"
#define NS_TLS   "xmlns='urn:ietf:params:xml:ns:xmpp-tls'"
#define NS_BIND  "xmlns='urn:ietf:params:xml:ns:xmpp-bind'"
#define MECHS(m) "<mechanisms " NS_SASL ">" m "</mechanisms>"

static struct xmppc_shared sh;
static struct buf sent; /* what the client wrote */
static char trace[4096];

static int write_cb(void *ud, const char *p, size_t n)
{
    (void)ud;
    return buf_append(&sent, p, n);
}

static void tr(const char *s)
{
    size_t l = strlen(trace);
    snprintf(trace + l, sizeof trace - l, "%s%s", l ? " " : "", s);
}

/* Feeds s in chunks of `chunk` bytes (0: whole) and records every event in trace. */
static void feed(struct xmppc *x, const char *s, size_t chunk)
{
    size_t n = strlen(s), off = 0;
    char tmp[64];
    do {
        size_t k = chunk && n - off > chunk ? chunk : n - off;
        char *copy = malloc(k + 1); /* a fresh buffer each time, as from a socket */
        memcpy(copy, s + off, k);
        xmppc_feed(x, copy, k);
        struct xmppc_ev ev;
        enum xmppc_ev_kind kind;
        while ((kind = xmppc_next(x, &ev)) != XMPPC_EV_NONE) {
            switch (kind) {
            case XMPPC_EV_STARTTLS:
                tr("STARTTLS");
                break;
            case XMPPC_EV_ROSTER:
                snprintf(tmp, sizeof tmp, "ROSTER[%u,%u%s]", ev.items, ev.both,
                         ev.error ? ",error" : "");
                tr(tmp);
                break;
            case XMPPC_EV_ONLINE:
                tr("ONLINE");
                break;
            case XMPPC_EV_MESSAGE:
            case XMPPC_EV_PRESENCE:
            case XMPPC_EV_IQ:
                snprintf(tmp, sizeof tmp, "%s[%.*s]",
                         kind == XMPPC_EV_MESSAGE    ? "MSG"
                         : kind == XMPPC_EV_PRESENCE ? "PRES"
                                                     : "IQ",
                         ev.x->attr[XML_ATTR_ID].p ? (int)ev.x->attr[XML_ATTR_ID].len : 1,
                         ev.x->attr[XML_ATTR_ID].p ? ev.x->attr[XML_ATTR_ID].p : "-");
                tr(tmp);
                break;
            case XMPPC_EV_SM_ACK:
                snprintf(tmp, sizeof tmp, "ACK[%u]", ev.h);
                tr(tmp);
                break;
            case XMPPC_EV_SM_REQ:
                tr("R");
                break;
            case XMPPC_EV_CLOSED:
                tr("CLOSED");
                break;
            case XMPPC_EV_FAILED:
                snprintf(tmp, sizeof tmp, "FAILED[%s:%s]", xmppc_fail_name(ev.fail), ev.detail);
                tr(tmp);
                break;
            default:
                tr("?");
            }
        }
        free(copy);
        off += k;
    } while (off < n);
}

/* What the client sent since the last call, as a string; clears it. */
static const char *took(void)
{
    static char s[4096];
    snprintf(s, sizeof s, "%.*s", (int)buf_used(&sent), buf_data(&sent));
    buf_consume(&sent, buf_used(&sent));
    return s;
}

/* CHECK_STR evaluates its argument twice: take the output once. */
#define CHECK_SENT(want)                                                                           \
    do {                                                                                           \
        const char *sent_ = took();                                                                \
        CHECK_STR(sent_, want);                                                                    \
    } while (0)

static const size_t chunks[] = {0, 1, 2, 3, 7};

static void scram_login_test(void)
{
    struct xmppc_config cfg = {.domain = "localhost",
                               .resource = "bench",
                               .tls = XMPPC_TLS_NONE,
                               .mech = SASLC_SCRAM_SHA256,
                               .test_nonce = "rOprNGfwEbeRWgbNEkqO"};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct xmppc x;
        trace[0] = '\0';
        xmppc_init(&x, &cfg, &sh, write_cb, NULL);
        CHECK_INT(xmppc_start(&x, "user", "pencil", NULL), ==, 0);
        CHECK_SENT(CLI_HDR);
        feed(&x,
             SRV_HDR
             "<stream:features>" MECHS("<mechanism>PLAIN</mechanism>"
                                       "<mechanism>SCRAM-SHA-256</mechanism>") "</stream:features>",
             chunks[c]);
        CHECK_SENT("<auth " NS_SASL " mechanism='SCRAM-SHA-256'>"
                   "biwsbj11c2VyLHI9ck9wck5HZndFYmVSV2diTkVrcU8=</auth>");
        feed(&x,
             "<challenge " NS_SASL ">cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEcFdVYTJSYVRDQWZ1eEZJbGop"
             "aE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFamI2Z1E9PSxpPTQwOTY=</challenge>",
             chunks[c]);
        CHECK_SENT("<response " NS_SASL ">Yz1iaXdzLHI9ck9wck5HZndFYmVSV2diTkVrcU8laHZZ"
                   "RHBXVWEyUmFUQ0FmdXhGSWxqKWhObEYkazAscD1kSHpiWmFwV0lrNGpVaE4rVXRl"
                   "OXl0YWc5empmTUhnc3FtbWl6N0FuZFZRPQ==</response>");
        feed(&x,
             "<success " NS_SASL ">dj02cnJpVFJCaTIzV3BSUi93dHVwK21NaFVaVW4vZEI1bkxUSlJzamw5NUc0"
             "PQ==</success>",
             chunks[c]);
        CHECK_SENT(CLI_HDR);
        feed(&x,
             SRV_HDR "<stream:features><bind " NS_BIND "/><session "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"
                     "</stream:features>",
             chunks[c]);
        CHECK_SENT("<iq type='set' id='xc-bind'><bind " NS_BIND
                   "><resource>bench</resource></bind></iq>");
        feed(&x,
             "<iq type='result' id='xc-bind'><bind " NS_BIND
             "><jid>user@localhost/bench</jid></bind></iq>",
             chunks[c]);
        CHECK_SENT("<presence/>");
        CHECK_INT(xmppc_state(&x), ==, XMPPC_PRESENCE);
        CHECK_STR(xmppc_jid(&x), "user@localhost/bench");
        feed(&x, "<presence from='user@localhost/bench' to='user@localhost/bench'/>", chunks[c]);
        CHECK_INT(xmppc_state(&x), ==, XMPPC_ONLINE);
        /* Online: a message, a ping and an unknown request, then the close. */
        feed(&x,
             "<message from='user2@localhost/bench' to='user@localhost/bench' type='chat' "
             "id='bm00000001.00000007.000001c9a3f1e2d0'><body>hi</body></message>"
             "<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
             "<iq type='get' id='d1' from='localhost'>"
             "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
             chunks[c]);
        CHECK_SENT("<iq type='result' id='p1' to='localhost'/>"
                   "<iq type='error' id='d1' to='localhost'><error type='cancel'>"
                   "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                   "</error></iq>");
        xmppc_close(&x);
        CHECK_SENT("</stream:stream>");
        feed(&x, "</stream:stream>", chunks[c]);
        CHECK_STR(trace, "ONLINE MSG[bm00000001.00000007.000001c9a3f1e2d0] CLOSED");
        if (strcmp(trace, "ONLINE MSG[bm00000001.00000007.000001c9a3f1e2d0] CLOSED"))
            fprintf(stderr, "  (chunk %zu)\n", chunks[c]);
        xmppc_free(&x);
    }
}

static void starttls_plain_roster_test(void)
{
    struct xmppc_config cfg = {.domain = "localhost",
                               .tls = XMPPC_TLS_STARTTLS,
                               .mech = SASLC_PLAIN,
                               .roster = true,
                               .accept_subs = true};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct xmppc x;
        trace[0] = '\0';
        xmppc_init(&x, &cfg, &sh, write_cb, NULL);
        xmppc_start(&x, "user", "pencil", NULL);
        took();
        feed(&x,
             SRV_HDR
             "<stream:features><starttls " NS_TLS
             "><required/></starttls>" MECHS("<mechanism>PLAIN</mechanism>") "</stream:features>",
             chunks[c]);
        CHECK_SENT("<starttls " NS_TLS "/>");
        /* Bytes after <proceed/> predate TLS: dropped. */
        feed(&x, "<proceed " NS_TLS "/><message/>", chunks[c]);
        CHECK_INT(xmppc_state(&x), ==, XMPPC_TLS);
        xmppc_tls_ready(&x);
        CHECK_SENT(CLI_HDR);
        feed(&x,
             SRV_HDR "<stream:features>" MECHS("<mechanism>PLAIN</mechanism>") "</stream:features>",
             chunks[c]);
        CHECK_SENT("<auth " NS_SASL " mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>");
        feed(&x, "<success " NS_SASL "/>", chunks[c]);
        CHECK_SENT(CLI_HDR);
        /* The session iq is sent when the server does not mark it optional; no resource
         * asked, the server picks one. */
        feed(&x,
             SRV_HDR "<stream:features><bind " NS_BIND "/><session "
                     "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>",
             chunks[c]);
        CHECK_SENT("<iq type='set' id='xc-bind'><bind " NS_BIND "></bind></iq>");
        feed(&x,
             "<iq type='result' id='xc-bind'><bind " NS_BIND "><jid>user@localhost/x1</jid>"
             "</bind></iq>",
             chunks[c]);
        CHECK_SENT("<iq type='set' id='xc-session'><session "
                   "xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
        feed(&x, "<iq type='result' id='xc-session'/>", chunks[c]);
        CHECK_SENT("<iq type='get' id='xc-roster'><query xmlns='jabber:iq:roster'/></iq>");
        feed(&x,
             "<iq type='result' id='xc-roster'><query xmlns='jabber:iq:roster' ver='1'>"
             "<item jid='a@localhost' subscription='both'/>"
             "<item jid='b@localhost' subscription='to'><group>x</group></item>"
             "<item jid='c@localhost' subscription='both'/></query></iq>",
             chunks[c]);
        CHECK_SENT("<presence/>");
        /* A subscription request is approved toward the bare JID; a roster push is
         * acknowledged; then the echo of our presence. */
        feed(&x,
             "<presence from='d@localhost/r' type='subscribe' id='s1'/>"
             "<iq type='set' id='push1'><query xmlns='jabber:iq:roster'>"
             "<item jid='d@localhost' subscription='from'/></query></iq>"
             "<presence from='user@localhost/x1'/>",
             chunks[c]);
        CHECK_SENT("<presence type='subscribed' to='d@localhost'/>"
                   "<iq type='result' id='push1'/>");
        CHECK_STR(trace, "STARTTLS ROSTER[3,2] PRES[s1] ONLINE");
        xmppc_free(&x);
    }
}

#define NS_SM "xmlns='urn:xmpp:sm:3'"
/* A PLAIN login up to the bind result, the server offering stream management. */
#define SM_LOGIN                                                                                   \
    SRV_HDR "<stream:features>" MECHS(                                                             \
        "<mechanism>PLAIN</mechanism>") "</stream:features>"                                       \
                                        "<success " NS_SASL "/>" SRV_HDR                           \
                                        "<stream:features><bind " NS_BIND "/><sm " NS_SM           \
                                        "/></stream:features><iq type='result' "                   \
                                        "id='xc-bind'><bind " NS_BIND                              \
                                        "><jid>user@localhost/r</jid></bind></iq>"

static void sm_test(void)
{
    struct xmppc_config cfg = {
        .domain = "localhost", .mech = SASLC_PLAIN, .sm = true, .ack_every = 2};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        struct xmppc x;
        trace[0] = '\0';
        xmppc_init(&x, &cfg, &sh, write_cb, NULL);
        xmppc_start(&x, "user", "pencil", NULL);
        feed(&x, SM_LOGIN, chunks[c]);
        took();
        /* Enabled after binding, before presence; counting starts with <enabled/>. */
        CHECK_INT(xmppc_state(&x), ==, XMPPC_SM);
        feed(&x, "<enabled " NS_SM " id='q1' resume='true'/>", chunks[c]);
        CHECK_SENT("<presence/>");
        feed(&x, "<presence from='user@localhost/r'/>", chunks[c]);
        CHECK_INT(xmppc_state(&x), ==, XMPPC_ONLINE);
        /* The caller's stanza is the second sent: an <r/> is due (every 2). */
        xmppc_sent(&x, 1);
        CHECK_SENT("<r " NS_SM "/>");
        /* The server's <r/> gets our h: one stanza (the echo) so far. */
        feed(&x, "<r " NS_SM "/>", chunks[c]);
        CHECK_SENT("<a " NS_SM " h='1'/>");
        feed(&x,
             "<message from='user2@localhost/r' id='m1'><body>x</body></message>"
             "<a " NS_SM " h='2'/><r " NS_SM "/>",
             chunks[c]);
        CHECK_SENT("<a " NS_SM " h='2'/>");
        /* A ping's answer is a stanza too: the third sent, no <r/> yet. */
        feed(&x, "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>", chunks[c]);
        CHECK_SENT("<iq type='result' id='p1'/>");
        /* Acknowledging more than was sent is the server's error. */
        feed(&x, "<a " NS_SM " h='4'/>", chunks[c]);
        CHECK_STR(trace, "ONLINE R MSG[m1] ACK[2] R "
                         "FAILED[protocol:bad <a/>: h missing, or beyond what was sent]");
        xmppc_free(&x);
    }
    /* A server without it, or refusing it. */
    cfg.ack_every = 0;
    struct xmppc x;
    trace[0] = '\0';
    xmppc_init(&x, &cfg, &sh, write_cb, NULL);
    xmppc_start(&x, "user", "pencil", NULL);
    feed(&x,
         SRV_HDR "<stream:features>" MECHS(
             "<mechanism>PLAIN</mechanism>") "</stream:features><success " NS_SASL "/>" SRV_HDR
                                             "<stream:features><bind " NS_BIND
                                             "/></stream:features>",
         0);
    CHECK_STR(trace, "FAILED[feature-not-offered:stream management not offered]");
    xmppc_free(&x);
    trace[0] = '\0';
    xmppc_init(&x, &cfg, &sh, write_cb, NULL);
    xmppc_start(&x, "user", "pencil", NULL);
    feed(&x,
         SM_LOGIN "<failed " NS_SM "><unexpected-request "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
         0);
    CHECK_STR(trace, "FAILED[feature-not-offered:stream management refused]");
    took();
    xmppc_free(&x);
}

/* A login from the first features on, ended by `server`; the trace it gives. */
static const char *failure(enum xmppc_tls tls, enum saslc_mech mech, const char *server)
{
    struct xmppc_config cfg = {
        .domain = "localhost", .tls = tls, .mech = mech, .test_nonce = "rOprNGfwEbeRWgbNEkqO"};
    struct xmppc x;
    trace[0] = '\0';
    xmppc_init(&x, &cfg, &sh, write_cb, NULL);
    xmppc_start(&x, "user", "pencil", NULL);
    feed(&x, server, 0);
    took();
    xmppc_free(&x);
    return trace;
}

static void failures_test(void)
{
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN,
                      SRV_HDR "<stream:features>" MECHS(
                          "<mechanism>PLAIN</mechanism>") "</stream:features><failure " NS_SASL
                                                          "><not-authorized/>"
                                                          "<text>no</text></failure>"),
              "FAILED[auth-failed:not-authorized]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_SCRAM_SHA1,
                      SRV_HDR "<stream:features>" MECHS(
                          "<mechanism>PLAIN</mechanism>") "</stream:features>"),
              "FAILED[mechanism-not-offered:SCRAM-SHA-1]");
    CHECK_STR(failure(XMPPC_TLS_STARTTLS, SASLC_PLAIN,
                      SRV_HDR "<stream:features>" MECHS(
                          "<mechanism>PLAIN</mechanism>") "</stream:features>"),
              "FAILED[tls:STARTTLS not offered]");
    CHECK_STR(failure(XMPPC_TLS_STARTTLS, SASLC_PLAIN,
                      SRV_HDR "<stream:features><starttls " NS_TLS "/></stream:features>"
                              "<failure " NS_TLS "/>"),
              "FAILED[tls:STARTTLS refused]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN,
                      SRV_HDR "<stream:error><host-unknown "
                              "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>"),
              "FAILED[stream-error:host-unknown]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN, SRV_HDR "</stream:stream>"),
              "FAILED[closed-by-server:stream closed]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN, SRV_HDR "<stream:features><a></b>"),
              "FAILED[stream-error:not-well-formed]");
    /* A server that signs with the wrong key is refused although it says success. */
    CHECK_STR(
        failure(XMPPC_TLS_NONE, SASLC_SCRAM_SHA256,
                SRV_HDR "<stream:features>" MECHS(
                    "<mechanism>SCRAM-SHA-256</mechanism>") "</stream:features><challenge " NS_SASL
                                                            ">cj1yT3ByTkdmd0ViZVJXZ2JORWtxTyVodllEc"
                                                            "FdVYTJSYVRDQWZ1eEZJbGop"
                                                            "aE5sRiRrMCxzPVcyMlphSjBTTlk3c29Fc1VFam"
                                                            "I2Z1E9PSxpPTQwOTY="
                                                            "</challenge><success " NS_SASL
                                                            ">dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS"
                                                            "1E9</success>"),
        "FAILED[sasl-protocol:server signature]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN,
                      SRV_HDR "<stream:features>" MECHS(
                          "<mechanism>PLAIN</mechanism>") "</stream:features><success " NS_SASL
                                                          "/>" SRV_HDR "<stream:features/>"),
              "FAILED[bind-failed:bind not offered]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN,
                      SRV_HDR "<stream:features>" MECHS(
                          "<mechanism>PLAIN</mechanism>") "</stream:features><success " NS_SASL
                                                          "/>" SRV_HDR
                                                          "<stream:features><bind " NS_BIND
                                                          "/></stream:features>"
                                                          "<iq type='error' id='xc-bind'><error "
                                                          "type='cancel'><conflict "
                                                          "xmlns='urn:ietf:params:xml:ns:xmpp-"
                                                          "stanzas'/></error></iq>"),
              "FAILED[bind-failed:conflict]");
    CHECK_STR(failure(XMPPC_TLS_NONE, SASLC_PLAIN, SRV_HDR "<message to='a@b'/>"),
              "FAILED[protocol:unexpected element]");
}

static void no_echo_test(void)
{
    /* A server that never echoes initial presence: the engine forces the client online. */
    struct xmppc_config cfg = {.domain = "localhost", .mech = SASLC_PLAIN};
    struct xmppc x;
    trace[0] = '\0';
    xmppc_init(&x, &cfg, &sh, write_cb, NULL);
    xmppc_start(&x, "user", "pencil", NULL);
    CHECK(!xmppc_force_online(&x));
    feed(&x,
         SRV_HDR "<stream:features>" MECHS(
             "<mechanism>PLAIN</mechanism>") "</stream:features>"
                                             "<success " NS_SASL "/>" SRV_HDR
                                             "<stream:features><bind " NS_BIND
                                             "/></stream:features><iq type='result' "
                                             "id='xc-bind'><bind " NS_BIND
                                             "><jid>user@localhost/r</jid></bind></iq>"
                                             "<presence from='other@localhost/r'/>",
         0);
    CHECK_STR(trace, "PRES[-]");
    CHECK(xmppc_force_online(&x));
    CHECK_INT(xmppc_state(&x), ==, XMPPC_ONLINE);
    took();
    xmppc_free(&x);
}

static void bid_test(void)
{
    char s[BID_LEN + 1];
    struct bid b = {.kind = BID_MESSAGE, .idx = 42, .seq = 7, .t = 0x1c9a3f1e2d0}, r;
    bid_write(s, &b);
    s[BID_LEN] = '\0';
    CHECK_STR(s, "bm0000002a.00000007.000001c9a3f1e2d0");
    CHECK(bid_parse(s, BID_LEN, &r));
    CHECK_INT(r.kind, ==, BID_MESSAGE);
    CHECK_INT(r.idx, ==, 42);
    CHECK_INT(r.seq, ==, 7);
    CHECK(r.t == 0x1c9a3f1e2d0);
    b = (struct bid){.kind = BID_PRESENCE, .idx = UINT32_MAX, .seq = UINT32_MAX, .t = UINT64_MAX};
    bid_write(s, &b);
    CHECK(bid_parse(s, BID_LEN, &r) && r.idx == UINT32_MAX && r.t == UINT64_MAX);
    CHECK(!bid_parse(s, BID_LEN - 1, &r));
    CHECK(!bid_parse("bx0000002a.00000007.000001c9a3f1e2d0", BID_LEN, &r));
    CHECK(!bid_parse("bm0000002A.00000007.000001c9a3f1e2d0", BID_LEN, &r));
    CHECK(!bid_parse("bm0000002a-00000007.000001c9a3f1e2d0", BID_LEN, &r));
    CHECK(!bid_parse("purple-1234", 11, &r));
}

int main(void)
{
    xmppc_shared_init(&sh);
    RUN(scram_login_test);
    RUN(starttls_plain_roster_test);
    RUN(failures_test);
    RUN(no_echo_test);
    RUN(sm_test);
    RUN(bid_test);
    buf_free(&sent);
    xmppc_shared_free(&sh);
    return test_done("xmppc");
}
