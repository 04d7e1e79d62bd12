/* Unit tests of router/mam.c and router/mam_query.c through the real shards (rt.h): the
 * room API a MUC module calls (archive a groupchat message, answer a query to the room,
 * page it), stanza-ids added to a stanza, ids and XEP-0082 times, and that rows
 * archived while an append is in flight go to the store together. */
#include "router/mam.h"
#include "common/store/store_mam.h"
#include "rt.h"

static struct rt rt;

#define ROOM "lobby@conference.localhost"

/* A frame as c2s hands over c's stanza (rt_send()'s), parsed, for calling an API
 * directly; the frame lives in *fr. */
static void frame_of(struct rt_conn *c, const char *to, uint8_t kind, uint8_t type,
                     const char *xml, struct buf *fr, struct stanza *st)
{
    struct buf s = {0};
    const char *name_end = xml + 1 + strcspn(xml + 1, " />");
    buf_append(&s, xml, (size_t)(name_end - xml));
    xmlw_attr(&s, "from", c->jid, c->jid_len);
    buf_puts(&s, name_end);
    size_t to_len = strlen(to), to_bare = strcspn(to, "/");
    struct proto_stanza h = {.conn = c->id,
                             .key = c->key,
                             .kind = kind,
                             .type = type,
                             .to_key = jid_hash(to, to_bare),
                             .from_len = (uint16_t)c->jid_len,
                             .from_bare_len = (uint16_t)c->bare_len,
                             .to_len = (uint16_t)to_len,
                             .to_bare_len = (uint16_t)to_bare,
                             .flags = PROTO_STANZA_LOCAL};
    h.head_len = (uint32_t)(strchr(buf_data(&s), '>') - buf_data(&s) + 1);
    h.stanza_len = buf_used(&s);
    buf_append(fr, &h, sizeof h);
    buf_append(fr, c->jid, c->jid_len);
    buf_append(fr, to, to_len);
    buf_append(fr, buf_data(&s), buf_used(&s));
    buf_free(&s);
    if (!stanza_parse(buf_data(fr), buf_used(fr), st))
        TEST_FAIL("a frame that does not parse");
}

/* c asks the room's archive (on shard s) with the query payload q_xml; what c got. */
static const char *room_query(struct rt_conn *c, struct shard *s, const char *q_xml)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='set' id='q1'>%s</iq>", q_xml);
    struct buf fr = {0};
    struct stanza st;
    frame_of(c, ROOM, PROTO_IQ, PROTO_IQ_SET, xml, &fr, &st);
    shard_current = s;
    struct xml_node *iq =
        xml_tree_parse(NULL, st.raw, st.raw_len, &s->arena, s->scratch, sizeof s->scratch);
    struct xml_node *q = iq ? xml_node_child(iq, "query", NULL) : NULL;
    if (!q)
        TEST_FAIL("the query does not parse");
    else
        mam_query(s, ROOM, ROOM, strlen(ROOM), &st, iq, q);
    arena_reset(&s->arena);
    shard_current = NULL;
    buf_free(&fr);
    rt_settle(&rt);
    return rt_take(c);
}

static uint64_t room_archive(struct shard *s, const char *nick, const char *body)
{
    char with[128], msg[256];
    snprintf(with, sizeof with, ROOM "/%s", nick);
    snprintf(msg, sizeof msg,
             "<message from='" ROOM "/%s' type='groupchat'><body>%s</body></message>", nick, body);
    shard_current = s;
    uint64_t id = mam_archive(s, ROOM, with, strlen(with), strlen(ROOM), msg, strlen(msg));
    shard_current = NULL;
    return id;
}

static void room_archive_and_query(void)
{
    rt_open(&rt, 2, 1, 1u << 20, 320u << 10);
    rt_account(&rt, "alice");
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct shard *s = &rt.shards[jid_hash(ROOM, strlen(ROOM)) % 2];
    uint64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char b[8];
        snprintf(b, sizeof b, "b%d", i);
        ids[i] = room_archive(s, i % 2 ? "romeo" : "juliet", b);
        CHECK(ids[i] != 0);
        CHECK(i == 0 || ids[i] > ids[i - 1]);
    }
    /* Queried at once: the rows still queued are sent first. */
    const char *got = room_query(a, s, "<query xmlns='urn:xmpp:mam:2' queryid='x'/>");
    CHECK_INT(rt_count(got, "<result xmlns='urn:xmpp:mam:2' queryid='x'"), ==, 5);
    CHECK_INT(rt_count(got, "from='" ROOM "'"), ==, 6); /* the results, the iq's result */
    CHECK_INT(rt_count(got, "to='alice@localhost/desk'"), ==, 6); /* and the iq's result */
    CHECK_INT(rt_count(got, "<message xmlns='jabber:client' from='" ROOM "/juliet'"), ==, 3);
    CHECK(strstr(got, "<count>5</count>") && strstr(got, "complete='true'"));
    const char *b0 = strstr(got, "b0"), *b4 = strstr(got, "b4");
    CHECK(b0 && b4 && b0 < b4);
    /* By occupant, and a page of two from the end. */
    got = room_query(a, s,
                     "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>"
                     "<field var='with'><value>" ROOM "/romeo</value></field></x></query>");
    CHECK_INT(rt_count(got, "<result "), ==, 2);
    got = room_query(a, s,
                     "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
                     "<max>2</max><before/></set></query>");
    char idt[MAM_ID_LEN], want[64];
    mam_id_text(ids[3], idt);
    snprintf(want, sizeof want, "<first index='3'>%s</first>", idt);
    CHECK(strstr(got, want) != NULL);
    CHECK(strstr(got, "complete=") == NULL);
    CHECK(strstr(got, "b3") && strstr(got, "b4") && !strstr(got, "b2"));
    /* A question the archive cannot answer. */
    got = room_query(a, s, "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>"
                           "<index>2</index></set></query>");
    CHECK(strstr(got, "feature-not-implemented") != NULL);
    /* mam.enabled false: nothing archived. */
    rt.cfg->mam.enabled = false;
    CHECK_INT(room_archive(s, "juliet", "off"), ==, 0);
    rt.cfg->mam.enabled = true;
    rt_close(&rt);
}

/* Rows archived while an append is in flight wait and go in one request. */
static void batched_while_in_flight(void)
{
    rt_open(&rt, 1, 1, 1u << 20, 320u << 10);
    rt_account(&rt, "alice");
    struct rt_conn *a = rt_bind(&rt, 0, "alice@localhost/desk");
    struct shard *s = &rt.shards[0];
    unsigned before = store_client_pending(s->store);
    for (int i = 0; i < 100; i++)
        room_archive(s, "juliet", "x");
    /* The first went alone; 99 wait for it: one request outstanding, not 100. */
    CHECK_INT(store_client_pending(s->store) - before, ==, 1);
    rt_settle(&rt);
    const char *got = room_query(a, s,
                                 "<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/"
                                 "protocol/rsm'><max>0</max></set></query>");
    CHECK(strstr(got, "<count>100</count>") != NULL);
    /* mam.max_queue: past it, refused (0) rather than queued. */
    rt.cfg->mam.max_queue = 10;
    unsigned refused = 0;
    for (int i = 0; i < 20; i++)
        refused += room_archive(s, "juliet", "y") == 0;
    CHECK_INT(refused, ==, 20 - 10 - 1); /* one in flight, ten queued */
    rt_settle(&rt);
    rt_close(&rt);
}

static void stanza_id_added(void)
{
    struct buf b = {0};
    const char *m = "<message to='a@b'><body>x</body></message>";
    mam_with_stanza_id(&b, m, strlen(m), "a'b@c", 5, 42);
    buf_append(&b, "", 1);
    CHECK_STR(buf_data(&b), "<message to='a@b'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' "
                            "by='a&apos;b@c' id='42'/></message>");
    buf_free(&b);
    mam_with_stanza_id(&b, "<message to='a@b'/>", 19, "c@d", 3, 7);
    buf_append(&b, "", 1);
    CHECK_STR(buf_data(&b),
              "<message to='a@b'><stanza-id xmlns='urn:xmpp:sid:0' by='c@d' id='7'/></message>");
    buf_free(&b);
}

static void ids_and_times(void)
{
    char t[32];
    CHECK_INT(mam_id_parse("1700000000000001"), ==, 1700000000000001ull);
    CHECK_INT(mam_id_parse(""), ==, 0);
    CHECK_INT(mam_id_parse("12a"), ==, 0);
    CHECK_INT(mam_id_parse("99999999999999999999"), ==, 0);
    CHECK_INT(mam_id_parse("-1"), ==, 0);
    /* XEP-0082's examples. */
    CHECK_INT(mam_time_parse("1969-07-21T02:56:15Z"), ==, -1); /* before our ids */
    CHECK_INT(mam_time_parse("2002-09-10T23:08:25Z"), ==, 1031699305000000ll);
    CHECK_INT(mam_time_parse("2002-09-10T23:08:25.123Z"), ==, 1031699305123000ll);
    CHECK_INT(mam_time_parse("2002-09-10T19:08:25-04:00"), ==, 1031699305000000ll);
    CHECK_INT(mam_time_parse("2002-09-11T01:08:25+02:00"), ==, 1031699305000000ll);
    CHECK_INT(mam_time_parse("2002-09-10T23:08:25"), ==, -1); /* no zone */
    CHECK_INT(mam_time_parse("2002-09-10 23:08:25Z"), ==, -1);
    CHECK_INT(mam_time_parse("2002-13-10T23:08:25Z"), ==, -1);
    CHECK_INT(mam_time_parse("2002-09-10T23:08:25Zjunk"), ==, -1);
    mam_time_text(1031699305123456ull, t);
    CHECK_STR(t, "2002-09-10T23:08:25.123456Z");
    CHECK_INT(mam_time_parse(t), ==, 1031699305123456ll);
}

int main(void)
{
    RUN(stanza_id_added);
    RUN(ids_and_times);
    RUN(room_archive_and_query);
    RUN(batched_while_in_flight);
    return test_done("router_mam");
}
