"""
XEP-0288 between two starling nodes (a.test and b.test, one s2s thread each, found
through s2s.routes), in both authentication modes of test_s2s.py (Server Dialback with
self-signed certificates, SASL EXTERNAL with a test CA). With s2s.bidi on (the default)
the stream a.test opens carries b.test's stanzas back: messages and presence cross both
ways over one TCP connection between the nodes. With s2s.bidi = false each direction has
its own connection, and everything still crosses. When both nodes speak first at once,
neither gives up its own stream for the other's (what crossed would be lost). And a real
Prosody with mod_s2s_bidi that connects first gets our stanzas back on its stream.

Connections are counted in /proc/net/tcp: established sockets whose local address is one
of the nodes' s2s listeners, i.e. the accepting end of every connection between them (no
client connects there).
"""
import socket
import time

import pytest

from conftest import _stop_cleanly, free_port
from slixclient import Clients, run
from test_s2s import FIRST, _node


def _endpoint(hexaddr):
    ip, port = hexaddr.split(":")
    return socket.inet_ntoa(bytes.fromhex(ip)[::-1]), int(port, 16)


def s2s_connections(*ports, ip="127.0.0.1"):
    """Established connections accepted on ip at one of the ports (IPv4)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and _endpoint(fields[1]) in {(ip, p) for p in ports}:
                n += 1
    return n


def settle(count, want, timeout=15.0):
    """count() once it is `want` (polled: a stream that served only dialback
    verification closes a moment after its answer), else the last one seen."""
    end = time.monotonic() + timeout
    while True:
        n = count()
        if n == want or time.monotonic() > end:
            return n
        time.sleep(0.1)


async def crossing(x, y, numbers):
    """x and y send each other a message per number at once; each arrives."""
    for i in numbers:
        x.send_message(mto=y.boundjid.full, mbody=f"x{i}", mtype="chat")
        y.send_message(mto=x.boundjid.full, mbody=f"y{i}", mtype="chat")
    for i in numbers:
        await y.next_message(lambda m, i=i: m["body"] == f"x{i}", timeout=FIRST)
        await x.next_message(lambda m, i=i: m["body"] == f"y{i}", timeout=FIRST)


@pytest.fixture(scope="module", params=[("dialback", True), ("external", True),
                                        ("dialback", False), ("external", False)],
                ids=["dialback-bidi", "external-bidi", "dialback-nobidi", "external-nobidi"])
def pair(request, tmp_path_factory):
    mode, bidi = request.param
    tmp = tmp_path_factory.mktemp("s2sbidi")
    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    ca = tmp / "ca" if mode == "external" else None
    a = _node(tmp, "a.test", pa, routes, ca, bidi=bidi)
    b = _node(tmp, "b.test", pb, routes, ca, bidi=bidi)
    a.start()
    b.start()
    a.mode, a.bidi, a.ports = mode, bidi, (pa, pb)
    yield a, b
    _stop_cleanly(a)
    _stop_cleanly(b)


def test_messages_and_presence_both_ways(pair):
    a, b = pair
    want = 1 if a.bidi else 2

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "bidi", available=True)
            bob = await cb.login("bob", "bidi", available=True)
            aj, bj = alice.boundjid.bare, bob.boundjid.bare
            # a.test speaks first: its stream is the one that may carry both ways.
            alice.send_message(mto=bob.boundjid.full, mbody="a to b", mtype="chat")
            m = await bob.next_message(lambda m: m["body"] == "a to b", timeout=FIRST)
            assert m["from"] == alice.boundjid
            bob.send_message(mto=alice.boundjid.full, mbody="b to a", mtype="chat")
            m = await alice.next_message(lambda m: m["body"] == "b to a", timeout=FIRST)
            assert m["from"] == bob.boundjid

            # The subscription handshake both ways, and each sees the other's presence.
            alice.send_presence(pto=bj, ptype="subscribe")
            await bob.next_presence(lambda p: p["type"] == "subscribe", timeout=FIRST)
            bob.send_presence(pto=aj, ptype="subscribed")
            await alice.next_presence(lambda p: p["type"] == "available" and
                                      p["from"] == bob.boundjid, timeout=FIRST)
            bob.send_presence(pto=aj, ptype="subscribe")
            await alice.next_presence(lambda p: p["type"] == "subscribe", timeout=FIRST)
            alice.send_presence(pto=bj, ptype="subscribed")
            await bob.next_presence(lambda p: p["type"] == "available" and
                                    p["from"] == alice.boundjid, timeout=FIRST)
            bob.send_presence(pstatus="away now")
            await alice.next_presence(lambda p: p["status"] == "away now", timeout=FIRST)
            alice.send_presence(pstatus="here")
            await bob.next_presence(lambda p: p["status"] == "here", timeout=FIRST)

            assert settle(lambda: s2s_connections(*a.ports), want) == want
            # More traffic both ways opens nothing more.
            await crossing(bob, alice, range(5))
            assert s2s_connections(*a.ports) == want

    run(go(), timeout=120)
    la, lb = a.log_text(), b.log_text()
    if a.bidi:
        # b.test took a.test's stream for its own stanzas; a.test never needed to.
        assert "bidi stream with a.test" in lb, b.log_tail()
        assert "bidi stream with" not in la, a.log_tail()
    else:
        assert "bidi stream with" not in la + lb
    if a.mode == "external":
        assert "(dialback)" not in la + lb
    else:
        assert "SASL EXTERNAL" not in la + lb


@pytest.fixture(params=["dialback", "external"])
def fresh_pair(request, tmp_path):
    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    ca = tmp_path / "ca" if request.param == "external" else None
    a = _node(tmp_path, "a.test", pa, routes, ca)
    b = _node(tmp_path, "b.test", pb, routes, ca)
    a.start()
    b.start()
    a.ports = (pa, pb)
    yield a, b
    _stop_cleanly(a)
    _stop_cleanly(b)


def test_both_speak_first(fresh_pair):
    """Both nodes open their streams at once, each for stanzas of its own: neither drops
    its stream for the other's (both would, and what crossed meanwhile would be lost), so
    everything arrives, over at most one connection each way."""
    a, b = fresh_pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "first", available=True)
            bob = await cb.login("bob", "first", available=True)
            await crossing(alice, bob, range(5))
            assert 1 <= s2s_connections(*a.ports) <= 2
            await crossing(bob, alice, range(5, 10))

    run(go(), timeout=90)


# ---- with a real Prosody (peers.py), its mod_s2s_bidi loaded ---------------------------

@pytest.fixture(scope="module", params=["ca", "self-signed"])
def prosody_net(request, make_federation):
    net = make_federation()
    net.home = net.starling("starling.test", "127.0.0.20", accounts={"st": "st-pw"},
                            certs=request.param)
    net.peer = net.prosody("prosody.test", "127.0.0.21", accounts={"pr": "pr-pw"},
                           certs=request.param, bidi=True)
    net.mode = request.param
    yield net.start()
    net.close()


def node_connections(*nodes):
    """Established connections accepted on the nodes' s2s addresses (each its own)."""
    return sum(s2s_connections(n.s2s_port, ip=n.host) for n in nodes)


def test_prosody_speaks_first_over_one_connection(prosody_net):
    """Prosody opens the stream and asks for bidi; starling answers over it, and both
    users' messages and presence cross there, with no stream of starling's left."""
    st, pr = prosody_net.home, prosody_net.peer

    async def go():
        async with Clients(st) as cs, Clients(pr) as cp:
            a = await cs.login("st", "s", available=True)
            b = await cp.login("pr", "p", available=True)
            b.send_message(mto=a.boundjid.full, mbody="from prosody", mtype="chat")
            await a.next_message(lambda m: m["body"] == "from prosody", timeout=FIRST)
            a.send_message(mto=b.boundjid.full, mbody="from starling", mtype="chat")
            await b.next_message(lambda m: m["body"] == "from starling", timeout=FIRST)
            b.send_presence(pto=a.boundjid.bare, ptype="subscribe")
            await a.next_presence(lambda p: p["type"] == "subscribe", timeout=FIRST)
            a.send_presence(pto=b.boundjid.bare, ptype="subscribed")
            await b.next_presence(lambda p: p["type"] == "available" and
                                  p["from"] == a.boundjid, timeout=FIRST)
            assert settle(lambda: node_connections(st, pr), 1) == 1
            await crossing(a, b, range(3))
            assert node_connections(st, pr) == 1

    run(go(), timeout=120)
    assert "bidi stream with prosody.test" in st.log_text(), st.log_tail()
