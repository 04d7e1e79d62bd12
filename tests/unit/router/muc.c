/* Unit tests of router/muc.c and router/muc_room.c: the room's rules (who may change
 * whose role and affiliation, history bounds, affiliations by domain), then a room of
 * RT_OCC occupants on two front-end threads through the real shards (rt.h): a groupchat
 * message leaves the room's shard as one frame per thread, and every occupant gets it
 * once with its own `to` and the room's stanza-id (a forged one naming the room removed);
 * occupants whose JIDs answer the room with errors removed (333) by the rule of muc.c. */
#include "router/muc.h"
#include "rt.h"

#include <stdio.h>

#define RT_OCC 400

static void role_rules(void)
{
    /* §8.2: a moderator kicks a participant; nobody kicks an admin or owner. */
    CHECK(muc_may_set_role(MUC_ROLE_MODERATOR, MUC_AFF_NONE, MUC_AFF_NONE, MUC_ROLE_PARTICIPANT,
                           MUC_ROLE_NONE));
    CHECK(!muc_may_set_role(MUC_ROLE_MODERATOR, MUC_AFF_OWNER, MUC_AFF_ADMIN, MUC_ROLE_MODERATOR,
                            MUC_ROLE_NONE));
    CHECK(!muc_may_set_role(MUC_ROLE_PARTICIPANT, MUC_AFF_MEMBER, MUC_AFF_NONE,
                            MUC_ROLE_PARTICIPANT, MUC_ROLE_NONE));
    /* §9.6: granting moderator is an admin's; a mere moderator may not, nor kick one. */
    CHECK(muc_may_set_role(MUC_ROLE_MODERATOR, MUC_AFF_ADMIN, MUC_AFF_MEMBER, MUC_ROLE_PARTICIPANT,
                           MUC_ROLE_MODERATOR));
    CHECK(!muc_may_set_role(MUC_ROLE_MODERATOR, MUC_AFF_NONE, MUC_AFF_MEMBER, MUC_ROLE_PARTICIPANT,
                            MUC_ROLE_MODERATOR));
    CHECK(!muc_may_set_role(MUC_ROLE_MODERATOR, MUC_AFF_MEMBER, MUC_AFF_NONE, MUC_ROLE_MODERATOR,
                            MUC_ROLE_NONE));
    /* §9, §10: admins manage members and outcasts, owners everything. */
    CHECK(muc_may_set_aff(MUC_AFF_ADMIN, MUC_AFF_NONE, MUC_AFF_OUTCAST));
    CHECK(!muc_may_set_aff(MUC_AFF_ADMIN, MUC_AFF_ADMIN, MUC_AFF_MEMBER));
    CHECK(!muc_may_set_aff(MUC_AFF_ADMIN, MUC_AFF_MEMBER, MUC_AFF_OWNER));
    CHECK(muc_may_set_aff(MUC_AFF_OWNER, MUC_AFF_ADMIN, MUC_AFF_NONE));
    CHECK(!muc_may_set_aff(MUC_AFF_MEMBER, MUC_AFF_NONE, MUC_AFF_MEMBER));
    CHECK_INT(muc_aff_parse("outcast"), ==, MUC_AFF_OUTCAST);
    CHECK_INT(muc_role_parse("chief"), ==, -1);
}

static void tables(void)
{
    struct muc_table t;
    CHECK_INT(muc_table_init(&t), ==, 0);
    char jid[64];
    for (unsigned i = 0; i < 300; i++) { /* past the first table size: it grows */
        snprintf(jid, sizeof jid, "r%u@conference.localhost", i);
        CHECK(muc_room_add(&t, jid_hash(jid, strlen(jid)), jid, strlen(jid), 10) != NULL);
    }
    snprintf(jid, sizeof jid, "r%u@conference.localhost", 123u);
    struct muc_room *r = muc_room_find(&t, jid_hash(jid, strlen(jid)), jid, strlen(jid));
    CHECK(r != NULL);
    /* Affiliations: the bare JID's, else its domain's; max entries. */
    CHECK_INT(muc_aff_set(r, "evil.example", 12, MUC_AFF_OUTCAST, 2), ==, 0);
    CHECK_INT(muc_aff_set(r, "ok@evil.example", 15, MUC_AFF_MEMBER, 2), ==, 0);
    CHECK_INT(muc_aff_set(r, "x@y", 3, MUC_AFF_MEMBER, 2), ==, -EDQUOT);
    CHECK_INT(muc_aff_of(r, "bad@evil.example/r", 18), ==, MUC_AFF_OUTCAST);
    CHECK_INT(muc_aff_of(r, "ok@evil.example/r", 17), ==, MUC_AFF_MEMBER);
    CHECK_INT(muc_aff_of(r, "a@b", 3), ==, MUC_AFF_NONE);
    CHECK_INT(muc_aff_set(r, "evil.example", 12, MUC_AFF_NONE, 2), ==, 0);
    CHECK_INT(r->naffs, ==, 1);
    /* History: at most 3 messages and 100 bytes; the newest stay. */
    char m[96] = {0}; /* 90 bytes of it are read below */
    for (int i = 0; i < 5; i++) {
        snprintf(m, sizeof m, "<message>%d</message>", i);
        CHECK_INT(muc_hist_add(r, m, strlen(m), 1000 + i, 3, 100), ==, 0);
    }
    CHECK_INT(r->nhist, ==, 3);
    CHECK_SPAN(r->hist_head->stanza, r->hist_head->len, "<message>2</message>");
    CHECK(muc_hist_from(r, 1, -1, 0) == r->hist_tail);
    CHECK(muc_hist_from(r, -1, 25, 0) == r->hist_tail); /* 20 characters each */
    CHECK(muc_hist_from(r, -1, -1, 1004) == r->hist_tail);
    CHECK(muc_hist_from(r, 0, -1, 0) == NULL);
    CHECK(muc_hist_from(r, -1, -1, 0) == r->hist_head);
    muc_hist_add(r, m, 90, 2000, 3, 100); /* 90 bytes: the others must go */
    CHECK_INT(r->nhist, ==, 1);
    muc_room_remove(&t, r);
    CHECK_INT(t.count, ==, 299);
    muc_table_free(&t);
}

static struct rt rt;

static void one_frame_per_thread(void)
{
    rt_open(&rt, 2, 2, 4u << 20, 1u << 20);
    static struct rt_conn *occ[RT_OCC];
    char jid[64], st[256];
    const char *room = "big@conference.localhost";
    for (unsigned i = 0; i < RT_OCC; i++) {
        snprintf(jid, sizeof jid, "u%u@localhost/r", i);
        occ[i] = rt_bind(&rt, i % 2, jid);
        rt_send(&rt, occ[i], PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
        snprintf(jid, sizeof jid, "%s/n%u", room, i);
        snprintf(st, sizeof st, "<presence to='%s'><x xmlns='" NS_MUC "'/></presence>", jid);
        rt_send(&rt, occ[i], PROTO_PRESENCE, PROTO_PRES_AVAILABLE, jid, st);
        if (i == 0) /* the owner opens it: an instant room */
            rt_send(&rt, occ[0], PROTO_IQ, PROTO_IQ_SET, room,
                    "<iq type='set' id='c1' to='big@conference.localhost'><query xmlns='" NS_MUC_OWNER
                    "'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
    }
    for (unsigned i = 0; i < RT_OCC; i++)
        rt_take(occ[i]);
    uint64_t frames = 0, deliveries = 0, msgs = 0;
    for (unsigned s = 0; s < 2; s++) {
        frames += rt.shards[s].stats.muc_deliver_frames;
        deliveries += rt.shards[s].stats.muc_deliveries;
        msgs += rt.shards[s].stats.muc_messages;
    }
    rt_send(&rt, occ[7], PROTO_MESSAGE, PROTO_MSG_GROUPCHAT, room,
            "<message to='big@conference.localhost' type='groupchat' id='g1'><body>hi all</body></message>");
    for (unsigned s = 0; s < 2; s++) {
        frames -= rt.shards[s].stats.muc_deliver_frames;
        deliveries -= rt.shards[s].stats.muc_deliveries;
        msgs -= rt.shards[s].stats.muc_messages;
    }
    CHECK_INT(-msgs, ==, 1);
    CHECK_INT(-deliveries, ==, RT_OCC);
    CHECK_INT(-frames, ==, 2); /* one per thread, 200 occupants each */
    /* Archived by the room (the rt shards have the archive module): every copy carries
     * the same stanza-id by the room, after what the sender wrote. */
    char sid[64] = "";
    for (unsigned i = 0; i < RT_OCC; i++) {
        const char *got = rt_take(occ[i]);
        const char *id = strstr(got, "<stanza-id xmlns='urn:xmpp:sid:0' by='big@conference.localhost' id='");
        CHECK(id != NULL);
        if (!id)
            continue;
        if (!sid[0])
            snprintf(sid, sizeof sid, "%.*s", (int)strcspn(id + 68, "'"), id + 68);
        snprintf(st, sizeof st, "<message to='u%u@localhost/r' from='%s/n7' type='groupchat' id='g1'>"
                 "<body>hi all</body><stanza-id xmlns='urn:xmpp:sid:0' by='%s' id='%s'/></message>",
                 i, room, room, sid);
        CHECK_STR(got, st);
    }
    /* A stanza-id the sender wrote naming the room (in any case) goes; another's stays.
     * A no-store hint: not archived, no stanza-id. */
    rt_send(&rt, occ[7], PROTO_MESSAGE, PROTO_MSG_GROUPCHAT, room,
            "<message to='big@conference.localhost' type='groupchat' id='g2'><body>2</body>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='Big@Conference.localhost' id='forged'/>"
            "<stanza-id xmlns='urn:xmpp:sid:0' by='other@example.net' id='kept'/></message>");
    const char *g2 = rt_take(occ[1]);
    CHECK(strstr(g2, "id='forged'") == NULL);
    CHECK(strstr(g2, "by='other@example.net' id='kept'") != NULL);
    CHECK(strstr(g2, "by='big@conference.localhost' id='") != NULL);
    for (unsigned i = 0; i < RT_OCC; i++)
        if (i != 1)
            rt_take(occ[i]);
    rt_send(&rt, occ[7], PROTO_MESSAGE, PROTO_MSG_GROUPCHAT, room,
            "<message to='big@conference.localhost' type='groupchat' id='g3'><body>3</body>"
            "<no-store xmlns='urn:xmpp:hints'/></message>");
    CHECK(strstr(rt_take(occ[1]), "stanza-id") == NULL);
    for (unsigned i = 0; i < RT_OCC; i++)
        if (i != 1)
            rt_take(occ[i]);
    /* A session's end takes its occupant out: the others hear it. */
    rt_unbind(&rt, occ[3]);
    const char *got = rt_take(occ[4]);
    CHECK(strstr(got, "from='big@conference.localhost/n3' type='unavailable'") != NULL);
    rt_close(&rt);
}

/* An error from an occupant's real JID answering the room removes it (status 333) when it
 * says the occupant is gone: any presence error, a message error of such a condition, not
 * one that speaks of the one stanza; an error from a JID no longer in the room is dropped
 * (how a dead server's bounces of the removal's own broadcast end). */
static void error_removes(void)
{
    rt_open(&rt, 2, 2, 4u << 20, 1u << 20);
    const char *room = "err@conference.localhost";
    struct rt_conn *occ[3];
    char jid[64], st[256];
    for (unsigned i = 0; i < 3; i++) {
        snprintf(jid, sizeof jid, "e%u@localhost/r", i);
        occ[i] = rt_bind(&rt, 0, jid);
        rt_send(&rt, occ[i], PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
        snprintf(jid, sizeof jid, "%s/n%u", room, i);
        snprintf(st, sizeof st, "<presence to='%s'><x xmlns='" NS_MUC "'/></presence>", jid);
        rt_send(&rt, occ[i], PROTO_PRESENCE, PROTO_PRES_AVAILABLE, jid, st);
        if (i == 0)
            rt_send(&rt, occ[0], PROTO_IQ, PROTO_IQ_SET, room,
                    "<iq type='set' id='c1' to='err@conference.localhost'><query xmlns='" NS_MUC_OWNER
                    "'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
    }
    for (unsigned i = 0; i < 3; i++)
        rt_take(occ[i]);
#define STZ "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'"
    /* Of the one stanza: e1 stays, nobody hears anything, nothing answers it. */
    rt_send(&rt, occ[1], PROTO_MESSAGE, PROTO_MSG_ERROR, room,
            "<message to='err@conference.localhost' type='error'><error type='cancel'>"
            "<feature-not-implemented " STZ "/></error></message>");
    CHECK_STR(rt_take(occ[0]), "");
    CHECK_STR(rt_take(occ[1]), "");
    /* Gone (to room/nick: the reply to a private message): e1 leaves with 333. */
    rt_send(&rt, occ[1], PROTO_MESSAGE, PROTO_MSG_ERROR, "err@conference.localhost/n0",
            "<message to='err@conference.localhost/n0' type='error'><error type='cancel'>"
            "<recipient-unavailable " STZ "/></error></message>");
    const char *got = rt_take(occ[0]);
    CHECK(strstr(got, "from='err@conference.localhost/n1' type='unavailable'") != NULL);
    CHECK(strstr(got, "<status code='333'/>") != NULL);
    CHECK(strstr(got, "<status code='110'/>") == NULL);
    got = rt_take(occ[1]);
    CHECK(strstr(got, "<status code='333'/><status code='110'/>") != NULL);
    CHECK(strstr(rt_take(occ[2]), "<status code='333'/>") != NULL);
    /* No longer an occupant: its errors end there. */
    rt_send(&rt, occ[1], PROTO_MESSAGE, PROTO_MSG_ERROR, room,
            "<message to='err@conference.localhost' type='error'><error type='cancel'>"
            "<remote-server-not-found " STZ "/></error></message>");
    rt_send(&rt, occ[1], PROTO_PRESENCE, PROTO_PRES_ERROR, room,
            "<presence to='err@conference.localhost' type='error'><error type='cancel'>"
            "<remote-server-not-found " STZ "/></error></presence>");
    CHECK_STR(rt_take(occ[0]), "");
    CHECK_STR(rt_take(occ[1]), "");
    /* A presence error removes, whatever its condition. */
    rt_send(&rt, occ[2], PROTO_PRESENCE, PROTO_PRES_ERROR, room,
            "<presence to='err@conference.localhost' type='error'><error type='modify'>"
            "<bad-request " STZ "/></error></presence>");
    got = rt_take(occ[0]);
    CHECK(strstr(got, "from='err@conference.localhost/n2' type='unavailable'") != NULL);
    CHECK(strstr(got, "<status code='333'/>") != NULL);
#undef STZ
    rt_close(&rt);
}

/* Stanzas to a room the shard does not hold wait for the store's answer (muc_store.c):
 * at most router.max_pending bytes of them; the rest are answered resource-constraint,
 * and every one of them is answered (none dropped). Then a persistent room written to
 * the store comes back in a router that never held it. */
static void load_waits_bounded(void)
{
    rt_open(&rt, 1, 1, 4u << 20, 1u << 20);
    rt.cfg->router.max_pending = 64 * 1024;
    struct rt_conn *a = rt_bind(&rt, 0, "a@localhost/r");
    rt_send(&rt, a, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
    rt_take(a);
    static char st[1400];
    char pad[1025];
    memset(pad, 'x', 1024);
    pad[1024] = '\0';
    enum { N = 100 }; /* of about 1.2K each: one batch, before any store answer */
    for (int i = 0; i < N; i++) {
        snprintf(st, sizeof st, "<message to='nope@conference.localhost' type='groupchat' id='m%d'>"
                 "<body>%s</body></message>", i, pad);
        rt_send_later(&rt, a, PROTO_MESSAGE, PROTO_MSG_GROUPCHAT, "nope@conference.localhost", st);
    }
    rt_settle(&rt);
    const char *got = rt_take(a);
    unsigned full = rt_count(got, "<resource-constraint"), absent = rt_count(got, "<item-not-found");
    CHECK(full > 0);
    CHECK(absent > 0);
    CHECK_INT(full + absent, ==, N);
    CHECK(strstr(got, "id='m0'") && strstr(got, "id='m99'"));

    const char *room = "kept@conference.localhost";
    rt_send(&rt, a, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, "kept@conference.localhost/a",
            "<presence to='kept@conference.localhost/a'><x xmlns='" NS_MUC "'/></presence>");
    rt_send(&rt, a, PROTO_IQ, PROTO_IQ_SET, room,
            "<iq type='set' id='c1' to='kept@conference.localhost'><query xmlns='" NS_MUC_OWNER
            "'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_persistentroom'>"
            "<value>1</value></field><field var='muc#roomconfig_roomname'><value>Kept</value>"
            "</field></x></query></iq>");
    rt_send(&rt, a, PROTO_MESSAGE, PROTO_MSG_GROUPCHAT, room,
            "<message to='kept@conference.localhost' type='groupchat'><subject>S1</subject></message>");
    rt_take(a);
    /* The router forgets it (as a new router would not have it). */
    struct muc_table *t = muc_rooms(&rt.shards[0]);
    struct muc_room *r = muc_room_find(t, jid_hash(room, strlen(room)), room, strlen(room));
    CHECK(r && r->stored && !r->dirty);
    if (r)
        muc_room_remove(t, r);
    struct rt_conn *b = rt_bind(&rt, 0, "b@localhost/r");
    rt_send(&rt, b, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
    rt_take(b);
    rt_send(&rt, b, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, "kept@conference.localhost/b",
            "<presence to='kept@conference.localhost/b'><x xmlns='" NS_MUC "'/></presence>");
    got = rt_take(b);
    CHECK(strstr(got, "<status code='110'/>") != NULL);
    CHECK(strstr(got, "<status code='201'/>") == NULL); /* not a new room */
    CHECK(strstr(got, "<subject>S1</subject>") != NULL);
    rt_close(&rt);
}

int main(void)
{
    RUN(role_rules);
    RUN(tables);
    RUN(one_frame_per_thread);
    RUN(error_removes);
    RUN(load_waits_bounded);
    return test_done("muc");
}
