"""
The federation peers themselves (peers.py): a real Prosody and a real ejabberd, started
here on addresses of their own, federate with each other through our DNS server, over
SASL EXTERNAL when both hold certificates of the test CA and over dialback when each
has a self-signed one. What starling's s2s must do with each of them, they do here with
one another: chat both ways, the subscription handshake both ways with presence seen on
each side, probes, iq. Each certificate mode is one pair of servers for the module.
"""
import asyncio

import pytest

from slixclient import Clients, run

# The first stanza to a domain opens the s2s stream (DNS, TCP, TLS, authentication, and
# for dialback a second connection back): seconds on a loaded machine.
FIRST = 20.0

USERS = ["chat", "sub", "iq", "auth"]
ACCOUNTS = {u: f"{u}-pw" for u in USERS}


@pytest.fixture(scope="module", params=["ca", "self-signed"])
def net(request, make_federation):
    net = make_federation()
    net.name("starling.test", "127.0.0.20")
    net.prosody("prosody.test", "127.0.0.21", accounts=ACCOUNTS, certs=request.param)
    net.ejabberd("ejabberd.test", "127.0.0.22", accounts=ACCOUNTS, certs=request.param)
    net.mode = request.param
    yield net.start()
    net.close()  # before the next mode's servers take the same addresses


def peers_of(net):
    pr, ej = net.peers
    return pr, ej


def test_each_server_listens_on_its_own_address_only(net):
    """c2s and s2s on the peer's address and nothing else: no wildcard listener, no
    epmd or Erlang distribution port, no HTTP, no component port, no admin socket."""
    for p in net.peers:
        p.assert_listeners()
    from peers import bound_sockets

    dns = net.dns
    assert bound_sockets(dns.process.pids()) == {("tcp", dns.address, dns.port), ("udp", dns.address, dns.port)}


def test_chat_both_ways(net):
    pr, ej = peers_of(net)

    async def scenario():
        async with Clients(pr) as cp, Clients(ej) as ce:
            a = await cp.login("chat", "p", available=True)
            b = await ce.login("chat", "e", available=True)
            a.send_message(mto=b.boundjid.full, mbody="to ejabberd", mtype="chat")
            m = await b.next_message(timeout=FIRST)
            assert (m["from"].full, m["body"]) == (a.boundjid.full, "to ejabberd")
            b.send_message(mto=a.boundjid.bare, mbody="to prosody", mtype="chat")
            m = await a.next_message(timeout=FIRST)
            assert (m["from"].full, m["body"]) == (b.boundjid.full, "to prosody")

    run(scenario(), 60)


async def wait_subscription(c, jid, state, timeout=FIRST):
    """Until c's roster (as slixmpp keeps it from the server's pushes) has jid with
    this subscription state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        roster = c.client_roster
        now = roster[jid]["subscription"] if roster.has_jid(jid) else None
        if now == state:
            return
        assert loop.time() < deadline, f"{c.boundjid}: {jid} is {now!r}, not {state!r}, after {timeout}s"
        await asyncio.sleep(0.05)


def test_subscriptions_and_presence_both_ways(net):
    """RFC 6121 §3 across the two servers: each user asks, the other approves, both end
    with subscription 'both'; each then sees the other's presence change, and a new
    session sees the contact's presence through a probe to the other server. (Prosody
    0.12 does not pass an inbound 'subscribed' on to the user's clients, only the roster
    push: the test follows the rosters.)"""
    pr, ej = peers_of(net)

    def avail_from(jid, status=None):
        return lambda p: (p["from"].full == jid and p["type"] == "available"
                          and (status is None or p["status"] == status))

    def request_from(jid):
        return lambda p: p["type"] == "subscribe" and p["from"].bare == jid

    async def scenario():
        async with Clients(pr) as cp, Clients(ej) as ce:
            a = await cp.login("sub", "p", available=True, roster=True)
            b = await ce.login("sub", "e", available=True, roster=True)
            ab, bb = a.boundjid.bare, b.boundjid.bare
            a.send_presence(pto=bb, ptype="subscribe")
            await b.next_presence(request_from(ab), FIRST)
            b.send_presence(pto=ab, ptype="subscribed")
            await a.next_presence(avail_from(b.boundjid.full), FIRST)
            await wait_subscription(a, bb, "to")
            b.send_presence(pto=ab, ptype="subscribe")
            await a.next_presence(request_from(bb))
            a.send_presence(pto=bb, ptype="subscribed")
            await b.next_presence(avail_from(a.boundjid.full))
            await wait_subscription(a, bb, "both")
            await wait_subscription(b, ab, "both")
            # Presence changes, both ways.
            a.send_presence(pstatus="from prosody")
            await b.next_presence(avail_from(a.boundjid.full, "from prosody"))
            b.send_presence(pstatus="from ejabberd")
            await a.next_presence(avail_from(b.boundjid.full, "from ejabberd"))
            # A new session of each gets the other's presence by probe.
            a2 = await cp.login("sub", "p2", available=True)
            await a2.next_presence(avail_from(b.boundjid.full, "from ejabberd"))
            b2 = await ce.login("sub", "e2", available=True)
            await b2.next_presence(avail_from(a.boundjid.full, "from prosody"))
            # And a session that leaves is seen leaving on the other side.
            await b2.close()
            await a.next_presence(lambda p: p["from"].full == b2.boundjid.full and p["type"] == "unavailable")

    run(scenario(), 90)


def test_iq_round_trips(net):
    """XEP-0199 pings from a user of each server to the other server, answered there."""
    pr, ej = peers_of(net)

    async def scenario():
        async with Clients(pr) as cp, Clients(ej) as ce:
            a = await cp.login("iq", "p")
            b = await ce.login("iq", "e")
            r = await a.ping_jid(ej.domain, timeout=FIRST)
            assert (r["type"], r["from"].full) == ("result", ej.domain)
            r = await b.ping_jid(pr.domain, timeout=FIRST)
            assert (r["type"], r["from"].full) == ("result", pr.domain)

    run(scenario(), 60)


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
