"""
Presence (RFC 6121 §4): initial presence to subscribers, probes answered with every
available resource's last presence, presence among the user's own resources, directed
presence and its undoing, unavailable presence on logout and on connection loss,
priority and bare-JID routing, and presence that must not leak. Accounts of their own
per test (server.new_users); contacts are made with befriend() (two handshakes).
"""
import socket

import pytest

from im import befriend, connect, is_presence, stanza_error
from rawxmpp import NS_CLIENT, q
from slixclient import Clients, run


def status(p):
    return p.findtext(q(NS_CLIENT, "status"))


def test_initial_presence_reaches_subscribers_only(server):
    """§4.2.2: the initial presence goes to each contact with a subscription from the
    user (to its available resources, addressed to its bare JID) and to nobody else;
    §4.2.3 / §4.3: the user gets its contacts' presence by probe."""
    un, cn, sn = server.new_users(3, "pres")
    with connect(server, un, "u") as u, connect(server, cn, "c") as c, \
            connect(server, sn, "stranger", available=True) as stranger:
        befriend(u, c)
        c.available()
        c.presence(status="c is here")
        c.wait_for(is_presence(frm=c.jid, status="c is here"), what="the echo")  # before U is there
        u.presence(status="u is here", priority=3)
        p = c.wait_for(is_presence(frm=u.jid, status="u is here"), what="U's initial presence")
        assert p.get("to") == c.bare
        assert p.findtext(q(NS_CLIENT, "priority")) == "3"
        # The probe U's server sent on U's behalf is answered with C's last presence.
        p = u.wait_for(is_presence(frm=c.jid, status="c is here"), what="C's presence by probe")
        assert p.get("to") == u.jid
        # A stranger hears nothing (the marker takes the path the broadcast would).
        u.message(stranger.jid, "marker")
        stranger.wait_message("marker")
        assert stranger.take(is_presence(frm=u.jid, ptype=None)) == []


def test_probe_answered_with_every_available_resource(server):
    """§4.3.2: at login the user receives the presence of each available resource of
    each contact it is subscribed to, as last sent: status, show and priority."""
    un, cn = server.new_users(2, "pres")
    with connect(server, un, "first") as u, connect(server, cn, "c1") as c1:
        befriend(u, c1)
    with connect(server, cn, "c1", available=True) as c1, connect(server, cn, "c2", available=True) as c2:
        c1.presence(status="one", priority=3, show="away")
        c2.presence(status="two", priority=7)
        c1.settle()
        c2.settle()
        with connect(server, un, "u") as u:
            u.presence()
            p1 = u.wait_for(is_presence(frm=c1.jid, status="one"), what="c1's presence")
            p2 = u.wait_for(is_presence(frm=c2.jid, status="two"), what="c2's presence")
            assert (p1.findtext(q(NS_CLIENT, "priority")), p1.findtext(q(NS_CLIENT, "show"))) == ("3", "away")
            assert p2.findtext(q(NS_CLIENT, "priority")) == "7"
            assert p1.get("to") == p2.get("to") == u.jid
            # Only the latest presence of each resource, once.
            u.store_barrier()
            assert u.take(is_presence(frm_bare=c1.bare, ptype=None)) == []


def test_no_probe_answer_for_non_subscriber(server):
    """§4.3.2: a probe from someone not subscribed (here: a client's own probe) gets no
    presence."""
    un, cn = server.new_users(2, "pres")
    with connect(server, cn, "c", available=True) as c, connect(server, un, "u", available=True) as u:
        c.presence(status="private")
        u.send(f"<presence type='probe' to='{c.bare}'/>")
        assert u.ping(c.bare).get("type") == "result"  # answered after the probe
        assert u.take(is_presence(frm=c.jid, ptype=None)) == []


def test_presence_among_own_resources(server):
    """§4.2.2, §4.4.2, §4.5.2: a resource's presence reaches the user's other available
    resources; a new resource is shown the ones already there."""
    un, = server.new_users(1, "pres")
    with connect(server, un, "a", available=True) as a:
        a.presence(status="a status")
        a.wait_for(is_presence(frm=a.jid, status="a status"), what="the echo")
        with connect(server, un, "b") as b:
            b.presence(status="b status")
            p = a.wait_for(is_presence(frm=b.jid, status="b status"), what="b's initial presence")
            assert p.get("to") in (None, a.jid, a.bare)
            b.wait_for(is_presence(frm=a.jid, status="a status"), what="a's presence, shown to b")
            b.presence(status="b changed", show="dnd")
            a.wait_for(is_presence(frm=b.jid, status="b changed"), what="b's update")
            b.presence("unavailable")
            a.wait_for(is_presence(frm=b.jid, ptype="unavailable"), what="b's unavailable presence")


@pytest.mark.parametrize("how", ["unavailable", "stream-close", "connection-lost"])
def test_directed_presence_is_undone(server, how):
    """§4.6.3: an entity that got directed presence from an available resource, and is
    not a subscriber, gets unavailable presence from it when the resource goes away:
    by unavailable presence, by closing the stream, or by losing the connection."""
    un, tn = server.new_users(2, "pres")
    with connect(server, tn, "t", available=True) as t:
        u = connect(server, un, "u", available=True)
        try:
            u.send(f"<presence to='{t.jid}'><status>just for you</status></presence>")
            p = t.wait_for(is_presence(frm=u.jid, status="just for you"), what="the directed presence")
            assert p.get("to") == t.jid
            if how == "unavailable":
                u.presence("unavailable")
            elif how == "stream-close":
                u.send("</stream:stream>")
            else:
                u.sock.shutdown(socket.SHUT_RDWR)  # no </stream:stream>, just gone
                u.close()
            t.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="the unavailable presence")
        finally:
            u.close()


def test_directed_unavailable_is_not_repeated(server):
    """After directed unavailable presence the entity is no longer owed one at the end
    (§4.6.3: 'if the user has not yet sent directed unavailable presence')."""
    un, tn = server.new_users(2, "pres")
    with connect(server, tn, "t", available=True) as t:
        with connect(server, un, "u", available=True) as u:
            u.send(f"<presence to='{t.jid}'/>")
            t.wait_for(is_presence(frm=u.jid), what="the directed presence")
            u.send(f"<presence type='unavailable' to='{t.jid}'/>")
            t.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="directed unavailable")
            u.presence("unavailable")
            u.message(t.jid, "marker")
            t.wait_message("marker")
        assert t.take(is_presence(frm=u.jid, ptype=None)) == []


def test_directed_presence_limit(make_server):
    """router.max_directed: a session remembers that many JIDs it sent directed presence
    to; one more is refused with wait/resource-constraint and does not go (its end could
    not be told). Presence again to a JID remembered, and directed unavailable (which
    makes room), always go; at the end each JID remembered hears unavailable (and one
    that had directed unavailable is not told again: test_directed_unavailable_is_not_repeated)."""
    s = make_server(router={"max_directed": 2})
    un, t1n, t2n, t3n = s.new_users(4, "dirl")
    with connect(s, t1n, "t", available=True) as t1, connect(s, t2n, "t", available=True) as t2, \
            connect(s, t3n, "t", available=True) as t3:
        with connect(s, un, "u", available=True) as u:
            for t in (t1, t2):
                u.send(f"<presence to='{t.jid}'><status>hi</status></presence>")
                t.wait_for(is_presence(frm=u.jid, status="hi"), what="the directed presence")
            u.send(f"<presence to='{t3.jid}' id='over'><status>hi</status></presence>")
            err = u.wait_for(lambda e: e.get("id") == "over", what="the refusal")
            assert stanza_error(err)[:2] == ("wait", "resource-constraint")
            assert err.get("from") == t3.jid
            # Again to one remembered: not a new entry.
            u.send(f"<presence to='{t1.jid}'><status>again</status></presence>")
            t1.wait_for(is_presence(frm=u.jid, status="again"), what="the second presence")
            # Directed unavailable makes room.
            u.send(f"<presence type='unavailable' to='{t2.jid}'/>")
            t2.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="directed unavailable")
            u.send(f"<presence to='{t3.jid}' id='now'><status>now</status></presence>")
            t3.wait_for(is_presence(frm=u.jid, status="now"), what="the presence after room was made")
            u.settle()
            assert [e for e in u.take() if e.get("type") == "error"] == []
            t3.settle()
            assert t3.take(is_presence(frm=u.jid, status="hi")) == [], "the refused presence went"
        for t in (t1, t3):
            t.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="the unavailable at the end")


@pytest.mark.parametrize("how", ["logout", "connection-lost", "explicit"])
def test_unavailable_broadcast_to_contacts(server, how):
    """§4.5: unavailable presence reaches the contacts when the user logs out, when its
    connection is lost without a goodbye, or when it sends unavailable presence."""
    un, cn = server.new_users(2, "pres")
    with connect(server, cn, "c", available=True) as c:
        u = connect(server, un, "u")
        try:
            befriend(u, c)
            u.presence(status="here")
            c.wait_for(is_presence(frm=u.jid, status="here"), what="U's presence")
            if how == "logout":
                u.send("</stream:stream>")
            elif how == "connection-lost":
                u.sock.shutdown(socket.SHUT_RDWR)
                u.close()
            else:
                u.send("<presence type='unavailable'><status>bye</status></presence>")
            p = c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="U's unavailable presence")
            assert p.get("to") == c.bare
            if how == "explicit":
                assert status(p) == "bye", "the unavailable presence is broadcast as sent (§4.5.2)"
        finally:
            u.close()


def test_priority_update_moves_bare_jid_messages(server):
    """§8.5.2.1.1 with §4.7.2.3: a presence update with a new priority changes which
    resource gets bare-JID messages."""
    un, = server.new_users(1, "pres")

    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "prio", available=True)
            a = await cs.login(un, "a", available=True, priority=5)
            b = await cs.login(un, "b", available=True, priority=1)
            alice.send_message(mto=f"{un}@localhost", mbody="first", mtype="chat")
            assert (await a.next_message())["body"] == "first"
            a.send_presence(ppriority=0)
            await b.next_presence(lambda p: p["from"] == a.boundjid and p["priority"] == 0)
            alice.send_message(mto=f"{un}@localhost", mbody="second", mtype="chat")
            assert (await b.next_message())["body"] == "second"
            alice.send_message(mto=a.boundjid.full, mbody="marker", mtype="chat")
            assert (await a.next_message())["body"] == "marker", "the old favourite got it"
            b.send_presence(ppriority=-1)
            await a.next_presence(lambda p: p["from"] == b.boundjid and p["priority"] == -1)
            alice.send_message(mto=f"{un}@localhost", mbody="third", mtype="chat")
            assert (await a.next_message())["body"] == "third"

    run(scenario())


def test_presence_after_unavailable_is_initial_again(server):
    """After unavailable presence a new available presence is initial again: contacts
    get it, and the resource is shown its contacts' presence once more."""
    un, cn = server.new_users(2, "pres")
    with connect(server, un, "u") as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        c.presence(status="c here")
        c.wait_for(is_presence(frm=c.jid, status="c here"), what="the echo")
        u.presence(status="u 1")
        u.wait_for(is_presence(frm=c.jid, status="c here"), what="C's presence by probe")
        u.presence("unavailable")
        c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="U gone")
        u.presence(status="u 2")
        c.wait_for(is_presence(frm=u.jid, status="u 2"), what="U back")
        u.wait_for(is_presence(frm=c.jid, status="c here"), what="C's presence by a new probe")


def test_presence_with_slixmpp(server):
    """A real client: slixmpp's roster shows a contact's resources and statuses from the
    presence the server sends."""
    un, cn = server.new_users(2, "pres")
    with connect(server, un, "raw") as u, connect(server, cn, "raw") as c:
        befriend(u, c)

    async def scenario():
        async with Clients(server) as cs:
            cu = await cs.login(cn, "slix")
            cu.send_presence(pstatus="slix here", pshow="chat")
            await cu.next_presence(lambda p: p["from"] == cu.boundjid and p["status"] == "slix here")
            uu = await cs.login(un, "slix")
            await uu.get_roster()
            await uu.available()
            p = await uu.next_presence(lambda p: p["from"] == cu.boundjid and p["status"] == "slix here")
            assert p["show"] == "chat"
            res = uu.client_roster[cu.boundjid.bare].resources
            assert res["slix"]["status"] == "slix here"
            await cu.close()
            await uu.next_presence(lambda p: p["from"] == cu.boundjid and p["type"] == "unavailable")

    run(scenario())
