/* Unit tests of router/presence.c (RFC 6121 §4) through the real shards (rt.h), with
 * small rings (32 KiB, frames of 8 KiB), so that a broadcast to many contacts, the probes
 * of a login and a roster result all travel in pieces, and are larger than a ring: none
 * of them may be lost. */
#include "rt.h"

#include <stdio.h>

#define NCONTACTS 120
#define LOCAL_LEN 1000 /* contacts' localparts: 60 of them are more than a ring holds */

static struct rt rt;
static struct rt_conn *alice, *contacts[NCONTACTS];
static char names[NCONTACTS][LOCAL_LEN + 16];

static void available(struct rt_conn *c)
{
    rt_send(&rt, c, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL,
            "<presence><show>chat</show></presence>");
}

/* alice and NCONTACTS contacts with long names, each subscribed to alice's presence
 * (subscription from) and alice to theirs (to): both, through the real state machine. */
static void open_rt(bool contacts_online)
{
    rt_open(&rt, 2, 2, 32u << 10, 8u << 10);
    rt_account(&rt, "alice");
    alice = rt_bind(&rt, 0, "alice@localhost/desk");
    char jid[LOCAL_LEN + 64], stanza[2 * LOCAL_LEN + 128];
    for (unsigned i = 0; i < NCONTACTS; i++) {
        snprintf(names[i], sizeof names[i], "c%03u%0*d", i, LOCAL_LEN - 4, 0);
        rt_account(&rt, names[i]);
        snprintf(jid, sizeof jid, "%s@localhost/r", names[i]);
        struct rt_conn *c = contacts[i] = rt_bind(&rt, i % 2, jid);
        snprintf(jid, sizeof jid, "%s@localhost", names[i]);
        rt_send(&rt, c, PROTO_PRESENCE, PROTO_PRES_SUBSCRIBE, "alice@localhost",
                "<presence type='subscribe' to='alice@localhost'/>");
        snprintf(stanza, sizeof stanza, "<presence type='subscribed' to='%s'/>", jid);
        rt_send(&rt, alice, PROTO_PRESENCE, PROTO_PRES_SUBSCRIBED, jid, stanza);
        snprintf(stanza, sizeof stanza, "<presence type='subscribe' to='%s'/>", jid);
        rt_send(&rt, alice, PROTO_PRESENCE, PROTO_PRES_SUBSCRIBE, jid, stanza);
        rt_send(&rt, c, PROTO_PRESENCE, PROTO_PRES_SUBSCRIBED, "alice@localhost",
                "<presence type='subscribed' to='alice@localhost'/>");
        if (contacts_online)
            available(c);
        else
            rt_unbind(&rt, c);
    }
    rt_take(alice);
    for (unsigned i = 0; i < NCONTACTS; i++)
        rt_take(contacts[i]);
}

/* The broadcast's contact list is larger than a frame between shards. */
static void broadcast_reaches_every_contact(void)
{
    open_rt(true);
    rt_send(&rt, alice, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL,
            "<presence><status>here</status></presence>");
    unsigned got = 0;
    for (unsigned i = 0; i < NCONTACTS; i++) {
        const char *out = rt_take(contacts[i]);
        if (rt_count(out, "<status>here</status>") == 1 &&
            rt_count(out, "from='alice@localhost/desk'") == 1)
            got++;
    }
    CHECK_INT(got, ==, NCONTACTS);
    rt_close(&rt);
}

/* A login's probes list more contacts than a frame holds; every answer comes back. */
static void probes_reach_every_contact(void)
{
    open_rt(true);
    struct rt_conn *again = rt_bind(&rt, 1, "alice@localhost/phone");
    rt_send(&rt, again, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL, "<presence/>");
    const char *out = rt_take(again);
    CHECK_INT(rt_count(out, "<show>chat</show>"), ==, NCONTACTS);
    rt_close(&rt);
}

/* The roster result is larger than a frame to a front end. */
static void large_roster_result(void)
{
    open_rt(false);
    rt_send(&rt, alice, PROTO_IQ, PROTO_IQ_GET, NULL,
            "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    const char *out = rt_take(alice);
    CHECK(strlen(out) > 3 * (32u << 10)); /* three rings' worth */
    CHECK_INT(rt_count(out, "id='r1'"), ==, 1);
    CHECK_INT(rt_count(out, "subscription='both'"), ==, NCONTACTS);
    CHECK_INT(rt_count(out, "</iq>"), ==, 1);
    rt_close(&rt);
}

static void block(const char *jid)
{
    char iq[2 * LOCAL_LEN + 200];
    snprintf(iq, sizeof iq,
             "<iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='%s'/></block></iq>",
             jid);
    rt_send(&rt, alice, PROTO_IQ, PROTO_IQ_SET, NULL, iq);
    CHECK_INT(rt_count(rt_take(alice), "type='result'"), ==, 1);
}

/* XEP-0191 §3.3: a blocked full JID gets no presence from the user, though the contact's
 * other resources do; a blocked domain/resource likewise, for every contact. */
static void blocked_resource_gets_no_broadcast(void)
{
    open_rt(true);
    char jid[LOCAL_LEN + 64];
    snprintf(jid, sizeof jid, "%s@localhost/r2", names[0]);
    struct rt_conn *other = rt_bind(&rt, 1, jid);
    available(other);
    snprintf(jid, sizeof jid, "%s@localhost/r", names[0]);
    block(jid);
    rt_take(other);
    rt_take(contacts[0]);
    rt_send(&rt, alice, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL,
            "<presence><status>one</status></presence>");
    CHECK_INT(rt_count(rt_take(contacts[0]), "<status>one</status>"), ==, 0);
    CHECK_INT(rt_count(rt_take(other), "<status>one</status>"), ==, 1);
    CHECK_INT(rt_count(rt_take(contacts[1]), "<status>one</status>"), ==, 1);
    block("localhost/r");
    for (unsigned i = 0; i < NCONTACTS; i++)
        rt_take(contacts[i]);
    rt_send(&rt, alice, PROTO_PRESENCE, PROTO_PRES_AVAILABLE, NULL,
            "<presence><status>two</status></presence>");
    unsigned got = 0;
    for (unsigned i = 0; i < NCONTACTS; i++)
        got += rt_count(rt_take(contacts[i]), "<status>two</status>");
    CHECK_INT(got, ==, 0);
    CHECK_INT(rt_count(rt_take(other), "<status>two</status>"), ==, 1);
    rt_close(&rt);
}

int main(void)
{
    RUN(broadcast_reaches_every_contact);
    RUN(probes_reach_every_contact);
    RUN(large_roster_result);
    RUN(blocked_resource_gets_no_broadcast);
    return test_done("presence");
}
