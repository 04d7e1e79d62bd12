/*
 * Tests of s2s/multicast.c's elements (XEP-0033): the <addresses/> of a peer's multicast
 * read and checked, found in the stanza's bytes, rewritten for its recipients (§4.4);
 * our multicast stanza for a fan-out; a disco#info read for the feature and its limits.
 */
#include "s2s/s2s.h"
#include "shm/proto.h"
#include "st.h"

#include <errno.h>
#include <string.h>

#define ADDR "<addresses xmlns='" MCAST_NS "'>"

static struct buf out;
static struct mcast_addr v[64];

static struct xml_node *addresses_of(const char *xml)
{
    struct xml_node *n = st_elem(xml);
    return n ? xml_node_child(n, "addresses", MCAST_NS) : NULL;
}

static void parse_test(void)
{
    static const struct {
        const char *file;
        int line;
        const char *xml;
        unsigned max;
        enum mcast_err err;
        unsigned n;
    } rows[] = {
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='Bob@B.test'/>"
         "<address type='bcc' jid='carol@b.test/pc'/></addresses></presence>",
         20, MCAST_OK, 2},
        {ST_ROW,
         "<message>" ADDR "<address type='to' jid='bob@b.test'/>"
         "<address type='cc' jid='carol@b.test'/><address type='replyto' "
         "jid='x@elsewhere.test'/><address type='to' jid='z@c.test' delivered='true'/>"
         "</addresses></message>",
         20, MCAST_OK, 4},
        /* limits: recipients against max; delivered ones and replyto are not recipients */
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='a@b.test'/><address type='bcc' "
         "jid='b@b.test'/><address type='bcc' jid='c@b.test'/></addresses></presence>",
         2, MCAST_NOT_ACCEPTABLE, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='a@b.test'/><address type='bcc' "
         "jid='b@b.test' delivered='true'/></addresses></presence>",
         1, MCAST_OK, 2},
        /* errors */
        {ST_ROW, "<presence>" ADDR "</addresses></presence>", 20, MCAST_BAD_REQUEST, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='replyto' jid='a@b.test'/></addresses>"
         "</presence>",
         20, MCAST_BAD_REQUEST, 0},
        {ST_ROW, "<presence>" ADDR "<address jid='a@b.test'/></addresses></presence>", 20,
         MCAST_BAD_REQUEST, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='everyone' jid='a@b.test'/></addresses>"
         "</presence>",
         20, MCAST_BAD_REQUEST, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' uri='mailto:a@b.test'/></addresses>"
         "</presence>",
         20, MCAST_BAD_REQUEST, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='a@@b.test'/></addresses>"
         "</presence>",
         20, MCAST_JID_MALFORMED, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='a@b.test'/><address type='bcc' "
         "jid='mallory@c.test'/></addresses></presence>",
         20, MCAST_FORBIDDEN, 0},
        {ST_ROW, "<presence>" ADDR "<address type='to' jid='b.test'/></addresses></presence>", 20,
         MCAST_FORBIDDEN, 0},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='a@sub.b.test'/></addresses>"
         "</presence>",
         20, MCAST_FORBIDDEN, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct xml_node *as = addresses_of(rows[i].xml);
        unsigned n = 99;
        if (!as) {
            TEST_FAIL("%s:%d: no addresses", rows[i].file, rows[i].line);
            continue;
        }
        enum mcast_err e = mcast_parse(as, "b.test", rows[i].max, &st_arena, v, &n);
        if (e != rows[i].err || (e == MCAST_OK && n != rows[i].n))
            TEST_FAIL("%s:%d: %d (%u addresses), want %d (%u)", rows[i].file, rows[i].line, e, n,
                      rows[i].err, rows[i].n);
    }
    struct xml_node *as = addresses_of(rows[0].xml);
    unsigned n;
    CHECK_INT(mcast_parse(as, "b.test", 20, &st_arena, v, &n), ==, MCAST_OK);
    CHECK_STR(v[0].jid, "bob@b.test"); /* normalised */
    CHECK_INT(v[0].type, ==, MCAST_BCC);
    CHECK_STR(v[1].jid, "carol@b.test/pc");
}

static void span_test(void)
{
    static const struct {
        const char *file;
        int line;
        const char *xml, *span; /* span NULL: -ENOENT; "": -EINVAL */
    } rows[] = {
        {ST_ROW,
         "<presence from='a@a.test/r' to='b.test'><show>away</show>" ADDR
         "<address type='bcc' jid='x@b.test'/></addresses><status>s</status></presence>",
         ADDR "<address type='bcc' jid='x@b.test'/></addresses>"},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='x@b.test'></address>\n"
         "<address type='bcc' jid='y@b.test'><x>1</x></address></addresses></presence>",
         ADDR "<address type='bcc' jid='x@b.test'></address>\n"
              "<address type='bcc' jid='y@b.test'><x>1</x></address></addresses>"},
        {ST_ROW,
         "<presence>" ADDR "<address type='bcc' jid='x@b.test'><x><![CDATA[</a>>]]>"
         "</x></address></addresses><c>]]&gt;</c></presence>",
         ADDR "<address type='bcc' jid='x@b.test'><x><![CDATA[</a>>]]></x></address></addresses>"},
        {ST_ROW,
         "<message><a:addresses xmlns:a='" MCAST_NS "'><a:address type='to' "
         "jid='x@b.test'/></a:addresses ></message>",
         "<a:addresses xmlns:a='" MCAST_NS "'><a:address type='to' jid='x@b.test'/>"
         "</a:addresses >"},
        {ST_ROW, "<presence><addresses xmlns='" MCAST_NS "'/></presence>",
         "<addresses xmlns='" MCAST_NS "'/>"},
        {ST_ROW, "<presence><x><addresses xmlns='" MCAST_NS "'/></x></presence>", NULL},
        {ST_ROW, "<presence><addresses xmlns='urn:other'/></presence>", NULL},
        {ST_ROW, "<presence/>", NULL},
        {ST_ROW, "<presence>" ADDR "</addresses>" ADDR "</addresses></presence>", ""},
        {ST_ROW, "<presence>" ADDR "</addresses>", ""}, /* not the whole element */
    };
    static char scratch[8192];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *x = rows[i].xml;
        size_t off = 0, end = 0;
        int rc = mcast_span(NULL, x, strlen(x), scratch, sizeof scratch, &off, &end);
        int want = !rows[i].span ? -ENOENT : !*rows[i].span ? -EINVAL : 0;
        if (rc != want)
            TEST_FAIL("%s:%d: %d, want %d", rows[i].file, rows[i].line, rc, want);
        else if (!rc && (end - off != strlen(rows[i].span) ||
                         memcmp(x + off, rows[i].span, end - off) != 0))
            TEST_FAIL("%s:%d: span '%.*s'", rows[i].file, rows[i].line, (int)(end - off), x + off);
    }
}

static void rewrite_test(void)
{
    unsigned n;
    struct xml_node *as =
        addresses_of("<presence>" ADDR "<address type='bcc' jid='a@b.test'/><address type='bcc' "
                     "jid='b@b.test'/></addresses></presence>");
    CHECK_INT(mcast_parse(as, "b.test", 20, &st_arena, v, &n), ==, MCAST_OK);
    CHECK_INT(mcast_rewrite(&out, v, n), ==, 0);
    CHECK_INT(buf_used(&out), ==, 0); /* only bcc: no trace of the others (§4.4) */
    as = addresses_of("<message>" ADDR "<address type='to' jid='a@b.test' desc='A &amp; co'/>"
                      "<address type='bcc' jid='secret@b.test'/><address type='replyto' "
                      "jid='r@c.test'/></addresses></message>");
    CHECK_INT(mcast_parse(as, "b.test", 20, &st_arena, v, &n), ==, MCAST_OK);
    CHECK_INT(mcast_rewrite(&out, v, n), ==, 0);
    CHECK_STR(st_out(&out), ADDR "<address type='to' jid='a@b.test' desc='A &amp; co' "
                                 "delivered='true'/><address type='replyto' jid='r@c.test'/>"
                                 "</addresses>");
}

/* A fan-out list of the given JIDs. */
static void list_of(struct buf *l, const char *const *jids, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        uint16_t len = (uint16_t)strlen(jids[i]);
        buf_append(l, &len, 2);
        buf_append(l, jids[i], len);
    }
}

static void build_test(void)
{
    /* (no JID has a quote, RFC 7622 §3.3.1: still escaped, whatever the list holds) */
    static const char *const jids[] = {"bob@b.test", "o'neil@b.test", "carol@b.test"};
    struct buf l = {0};
    list_of(&l, jids, 3);
    const char *p = buf_data(&l), *end = p + buf_used(&l);
    /* `to` goes right after the element name (TO_AT of the router's fan-out) */
    static const char empty[] = "<presence from='alice@a.test/pc'/>";
    CHECK_INT(mcast_build(&out, empty, strlen(empty), 9, "b.test", &p, end, 2), ==, 0);
    CHECK_STR(st_out(&out), "<presence to='b.test' from='alice@a.test/pc'>" ADDR
                            "<address type='bcc' jid='bob@b.test'/><address type='bcc' "
                            "jid='o&apos;neil@b.test'/></addresses></presence>");
    CHECK_INT(mcast_build(&out, empty, strlen(empty), 9, "b.test", &p, end, 5), ==, 0);
    CHECK_STR(st_out(&out), "<presence to='b.test' from='alice@a.test/pc'>" ADDR
                            "<address type='bcc' jid='carol@b.test'/></addresses></presence>");
    CHECK(p == end);
    static const char full[] = "<presence from='alice@a.test/pc'><show>away</show></presence>";
    p = buf_data(&l);
    CHECK_INT(mcast_build(&out, full, strlen(full), 9, "multicast.b.test", &p, end, 1), ==, 0);
    CHECK_STR(st_out(&out), "<presence to='multicast.b.test' from='alice@a.test/pc'>"
                            "<show>away</show>" ADDR "<address type='bcc' jid='bob@b.test'/>"
                            "</addresses></presence>");
    /* what we write reads back as one multicast for those recipients */
    static const char *const jids2[] = {"bob@b.test", "carol@b.test", "Dave@b.test"};
    buf_consume(&l, buf_used(&l));
    list_of(&l, jids2, 3);
    p = buf_data(&l);
    end = p + buf_used(&l);
    CHECK_INT(mcast_build(&out, full, strlen(full), 9, "b.test", &p, end, 3), ==, 0);
    struct xml_node *as = addresses_of(st_out(&out));
    unsigned n;
    CHECK(as && mcast_parse(as, "b.test", 3, &st_arena, v, &n) == MCAST_OK && n == 3);
    CHECK_STR(v[2].jid, "dave@b.test");
    /* a room's groupchat to its occupants there: their full JIDs, resources kept, each
     * one read back as the recipient it names */
    static const char *const occ[] = {"bob@b.test/phone", "carol@b.test/Desk Top"};
    buf_consume(&l, buf_used(&l));
    list_of(&l, occ, 2);
    p = buf_data(&l);
    end = p + buf_used(&l);
    static const char gc[] = "<message from='room@conference.a.test/alice' type='groupchat'>"
                             "<body>hi</body></message>";
    CHECK_INT(mcast_build(&out, gc, strlen(gc), 8, "b.test", &p, end, 2), ==, 0);
    const char *w = st_out(&out); /* (st_out() takes what out holds) */
    CHECK_STR(w, "<message to='b.test' from='room@conference.a.test/alice' type='groupchat'>"
                 "<body>hi</body>" ADDR "<address type='bcc' jid='bob@b.test/phone'/>"
                 "<address type='bcc' jid='carol@b.test/Desk Top'/></addresses></message>");
    as = addresses_of(w);
    CHECK(as && mcast_parse(as, "b.test", 2, &st_arena, v, &n) == MCAST_OK && n == 2);
    CHECK_STR(v[0].jid, "bob@b.test/phone");
    CHECK_STR(v[1].jid, "carol@b.test/Desk Top");
    buf_free(&l);
}

static void info_test(void)
{
    uint32_t limit = 7;
    /* ejabberd 23.01's mod_multicast without custom limits: the feature, no form */
    struct xml_node *q = xml_node_child(
        st_elem("<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
                "<identity category='service' type='multicast' name='Multicast'/>"
                "<feature var='http://jabber.org/protocol/disco#info'/>"
                "<feature var='http://jabber.org/protocol/disco#items'/>"
                "<feature var='vcard-temp'/><feature var='" MCAST_NS "'/></query></iq>"),
        "query", NULL);
    CHECK(q && mcast_info(q, &st_arena, &limit));
    CHECK_INT(limit, ==, 7);
    /* ... with limits { remote: { presence: 30 } }, and as starling writes it */
    static const char *const forms[] = {
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>" MCAST_NS "</value></field><field var='presence'><value>30</value></field></x>",
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>" MCAST_NS "#limits</value></field><field var='message'><value>5</value>"
        "</field><field var='presence'><value>30</value></field></x>",
    };
    for (unsigned i = 0; i < 2; i++) {
        char xml[1024];
        snprintf(xml, sizeof xml,
                 "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
                 "<feature var='" MCAST_NS "'/>%s</query></iq>",
                 forms[i]);
        q = xml_node_child(st_elem(xml), "query", NULL);
        limit = 0;
        CHECK(q && mcast_info(q, &st_arena, &limit));
        CHECK_INT(limit, ==, 30);
    }
    /* another form's fields, a limit that is no number: no limit */
    q = xml_node_child(
        st_elem("<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
                "<feature var='" MCAST_NS "'/><x xmlns='jabber:x:data' type='result'>"
                "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo"
                "</value></field><field var='presence'><value>3</value></field></x>"
                "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
                "<value>" MCAST_NS "</value></field><field var='presence'><value>infinite"
                "</value></field></x></query></iq>"),
        "query", NULL);
    limit = 0;
    CHECK(q && mcast_info(q, &st_arena, &limit));
    CHECK_INT(limit, ==, 0);
    /* a server without it (starling's answer to a client) */
    q = xml_node_child(
        st_elem("<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
                "<identity category='server' type='im'/><feature var='urn:xmpp:ping'/>"
                "</query></iq>"),
        "query", NULL);
    CHECK(q && !mcast_info(q, &st_arena, &limit));
}

int main(void)
{
    RUN(parse_test);
    RUN(span_test);
    RUN(rewrite_test);
    RUN(build_test);
    RUN(info_test);
    buf_free(&out);
    arena_free(&st_arena);
    return test_done("s2s/multicast");
}
