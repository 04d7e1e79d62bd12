"""
Stream management (XEP-0198, urn:xmpp:sm:3): acknowledgements with exact h counts both
ways, resumption after the TCP connection is cut without a close (an RST), a bad or
another user's previd, the end of a session that is not resumed in time (its messages
in offline storage, its iq requests answered with errors, its contacts told it is
gone), resumption after the router was killed, and slixmpp's own xep_0198 plugin.

Raw clients count what they receive themselves (SMPeer.h) so the counts the server
writes are checked against the stanzas that actually crossed the wire.
"""
import asyncio
import os
import re
import signal
import socket
import struct
import time
import xml.etree.ElementTree as ET

import pytest

import slixclient
from im import Peer, befriend, is_message, is_presence, new_id
from rawxmpp import NS_CLIENT, NS_STANZAS, NS_STREAM, StreamClosed, q

NS_SM = "urn:xmpp:sm:3"
NS_CSI = "urn:xmpp:csi:0"
STANZAS = {q(NS_CLIENT, n) for n in ("message", "presence", "iq")}


class SMPeer(Peer):
    """A Peer that counts the stanzas it receives once SM is enabled (self.h), as a
    client must for its <a/> and <resume/>."""

    def __init__(self, server, **kw):
        super().__init__(server, **kw)
        self.h = None

    def stanza(self, timeout=None):
        el = super().stanza(timeout)
        if self.h is not None and el.tag in STANZAS:
            self.h += 1
        return el

    def enable(self, resume=True, max_=None):
        attrs = " resume='true'" if resume else ""
        if max_ is not None:
            attrs += f" max='{max_}'"
        self.send(f"<enable xmlns='{NS_SM}'{attrs}/>")
        el = self.wait_for(lambda e: e.tag in (q(NS_SM, "enabled"), q(NS_SM, "failed")))
        assert el.tag == q(NS_SM, "enabled"), ET.tostring(el)
        self.h = 0
        return el

    def ack_count(self):
        """Asks <r/>; the server's h."""
        self.send(f"<r xmlns='{NS_SM}'/>")
        return int(self.wait_for(lambda e: e.tag == q(NS_SM, "a"), what="<a/>").get("h"))

    def cut(self):
        """Ends the TCP connection with an RST, without a word of XMPP or TLS."""
        raw = self.sock
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()


def login(server, user, resource=None, available=True):
    c = SMPeer(server)
    c.login(user, server.password(user), resource or new_id("r"))
    if available:
        c.available()
    return c


def authed(server, user):
    """An SMPeer authenticated but not bound; returns it and its post-SASL features."""
    c = SMPeer(server)
    _, feats = c.open()
    c.starttls()
    c.open()
    el = c.auth_plain(user, server.password(user))
    assert el.tag.endswith("success"), ET.tostring(el)
    _, feats = c.restart()
    return c, feats


def resume(server, user, previd, h):
    """A new connection that asks to resume; returns it and the answer."""
    c, _ = authed(server, user)
    c.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='{h}'/>")
    el = c.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
    return c, el


def bodies(c, want, timeout=10):
    """Bodies of messages c receives (with how many times each came) until `want` are in."""
    seen = {}
    deadline = time.monotonic() + timeout
    for e in c.take(lambda e: e.tag == q(NS_CLIENT, "message")):
        b = e.findtext(q(NS_CLIENT, "body"))
        seen[b] = seen.get(b, 0) + 1
    while not set(want) <= set(seen) and time.monotonic() < deadline:
        try:
            e = c.stanza(max(0.05, deadline - time.monotonic()))
        except AssertionError:
            break
        if e.tag == q(NS_CLIENT, "message"):
            b = e.findtext(q(NS_CLIENT, "body"))
            seen[b] = seen.get(b, 0) + 1
    return seen


@pytest.fixture(scope="module")
def node(server):
    return server


def test_features_enable_and_counts(node):
    c, feats = authed(node, "alice")
    with c:
        assert feats.find(q(NS_SM, "sm")) is not None, ET.tostring(feats)
        assert feats.find(q(NS_CSI, "csi")) is not None, ET.tostring(feats)
        # Before binding there is nothing to enable.
        c.send(f"<enable xmlns='{NS_SM}'/>")
        el = c.stanza()
        assert el.tag == q(NS_SM, "failed") and el.find(q(NS_STANZAS, "unexpected-request")) is not None
        c.bind(new_id("r"))
        el = c.enable()
        assert re.fullmatch(r"[0-9a-f]{32}", el.get("id")), el.attrib
        assert el.get("resume") == "true" and el.get("max") == "300", el.attrib
        assert c.ack_count() == 0
        # Three stanzas handled (two pings and a presence), the echo counted by us.
        c.ping(node.domain)
        c.ping(node.domain)
        c.available()
        assert c.ack_count() == 3
        # The server counts what it wrote: two ping results and the presence echo.
        c.send(f"<a xmlns='{NS_SM}' h='{c.h}'/>")
        assert c.h == 3
        # Enabling twice is refused.
        c.send(f"<enable xmlns='{NS_SM}'/>")
        el = c.wait_for(lambda e: e.tag == q(NS_SM, "failed"))
        assert el.find(q(NS_STANZAS, "unexpected-request")) is not None


def test_server_asks_for_acks_and_checks_h(node):
    with login(node, "alice") as a, login(node, "bob") as b:
        a.enable(resume=False)
        for i in range(10):
            b.message(a.jid, f"ask {i}")
        el = a.wait_for(lambda e: e.tag == q(NS_SM, "r"), what="the server's <r/>")
        assert el is not None
        assert a.h >= 8, a.h  # asked once 8 stanzas waited
        # Acknowledging more than was sent ends the stream.
        a.send(f"<a xmlns='{NS_SM}' h='{a.h + 100}'/>")
        assert a.expect_stream_error() == "undefined-condition"


def test_resume_after_cut_delivers_each_message_once(node):
    with login(node, "alice", "phone") as a, login(node, "bob") as b:
        befriend(a, b)
        el = a.enable()
        previd = el.get("id")
        a.message(b.jid, "hi")  # one stanza handled from alice
        for i in range(5):
            b.message(a.jid, f"before {i}")
        got = bodies(a, {f"before {i}" for i in range(5)})
        assert all(got.get(f"before {i}") == 1 for i in range(5)), got
        a.send(f"<a xmlns='{NS_SM}' h='{a.h - 2}'/>")  # the last two stay unacknowledged
        assert a.ack_count() == 1  # our ack is read too
        h_then = a.h - 2
        a.cut()
        for i in range(5):  # to a session whose connection is gone
            b.message(a.jid, f"during {i}")
        assert b.ping(node.domain).get("type") == "result"  # the messages are in
        a2, el = resume(node, "alice", previd, h_then)
        with a2:
            assert el.tag == q(NS_SM, "resumed"), ET.tostring(el)
            assert el.get("previd") == previd
            assert el.get("h") == "1"  # the server handled our "hi" 
            a2.h = h_then
            want = {"before 3", "before 4"} | {f"during {i}" for i in range(5)}
            got = bodies(a2, want)
            assert got == {w: 1 for w in want}, got
            # The session carries on: messages both ways, the counts go on.
            b.message(a.jid, "after")
            assert bodies(a2, {"after"}) == {"after": 1}
            a2.message(b.jid, "back")
            assert b.wait_for(is_message("back")) is not None
            # Bob never saw alice go.
            b.settle()
            assert not b.take(is_presence(frm=a.jid, ptype="unavailable"))
            assert a2.ack_count() > 0


def test_bad_or_foreign_previd_fails(node):
    with login(node, "carol") as c:
        previd = c.enable().get("id")
        # Nonsense, a well-formed id nobody has, and carol's id presented by dave.
        for user, pid in (("carol", "zz"), ("carol", "0" * 32), ("dave", previd)):
            r, el = resume(node, user, pid, 0)
            with r:
                assert el.tag == q(NS_SM, "failed"), ET.tostring(el)
                assert el.find(q(NS_STANZAS, "item-not-found")) is not None, ET.tostring(el)
                # The stream goes on: it may bind instead.
                r.bind(new_id("r"))
                assert r.ping(node.domain).get("type") == "result"
        # carol's own session is untouched and still resumable.
        assert c.ack_count() >= 0
        c.cut()
        r, el = resume(node, "carol", previd, c.h)
        with r:
            assert el.tag == q(NS_SM, "resumed"), ET.tostring(el)
            # A clean close ends it: its id is worth nothing after.
            r.send("</stream:stream>")
            assert r.wait_eof()
        r2, el = resume(node, "carol", previd, 0)
        with r2:
            assert el.tag == q(NS_SM, "failed"), ET.tostring(el)


def test_not_resumed_in_time_goes_offline(node):
    user, friend = node.new_users(2, prefix="smt")
    with login(node, user, "phone") as a, login(node, friend) as b:
        befriend(a, b)
        el = a.enable(max_=2)
        assert el.get("max") == "2", el.attrib
        previd = el.get("id")
        t0 = time.monotonic()
        a.cut()
        for i in range(3):
            b.message(a.jid, f"late {i}")
        iq_id = new_id("q")
        b.send(f"<iq type='get' id='{iq_id}' to='{a.jid}'><query xmlns='jabber:iq:version'/></iq>")
        # The session ends: bob hears alice is gone and his iq is answered with an error.
        b.wait_for(is_presence(frm=a.jid, ptype="unavailable"), timeout=10)
        assert time.monotonic() - t0 >= 0.9  # not before its time (2 s, give or take the sweep)
        err = b.wait_for(lambda e: e.get("id") == iq_id, timeout=10)
        assert err.get("type") == "error", ET.tostring(err)
        assert err.find(f"{{{NS_CLIENT}}}error/{{{NS_STANZAS}}}service-unavailable") is not None
        # Too late to resume.
        r, el = resume(node, user, previd, 0)
        with r:
            assert el.tag == q(NS_SM, "failed")
        # The messages wait offline for the next login, each once.
        with login(node, user, "desk") as a2:
            want = {f"late {i}" for i in range(3)}
            assert bodies(a2, want) == {w: 1 for w in want}


def test_resume_after_router_restart(make_server):
    s = make_server(expect_stable=False)
    with login(s, "alice", "phone") as a, login(s, "bob") as b:
        previd = a.enable().get("id")
        b.message(a.jid, "one")
        assert bodies(a, {"one"}) == {"one": 1}
        h = a.h
        a.cut()
        b.message(a.jid, "two")
        assert b.ping(s.domain).get("type") == "result"  # "two" is in the router's hands
        old = s.router_pid()
        os.kill(old, signal.SIGKILL)
        s.wait_child_replaced("starling-router", old)
        s.wait_serving(router=2)
        b.message(a.jid, "three")
        a2, el = resume(s, "alice", previd, h)
        with a2:
            assert el.tag == q(NS_SM, "resumed"), ET.tostring(el)
            a2.h = h
            got = bodies(a2, {"two", "three"})
            # A router crash replays what it had not finished, and "one" is not finished
            # until its archive row is stored (router/mam.c): either may come again; none
            # is lost.
            assert got.get("two", 0) >= 1 and got.get("three") == 1 and got.get("one", 0) <= 1, got
            b.message(a.jid, "four")
            assert bodies(a2, {"four"}) == {"four": 1}


def test_slixmpp_xep_0198(node):
    async def scenario():
        async with slixclient.Clients(node) as cs:
            a = cs.new("erin", "sm")
            a.register_plugin("xep_0198")
            enabled = asyncio.get_running_loop().create_future()
            a.add_event_handler("sm_enabled", lambda _: enabled.done() or enabled.set_result(True))
            await a.start()
            await asyncio.wait_for(enabled, 10)
            sm = a.plugin["xep_0198"]
            assert sm.sm_id and sm.allow_resume
            b = await cs.login("dave")
            for i in range(3):
                b.send_message(mto=a.boundjid.full, mbody=f"s{i}", mtype="chat")
            for i in range(3):
                m = await a.next_message()
                assert m["body"] == f"s{i}"
            # Its acks reach the server: nothing is left unacknowledged after an <r/>.
            sm.request_ack()
            await asyncio.sleep(0.5)
            assert sm.handled >= 3
            assert len(sm.unacked_queue) == 0 or sm.last_ack == sm.seq
            # The TCP connection dies; the plugin resumes on its own.
            resumed = asyncio.get_running_loop().create_future()
            a.add_event_handler("session_resumed", lambda _: resumed.done() or resumed.set_result(True))
            a.transport.abort()
            await asyncio.wait_for(a.gone, 10)
            b.send_message(mto=a.boundjid.full, mbody="while away", mtype="chat")
            await b.ping_server()
            a.connect(("127.0.0.1", node.port))
            await asyncio.wait_for(resumed, 15)
            m = await a.next_message()
            assert m["body"] == "while away"

    slixclient.run(scenario(), timeout=60)
