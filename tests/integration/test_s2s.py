"""
Federation between two starling nodes on loopback (domains a.test and b.test, each its
own process tree), found through s2s.routes, each with a self-signed certificate the
other cannot verify: streams both ways over STARTTLS, authenticated with Server
Dialback (XEP-0220). Real slixmpp clients on each side.
"""
import pytest

from conftest import Server, _stop_cleanly, free_port
from slixclient import Clients, run

FIRST = 20.0  # the first stanza to a domain makes the streams: TCP, TLS, dialback both ways


def _node(tmp, domain, s2s_port, routes):
    s = Server(tmp / domain, name=domain, s2s={"listen": f"127.0.0.1:{s2s_port}",
                                               "routes": routes})
    s.domain = domain
    s.setup()
    return s


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s")
    pa, pb, dead = free_port(), free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}",
              f"dead.test=127.0.0.1:{dead}"]
    a = _node(tmp, "a.test", pa, routes)
    b = _node(tmp, "b.test", pb, routes)
    a.start()
    b.start()
    yield a, b
    _stop_cleanly(a)
    _stop_cleanly(b)


def test_message_both_ways(pair):
    a, b = pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "pc", available=True)
            bob = await cb.login("bob", "pc", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="hello b", mtype="chat")
            m = await bob.next_message(lambda m: m["body"] == "hello b", timeout=FIRST)
            assert m["from"] == alice.boundjid
            bob.send_message(mto=alice.boundjid.bare, mbody="hello a", mtype="chat")
            m = await alice.next_message(lambda m: m["body"] == "hello a", timeout=FIRST)
            assert m["from"] == bob.boundjid

    run(go(), timeout=60)


def test_unknown_remote_user_is_answered_by_the_remote_server(pair):
    a, b = pair

    async def go():
        async with Clients(a) as ca:
            alice = await ca.login("alice", "err")
            alice.send_message(mto="nobody@b.test", mbody="anyone?", mtype="chat")
            m = await alice.next_message(lambda m: m["type"] == "error", timeout=FIRST)
            assert m["from"] == "nobody@b.test"
            assert m["error"]["condition"] == "service-unavailable"

    run(go(), timeout=60)


def test_unreachable_domain_bounces(pair):
    a, _ = pair

    async def go():
        async with Clients(a) as ca:
            alice = await ca.login("alice", "dead")
            for i in range(3):
                m = alice.make_message(mto="x@dead.test", mbody=f"lost {i}", mtype="chat")
                m["id"] = f"d{i}"
                m.send()
            got = set()
            while len(got) < 3:
                m = await alice.next_message(lambda m: m["type"] == "error", timeout=FIRST)
                assert m["error"]["condition"] == "remote-server-not-found"
                got.add(m["id"])
            assert got == {"d0", "d1", "d2"}

    run(go(), timeout=60)
