/*
 * Tests of s2s/dialback.c and s2s/dialback_elem.c: the keys of XEP-0185 and XEP-0220 byte
 * for byte, every element of XEP-0220's examples read and written, both of its flows
 * between two servers (capulet.example and montague.example, the XEP's secrets and stream
 * IDs) played by four machines on two streams, and every refusal, bound and timeout.
 */
#include "s2s/dialback.h"
#include "st.h"

#include <errno.h>
#include <stdlib.h>

#define CAP "capulet.example"
#define MON "montague.example"
#define KEY_S1                                                                                     \
    "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3" /* XEP-0220 ex. 1 */
#define KEY_S2                                                                                     \
    "225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d" /* XEP-0220 ex. 5 */
#define ID_S1 "D60000229F" /* the stream capulet opened to montague */
#define ID_S2 "417GAF25"   /* the stream montague opened to capulet */

static const char *const cap_domains[] = {CAP, "rooms." CAP};
static const char *const mon_domains[] = {MON};
static struct dialback_config cap_cfg = {
    .domains = cap_domains, .ndomains = 2, .timeout = 60, .max_pending = 3};
static struct dialback_config mon_cfg = {
    .domains = mon_domains, .ndomains = 1, .timeout = 60, .max_pending = 3};
static const struct authz_limits lim = {.max_pairs = 4, .max_pending = 2};

/* One end of a stream: its pairs and its machine. */
struct side {
    struct authz a;
    struct dialback d;
};

static struct buf out;
static uint32_t now = 1000;

static void side_open(struct side *s, struct dialback_config *cfg, bool inbound, const char *id)
{
    authz_init(&s->a, &lim, inbound);
    CHECK_INT(dialback_init(&s->d, cfg, &s->a, id, strlen(id)), ==, 0);
}

static void side_close(struct side *s)
{
    dialback_free(&s->d);
    authz_free(&s->a);
}

static enum dialback_ev recv_at(const char *file, int line, struct side *s, const char *xml,
                                struct dialback_event *ev)
{
    struct xml_node *n = st_elem_at(file, line, xml);
    if (!n) {
        memset(ev, 0, sizeof *ev);
        return DIALBACK_EV_NONE;
    }
    return dialback_recv(&s->d, n, &st_arena, now, &out, ev);
}
#define recv(s, xml, ev) recv_at(__FILE__, __LINE__, (s), (xml), (ev))

#define CHECK_EV(ev, kind_, sender_, target_)                                                      \
    do {                                                                                           \
        CHECK_INT((ev).kind, ==, (kind_));                                                         \
        CHECK_STR((ev).sender, (sender_));                                                         \
        CHECK_STR((ev).target, (target_));                                                         \
    } while (0)

#define CHECK_STREAM_ERROR(ev, cond_)                                                              \
    do {                                                                                           \
        CHECK_INT((ev).kind, ==, DIALBACK_EV_STREAM_ERROR);                                        \
        CHECK_STR((ev).stream_error, (cond_));                                                     \
    } while (0)

/* ---- keys and elements --------------------------------------------------------------------- */

static void keys_test(void)
{
    static const struct {
        const char *file;
        int line;
        const char *secret, *receiving, *originating, *id, *key;
    } rows[] = {
        /* XEP-0185 §4 */
        {ST_ROW, "s3cr3tf0rd14lb4ck", "xmpp.example.com", "example.org", "D60000229F",
         "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643"},
        /* XEP-0220 examples 1 and 5 */
        {ST_ROW, "s3cr3tf0rd14lb4ck", MON, CAP, ID_S1, KEY_S1},
        {ST_ROW, "d14lb4ck43v3r", CAP, MON, ID_S2, KEY_S2},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct dialback_config c = {0};
        char key[DIALBACK_KEY_LEN + 1];
        dialback_config_secret(&c, rows[i].secret, strlen(rows[i].secret));
        int rc = dialback_key(&c, rows[i].receiving, strlen(rows[i].receiving), rows[i].originating,
                              strlen(rows[i].originating), rows[i].id, strlen(rows[i].id), key);
        if (rc != 0 || strcmp(key, rows[i].key) != 0)
            TEST_FAIL("row at %s:%d: %d '%s'", rows[i].file, rows[i].line, rc, key);
    }
    /* XEP-0185 §4 shows the HMAC key itself: the hex text of SHA256(secret). */
    struct dialback_config c = {0};
    dialback_config_secret(&c, "s3cr3tf0rd14lb4ck", 17);
    CHECK_SPAN(c.hmac_key, sizeof c.hmac_key,
               "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc");
    char key[DIALBACK_KEY_LEN + 1], big[DIALBACK_ID_MAX + 2];
    memset(big, 'x', sizeof big);
    CHECK_INT(dialback_key(&c, CAP, strlen(CAP), MON, strlen(MON), big, sizeof big, key), ==,
              -EINVAL);
}

struct parse_row {
    const char *file;
    int line;
    const char *xml;
    enum dialback_perr err;
    enum dialback_kind kind;
    enum dialback_type type;
    const char *from, *to, *id, *key;
    enum dialback_cond cond;
};

#define R  DIALBACK_RESULT
#define V  DIALBACK_VERIFY
#define RQ DIALBACK_REQUEST
#define VA DIALBACK_VALID
#define IN DIALBACK_INVALID
#define ER DIALBACK_ERROR
#define OK DIALBACK_OK

static void parse_test(void)
{
    static const struct parse_row rows[] = {
        /* XEP-0220's examples, as printed (whitespace around keys included) */
        {ST_ROW,
         "<db:result\n          from='capulet.example'\n          to='montague.example'>\n"
         "        " KEY_S1 "\n      </db:result>",
         OK, R, RQ, CAP, MON, NULL, KEY_S1, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='montague.example' to='capulet.example' type='valid'/>", OK, R,
         VA, MON, CAP, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='montague.example' to='capulet.example' type='invalid'/>", OK, R,
         IN, MON, CAP, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW,
         "<db:result from='montague.example' to='capulet.example' type='error'>\n"
         "  <error type='cancel'>\n"
         "    <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\n"
         "  </error>\n</db:result>",
         OK, R, ER, MON, CAP, NULL, NULL, DIALBACK_ITEM_NOT_FOUND},
        {ST_ROW,
         "<db:verify\n          from='capulet.example'\n          id='417GAF25'\n"
         "          to='montague.example'>\n       " KEY_S2 "\n     </db:verify>",
         OK, V, RQ, CAP, MON, ID_S2, KEY_S2, DIALBACK_COND_NONE},
        {ST_ROW,
         "<db:verify from='montague.example' id='417GAF25' to='capulet.example' "
         "type='valid'/>",
         OK, V, VA, MON, CAP, ID_S2, NULL, DIALBACK_COND_NONE},
        {ST_ROW,
         "<db:verify from='montague.example' id='417GAF25' to='capulet.example' "
         "type='invalid'/>",
         OK, V, IN, MON, CAP, ID_S2, NULL, DIALBACK_COND_NONE},
        {ST_ROW,
         "<db:verify from='montague.example' id='417GAF25' to='capulet.example' type='error'>"
         "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
         "</error></db:verify>",
         OK, V, ER, MON, CAP, ID_S2, NULL, DIALBACK_ITEM_NOT_FOUND},
        /* Prosody's answers carry the key and the stream ID: both ignored */
        {ST_ROW,
         "<db:result from='montague.example' to='capulet.example' id='x1' type='valid'>" KEY_S1
         "</db:result>",
         OK, R, VA, MON, CAP, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW,
         "<db:verify from='montague.example' to='capulet.example' id='x1' type='invalid'>" KEY_S1
         "</db:verify>",
         OK, V, IN, MON, CAP, "x1", NULL, DIALBACK_COND_NONE},
        /* addresses are normalised */
        {ST_ROW, "<db:result from='Capulet.EXAMPLE.' to='MONTAGUE.example'>k</db:result>", OK, R,
         RQ, CAP, MON, NULL, "k", DIALBACK_COND_NONE},
        /* any prefix bound to the namespace, or none */
        {ST_ROW,
         "<x:result xmlns:x='jabber:server:dialback' from='capulet.example' "
         "to='montague.example'>k</x:result>",
         OK, R, RQ, CAP, MON, NULL, "k", DIALBACK_COND_NONE},
        {ST_ROW,
         "<result xmlns='jabber:server:dialback' from='capulet.example' to='montague.example'>"
         "k</result>",
         OK, R, RQ, CAP, MON, NULL, "k", DIALBACK_COND_NONE},
        /* errors: a condition after <text/>, an unknown one, none at all */
        {ST_ROW,
         "<db:result from='montague.example' to='capulet.example' type='error'><error "
         "type='wait'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>busy</text>"
         "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
         "</db:result>",
         OK, R, ER, MON, CAP, NULL, NULL, DIALBACK_RESOURCE_CONSTRAINT},
        {ST_ROW,
         "<db:result from='montague.example' to='capulet.example' type='error'><error "
         "type='cancel'><made-up xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
         "</db:result>",
         OK, R, ER, MON, CAP, NULL, NULL, DIALBACK_UNDEFINED_CONDITION},
        {ST_ROW, "<db:result from='montague.example' to='capulet.example' type='error'/>", OK, R,
         ER, MON, CAP, NULL, NULL, DIALBACK_UNDEFINED_CONDITION},
        {ST_ROW,
         "<result xmlns='jabber:server:dialback' from='montague.example' to='capulet.example' "
         "type='error'><error type='cancel'><remote-connection-failed "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></result>",
         OK, R, ER, MON, CAP, NULL, NULL, DIALBACK_REMOTE_CONNECTION_FAILED},
        /* what is refused */
        {ST_ROW, "<db:result to='montague.example'>k</db:result>", DIALBACK_IMPROPER_ADDRESSING, R,
         RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='capulet.example'>k</db:result>", DIALBACK_IMPROPER_ADDRESSING, R,
         RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='' to='montague.example'>k</db:result>",
         DIALBACK_IMPROPER_ADDRESSING, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='juliet@capulet.example' to='montague.example'>k</db:result>",
         DIALBACK_IMPROPER_ADDRESSING, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:verify from='capulet.example' to='montague.example/r' id='i'>k</db:verify>",
         DIALBACK_IMPROPER_ADDRESSING, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='capulet.example' to='montague.example' type='ok'/>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:verify from='capulet.example' to='montague.example'>k</db:verify>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:verify from='capulet.example' to='montague.example' id=''>k</db:verify>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:verify from='capulet.example' to='montague.example' type='valid'/>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='capulet.example' to='montague.example'/>", DIALBACK_BAD_FORMAT,
         R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='capulet.example' to='montague.example'> \n\t </db:result>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:result from='capulet.example' to='montague.example'>k<x/></db:result>",
         DIALBACK_BAD_FORMAT, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<db:abort from='capulet.example' to='montague.example'/>", DIALBACK_NOT_DIALBACK,
         R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
        {ST_ROW, "<result xmlns='urn:example' from='capulet.example' to='montague.example'/>",
         DIALBACK_NOT_DIALBACK, R, RQ, NULL, NULL, NULL, NULL, DIALBACK_COND_NONE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct parse_row *r = &rows[i];
        struct dialback_elem e;
        struct xml_node *n = st_elem_at(r->file, r->line, r->xml);
        if (!n)
            continue;
        enum dialback_perr err = dialback_parse(n, &st_arena, &e);
        if (err != r->err) {
            TEST_FAIL("row at %s:%d: error %d, expected %d", r->file, r->line, err, r->err);
            continue;
        }
        if (err)
            continue;
        if (e.kind != r->kind || e.type != r->type || e.cond != r->cond ||
            strcmp(e.from, r->from) != 0 || strcmp(e.to, r->to) != 0 ||
            (r->id ? !e.id || strcmp(e.id, r->id) != 0 : e.id != NULL) ||
            (r->key ? !e.key || e.key_len != strlen(r->key) || strcmp(e.key, r->key) != 0
                    : e.key != NULL))
            TEST_FAIL("row at %s:%d: kind %d type %d cond %d from '%s' to '%s' id '%s' key '%s'",
                      r->file, r->line, e.kind, e.type, e.cond, e.from, e.to,
                      e.id ? e.id : "(none)", e.key ? e.key : "(none)");
        /* What dialback_write() makes of it reads back the same. */
        struct dialback_elem again;
        dialback_write(&out, &e);
        struct xml_node *m = st_elem_at(r->file, r->line, st_out(&out));
        if (!m || dialback_parse(m, &st_arena, &again) != OK || again.kind != e.kind ||
            again.type != e.type || again.cond != e.cond || strcmp(again.from, e.from) != 0 ||
            strcmp(again.to, e.to) != 0 || (e.key && strcmp(again.key, e.key) != 0))
            TEST_FAIL("row at %s:%d: does not survive dialback_write()", r->file, r->line);
    }
    /* Bounds: the longest key and id pass, one byte more is policy-violation. */
    char xml[2048], key[DIALBACK_KEY_MAX + 2], id[DIALBACK_ID_MAX + 2];
    struct dialback_elem e;
    static const enum dialback_perr want[2] = {OK, DIALBACK_TOO_LONG};
    for (int extra = 0; extra < 2; extra++) {
        memset(key, 'k', sizeof key);
        key[DIALBACK_KEY_MAX + extra] = '\0';
        snprintf(xml, sizeof xml, "<db:result from='a.example' to='b.example'>%s</db:result>", key);
        CHECK_INT(dialback_parse(st_elem(xml), &st_arena, &e), ==, want[extra]);
        memset(id, 'i', sizeof id);
        id[DIALBACK_ID_MAX + extra] = '\0';
        snprintf(xml, sizeof xml,
                 "<db:verify from='a.example' to='b.example' id='%s' type='valid'/>", id);
        CHECK_INT(dialback_parse(st_elem(xml), &st_arena, &e), ==, want[extra]);
    }
    CHECK_STR(dialback_perr_condition(DIALBACK_IMPROPER_ADDRESSING), "improper-addressing");
    CHECK_STR(dialback_perr_condition(DIALBACK_BAD_FORMAT), "bad-format");
    CHECK_STR(dialback_perr_condition(DIALBACK_TOO_LONG), "policy-violation");
    CHECK_STR(dialback_perr_condition(DIALBACK_NOMEM), "internal-server-error");
}

static void write_test(void)
{
    /* Escaping: nothing the peer sent can break out of an attribute or the text. */
    struct dialback_elem e = {.kind = DIALBACK_VERIFY,
                              .type = DIALBACK_REQUEST,
                              .from = "a.example",
                              .to = "b.example",
                              .id = "x'><evil/>",
                              .key = "k&<",
                              .key_len = 3};
    CHECK_INT(dialback_write(&out, &e), ==, 0);
    CHECK_STR(st_out(&out), "<db:verify from='a.example' to='b.example' id='x&apos;&gt;&lt;"
                            "evil/&gt;'>k&amp;&lt;</db:verify>");
    /* A dialback error: the condition with the type RFC 6120 gives it. */
    struct dialback_elem err = {.kind = DIALBACK_RESULT,
                                .type = DIALBACK_ERROR,
                                .cond = DIALBACK_RESOURCE_CONSTRAINT,
                                .from = MON,
                                .to = CAP};
    dialback_write(&out, &err);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='" CAP "' type='error'><error "
                            "type='wait'><resource-constraint "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    for (int c = DIALBACK_COND_NONE + 1; c < DIALBACK_COND_COUNT; c++)
        CHECK(dialback_cond_name((enum dialback_cond)c)[0] &&
              dialback_cond_type((enum dialback_cond)c)[0]);
    CHECK(dialback_cond_name(DIALBACK_COND_COUNT) == NULL);
}

static void feature_test(void)
{
    /* XEP-0220 example 17, as we write it */
    CHECK_INT(dialback_feature(&out), ==, 0);
    CHECK_STR(st_out(&out), "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>");
    CHECK_INT(dialback_feature_parse(st_elem("<stream:features>\n  <dialback "
                                             "xmlns='urn:xmpp:features:dialback'>\n    "
                                             "<errors/>\n  </dialback>\n</stream:features>")),
              ==, DIALBACK_FEATURE_ERRORS);
    CHECK_INT(dialback_feature_parse(st_elem("<stream:features><dialback "
                                             "xmlns='urn:xmpp:features:dialback'/>"
                                             "</stream:features>")),
              ==, DIALBACK_FEATURE_PLAIN);
    CHECK_INT(dialback_feature_parse(st_elem("<stream:features><starttls "
                                             "xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                                             "</stream:features>")),
              ==, DIALBACK_FEATURE_NONE);
}

/* ---- the two flows of XEP-0220 §2 ---------------------------------------------------------- */

/*
 * Stream S1: capulet (C1, outbound) to montague (M1, inbound), ID D60000229F.
 * Stream S2: montague (M2, outbound) to capulet (C2, inbound), ID 417GAF25.
 * Each server asks to send over its own stream and verifies the other's key over it too.
 */
static struct side c1, m1, m2, c2;

static void servers_open(void)
{
    side_open(&c1, &cap_cfg, false, ID_S1);
    side_open(&m1, &mon_cfg, true, ID_S1);
    side_open(&m2, &mon_cfg, false, ID_S2);
    side_open(&c2, &cap_cfg, true, ID_S2);
}

static void servers_close(void)
{
    side_close(&c1);
    side_close(&m1);
    side_close(&m2);
    side_close(&c2);
}

static void flows_test(void)
{
    struct dialback_event ev;
    char xml[4096];
    servers_open();

    /* §2.1.1 step 1: capulet sends its key (example 1) */
    CHECK_INT(dialback_start(&c1.d, CAP, MON, now, &out), ==, 0);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:result from='" CAP "' to='" MON "'>" KEY_S1 "</db:result>");
    CHECK(!authz_may_send(&c1.a, CAP, strlen(CAP), MON, strlen(MON)));
    /* §2.2.1: montague has to verify it */
    CHECK_INT(recv(&m1, xml, &ev), ==, DIALBACK_EV_VERIFY);
    CHECK_EV(ev, DIALBACK_EV_VERIFY, CAP, MON);
    CHECK_STR(ev.id, ID_S1);
    CHECK_SPAN(ev.key, ev.key_len, KEY_S1);
    CHECK_STR(st_out(&out), "");
    /* §2.1.2 step 2, over montague's own stream to capulet */
    CHECK_INT(
        dialback_verify_send(&m2.d, ev.sender, ev.target, ev.id, ev.key, ev.key_len, now, &out), ==,
        0);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:verify from='" MON "' to='" CAP "' id='" ID_S1 "'>" KEY_S1 "</db:verify>");
    /* §2.2.2: capulet, authoritative, finds its own key */
    CHECK_INT(recv(&c2, xml, &ev), ==, DIALBACK_EV_ANSWERED);
    CHECK_INT(ev.result, ==, DIALBACK_VALID);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:verify from='" CAP "' to='" MON "' id='" ID_S1 "' type='valid'/>");
    /* step 3 back at montague */
    CHECK_INT(recv(&m2, xml, &ev), ==, DIALBACK_EV_VERIFIED);
    CHECK_EV(ev, DIALBACK_EV_VERIFIED, CAP, MON);
    CHECK_STR(ev.id, ID_S1);
    CHECK_INT(ev.result, ==, DIALBACK_VALID);
    /* step 4 on the stream the request came on (example 10) */
    CHECK_INT(dialback_verified(&m1.d, ev.sender, ev.target, ev.result, ev.cond, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_IN);
    CHECK_EV(ev, DIALBACK_EV_ALLOWED_IN, CAP, MON);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:result from='" MON "' to='" CAP "' type='valid'/>");
    CHECK(authz_may_receive(&m1.a, CAP, strlen(CAP), MON, strlen(MON)));
    CHECK(!authz_may_receive(&m1.a, "rooms." CAP, strlen("rooms." CAP), MON, strlen(MON)));
    CHECK_INT(recv(&c1, xml, &ev), ==, DIALBACK_EV_ALLOWED_OUT);
    CHECK_EV(ev, DIALBACK_EV_ALLOWED_OUT, CAP, MON);
    CHECK(authz_may_send(&c1.a, CAP, strlen(CAP), MON, strlen(MON)));
    /* one way only: S1 carries nothing from montague to capulet */
    CHECK(!authz_may_send(&m1.a, MON, strlen(MON), CAP, strlen(CAP)));

    /* And the other way (§2.1.2, §2.2.2 with example 5's key), the XEP's text as printed */
    CHECK_INT(dialback_start(&m2.d, MON, CAP, now, &out), ==, 0);
    st_take(xml, sizeof xml, &out);
    CHECK_STR(xml, "<db:result from='" MON "' to='" CAP "'>" KEY_S2 "</db:result>");
    CHECK_INT(recv(&c2, xml, &ev), ==, DIALBACK_EV_VERIFY);
    CHECK_EV(ev, DIALBACK_EV_VERIFY, MON, CAP);
    CHECK_STR(ev.id, ID_S2);
    CHECK_INT(
        dialback_verify_send(&c1.d, ev.sender, ev.target, ev.id, ev.key, ev.key_len, now, &out), ==,
        0);
    CHECK_STR(st_out(&out),
              "<db:verify from='" CAP "' to='" MON "' id='" ID_S2 "'>" KEY_S2 "</db:verify>");
    CHECK_INT(recv(&m1,
                   "<db:verify\n          from='capulet.example'\n          id='417GAF25'\n"
                   "          to='montague.example'>\n       " KEY_S2 "\n     </db:verify>",
                   &ev),
              ==, DIALBACK_EV_ANSWERED);
    CHECK_INT(ev.result, ==, DIALBACK_VALID);
    CHECK_STR(st_out(&out), "<db:verify from='" MON "' to='" CAP "' id='" ID_S2 "' type='valid'/>");
    CHECK_INT(recv(&c1,
                   "<db:verify\n          from='montague.example'\n          id='417GAF25'\n"
                   "          to='capulet.example'\n          type='valid'/>",
                   &ev),
              ==, DIALBACK_EV_VERIFIED);
    CHECK_INT(dialback_verified(&c2.d, ev.sender, ev.target, ev.result, ev.cond, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_IN);
    st_take(xml, sizeof xml, &out);
    CHECK_INT(recv(&m2, xml, &ev), ==, DIALBACK_EV_ALLOWED_OUT);
    CHECK(authz_may_send(&m2.a, MON, strlen(MON), CAP, strlen(CAP)));
    CHECK(authz_may_receive(&c2.a, MON, strlen(MON), CAP, strlen(CAP)));
    CHECK_INT(dialback_deadline(&c1.d), ==, 0);
    CHECK_INT(dialback_deadline(&m1.d), ==, 0);

    /* Sender multiplexing (§2.6.1): rooms.capulet.example over the same stream. */
    CHECK_INT(dialback_start(&c1.d, "rooms." CAP, MON, now, &out), ==, 0);
    CHECK_INT(recv(&m1, st_out(&out), &ev), ==, DIALBACK_EV_VERIFY);
    CHECK_EV(ev, DIALBACK_EV_VERIFY, "rooms." CAP, MON);
    servers_close();
}

/* The receiving server decides without asking (a certificate naming the sender,
 * XEP-0344 §2.4): dialback_verified() right after VERIFY, with the event's own strings. */
static void answer_at_once_test(void)
{
    struct dialback_event ev;
    servers_open();
    dialback_start(&c1.d, CAP, MON, now, &out);
    CHECK_INT(recv(&m1, st_out(&out), &ev), ==, DIALBACK_EV_VERIFY);
    CHECK_INT(dialback_verified(&m1.d, ev.sender, ev.target, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_ALLOWED_IN);
    CHECK_EV(ev, DIALBACK_EV_ALLOWED_IN, CAP, MON);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='" CAP "' type='valid'/>");
    servers_close();
}

/* ---- refusals -------------------------------------------------------------------------- */

/* The authoritative server's verdicts (§2.2.2). */
static void authoritative_test(void)
{
    static const struct {
        const char *file;
        int line;
        const char *in, *answer;
        enum dialback_type result;
    } rows[] = {
        {ST_ROW, "<db:verify from='" MON "' to='" CAP "' id='" ID_S1 "'>" KEY_S1 "</db:verify>",
         "<db:verify from='" CAP "' to='" MON "' id='" ID_S1 "' type='valid'/>", DIALBACK_VALID},
        /* another stream's ID, another receiving domain, a different length, case */
        {ST_ROW, "<db:verify from='" MON "' to='" CAP "' id='" ID_S2 "'>" KEY_S1 "</db:verify>",
         "<db:verify from='" CAP "' to='" MON "' id='" ID_S2 "' type='invalid'/>",
         DIALBACK_INVALID},
        {ST_ROW,
         "<db:verify from='other.example' to='" CAP "' id='" ID_S1 "'>" KEY_S1 "</db:verify>",
         "<db:verify from='" CAP "' to='other.example' id='" ID_S1 "' type='invalid'/>",
         DIALBACK_INVALID},
        {ST_ROW, "<db:verify from='" MON "' to='" CAP "' id='" ID_S1 "'>" KEY_S1 "0</db:verify>",
         "<db:verify from='" CAP "' to='" MON "' id='" ID_S1 "' type='invalid'/>",
         DIALBACK_INVALID},
        {ST_ROW,
         "<db:verify from='" MON "' to='" CAP "' id='" ID_S1
         "'>B4835385F37FE2895AF6C196B59097B16862406DB80559900D96BF6FA7D23DF3</db:verify>",
         "<db:verify from='" CAP "' to='" MON "' id='" ID_S1 "' type='invalid'/>",
         DIALBACK_INVALID},
        /* a domain we do not serve: a dialback error, from that domain (example 16) */
        {ST_ROW, "<db:verify from='" MON "' to='elsewhere.example' id='" ID_S1 "'>k</db:verify>",
         "<db:verify from='elsewhere.example' to='" MON "' id='" ID_S1
         "' type='error'><error type='cancel'><item-not-found "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:verify>",
         DIALBACK_ERROR},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct side c;
        struct dialback_event ev;
        side_open(&c, &cap_cfg, true, "some-id");
        enum dialback_ev k = recv_at(rows[i].file, rows[i].line, &c, rows[i].in, &ev);
        const char *got = st_out(&out);
        if (k != DIALBACK_EV_ANSWERED || ev.result != rows[i].result ||
            strcmp(got, rows[i].answer) != 0)
            TEST_FAIL("row at %s:%d: event %d result %d, sent '%s'", rows[i].file, rows[i].line, k,
                      ev.result, got);
        side_close(&c);
    }
    /* Answering keeps no state. */
    struct side c;
    struct dialback_event ev;
    side_open(&c, &cap_cfg, true, "some-id");
    recv(&c, rows[0].in, &ev);
    st_out(&out);
    CHECK_INT(authz_pending(&c.a), ==, 0);
    CHECK_INT(dialback_deadline(&c.d), ==, 0);
    side_close(&c);
}

/* The receiving server's refusals of a request (§2.2.1, §2.4.2). */
static void refuse_test(void)
{
    struct dialback_event ev;
    struct side m;

    /* a target we do not serve: item-not-found from that domain (example 11) */
    side_open(&m, &mon_cfg, true, ID_S1);
    CHECK_INT(recv(&m, "<db:result from='" CAP "' to='elsewhere.example'>k</db:result>", &ev), ==,
              DIALBACK_EV_REFUSED_IN);
    CHECK_EV(ev, DIALBACK_EV_REFUSED_IN, CAP, "elsewhere.example");
    CHECK_INT(ev.cond, ==, DIALBACK_ITEM_NOT_FOUND);
    CHECK_STR(st_out(&out), "<db:result from='elsewhere.example' to='" CAP
                            "' type='error'><error type='cancel'><item-not-found "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    CHECK_INT(authz_pending(&m.a), ==, 0);
    /* a sender that is us */
    CHECK_INT(recv(&m, "<db:result from='" MON "' to='" MON "'>k</db:result>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "invalid-from");
    side_close(&m);

    /* An invalid key on a stream's first pair: type='invalid', then the stream closes. */
    side_open(&m, &mon_cfg, true, ID_S1);
    CHECK_INT(recv(&m, "<db:result from='" CAP "' to='" MON "'>bogus</db:result>", &ev), ==,
              DIALBACK_EV_VERIFY);
    CHECK_INT(dialback_verified(&m.d, CAP, MON, DIALBACK_INVALID, 0, &out, &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "not-authorized");
    CHECK_INT(ev.result, ==, DIALBACK_INVALID);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='" CAP "' type='invalid'/>");
    CHECK(!authz_may_receive(&m.a, CAP, strlen(CAP), MON, strlen(MON)));
    side_close(&m);

    /* With another pair valid, an invalid key costs only its pair: forbidden. */
    side_open(&m, &mon_cfg, true, ID_S1);
    recv(&m, "<db:result from='" CAP "' to='" MON "'>k</db:result>", &ev);
    dialback_verified(&m.d, CAP, MON, DIALBACK_VALID, 0, &out, &ev);
    st_out(&out);
    CHECK_INT(recv(&m, "<db:result from='rooms." CAP "' to='" MON "'>k</db:result>", &ev), ==,
              DIALBACK_EV_VERIFY);
    CHECK_INT(dialback_verified(&m.d, "rooms." CAP, MON, DIALBACK_INVALID, 0, &out, &ev), ==,
              DIALBACK_EV_REFUSED_IN);
    CHECK_INT(ev.cond, ==, DIALBACK_FORBIDDEN);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='rooms." CAP
                            "' type='error'><error type='auth'><forbidden "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    CHECK(authz_may_receive(&m.a, CAP, strlen(CAP), MON, strlen(MON)));
    /* The authoritative server could not be reached: the caller's condition goes out. */
    recv(&m, "<db:result from='rooms." CAP "' to='" MON "'>k</db:result>", &ev);
    CHECK_INT(dialback_verified(&m.d, "rooms." CAP, MON, DIALBACK_ERROR,
                                DIALBACK_REMOTE_CONNECTION_FAILED, &out, &ev),
              ==, DIALBACK_EV_REFUSED_IN);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='rooms." CAP
                            "' type='error'><error type='cancel'><remote-connection-failed "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    /* No condition given: undefined-condition rather than an empty element. */
    recv(&m, "<db:result from='rooms." CAP "' to='" MON "'>k</db:result>", &ev);
    dialback_verified(&m.d, "rooms." CAP, MON, DIALBACK_ERROR, DIALBACK_COND_NONE, &out, &ev);
    CHECK_INT(ev.cond, ==, DIALBACK_UNDEFINED_CONDITION);
    st_out(&out);
    /* An answer for nothing pending (stale, or a timed-out request) does nothing. */
    CHECK_INT(dialback_verified(&m.d, "rooms." CAP, MON, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_NONE);
    CHECK_INT(dialback_verified(&m.d, CAP, MON, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_NONE); /* valid already */
    CHECK_STR(st_out(&out), "");
    side_close(&m);

    /* An outbound stream whose peer gave no stream ID: no key can be checked. */
    authz_init(&m.a, &lim, false);
    authz_set_bidi(&m.a);
    CHECK_INT(dialback_init(&m.d, &mon_cfg, &m.a, "", 0), ==, 0);
    CHECK_INT(recv(&m, "<db:result from='" CAP "' to='" MON "'>k</db:result>", &ev), ==,
              DIALBACK_EV_REFUSED_IN);
    CHECK_INT(ev.cond, ==, DIALBACK_NOT_ACCEPTABLE);
    CHECK_INT(dialback_start(&m.d, MON, CAP, now, &out), ==, -EINVAL);
    st_out(&out);
    side_close(&m);
}

/* What the initiating server hears back (§2.1.1). */
static void outcome_test(void)
{
    struct dialback_event ev;
    struct side c;

    side_open(&c, &cap_cfg, false, ID_S1);
    dialback_start(&c.d, CAP, MON, now, &out);
    st_out(&out);
    CHECK_INT(recv(&c, "<db:result from='" MON "' to='" CAP "' type='invalid'/>", &ev), ==,
              DIALBACK_EV_REFUSED_OUT);
    CHECK_EV(ev, DIALBACK_EV_REFUSED_OUT, CAP, MON);
    CHECK_INT(ev.result, ==, DIALBACK_INVALID);
    CHECK_INT(ev.bounce, ==, DIALBACK_INTERNAL_SERVER_ERROR);
    CHECK_INT(authz_pending(&c.a), ==, 0);

    /* a dialback error: queued stanzas bounce with remote-server-timeout; the stream
     * stays, and the pair may be tried again */
    CHECK_INT(dialback_start(&c.d, CAP, MON, now, &out), ==, 0);
    st_out(&out);
    CHECK_INT(recv(&c,
                   "<db:result from='" MON "' to='" CAP "' type='error'><error type='wait'>"
                   "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                   "</db:result>",
                   &ev),
              ==, DIALBACK_EV_REFUSED_OUT);
    CHECK_INT(ev.result, ==, DIALBACK_ERROR);
    CHECK_INT(ev.peer_cond, ==, DIALBACK_RESOURCE_CONSTRAINT);
    CHECK_INT(ev.bounce, ==, DIALBACK_REMOTE_SERVER_TIMEOUT);

    /* XEP-0220 §3.1: answers that match nothing we asked on this stream */
    CHECK_INT(recv(&c, "<db:result from='" MON "' to='" CAP "' type='valid'/>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "not-authorized");
    CHECK_INT(recv(&c, "<db:verify from='" MON "' to='" CAP "' id='" ID_S2 "' type='valid'/>", &ev),
              ==, DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "not-authorized");
    /* one for a pair already valid is as unsolicited */
    dialback_start(&c.d, CAP, MON, now, &out);
    st_out(&out);
    recv(&c, "<db:result from='" MON "' to='" CAP "' type='valid'/>", &ev);
    CHECK_INT(ev.kind, ==, DIALBACK_EV_ALLOWED_OUT);
    CHECK_INT(recv(&c, "<db:result from='" MON "' to='" CAP "' type='valid'/>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    /* a verify answer with the right pair but another stream's ID */
    CHECK_INT(dialback_verify_send(&c.d, "x.example", CAP, "id-1", "k", 1, now, &out), ==, 0);
    st_out(&out);
    CHECK_INT(recv(&c, "<db:verify from='x.example' to='" CAP "' id='id-2' type='valid'/>", &ev),
              ==, DIALBACK_EV_STREAM_ERROR);
    /* and the right one: an authoritative server's error reads as remote-server-not-found */
    CHECK_INT(recv(&c,
                   "<db:verify from='x.example' to='" CAP "' id='id-1' type='error'><error "
                   "type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                   "</error></db:verify>",
                   &ev),
              ==, DIALBACK_EV_VERIFIED);
    CHECK_EV(ev, DIALBACK_EV_VERIFIED, "x.example", CAP);
    CHECK_INT(ev.result, ==, DIALBACK_ERROR);
    CHECK_INT(ev.cond, ==, DIALBACK_REMOTE_SERVER_NOT_FOUND);
    CHECK_INT(ev.peer_cond, ==, DIALBACK_ITEM_NOT_FOUND);
    /* answered once: the same answer again is unsolicited */
    CHECK_INT(recv(&c, "<db:verify from='x.example' to='" CAP "' id='id-1' type='valid'/>", &ev),
              ==, DIALBACK_EV_STREAM_ERROR);
    side_close(&c);
}

/* Requests one way, answers the other, unless bidi (XEP-0220 §2.2, XEP-0288). */
static void direction_test(void)
{
    struct dialback_event ev;
    struct side s;

    side_open(&s, &cap_cfg, false, ID_S1); /* outbound: no requests from the peer */
    CHECK_INT(recv(&s, "<db:result from='" MON "' to='" CAP "'>k</db:result>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "unsupported-stanza-type");
    CHECK_INT(recv(&s, "<db:verify from='" MON "' to='" CAP "' id='i'>k</db:verify>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    authz_set_bidi(&s.a); /* with bidi the peer may ask over our stream */
    CHECK_INT(recv(&s, "<db:result from='" MON "' to='" CAP "'>k</db:result>", &ev), ==,
              DIALBACK_EV_VERIFY);
    CHECK_INT(recv(&s, "<db:verify from='" MON "' to='" CAP "' id='i'>k</db:verify>", &ev), ==,
              DIALBACK_EV_ANSWERED);
    st_out(&out);
    side_close(&s);

    side_open(&s, &cap_cfg, true, ID_S1); /* inbound: no answers, and we may not ask */
    CHECK_INT(recv(&s, "<db:result from='" MON "' to='" CAP "' type='valid'/>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "unsupported-stanza-type");
    CHECK_INT(recv(&s, "<db:verify from='" MON "' to='" CAP "' id='i' type='valid'/>", &ev), ==,
              DIALBACK_EV_STREAM_ERROR);
    CHECK_INT(dialback_start(&s.d, CAP, MON, now, &out), ==, -EPERM);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, "i", "k", 1, now, &out), ==, -EPERM);
    authz_set_bidi(&s.a);
    CHECK_INT(dialback_start(&s.d, CAP, MON, now, &out), ==, 0);
    CHECK_INT(recv(&s, "<db:result from='" MON "' to='" CAP "' type='valid'/>", &ev), ==,
              DIALBACK_EV_ALLOWED_OUT);
    st_out(&out);
    side_close(&s);

    /* A malformed element ends the stream with its condition. */
    side_open(&s, &cap_cfg, true, ID_S1);
    CHECK_INT(recv(&s, "<db:result to='" CAP "'>k</db:result>", &ev), ==, DIALBACK_EV_STREAM_ERROR);
    CHECK_STREAM_ERROR(ev, "improper-addressing");
    side_close(&s);
}

/* What dialback_start() and dialback_verify_send() refuse. */
static void start_errors_test(void)
{
    struct side s;
    side_open(&s, &cap_cfg, false, ID_S1);
    CHECK_INT(dialback_start(&s.d, "elsewhere.example", MON, now, &out), ==, -EINVAL);
    CHECK_INT(dialback_start(&s.d, CAP, MON, now, &out), ==, 0);
    CHECK_INT(dialback_start(&s.d, CAP, MON, now, &out), ==, -EEXIST);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, ID_S1, "k", 1, now, &out), ==, -EDEADLK);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, "", "k", 1, now, &out), ==, -EINVAL);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, "i", "", 0, now, &out), ==, -EINVAL);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, "i", "k", 1, now, &out), ==, 0);
    CHECK_INT(dialback_verify_send(&s.d, MON, CAP, "i", "k", 1, now, &out), ==, -EEXIST);
    st_out(&out);
    side_close(&s);

    struct authz a;
    struct dialback d;
    authz_init(&a, &lim, false);
    CHECK_INT(dialback_init(&d, &cap_cfg, &a, "x", DIALBACK_ID_MAX + 1), ==, -EINVAL);
    authz_free(&a);
}

/* s2s.max_dialback_pending and s2s.max_domain_pairs (here 2 and 4). */
static void bounds_test(void)
{
    static const char *const senders[] = {"a.example", "b.example", "c.example", "d.example",
                                          "e.example"};
    struct dialback_event ev;
    struct side m;
    char xml[512];

    side_open(&m, &mon_cfg, true, ID_S1);
    for (int i = 0; i < 3; i++) {
        snprintf(xml, sizeof xml, "<db:result from='%s' to='" MON "'>k</db:result>", senders[i]);
        recv(&m, xml, &ev);
        CHECK_INT(ev.kind, ==, i < 2 ? DIALBACK_EV_VERIFY : DIALBACK_EV_REFUSED_IN);
    }
    CHECK_INT(ev.cond, ==, DIALBACK_RESOURCE_CONSTRAINT);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='c.example' type='error'><error "
                            "type='wait'><resource-constraint "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    /* A repeat of a pending request is not a new one: no answer, no slot. */
    CHECK_INT(recv(&m, "<db:result from='a.example' to='" MON "'>k2</db:result>", &ev), ==,
              DIALBACK_EV_NONE);
    CHECK_STR(st_out(&out), "");
    /* Answered ones free their slots; pairs then bound the stream. */
    dialback_verified(&m.d, "a.example", MON, DIALBACK_VALID, 0, &out, &ev);
    dialback_verified(&m.d, "b.example", MON, DIALBACK_VALID, 0, &out, &ev);
    st_out(&out);
    /* A repeat of a valid one is answered valid again at once. */
    CHECK_INT(recv(&m, "<db:result from='a.example' to='" MON "'>k</db:result>", &ev), ==,
              DIALBACK_EV_NONE);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='a.example' type='valid'/>");
    for (int i = 2; i < 5; i++) {
        snprintf(xml, sizeof xml, "<db:result from='%s' to='" MON "'>k</db:result>", senders[i]);
        recv(&m, xml, &ev);
        CHECK_INT(ev.kind, ==, i < 4 ? DIALBACK_EV_VERIFY : DIALBACK_EV_REFUSED_IN);
    }
    CHECK_INT(ev.cond, ==, DIALBACK_RESOURCE_CONSTRAINT);
    st_out(&out);
    side_close(&m);

    /* Our own verify requests on one stream: cfg->max_pending (3). */
    struct side c;
    side_open(&c, &cap_cfg, false, ID_S1);
    for (int i = 0; i < 4; i++)
        CHECK_INT(dialback_verify_send(&c.d, MON, CAP, senders[i], "k", 1, now, &out), ==,
                  i < 3 ? 0 : -ENOSPC);
    /* ...and our own requests: the stream's pending bound (2) */
    CHECK_INT(dialback_start(&c.d, CAP, "x.example", now, &out), ==, 0);
    CHECK_INT(dialback_start(&c.d, CAP, "y.example", now, &out), ==, 0);
    CHECK_INT(dialback_start(&c.d, CAP, "z.example", now, &out), ==, -ENOSPC);
    st_out(&out);
    side_close(&c);
}

/* s2s.dialback_timeout (60 s here): oldest first, each as its role says. */
static void timeout_test(void)
{
    struct dialback_event ev;
    struct side s;

    authz_init(&s.a, &lim, true);
    authz_set_bidi(&s.a); /* so one stream holds every kind */
    dialback_init(&s.d, &mon_cfg, &s.a, ID_S1, strlen(ID_S1));
    CHECK_INT(dialback_deadline(&s.d), ==, 0);
    recv(&s, "<db:result from='" CAP "' to='" MON "'>k</db:result>", &ev); /* at 1000 */
    now += 10;
    dialback_start(&s.d, MON, CAP, now, &out); /* 1010 */
    now += 10;
    dialback_verify_send(&s.d, "x.example", MON, "id-x", "k", 1, now, &out); /* 1020 */
    st_out(&out);
    CHECK_INT(dialback_deadline(&s.d), ==, 1060);

    CHECK_INT(dialback_expire(&s.d, 1059, &out, &ev), ==, DIALBACK_EV_NONE);
    CHECK_INT(dialback_expire(&s.d, 1060, &out, &ev), ==, DIALBACK_EV_REFUSED_IN);
    CHECK_EV(ev, DIALBACK_EV_REFUSED_IN, CAP, MON);
    CHECK_INT(ev.cond, ==, DIALBACK_REMOTE_SERVER_TIMEOUT);
    CHECK_STR(st_out(&out), "<db:result from='" MON "' to='" CAP "' type='error'><error "
                            "type='wait'><remote-server-timeout "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>");
    CHECK_INT(dialback_expire(&s.d, 1060, &out, &ev), ==, DIALBACK_EV_NONE);
    CHECK_INT(dialback_deadline(&s.d), ==, 1070);
    CHECK_INT(dialback_expire(&s.d, 2000, &out, &ev), ==, DIALBACK_EV_REFUSED_OUT);
    CHECK_EV(ev, DIALBACK_EV_REFUSED_OUT, MON, CAP);
    CHECK_INT(ev.bounce, ==, DIALBACK_REMOTE_SERVER_TIMEOUT);
    CHECK_INT(dialback_expire(&s.d, 2000, &out, &ev), ==, DIALBACK_EV_VERIFIED);
    CHECK_EV(ev, DIALBACK_EV_VERIFIED, "x.example", MON);
    CHECK_STR(ev.id, "id-x");
    CHECK_INT(ev.result, ==, DIALBACK_ERROR);
    CHECK_INT(ev.cond, ==, DIALBACK_REMOTE_SERVER_TIMEOUT);
    CHECK_INT(dialback_expire(&s.d, 2000, &out, &ev), ==, DIALBACK_EV_NONE);
    CHECK_INT(dialback_deadline(&s.d), ==, 0);
    CHECK_STR(st_out(&out), "");
    /* A late answer after its time finds nothing. */
    CHECK_INT(dialback_verified(&s.d, CAP, MON, DIALBACK_VALID, 0, &out, &ev), ==,
              DIALBACK_EV_NONE);
    side_close(&s);
    now = 1000;
}

/* A closed stream fails everything pending, sending nothing. */
static void drain_test(void)
{
    struct dialback_event ev;
    struct side s;
    int kinds[3] = {0};

    authz_init(&s.a, &lim, true);
    authz_set_bidi(&s.a);
    dialback_init(&s.d, &mon_cfg, &s.a, ID_S1, strlen(ID_S1));
    recv(&s, "<db:result from='" CAP "' to='" MON "'>k</db:result>", &ev);
    dialback_start(&s.d, MON, CAP, now, &out);
    dialback_verify_send(&s.d, "x.example", MON, "id-x", "k", 1, now, &out);
    st_out(&out);
    for (int i = 0; i < 4; i++) {
        enum dialback_ev k = dialback_drain(&s.d, &ev);
        if (k != DIALBACK_EV_NONE)
            CHECK_INT(ev.cond, ==, DIALBACK_REMOTE_CONNECTION_FAILED);
        if (k == DIALBACK_EV_REFUSED_OUT)
            CHECK_INT(ev.bounce, ==, DIALBACK_REMOTE_SERVER_TIMEOUT);
        if (k == DIALBACK_EV_REFUSED_IN)
            kinds[0]++;
        else if (k == DIALBACK_EV_REFUSED_OUT)
            kinds[1]++;
        else if (k == DIALBACK_EV_VERIFIED)
            kinds[2]++;
        else
            CHECK_INT(k, ==, DIALBACK_EV_NONE);
    }
    CHECK(kinds[0] == 1 && kinds[1] == 1 && kinds[2] == 1);
    CHECK_STR(st_out(&out), "");
    side_close(&s);
}

int main(void)
{
    dialback_config_secret(&cap_cfg, "s3cr3tf0rd14lb4ck", 17);
    dialback_config_secret(&mon_cfg, "d14lb4ck43v3r", 13);
    RUN(keys_test);
    RUN(parse_test);
    RUN(write_test);
    RUN(feature_test);
    RUN(flows_test);
    RUN(answer_at_once_test);
    RUN(authoritative_test);
    RUN(refuse_test);
    RUN(outcome_test);
    RUN(direction_test);
    RUN(start_errors_test);
    RUN(bounds_test);
    RUN(timeout_test);
    RUN(drain_test);
    buf_free(&out);
    arena_free(&st_arena);
    return test_done("s2s/dialback");
}
