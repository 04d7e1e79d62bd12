/*
 * Tests of s2s/bidi.c: XEP-0288's elements, and its dialback example played over one
 * bidirectional stream by the two machines at its ends (s2s/dialback.c).
 */
#include "s2s/bidi.h"
#include "s2s/dialback.h"
#include "st.h"

#include <errno.h>
#include <string.h>

#define S(s) (s), strlen(s)

static const struct authz_limits lim = {.max_pairs = 8, .max_pending = 4};
static struct buf out;

static void elements_test(void)
{
    CHECK_INT(bidi_feature(&out), ==, 0);
    CHECK_STR(st_out(&out), "<bidi xmlns='urn:xmpp:features:bidi'/>");
    CHECK_INT(bidi_request(&out), ==, 0);
    CHECK_STR(st_out(&out), "<bidi xmlns='urn:xmpp:bidi'/>");
    /* XEP-0288 example 1 */
    CHECK(bidi_offered(st_elem("<stream:features>\n<starttls "
                               "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n<bidi "
                               "xmlns='urn:xmpp:features:bidi'/>\n</stream:features>")));
    CHECK(!bidi_offered(st_elem("<stream:features><bidi xmlns='urn:xmpp:bidi'/>"
                                "</stream:features>")));
}

static void recv_test(void)
{
    static const struct {
        const char *file;
        int line;
        bool inbound;
        const char *xml, *err;
    } rows[] = {
        {ST_ROW, true, "<bidi xmlns='urn:xmpp:bidi'/>", NULL},
        {ST_ROW, true, "<bidi xmlns='urn:xmpp:bidi'> \n</bidi>", NULL},
        {ST_ROW, true, "<b:bidi xmlns:b='urn:xmpp:bidi'/>", NULL},
        {ST_ROW, false, "<bidi xmlns='urn:xmpp:bidi'/>", "unsupported-stanza-type"},
        {ST_ROW, true, "<bidi xmlns='urn:xmpp:features:bidi'/>", "unsupported-stanza-type"},
        {ST_ROW, true, "<other xmlns='urn:xmpp:bidi'/>", "unsupported-stanza-type"},
        {ST_ROW, true, "<bidi xmlns='urn:xmpp:bidi'>yes</bidi>", "bad-format"},
        {ST_ROW, true, "<bidi xmlns='urn:xmpp:bidi'><x/></bidi>", "bad-format"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct authz a;
        authz_init(&a, &lim, rows[i].inbound);
        struct xml_node *n = st_elem_at(rows[i].file, rows[i].line, rows[i].xml);
        const char *err = n ? bidi_recv(&a, n) : "(no element)";
        if (rows[i].err ? !err || strcmp(err, rows[i].err) != 0 : err != NULL)
            TEST_FAIL("row at %s:%d: '%s'", rows[i].file, rows[i].line, err ? err : "(accepted)");
        if (a.bidi != !rows[i].err)
            TEST_FAIL("row at %s:%d: bidi %d", rows[i].file, rows[i].line, a.bidi);
        authz_free(&a);
    }
}

/*
 * XEP-0288 §3, the dialback example: capulet.lit (C) connects to montague.lit (S), asks
 * for bidi and authenticates with dialback; S then sends from montague.lit over the same
 * stream, and authenticates conference.montague.lit over it too, with C as receiving
 * server. Verification with the authoritative servers is cut short (answered valid).
 */
static void dialback_example_test(void)
{
    static const char *const c_domains[] = {"capulet.lit"};
    static const char *const s_domains[] = {"montague.lit", "conference.montague.lit"};
    struct dialback_config ccfg = {
        .domains = c_domains, .ndomains = 1, .timeout = 60, .max_pending = 4};
    struct dialback_config scfg = {
        .domains = s_domains, .ndomains = 2, .timeout = 60, .max_pending = 4};
    struct authz ca, sa;
    struct dialback cd, sd;
    struct dialback_event ev;
    char xml[1024];
    const char *id = "65b30434afd7646699d077f7affcb2c120c48e18";

    dialback_config_secret(&ccfg, "c secret", 8);
    dialback_config_secret(&scfg, "s secret", 8);
    authz_init(&ca, &lim, false);
    authz_init(&sa, &lim, true);
    dialback_init(&cd, &ccfg, &ca, id, strlen(id));
    dialback_init(&sd, &scfg, &sa, id, strlen(id));

    /* C asks for bidi, then sends its key */
    bidi_request(&out);
    CHECK(bidi_recv(&sa, st_elem(st_out(&out))) == NULL);
    authz_set_bidi(&ca);
    CHECK_INT(dialback_start(&cd, "capulet.lit", "montague.lit", 0, &out), ==, 0);
    CHECK_INT(dialback_recv(&sd, st_elem(st_out(&out)), &st_arena, 0, &out, &ev), ==,
              DIALBACK_EV_VERIFY);
    CHECK_INT(dialback_verified(&sd, ev.sender, ev.target, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_IN);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:result from='montague.lit' to='capulet.lit' type='valid'/>");
    CHECK_INT(dialback_recv(&cd, st_elem(xml), &st_arena, 0, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_OUT);
    /* "At this point S may send from montague.lit to capulet.lit." */
    CHECK(authz_may_send(&sa, S("montague.lit"), S("capulet.lit")));
    CHECK(authz_may_receive(&ca, S("montague.lit"), S("capulet.lit")));
    CHECK(!authz_may_send(&sa, S("conference.montague.lit"), S("capulet.lit")));

    /* S authenticates conference.montague.lit over the same stream, in reverse */
    CHECK_INT(dialback_start(&sd, "conference.montague.lit", "capulet.lit", 0, &out), ==, 0);
    CHECK_INT(dialback_recv(&cd, st_elem(st_out(&out)), &st_arena, 0, &out, &ev), ==,
              DIALBACK_EV_VERIFY);
    CHECK_STR(ev.sender, "conference.montague.lit");
    CHECK_STR(ev.target, "capulet.lit");
    CHECK_STR(ev.id, id);
    /* C may not verify it over this very stream (XEP-0288 §2.2) */
    CHECK_INT(dialback_verify_send(&cd, ev.sender, ev.target, ev.id, ev.key, ev.key_len, 0, &out),
              ==, -EDEADLK);
    CHECK_INT(dialback_verified(&cd, ev.sender, ev.target, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_IN);
    CHECK_INT(dialback_recv(&sd, st_elem(st_out(&out)), &st_arena, 0, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_OUT);
    CHECK(authz_may_send(&sa, S("conference.montague.lit"), S("capulet.lit")));
    CHECK(authz_may_receive(&ca, S("conference.montague.lit"), S("capulet.lit")));
    /* and the inverse of that one, C to the MUC domain, came with it */
    CHECK(authz_may_send(&ca, S("capulet.lit"), S("conference.montague.lit")));

    dialback_free(&cd);
    dialback_free(&sd);
    authz_free(&ca);
    authz_free(&sa);
}

int main(void)
{
    RUN(elements_test);
    RUN(recv_test);
    RUN(dialback_example_test);
    buf_free(&out);
    arena_free(&st_arena);
    return test_done("s2s/bidi");
}
