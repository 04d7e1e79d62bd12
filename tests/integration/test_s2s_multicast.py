"""
XEP-0033 between two starling nodes (a.test, b.test: dialback over STARTTLS, found
through s2s.routes). Each advertises http://jabber.org/protocol/address on its domain's
disco#info to remote servers, so the other finds it there once its stream is up; a
presence broadcast from alice@a.test to her contacts on b.test then crosses as one
multicast stanza (bcc addresses, to b.test) that b.test's s2s expands into one stanza
per contact, each with its own `to` and no <addresses/>. The counters in each s2s
thread's log line at exit say what crossed.
"""
import asyncio
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


def _broadcast(tmp_path, b_s2s):
    """alice@a.test and her contacts on b.test (configured with b_s2s), who each
    subscribe to her; then her presence broadcast, which each must get once. The
    counters of (a.test, b.test) after both stopped."""
    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp_path, "a.test", pa, routes)
    b = _node(tmp_path, "b.test", pb, routes, **b_s2s)
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
                # A broadcast: one fan-out frame for b.test, multicast across.
                alice.send_presence(pshow="away", pstatus="lunch")
                for c in contacts:
                    p = await c.next_presence(lambda p: p["status"] == "lunch", timeout=FIRST)
                    assert p["from"] == alice.boundjid
                    assert p["to"] == c.boundjid.bare  # as the per-contact stanza has it
                    assert p["show"] == "away"
                    assert p.xml.find(NS_ADDRESS) is None  # bcc: stripped (XEP-0033 §4.4)
                await alice.close()  # her unavailable: one more broadcast
                for c in contacts:
                    await c.next_presence(lambda p: p["type"] == "unavailable" and
                                          p["from"] == alice.boundjid, timeout=FIRST)
                await asyncio.sleep(0.5)
                assert all(c.presences.empty() for c in contacts)  # each got each once

        run(go(), timeout=120)
    finally:
        _stop_cleanly(a)
        _stop_cleanly(b)
    return a, b


def test_broadcast_to_remote_contacts_crosses_as_one_multicast(tmp_path):
    a, b = _broadcast(tmp_path, {})
    assert "b.test multicasts (XEP-0033) through b.test, 1000 recipients per stanza" in a.log_text()
    sent, carried, saved, saved_bytes, _, _ = _counters(a)
    # two broadcasts (away, unavailable) of four contacts: two stanzas across, not eight
    assert (sent, carried, saved) == (2, 2 * len(CONTACTS), 2 * len(CONTACTS) - 2)
    assert saved_bytes > 0
    assert _counters(b)[4:] == (2, 2 * len(CONTACTS))


def test_multicast_respects_the_limit_the_peer_advertises(tmp_path):
    """b.test takes 3 recipients per multicast (s2s.multicast_max) and says so in its
    disco#info (XEP-0128): a.test sends four contacts' presence as 3 + 1."""
    a, b = _broadcast(tmp_path, {"multicast_max": 3})
    assert "b.test multicasts (XEP-0033) through b.test, 3 recipients per stanza" in a.log_text()
    sent, carried, _, _, _, _ = _counters(a)
    assert (sent, carried) == (4, 2 * len(CONTACTS))
    assert _counters(b)[4:] == (4, 2 * len(CONTACTS))


def test_no_multicast_when_the_peer_does_not_offer_it(tmp_path):
    """b.test with s2s.multicast_max = 0 neither advertises nor accepts XEP-0033: a.test
    writes one stanza per contact, and the contacts get them all the same."""
    a, b = _broadcast(tmp_path, {"multicast_max": 0})
    assert "multicasts (XEP-0033)" not in a.log_text()
    assert _counters(a)[:2] == (0, 0)
    assert _counters(b)[4:] == (0, 0)
