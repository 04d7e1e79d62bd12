/* Unit tests of router/route.c, the delivery rules of RFC 6120 §10 and RFC 6121 §8,
 * driven in-process through the real shards (rt.h): two shards, two front-end threads,
 * so that most pairs of users live in different shards. */
#include "rt.h"

#define MSG_CHAT(body) "<message type='chat'><body>" body "</body></message>"

static struct rt rt;

static void open_rt(void)
{
    rt_open(&rt, 2, 2, 1u << 20, 320u << 10);
    rt_account(&rt, "alice");
    rt_account(&rt, "bob");
}

static void available(struct rt_conn *c, int prio)
{
    char p[128];
    snprintf(p, sizeof p, "<presence><priority>%d</priority></presence>", prio);
    rt_send(&rt, c, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, p);
}

/* §8.5.2.1.1: a message to the bare JID goes to the resources of highest non-negative
 * priority, every one of them when tied; a negative one never gets it. */
static void bare_jid_by_priority(void)
{
    open_rt();
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct rt_conn *hi1 = rt_bind(&rt, 0, "bob@localhost/hi1");
    struct rt_conn *hi2 = rt_bind(&rt, 1, "bob@localhost/hi2");
    struct rt_conn *lo = rt_bind(&rt, 1, "bob@localhost/lo");
    struct rt_conn *neg = rt_bind(&rt, 0, "bob@localhost/neg");
    available(hi1, 5);
    available(hi2, 5);
    available(lo, 1);
    available(neg, -1);
    rt_take(hi1), rt_take(hi2), rt_take(lo), rt_take(neg);
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost", MSG_CHAT("tied"));
    CHECK_INT(rt_count(rt_take(hi1), "tied"), ==, 1);
    CHECK_INT(rt_count(rt_take(hi2), "tied"), ==, 1);
    CHECK_INT(rt_count(rt_take(lo), "tied"), ==, 0);
    CHECK_INT(rt_count(rt_take(neg), "tied"), ==, 0);
    /* headline: every resource of non-negative priority */
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_HEADLINE, "bob@localhost",
            "<message type='headline'><body>news</body></message>");
    CHECK_INT(rt_count(rt_take(hi1), "news"), ==, 1);
    CHECK_INT(rt_count(rt_take(lo), "news"), ==, 1);
    CHECK_INT(rt_count(rt_take(neg), "news"), ==, 0);
    rt_close(&rt);
}

/* More sessions than the old fixed target list held (256): every one gets a headline,
 * and a chat message to the bare JID reaches every tied one. */
static void many_sessions_all_reached(void)
{
    enum { N = 300 };
    open_rt();
    rt.cfg->router.max_sessions = N;
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk"), *b[N];
    for (unsigned i = 0; i < N; i++) {
        char jid[64];
        snprintf(jid, sizeof jid, "bob@localhost/r%u", i);
        b[i] = rt_bind(&rt, i % 2, jid);
        available(b[i], 0);
    }
    for (unsigned i = 0; i < N; i++)
        rt_take(b[i]);
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_HEADLINE, "bob@localhost",
            "<message type='headline'><body>all</body></message>");
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost", MSG_CHAT("tie"));
    unsigned headline = 0, chat = 0;
    for (unsigned i = 0; i < N; i++) {
        const char *out = rt_take(b[i]);
        headline += rt_count(out, ">all<");
        chat += rt_count(out, ">tie<");
    }
    CHECK_INT(headline, ==, N);
    CHECK_INT(chat, ==, N);
    rt_close(&rt);
}

/* No available resource: stored (XEP-0160) and delivered, with a delay stamp, at the next
 * initial presence of non-negative priority, once. */
static void offline_then_delivered(void)
{
    open_rt();
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost", MSG_CHAT("while away"));
    CHECK_INT(rt_count(rt_take(a), "type='error'"), ==, 0);
    struct rt_conn *neg = rt_bind(&rt, 1, "bob@localhost/neg");
    available(neg, -1);
    CHECK_INT(rt_count(rt_take(neg), "while away"), ==, 0);
    struct rt_conn *b = rt_bind(&rt, 1, "bob@localhost/phone");
    available(b, 0);
    const char *out = rt_take(b);
    CHECK_INT(rt_count(out, "while away"), ==, 1);
    CHECK_INT(rt_count(out, "<delay xmlns='urn:xmpp:delay'"), ==, 1);
    struct rt_conn *b2 = rt_bind(&rt, 0, "bob@localhost/tablet");
    available(b2, 0);
    CHECK_INT(rt_count(rt_take(b2), "while away"), ==, 0); /* delivered once, then deleted */
    rt_close(&rt);
}

/* §8.5.3.2: a full JID with no such session: a chat message is handled as if to the bare
 * JID, an iq gets service-unavailable; §8.5.1: no account at all, service-unavailable. */
static void full_jid_and_no_account(void)
{
    open_rt();
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct rt_conn *b = rt_bind(&rt, 1, "bob@localhost/phone");
    available(b, 0);
    rt_take(b);
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "bob@localhost/gone", MSG_CHAT("to bare"));
    CHECK_INT(rt_count(rt_take(b), "to bare"), ==, 1);
    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_GET, "bob@localhost/gone",
            "<iq type='get' id='q1' to='bob@localhost/gone'><query xmlns='jabber:iq:version'/></iq>");
    const char *out = rt_take(a);
    CHECK_INT(rt_count(out, "id='q1'"), ==, 1);
    CHECK_INT(rt_count(out, "<service-unavailable"), ==, 1);
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_CHAT, "nobody@localhost", MSG_CHAT("void"));
    out = rt_take(a);
    CHECK_INT(rt_count(out, "type='error'"), ==, 1);
    CHECK_INT(rt_count(out, "<service-unavailable"), ==, 1);
    rt_close(&rt);
}

/* A bind that arrives while the user's state loads, behind an unbind of the same
 * resource, waits behind it: with resource_conflict = refuse it would otherwise find the
 * session on its way out and fail with conflict. */
static void bind_waits_behind_unbind(void)
{
    open_rt();
    rt.cfg->c2s.resource_conflict = CONFIG_CONFLICT_REFUSE;
    struct rt_conn *old = rt_conn_new(&rt, 0, "bob@localhost/phone");
    struct rt_conn *fresh = rt_conn_new(&rt, 1, "bob@localhost/phone");
    rt_put_session(&rt, old, PROTO_BIND);
    rt_put_session(&rt, old, PROTO_UNBIND);
    old->closed = PROTO_SE_RESET + 2;
    rt_put_session(&rt, fresh, PROTO_BIND); /* thread 1's ring: read after thread 0's */
    rt_settle(&rt);
    CHECK_INT(fresh->bind_result, ==, 0);
    rt_close(&rt);
}

int main(void)
{
    RUN(bare_jid_by_priority);
    RUN(many_sessions_all_reached);
    RUN(offline_then_delivered);
    RUN(full_jid_and_no_account);
    RUN(bind_waits_behind_unbind);
    return test_done("route");
}
