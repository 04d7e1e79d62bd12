"""
A router killed with SIGKILL loses nothing it was handed. It gives a front end's frames
back only once it has finished with them (ticket.h); when it dies, c2s takes back every
frame it had not finished, and every frame still in the rings, and hands them to the
next router after the sessions' re-registration. Messages sent just before a crash, while
the router is down, and after it is back all arrive, over several crashes in a row; a
message may arrive twice, none may be lost, and no sender is told of an error.
"""
import os
import signal
import time

from rawxmpp import login

CYCLES = 4
BURST = 25


def collect(client, want, timeout):
    """Bodies of chat messages received until every one of `want` was seen."""
    seen = {}
    deadline = time.monotonic() + timeout
    while not want <= set(seen) and time.monotonic() < deadline:
        try:
            el = client.stanza(max(0.05, deadline - time.monotonic()))
        except AssertionError:
            break
        if el.tag.endswith("}message"):
            body = el.findtext("{jabber:client}body")
            if el.get("type") == "error":
                seen.setdefault("error: " + (body or el.get("id") or "?"), 0)
            elif body is not None:
                seen[body] = seen.get(body, 0) + 1
    return seen


def test_router_crash_loses_no_message(make_server):
    s = make_server(expect_stable=False)
    with login(s, "alice", "desk", available=True) as alice, \
            login(s, "bob", "phone", available=True) as bob:
        sent = set()
        for cycle in range(CYCLES):
            old = s.router_pid()
            for i in range(BURST):  # the router is still taking these in when it dies
                body = f"{cycle} before {i}"
                alice.message(bob.jid, body)
                sent.add(body)
            os.kill(old, signal.SIGKILL)
            for i in range(BURST):  # c2s holds these while the router is away
                body = f"{cycle} during {i}"
                alice.message(bob.jid, body)
                sent.add(body)
            s.wait_child_replaced("starling-router", old)
            s.wait_serving(router=cycle + 2)
            for i in range(5):
                body = f"{cycle} after {i}"
                alice.message(bob.jid, body)
                sent.add(body)
            got = collect(bob, {f"{cycle} after {i}" for i in range(5)}, timeout=20)
            errors = collect(alice, set(), timeout=0.2)
            assert not [b for b in errors if b.startswith("error")], errors
            for body in list(sent):
                if body in got:
                    sent.discard(body)
            # What is not here yet may come with the next cycle, never later than the end.
        got = collect(bob, sent, timeout=20)
        missing = sorted(sent - set(got))
        assert not missing, f"{len(missing)} messages lost: {missing[:10]}"
    assert len(s.restarts()) == CYCLES
