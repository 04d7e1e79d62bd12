"""
Blocking (XEP-0191): the blocklist and its pushes, what a block stops in each
direction (messages, iq, presence), the errors of §3.4 (<not-acceptable/> with
<blocked xmlns='urn:xmpp:blocking:errors'/> for the blocking user; service-unavailable
for the blocked one, as block.c and route.c implement it), presence following a block
and an unblock, and JID matching (full JID, bare JID, domain). Accounts of their own
per test. Persistence across restarts: test_persistence.py.
"""
import xml.etree.ElementTree as ET

import pytest

from im import (
    NS_BLOCKING,
    NS_BLOCKING_ERRORS,
    befriend,
    connect,
    is_block_push,
    is_message,
    is_presence,
    stanza_error,
)
from rawxmpp import NS_CLIENT, q


def items_of(push):
    el = [c for c in push if c.tag.startswith("{%s}" % NS_BLOCKING)][0]
    return sorted(i.get("jid") for i in el.findall(q(NS_BLOCKING, "item")))


def test_blocklist_block_unblock_and_pushes(server):
    """§3.2-§3.5: get, block, unblock some, unblock all; each change is pushed to the
    user's resources that asked for the list (§3.3), not to one that did not."""
    un, = server.new_users(1, "blk")
    with connect(server, un, "a") as a, connect(server, un, "b") as b, connect(server, un, "quiet") as quiet:
        assert a.blocklist() == []
        assert b.blocklist() == []
        res = a.block("romeo@localhost", "iago@example.org")
        assert res.get("type") == "result" and len(res) == 0, ET.tostring(res)
        for c in (a, b):
            p = c.wait_for(is_block_push("block"), what="the block push")
            assert p.get("to") == c.jid
            assert items_of(p) == ["iago@example.org", "romeo@localhost"]
        assert a.blocklist() == ["iago@example.org", "romeo@localhost"]
        assert a.unblock("romeo@localhost").get("type") == "result"
        for c in (a, b):
            assert items_of(c.wait_for(is_block_push("unblock"), what="the unblock push")) == ["romeo@localhost"]
        assert b.blocklist() == ["iago@example.org"]
        assert a.block("x@localhost", "y@localhost").get("type") == "result"
        # Unblock all (§3.5): <unblock/> without items, pushed as such.
        assert b.unblock().get("type") == "result"
        for c in (a, b):
            c.wait_for(is_block_push("block"), what="the second block push")
            assert items_of(c.wait_for(is_block_push("unblock"), what="unblock all")) == []
        assert a.blocklist() == []
        quiet.settle()
        assert quiet.take(is_block_push()) == [], "a resource that never asked got a push"


def test_block_errors(server):
    un, = server.new_users(1, "blk")
    with connect(server, un, "a") as a:
        assert stanza_error(a.block())[:2] == ("modify", "bad-request")  # §3.3: at least one item
        assert stanza_error(a.block("not a jid@@"))[:2] == ("modify", "jid-malformed")
        res = a.iq("set", f"<blocklist xmlns='{NS_BLOCKING}'/>")
        assert stanza_error(res)[:2] == ("modify", "bad-request")
        assert a.blocklist() == []


def test_blocked_contact_cannot_reach_the_user(server):
    """§3.4: nothing from a blocked JID is delivered: its messages and iq requests get
    service-unavailable, and none is stored while the user is offline."""
    un, cn = server.new_users(2, "blk")
    U = f"{un}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        assert u.block(c.bare).get("type") == "result"
        for to in (u.bare, u.jid):
            c.send(f"<message to='{to}' type='chat' id='bm'><body>let me in</body></message>")
            err = c.wait_for(lambda e: e.get("id") == "bm", what="the error")
            assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
            assert err.get("from") == to
        c.send(f"<iq type='get' id='biq' to='{u.jid}'><query xmlns='jabber:iq:version'/></iq>")
        err = c.wait_for(lambda e: e.get("id") == "biq", what="the iq error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        u.settle()  # the errors came from u's shard after dropping: nothing was sent on
        assert u.take(is_message()) == []
        assert u.take(lambda e: e.get("id") == "biq") == []
    # Offline: not stored either.
    with connect(server, cn, "c2", available=True) as c:
        c.send(f"<message to='{U}' type='chat' id='bo'><body>while you are out</body></message>")
        err = c.wait_for(lambda e: e.get("id") == "bo", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
    with connect(server, un, "u2", available=True) as u:
        u.store_barrier()
        assert u.take(is_message()) == []


def test_user_cannot_send_to_blocked_jid(server):
    """§3.4: a stanza the user sends to a JID it blocked is answered with
    <not-acceptable/> and the application condition <blocked/>, and not delivered."""
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        assert u.block(c.bare).get("type") == "result"
        for to, kind in ((c.bare, "message"), (c.jid, "message"), (c.jid, "iq")):
            if kind == "message":
                u.send(f"<message to='{to}' type='chat' id='out1'><body>to the blocked</body></message>")
            else:
                u.send(f"<iq to='{to}' type='get' id='out1'><query xmlns='jabber:iq:version'/></iq>")
            err = u.wait_for(lambda e: e.get("id") == "out1", what="the error")
            etype, cond, el = stanza_error(err)
            assert (etype, cond) == ("cancel", "not-acceptable")
            assert el.find(q(NS_BLOCKING_ERRORS, "blocked")) is not None, ET.tostring(err)
            assert err.tag == q(NS_CLIENT, kind)
        c.settle()
        assert c.take(lambda e: e.get("id") == "out1") == []


def test_presence_follows_block_and_unblock(server):
    """§3.3 and §3.4: a blocked subscriber gets unavailable presence from the user's
    resources and then no presence; the user does not get the blocked contact's presence
    either; after unblock the contact gets the user's current presence again."""
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        u.presence(status="before")
        c.wait_for(is_presence(frm=u.jid, status="before"), what="U's presence")
        assert u.block(c.bare).get("type") == "result"
        p = c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="U's unavailable presence")
        assert p.get("to") == c.bare
        # Neither side's presence crosses the block. Each broadcast is decided in the
        # sender's shard, then handled by the receiver's: settle both.
        u.presence(status="blocked period")
        c.presence(status="c during block")
        u.settle()
        c.settle()
        u.settle()
        c.settle()
        assert c.take(is_presence(frm=u.jid, status="blocked period")) == []
        assert u.take(is_presence(frm=c.jid, status="c during block")) == []
        assert u.unblock(c.bare).get("type") == "result"
        p = c.wait_for(is_presence(frm=u.jid, status="blocked period"), what="U's presence after unblock")
        assert p.get("to") == c.bare
        u.presence(status="after")
        c.wait_for(is_presence(frm=u.jid, status="after"), what="U's next presence")
        c.presence(status="c after")
        u.wait_for(is_presence(frm=c.jid, status="c after"), what="C's next presence")


def test_blocked_contacts_probe_gets_nothing(server):
    """A blocked subscriber that logs in gets no presence by probe (§3.4)."""
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u:
        with connect(server, cn, "c") as c:
            befriend(u, c)
        u.presence(status="hidden")
        assert u.block(f"{cn}@localhost").get("type") == "result"
        with connect(server, cn, "c2") as c:
            c.presence()
            c.wait_for(is_presence(frm=c.jid), what="the echo")
            assert c.ping(u.bare).get("type") == "error"  # u's shard, after the probe
            assert c.take(is_presence(frm=u.jid, ptype=None)) == []


def test_unblock_all_restores_presence(server):
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        u.presence(status="s1")
        c.wait_for(is_presence(frm=u.jid, status="s1"), what="U's presence")
        assert u.block(c.bare, "other@localhost").get("type") == "result"
        c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="unavailable")
        assert u.unblock().get("type") == "result"
        c.wait_for(is_presence(frm=u.jid, status="s1"), what="U's presence after unblock all")
        c.message(u.jid, "through again")
        u.wait_message("through again")


@pytest.mark.parametrize("what", ["full", "bare", "domain"])
def test_block_matching(server, what):
    """XEP-0191 §3.4 with XEP-0016 matching: a full JID blocks that resource only; a bare
    JID blocks every resource; a domain blocks every account there."""
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c1", available=True) as c1, \
            connect(server, cn, "c2", available=True) as c2:
        item = {"full": c1.jid, "bare": c1.bare, "domain": "localhost"}[what]
        assert u.block(item).get("type") == "result"
        results = {}
        for c in (c1, c2):
            c.send(f"<message to='{u.jid}' type='chat' id='mt'><body>from {c.jid}</body></message>")
            c.ping(u.bare)  # answered by u's shard after the message
            errs = c.take(lambda e: e.get("id") == "mt")
            results[c.jid] = "blocked" if errs else "delivered"
        expected = {
            "full": {c1.jid: "blocked", c2.jid: "delivered"},
            "bare": {c1.jid: "blocked", c2.jid: "blocked"},
            "domain": {c1.jid: "blocked", c2.jid: "blocked"},
        }[what]
        assert results == expected
        u.settle()
        got = sorted(m.findtext(q(NS_CLIENT, "body")) for m in u.take(is_message()))
        assert got == sorted(f"from {j}" for j, r in results.items() if r == "delivered")


def test_stored_request_from_blocked_jid_not_shown(server):
    """§3.4: once a JID is blocked nothing from it is delivered, including a request it
    made before and that is kept until answered (RFC 6121 §3.1.3)."""
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u:
        u.subscribe(f"{cn}@localhost")
        assert u.ping(f"{cn}@localhost").get("type") == "result"
    with connect(server, cn, "c", available=True) as c:
        assert c.wait_for(is_presence(ptype="subscribe"), what="the request").get("from") == f"{un}@localhost"
        assert c.block(f"{un}@localhost").get("type") == "result"
    with connect(server, cn, "c2", available=True) as c:
        c.store_barrier()
        assert c.take(is_presence(ptype="subscribe")) == [], "the blocked JID's request was shown"


def test_stored_message_from_blocked_jid_not_delivered(server):
    un, cn = server.new_users(2, "blk")
    with connect(server, un, "u", available=True) as u:
        u.message(f"{cn}@localhost", "before the block")
        assert u.ping(f"{cn}@localhost").get("type") == "result"
        u.store_barrier()
    with connect(server, cn, "c") as c:
        assert c.block(f"{un}@localhost").get("type") == "result"
        c.presence()
        c.store_barrier()
        assert c.take(is_message()) == [], "a message from a blocked JID was delivered"


def test_blocklist_limit_not_allowed(make_server):
    """blocking.max_items: a block request that would take the list past the bound is
    refused whole with cancel/not-allowed; JIDs blocked already and duplicates in the
    request take no room; unblocking makes room; a request of more items than one
    store request carries (1000) is refused too. Every change survives a restart, so
    memory and store agree."""
    s = make_server(blocking={"max_items": 3})
    un, = s.new_users(1, "blk")
    with connect(s, un, "a") as a:
        assert a.block("a@x.example", "b@x.example").get("type") == "result"
        assert stanza_error(a.block("c@x.example", "d@x.example"))[:2] == ("cancel", "not-allowed")
        assert a.blocklist() == ["a@x.example", "b@x.example"]
        assert a.block("b@x.example", "c@x.example", "c@x.example").get("type") == "result"
        assert stanza_error(a.block("d@x.example"))[:2] == ("cancel", "not-allowed")
        assert a.unblock("a@x.example").get("type") == "result"
        assert a.block("d@x.example").get("type") == "result"
        many = [f"m{i}@x.example" for i in range(1001)]
        assert stanza_error(a.block(*many))[:2] == ("cancel", "not-allowed")
        assert a.blocklist() == ["b@x.example", "c@x.example", "d@x.example"]
    s.restart()
    with connect(s, un, "a") as a:
        assert a.blocklist() == ["b@x.example", "c@x.example", "d@x.example"]


def test_long_blocklist_still_matches(make_server):
    """A list of a thousand entries (domains, bare and full JIDs) matches each form of
    XEP-0016 §2.1 and nothing else."""
    s = make_server()
    un, cn = s.new_users(2, "blk")
    C = f"{cn}@localhost"
    with connect(s, un, "u", available=True) as u, connect(s, cn, "c", available=True) as c:
        jids = [f"x{i}@far{i % 7}.example/r{i}" for i in range(997)] + [f"{C}/other", "spam.example"]
        assert u.block(*jids).get("type") == "result"
        assert len(u.blocklist()) == 999
        c.message(u.jid, "not blocked")  # c's resource is not the blocked one
        u.wait_message("not blocked")
        assert u.block(c.jid).get("type") == "result"
        c.send(f"<message to='{u.jid}' type='chat' id='bl'><body>blocked</body></message>")
        err = c.wait_for(lambda e: e.get("id") == "bl", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        u.send("<message to='someone@spam.example' type='chat' id='out'><body>x</body></message>")
        err = u.wait_for(lambda e: e.get("id") == "out", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "not-acceptable")
