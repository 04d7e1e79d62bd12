"""
Large answers on the shipped defaults: a roster and a blocklist of a few hundred KB are
answered whole (larger than one shared-memory frame, they travel in pieces), as Prosody
and ejabberd answer them; the client's parser accepts the result. Before messages went in
pieces such a result was dropped with a log line and the client waited forever.
"""
import time

from im import NS_ROSTER, connect, roster_items
from rawxmpp import q

ITEMS = 350
LOCAL = "x" * 990  # a JID of about 1000 bytes: 350 of them are ~350 KB


def jid(i):
    return f"{LOCAL}{i:04d}@example.org"


def test_large_roster_is_answered(server):
    un, = server.new_users(1, "big")
    with connect(server, un, "a") as a:
        for i in range(ITEMS):
            r = a.roster_set(jid(i))
            assert r.get("type") == "result", r.attrib
        t0 = time.monotonic()
        res = a.roster()
        took = time.monotonic() - t0
        items = roster_items(res.find(q(NS_ROSTER, "query")))
        assert len(items) == ITEMS
        assert set(items) == {jid(i) for i in range(ITEMS)}
        print(f"roster of {ITEMS} items answered in {took:.3f} s")


def test_large_blocklist_is_answered(server):
    un, = server.new_users(1, "bigblk")
    with connect(server, un, "a") as a:
        for i in range(0, ITEMS, 50):
            r = a.block(*[jid(k) for k in range(i, i + 50)])
            assert r.get("type") == "result", r.attrib
        assert a.blocklist() == sorted(jid(i) for i in range(ITEMS))
