"""
XEP-0033 between two starling nodes (a.test, b.test: dialback over STARTTLS, found
through s2s.routes). Each advertises http://jabber.org/protocol/address on its domain's
disco#info to remote servers, so the other finds it there once its stream is up; a
presence broadcast from alice@a.test to her contacts on b.test then crosses as one
multicast stanza (bcc addresses, to b.test) that b.test's s2s expands into one stanza
per contact, each with its own `to` and no <addresses/>. The counters in each s2s
thread's log line at exit say what crossed.
"""
import re

from conftest import Server, _stop_cleanly, free_port
from slixclient import Clients, run

FIRST = 20.0
CONTACTS = ["bob", "carol", "dave", "erin"]
NS_ADDRESS = "{http://jabber.org/protocol/address}addresses"


def _node(tmp, domain, s2s_port, routes, **s2s):
    accounts = {u: f"{u}-pw" for u in ["alice"] + CONTACTS}
    s = Server(tmp / domain, name=domain, accounts=accounts,
               s2s={"listen": f"127.0.0.1:{s2s_port}", "routes": routes, **s2s})
    s.domain = domain
    s.setup()
    return s


def _counters(node):
    """The XEP-0033 counters of the s2s thread's log line at exit."""
    m = re.findall(r"XEP-0033: (\d+) multicast stanzas carried (\d+) \((\d+) stanzas, "
                   r"(-?\d+) bytes saved\), (\d+) received for (\d+) recipients",
                   node.log_text())
    assert m, f"no XEP-0033 counters in the log of {node.name}:\n{node.log_tail()}"
    return tuple(int(x) for x in m[-1])


def test_broadcast_to_remote_contacts_crosses_as_one_multicast(tmp_path):
    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp_path, "a.test", pa, routes)
    b = _node(tmp_path, "b.test", pb, routes)
    a.start()
    b.start()
    try:
        async def go():
            async with Clients(a) as ca, Clients(b) as cb:
                alice = await ca.login("alice", "pc", available=True)
                aj = alice.boundjid.bare
                contacts = [await cb.login(u, "pc", available=True) for u in CONTACTS]
                # Each contact subscribes to alice's presence and she approves.
                for c in contacts:
                    c.send_presence(pto=aj, ptype="subscribe")
                    p = await alice.next_presence(
                        lambda p, c=c: p["type"] == "subscribe" and p["from"].bare == c.boundjid.bare,
                        timeout=FIRST)
                    alice.send_presence(pto=p["from"].bare, ptype="subscribed")
                    await c.next_presence(lambda p: p["type"] == "subscribed", timeout=FIRST)
                    await c.next_presence(lambda p: p["type"] == "available" and
                                          p["from"] == alice.boundjid, timeout=FIRST)
                # A broadcast: one fan-out frame for b.test, one multicast stanza across.
                alice.send_presence(pshow="away", pstatus="lunch")
                for c in contacts:
                    p = await c.next_presence(lambda p: p["status"] == "lunch", timeout=FIRST)
                    assert p["from"] == alice.boundjid
                    assert p["to"] == c.boundjid.bare  # as the per-contact stanza has it
                    assert p["show"] == "away"
                    assert p.xml.find(NS_ADDRESS) is None  # bcc: stripped (XEP-0033 §4.4)

        run(go(), timeout=120)
    finally:
        _stop_cleanly(a)
        _stop_cleanly(b)
    sent, carried, saved, saved_bytes, received, delivered = _counters(a)
    assert sent >= 1 and carried >= len(CONTACTS), _counters(a)
    assert saved == carried - sent and saved_bytes > 0
    assert _counters(b)[4:] == (sent, carried)
