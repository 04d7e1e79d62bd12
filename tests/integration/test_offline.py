"""
Offline messages (XEP-0160) with delayed-delivery stamps (XEP-0203): what is stored,
when it is delivered and to whom, the per-user limit (offline.max_messages), and that
nothing stored is lost across a restart. Accounts of their own per test.

"The sender got no error" is checked by pinging the recipient's bare JID after a
store_barrier(): a storage error is sent from the recipient's shard when the store
answers, and both the store and that shard keep order.
"""
import datetime
import xml.etree.ElementTree as ET

import pytest

from im import NS_DELAY, connect, is_message, is_presence, new_id, stanza_error
from rawxmpp import NS_CLIENT, q
from slixclient import Clients, run


def body(m):
    return m.findtext(q(NS_CLIENT, "body"))


def no_errors_for(sender, rcpt_bare):
    """Asserts that everything sender sent to rcpt_bare was handled without an error
    (module docstring)."""
    sender.store_barrier()
    assert sender.ping(rcpt_bare).get("type") == "result"
    errs = sender.take(lambda e: e.get("type") == "error")
    assert errs == [], [ET.tostring(e) for e in errs]


def drain_messages(c):
    """Every message that has reached c once the store has answered (store_barrier)."""
    c.store_barrier()
    return c.take(is_message())


def delay_of(m):
    d = m.find(q(NS_DELAY, "delay"))
    assert d is not None, f"no XEP-0203 delay: {ET.tostring(m)!r}"
    return d


def test_stored_then_delivered_in_order_with_delay(server):
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    with connect(server, "alice", "offl", available=True) as a:
        sent = []
        for i in range(4):
            mid = new_id("m")
            a.send(f"<message to='{R}' id='{mid}' type='{'chat' if i % 2 else 'normal'}'>"
                   f"<body>offline {i}</body><thread>t1</thread></message>")
            sent.append((mid, f"offline {i}"))
        # To a resource that is not there: as to the bare JID (RFC 6121 §8.5.3.2.1).
        a.send(f"<message to='{R}/gone' id='m-full' type='chat'><body>to a full jid</body></message>")
        sent.append(("m-full", "to a full jid"))
        # No type at all is 'normal'.
        a.send(f"<message to='{R}' id='m-none'><body>no type</body></message>")
        sent.append(("m-none", "no type"))
        no_errors_for(a, R)
        with connect(server, rn, "r", available=True) as r:
            got = [r.wait_message() for _ in sent]
            assert [(m.get("id"), body(m)) for m in got] == sent, "not all, or not in order"
            after = datetime.datetime.now(datetime.timezone.utc)
            for m in got:
                assert m.get("from") == a.jid
                assert m.findtext(q(NS_CLIENT, "thread")) == "t1" or m.get("id") in ("m-full", "m-none")
                d = delay_of(m)
                assert d.get("from") == "localhost"
                stamp = datetime.datetime.fromisoformat(d.get("stamp").replace("Z", "+00:00"))
                assert d.get("stamp").endswith("Z"), "XEP-0082 UTC"
                assert before - datetime.timedelta(seconds=1) <= stamp <= after, d.get("stamp")
            assert [m.get("type") or "normal" for m in got] == ["normal", "chat", "normal", "chat", "chat", "normal"]
            assert drain_messages(r) == [], "more than was sent"
        # Delivered once: the next login gets nothing.
        with connect(server, rn, "r2", available=True) as r2:
            assert drain_messages(r2) == []


def test_live_messages_are_not_delayed(server):
    rn, = server.new_users(1, "offl")
    with connect(server, "alice", "live", available=True) as a, connect(server, rn, "r", available=True) as r:
        a.message(r.bare, "live")
        m = r.wait_message("live")
        assert m.find(q(NS_DELAY, "delay")) is None


def test_negative_priority_login_does_not_take_them(server):
    """RFC 6121 §8.5.2.1.1 / XEP-0160: a resource of negative priority is not a target;
    a later one of priority 0 gets the messages."""
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(server, "alice", "neg", available=True) as a:
        a.message(R, "wait for a real one")
        no_errors_for(a, R)
        with connect(server, rn, "neg", available=True, priority=-1) as neg:
            assert drain_messages(neg) == []
            # While only a negative resource is there, new messages are stored as well.
            a.message(R, "and this one")
            no_errors_for(a, R)
            assert drain_messages(neg) == []
            with connect(server, rn, "zero", available=True, priority=0) as zero:
                got = [body(zero.wait_message()) for _ in range(2)]
                assert got == ["wait for a real one", "and this one"]
            assert drain_messages(neg) == []


def test_priority_raised_to_non_negative_delivers(server):
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(server, "alice", "raise", available=True) as a:
        a.message(R, "stored first")
        no_errors_for(a, R)
        with connect(server, rn, "r", available=True, priority=-1) as r:
            r.presence(priority=1, status="now a target")
            r.wait_for(is_presence(frm=r.jid, status="now a target"), what="the echo")
            a.message(R, "sent live")
            r.wait_message("sent live")
            r.store_barrier()
            assert [body(m) for m in r.take(is_message())] == ["stored first"], \
                "the stored message did not come when the resource became a target"


def test_headline_groupchat_error_are_not_stored(server):
    """XEP-0160 / RFC 6121 §8.5.2.2: a headline for an offline user is dropped silently,
    groupchat gets service-unavailable, an error is dropped; none is stored."""
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(server, "alice", "types", available=True) as a:
        a.send(f"<message to='{R}' type='headline' id='h'><body>headline</body></message>")
        a.send(f"<message to='{R}' type='error' id='e'><body>error</body>"
               "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        a.send(f"<message to='{R}' type='groupchat' id='g'><body>groupchat</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "g", what="the groupchat error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        a.message(R, "the only one")
        no_errors_for(a, R)
        with connect(server, rn, "r", available=True) as r:
            assert [body(m) for m in drain_messages(r)] == ["the only one"]


def test_chat_states_and_no_store_hint_are_not_stored(server):
    """A standalone chat state and a message with a XEP-0334 <no-store/> hint are
    dropped without an error; a chat state with a body, and a <store/> hint, are kept."""
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    cs = "http://jabber.org/protocol/chatstates"
    with connect(server, "alice", "states", available=True) as a:
        a.send(f"<message to='{R}' type='chat' id='s1'><composing xmlns='{cs}'/></message>")
        a.send(f"<message to='{R}' type='chat' id='s2'><body>hint</body><no-store xmlns='urn:xmpp:hints'/></message>")
        a.send(f"<message to='{R}' type='chat' id='s3'><body>with state</body><active xmlns='{cs}'/></message>")
        a.send(f"<message to='{R}' type='chat' id='s4'><gone xmlns='{cs}'/><store xmlns='urn:xmpp:hints'/></message>")
        no_errors_for(a, R)
        assert not [e for e in a.take() if e.get("type") == "error"]
        with connect(server, rn, "r", available=True) as r:
            assert [m.get("id") for m in drain_messages(r)] == ["s3", "s4"]


def test_limit_service_unavailable(make_server):
    """Over offline.max_messages the sender gets service-unavailable, from the
    recipient's bare JID, with its id; what was stored is delivered."""
    s = make_server(offline={"max_messages": 3, "sender_share": 100})
    rn, = s.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(s, "alice", "lim", available=True) as a:
        for i in range(5):
            a.send(f"<message to='{R}' type='chat' id='lim{i}'><body>n{i}</body></message>")
        for i in (3, 4):
            err = a.wait_for(lambda e, i=i: e.get("id") == f"lim{i}", what=f"the error for n{i}")
            assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
            assert (err.get("from"), err.get("to")) == (R, a.jid)
        no_errors_for(a, R)
        with connect(s, rn, "r", available=True) as r:
            assert [body(m) for m in drain_messages(r)] == ["n0", "n1", "n2"]
        # Room again once delivered.
        a.message(R, "room again")
        no_errors_for(a, R)


def test_byte_limit_service_unavailable(make_server):
    """offline.max_bytes: a message that would take the user's stored stanzas past it is
    bounced like one past max_messages; smaller ones after it still fit."""
    s = make_server(offline={"max_bytes": 2000, "sender_share": 100})
    rn, = s.new_users(1, "offl")
    R = f"{rn}@localhost"
    pad = "x" * 600
    with connect(s, "alice", "bytes", available=True) as a:
        for i in range(3):
            a.send(f"<message to='{R}' type='chat' id='by{i}'><body>{i} {pad}</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "by2", what="the error for the third")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        a.send(f"<message to='{R}' type='chat' id='small'><body>small</body></message>")
        no_errors_for(a, R)
        with connect(s, rn, "r", available=True) as r:
            assert [m.get("id") for m in drain_messages(r)] == ["by0", "by1", "small"]


def test_sender_share_keeps_room_for_others(make_server):
    """offline.sender_share: one sender's messages take at most that share of a user's
    storage, so that others still get in; over it that sender is bounced."""
    s = make_server(offline={"max_messages": 4, "sender_share": 50})
    rn, = s.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(s, "alice", "share", available=True) as a, connect(s, "bob", "share", available=True) as b:
        for i in range(3):
            a.send(f"<message to='{R}' type='chat' id='a{i}'><body>a{i}</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "a2", what="alice's third refused")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        for i in range(3):
            b.send(f"<message to='{R}' type='chat' id='b{i}'><body>b{i}</body></message>")
        err = b.wait_for(lambda e: e.get("id") == "b2", what="bob's third refused")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        no_errors_for(a, R)
        no_errors_for(b, R)
        with connect(s, rn, "r", available=True) as r:
            assert sorted(m.get("id") for m in drain_messages(r)) == ["a0", "a1", "b0", "b1"]


def test_zero_limit_stores_nothing(make_server):
    s = make_server(offline={"max_messages": 0})
    rn, = s.new_users(1, "offl")
    with connect(s, "alice", "zero", available=True) as a:
        a.send(f"<message to='{rn}@localhost' type='chat' id='z'><body>z</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "z", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")


def test_delivered_to_one_resource_only(make_server):
    """XEP-0160 §2: stored messages go to the resource whose presence made them
    deliverable, once; two resources coming online together do not both get them. The
    store is kept busy first (a burst of messages for another user, all handed to the
    store before the presences are sent), so both initial presences are handled while
    the store has not yet answered the first fetch. A node of its own, with room for
    the burst (a refused message would be a store error answered on the side)."""
    server = make_server(offline={"max_messages": 1000, "sender_share": 100})
    trials = []
    for _ in range(2):
        rn, busy = server.new_users(2, "twice")
        R = f"{rn}@localhost"
        with connect(server, "alice", "twice", available=True) as a:
            for i in range(3):
                a.message(R, f"once {i}")
            no_errors_for(a, R)
            with connect(server, rn, "r1") as r1, connect(server, rn, "r2") as r2:
                a.send("".join(f"<message to='{busy}@localhost' type='chat'><body>busy {i}</body></message>"
                               for i in range(600)))
                assert a.ping(f"{busy}@localhost").get("type") == "result"  # all with the store
                r1.send("<presence/>")
                r2.send("<presence/>")
                n1, n2 = len(drain_messages(r1)), len(drain_messages(r2))
                trials.append((n1, n2))
    assert all(sorted(t) == [0, 3] for t in trials), f"messages per resource in each trial: {trials}"


def test_stored_messages_survive_restart(make_server):
    s = make_server()
    rn, = s.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(s, "alice", "restart", available=True) as a:
        for i in range(3):
            a.message(R, f"durable {i}")
        no_errors_for(a, R)  # stored (the store answered)
    s.restart()
    with connect(s, rn, "r", available=True) as r:
        got = [r.wait_message() for _ in range(3)]
        assert [body(m) for m in got] == [f"durable {i}" for i in range(3)]
        assert all(delay_of(m).get("from") == "localhost" for m in got)
        assert drain_messages(r) == []


def test_accepted_messages_survive_immediate_restart(make_server):
    """Messages the server has accepted (handled by the recipient's shard, no error to
    the sender) are not lost when the node is stopped at once: an orderly shutdown
    finishes the store's queue."""
    s = make_server(offline={"max_messages": 5000, "sender_share": 100})
    rn, = s.new_users(1, "offl")
    R = f"{rn}@localhost"
    n = 3000
    with connect(s, "alice", "burst", available=True) as a:
        # One write: the router takes them faster than the store writes them.
        a.send("".join(f"<message to='{R}' type='chat'><body>b{i}</body></message>" for i in range(n)))
        assert a.ping(R).get("type") == "result"  # all handled by the recipient's shard
    s.restart()
    got = []
    with connect(s, rn, "r", available=True) as r:
        # Stored messages come in batches, each after a store round trip: one barrier
        # is not enough, so wait for each (a lost one times out).
        try:
            for _ in range(n):
                got.append(body(r.wait_for(is_message(), timeout=10)))
        except AssertionError:
            pass
        got += [body(m) for m in drain_messages(r)]
    assert len(got) >= n, f"{n - len(got)} of {n} accepted messages lost"
    assert got == [f"b{i}" for i in range(n)], "stored messages out of order or repeated"


def test_offline_delivery_to_slixmpp(server):
    """A real client gets stored messages with their delay (slixmpp's xep_0203)."""
    rn, = server.new_users(1, "offl")

    async def scenario():
        async with Clients(server) as cs:
            a = await cs.login("alice", "slix-offl", available=True)
            a.send_message(mto=f"{rn}@localhost", mbody="hello later", mtype="chat")
            await a.ping_jid(f"{rn}@localhost")
            r = cs.new(rn, "slix")
            r.register_plugin("xep_0203")
            await r.start()
            await r.available()
            m = await r.next_message()
            assert (m["body"], m["from"].full) == ("hello later", a.boundjid.full)
            assert m["delay"]["from"].full == "localhost"
            assert m["delay"]["stamp"] is not None

    run(scenario())


def test_message_without_body_gets_delay_as_child(server):
    """A stored message written as an empty element (<message/>) is delivered with its
    <delay/> as a child, still well-formed."""
    rn, = server.new_users(1, "offl")
    R = f"{rn}@localhost"
    with connect(server, "alice", "empty", available=True) as a:
        a.send(f"<message to='{R}' type='chat' id='empty1'/>")
        no_errors_for(a, R)
    with connect(server, rn, "r", available=True) as r:
        m = r.wait_for(lambda e: e.get("id") == "empty1", what="the empty message")
        assert [c.tag for c in m] == [q(NS_DELAY, "delay")]


def test_frames_for_a_loading_user_are_bounded(make_server):
    """router.max_pending: stanzas for a user whose state is still loading wait in a
    bounded queue; past it each gets wait/resource-constraint, none is lost silently.
    The store is kept busy first (a burst of offline messages for a resource of
    negative priority, all handed to it before the recipient's load), so the load of
    the recipient, a user nobody has touched, waits behind them."""
    s = make_server(router={"max_pending": "64K"}, offline={"max_messages": 1000})
    busy, rn = s.new_users(2, "pend")
    R = f"{rn}@localhost"
    pad = "p" * 1000
    n = 150  # about 150K of frames for R, over twice the bound
    with connect(s, "alice", "pend", available=True) as a, connect(s, busy, "neg", available=True, priority=-1):
        a.send("".join(f"<message to='{busy}@localhost' type='chat'><body>busy {i}</body></message>"
                       for i in range(600)) +
               "".join(f"<message to='{R}' type='chat' id='q{i}'><body>{i} {pad}</body></message>"
                       for i in range(n)))
        a.store_barrier()
        assert a.ping(R).get("type") == "result"
        refused = set()
        for e in a.take(lambda e: e.get("type") == "error"):
            if (e.get("id") or "").startswith("q"):
                assert stanza_error(e)[:2] == ("wait", "resource-constraint"), ET.tostring(e)
                refused.add(int(e.get("id")[1:]))
        assert refused, "no stanza was refused: the queue did not fill (or is unbounded)"
        with connect(s, rn, "r", available=True) as r:
            stored = {int(body(m).split()[0]) for m in drain_messages(r)}
        assert stored | refused == set(range(n)), f"lost: {sorted(set(range(n)) - stored - refused)}"
        assert not stored & refused
