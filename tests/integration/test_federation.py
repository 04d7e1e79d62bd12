"""
starling in the Federation (peers.py): a starling node federating with a real Prosody and
a real ejabberd, over SASL EXTERNAL when every server holds a certificate of the test CA
and over dialback when each has a self-signed one (one Federation per mode for the
module; every test runs against each peer). Users of each server, on slixmpp clients,
do across servers what RFC 6120 and RFC 6121 promise them: messages both ways, the
subscription handshake both ways with presence and rosters on both sides, a session's
end seen remotely, iq to a remote user's full JID and to the remote server, and the
errors: remote-server-not-found for a domain that does not exist, the remote server's own
error for a user it does not have.

The scenarios are written for any two servers of a Federation: a home server (net.home)
whose users' accounts are HOME_ACCOUNTS and a remote one with PEER_ACCOUNTS.
test_peers.py runs the same tests between Prosody and ejabberd, each way, so that what
fails here with starling is starling's.
"""
import asyncio
import time

import pytest
from slixmpp.exceptions import IqError

from peers import bound_sockets
from slixclient import Clients, first_of, run

# The first stanza to a domain opens the s2s streams (DNS, TCP, TLS, authentication; for
# dialback a connection back, and the answer may need the stream the other way): seconds
# on a loaded machine.
FIRST = 30.0
SCENARIO = 150.0

USERS = ["chat", "sub", "leave", "iq", "err"]
KINDS = ["prosody", "ejabberd"]
PEER_ACCOUNTS = {u: f"{u}-pw" for u in USERS}
# The home server's side: the users of each test, one set per remote server (rosters
# outlast a test).
HOME_ACCOUNTS = {f"{u}-{k}": f"{u}-{k}-pw" for u in USERS for k in KINDS}
HOME_ACCOUNTS["nxdomain"] = "nxdomain-pw"

DISCO_INFO = "http://jabber.org/protocol/disco#info"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@pytest.fixture(scope="module", params=["ca", "self-signed"])
def net(request, make_federation):
    net = make_federation()
    net.home = net.starling("starling.test", "127.0.0.20", accounts=HOME_ACCOUNTS, certs=request.param)
    net.prosody("prosody.test", "127.0.0.21", accounts=PEER_ACCOUNTS, certs=request.param)
    net.ejabberd("ejabberd.test", "127.0.0.22", accounts=PEER_ACCOUNTS, certs=request.param)
    net.mode = request.param
    yield net.start()
    net.close()  # before the next mode's servers take the same addresses


@pytest.fixture(params=KINDS)
def pair(request, net):
    """(the home server, the remote one)."""
    return net.home, next(p for p in net.peers if p.kind == request.param)


def local(remote, user):
    """The home server's account of `user` for tests against `remote`."""
    return f"{user}-{remote.kind}"


async def arrives(expected, *senders, timeout=FIRST):
    """What `expected` (a client's next_message or next_presence) returns, unless one of
    the senders gets a message or presence error back first (a bounce): the test fails
    at once with it rather than at the timeout."""

    async def bounce(c):
        e = await c.next_error(timeout=timeout + 10)
        raise AssertionError(f"{c.boundjid} got an error back: {e}")

    return await first_of(expected, *(bounce(c) for c in senders))


def from_full(jid, ptype="available", status=None):
    return lambda p: (p["from"].full == jid and p["type"] == ptype
                      and (status is None or p["status"] == status))


def request_from(bare):
    return lambda p: p["type"] == "subscribe" and p["from"].bare == bare


async def wait_subscription(c, jid, state, timeout=FIRST):
    """Until c's roster (slixmpp keeps it from the server's pushes) has jid with this
    subscription state and no pending request of ours."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        roster = c.client_roster
        now = (roster[jid]["subscription"], roster[jid]["pending_out"]) if roster.has_jid(jid) else None
        if now == (state, False):
            return
        assert loop.time() < deadline, f"{c.boundjid}: {jid} is {now!r}, not {state!r}, after {timeout}s"
        await asyncio.sleep(0.05)


async def subscribe_both(a, b):
    """RFC 6121 §3.1 one way and then the other: a asks b, b approves, then b asks a and a
    approves. Each side sees the other's available presence once it may, and both
    rosters end with subscription 'both'. a and b fetched their rosters (roster pushes
    go to interested resources only)."""
    ab, bb = a.boundjid.bare, b.boundjid.bare
    for asker, approver in ((a, b), (b, a)):
        asker.send_presence(pto=approver.boundjid.bare, ptype="subscribe")
        await arrives(approver.next_presence(request_from(asker.boundjid.bare), FIRST), asker)
        approver.send_presence(pto=asker.boundjid.bare, ptype="subscribed")
        # The approver's server sends the approver's presence on approval (§3.1.5).
        await arrives(asker.next_presence(from_full(approver.boundjid.full), timeout=FIRST), approver)
    await wait_subscription(a, bb, "both")
    await wait_subscription(b, ab, "both")


def test_every_server_listens_on_its_own_address_only(net):
    """c2s and s2s on the server's own address and nothing else: no wildcard listener,
    no epmd or Erlang distribution port, no HTTP, no component port, no admin socket;
    dnsmasq on its address and port only."""
    for p in net.peers:
        p.assert_listeners()
    assert bound_sockets(net.dns.process.pids()) == {("tcp", net.dns.address, net.dns.port),
                                                     ("udp", net.dns.address, net.dns.port)}


def test_message_each_way(pair):
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login(local(peer, "chat"), "s", available=True)
            b = await cp.login("chat", "p", available=True)
            a.send_message(mto=b.boundjid.full, mbody=f"to {peer.kind}", mtype="chat")
            m = await arrives(b.next_message(timeout=FIRST), a)
            assert (m["type"], m["from"].full, m["to"].full, m["body"]) == (
                "chat", a.boundjid.full, b.boundjid.full, f"to {peer.kind}")
            b.send_message(mto=a.boundjid.bare, mbody="to starling", mtype="chat")
            m = await arrives(a.next_message(timeout=FIRST), b)
            assert (m["type"], m["from"].full, m["body"]) == ("chat", b.boundjid.full, "to starling")
            # And again, now that the streams exist: in order, each way.
            for i in range(3):
                a.send_message(mto=b.boundjid.full, mbody=f"s{i}", mtype="chat")
                b.send_message(mto=a.boundjid.full, mbody=f"p{i}", mtype="chat")
            assert [(await b.next_message(timeout=FIRST))["body"] for _ in range(3)] == ["s0", "s1", "s2"]
            assert [(await a.next_message(timeout=FIRST))["body"] for _ in range(3)] == ["p0", "p1", "p2"]

    run(scenario(), SCENARIO)


def test_streams_authenticate_as_the_certificates_allow(pair):
    """After the exchange above, starling's streams with the peer, both directions, are
    SASL EXTERNAL (XEP-0178) with the test CA and dialback (XEP-0220) with self-signed
    certificates, and the peer's log agrees where it says."""
    st, peer = pair
    ca = peer.certs == "ca"
    deadline = time.monotonic() + 15
    if ca:
        want = [f"{peer.domain} authenticated with its certificate (SASL EXTERNAL)",
                f"authenticated to {peer.domain} with our certificate (SASL EXTERNAL)"]
    else:
        want = [f"{peer.domain} may send to {st.domain} (dialback)",
                f"{peer.domain} accepted us as {st.domain} (dialback)"]
    while True:
        log = st.log_text()
        missing = [w for w in want if w not in log]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"starling did not log {missing}:\n{st.log_tail()}"
    other = "(dialback)" if ca else "(SASL EXTERNAL)"
    assert not [l for l in log.splitlines() if peer.domain in l and other in l]
    if peer.kind == "ejabberd":
        method = "EXTERNAL" if ca else "dialback"
        peer.wait_log(f"Accepted inbound s2s {method} authentication {st.domain} -> {peer.domain}",
                      f"Accepted outbound s2s {method} authentication {peer.domain} -> {st.domain}")


def test_subscription_handshake_both_ways(pair):
    """subscribe, subscribed, each way; presence seen on both sides, then each one's
    presence changes seen by the other; rosters 'both' on both servers (a session that
    comes later fetches it so)."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login(local(peer, "sub"), "s", available=True, roster=True)
            b = await cp.login("sub", "p", available=True, roster=True)
            await subscribe_both(a, b)
            a.send_presence(pstatus="from starling")
            await arrives(b.next_presence(from_full(a.boundjid.full, status="from starling"), FIRST), a)
            b.send_presence(pstatus=f"from {peer.kind}")
            await arrives(a.next_presence(from_full(b.boundjid.full, status=f"from {peer.kind}"), FIRST), b)
            # New sessions read the rosters each server stored, and learn the contact's
            # presence from a probe to the other server (RFC 6121 §4.3).
            a2 = await cs.login(local(peer, "sub"), "s2", available=True, roster=True)
            await a2.next_presence(from_full(b.boundjid.full, status=f"from {peer.kind}"), FIRST)
            assert a2.client_roster[b.boundjid.bare]["subscription"] == "both"
            b2 = await cp.login("sub", "p2", available=True, roster=True)
            await b2.next_presence(from_full(a.boundjid.full, status="from starling"), FIRST)
            assert b2.client_roster[a.boundjid.bare]["subscription"] == "both"

    run(scenario(), SCENARIO)


def test_unavailable_seen_remotely(pair):
    """A session that ends is seen ending by the contact on the other server (RFC 6121
    §4.5.2: the server sends unavailable for it), each way."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login(local(peer, "leave"), "s", available=True, roster=True)
            b = await cp.login("leave", "p", available=True, roster=True)
            await subscribe_both(a, b)
            a2 = await cs.login(local(peer, "leave"), "s2", available=True)
            await arrives(b.next_presence(from_full(a2.boundjid.full), FIRST), a2)
            await a2.close()
            await b.next_presence(from_full(a2.boundjid.full, "unavailable"), FIRST)
            b2 = await cp.login("leave", "p2", available=True)
            await arrives(a.next_presence(from_full(b2.boundjid.full), FIRST), b2)
            await b2.close()
            await a.next_presence(from_full(b2.boundjid.full, "unavailable"), FIRST)

    run(scenario(), SCENARIO)


async def disco_info(asker, jid):
    iq = asker.make_iq_get(queryxmlns=DISCO_INFO, ito=jid)
    return await iq.send(timeout=FIRST)


def features(result):
    q = result.xml.find(f"{{{DISCO_INFO}}}query")
    return {f.get("var") for f in q.findall(f"{{{DISCO_INFO}}}feature")}


def test_iq_to_a_remote_full_jid(pair):
    """disco#info (XEP-0030) from a user of each server to a session of a user of the
    other (no subscription between them): the remote client answers, and its result
    comes back from its full JID."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = cs.new(local(peer, "iq"), "s")
            b = cp.new("iq", "p")
            for c in (a, b):
                c.register_plugin("xep_0030")  # answers disco#info
                await c.start()
                await c.available()
            r = await disco_info(a, b.boundjid.full)
            assert (r["type"], r["from"].full, r["to"].full) == ("result", b.boundjid.full, a.boundjid.full)
            assert DISCO_INFO in features(r)
            r = await disco_info(b, a.boundjid.full)
            assert (r["type"], r["from"].full, r["to"].full) == ("result", a.boundjid.full, b.boundjid.full)
            assert DISCO_INFO in features(r)

    run(scenario(), SCENARIO)


def test_iq_to_the_remote_server(pair):
    """XEP-0199 ping from a user of each server to the other server, which answers."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login(local(peer, "iq"), "s")
            b = await cp.login("iq", "p")
            r = await a.ping_jid(peer.domain, timeout=FIRST)
            assert (r["type"], r["from"].full) == ("result", peer.domain)
            r = await b.ping_jid(st.domain, timeout=FIRST)
            assert (r["type"], r["from"].full) == ("result", st.domain)

    run(scenario(), SCENARIO)


def error_condition(stanza):
    """(type attribute of <error/>, its defined condition) of an error stanza."""
    err = stanza.xml.find("{jabber:client}error")
    assert err is not None, f"no <error/> in {stanza}"
    conditions = [c.tag.split("}")[1] for c in err if c.tag.startswith(f"{{{STANZAS}}}") and not
                  c.tag.endswith("}text")]
    return err.get("type"), conditions


def test_message_to_a_domain_that_does_not_exist(net):
    """nosuch.test has no DNS records at all (NXDOMAIN): the message comes back from the
    JID it was sent to with remote-server-not-found (RFC 6120 §8.3.3.16), and so does an
    iq."""
    st = net.home

    async def scenario():
        async with Clients(st) as cs:
            a = await cs.login("nxdomain", "s")
            a.send_message(mto="someone@nosuch.test", mbody="anyone?", mtype="chat")
            m = await a.next_message(timeout=FIRST)
            assert (m["type"], m["from"].full, m["to"].full) == ("error", "someone@nosuch.test", a.boundjid.full)
            assert error_condition(m) == ("cancel", ["remote-server-not-found"])
            iq = a.make_iq_get(queryxmlns=DISCO_INFO, ito="nosuch.test")
            with pytest.raises(IqError) as e:
                await iq.send(timeout=FIRST)
            r = e.value.iq
            assert (r["type"], r["from"].full) == ("error", "nosuch.test")
            assert error_condition(r) == ("cancel", ["remote-server-not-found"])

    run(scenario(), SCENARIO)


def test_message_to_an_unknown_remote_user(pair):
    """The remote server has no such user: its error comes back across the federation,
    from the JID the message was sent to (Prosody and ejabberd both answer
    service-unavailable, RFC 6121 §8.5.2.1.1), not one of starling's own."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs:
            a = await cs.login(local(peer, "err"), "s")
            to = f"nobody@{peer.domain}"
            a.send_message(mto=to, mbody="anyone?", mtype="chat")
            m = await a.next_message(timeout=FIRST)
            assert (m["type"], m["from"].full, m["to"].full) == ("error", to, a.boundjid.full)
            assert error_condition(m) == ("cancel", ["service-unavailable"])

    run(scenario(), SCENARIO)
