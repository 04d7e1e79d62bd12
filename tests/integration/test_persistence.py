"""
What the IM state keeps across a restart of the node (server.restart(): SIGTERM, then
the same config and database): roster items with names and groups and the roster
version, subscription states (both, pending out, pending in with its stored request,
pre-approval) and blocklists. Offline messages: test_offline.py.

Each test waits until the store has answered for the changes it made (store_barrier)
before it restarts: what is tested is what was stored, not what was still queued.
"""
from im import befriend, connect, is_message, is_presence, roster_items, stanza_error, sub_state, wait_state


def test_rosters_and_subscription_states_survive_restart(make_server):
    s = make_server()
    un, cn, pn, qn = s.new_users(4, "per")
    U, C, P, Q = (f"{n}@localhost" for n in (un, cn, pn, qn))
    with connect(s, un, "u", roster=True) as u, connect(s, cn, "c", roster=True) as c, \
            connect(s, qn, "q", roster=True) as qq:
        befriend(u, c)  # U <-> C: both
        assert u.roster_set(C, name="Cee", groups=["Friends", "Work"]).get("type") == "result"
        u.subscribe(P)  # U -> P: pending out; P (offline) has a pending-in request
        assert u.ping(P).get("type") == "result"
        qq.subscribe(U)  # Q -> U: U has a pending-in request from Q
        assert qq.ping(U).get("type") == "result"
        assert wait_state(u, P, ("none", "subscribe", None))
        before = u.roster()
        for c_ in (u, c, qq):
            c_.store_barrier()
    ver = before.find("{jabber:iq:roster}query").get("ver")
    items_before = roster_items(before)
    assert sub_state(items_before[C]) == ("both", None, None)
    assert sub_state(items_before[P]) == ("none", "subscribe", None)

    s.restart()

    with connect(s, un, "u") as u:
        # The same version: an up-to-date client gets an empty result (RFC 6121 §2.6.3).
        res = u.roster(ver=ver)
        assert len(res) == 0, "the roster version changed across the restart"
        assert roster_items(u.roster()) == items_before
        # The request from Q is still pending: shown at login.
        u.presence()
        req = u.wait_for(is_presence(ptype="subscribe"), what="Q's stored request")
        assert req.get("from") == Q
    with connect(s, cn, "c") as c:
        assert sub_state(roster_items(c.roster())[U]) == ("both", None, None)
    with connect(s, pn, "p", available=True) as p:
        req = p.wait_for(is_presence(ptype="subscribe"), what="U's stored request")
        assert req.get("from") == U
    # And presence flows on the restored subscription both ways.
    with connect(s, cn, "c2", available=True) as c, connect(s, un, "u2") as u:
        c.presence(status="c after restart")
        u.presence(status="u after restart")
        c.wait_for(is_presence(frm=u.jid, status="u after restart"), what="U's presence")
        u.wait_for(is_presence(frm=c.jid, status="c after restart"), what="C's presence by probe")


def test_preapproval_survives_restart(make_server):
    s = make_server()
    un, cn = s.new_users(2, "per")
    U = f"{un}@localhost"
    with connect(s, cn, "c", roster=True) as c:
        c.subscribed(U)
        assert wait_state(c, U, ("none", None, "true"))
        c.store_barrier()
    s.restart()
    with connect(s, cn, "c", roster=True, available=True) as c, connect(s, un, "u", available=True) as u:
        assert roster_items(c.roster())[U].get("approved") == "true"
        u.subscribe(c.bare)
        assert wait_state(c, U, ("from", None, None))  # approved by the server
        u.message(c.jid, "marker")
        c.wait_message("marker")
        assert c.take(is_presence(ptype="subscribe")) == [], "the pre-approved request reached C"


def test_blocklist_survives_restart(make_server):
    s = make_server()
    un, cn = s.new_users(2, "per")
    with connect(s, un, "u") as u:
        assert u.block(f"{cn}@localhost", "spam.example").get("type") == "result"
        assert u.unblock("spam.example").get("type") == "result"
        assert u.block("iago@localhost/phone").get("type") == "result"
        u.store_barrier()
    s.restart()
    with connect(s, un, "u", available=True) as u, connect(s, cn, "c", available=True) as c:
        assert u.blocklist() == sorted([f"{cn}@localhost", "iago@localhost/phone"])
        c.send(f"<message to='{u.jid}' type='chat' id='after'><body>still blocked?</body></message>")
        err = c.wait_for(lambda e: e.get("id") == "after", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        u.settle()
        assert u.take(is_message()) == []
        u.send(f"<message to='{c.jid}' type='chat' id='out'><body>to the blocked</body></message>")
        err = u.wait_for(lambda e: e.get("id") == "out", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "not-acceptable")


def test_removed_items_stay_removed(make_server):
    s = make_server()
    un, = s.new_users(1, "per")
    with connect(s, un, "u") as u:
        for j in ("a@localhost", "b@localhost", "c@localhost"):
            assert u.roster_set(j).get("type") == "result"
        assert u.roster_remove("b@localhost").get("type") == "result"
        assert u.unblock().get("type") == "result"
        u.store_barrier()
    s.restart()
    with connect(s, un, "u") as u:
        assert sorted(roster_items(u.roster())) == ["a@localhost", "c@localhost"]
