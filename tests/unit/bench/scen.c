/*
 * Tests of bench/scen.c's pure parts: who a user's contacts are (symmetric, distinct, never
 * itself), how the mixed scenario splits pairs between behaviours, and the chat message
 * template (parsed back by the real stream parser, with the stamp where the id is).
 */
#include "bench/bid.h"
#include "bench/opts.h"
#include "bench/scen.h"
#include "common/xmpp/xml.h"
#include "test.h"

#include <stdlib.h>

static void contacts_test(void)
{
    /* User 0 of 10 with 4 contacts: 1, 9, 2, 8. */
    CHECK_INT(scen_contact(0, 0, 10, 4), ==, 1);
    CHECK_INT(scen_contact(0, 1, 10, 4), ==, 9);
    CHECK_INT(scen_contact(0, 2, 10, 4), ==, 2);
    CHECK_INT(scen_contact(0, 3, 10, 4), ==, 8);
    CHECK_INT(scen_contact(9, 0, 10, 4), ==, 0);
    /* For every n and even k < n: k distinct contacts, none the user, and symmetric:
     * j is a contact of i exactly when i is one of j (subscriptions are mutual). */
    for (uint32_t n = 3; n < 24; n++)
        for (unsigned k = 0; k < n; k += 2) {
            static bool is[64][64];
            memset(is, 0, sizeof is);
            for (uint32_t i = 0; i < n; i++)
                for (unsigned q = 0; q < k; q++) {
                    uint32_t j = scen_contact(i, q, n, k);
                    if (j == i || j >= n || is[i][j]) {
                        TEST_FAIL("n %u k %u: contact %u of %u is bad or repeated", n, k, j, i);
                        return;
                    }
                    is[i][j] = true;
                }
            for (uint32_t i = 0; i < n; i++)
                for (uint32_t j = 0; j < n; j++)
                    if (is[i][j] != is[j][i]) {
                        TEST_FAIL("n %u k %u: %u -> %u not mutual", n, k, i, j);
                        return;
                    }
        }
}

/* --hub: user 0's contacts are the users on the other server (--peer: odd indices) or
 * everyone else; each of them has user 0 alone; the others none. Mutual, like -k. */
static void hub_test(void)
{
    struct opts o = {.scenario = OPTS_PRESENCE, .clients = 10, .hub = true};
    CHECK_INT(scen_ncontacts(&o, 0), ==, 9);
    CHECK_INT(scen_contact_of(&o, 0, 0), ==, 1);
    CHECK_INT(scen_contact_of(&o, 0, 8), ==, 9);
    CHECK_INT(scen_ncontacts(&o, 4), ==, 1);
    CHECK_INT(scen_contact_of(&o, 4, 0), ==, 0);
    o.peer_host = "127.0.0.2";
    CHECK_INT(scen_ncontacts(&o, 0), ==, 5);
    for (unsigned k = 0; k < 5; k++) {
        uint32_t j = scen_contact_of(&o, 0, k);
        CHECK(opts_on_peer(&o, j));
        CHECK_INT(scen_ncontacts(&o, j), ==, 1);
        CHECK_INT(scen_contact_of(&o, j, 0), ==, 0);
    }
    CHECK_INT(scen_ncontacts(&o, 2), ==, 0);
    CHECK(!opts_on_peer(&o, 0));
    /* Without --hub, -k as scen_contact. */
    o.hub = false;
    o.contacts = 4;
    CHECK_INT(scen_ncontacts(&o, 3), ==, 4);
    CHECK_INT(scen_contact_of(&o, 0, 1), ==, 9);
}

static void mix_test(void)
{
    unsigned w[OPTS_MIX_COUNT] = {[OPTS_MIX_CHAT] = 50,
                                  [OPTS_MIX_PRESENCE] = 20,
                                  [OPTS_MIX_IDLE] = 20,
                                  [OPTS_MIX_LOGIN] = 10};
    unsigned n[OPTS_MIX_COUNT] = {0};
    /* Any prefix of pairs is close to the proportions: here the first 100 and 1000. */
    for (uint32_t p = 0; p < 1000; p++) {
        n[scen_mix_kind(p, w)]++;
        if (p == 99) {
            CHECK_INT(n[OPTS_MIX_CHAT], >=, 48);
            CHECK_INT(n[OPTS_MIX_CHAT], <=, 52);
            CHECK_INT(n[OPTS_MIX_LOGIN], >=, 8);
            CHECK_INT(n[OPTS_MIX_LOGIN], <=, 12);
        }
    }
    CHECK_INT(n[OPTS_MIX_CHAT], >=, 495);
    CHECK_INT(n[OPTS_MIX_CHAT], <=, 505);
    CHECK_INT(n[OPTS_MIX_PRESENCE], >=, 195);
    CHECK_INT(n[OPTS_MIX_PRESENCE], <=, 205);
    /* A zero weight is never picked. */
    unsigned only[OPTS_MIX_COUNT] = {[OPTS_MIX_IDLE] = 1};
    for (uint32_t p = 0; p < 100; p++)
        CHECK_INT(scen_mix_kind(p, only), ==, OPTS_MIX_IDLE);
}

static void template_test(void)
{
    char *t;
    uint16_t off;
    int n = scen_template("us'er2@example.org", "chat", 10, &t, &off);
    CHECK_INT(n, >, 0);
    if (n <= 0)
        return;
    struct bid b = {.kind = BID_MESSAGE, .idx = 3, .seq = 9, .t = 12345}, r;
    bid_write(t + off, &b);
    CHECK_SPAN(t, (size_t)n,
               "<message to='us&apos;er2@example.org' type='chat' "
               "id='bm00000003.00000009.0000000000003039'><body>The quick </body></message>");
    /* The stream parser reads the stamp back as the id and the address decoded. */
    static char scratch[16384];
    struct xml_parser p;
    struct xml_event ev;
    struct xml_limits lim = XML_LIMITS_DEFAULT;
    char buf[512];
    int hl = snprintf(buf, sizeof buf,
                      "<stream:stream xmlns='jabber:client' "
                      "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>%.*s",
                      n, t);
    xml_init(&p, &lim, XML_CONTENT_CLIENT, scratch, sizeof scratch);
    CHECK_INT(xml_next(&p, buf, (size_t)hl, &ev), ==, XML_EV_STREAM_OPEN);
    CHECK_INT(xml_next(&p, buf, (size_t)hl, &ev), ==, XML_EV_STANZA);
    CHECK_SPAN(ev.attr[XML_ATTR_TO].p, ev.attr[XML_ATTR_TO].len, "us'er2@example.org");
    CHECK(bid_parse(ev.attr[XML_ATTR_ID].p, ev.attr[XML_ATTR_ID].len, &r));
    CHECK_INT(r.idx, ==, 3);
    CHECK_INT(r.seq, ==, 9);
    CHECK(r.t == 12345);
    xml_free(&p);
    free(t);
}

int main(void)
{
    RUN(contacts_test);
    RUN(hub_test);
    RUN(mix_test);
    RUN(template_test);
    return test_done("scen");
}
