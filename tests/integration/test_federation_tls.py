"""
Direct TLS between servers (XEP-0368): starling, Prosody and ejabberd each listen for
server streams that start with TLS and publish _xmpps-server SRV records beside
_xmpp-server ones. starling tries _xmpps-server first, so its streams to each peer
start with TLS (SNI the peer's domain), and the peers' streams to starling arrive on
its s2s.listen_tls; messages cross both ways. Certificates of the test CA: SASL
EXTERNAL on top.
"""
import time

import pytest

from slixclient import Clients, run

FIRST = 30.0
TLS_PORT = 5270
ACCOUNTS = {"tls": "tls-pw"}


@pytest.fixture(scope="module")
def net(make_federation):
    net = make_federation()
    net.home = net.starling("starling.test", "127.0.0.20", accounts=ACCOUNTS, s2s_tls_port=TLS_PORT)
    net.prosody("prosody.test", "127.0.0.21", accounts=ACCOUNTS, s2s_tls_port=TLS_PORT)
    net.ejabberd("ejabberd.test", "127.0.0.22", accounts=ACCOUNTS, s2s_tls_port=TLS_PORT)
    yield net.start()
    net.close()


def wait_logged(node, text, timeout=15.0):
    deadline = time.monotonic() + timeout
    while text not in node.log_text():
        assert time.monotonic() < deadline, f"{node.domain} did not log {text!r}:\n{node.log_tail()}"
        time.sleep(0.1)


@pytest.mark.parametrize("kind", ["prosody", "ejabberd"])
def test_direct_tls_both_ways(net, kind):
    st = net.home
    peer = next(p for p in net.peers if p.kind == kind)

    async def go():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login("tls", "s", available=True)
            b = await cp.login("tls", "p", available=True)
            a.send_message(mto=b.boundjid.full, mbody="over direct tls", mtype="chat")
            await b.next_message(lambda m: m["body"] == "over direct tls", timeout=FIRST)
            b.send_message(mto=a.boundjid.full, mbody="and back", mtype="chat")
            await a.next_message(lambda m: m["body"] == "and back", timeout=FIRST)

    run(go(), timeout=90)
    wait_logged(st, f"s2s: to {peer.domain} over Direct TLS (XEP-0368)")
    wait_logged(st, f"s2s: {peer.domain} connected over Direct TLS (XEP-0368)")
    wait_logged(st, f"{peer.domain} authenticated with its certificate (SASL EXTERNAL)")
