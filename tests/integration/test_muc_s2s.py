"""
Occupants from other servers in starling's rooms (XEP-0045 over s2s): the chat service
(conference.<domain>) is a server of its own to peers, with streams of its own in both
directions, authenticated for it (SASL EXTERNAL with a certificate of the test CA that
names it, or dialback as it with self-signed ones).

With a real Prosody and a real ejabberd (peers.py; each mode of authentication): a user
of each, on a slixmpp client, joins a room on starling beside a starling user; each sees the other's presence
(the newcomer its self-presence with 110), both exchange groupchat messages, private
messages go both ways through the room, the remote user changes nick (303), leaves,
and comes back to lose its session, which the room sees as unavailable presence. And
the other way: a starling user in a room of Prosody's chat service (its Component
"muc"), which is starling's outgoing side to a remote room (groupchat to the user's
full JID, its session's end told to the room).

Between two starling nodes (a.test holds the room and one occupant, b.test four): b.test
advertises XEP-0033, so a groupchat message to the four crosses s2s as one multicast
stanza (bcc: their full JIDs) that b.test expands; each occupant gets each message
exactly once. The XEP-0033 counters of each s2s thread's log line at exit say what
crossed. When b.test dies (its processes killed) with its users in the room, the next
groupchat messages cannot reach it: a.test's s2s returns the room's fan-out as one error
per occupant, and the room removes each (unavailable with 333 to alice), once, with a
bounded number of stanzas returned (the removals' own broadcasts fail too and end).
"""
import asyncio
import os
import re
import signal

import pytest
from slixmpp.xmlstream import ET as SET

from conftest import Server, _stop_cleanly, free_port
from slixclient import Clients, run

FIRST = 30.0
NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_OWNER = NS_MUC + "#owner"


def codes(p):
    x = p.xml.find(f"{{{NS_USER}}}x")
    return set() if x is None else {int(c.get("code")) for c in x.findall(f"{{{NS_USER}}}status")}


def user_item(p):
    x = p.xml.find(f"{{{NS_USER}}}x")
    return None if x is None else x.find(f"{{{NS_USER}}}item")


def from_occ(room, nick, ptype="available"):
    return lambda p: p["from"].full == f"{room}/{nick}" and p["type"] == ptype


async def join(c, room, nick, timeout=FIRST):
    """The join; returns the self-presence (110)."""
    c.send_raw(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'/></presence>")
    p = await c.next_presence(lambda p: p["from"].full == f"{room}/{nick}" and
                              (p["type"] == "error" or 110 in codes(p)), timeout)
    assert p["type"] != "error", str(p)
    return p


async def create(c, room, nick):
    """A new instant room owned by c (§10.1.2)."""
    p = await join(c, room, nick)
    assert 201 in codes(p), str(p)  # new, and locked until its owner's form
    iq = c.make_iq_set(ito=room)
    iq.append(SET.fromstring(f"<query xmlns='{NS_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query>"))
    await iq.send(timeout=FIRST)


async def groupchat(sender, room, body, *receivers, timeout=FIRST):
    """sender's message reaches every receiver (sender's own echo among them when
    listed) from its room JID."""
    sender.send_message(mto=room, mbody=body, mtype="groupchat")
    got = []
    for r in receivers:
        m = await r.next_message(lambda m: m["body"] == body, timeout)
        assert m["type"] == "groupchat"
        got.append(m)
    return got


# ---- with Prosody -----------------------------------------------------------------------

HOME = "starling.test"
PEER = "prosody.test"
EJABBERD = "ejabberd.test"
MUC = f"conference.{HOME}"


@pytest.fixture(scope="module", params=["ca", "self-signed"])
def net(request, make_federation):
    net = make_federation()
    net.home = net.starling(HOME, "127.0.0.44", accounts={"sue": "sue-pw", "sam": "sam-pw"},
                            certs=request.param)
    net.peer = net.prosody(PEER, "127.0.0.45", accounts={"pat": "pat-pw", "pia": "pia-pw", "pam": "pam-pw"},
                           certs=request.param, muc=True)
    net.ejabberd(EJABBERD, "127.0.0.46", accounts={"pat": "pat-pw", "pia": "pia-pw"}, certs=request.param)
    yield net.start()
    net.close()


@pytest.fixture(params=["prosody", "ejabberd"])
def remote(request, net):
    return next(p for p in net.peers if p.kind == request.param)


def test_remote_user_in_a_starling_room(net, remote):
    room = f"orchard-{remote.kind}-{net.home.certs}@{MUC}"

    async def go():
        async with Clients(net.home) as ch, Clients(remote) as cp:
            sue = await ch.login("sue", "desk", available=True)
            pat = await cp.login("pat", "phone", available=True)
            await create(sue, room, "sue")

            # The remote join: the occupant already there, then its own presence, 110.
            pat.send_raw(f"<presence to='{room}/pat'><x xmlns='{NS_MUC}'/></presence>")
            p = await pat.next_presence(from_occ(room, "sue"), FIRST)
            assert user_item(p).get("affiliation") == "owner"
            p = await pat.next_presence(from_occ(room, "pat"), FIRST)
            assert 110 in codes(p), str(p)
            assert user_item(p).get("role") == "participant"
            p = await sue.next_presence(from_occ(room, "pat"), FIRST)
            assert 110 not in codes(p)
            assert user_item(p).get("jid") == pat.boundjid.full  # the owner sees real JIDs

            # Groupchat both ways, each to both (the sender's echo too).
            await groupchat(sue, room, "hello from starling", sue, pat)
            await groupchat(pat, room, "hello from prosody", sue, pat)
            pat.send_message(mto=room, mbody="again", mtype="groupchat")
            m = await sue.next_message(lambda m: m["body"] == "again", FIRST)
            assert m["from"].full == f"{room}/pat"

            # Private messages through the room, both ways (§7.5).
            pat.send_message(mto=f"{room}/sue", mbody="psst", mtype="chat")
            m = await sue.next_message(lambda m: m["body"] == "psst", FIRST)
            assert m["from"].full == f"{room}/pat"
            sue.send_message(mto=f"{room}/pat", mbody="what", mtype="chat")
            m = await pat.next_message(lambda m: m["body"] == "what", FIRST)
            assert m["from"].full == f"{room}/sue"
            assert m["to"].full == pat.boundjid.full

            # Nick change (§7.6): unavailable with 303 and the new nick, then the new one.
            pat.send_raw(f"<presence to='{room}/peter'/>")
            for c, own in ((sue, False), (pat, True)):
                p = await c.next_presence(from_occ(room, "pat", "unavailable"), FIRST)
                assert 303 in codes(p) and user_item(p).get("nick") == "peter", str(p)
                assert (110 in codes(p)) == own
                p = await c.next_presence(from_occ(room, "peter"), FIRST)
                assert (110 in codes(p)) == own
            await groupchat(pat, room, "as peter", sue)
            m = (await groupchat(sue, room, "hi peter", pat))[0]
            assert m["from"].full == f"{room}/sue"

            # Leaving (§7.14).
            pat.send_raw(f"<presence to='{room}/peter' type='unavailable'/>")
            p = await pat.next_presence(from_occ(room, "peter", "unavailable"), FIRST)
            assert 110 in codes(p)
            await sue.next_presence(from_occ(room, "peter", "unavailable"), FIRST)
            sue.send_message(mto=room, mbody="after pat left", mtype="groupchat")
            await sue.next_message(lambda m: m["body"] == "after pat left", FIRST)
            with pytest.raises(AssertionError):
                await pat.next_message(lambda m: m["body"] == "after pat left", 2.0)

            # A session's end: the remote server tells the rooms it joined (directed
            # presence).
            pia = await cp.login("pia", "tablet", available=True)
            await join(pia, room, "pia")
            await sue.next_presence(from_occ(room, "pia"), FIRST)
            await pia.close()
            await sue.next_presence(from_occ(room, "pia", "unavailable"), FIRST)

    run(go(), timeout=150)
    assert not net.home.sanitizer_reports()


def test_starling_user_in_a_prosody_room(net):
    """The other way: a room of Prosody's chat service (Component "muc"), whose stanzas
    to a starling occupant come to its full JID over Prosody's stream from
    conference.prosody.test."""
    room = f"barn-{net.home.certs}@conference.{PEER}"

    async def go():
        async with Clients(net.home) as ch, Clients(net.peer) as cp:
            pam = await cp.login("pam", "laptop", available=True)
            sam = await ch.login("sam", "desk", available=True)
            await create(pam, room, "pam")
            p = await join(sam, room, "sam")
            assert p["to"].full == sam.boundjid.full
            await pam.next_presence(from_occ(room, "sam"), FIRST)
            await groupchat(pam, room, "hi from prosody", pam, sam)
            m = (await groupchat(sam, room, "hi from starling", pam, sam))[0]
            assert m["from"].full == f"{room}/sam"
            sam.send_message(mto=f"{room}/pam", mbody="psst", mtype="chat")
            m = await pam.next_message(lambda m: m["body"] == "psst", FIRST)
            assert m["from"].full == f"{room}/sam"
            pam.send_message(mto=f"{room}/sam", mbody="yes", mtype="chat")
            m = await sam.next_message(lambda m: m["body"] == "yes", FIRST)
            assert m["from"].full == f"{room}/pam"
            sam.send_raw(f"<presence to='{room}/sam' type='unavailable'/>")
            p = await sam.next_presence(from_occ(room, "sam", "unavailable"), FIRST)
            assert 110 in codes(p)
            await pam.next_presence(from_occ(room, "sam", "unavailable"), FIRST)
            # Back in, then the session ends: starling tells the room (directed presence).
            await join(sam, room, "sam")
            await pam.next_presence(from_occ(room, "sam"), FIRST)
            await sam.close()
            await pam.next_presence(from_occ(room, "sam", "unavailable"), FIRST)

    run(go(), timeout=150)


# ---- between two starling nodes: XEP-0033 ---------------------------------------------------

OCCUPANTS = ["bob", "carol", "dave", "erin"]
MESSAGES = 3


def _node(tmp, domain, s2s_port, routes, **s2s):
    accounts = {u: f"{u}-pw" for u in ["alice"] + OCCUPANTS}
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


def _room_between_nodes(tmp_path, b_s2s):
    pa, pb = free_port(), free_port()
    # The chat service is reached where its domain is (dialback asks it as the
    # authoritative server of conference.a.test).
    routes = [f"a.test=127.0.0.1:{pa}", f"conference.a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp_path, "a.test", pa, routes)
    b = _node(tmp_path, "b.test", pb, routes, **b_s2s)
    a.start()
    b.start()
    room = "lounge@conference.a.test"
    try:
        async def go():
            async with Clients(a) as ca, Clients(b) as cb:
                alice = await ca.login("alice", "pc", available=True)
                await create(alice, room, "alice")
                occ = []
                for u in OCCUPANTS:
                    c = await cb.login(u, "pc", available=True)
                    await join(c, room, u)
                    # everyone already in sees the newcomer once it is in
                    for x in [alice] + occ:
                        await x.next_presence(from_occ(room, u), FIRST)
                    occ.append(c)
                for i in range(MESSAGES):
                    await groupchat(alice, room, f"m{i}", alice, *occ)
                await asyncio.sleep(0.5)
                for c in occ:  # each got each message once, to its own full JID
                    extra = [m["body"] for m in c.no_pending_messages()]
                    assert extra == [], f"{c.boundjid}: more messages: {extra}"
                # Leaving in order, each seen by those still there.
                for k, c in enumerate(occ):
                    c.send_raw(f"<presence to='{room}/{OCCUPANTS[k]}' type='unavailable'/>")
                    await c.next_presence(from_occ(room, OCCUPANTS[k], "unavailable"), FIRST)
                    for x in [alice] + occ[k + 1:]:
                        await x.next_presence(from_occ(room, OCCUPANTS[k], "unavailable"), FIRST)
                await asyncio.sleep(0.5)
                for c in occ:
                    assert c.no_pending_messages() == []

        run(go(), timeout=150)
    finally:
        _stop_cleanly(a)
        _stop_cleanly(b)
    return a, b


def test_room_messages_cross_once_per_remote_server(tmp_path):
    a, b = _room_between_nodes(tmp_path, {})
    assert "b.test multicasts (XEP-0033) through b.test" in a.log_text()
    sent, carried, saved, saved_bytes, _, _ = _counters(a)
    # Multicast where the room sends one stanza to two or more occupants of b.test:
    # dave's and erin's arrival (to 2, 3), each message (to 4), bob's and carol's
    # leaving (to 3, 2); the rest (to one occupant, or its own presence) one by one.
    want = (2 + MESSAGES + 2, 2 + 3 + 4 * MESSAGES + 3 + 2)
    assert (sent, carried) == want, (sent, carried)
    assert saved == carried - sent and saved_bytes > 0
    assert _counters(b)[4:] == want


def test_room_messages_one_per_occupant_without_multicast(tmp_path):
    """b.test without XEP-0033 (s2s.multicast_max = 0): one stanza per occupant, and
    each occupant still gets each message once."""
    a, b = _room_between_nodes(tmp_path, {"multicast_max": 0})
    assert "multicasts (XEP-0033)" not in a.log_text()
    assert _counters(a)[:2] == (0, 0)
    assert _counters(b)[4:] == (0, 0)


def _kill(node):
    """The node's processes killed (SIGKILL, the supervisor first so that it restarts
    nothing): its users' sessions end without a word to anyone, its port refuses."""
    kids = list(node.children().values())
    os.kill(node.proc.pid, signal.SIGKILL)
    node.proc.wait()
    for pid in kids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _returned(node):
    """Stanzas returned by each s2s thread (its log line at exit), summed."""
    m = re.findall(r"stanzas sent \d+, received \d+, returned (\d+);", node.log_text())
    assert m, f"no s2s counters in the log of {node.name}:\n{node.log_tail()}"
    return sum(int(x) for x in m)


def test_occupants_of_an_unreachable_server_are_removed(tmp_path):
    """XEP-0045 status 333: b.test is killed while bob, carol, dave and erin are in
    alice's room on a.test; groupchat messages to the room then cannot reach b.test, the
    room's fan-out comes back as errors from their JIDs, and the room removes them:
    alice gets each one's unavailable presence with 333 within a bounded time, exactly
    once, and a.test returns a bounded number of stanzas (nothing loops)."""
    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"conference.a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp_path, "a.test", pa, routes)
    b = _node(tmp_path, "b.test", pb, routes)
    b.expect_stable = False
    a.start()
    b.start()
    room = "lounge@conference.a.test"
    sent = 0
    try:
        async def go():
            nonlocal sent
            loop = asyncio.get_running_loop()
            async with Clients(a) as ca:
                alice = await ca.login("alice", "pc", available=True)
                await create(alice, room, "alice")
                cb = Clients(b)
                await cb.__aenter__()
                occ = []
                for u in OCCUPANTS:
                    c = await cb.login(u, "pc", available=True)
                    await join(c, room, u)
                    await alice.next_presence(from_occ(room, u), FIRST)
                    occ.append(c)
                await groupchat(alice, room, "before", alice, *occ)
                _kill(b)
                try:
                    await asyncio.wait_for(cb.__aexit__(None, None, None), 10)
                except Exception:
                    pass  # its clients' server is gone: their ends fail, as expected
                # A message a second until all four are gone (the first ones may go
                # into the dying stream before a.test sees it closed).
                gone = {}
                deadline = loop.time() + 40
                while len(gone) < len(OCCUPANTS):
                    assert loop.time() < deadline, f"removed within 40 s: {sorted(gone)}"
                    alice.send_message(mto=room, mbody=f"after{sent}", mtype="groupchat")
                    sent += 1
                    step = min(loop.time() + 1.0, deadline)
                    while len(gone) < len(OCCUPANTS) and loop.time() < step:
                        try:
                            p = await alice.next_presence(
                                lambda p: p["type"] == "unavailable" and p["from"].bare == room,
                                step - loop.time())
                        except AssertionError:
                            break
                        nick = p["from"].resource
                        assert nick not in gone, f"{nick} removed twice"
                        gone[nick] = codes(p)
                assert set(gone) == set(OCCUPANTS), gone
                for nick, c in gone.items():
                    assert 333 in c and 307 not in c and 110 not in c, (nick, c)
                # The room goes on: alice's next message comes back to her, and nobody
                # leaves again.
                await asyncio.sleep(2)
                await groupchat(alice, room, "alone", alice)
                await asyncio.sleep(1)
                while not alice.presences.empty():
                    p = alice.presences.get_nowait()
                    assert not (p["type"] == "unavailable" and p["from"].bare == room), str(p)

        run(go(), timeout=150)
    finally:
        _stop_cleanly(a)
        b.stop()
    removed = re.findall(r"leaves lounge@conference\.a\.test: its server or client returned",
                         a.log_text())
    assert len(removed) == len(OCCUPANTS), a.log_tail()
    # What came back: four errors per message sent while they were in, the removals'
    # broadcasts to those still listed (3 + 2 + 1) and each one's own unavailable (4).
    n = _returned(a)
    assert len(OCCUPANTS) <= n <= len(OCCUPANTS) * sent + 6 + 4, (n, sent)
