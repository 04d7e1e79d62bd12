"""
Sessions and routing with slixmpp clients: chat, bare-JID delivery by priority
(RFC 6121 §8.5.2.1.1), resource binding and conflicts (RFC 6120 §7), `from` stamping
(§8.1.2.1), errors for unreachable addressees (§10), iq to the server, presence
broadcast and unavailable presence when a session ends (RFC 6121 §4).

"Did not receive" is checked with a marker instead of a sleep: after the stanza that
must not arrive, the same sender sends a marker to the same connection through the
same shard; frames between a shard and a connection keep their order, so when the
marker comes first, the other one was not delivered.
"""
import itertools
import time

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from rawxmpp import NS_BIND, NS_SASL, RawClient, q, stanza_error_condition
from slixclient import Clients, first_of, run


def error_of(stanza):
    return stanza["error"]["type"], stanza["error"]["condition"]


def test_chat_both_ways(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "chat", available=True)
            bob = await cs.login("bob", "chat", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="hello bob", mtype="chat")
            m = await bob.next_message()
            assert (m["body"], m["type"], m["from"].full) == ("hello bob", "chat", alice.boundjid.full)
            bob.send_message(mto=m["from"], mbody="hello alice", mtype="chat")
            m = await alice.next_message()
            assert (m["body"], m["from"].full) == ("hello alice", bob.boundjid.full)
            # To the bare JID as well, many in a row, in order.
            for i in range(20):
                alice.send_message(mto=bob.boundjid.bare, mbody=f"n{i}", mtype="chat")
            got = [(await bob.next_message())["body"] for _ in range(20)]
            assert got == [f"n{i}" for i in range(20)]

    run(scenario())


def test_bare_jid_goes_to_highest_priority(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "prio", available=True)
            high = await cs.login("bob", "high", available=True, priority=5)
            low = await cs.login("bob", "low", available=True, priority=1)
            await high.next_presence(lambda p: p["from"] == low.boundjid)  # low's broadcast
            alice.send_message(mto="bob@localhost", mbody="to the bare jid", mtype="chat")
            m = await high.next_message()
            assert m["body"] == "to the bare jid"
            alice.send_message(mto=low.boundjid.full, mbody="marker", mtype="chat")
            m = await low.next_message()
            assert m["body"] == "marker", "the priority-1 resource got the bare-JID message"

    run(scenario())


def test_bare_jid_goes_to_all_tied_resources(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "tie", available=True)
            b1 = await cs.login("bob", "tie1", available=True, priority=3)
            b2 = await cs.login("bob", "tie2", available=True, priority=3)
            await b1.next_presence(lambda p: p["from"] == b2.boundjid)
            alice.send_message(mto="bob@localhost", mbody="to both", mtype="chat")
            assert (await b1.next_message())["body"] == "to both"
            assert (await b2.next_message())["body"] == "to both"

    run(scenario())


def test_bare_jid_negative_priority_gets_nothing(server):
    """RFC 6121 §8.5.2.1.1: a resource of negative priority never gets a message for the
    bare JID. When every available resource is negative, the message is handled as if
    none were available (§8.5.2.2): stored, no error, and delivered at the next initial
    presence with a non-negative priority (XEP-0160)."""
    rcpt, = server.new_users(1, "negprio")  # nobody else's stored messages

    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "neg", available=True)
            neg = await cs.login(rcpt, "neg", available=True, priority=-1)
            alice.send_message(mto=neg.boundjid.bare, mbody="nobody wants this live", mtype="chat")
            alice.send_message(mto=neg.boundjid.full, mbody="marker", mtype="chat")
            m = await neg.next_message()
            assert m["body"] == "marker", "a negative-priority resource got a bare-JID message"
            # No error either: an iq answered by the recipient's shard comes after it.
            res = await alice.ping_jid(neg.boundjid.bare)
            assert res["type"] == "result"
            assert alice.no_pending_messages() == []
            # Stored: a resource of priority 0 gets it at its initial presence.
            zero = await cs.login(rcpt, "zero", available=True, priority=0)
            m = await zero.next_message()
            assert (m["body"], m["from"].full) == ("nobody wants this live", alice.boundjid.full)
            assert m.xml.find("{urn:xmpp:delay}delay") is not None
            alice.send_message(mto=neg.boundjid.full, mbody="marker 2", mtype="chat")
            assert (await neg.next_message())["body"] == "marker 2"

    run(scenario())


def test_resource_conflict_replaces_old_session(server):
    """RFC 6120 §7.7.2.2 with c2s.resource_conflict = replace (the default): the old
    session gets a <conflict/> stream error and is closed; the new one has the JID.
    Here the account has another resource, so the user stays in the router throughout
    (the case without one: test_resource_conflict_replace_only_session)."""

    async def scenario():
        async with Clients(server) as cs:
            other = await cs.login("carol", "other", available=True)
            first = await cs.login("carol", "same", available=True)
            second = await cs.login("carol", "same")
            assert second.boundjid.full == "carol@localhost/same"
            err = await first.next_stream_error()
            assert err["condition"] == "conflict"
            await first.wait_gone()
            await second.available()
            alice = await cs.login("alice", "conflict", available=True)
            alice.send_message(mto="carol@localhost/same", mbody="to the new one", mtype="chat")
            assert (await second.next_message())["body"] == "to the new one"
            second.send_message(mto=alice.boundjid.full, mbody="from the new one", mtype="chat")
            m = await alice.next_message()
            assert (m["body"], m["from"].full) == ("from the new one", "carol@localhost/same")
            assert other.no_pending_messages() == []

    run(scenario())


def test_resource_conflict_replace_only_session(make_server):
    # A node of its own: the bug is a use-after-free in the router.
    s = make_server(expect_stable=False)

    async def scenario():
        async with Clients(s) as cs:
            first = await cs.login("carol", "same", available=True)
            second = await cs.login("carol", "same")
            assert (await first.next_stream_error())["condition"] == "conflict"
            await first.wait_gone()
            alice = await cs.login("alice", "conflict", available=True)
            alice.send_message(mto="carol@localhost/same", mbody="to the new one", mtype="chat")
            m = await first_of(second.next_message(), alice.next_message())
            assert (m["type"], m["body"]) == ("chat", "to the new one"), "alice got an error"

    run(scenario())


def test_resource_conflict_refuse_policy(make_server):
    s = make_server(c2s={"resource_conflict": "refuse"})
    with RawClient(s) as first, RawClient(s) as second:
        first.login("dave", s.password("dave"), "taken")
        second.open()
        second.starttls()
        second.open()
        assert second.auth_plain("dave", s.password("dave")).tag == q(NS_SASL, "success")
        second.restart()
        el = second.bind_raw("taken")
        assert stanza_error_condition(el) == ("cancel", "conflict")
        # The first session is untouched, and the second may bind another resource.
        assert first.ping_server().get("type") == "result"
        assert second.bind("other") == "dave@localhost/other"


def test_session_limit_resource_constraint(make_server):
    """router.max_sessions, RFC 6120 §7.6.2.1: a bind past the account's limit gets
    wait/resource-constraint and the stream stays usable; replacing a resource in use
    adds no session, so it is allowed at the limit; a session that ends makes room."""
    s = make_server(router={"max_sessions": 2})
    u, = s.new_users(1, "sess")
    pw = s.password(u)
    with RawClient(s) as a, RawClient(s) as b, RawClient(s) as c:
        a.login(u, pw, "a")
        b.login(u, pw, "b")
        c.open()
        c.starttls()
        c.open()
        assert c.auth_plain(u, pw).tag == q(NS_SASL, "success")
        c.restart()
        assert stanza_error_condition(c.bind_raw("c")) == ("wait", "resource-constraint")
        # A second try, to the resource a uses: a replacement (a gets <conflict/>).
        assert c.bind("a") == f"{u}@localhost/a"
        assert a.expect_stream_error() == "conflict"
        assert b.ping_server().get("type") == "result"
        b.send("</stream:stream>")
        b.wait_eof()
        with RawClient(s) as d:
            # Once b's session is gone there is room; the router may still be ending it.
            d.open()
            d.starttls()
            d.open()
            assert d.auth_plain(u, pw).tag == q(NS_SASL, "success")
            d.restart()
            deadline = time.monotonic() + 5
            for i in itertools.count():
                el = d.bind_raw("d", iq_id=f"bind{i}")
                if el.get("type") == "result" or time.monotonic() > deadline:
                    break
                assert stanza_error_condition(el) == ("wait", "resource-constraint")
                time.sleep(0.02)
            assert el.get("type") == "result", "no room after a session ended"


def test_server_generated_resource(server):
    async def scenario():
        async with Clients(server) as cs:
            a = await cs.login("dave", None)
            b = await cs.login("dave", None)
            assert a.boundjid.bare == b.boundjid.bare == "dave@localhost"
            assert a.boundjid.resource and b.boundjid.resource
            assert a.boundjid.resource != b.boundjid.resource
            await a.available()
            await b.available()
            a.send_message(mto=b.boundjid.full, mbody="generated", mtype="chat")
            assert (await b.next_message())["body"] == "generated"

    run(scenario())


def test_spoofed_from_is_overwritten(server):
    # Accounts of its own: stored messages of other tests would arrive first.
    sender, rcpt = server.new_users(2, "spoof")

    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login(sender, "spoof", available=True)
            bob = await cs.login(rcpt, "spoof", available=True)
            m = alice.make_message(mto=bob.boundjid.full, mbody="who am i", mtype="chat")
            m["from"] = "carol@localhost/evil"
            m.send()
            got = await bob.next_message()
            assert (got["body"], got["from"].full) == ("who am i", alice.boundjid.full)
            for spoof in ("localhost", "bob@localhost", bob.boundjid.bare, alice.boundjid.bare,
                          "not a jid@@"):
                alice.send_raw(f"<message to='{bob.boundjid.full}' from='{spoof}' type='chat'>"
                               f"<body>{spoof}</body></message>")
                got = await bob.next_message()
                assert (got["body"], got["from"].full) == (spoof, alice.boundjid.full)

    run(scenario())


def test_message_to_unknown_user_service_unavailable(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "unknown", available=True)
            alice.send_message(mto="nosuchuser@localhost", mbody="anyone?", mtype="chat")
            err = await alice.next_message()
            assert err["type"] == "error"
            assert err["from"].full == "nosuchuser@localhost"
            assert error_of(err) == ("cancel", "service-unavailable")

    run(scenario())


def test_message_to_offline_account_is_stored_not_bounced(server):
    """RFC 6121 §8.5.2.2.1 with offline storage (XEP-0160): an existing account with no
    available resource gets the message later; the sender gets no error."""
    rcpt, = server.new_users(1, "offl")

    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "offl", available=True)
            alice.send_message(mto=f"{rcpt}@localhost", mbody="offline?", mtype="chat")
            res = await alice.ping_jid(f"{rcpt}@localhost")  # answered after the message
            assert res["type"] == "result"
            assert alice.no_pending_messages() == [], "the sender got an error"
            later = await cs.login(rcpt, "later", available=True)
            m = await later.next_message()
            assert (m["body"], m["from"].full) == ("offline?", alice.boundjid.full)

    run(scenario())


def test_message_to_unknown_domain_remote_server_not_found(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "remote", available=True)
            alice.send_message(mto="someone@elsewhere.example", mbody="far away", mtype="chat")
            err = await alice.next_message()
            assert err["type"] == "error"
            assert err["from"].full == "someone@elsewhere.example"
            assert error_of(err) == ("cancel", "remote-server-not-found")

    run(scenario())


def test_iq_ping_to_server(server):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "ping")
            res = await alice.ping_server()
            assert res["type"] == "result"
            assert res["from"].full == "localhost"
            # Without a `to`, the iq is for the server as well (RFC 6120 §10.3).
            iq = alice.make_iq_get()
            iq.append(ET.Element("{urn:xmpp:ping}ping"))
            res = await iq.send(timeout=5)
            assert res["type"] == "result"

    run(scenario())


@pytest.mark.parametrize("itype", ["get", "set"])
def test_iq_unknown_namespace_service_unavailable(server, itype):
    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login("alice", "unknown-iq")
            iq = alice.make_iq(itype=itype, ito="localhost")
            iq.append(ET.Element("{urn:example:nobody}query"))
            with pytest.raises(IqError) as e:
                await iq.send(timeout=5)
            assert error_of(e.value.iq) == ("cancel", "service-unavailable")
            assert e.value.iq["id"] == iq["id"]

    run(scenario())


def test_unavailable_presence_when_connection_drops(server):
    user, = server.new_users(1, "drop")  # no stored messages of other tests

    async def scenario():
        async with Clients(server) as cs:
            stay = await cs.login(user, "stay", available=True)
            drop = await cs.login(user, "drop", available=True)
            p = await stay.next_presence(lambda p: p["from"] == drop.boundjid)
            assert p["type"] == "available"  # presence without `to` reaches own resources
            drop.abort()  # the TCP connection ends without </stream:stream>
            p = await stay.next_presence(lambda p: p["from"] == drop.boundjid)
            assert p["type"] == "unavailable", p
            # The dropped session is gone from the router: its full JID is no longer
            # reachable, and a message to it goes to the bare JID (RFC 6121 §8.5.3.2.1).
            alice = await cs.login("alice", "drop", available=True)
            alice.send_message(mto=drop.boundjid.full, mbody="to the dropped one", mtype="chat")
            assert (await stay.next_message())["body"] == "to the dropped one"

    run(scenario())


def test_unavailable_presence_on_clean_close(server):
    async def scenario():
        async with Clients(server) as cs:
            stay = await cs.login("erin", "stay2", available=True)
            leave = await cs.login("erin", "leave", available=True)
            await stay.next_presence(lambda p: p["from"] == leave.boundjid)
            await leave.close()
            p = await stay.next_presence(lambda p: p["from"] == leave.boundjid)
            assert p["type"] == "unavailable"

    run(scenario())


def test_legacy_session_iq_and_bind_on_the_wire(server):
    with RawClient(server) as c:
        jid = c.login("alice", server.password("alice"), "legacy")
        assert jid == "alice@localhost/legacy"
        c.send("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
        el = c.stanza()
        assert (el.tag, el.get("type"), el.get("id")) == (q("jabber:client", "iq"), "result", "sess1")
        # A second bind on a bound stream is not a bind: the server answers it as an iq
        # to the server in a namespace it does not serve.
        c.send(f"<iq type='set' id='bind2'><bind xmlns='{NS_BIND}'><resource>x</resource></bind></iq>")
        el = c.wait_for(lambda e: e.get("id") == "bind2")
        assert el.get("type") == "error"
