"""
Federation between two starling nodes on loopback (domains a.test and b.test, each its
own process tree), found through s2s.routes, streams both ways over STARTTLS. Every test
runs twice: with self-signed certificates neither node can verify (the streams
authenticate with Server Dialback, XEP-0220), and with certificates of a test CA both
trust (SASL EXTERNAL, XEP-0178). Real slixmpp clients on each side.
"""
import asyncio

import pytest
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

from conftest import Server, _stop_cleanly, free_port
from im import connect, is_message
from slixclient import Clients, run

FIRST = 20.0  # the first stanza to a domain makes the streams: TCP, TLS, dialback both ways


def _node(tmp, domain, s2s_port, routes, ca, threads=1, expect_stable=True, **s2s_opts):
    s2s = {"listen": f"127.0.0.1:{s2s_port}", "routes": routes, "threads": threads,
           **s2s_opts}
    if ca:
        s2s["ca_file"] = str(ca / "ca.crt")
    s = Server(tmp / domain, name=domain, s2s=s2s, expect_stable=expect_stable)
    s.domain = domain
    s.setup()
    if ca:
        s.ctl("gencert", "--ca", str(ca))  # replaces the self-signed one
        s.cert = ca / "ca.crt"  # what its clients trust
    return s


@pytest.fixture(scope="module", params=["dialback", "external"])
def pair(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s")
    pa, pb, dead = free_port(), free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}",
              f"dead.test=127.0.0.1:{dead}"]
    ca = tmp / "ca" if request.param == "external" else None
    a = _node(tmp, "a.test", pa, routes, ca)
    # Two s2s threads on b: an inbound stream may land on a thread that does not own
    # the peer's domain, which then verifies dialback keys over a stream of its own.
    b = _node(tmp, "b.test", pb, routes, ca, threads=2)
    a.start()
    b.start()
    a.mode = b.mode = request.param
    yield a, b
    _stop_cleanly(a)
    _stop_cleanly(b)


def test_streams_authenticate_as_the_certificates_allow(pair):
    """Both directions authenticated, by dialback or by SASL EXTERNAL as the mode says
    (the first test of each mode makes the streams)."""
    a, b = pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "auth")
            bob = await cb.login("bob", "auth", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="auth", mtype="chat")
            await bob.next_message(lambda m: m["body"] == "auth", timeout=FIRST)
            bob.send_message(mto=alice.boundjid.full, mbody="back", mtype="chat")
            await alice.next_message(lambda m: m["body"] == "back", timeout=FIRST)

    run(go(), timeout=60)
    la, lb = a.log_text(), b.log_text()
    if a.mode == "external":
        peer_in, we_out = "with its certificate (SASL EXTERNAL)", "with our certificate (SASL EXTERNAL)"
        other = "(dialback)"
    else:
        peer_in, we_out, other = "may send to", "accepted us as", "SASL EXTERNAL"
    # a.test spoke first, over a stream of its own that b.test authenticated.
    assert we_out in la and peer_in in lb, a.log_tail() + b.log_tail()
    # b.test's answer: over a stream of its own, or back over a.test's (XEP-0288) when
    # that landed on the b.test thread that owns a.test.
    assert (we_out in lb and peer_in in la) or "bidi stream with a.test" in lb, b.log_tail()
    assert other not in la + lb


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


def test_subscription_both_ways_and_presence(pair):
    """RFC 6121 §3 across servers: alice@a.test and carol@b.test subscribe to each other;
    each roster ends with 'both', each sees the other's presence come and go (the
    broadcast reaches the remote server as one fan-out frame, written per contact there),
    and a new session of carol's is told of alice by the probe its first presence sends."""
    a, b = pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "sub", available=True)
            carol = await cb.login("carol", "sub", available=True)
            aj, cj = alice.boundjid.bare, carol.boundjid.bare
            alice.send_presence(pto=cj, ptype="subscribe")
            p = await carol.next_presence(lambda p: p["type"] == "subscribe", timeout=FIRST)
            assert p["from"].bare == aj
            carol.send_presence(pto=aj, ptype="subscribed")
            await alice.next_presence(lambda p: p["type"] == "subscribed" and p["from"].bare == cj,
                                      timeout=FIRST)
            # Once subscribed, alice hears carol's current presence (§3.1.5).
            await alice.next_presence(lambda p: p["type"] == "available" and p["from"].bare == cj,
                                      timeout=FIRST)
            carol.send_presence(pto=aj, ptype="subscribe")
            await alice.next_presence(lambda p: p["type"] == "subscribe" and p["from"].bare == cj,
                                      timeout=FIRST)
            alice.send_presence(pto=cj, ptype="subscribed")
            await carol.next_presence(lambda p: p["type"] == "available" and p["from"].bare == aj,
                                      timeout=FIRST)
            ra = await alice.get_roster()
            rc = await carol.get_roster()
            assert ra["roster"]["items"][cj]["subscription"] == "both"
            assert rc["roster"]["items"][aj]["subscription"] == "both"

            # A broadcast crosses: carol goes away and comes back on another resource.
            await carol.close()
            await alice.next_presence(lambda p: p["type"] == "unavailable" and p["from"].bare == cj,
                                      timeout=FIRST)
            carol2 = await cb.login("carol", "second", available=True)
            await alice.next_presence(lambda p: p["type"] == "available" and
                                      p["from"] == carol2.boundjid, timeout=FIRST)
            # ... and carol2's initial presence probed alice across, whose answer came back.
            await carol2.next_presence(lambda p: p["type"] == "available" and
                                       p["from"] == alice.boundjid, timeout=FIRST)

    run(go(), timeout=90)


def test_iq_to_a_remote_server_and_a_remote_client(pair):
    """A disco#info to the remote server itself (answered by its router for the domain),
    and a ping to a remote client's full JID answered by that client."""
    a, b = pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "iq")
            dave = await cb.login("dave", "iq")
            iq = alice.make_iq_get(ito=b.domain)
            iq.append(ET.Element("{http://jabber.org/protocol/disco#info}query"))
            info = await iq.send(timeout=FIRST)
            assert info["type"] == "result" and info["from"] == b.domain
            feats = [f.get("var") for f in info.xml.iter("{http://jabber.org/protocol/disco#info}feature")]
            assert "urn:xmpp:ping" in feats
            # dave's client answers it (with an error: it has no ping handler), so the
            # request crossed one way and the answer the other.
            with pytest.raises(IqError) as e:
                await alice.ping_jid(dave.boundjid.full, timeout=FIRST)
            r = e.value.iq
            assert r["from"] == dave.boundjid and r["to"] == alice.boundjid
            assert r["error"]["condition"] == "feature-not-implemented"

    run(go(), timeout=60)


def test_offline_storage_of_a_remote_message(pair):
    """A chat message from a remote user to an offline one is stored (XEP-0160) and
    delivered at the next login, from its remote sender."""
    a, b = pair

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            alice = await ca.login("alice", "off")
            alice.send_message(mto=f"erin@{b.domain}", mbody="while you were out", mtype="chat")
            # A marker that crossed after it: the message reached eve's shard first.
            bob = await cb.login("bob", "off", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="marker", mtype="chat")
            await bob.next_message(lambda m: m["body"] == "marker", timeout=FIRST)
            erin = await cb.login("erin", "off", available=True)
            m = await erin.next_message(lambda m: m["body"] == "while you were out", timeout=FIRST)
            assert m["from"].bare == alice.boundjid.bare

    run(go(), timeout=60)


def test_blocking_a_remote_jid_and_a_remote_domain(pair):
    """XEP-0191 against remote senders: a blocked remote JID's message, then (after
    unblocking it) every JID of a blocked domain, gets service-unavailable back across
    the federation; what is not blocked gets through."""
    a, b = pair
    with connect(b, "dave", "blk") as dave:
        async def send(body, mid):
            async with Clients(a) as ca:
                alice = await ca.login("alice", f"blk{mid}")
                m = alice.make_message(mto=f"dave@{b.domain}", mbody=body, mtype="chat")
                m["id"] = mid
                m.send()
                return await alice.next_message(lambda m: m["id"] == mid, timeout=FIRST)

        assert dave.block(f"alice@{a.domain}").get("type") == "result"
        err = run(send("blocked", "b1"), timeout=60)
        assert err["type"] == "error" and err["error"]["condition"] == "service-unavailable"
        assert dave.unblock(f"alice@{a.domain}").get("type") == "result"
        assert dave.block(a.domain).get("type") == "result"
        err = run(send("domain blocked", "b2"), timeout=60)
        assert err["type"] == "error" and err["error"]["condition"] == "service-unavailable"
        assert dave.unblock(a.domain).get("type") == "result"

        async def through():
            async with Clients(a) as ca:
                alice = await ca.login("alice", "blk3")
                alice.send_message(mto=f"dave@{b.domain}/blk", mbody="unblocked", mtype="chat")
                await asyncio.sleep(0)

        run(through(), timeout=30)
        dave.wait_for(is_message(body="unblocked"), timeout=FIRST, what="the unblocked message")


def test_a_server_that_comes_up_is_tried_at_once(pair, tmp_path):
    """RFC 6120 §8.3 with a transient failure: a stanza for a domain whose server is down
    comes back with remote-server-not-found; once the server is up, the next stanza is
    delivered at once (no failure remembered against it for minutes)."""
    a, _ = pair
    port = next(int(r.rsplit(":", 1)[1]) for r in a.groups["s2s"]["routes"] if r.startswith("dead.test="))

    async def send(alice, mid):
        m = alice.make_message(mto="late@dead.test", mbody=mid, mtype="chat")
        m["id"] = mid
        m.send()

    async def first():
        async with Clients(a) as ca:
            alice = await ca.login("alice", "late")
            await send(alice, "l1")
            e = await alice.next_message(lambda m: m["id"] == "l1", timeout=FIRST)
            assert e["type"] == "error" and e["error"]["condition"] == "remote-server-not-found"

    run(first(), timeout=60)
    late = Server(tmp_path / "late", name="dead.test", accounts={"late": "late-pw"},
                  s2s={"listen": f"127.0.0.1:{port}", "routes": a.groups["s2s"]["routes"]})
    late.domain = "dead.test"
    late.setup()
    late.start()
    try:
        async def second():
            async with Clients(a) as ca, Clients(late) as cl:
                alice = await ca.login("alice", "late2")
                who = await cl.login("late", "up", available=True)
                await send(alice, "l2")
                m = await who.next_message(lambda m: m["body"] == "l2", timeout=FIRST)
                assert m["from"].bare == alice.boundjid.bare

        run(second(), timeout=60)
    finally:
        _stop_cleanly(late)


def test_queue_bound_and_timeout_while_a_stream_is_made(tmp_path):
    """A peer that accepts TCP and then says nothing: stanzas wait for the stream up to
    s2s.max_queue, one more is returned at once with resource-constraint, and when
    s2s.auth_timeout passes every waiting one comes back with remote-server-timeout.
    Then the bound is lowered by a reload (SIGHUP): s2s takes the new one at once."""
    import os
    import signal
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    node = Server(tmp_path / "q", name="q.test",
                  s2s={"listen": "", "routes": [f"silent.test=127.0.0.1:{port}"],
                       "max_queue": 3, "auth_timeout": 2})
    node.domain = "q.test"
    node.setup()
    node.start()
    try:
        async def go(tag):
            async with Clients(node) as cs:
                alice = await cs.login("alice", f"q{tag}")
                for i in range(5):
                    m = alice.make_message(mto="x@silent.test", mbody=f"q{i}", mtype="chat")
                    m["id"] = f"{tag}{i}"
                    m.send()
                errs = {}
                while len(errs) < 5:
                    e = await alice.next_message(lambda m: m["type"] == "error", timeout=FIRST)
                    errs[e["id"]] = e["error"]["condition"]
                return errs

        errs = run(go("a"), timeout=60)
        assert sorted(errs.values()) == ["remote-server-timeout"] * 3 + ["resource-constraint"] * 2
        assert errs["a0"] == errs["a1"] == errs["a2"] == "remote-server-timeout"

        node.conf.write_text(node.conf.read_text().replace("max_queue = 3;", "max_queue = 1;"))
        os.kill(node.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not [l for l in node.log_text().splitlines() if " s2s[" in l and "reloaded" in l]:
            assert time.monotonic() < deadline, node.log_tail()
            time.sleep(0.05)
        errs = run(go("b"), timeout=60)
        assert errs["b0"] == "remote-server-timeout"
        assert [errs[f"b{i}"] for i in range(1, 5)] == ["resource-constraint"] * 4
    finally:
        silent.close()
        _stop_cleanly(node)

def test_unsubscribe_and_cancel_across_servers(pair):
    """RFC 6121 §3.3 and §3.2 across servers: after a mutual subscription, x on a.test
    unsubscribes from y on b.test (x's roster says from, y's to, and x hears y go
    unavailable), then x cancels y's subscription to it (unsubscribed): both rosters say
    none, and y hears x go unavailable."""
    a, b = pair
    (ua,) = a.new_users(1, "us")
    (ub,) = b.new_users(1, "us")

    async def sub(c, jid, state):
        """Until c's roster (slixmpp keeps it from the server's pushes) says state."""
        now = None
        for _ in range(200):
            r = c.client_roster
            now = r[jid]["subscription"] if r.has_jid(jid) else None
            if now == state:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{c.boundjid}: {jid} never became {state}: {now}")

    async def go():
        async with Clients(a) as ca, Clients(b) as cb:
            x = await ca.login(ua, "u", available=True)
            y = await cb.login(ub, "u", available=True)
            await x.get_roster()  # pushes go to resources that asked (RFC 6121 §2.1.6)
            await y.get_roster()
            xj, yj = x.boundjid.bare, y.boundjid.bare
            for asker, approver in ((x, y), (y, x)):
                asker.send_presence(pto=approver.boundjid.bare, ptype="subscribe")
                await approver.next_presence(lambda p: p["type"] == "subscribe", timeout=FIRST)
                approver.send_presence(pto=asker.boundjid.bare, ptype="subscribed")
            await sub(x, yj, "both")
            await sub(y, xj, "both")
            x.send_presence(pto=yj, ptype="unsubscribe")
            await x.next_presence(lambda p: p["type"] == "unavailable" and p["from"].bare == yj,
                                  timeout=FIRST)
            await sub(x, yj, "from")
            await sub(y, xj, "to")
            x.send_presence(pto=yj, ptype="unsubscribed")
            await y.next_presence(lambda p: p["type"] == "unavailable" and p["from"].bare == xj,
                                  timeout=FIRST)
            await sub(x, yj, "none")
            await sub(y, xj, "none")

    run(go(), timeout=90)


def test_s2s_and_router_restarts(tmp_path):
    """The supervisor replaces a killed s2s process (its streams are gone: the next stanza
    each way makes new ones) and a killed router (s2s keeps its streams; what the router
    had not finished is handed to the new one): messages cross both ways after each."""
    import os
    import signal
    import time

    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp_path, "a.test", pa, routes, None, expect_stable=False)
    b = _node(tmp_path, "b.test", pb, routes, None)
    a.start()
    b.start()
    try:
        async def exchange(tag):
            async with Clients(a) as ca, Clients(b) as cb:
                alice = await ca.login("alice", f"r{tag}", available=True)
                bob = await cb.login("bob", f"r{tag}", available=True)
                alice.send_message(mto=bob.boundjid.full, mbody=f"{tag} to b", mtype="chat")
                await bob.next_message(lambda m: m["body"] == f"{tag} to b", timeout=FIRST)
                bob.send_message(mto=alice.boundjid.full, mbody=f"{tag} to a", mtype="chat")
                await alice.next_message(lambda m: m["body"] == f"{tag} to a", timeout=FIRST)

        run(exchange("before"), timeout=60)
        for exe, role in (("starling-s2s", "s2s"), ("starling-router", "router")):
            served = a.log_text().count(f"{role} is serving")
            old = a.children()[exe]
            os.kill(old, signal.SIGKILL)
            a.wait_child_replaced(exe, old)
            deadline = time.monotonic() + 10
            while a.log_text().count(f"{role} is serving") <= served:
                assert time.monotonic() < deadline, a.log_tail()
                time.sleep(0.05)
            time.sleep(0.5)  # b notices that its stream's other end is gone
            run(exchange(exe), timeout=60)
    finally:
        a.stop()
        _stop_cleanly(b)


def test_kill_s2s_with_stanzas_waiting(tmp_path):
    """kill -9 of starling-s2s while stanzas wait for a remote stream (a silent peer holds
    it): the supervisor starts another, the router hands it every stanza the dead one had
    not finished (router/rlog.c), and each still comes back to its sender when the new
    stream times out; the client's session is untouched throughout."""
    import os
    import signal
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    node = Server(tmp_path / "k", name="k.test", expect_stable=False,
                  s2s={"listen": "", "routes": [f"silent.test=127.0.0.1:{port}"],
                       "auth_timeout": 3})
    node.domain = "k.test"
    node.setup()
    node.start()
    try:
        async def go():
            async with Clients(node) as cs:
                alice = await cs.login("alice", "k")
                for i in range(4):
                    m = alice.make_message(mto="x@silent.test", mbody=f"k{i}", mtype="chat")
                    m["id"] = f"k{i}"
                    m.send()
                # They are with s2s now, waiting for the silent peer's stream.
                deadline = time.monotonic() + 5
                while "s2s is serving" not in node.log_text():
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                served = node.log_text().count("s2s is serving")
                old = node.children()["starling-s2s"]
                os.kill(old, signal.SIGKILL)
                while node.log_text().count("s2s is serving") <= served:
                    assert time.monotonic() < deadline + 10, node.log_tail()
                    await asyncio.sleep(0.05)
                errs = {}
                while len(errs) < 4:
                    e = await alice.next_message(lambda m: m["type"] == "error", timeout=FIRST)
                    errs[e["id"]] = e["error"]["condition"]
                assert errs == {f"k{i}": "remote-server-timeout" for i in range(4)}
                assert not alice.gone.done()  # the session lived through it
                r = await alice.ping_server()
                assert r["type"] == "result"

        run(go(), timeout=60)
        assert "stanzas s2s had not finished go to its replacement" in node.log_text()
    finally:
        silent.close()
        node.stop()


@pytest.mark.parametrize("mode", ["dialback", "external"])
def test_authenticated_streams_outlive_the_auth_timeout(tmp_path, mode):
    """s2s.auth_timeout bounds the negotiation only: streams authenticated by dialback or
    by SASL EXTERNAL (whose restart starts a new stream) carry on past it."""
    import time

    pa, pb = free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    ca = tmp_path / "ca" if mode == "external" else None
    a = _node(tmp_path, "a.test", pa, routes, ca, auth_timeout=2)
    b = _node(tmp_path, "b.test", pb, routes, ca, auth_timeout=2)
    a.start()
    b.start()
    try:
        async def go():
            async with Clients(a) as ca_, Clients(b) as cb:
                alice = await ca_.login("alice", "t", available=True)
                bob = await cb.login("bob", "t", available=True)
                for i in range(2):
                    alice.send_message(mto=bob.boundjid.full, mbody=f"t{i}", mtype="chat")
                    await bob.next_message(lambda m: m["body"] == f"t{i}", timeout=FIRST)
                    bob.send_message(mto=alice.boundjid.full, mbody=f"u{i}", mtype="chat")
                    await alice.next_message(lambda m: m["body"] == f"u{i}", timeout=FIRST)
                    if i == 0:
                        await asyncio.sleep(3.5)  # past s2s.auth_timeout

        run(go(), timeout=60)
        for node in (a, b):
            assert "connection-timeout" not in node.log_text(), node.log_tail()
    finally:
        _stop_cleanly(a)
        _stop_cleanly(b)
