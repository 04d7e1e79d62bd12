"""
IM state when the router process dies (SIGKILL) and the supervisor starts a new one:
c2s keeps the clients and registers their sessions again with their last presence
(README, "Processes and failures"). Rosters, subscriptions and blocklists come back
from the store; what lived only in the router's memory for a session must come back
too, or the client silently stops getting what it asked for. A node of its own per
test; only that node's router is signalled, by PID.
"""
import os
import signal
import time

import pytest

from im import befriend, connect, is_block_push, is_presence
from test_server_basics import carbon, enable_carbons


def kill_router(s, *clients):
    """SIGKILL the router, wait for the new one, and until each client's session is
    registered again (its pings are answered: before, a stanza is held or dropped)."""
    old = s.router_pid()
    os.kill(old, signal.SIGKILL)
    s.wait_child_replaced("starling-router", old)
    s.wait_serving(router=2)
    for c in clients:
        deadline = time.monotonic() + 10
        while True:
            try:
                c.iq("get", "<ping xmlns='urn:xmpp:ping'/>", to="localhost", timeout=0.3)
                break
            except AssertionError:
                assert time.monotonic() < deadline, f"{c.jid} not registered again"


def test_presence_and_routing_after_router_restart(make_server):
    """What c2s registers again works: the session's presence answers a contact's probe
    and its priority still decides bare-JID routing; rosters come from the store."""
    s = make_server(expect_stable=False)
    un, cn = s.new_users(2, "flt")
    with connect(s, un, "hi", available=True, priority=5) as hi, \
            connect(s, un, "lo", available=True, priority=1) as lo:
        with connect(s, cn, "c") as c:
            befriend(hi, c)
            c.store_barrier()  # SIGKILL loses what the store has not written yet
        hi.presence(status="before the crash", priority=5)
        hi.settle()
        kill_router(s, hi, lo)
        with connect(s, cn, "c2") as c:
            c.presence()
            c.wait_for(is_presence(frm=hi.jid, status="before the crash"), what="hi's presence by probe")
            c.message(hi.bare, "to the bare jid")
            hi.wait_message("to the bare jid")
            lo.settle()
            assert lo.take(lambda e: e.get("type") == "chat") == []


@pytest.mark.parametrize("what", ["roster-pushes", "blocklist-pushes", "carbons", "directed-presence"])
def test_session_state_survives_router_restart(make_server, what):
    s = make_server(expect_stable=False)
    un, cn = s.new_users(2, "flt")
    with connect(s, un, "a", available=True) as a, connect(s, un, "b", available=True) as b, \
            connect(s, cn, "c", available=True) as c:
        if what == "roster-pushes":
            a.roster()
        elif what == "blocklist-pushes":
            a.blocklist()
        elif what == "carbons":
            enable_carbons(a)
        else:
            a.send(f"<presence to='{c.jid}'><status>directed</status></presence>")
            c.wait_for(is_presence(frm=a.jid, status="directed"), what="the directed presence")

        def works(tag, timeout=None):
            if what == "roster-pushes":
                assert b.roster_set(f"{tag}@localhost").get("type") == "result"
                a.push(f"{tag}@localhost", timeout=timeout)
            elif what == "blocklist-pushes":
                assert b.block(f"{tag}@localhost").get("type") == "result"
                a.wait_for(is_block_push("block"), timeout=timeout, what="the block push")
            elif what == "carbons":
                b.message(c.jid, tag)
                c.wait_message(tag)
                a.timeout = timeout or a.timeout
                carbon(a, "sent", tag)

        if what != "directed-presence":
            works("before")  # so what fails below is the restart's doing
        kill_router(s, a, b, c)
        if what != "directed-presence":
            works("after", timeout=1)
        else:
            a.close()
            c.wait_for(is_presence(frm=a.jid, ptype="unavailable"), timeout=1, what="a's unavailable presence")
