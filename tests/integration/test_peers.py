"""
The federation peers themselves (peers.py): a real Prosody and a real ejabberd, started
here on addresses of their own, federate with each other through our DNS server, over
SASL EXTERNAL when both hold certificates of the test CA and over dialback when each
has a self-signed one. What starling's s2s must do with each of them (test_federation's
scenarios: messages, the subscription handshake with presence and rosters, a session's
end, iq, errors), they do here with one another, each in each role; and how they
authenticate and find each other. Each certificate mode is one pair of servers for the
module.
"""
import pytest

import test_federation
from slixclient import Clients, run
# The scenarios of test_federation.py, here between Prosody and ejabberd: what starling
# must do with each of them, they do with one another. They run with this module's
# fixtures (net, pair).
from test_federation import (  # noqa: F401 - collected by pytest
    test_every_server_listens_on_its_own_address_only, test_iq_to_a_remote_full_jid,
    test_iq_to_the_remote_server, test_message_each_way, test_message_to_a_domain_that_does_not_exist,
    test_message_to_an_unknown_remote_user, test_subscription_handshake_both_ways,
    test_unavailable_seen_remotely)

FIRST = test_federation.FIRST
ACCOUNTS = {**test_federation.PEER_ACCOUNTS, **test_federation.HOME_ACCOUNTS, "auth": "auth-pw"}


@pytest.fixture(scope="module", params=["ca", "self-signed"])
def net(request, make_federation):
    net = make_federation()
    net.name("starling.test", "127.0.0.20")
    net.prosody("prosody.test", "127.0.0.21", accounts=ACCOUNTS, certs=request.param)
    net.ejabberd("ejabberd.test", "127.0.0.22", accounts=ACCOUNTS, certs=request.param)
    net.mode = request.param
    net.home = net.peers[0]  # for test_message_to_a_domain_that_does_not_exist
    yield net.start()
    net.close()  # before the next mode's servers take the same addresses


@pytest.fixture(params=["prosody->ejabberd", "ejabberd->prosody"])
def pair(request, net):
    """(home, remote) for test_federation's scenarios: each server in each role."""
    home, remote = request.param.split("->")
    by_kind = {p.kind: p for p in net.peers}
    return by_kind[home], by_kind[remote]


def peers_of(net):
    pr, ej = net.peers
    return pr, ej


def exchange(net, user):
    """A message each way between `user` of each server: the streams both ways exist."""
    pr, ej = peers_of(net)

    async def scenario():
        async with Clients(pr) as cp, Clients(ej) as ce:
            a = await cp.login(user, "p", available=True)
            b = await ce.login(user, "e", available=True)
            a.send_message(mto=b.boundjid.full, mbody="ping", mtype="chat")
            await b.next_message(timeout=FIRST)
            b.send_message(mto=a.boundjid.full, mbody="pong", mtype="chat")
            await a.next_message(timeout=FIRST)

    run(scenario(), 60)


def test_streams_authenticate_as_the_certificates_allow(net):
    """With the test CA both ways are SASL EXTERNAL (XEP-0178); with self-signed
    certificates both are dialback (XEP-0220). ejabberd logs the method of each stream,
    inbound and outbound."""
    pr, ej = peers_of(net)
    exchange(net, "auth")
    method = "EXTERNAL" if net.mode == "ca" else "dialback"
    log = ej.wait_log(f"Accepted inbound s2s {method} authentication {pr.domain} -> {ej.domain}",
                      f"Accepted outbound s2s {method} authentication {ej.domain} -> {pr.domain}")
    other = "dialback" if method == "EXTERNAL" else "EXTERNAL"
    assert f"Accepted inbound s2s {other} authentication" not in log
    assert f"Accepted outbound s2s {other} authentication" not in log
    if method == "EXTERNAL":
        pr.wait_log(f"Accepting SASL EXTERNAL identity from {ej.domain}")
    else:
        assert f"Accepting SASL EXTERNAL identity from {ej.domain}" not in pr.log_text()


def test_peers_find_each_other_through_our_dns(net):
    """Both servers asked our DNS server for the other's SRV records, XEP-0368's
    _xmpps-server first; Prosody asked it for the address too (ejabberd reads addresses
    from the hosts file of its namespace)."""
    pr, ej = peers_of(net)
    exchange(net, "auth")
    q = net.dns.queries()
    for d in (pr.domain, ej.domain):
        assert ("SRV", f"_xmpps-server._tcp.{d}") in q
        assert ("SRV", f"_xmpp-server._tcp.{d}") in q
    assert ("A", ej.domain) in q
