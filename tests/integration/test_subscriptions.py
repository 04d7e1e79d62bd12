"""
Presence subscriptions (RFC 6121 §3 and the state tables of Appendix A) between two
accounts of one server, on the wire: the handshake to 'both' seen from both sides,
requests kept until answered, cancellation in both directions, pre-approval (§3.4),
requests to accounts that do not exist, and the same with slixmpp. Every test uses
accounts nobody else uses. Persistence across restarts: test_persistence.py.
"""
import asyncio

import pytest

from im import befriend, connect, is_presence, is_roster_push, push_item, roster_items, sub_state, wait_state
from rawxmpp import NS_CLIENT, q
from slixclient import Clients, run


def pair(server):
    return server.new_users(2, "sub")


def test_handshake_to_both(server):
    """§3.1 then the other way round: each step's roster pushes (subscription and ask
    values), the subscription stanzas delivered with the sender's bare JID as `from`
    (§3.1.2), and presence flowing once, and only once, a subscription exists."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u, \
            connect(server, cn, "c", roster=True, available=True) as c:
        u.presence(status="u here")  # U's presence is not C's to see yet
        # 1. U asks (§3.1.2): U's push shows ask='subscribe'; C gets the request.
        u.subscribe(C)
        assert u.push_state(C) == ("none", "subscribe", None)
        req = c.wait_for(is_presence(ptype="subscribe"), what="the request")
        assert (req.get("from"), req.get("to")) == (U, C)
        # Pending-in is not part of C's visible roster (§3.1.3): no push there.
        assert c.take(is_roster_push()) == []
        assert roster_items(c.roster()) == {}

        # 2. C approves (§3.1.5): C has 'from', U has 'to' and gets C's presence.
        c.subscribed(U)
        assert c.push_state(U) == ("from", None, None)
        assert u.push_state(C) == ("to", None, None)
        ok = u.wait_for(is_presence(ptype="subscribed"), what="subscribed")
        assert (ok.get("from"), ok.get("to")) == (C, U)
        p = u.wait_for(is_presence(frm=c.jid), what="C's presence after the approval")
        assert p.get("to") in (U, u.jid)

        # 3. U's presence still does not reach C: U has no subscriber yet. The marker
        # takes the same path (U's shard, then C's) after the broadcast.
        u.presence(status="u again")
        u.message(c.jid, "marker 1")
        c.wait_message("marker 1")
        assert c.take(is_presence(frm=u.jid, ptype=None)) == []

        # 4. C asks back: C's push shows from + ask; U gets the request.
        c.subscribe(U)
        assert c.push_state(U) == ("from", "subscribe", None)
        req = u.wait_for(is_presence(ptype="subscribe"), what="C's request")
        assert (req.get("from"), req.get("to")) == (C, U)
        # U's item is now 'To + Pending In', which shows as 'to': a push, if any, shows
        # no change (it comes before the request).
        assert [sub_state(push_item(p)[0]) for p in u.take(is_roster_push(C))] in ([], [("to", None, None)])

        # 5. U approves: both sides 'both'; C gets subscribed and U's current presence.
        u.subscribed(C)
        assert u.push_state(C) == ("both", None, None)
        assert c.push_state(U) == ("both", None, None)
        ok = c.wait_for(is_presence(ptype="subscribed"), what="subscribed")
        assert (ok.get("from"), ok.get("to")) == (U, C)
        p = c.wait_for(is_presence(frm=u.jid), what="U's presence after the approval")
        assert p.findtext(q(NS_CLIENT, "status")) == "u again"

        # 6. Presence flows both ways, addressed to each contact's bare JID.
        u.presence(status="u 3")
        p = c.wait_for(is_presence(frm=u.jid), what="U's update")
        assert (p.findtext(q(NS_CLIENT, "status")), p.get("to")) == ("u 3", C)
        c.presence(status="c 3")
        p = u.wait_for(is_presence(frm=c.jid), what="C's update")
        assert (p.findtext(q(NS_CLIENT, "status")), p.get("to")) == ("c 3", U)
        assert roster_items(u.roster())[C]["subscription"] == "both"
        assert roster_items(c.roster())[U]["subscription"] == "both"


def test_handshake_with_slixmpp_defaults(server):
    """Two slixmpp clients with their default policy (approve every request and ask
    back) end up subscribed both ways, and then see each other's presence."""
    un, cn = pair(server)

    async def scenario():
        async with Clients(server) as cs:
            u = await cs.login(un, "slix", available=True, auto_authorize=True, auto_subscribe=True)
            c = await cs.login(cn, "slix", available=True, auto_authorize=True, auto_subscribe=True)
            await u.get_roster()
            await c.get_roster()
            u.send_presence_subscription(pto=c.boundjid.bare)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not (u.client_roster[c.boundjid.bare]["subscription"] == "both"
                       and c.client_roster[u.boundjid.bare]["subscription"] == "both"):
                assert loop.time() < deadline, (u.client_roster[c.boundjid.bare]["subscription"],
                                                c.client_roster[u.boundjid.bare]["subscription"])
                await asyncio.sleep(0.02)
            c.send_presence(pstatus="slix status")
            p = await u.next_presence(lambda p: p["from"] == c.boundjid and p["status"] == "slix status")
            assert p["to"].bare == u.boundjid.bare
            u.send_presence(pstatus="back at you")
            await c.next_presence(lambda p: p["from"] == u.boundjid and p["status"] == "back at you")

    run(scenario())


def test_request_kept_until_answered(server):
    """§3.1.3: a request for a contact who is offline is kept and shown at the next
    login, and at every login after that until answered; then never again."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u:
        u.subscribe(C)
        assert u.push_state(C) == ("none", "subscribe", None)
        for login in range(2):
            with connect(server, cn, f"c{login}", available=True) as c:
                req = c.wait_for(is_presence(ptype="subscribe"), what=f"the request at login {login}")
                assert req.get("from") == U
        with connect(server, cn, "c-answers", available=True) as c:
            c.wait_for(is_presence(ptype="subscribe"), what="the request")
            c.subscribed(U)
            assert u.push_state(C) == ("to", None, None)
        with connect(server, cn, "c-after", available=True) as c:
            c.store_barrier()
            assert c.take(is_presence(ptype="subscribe")) == [], "an answered request came again"


def test_request_denied(server):
    """A request answered with unsubscribed (§3.2.1): the requester's ask goes away and
    it learns of the denial; the request is not shown again."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u:
        u.subscribe(C)
        assert u.push_state(C) == ("none", "subscribe", None)
        with connect(server, cn, "c", roster=True, available=True) as c:
            c.wait_for(is_presence(ptype="subscribe"), what="the request")
            c.unsubscribed(U)
            assert u.push_state(C) == ("none", None, None)
            no = u.wait_for(is_presence(ptype="unsubscribed"), what="the denial")
            assert no.get("from") == C
            # C never had U in its visible roster, and still has not: no push about it.
            assert U not in roster_items(c.roster())
            c.settle()
            assert c.take(is_roster_push(U)) == []
        with connect(server, cn, "c2", available=True) as c:
            c.store_barrier()
            assert c.take(is_presence(ptype="subscribe")) == []


def test_unsubscribe(server):
    """§3.3: U unsubscribes from C (both): U's item becomes 'from', C's 'to'; C gets the
    unsubscribe; C's presence stops reaching U, U's still reaches C."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        u.unsubscribe(C)
        assert u.push_state(C) == ("from", None, None)
        assert c.push_state(U) == ("to", None, None)
        un_ = c.wait_for(is_presence(ptype="unsubscribe"), what="the unsubscribe")
        assert un_.get("from") == U
        c.presence(status="c after")
        c.message(u.jid, "marker")
        u.wait_message("marker")
        assert u.take(is_presence(frm=c.jid, status="c after")) == []
        u.presence(status="u after")
        c.wait_for(is_presence(frm=u.jid, status="u after"), what="U's presence")


def test_unsubscribe_sends_contacts_unavailable(server):
    """§3.3.3: on an inbound unsubscribe from a subscriber, the contact's server sends
    unavailable presence from each of the contact's available resources to the user,
    who no longer receives the contact's presence and would otherwise keep showing the
    contact online."""
    un, cn = pair(server)
    C = f"{cn}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        u.unsubscribe(C)
        c.wait_for(is_presence(ptype="unsubscribe"), what="the unsubscribe")
        u.wait_for(is_presence(frm=c.jid, ptype="unavailable"), timeout=1, what="C's unavailable presence")


def test_unsubscribed_cancels_the_contacts_subscription(server):
    """§3.2: U cancels C's subscription to U (both): C gets U's unavailable presence and
    then the unsubscribed; U's item becomes 'to', C's 'from'; U's presence no longer
    reaches C."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        u.unsubscribed(C)
        assert u.push_state(C) == ("to", None, None)
        assert c.push_state(U) == ("from", None, None)
        c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="U's unavailable presence")
        no = c.wait_for(is_presence(ptype="unsubscribed"), what="the unsubscribed")
        assert no.get("from") == U
        u.presence(status="not for C")
        u.message(c.jid, "marker")
        c.wait_message("marker")
        assert c.take(is_presence(frm=u.jid, status="not for C")) == []
        # C's presence still reaches U.
        c.presence(status="c still")
        u.wait_for(is_presence(frm=c.jid, status="c still"), what="C's presence")


def test_unsubscribed_order_unavailable_before_unsubscribed(server):
    """§3.2.2: the contact's server sends the unavailable presence before it routes the
    unsubscribed, so the user's client never sees presence from someone it is no longer
    subscribed to."""
    un, cn = pair(server)
    U = f"{un}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        c.unsubscribed(U)
        first = u.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("type") in ("unavailable", "unsubscribed")
                           and (e.get("from") or "").startswith(c.bare), what="C's presence")
        assert first.get("type") == "unavailable", "unsubscribed came before the unavailable presence"


def test_preapproval(server):
    """§3.4: C approves before being asked: C's item has approved='true' and the
    subscribed goes nowhere; U's later request is approved by C's server at once,
    without reaching C's client, and U gets C's presence."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u, \
            connect(server, cn, "c", roster=True, available=True) as c:
        c.subscribed(U)
        item, _ = push_item(c.push(U))
        assert sub_state(item) == ("none", None, "true")
        assert roster_items(c.roster())[U]["approved"] == "true"
        c.message(u.jid, "marker")  # the same path a routed subscribed would take
        u.wait_message("marker")
        assert u.take(is_presence(ptype=None)) == [], "the pre-approval was routed to U"
        assert u.take(is_roster_push()) == []

        u.subscribe(C)
        assert u.push_state(C) == ("none", "subscribe", None)
        assert sub_state(push_item(u.push(C, timeout=1))[0]) == ("to", None, None)
        ok = u.wait_for(is_presence(ptype="subscribed"), what="the automatic approval")
        assert ok.get("from") == C
        u.wait_for(is_presence(frm=c.jid), what="C's presence")
        assert c.push_state(U) == ("from", None, None)
        u.message(c.jid, "marker 2")
        c.wait_message("marker 2")
        assert c.take(is_presence(ptype="subscribe")) == [], "the pre-approved request reached C"


def test_preapproval_cancelled(server):
    """§3.2.2 item 2: unsubscribed after a pre-approval cancels it (the item loses
    approved); a later request then reaches C as usual."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u, \
            connect(server, cn, "c", roster=True, available=True) as c:
        c.subscribed(U)
        assert c.push_state(U) == ("none", None, "true")
        c.unsubscribed(U)
        assert c.push_state(U) == ("none", None, None)
        u.subscribe(C)
        req = c.wait_for(is_presence(ptype="subscribe"), what="the request")
        assert req.get("from") == U
        assert u.push_state(C) == ("none", "subscribe", None)


def test_subscribe_to_unknown_account_gets_unsubscribed(server):
    """RFC 6121 §3.1.3 / §8.5.1: a request for an account that does not exist is
    answered with unsubscribed from it, which clears the requester's ask."""
    un, = server.new_users(1, "sub")
    ghost = "ghost-of-nobody@localhost"
    with connect(server, un, "u", roster=True, available=True) as u:
        u.subscribe(ghost)
        assert u.push_state(ghost) == ("none", "subscribe", None)
        no = u.wait_for(is_presence(ptype="unsubscribed"), timeout=1, what="unsubscribed")
        assert (no.get("from"), no.get("to")) == (ghost, u.bare)
        assert u.push_state(ghost) == ("none", None, None)


def test_repeated_request_not_delivered_twice(server):
    un, cn = pair(server)
    C = f"{cn}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        u.subscribe(C)
        c.wait_for(is_presence(ptype="subscribe"), what="the request")
        u.subscribe(C)
        u.message(c.jid, "marker")
        c.wait_message("marker")
        assert c.take(is_presence(ptype="subscribe")) == []


def test_subscription_stanzas_from_full_jid_are_stamped_bare(server):
    """§3.1.2: whatever `from` the client wrote, the subscription request leaves with
    the user's bare JID."""
    un, cn = pair(server)
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        u.send(f"<presence type='subscribe' to='{c.bare}' from='{u.jid}'/>")
        req = c.wait_for(is_presence(ptype="subscribe"), what="the request")
        assert req.get("from") == u.bare


def test_preapproval_is_stored_and_request_not_shown(server):
    """The part of §3.4 that works: the pre-approved request is approved by C's server
    (C's item becomes 'from', without approved) and never reaches C's client."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u, \
            connect(server, cn, "c", roster=True, available=True) as c:
        c.subscribed(U)
        assert c.push_state(U) == ("none", None, "true")
        c.message(u.jid, "marker")  # the same path a routed subscribed would take
        u.wait_message("marker")
        assert u.take(is_presence(ptype=None)) == [], "the pre-approval was routed to U"
        u.subscribe(C)
        assert c.push_state(U) == ("from", None, None)
        u.message(c.jid, "marker 2")
        c.wait_message("marker 2")
        assert c.take(is_presence(ptype="subscribe")) == [], "the pre-approved request reached C"
        # C's presence goes to U at once (§3.1.5), as for any approval.
        u.wait_for(is_presence(frm=c.jid), what="C's presence")


def test_roster_remove_cancels_both_subscriptions(server):
    """§2.5.2: removing a contact with subscription both makes the user's server send
    unsubscribe and unsubscribed to it: the contact's item goes to 'none' (pushed), the
    contact gets both stanzas and the user's unavailable presence."""
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", available=True) as u, connect(server, cn, "c", available=True) as c:
        befriend(u, c)
        assert u.roster_remove(C).get("type") == "result"
        assert push_item(u.push(C))[0]["subscription"] == "remove"
        c.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="U's unavailable presence")
        c.wait_for(is_presence(frm=U, ptype="unsubscribe"), timeout=1, what="unsubscribe")
        c.wait_for(is_presence(frm=U, ptype="unsubscribed"), timeout=1, what="unsubscribed")
        assert wait_state(c, U, ("none", None, None))


def test_cancelled_request_is_not_shown(make_server):
    """A.3.2: an unsubscribe while the request is still pending withdraws it: the
    contact, offline meanwhile, does not see it at its next login, and the user's item
    loses ask. (A node of its own: under the SAN build the bug aborts the router.)"""
    server = make_server()
    un, cn = pair(server)
    U, C = f"{un}@localhost", f"{cn}@localhost"
    with connect(server, un, "u", roster=True, available=True) as u:
        u.subscribe(C)
        assert u.push_state(C) == ("none", "subscribe", None)
        # The request is stored and C, nobody's, is out of the router's memory again:
        # the withdrawal waits for C's state to load, like any stanza for an offline user.
        u.store_barrier()
        assert u.ping(C).get("type") == "result"
        u.unsubscribe(C)
        assert u.push_state(C) == ("none", None, None)
        assert u.ping(C).get("type") == "result"
        u.store_barrier()
    with connect(server, cn, "c", roster=True, available=True) as c:
        c.store_barrier()
        assert c.take(is_presence(ptype="subscribe")) == []
        assert U not in roster_items(c.roster())
