/* Unit tests of router/module.c, the table of modules: what each claims (iq namespaces,
 * disco features) and the order its hooks run in. The calls are tried on tables of the
 * test's own (mod_active), and through the real shards (rt.h) for what a client sees. */
#include "rt.h"

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_CARBONS    "urn:xmpp:carbons:2"

static struct rt rt;

/* No two modules claim a namespace, and mod_for_ns() finds the one that does. */
static void ns_distinct(void)
{
    unsigned nns = 0;
    for (const struct module *const *m = mod_table; *m; m++)
        for (const char *const *n = (*m)->iq_ns; n && *n; n++, nns++) {
            CHECK((*m)->iq_own || (*m)->iq_other); /* a namespace claimed is served */
            if (mod_for_ns(*n) != *m)
                TEST_FAIL("%s: mod_for_ns(%s) is not it", (*m)->name, *n);
            for (const struct module *const *o = mod_table; *o; o++)
                for (const char *const *k = (*o)->iq_ns; *o != *m && k && *k; k++)
                    if (!strcmp(*k, *n))
                        TEST_FAIL("%s and %s both claim %s", (*m)->name, (*o)->name, *n);
        }
    CHECK_INT(nns, >=, 7); /* disco#info, disco#items, ping, version, roster, blocking, carbons */
    CHECK(mod_for_ns("urn:example:nobody") == NULL);
    CHECK(mod_for_ns("") == NULL);
}

/* The feature vars of the <feature/> elements in s, each followed by '\n'. */
static void features(const char *s, struct buf *out)
{
    for (const char *p = s; (p = strstr(p, "<feature var='")); ) {
        p += strlen("<feature var='");
        const char *q = strchr(p, '\'');
        if (!q)
            break;
        buf_append(out, p, (size_t)(q - p));
        buf_puts(out, "\n");
        p = q;
    }
}

static const char *disco_info(struct rt_conn *c)
{
    rt_send(&rt, c, PROTO_IQ, PROTO_IQ_GET, RT_DOMAIN,
            "<iq type='get' id='d1' to='" RT_DOMAIN "'><query xmlns='" NS_DISCO_INFO "'/></iq>");
    return rt_take(c);
}

/* disco#info of the server is what the table's modules say, in table order, and nothing
 * else; a module taken out of the table is gone from it, and so is its namespace. */
static void disco_from_table(void)
{
    rt_open(&rt, 2, 1, 1u << 20, 64u << 10);
    rt_account(&rt, "alice");
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct buf want = {0}, got = {0}, each = {0};
    for (const struct module *const *m = mod_table; *m; m++)
        if ((*m)->disco_server)
            (*m)->disco_server(&rt.shards[0], false, &each);
    buf_append(&each, "", 1);
    features(buf_data(&each), &want);
    features(disco_info(a), &got);
    buf_append(&want, "", 1);
    buf_append(&got, "", 1);
    CHECK_STR(buf_data(&got), buf_data(&want));
    CHECK(strstr(buf_data(&got), NS_CARBONS "\n"));
    CHECK(strstr(buf_data(&got), "urn:xmpp:blocking\n"));
    CHECK(strstr(buf_data(&got), "jabber:iq:roster\n"));

    const struct module *without[16];
    unsigned n = 0;
    for (const struct module *const *m = mod_table; *m && n < 15; m++)
        if (*m != &mod_carbons)
            without[n++] = *m;
    without[n] = NULL;
    mod_active = without;
    const char *out = disco_info(a);
    CHECK_INT(rt_count(out, "type='result'"), ==, 1);
    CHECK_INT(rt_count(out, NS_CARBONS), ==, 0);
    CHECK_INT(rt_count(out, "urn:xmpp:blocking"), ==, 1);
    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_SET, NULL,
            "<iq type='set' id='c1'><enable xmlns='" NS_CARBONS "'/></iq>");
    CHECK_INT(rt_count(rt_take(a), "service-unavailable"), ==, 1);
    mod_active = mod_table;
    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_SET, NULL,
            "<iq type='set' id='c2'><enable xmlns='" NS_CARBONS "'/></iq>");
    out = rt_take(a);
    CHECK_INT(rt_count(out, "type='result'"), ==, 1);
    CHECK_INT(rt_count(out, "service-unavailable"), ==, 0);
    buf_free(&want);
    buf_free(&got);
    buf_free(&each);
    rt_close(&rt);
}

/* ---- the order hooks run in -------------------------------------------------------------- */

static char trace[256];
static bool a_takes, b_fails;

static void note(const char *what)
{
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s ", what);
}

static bool a_out(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)s, (void)u, (void)ss, (void)st;
    note("a.out");
    return a_takes;
}

static bool b_out(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)s, (void)u, (void)ss, (void)st;
    note("b.out");
    return true;
}

static bool a_undeliverable(struct shard *s, struct user *v, const struct stanza *st)
{
    (void)s, (void)v, (void)st;
    note("a.undeliverable");
    return a_takes;
}

static void a_loaded(struct shard *s, struct user *u)
{
    (void)s, (void)u;
    note("a.loaded");
}

static void b_loaded(struct shard *s, struct user *u)
{
    (void)s, (void)u;
    note("b.loaded");
}

static int a_init(struct shard *s)
{
    (void)s;
    note("a.init");
    return 0;
}

static void a_free(struct shard *s)
{
    (void)s;
    note("a.free");
}

static int b_init(struct shard *s)
{
    (void)s;
    note("b.init");
    return b_fails ? -ENOMEM : 0;
}

static void b_free(struct shard *s)
{
    (void)s;
    note("b.free");
}

static const struct module mod_a = {.name = "a",
                                    .outbound = a_out,
                                    .undeliverable = a_undeliverable,
                                    .user_loaded = a_loaded,
                                    .shard_init = a_init,
                                    .shard_free = a_free};
static const struct module mod_b = {.name = "b",
                                    .outbound = b_out,
                                    .user_loaded = b_loaded,
                                    .shard_init = b_init,
                                    .shard_free = b_free};

/* Hooks run in table order; a bool hook that returns true stops the others; a shard_init
 * that fails undoes the modules before it, not itself or those after. */
static void hooks_in_order(void)
{
    static const struct module *const ab[] = {&mod_a, &mod_b, NULL};
    static const struct module *const ba[] = {&mod_b, &mod_a, NULL};
    mod_active = ab;
    trace[0] = '\0';
    mod_user_loaded(NULL, NULL);
    CHECK_STR(trace, "a.loaded b.loaded ");
    trace[0] = '\0';
    a_takes = false;
    CHECK(mod_outbound(NULL, NULL, NULL, NULL));
    CHECK_STR(trace, "a.out b.out ");
    trace[0] = '\0';
    a_takes = true;
    CHECK(mod_outbound(NULL, NULL, NULL, NULL));
    CHECK_STR(trace, "a.out ");
    trace[0] = '\0';
    a_takes = false;
    CHECK(!mod_undeliverable(NULL, NULL, NULL)); /* nobody took it: the core answers */
    CHECK(!mod_inbound(NULL, NULL, NULL));       /* no module has the hook */
    CHECK_STR(trace, "a.undeliverable ");
    trace[0] = '\0';
    b_fails = true;
    CHECK_INT(mod_shard_init(NULL), ==, -ENOMEM);
    CHECK_STR(trace, "a.init b.init a.free ");
    mod_active = ba;
    trace[0] = '\0';
    CHECK_INT(mod_shard_init(NULL), ==, -ENOMEM);
    CHECK_STR(trace, "b.init ");
    b_fails = false;
    trace[0] = '\0';
    CHECK_INT(mod_shard_init(NULL), ==, 0);
    mod_shard_free(NULL);
    CHECK_STR(trace, "b.init a.init b.free a.free ");
    mod_active = mod_table;
}

/* The real table: blocking's stanza hooks before every other module's, subscriptions'
 * after (module.c says why). */
static void table_order(void)
{
    CHECK(mod_table[0] == &mod_blocking);
    const struct module *last = NULL;
    for (const struct module *const *m = mod_table; *m; m++)
        if ((*m)->outbound || (*m)->inbound)
            last = *m;
    CHECK(last == &mod_sub);
}

/* A module placed as new ones are (after blocking, before subscriptions) sees what passed
 * both blocklists and every subscription presence; one that takes a stanza ends its way. */
static unsigned spy_out, spy_in;
static bool spy_takes;

static bool spy_outbound(struct shard *s, struct user *u, struct session *ss, struct stanza *st)
{
    (void)s, (void)u, (void)ss, (void)st;
    spy_out++;
    return spy_takes;
}

static bool spy_inbound(struct shard *s, struct user *v, struct stanza *st)
{
    (void)s, (void)v, (void)st;
    spy_in++;
    return false;
}

static const struct module mod_spy = {
    .name = "spy", .outbound = spy_outbound, .inbound = spy_inbound};

static void new_module_sees(void)
{
    const struct module *with[64];
    unsigned n = 0;
    for (const struct module *const *m = mod_table; *m && n < 62; m++) {
        if (*m == &mod_sub)
            with[n++] = &mod_spy;
        with[n++] = *m;
    }
    with[n] = NULL;
    mod_active = with;
    rt_open(&rt, 2, 1, 1u << 20, 64u << 10);
    rt_account(&rt, "alice");
    rt_account(&rt, "bob");
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct rt_conn *b = rt_bind(&rt, 0, "bob@localhost/desk");
    rt_send(&rt, a, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
    rt_send(&rt, b, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
    rt_take(a), rt_take(b);
    spy_out = spy_in = 0;
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost",
            "<message type='chat'><body>one</body></message>");
    CHECK_INT(spy_out, ==, 1);
    CHECK_INT(spy_in, ==, 1);
    CHECK_INT(rt_count(rt_take(b), "one"), ==, 1);

    rt_send(&rt, a, PROTO_PRESENCE, PROTO_PRES_SUBSCRIBE, "bob@localhost",
            "<presence type='subscribe'/>");
    CHECK_INT(spy_out, ==, 2);
    CHECK_INT(spy_in, ==, 2);
    CHECK_INT(rt_count(rt_take(b), "type='subscribe'"), ==, 1); /* sub.c went on with it */

    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_SET, NULL,
            "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'>"
            "<item jid='bob@localhost'/></block></iq>");
    CHECK_INT(rt_count(rt_take(a), "type='result'"), ==, 1);
    spy_out = spy_in = 0;
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost",
            "<message type='chat'><body>two</body></message>");
    CHECK_INT(spy_out, ==, 0); /* alice's blocklist stopped it first */
    CHECK_INT(rt_count(rt_take(a), "not-acceptable"), ==, 1);
    rt_send(&rt, b, PROTO_MESSAGE, PROTO_MSG_CHAT, "alice@localhost",
            "<message type='chat'><body>three</body></message>");
    CHECK_INT(spy_out, ==, 1); /* bob blocks nobody */
    CHECK_INT(spy_in, ==, 0);  /* alice's blocklist stopped it first */
    CHECK_INT(rt_count(rt_take(b), "service-unavailable"), ==, 1);
    CHECK_INT(rt_count(rt_take(a), "three"), ==, 0);

    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_SET, NULL,
            "<iq type='set' id='b2'><unblock xmlns='urn:xmpp:blocking'/></iq>");
    rt_take(a), rt_take(b);
    spy_takes = true;
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost",
            "<message type='chat'><body>four</body></message>");
    CHECK_INT(rt_count(rt_take(b), "four"), ==, 0); /* taken: not routed */
    spy_takes = false;
    rt_close(&rt);
    mod_active = mod_table;
}

int main(void)
{
    RUN(ns_distinct);
    RUN(disco_from_table);
    RUN(hooks_in_order);
    RUN(table_order);
    RUN(new_module_sees);
    return test_done("module");
}
