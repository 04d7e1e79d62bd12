/* Unit tests of common/xmpp/xml.c and common/xmpp/xml_tree.c. Every table case is fed whole and
 * in chunks of 1, 2, 3, 5 and 7 bytes, through the same buffer discipline c2s uses
 * (append, parse, release, move), and must give the same event trace each time. */
#include "common/core/buf.h"
#include "common/xmpp/xml.h"
#include "common/xmpp/xml_tree.h"
#include "test.h"

#include <stdlib.h>

#define HDR                                                                                        \
    "<?xml version='1.0'?><stream:stream from='juliet@im.example.com' to='im.example.com' "        \
    "version='1.0' xml:lang='en' xmlns='jabber:client' "                                           \
    "xmlns:stream='http://etherx.jabber.org/streams'>"
#define HDR_TRACE "O[to=im.example.com,from=juliet@im.example.com,lang=en,version=1.0]"
#define STREAM_NS "xmlns:stream='http://etherx.jabber.org/streams'"

static char scratch[16384];

struct trace {
    char s[8192];
    size_t n;
};

static void put(struct trace *t, const char *p, size_t n)
{
    if (t->n + n < sizeof t->s) {
        memcpy(t->s + t->n, p, n);
        t->n += n;
        t->s[t->n] = '\0';
    }
}

static void puts_(struct trace *t, const char *s)
{
    put(t, s, strlen(s));
}

static const char *const attr_names[] = {"to", "from", "type", "id", "lang", "version"};

static void put_attrs(struct trace *t, const struct xml_event *ev)
{
    bool first = true;
    puts_(t, "[");
    for (int i = 0; i < XML_ATTR_KNOWN; i++) {
        if (!ev->attr[i].p)
            continue;
        if (!first)
            puts_(t, ",");
        first = false;
        puts_(t, attr_names[i]);
        puts_(t, "=");
        put(t, ev->attr[i].p, ev->attr[i].len);
    }
    puts_(t, "]");
}

/* Feeds input[0..len) in chunks of `chunk` bytes (0: all at once) and records the
 * events. Stops at the first error. */
static void run_lim(const char *input, size_t len, size_t chunk, const struct xml_limits *lim,
                    enum xml_content content, struct trace *t)
{
    struct xml_parser p;
    struct xml_event ev;
    char *buf = malloc(len + 1);
    size_t have = 0, fed = 0;

    t->n = 0;
    t->s[0] = '\0';
    xml_init(&p, lim, content, scratch, sizeof scratch);
    while (fed < len) {
        size_t n = chunk ? chunk : len;
        if (n > len - fed)
            n = len - fed;
        memcpy(buf + have, input + fed, n);
        have += n;
        fed += n;
        for (;;) {
            enum xml_ev_kind k = xml_next(&p, buf, have, &ev);
            if (k == XML_EV_NONE)
                break;
            if (t->n)
                puts_(t, " ");
            if (k == XML_EV_STREAM_OPEN) {
                puts_(t, "O");
                put_attrs(t, &ev);
            } else if (k == XML_EV_STANZA) {
                puts_(t, "S{");
                put(t, ev.ns.p, ev.ns.len);
                puts_(t, "}");
                put(t, ev.name.p, ev.name.len);
                put_attrs(t, &ev);
                if (ev.flags & XML_F_STREAM_BIND)
                    puts_(t, "!");
                puts_(t, "=");
                put(t, ev.raw.p, ev.raw.len);
            } else if (k == XML_EV_STREAM_CLOSE) {
                puts_(t, "C");
            } else if (k == XML_EV_ERROR) {
                puts_(t, "E:");
                puts_(t, xml_err_condition(ev.err));
                goto out;
            }
        }
        size_t drop = xml_release(&p);
        memmove(buf, buf + drop, have - drop);
        have -= drop;
    }
out:
    xml_free(&p);
    free(buf);
}

static void run(const char *input, size_t chunk, struct trace *t)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    run_lim(input, strlen(input), chunk, &lim, XML_CONTENT_CLIENT, t);
}

static const size_t chunks[] = {0, 1, 2, 3, 5, 7};

struct xcase {
    const char *in;
    const char *want;
};

static void check_cases(const struct xcase *cs, size_t n)
{
    static struct trace t;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            run(cs[i].in, chunks[c], &t);
            if (strcmp(t.s, cs[i].want) != 0) {
                TEST_FAIL("case %zu, chunk %zu:\n  input: %s\n  got:   %s\n  want:  %s", i,
                          chunks[c], cs[i].in, t.s, cs[i].want);
                break;
            }
        }
}

#define CHECK_CASES(cs) check_cases((cs), sizeof(cs) / sizeof((cs)[0]))

/* ---- streams that are fine ------------------------------------------------------------- */

static const struct xcase good[] = {
    /* RFC 6120 §9.1.1 stream header, then nothing */
    {HDR, HDR_TRACE},
    /* RFC 6121 §5.2.2 chat message, then the close */
    {HDR "<message from='juliet@example.com/balcony' id='ktx72v49' to='romeo@example.net' "
         "type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>"
         "</stream:stream>",
     HDR_TRACE " S{jabber:client}message[to=romeo@example.net,from=juliet@example.com/balcony,"
               "type=chat,id=ktx72v49,lang=en]=<message from='juliet@example.com/balcony' "
               "id='ktx72v49' to='romeo@example.net' type='chat' xml:lang='en'><body>Art thou "
               "not Romeo, and a Montague?</body></message> C"},
    /* whitespace keepalives between stanzas, an empty stanza, double quotes */
    {HDR
     " \n\t\r <presence/>  <iq type=\"get\" id=\"r1\"><query xmlns=\"jabber:iq:roster\"/></iq>\n",
     HDR_TRACE " S{jabber:client}presence[]=<presence/> S{jabber:client}iq[type=get,id=r1]="
               "<iq type=\"get\" id=\"r1\"><query xmlns=\"jabber:iq:roster\"/></iq>"},
    /* known attributes decoded: entities, character references, whitespace normalised */
    {HDR "<message to='a&amp;b&#x40;c&#64;d' id='x&lt;&gt;&quot;&apos;y' type='c\nh\tat'/>",
     HDR_TRACE " S{jabber:client}message[to=a&b@c@d,type=c h at,id=x<>\"'y]=<message "
               "to='a&amp;b&#x40;c&#64;d' id='x&lt;&gt;&quot;&apos;y' type='c\nh\tat'/>"},
    /* blanks around '=' and before '>' and '/>' */
    {HDR "<presence to = 'x'  ></presence ><presence id='2' />",
     HDR_TRACE " S{jabber:client}presence[to=x]=<presence to = 'x'  ></presence > "
               "S{jabber:client}presence[id=2]=<presence id='2' />"},
    /* nested content: references, CDATA, non-ASCII text, '>' alone, namespaces */
    {HDR "<message><body>caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6 a &gt; b > c &#x1F426;"
         "<![CDATA[<not a tag> & ]] ]>]]></body><x xmlns='urn:x'><y:z xmlns:y='urn:y' "
         "y:a='1' a='2'/></x></message>",
     HDR_TRACE " S{jabber:client}message[]=<message><body>caf\xc3\xa9 \xe2\x82\xac "
               "\xf0\x9f\x90\xa6 a &gt; b > c &#x1F426;<![CDATA[<not a tag> & ]] ]>]]></body>"
               "<x xmlns='urn:x'><y:z xmlns:y='urn:y' y:a='1' a='2'/></x></message>"},
    /* first-level elements of other namespaces (RFC 6120 §5.4.2.1 STARTTLS) */
    {HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
     HDR_TRACE " S{urn:ietf:params:xml:ns:xmpp-tls}starttls[]="
               "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
    /* the stream prefix on a first-level element, and a prefix bound on the header used
     * inside a stanza: flagged, its bytes alone do not carry the binding */
    {"<stream:stream xmlns='jabber:client' xmlns:x='urn:x' " STREAM_NS ">"
     "<stream:error/><message><x:y/></message><message x:a='1'/>",
     "O[] S{http://etherx.jabber.org/streams}error[]!=<stream:error/> "
     "S{jabber:client}message[]!=<message><x:y/></message> "
     "S{jabber:client}message[]!=<message x:a='1'/>"},
    /* an empty stream, a UTF-8 byte order mark, an XML declaration with encoding */
    {"\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"UTF-8\" ?><stream:stream "
     "xmlns='jabber:client' " STREAM_NS "/>",
     "O[] C"},
    /* a default namespace undeclared and redeclared inside a stanza */
    {HDR "<iq><a xmlns=''><b xmlns='urn:b'/></a></iq>",
     HDR_TRACE " S{jabber:client}iq[]=<iq><a xmlns=''><b xmlns='urn:b'/></a></iq>"},
    /* a stanza that declares its own default namespace (keeps the header's bindings out) */
    {HDR "<message xmlns='jabber:client' to='x'/>",
     HDR_TRACE " S{jabber:client}message[to=x]=<message xmlns='jabber:client' to='x'/>"},
    /* bytes after the close are ignored */
    {HDR "</stream:stream> junk <", HDR_TRACE " C"},
    /* non-ASCII names and attribute values */
    {HDR "<message><\xc3\xa9l\xc3\xa9ment \xc3\xa0='\xc3\xa9t\xc3\xa9'/></message>",
     HDR_TRACE " S{jabber:client}message[]=<message><\xc3\xa9l\xc3\xa9ment "
               "\xc3\xa0='\xc3\xa9t\xc3\xa9'/></message>"},
};

static void test_good_streams(void)
{
    CHECK_CASES(good);
}

/* ---- RFC 6120 §11 violations ----------------------------------------------------------- */

static const struct xcase bad[] = {
    /* §11.1 restricted XML */
    {HDR "<message><!-- hi --></message>", HDR_TRACE " E:restricted-xml"},
    {"<!-- c --><stream:stream/>", "E:restricted-xml"},
    {HDR "<?foo bar?>", HDR_TRACE " E:restricted-xml"},
    {"<?xml-stylesheet href='a'?>", "E:restricted-xml"},
    {"<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]>", "E:restricted-xml"},
    {HDR "<message><body>&foo;</body></message>", HDR_TRACE " E:restricted-xml"},
    {HDR "<message to='&ent;'/>", HDR_TRACE " E:restricted-xml"},
    /* well-formedness */
    {HDR "<message></presence>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to='a' to='b'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns:a='urn:x' xmlns:b='urn:x' a:t='1' b:t='2'/>",
     HDR_TRACE " E:not-well-formed"},
    {HDR "<message to='a'from='b'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to='a<b'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to=a/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>a & b</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>&#0;</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>&#xD800;</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>&#x110000;</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>&#12a;</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>&#;</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>a ]]> b</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\x01</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to='\x1f'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<1message/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<:message/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<a:b:c xmlns:a='urn:a'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><a></a ></b></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message/ >", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><![CDATX[x]]></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "</stream:foo>", HDR_TRACE " E:not-well-formed"},
    {"hello", "E:not-well-formed"},
    {"</stream:stream>", "E:not-well-formed"},
    /* invalid UTF-8: overlong, surrogate, stray continuation, U+FFFE, beyond U+10FFFF */
    {HDR "<message><body>\xc0\x80</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\xed\xa0\x80</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\x80</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\xef\xbf\xbe</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\xf4\x90\x80\x80</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message><body>\xe2\x82</body></message>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message to='\xff'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<m\xc3\x97/>", HDR_TRACE " E:not-well-formed"}, /* U+00D7 is no name character */
    /* Namespaces in XML */
    {HDR "<foo:message/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message foo:a='1'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns:p=''/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns:xml='urn:not-xml'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>",
     HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns:xmlns='urn:x'/>", HDR_TRACE " E:not-well-formed"},
    {HDR "<message xmlns='http://www.w3.org/2000/xmlns/'/>", HDR_TRACE " E:not-well-formed"},
    /* RFC 6120 §4.8: stream and content namespaces, prefixes */
    {"<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong'>", "E:invalid-namespace"},
    {"<stream:stream xmlns='jabber:server' " STREAM_NS ">", "E:invalid-namespace"},
    {"<stream:stream " STREAM_NS ">", "E:invalid-namespace"},
    {"<foobar:stream xmlns='jabber:client' "
     "xmlns:foobar='http://etherx.jabber.org/streams'>",
     "E:bad-namespace-prefix"},
    {"<stream xmlns='http://etherx.jabber.org/streams'>", "E:bad-namespace-prefix"},
    {"<stream:foo xmlns='jabber:client' " STREAM_NS ">", "E:bad-format"},
    {"<html>", "E:invalid-namespace"},
    {HDR "<c:message xmlns:c='jabber:client'/>", HDR_TRACE " E:bad-namespace-prefix"},
    /* XMPP at the first level */
    {HDR "hello<message/>", HDR_TRACE " E:bad-format"},
    {HDR "<![CDATA[x]]>", HDR_TRACE " E:bad-format"},
    /* encodings and versions (RFC 6120 §11.6) */
    {"\xfe\xff\x00<", "E:unsupported-encoding"},
    {"\xff\xfe<\x00", "E:unsupported-encoding"},
    {"<?xml version='1.0' encoding='ISO-8859-1'?>", "E:unsupported-encoding"},
    {"<?xml version='2.0'?>", "E:unsupported-version"},
    {"<?xml encoding='UTF-8'?>", "E:not-well-formed"},
    {"\xef\xbb<", "E:not-well-formed"},
    /* an error is sticky: nothing after it is reported */
    {HDR "<a><!-- x --></a><message/>", HDR_TRACE " E:restricted-xml"},
};

static void test_bad_streams(void)
{
    CHECK_CASES(bad);
}

/* jabber:server streams (s2s) accept their own content namespace only. */
static void test_server_content(void)
{
    struct trace t;
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    const char *s2s =
        "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' " STREAM_NS
        " to='b.example' version='1.0'><db:result to='b.example' "
        "from='a.example'>abc</db:result>";
    run_lim(s2s, strlen(s2s), 0, &lim, XML_CONTENT_SERVER, &t);
    CHECK_STR(t.s, "O[to=b.example,version=1.0] S{jabber:server:dialback}result[to=b.example,"
                   "from=a.example]!=<db:result to='b.example' from='a.example'>abc</db:result>");
    run_lim(s2s, strlen(s2s), 0, &lim, XML_CONTENT_CLIENT, &t);
    CHECK_STR(t.s, "E:invalid-namespace");
}

/* ---- limits (policy-violation) -------------------------------------------------------- */

static void check_limit(const char *in, struct xml_limits lim, const char *want)
{
    struct trace t;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        run_lim(in, strlen(in), chunks[c], &lim, XML_CONTENT_CLIENT, &t);
        if (strcmp(t.s, want) != 0) {
            TEST_FAIL("chunk %zu: %s\n  got:  %s\n  want: %s", chunks[c], in, t.s, want);
            return;
        }
    }
}

/* The smallest header a client may send: 2 attributes, names of at most 13 bytes. */
#define MIN_HDR "<stream:stream xmlns='jabber:client' " STREAM_NS ">"

static void test_limits(void)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    /* longer than MIN_HDR */
    const char *stanza = "<message to='x'><body>01234567890123456789012345678901234567890123456"
                         "789</body></message>";
    char in[512], want[512];

    snprintf(in, sizeof in, "%s%s%s", MIN_HDR, stanza, stanza);
    snprintf(want, sizeof want,
             "O[] S{jabber:client}message[to=x]=%s S{jabber:client}"
             "message[to=x]=%s",
             stanza, stanza);
    lim.max_stanza = (uint32_t)strlen(stanza);
    check_limit(in, lim, want);
    lim.max_stanza--;
    check_limit(in, lim, "O[] E:policy-violation");
    /* The stream header is bounded too. */
    lim.max_stanza = (uint32_t)strlen(MIN_HDR) - 1;
    check_limit(in, lim, "E:policy-violation");

    lim = XML_LIMITS_DEFAULT;
    lim.max_depth = 3;
    check_limit(MIN_HDR "<a><b><c/></b></a>", lim, "O[] S{jabber:client}a[]=<a><b><c/></b></a>");
    check_limit(MIN_HDR "<a><b><c><d/></c></b></a>", lim, "O[] E:policy-violation");

    lim = XML_LIMITS_DEFAULT;
    lim.max_attrs = 2;
    check_limit(MIN_HDR "<a x='1' y='2'/>", lim, "O[] S{jabber:client}a[]=<a x='1' y='2'/>");
    check_limit(MIN_HDR "<a x='1' y='2' z='3'/>", lim, "O[] E:policy-violation");
    check_limit(MIN_HDR "<a><b xmlns:p='urn:p' xmlns:q='urn:q'><c xmlns:r='urn:r'/></b></a>", lim,
                "O[] E:policy-violation"); /* bindings in scope at once */

    lim = XML_LIMITS_DEFAULT;
    lim.max_name = 13;
    check_limit(MIN_HDR "<abcdefghijklm abcdefghijklm='1'/>", lim,
                "O[] S{jabber:client}abcdefghijklm[]=<abcdefghijklm abcdefghijklm='1'/>");
    check_limit(MIN_HDR "<abcdefghijklmn/>", lim, "O[] E:policy-violation");
    check_limit(MIN_HDR "<a abcdefghijklmn='1'/>", lim, "O[] E:policy-violation");
    check_limit(MIN_HDR "<a></abcdefghijklmn>", lim, "O[] E:policy-violation");
}

/* A peer that never finishes a stanza cannot make the parser's buffer grow: once the
 * incomplete stanza exceeds the limit, the error comes. */
static void test_unbounded_stanza(void)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    static char buf[70000];
    size_t have = strlen(HDR);

    lim.max_stanza = 65536;
    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    memcpy(buf, HDR, have);
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_NONE);
    size_t drop = xml_release(&p);
    CHECK_INT(drop, ==, have);
    have = 0;
    memcpy(buf, "<message><body>", 15);
    have = 15;
    enum xml_ev_kind k = XML_EV_NONE;
    while (have < sizeof buf && k == XML_EV_NONE) {
        buf[have++] = 'a';
        k = xml_next(&p, buf, have, &ev);
        CHECK_INT(xml_release(&p), ==, 0);
    }
    CHECK_INT(k, ==, XML_EV_ERROR);
    CHECK_INT(ev.err, ==, XML_ERR_POLICY_VIOLATION);
    CHECK_INT(have, ==, 65537);
    xml_free(&p);
}

/* ---- the buffer contract --------------------------------------------------------------- */

static void test_release(void)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    char buf[1024];
    const char *in = HDR "<presence/> <message><body>x";
    size_t have = strlen(in), hdr = strlen(HDR);

    memcpy(buf, in, have);
    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_STANZA);
    CHECK_INT(ev.raw.p - buf, ==, hdr);
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_NONE);
    /* Everything before the incomplete <message> may go. */
    size_t drop = xml_release(&p);
    CHECK_INT(drop, ==, hdr + strlen("<presence/> "));
    memmove(buf, buf + drop, have - drop);
    have -= drop;
    CHECK_INT(xml_release(&p), ==, 0);
    memcpy(buf + have, "</body></message>", 17);
    have += 17;
    CHECK_INT(xml_next(&p, buf, have, &ev), ==, XML_EV_STANZA);
    CHECK_INT(ev.raw.p - buf, ==, 0);
    CHECK_SPAN(ev.raw.p, ev.raw.len, "<message><body>x</body></message>");
    CHECK_INT(ev.head_len, ==, 9);
    CHECK_INT(xml_release(&p), ==, have);

    /* Idle: the work area goes, and comes back for the next stanza. */
    CHECK(p.w != NULL);
    xml_trim(&p);
    CHECK(p.w == NULL);
    memcpy(buf, "<presence id='7'/>", 18);
    CHECK_INT(xml_next(&p, buf, 18, &ev), ==, XML_EV_STANZA);
    CHECK_INT(ev.head_len, ==, 18);
    CHECK_SPAN(ev.attr[XML_ATTR_ID].p, ev.attr[XML_ATTR_ID].len, "7");

    /* A restart forgets the stream. */
    xml_reset(&p);
    CHECK_INT(xml_next(&p, "<presence/>", 11, &ev), ==, XML_EV_ERROR);
    CHECK_INT(ev.err, ==, XML_ERR_INVALID_NAMESPACE);
    CHECK_INT(xml_next(&p, "<presence/>", 11, &ev), ==, XML_EV_ERROR);
    xml_free(&p);
}

/* The raw span of each known attribute lets c2s cut `from` out of the start tag. */
static void test_attr_raw(void)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    const char *in = HDR "<message to='r@x' from = \"spoof@evil\" type='chat'/>";

    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STANZA);
    CHECK_SPAN(ev.raw.p + ev.attr_raw[XML_ATTR_FROM].off, ev.attr_raw[XML_ATTR_FROM].len,
               "from = \"spoof@evil\"");
    CHECK_SPAN(ev.raw.p + ev.attr_raw[XML_ATTR_TO].off, ev.attr_raw[XML_ATTR_TO].len, "to='r@x'");
    CHECK_INT(ev.attr_raw[XML_ATTR_ID].len, ==, 0);
    xml_free(&p);
}

/* Random splits of a long, varied stream give the same trace as the whole: a fixed seed
 * so a failure replays. */
static void test_random_splits(void)
{
    static char in[200000];
    static struct trace whole, part;
    size_t n = 0;
    const char *stanzas[] = {
        "<message to='a@b' type='chat' id='1'><body>hello &amp; caf\xc3\xa9</body></message>",
        "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' "
        "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
        "<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='x@y' name='X'>"
        "<group>G</group></item></query></iq>",
        "\n  ",
        "<message><body><![CDATA[<b>]]>&#x1F426;</body></message>",
    };
    n = (size_t)snprintf(in, sizeof in, "%s", HDR);
    uint32_t seed = 12345;
    for (int i = 0; i < 400; i++) {
        seed = seed * 1103515245u + 12345u;
        const char *s = stanzas[(seed >> 16) % 5];
        size_t l = strlen(s);
        memcpy(in + n, s, l);
        n += l;
    }
    memcpy(in + n, "</stream:stream>", 16);
    n += 16;
    in[n] = '\0';

    struct xml_limits lim = XML_LIMITS_DEFAULT;
    run_lim(in, n, 0, &lim, XML_CONTENT_CLIENT, &whole);
    CHECK(strstr(whole.s, " C") != NULL || whole.n >= sizeof whole.s - 200);
    for (int round = 0; round < 20; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 97;
        run_lim(in, n, chunk, &lim, XML_CONTENT_CLIENT, &part);
        if (strcmp(whole.s, part.s) != 0) {
            TEST_FAIL("chunk %zu differs", chunk);
            break;
        }
    }
}

/* ---- decoding, the tree ---------------------------------------------------------------- */

static void test_decode(void)
{
    char out[64];
    const char *in = "a&lt;&gt;&amp;&apos;&quot;&#65;&#x42;&#xe9;&#x1F426;\r\nb\rc";
    size_t n = xml_decode(in, strlen(in), false, out);
    CHECK_SPAN(out, n, "a<>&'\"AB\xc3\xa9\xf0\x9f\x90\xa6\nb\nc");
    n = xml_decode("a\tb\nc\r\nd", 8, true, out);
    CHECK_SPAN(out, n, "a b c d");
}

static void test_tree(void)
{
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    struct arena a;
    const char *in = "<stream:stream xmlns='jabber:client' xmlns:ex='urn:ex' " STREAM_NS ">"
                     "<iq type='result' id='r1'><query xmlns='jabber:iq:roster' ver='ver7'>"
                     "<item jid='nurse@example.com' name='N&amp;rse'/>"
                     "<item jid='romeo@example.net' subscription='both'><group>Friends</group>"
                     "<group>A &lt; <![CDATA[B]]></group></item><ex:e ex:k='v'>t</ex:e>"
                     "</query></iq>";

    arena_init(&a, 1024);
    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STANZA);
    CHECK(ev.flags & XML_F_STREAM_BIND);
    struct xml_node *iq = xml_tree_parse(&p, ev.raw.p, ev.raw.len, &a, scratch, sizeof scratch);
    CHECK(iq != NULL);
    if (!iq)
        goto out;
    CHECK_STR(iq->name.p, "iq");
    CHECK_STR(iq->ns.p, "jabber:client");
    CHECK_STR(xml_node_attr(iq, "type"), "result");
    CHECK(xml_node_attr(iq, "nope") == NULL);
    struct xml_node *q = xml_node_child(iq, "query", "jabber:iq:roster");
    CHECK(q != NULL && xml_node_child(iq, "query", "jabber:client") == NULL);
    if (!q)
        goto out;
    CHECK_STR(xml_node_attr(q, "ver"), "ver7");
    struct xml_node *item = xml_node_child(q, "item", "jabber:iq:roster");
    CHECK(item != NULL);
    if (!item)
        goto out;
    CHECK_STR(xml_node_attr(item, "name"), "N&rse");
    item = xml_node_next(item, "item", NULL);
    CHECK(item != NULL);
    if (!item)
        goto out;
    CHECK_STR(xml_node_attr(item, "jid"), "romeo@example.net");
    struct xml_node *g = xml_node_child(item, "group", NULL);
    CHECK_STR(xml_node_text(g, &a), "Friends");
    g = xml_node_next(g, "group", NULL);
    CHECK(g != NULL);
    if (g)
        CHECK_STR(xml_node_text(g, &a), "A < B");
    CHECK(xml_node_next(item, "item", NULL) == NULL);
    struct xml_node *e = xml_node_child(q, "e", "urn:ex");
    CHECK(e != NULL);
    if (e) {
        CHECK_INT(e->nattrs, ==, 1);
        CHECK_STR(e->attrs[0].ns.p, "urn:ex");
        CHECK_STR(e->attrs[0].value.p, "v");
        CHECK(xml_node_attr(e, "k") == NULL); /* prefixed: not the unprefixed "k" */
        CHECK_STR(xml_node_text(e, &a), "t");
    }
    CHECK_STR(xml_node_text(iq, &a), "");

    /* A standalone stanza, as the router sees one, needs no stream. */
    const char *alone = "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>";
    struct xml_node *t = xml_tree_parse(NULL, alone, strlen(alone), &a, scratch, sizeof scratch);
    CHECK(t && xml_node_child(t, "ping", "urn:xmpp:ping"));
    CHECK(t && strcmp(t->ns.p, "jabber:client") == 0);
    CHECK(xml_tree_parse(NULL, "<iq><a></iq>", 12, &a, scratch, sizeof scratch) == NULL);
out:
    xml_free(&p);
    arena_free(&a);
}

/* xml_node_write(): a subtree written out stands alone and reads back the same: each
 * element's namespace declared where it changes, prefixed attributes with a prefix of
 * their own, text and values escaped. */
static void test_node_write(void)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"<iq><item><geoloc xmlns='http://jabber.org/protocol/geoloc'><text>a &amp; &lt;b&gt;</text>"
         "</geoloc></item></iq>",
         "<geoloc xmlns='http://jabber.org/protocol/geoloc'><text>a &amp; &lt;b&gt;</text></geoloc>"},
        {"<iq><item><p:x xmlns:p='urn:a' xmlns='urn:b' p:k='v&apos;' xml:lang='en'><y/><p:z/></p:x></item></iq>",
         "<x xmlns='urn:a' xmlns:a0='urn:a' a0:k='v&apos;' xml:lang='en'><y xmlns='urn:b'/>"
         "<z/></x>"},
        {"<iq><item><n xmlns=''><m xmlns='urn:c'/></n></item></iq>",
         "<n xmlns=''><m xmlns='urn:c'/></n>"},
    };
    struct arena a;
    arena_init(&a, 4096);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xml_node *iq =
            xml_tree_parse(NULL, cases[i].in, strlen(cases[i].in), &a, scratch, sizeof scratch);
        struct xml_node *item = iq ? xml_node_child(iq, "item", NULL) : NULL;
        struct xml_node *el = item ? item->children : NULL;
        struct buf b = {0};
        CHECK(el != NULL);
        if (!el)
            continue;
        CHECK_INT(xml_node_write(&b, el, NULL), ==, 0);
        if (buf_used(&b) != strlen(cases[i].want) || memcmp(buf_data(&b), cases[i].want, buf_used(&b)))
            TEST_FAIL("case %zu: '%.*s', expected '%s'", i, (int)buf_used(&b), buf_data(&b),
                      cases[i].want);
        /* It parses on its own, to the same names. */
        struct xml_node *back =
            xml_tree_parse(NULL, buf_data(&b), buf_used(&b), &a, scratch, sizeof scratch);
        CHECK(back && !strcmp(back->name.p, el->name.p) && !strcmp(back->ns.p, el->ns.p));
        buf_free(&b);
        arena_reset(&a);
    }
    arena_free(&a);
}

/* A stanza using prefixes bound on the stream header can be made to stand alone: it gets
 * the declarations of exactly the prefixes it takes from the header, never one it
 * declares itself, and the result parses on its own (no attribute twice). */
static void test_stream_decls(void)
{
    static const struct {
        const char *stanza, *decls;
    } cases[] = {
        {"<message><x:y/></message>", " xmlns:x='urn:a&amp;b'"},
        {"<message>hi</message>", ""},
        /* Its own declaration wins over the header's: nothing to add, nothing twice. */
        {"<message xmlns:x='urn:mine'><x:y/></message>", ""},
        {"<message xmlns:x='urn:a&amp;b' xmlns:z='urn:z'><x:y z:k='v'/></message>", ""},
        /* An attribute's prefix counts; the header's order is kept. */
        {"<message><b z:k='v'/><x:y/></message>", " xmlns:x='urn:a&amp;b' xmlns:z='urn:z'"},
        /* A child's declaration covers only that child: the sibling takes the header's. */
        {"<message><a xmlns:x='urn:o'><x:b/></a><x:c/></message>", " xmlns:x='urn:a&amp;b'"},
        {"<message><a xmlns:x='urn:o'><x:b/></a></message>", ""},
        /* Declaring one prefix and using another from the header. */
        {"<message xmlns:z='urn:mine'><z:a/><x:b/></message>", " xmlns:x='urn:a&amp;b'"},
        {"<message><stream:features/></message>",
         " xmlns:stream='http://etherx.jabber.org/streams'"},
    };
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    struct xml_parser p;
    struct xml_event ev;
    struct arena a;
    char out[256], alone[512];
    const char *hdr =
        "<stream:stream xmlns='jabber:client' xmlns:x='urn:a&amp;b' " STREAM_NS " xmlns:z='urn:z'>";

    arena_init(&a, 1024);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[512];
        snprintf(in, sizeof in, "%s%s", hdr, cases[i].stanza);
        xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
        CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STREAM_OPEN);
        CHECK_INT(xml_next(&p, in, strlen(in), &ev), ==, XML_EV_STANZA);
        CHECK_INT(!!(ev.flags & XML_F_STREAM_BIND), ==, cases[i].decls[0] != '\0');
        size_t n = xml_stream_decls(&p, ev.stream_binds, out, sizeof out);
        CHECK_SPAN(out, n, cases[i].decls);
        if (n)
            CHECK_INT(xml_stream_decls(&p, ev.stream_binds, out, 10), ==, n); /* even short */
        n = xml_stream_decls(&p, ev.stream_binds, out, sizeof out);
        /* As c2s stamps it: the declarations right after the element's name. */
        int k = snprintf(alone, sizeof alone, "<message%.*s%.*s", (int)n, out,
                         (int)(ev.raw.len - 8), ev.raw.p + 8);
        struct xml_node *m = xml_tree_parse(NULL, alone, (size_t)k, &a, scratch, sizeof scratch);
        if (!m)
            TEST_FAIL("case %zu does not stand alone: %s", i, alone);
        arena_reset(&a);
        xml_free(&p);
    }

    /* The uses are per stanza: the next one starts with none. */
    const char *two = "<stream:stream xmlns='jabber:client' xmlns:x='urn:x' " STREAM_NS
                      "><message><x:y/></message><message/>";
    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    CHECK_INT(xml_next(&p, two, strlen(two), &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, two, strlen(two), &ev), ==, XML_EV_STANZA);
    CHECK_INT(ev.stream_binds, ==, 1u << 1); /* the header's second binding (after xmlns) */
    CHECK_INT(xml_next(&p, two, strlen(two), &ev), ==, XML_EV_STANZA);
    CHECK_INT(ev.stream_binds, ==, 0);
    CHECK(!(ev.flags & XML_F_STREAM_BIND));
    xml_free(&p);
    arena_free(&a);
}

/* Token mode: which prefixes a start tag declares, read from its parsed attributes
 * (blanks around '=', either quote), never from its bytes. */
static void test_declares(void)
{
    static const struct {
        const char *tag;
        bool dflt, x;
    } cases[] = {
        {"<message from='a@b' id='xmlns='>", false, false},
        {"<message xmlns = 'jabber:client'>", true, false},
        {"<message xmlns=\"jabber:client\" xmlns:x='urn:x'>", true, true},
        {"<message xmlns:x='urn:x'>", false, true},
        {"<message xmlns:xy='urn:x' id=\"xmlns:x='\">", false, false},
        {"<message/>", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct xml_parser p;
        struct xml_event ev;
        const char *t = cases[i].tag;
        xml_init_fragment(&p, NULL, scratch, sizeof scratch);
        CHECK_INT(xml_next(&p, t, strlen(t), &ev), ==, XML_EV_START);
        if (xml_declares(&p, t, "", 0) != cases[i].dflt)
            TEST_FAIL("case %zu: default namespace %s", i, cases[i].dflt ? "missed" : "seen");
        if (xml_declares(&p, t, "x", 1) != cases[i].x)
            TEST_FAIL("case %zu: prefix x %s", i, cases[i].x ? "missed" : "seen");
        xml_free(&p);
    }
}

static void test_conditions(void)
{
    CHECK_STR(xml_err_condition(XML_ERR_NOT_WELL_FORMED), "not-well-formed");
    CHECK_STR(xml_err_condition(XML_ERR_RESTRICTED_XML), "restricted-xml");
    CHECK_STR(xml_err_condition(XML_ERR_INVALID_NAMESPACE), "invalid-namespace");
    CHECK_STR(xml_err_condition(XML_ERR_BAD_NAMESPACE_PREFIX), "bad-namespace-prefix");
    CHECK_STR(xml_err_condition(XML_ERR_POLICY_VIOLATION), "policy-violation");
    CHECK_STR(xml_err_condition(XML_ERR_BAD_FORMAT), "bad-format");
    CHECK_STR(xml_err_condition(XML_ERR_UNSUPPORTED_ENCODING), "unsupported-encoding");
    CHECK_STR(xml_err_condition((enum xml_err)99), "undefined-condition");
}

int main(void)
{
    RUN(test_good_streams);
    RUN(test_bad_streams);
    RUN(test_server_content);
    RUN(test_limits);
    RUN(test_unbounded_stanza);
    RUN(test_release);
    RUN(test_attr_raw);
    RUN(test_random_splits);
    RUN(test_decode);
    RUN(test_tree);
    RUN(test_node_write);
    RUN(test_stream_decls);
    RUN(test_declares);
    RUN(test_conditions);
    return test_done("xml");
}
