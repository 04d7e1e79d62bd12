"""
What a starling node keeps about remote parties, against a real Prosody and a real
ejabberd (peers.py): presence probes after a restart of either side, a remote contact in
the roster across a restart of starling, blocking a remote JID (XEP-0191) and offline
messages (XEP-0160) each way.

These tests restart servers, so they have a Federation of their own rather than
test_federation.py's module-scoped one (a restart there would cut the streams other
tests are using). One certificate mode: self-signed, so every stream is dialback
(XEP-0220), the common case on the public network and the one a restart stresses: the
peer's new streams to a restarted starling are verified with the dialback secret its
new processes load from beside the store, and starling's new streams to a restarted peer are
verified by that peer's new process. The SASL EXTERNAL path is covered by
test_federation.py with the same scenarios of chat and subscription.

Accounts of their own per test and per remote server (rosters, blocklists and offline
messages outlast a test).
"""
import pytest
from slixmpp.exceptions import IqError

from slixclient import Clients, run
from test_federation import FIRST, arrives, error_condition, from_full, subscribe_both, wait_subscription

SCENARIO = 120.0
KINDS = ["prosody", "ejabberd"]
USERS = ["strst", "prst", "roster", "block", "offin", "offout"]
PEER_ACCOUNTS = {u: f"{u}-pw" for u in USERS}
HOME_ACCOUNTS = {f"{u}-{k}": f"{u}-{k}-pw" for u in USERS for k in KINDS}


@pytest.fixture(scope="module")
def net(make_federation):
    net = make_federation()
    net.home = net.starling("starling.test", "127.0.0.20", accounts=HOME_ACCOUNTS, certs="self-signed")
    net.prosody("prosody.test", "127.0.0.21", accounts=PEER_ACCOUNTS, certs="self-signed")
    net.ejabberd("ejabberd.test", "127.0.0.22", accounts=PEER_ACCOUNTS, certs="self-signed")
    yield net.start()
    net.close()


@pytest.fixture(params=KINDS)
def pair(request, net):
    """(the starling node, the remote server)."""
    return net.home, next(p for p in net.peers if p.kind == request.param)


def local(remote, user):
    return f"{user}-{remote.kind}"


def drain(queue):
    """What a client's queue holds now, taken out."""
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def befriend(cs, cp, a_user, b_user):
    """a (starling) and b (remote) subscribed both ways, then both sessions closed (b
    seeing a's end), so that what comes next is presence of new sessions. Returns their
    bare JIDs."""
    a = await cs.login(a_user, "s0", available=True, roster=True)
    b = await cp.login(b_user, "p0", available=True, roster=True)
    await subscribe_both(a, b)
    await a.close()
    await b.next_presence(from_full(a.boundjid.full, "unavailable"), FIRST)
    await b.close()
    return a.boundjid.bare, b.boundjid.bare


def test_probe_after_starling_restart(pair):
    """After starling restarts, a new session's initial presence probes the remote
    contact (RFC 6121 §4.3) and gets its presence over the new streams, and the contact
    sees the starling user come back (§4.2.2)."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            abare, bbare = await befriend(cs, cp, local(peer, "strst"), "strst")
            b = await cp.login("strst", "p1", available=True, roster=True)
            b.send_presence(pstatus="remote, before the restart")
            # Answered by the starling user's shard after that presence (to nobody online):
            # nothing of b's is left in flight to come in after the restart by itself.
            await b.ping_jid(abare, timeout=FIRST)
            st.restart()
            a = await cs.login(local(peer, "strst"), "s1", available=True, roster=True)
            await arrives(a.next_presence(from_full(b.boundjid.full, status="remote, before the restart"),
                                          FIRST), a)
            await arrives(b.next_presence(from_full(a.boundjid.full), FIRST), a)
            # And live presence flows both ways on the streams opened since.
            a.send_presence(pstatus="starling, after")
            await b.next_presence(from_full(a.boundjid.full, status="starling, after"), FIRST)
            b.send_presence(pstatus="remote, after")
            await a.next_presence(from_full(b.boundjid.full, status="remote, after"), FIRST)

    run(scenario(), SCENARIO)


def test_probe_after_remote_restart(pair):
    """The other side: the remote server restarts while the starling user stays online.
    The remote user's new session probes starling and gets the starling user's presence,
    and the starling user sees the remote user come back: starling noticed its old
    streams to the peer are gone and opens new ones to answer."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            abare, bbare = await befriend(cs, cp, local(peer, "prst"), "prst")
            a = await cs.login(local(peer, "prst"), "s1", available=True, roster=True)
            a.send_presence(pstatus="starling, across the restart")
            await a.next_presence(from_full(a.boundjid.full, status="starling, across the restart"))
            # The peer answers this (result or error) after it handled that presence (to
            # nobody online): none of it is left in flight to reach the peer after its restart.
            try:
                await a.ping_jid(bbare, timeout=FIRST)
            except IqError:
                pass
            peer.restart()
            b = await cp.login("prst", "p1", available=True, roster=True)
            assert b.client_roster[abare]["subscription"] == "both"
            await arrives(b.next_presence(from_full(a.boundjid.full, status="starling, across the restart"),
                                          FIRST), a)
            await arrives(a.next_presence(from_full(b.boundjid.full), FIRST), a)
            b.send_presence(pstatus="remote, after")
            await a.next_presence(from_full(b.boundjid.full, status="remote, after"), FIRST)

    run(scenario(), SCENARIO)


def test_remote_contact_in_roster_across_restart(pair):
    """starling's roster keeps the remote item with subscription 'both' (and nothing
    pending) after the node restarts, and the remote side's roster still says 'both' of
    the starling user."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            abare, bbare = await befriend(cs, cp, local(peer, "roster"), "roster")
            st.restart()
            a = await cs.login(local(peer, "roster"), "s1", roster=True)
            await wait_subscription(a, bbare, "both", timeout=1)
            assert a.client_roster[bbare]["pending_in"] is False
            assert list(a.client_roster.keys()) == [bbare]
            b = await cp.login("roster", "p1", roster=True)
            await wait_subscription(b, abare, "both", timeout=1)

    run(scenario(), SCENARIO)


def test_block_remote_jid(pair):
    """XEP-0191 on the starling side against a remote contact: the block sends it the
    user's unavailable presence; while blocked its message and iq are refused with
    service-unavailable back across the federation, and presence no longer flows either
    way; after the unblock the contact gets the user's current presence, and messages and
    presence flow again."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = cs.new(local(peer, "block"), "s")
            a.register_plugin("xep_0191")
            await a.start()
            await a.get_roster()
            await a.available()
            b = await cp.login("block", "p", available=True, roster=True)
            await subscribe_both(a, b)
            abare, bbare = a.boundjid.bare, b.boundjid.bare
            await a.plugin["xep_0191"].block(bbare, timeout=FIRST)
            p = await b.next_presence(from_full(a.boundjid.full, "unavailable"), FIRST)
            assert p["to"].bare == bbare

            a.send_presence(pstatus="while blocked")
            await a.next_presence(from_full(a.boundjid.full, status="while blocked"))
            b.send_presence(pstatus="remote while blocked")
            for to in (abare, a.boundjid.full):
                b.send_message(mto=to, mbody="let me in", mtype="chat")
                m = await b.next_message(lambda m: m["type"] == "error", FIRST)
                assert m["from"].full == to
                assert error_condition(m) == ("cancel", ["service-unavailable"])
            with pytest.raises(IqError) as e:
                await b.ping_jid(a.boundjid.full, timeout=FIRST)
            assert error_condition(e.value.iq) == ("cancel", ["service-unavailable"])
            # The errors came back from a's shard after it handled everything b sent
            # before them, and after a's own presence broadcast: nothing crossed.
            await a.ping_jid(abare)  # a's shard, after b's presence: its deliveries are out
            assert [m["body"] for m in a.no_pending_messages()] == []
            seen_by_a = [p["status"] for p in drain(a.presences) if p["from"].bare == bbare]
            assert "remote while blocked" not in seen_by_a
            seen_by_b = [p["status"] for p in drain(b.presences) if p["from"].bare == abare]
            assert "while blocked" not in seen_by_b
            drain(b.errors)  # the refusals above, also queued there

            await a.plugin["xep_0191"].unblock(bbare, timeout=FIRST)
            await b.next_presence(from_full(a.boundjid.full, status="while blocked"), FIRST)
            a.send_presence(pstatus="after")
            await b.next_presence(from_full(a.boundjid.full, status="after"), FIRST)
            b.send_presence(pstatus="remote after")
            await a.next_presence(from_full(b.boundjid.full, status="remote after"), FIRST)
            b.send_message(mto=abare, mbody="through again", mtype="chat")
            m = await arrives(a.next_message(timeout=FIRST), b)
            assert (m["from"].full, m["body"]) == (b.boundjid.full, "through again")

    run(scenario(), SCENARIO)


def test_offline_message_from_a_remote_user(pair):
    """The starling user is offline: a remote user's chat message is stored (XEP-0160)
    and delivered at the next login with a delay (XEP-0203) stamped by starling."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            abare = st.jid(local(peer, "offin"))
            b = await cp.login("offin", "p", available=True)
            b.send_message(mto=abare, mbody="while you were out", mtype="chat")
            # Answered in the user's shard after the message: it is stored by then.
            r = await b.ping_jid(abare, timeout=FIRST)
            assert r["type"] == "result"
            a = cs.new(local(peer, "offin"), "s")
            a.register_plugin("xep_0203")
            await a.start()
            await a.available()
            m = await a.next_message(timeout=FIRST)
            assert (m["type"], m["from"].full, m["body"]) == ("chat", b.boundjid.full, "while you were out")
            assert m["delay"]["from"].full == st.domain
            assert m["delay"]["stamp"] is not None

    run(scenario(), SCENARIO)


def test_offline_message_to_a_remote_user(pair):
    """The other way: starling sends a message to a remote user who is offline; the peer
    stores it (both do XEP-0160) and the user gets it at login, from the starling
    user."""
    st, peer = pair

    async def scenario():
        async with Clients(st) as cs, Clients(peer) as cp:
            a = await cs.login(local(peer, "offout"), "s", available=True)
            bbare = peer.jid("offout")
            a.send_message(mto=bbare, mbody="for when you are back", mtype="chat")
            # Whatever the peer answers (ping of an offline account's bare JID), it
            # answers after it handled the message on the same stream.
            try:
                await a.ping_jid(bbare, timeout=FIRST)
            except IqError:
                pass
            assert [m for m in a.no_pending_messages() if m["type"] == "error"] == []
            b = cp.new("offout", "p")
            b.register_plugin("xep_0203")
            await b.start()
            await b.available()
            m = await b.next_message(timeout=FIRST)
            assert (m["type"], m["from"].full, m["body"]) == ("chat", a.boundjid.full, "for when you are back")
            assert m["delay"]["stamp"] is not None

    run(scenario(), SCENARIO)
