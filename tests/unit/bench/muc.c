/* Tests of bench/muc.c: the join and instant-room stanzas as sent, and what a room's
 * presence says about our occupant, on XEP-0045's own examples (§7.2.2, §10.1.2). */
#include "bench/muc.h"
#include "test.h"

#include <stdlib.h>

static char scratch[16384];

/* The tree of one stanza given as text (inside a jabber:client stream). */
static struct xml_node *tree(struct arena *a, struct xml_parser *p, const char *stanza,
                             struct xml_event *ev)
{
    static char buf[2048];
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    int n = snprintf(buf, sizeof buf,
                     "<stream:stream xmlns='jabber:client' "
                     "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>%s",
                     stanza);
    xml_init(p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    if (xml_next(p, buf, (size_t)n, ev) != XML_EV_STREAM_OPEN ||
        xml_next(p, buf, (size_t)n, ev) != XML_EV_STANZA)
        return NULL;
    static char copy[16384];
    return xml_tree_parse(p, ev->raw.p, ev->raw.len, a, copy, sizeof copy);
}

static void build_test(void)
{
    struct buf b = {0};
    CHECK_INT(muc_join(&b, "coven@chat.shakespeare.lit", "th'ird"), ==, 0);
    CHECK_SPAN(buf_data(&b), buf_used(&b),
               "<presence to='coven@chat.shakespeare.lit/th&apos;ird'>"
               "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>"
               "</presence>");
    buf_consume(&b, buf_used(&b));
    CHECK_INT(muc_instant(&b, "coven@chat.shakespeare.lit", NULL), ==, 0);
    CHECK_SPAN(buf_data(&b), buf_used(&b),
               "<iq type='set' id='bm-muc-create' to='coven@chat.shakespeare.lit'>"
               "<query xmlns='http://jabber.org/protocol/muc#owner'>"
               "<x xmlns='jabber:x:data' type='submit'></x></query></iq>");
    buf_consume(&b, buf_used(&b));
    CHECK_INT(muc_instant(&b, "coven@chat.shakespeare.lit", "moderator,<p>"), ==, 0);
    CHECK_SPAN(buf_data(&b), buf_used(&b),
               "<iq type='set' id='bm-muc-create' to='coven@chat.shakespeare.lit'>"
               "<query xmlns='http://jabber.org/protocol/muc#owner'>"
               "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
               "<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
               "<field var='muc#roomconfig_presencebroadcast'><value>moderator</value>"
               "<value>&lt;p&gt;</value></field></x></query></iq>");
    buf_free(&b);
}

static void self_test(void)
{
    static const struct {
        const char *stanza;
        enum muc_self want;
    } cases[] = {
        /* §7.2.2 example 24: another occupant's presence. */
        {"<presence from='coven@chat.shakespeare.lit/firstwitch' to='hag66@shakespeare.lit/pda'>"
         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' "
         "role='moderator'/></x></presence>",
         MUC_SELF_OTHER},
        /* Example 27: our own, status 110. */
        {"<presence from='coven@chat.shakespeare.lit/thirdwitch' to='hag66@shakespeare.lit/pda'>"
         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='member' "
         "role='participant'/><status code='110'/></x></presence>",
         MUC_SELF_JOINED},
        /* §10.1.2 example 154: a new room, 201, in either order. */
        {"<presence from='coven@chat.shakespeare.lit/firstwitch' "
         "to='crone1@shakespeare.lit/desktop'>"
         "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' "
         "role='moderator'/><status code=\"201\"/><status code='110'/></x></presence>",
         MUC_SELF_CREATED},
        /* A status in another namespace does not count. */
        {"<presence><x xmlns='urn:example'><status code='110'/></x></presence>", MUC_SELF_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct arena a;
        struct xml_parser p;
        struct xml_event ev;
        arena_init(&a, 4096);
        struct xml_node *n = tree(&a, &p, cases[i].stanza, &ev);
        CHECK(n != NULL);
        if (muc_self_of(n, false) != cases[i].want)
            TEST_FAIL("case %zu: %d, want %d", i, muc_self_of(n, false), cases[i].want);
        if (i == 1)
            CHECK(muc_is_self(ev.attr[XML_ATTR_FROM], "coven@chat.shakespeare.lit", "thirdwitch"));
        xml_free(&p);
        arena_free(&a);
    }
    /* An error presence: the join was refused, whatever it holds. */
    CHECK_INT(muc_self_of(NULL, true), ==, MUC_SELF_REFUSED);
    struct xml_str f = {.p = "coven@chat.shakespeare.lit/thirdwitch", .len = 37};
    CHECK(muc_is_self(f, "coven@chat.shakespeare.lit", "thirdwitch"));
    CHECK(!muc_is_self(f, "coven@chat.shakespeare.lit", "third"));
    CHECK(!muc_is_self(f, "coven@chat.shakespeare.li", "tthirdwitch"));
    f.len = 26;
    CHECK(!muc_is_self(f, "coven@chat.shakespeare.lit", ""));
    f.p = NULL;
    CHECK(!muc_is_self(f, "coven@chat.shakespeare.lit", "thirdwitch"));
}

int main(void)
{
    RUN(build_test);
    RUN(self_test);
    return test_done("muc");
}
