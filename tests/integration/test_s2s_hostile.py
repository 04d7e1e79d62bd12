"""
Bad peers on server-to-server streams (RFC 6120 §4.9.3, XEP-0220): a hostile server,
played by a raw socket of the test speaking jabber:server, attacks a starling node
(a.test) while a second starling node (b.test) federates with it and local clients use
it. Every attack must end the hostile stream with the RFC's stream error (or, for a
dialback flood, dialback errors on a stream that stays up), and afterwards a message
still crosses between a.test and b.test both ways.

To hold an authenticated hostile stream the test is itself the authoritative server of
its fake domain evil.test: a.test's s2s.routes sends evil.test (and the flood's domains)
to a listener of the test that answers a.test's <db:verify/> for evil.test with
type='valid' and never answers the others. Each attack comes from its own loopback
source address (127.0.0.x), so the limit per address sees only it.

a.test allows plaintext server streams (s2s.require_encryption = false) so most attacks
need no TLS; the malformed XML and the too-many-connections attacks go over STARTTLS.
It runs two s2s threads, so that the limit per address is seen to be the process's.
Its limits are small (AUTH_TIMEOUT, MAX_PENDING, MAX_PER_ADDRESS, MAX_STANZA below).
"""
import itertools
import os
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import pytest

from conftest import Server, _stop_cleanly, free_port, port_accepts
from rawxmpp import NS_STREAM, RawClient, header, login, q

NS_SERVER = "jabber:server"
NS_DB = "jabber:server:dialback"
FIRST = 20.0  # the first stanza across makes the streams: TCP, TLS, dialback both ways
EVIL = "evil.test"
AUTH_TIMEOUT = 3  # s2s.auth_timeout of a.test, seconds
MAX_PENDING = 3  # s2s.max_dialback_pending of a.test
MAX_PER_ADDRESS = 3  # s2s.max_connections_per_address of a.test
MAX_STANZA = 65536  # s2s.max_stanza_size of a.test
FLOOD = [f"f{i}.test" for i in range(MAX_PENDING + 2)]

_sources = itertools.count(10)


def source():
    """A loopback address of its own for one attack."""
    return f"127.0.0.{next(_sources)}"


# ---- the authoritative server of evil.test ------------------------------------------------


class Authoritative:
    """Accepts a.test's outbound streams to evil.test and the flood's domains: answers
    the header with features offering nothing, a <db:verify/> for a domain in `valid`
    with type='valid' (whatever the key: we are its authoritative server), and nothing
    else. Remembers the verify requests it saw."""

    def __init__(self, valid):
        self.valid = set(valid)
        self.verifies = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        p = ET.XMLPullParser(events=("start", "end"))
        depth = 0
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                p.feed(data)
                for ev, el in p.read_events():
                    depth += 1 if ev == "start" else -1
                    if ev == "start" and depth == 1:
                        me = el.get("to", "")
                        c.sendall((f"<?xml version='1.0'?><stream:stream xmlns='{NS_SERVER}' "
                                   f"xmlns:stream='{NS_STREAM}' xmlns:db='{NS_DB}' "
                                   f"id='{os.urandom(8).hex()}' from={quoteattr(me)} "
                                   "version='1.0'><stream:features/>").encode())
                    elif ev == "end" and depth == 1 and el.tag == q(NS_DB, "verify"):
                        self.verifies.append(el.get("to"))
                        if el.get("to") in self.valid:
                            c.sendall((f"<db:verify from={quoteattr(el.get('to'))} "
                                       f"to={quoteattr(el.get('from'))} "
                                       f"id={quoteattr(el.get('id'))} type='valid'/>").encode())
        except (OSError, ET.ParseError):
            return
        finally:
            c.close()

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


# ---- the hostile peer -----------------------------------------------------------------------


class Peer(RawClient):
    """A raw server-to-server stream to a.test's s2s port, from its own address."""

    def __init__(self, node, direct_tls=False, **kw):
        kw.setdefault("source", source())
        kw.setdefault("stream_extra", f" xmlns:db='{NS_DB}' from='{EVIL}'")
        port = node.s2s_tls_port if direct_tls else node.s2s_port
        super().__init__(node, port=port, direct_tls=direct_tls, **kw)
        self.direct_tls = direct_tls

    def open(self, **kw):
        kw.setdefault("ns", NS_SERVER)
        return super().open(**kw)

    def authenticate(self, sender=EVIL):
        """Server Dialback as the initiating server of `sender`: a.test asks our
        authoritative server, which says valid."""
        self.open()
        self.dialback(sender)
        el = self.wait_for(lambda e: e.tag == q(NS_DB, "result") and e.get("from") == self.domain,
                           timeout=10, what="the dialback answer")
        assert el.get("type") == "valid", ET.tostring(el)

    def dialback(self, sender):
        self.send(f"<db:result from={quoteattr(sender)} to={quoteattr(self.domain)}>"
                  f"{os.urandom(32).hex()}</db:result>")


def s2s_pid(node):
    return node.children().get("starling-s2s")


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


# ---- the nodes -----------------------------------------------------------------------------

_bodies = itertools.count()


def _node(tmp, domain, s2s_port, routes, **s2s):
    s = Server(tmp / domain, name=domain, s2s={"listen": f"127.0.0.1:{s2s_port}",
                                               "routes": routes, **s2s})
    s.domain = domain
    s.s2s_port = s2s_port
    s.setup()
    return s


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s2s_hostile")
    auth = Authoritative(valid=[EVIL])
    pa, pb, pa_tls = free_port(), free_port(), free_port()
    routes = [f"a.test=127.0.0.1:{pa}", f"b.test=127.0.0.1:{pb}"]
    a = _node(tmp, "a.test", pa,
              routes + [f"{d}=127.0.0.1:{auth.port}" for d in [EVIL] + FLOOD],
              require_encryption=False, auth_timeout=AUTH_TIMEOUT,
              max_dialback_pending=MAX_PENDING,
              max_connections_per_address=MAX_PER_ADDRESS, max_stanza_size=MAX_STANZA,
              listen_tls=f"127.0.0.1:{pa_tls}", threads=2)
    a.s2s_tls_port = pa_tls
    b = _node(tmp, "b.test", pb, routes)
    a.start()
    b.start()
    for n in (a, b):
        deadline = time.monotonic() + 10
        while not port_accepts(n.s2s_port):
            assert time.monotonic() < deadline, f"{n.name}: s2s does not listen"
            time.sleep(0.05)
    a.auth = auth
    alice = login(a, "alice", available=True)
    bob = login(b, "bob", available=True)
    a.alice, b.bob = alice, bob
    across(a, b)  # the streams between a.test and b.test are up before any attack
    yield a, b
    alice.close()
    bob.close()
    auth.close()
    _stop_cleanly(a)
    _stop_cleanly(b)


def across(a, b):
    """A message crosses each way between alice@a.test and bob@b.test, and a.test's
    local clients still log in and talk."""
    body = f"across {next(_bodies)}"
    a.alice.message("bob@b.test", body)
    assert b.bob.wait_message(body, timeout=FIRST).get("from") == a.alice.jid
    b.bob.message("alice@a.test", "re: " + body)
    assert a.alice.wait_message("re: " + body, timeout=FIRST).get("from") == b.bob.jid
    with login(a, "carol", available=True) as carol:
        carol.message(a.alice.jid, "local " + body)
        assert a.alice.wait_message("local " + body).get("from") == carol.jid
    a.assert_stable()
    b.assert_stable()


def stanza_error(stanza, condition, nodes):
    """An authenticated hostile stream sends `stanza`: the stream ends with
    `condition`, and federation carries on."""
    a, b = nodes
    with Peer(a) as p:
        p.authenticate()
        p.send(stanza)
        assert p.expect_stream_error() == condition
    across(a, b)


# ---- the attacks -----------------------------------------------------------------------------


def test_authenticated_peer_is_served(nodes):
    """The control: the hostile stream authenticated by dialback delivers a proper
    message, so the errors below are about the stanzas, not the stream."""
    a, b = nodes
    with Peer(a) as p:
        p.authenticate()
        p.send(f"<message from='mallory@{EVIL}/x' to='alice@a.test' type='chat'>"
               "<body>from evil</body></message>")
        assert a.alice.wait_message("from evil").get("from") == f"mallory@{EVIL}/x"
    across(a, b)


@pytest.mark.parametrize("xml,condition", [
    ("<message to='alice@a.test'><body>x</message>", "not-well-formed"),
    ("<message to='alice@a.test' to='bob@a.test'/>", "not-well-formed"),
    ("<!DOCTYPE m [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;'>]>", "restricted-xml"),
    ("<!-- hello -->", "restricted-xml"),
    ("<?php x?>", "restricted-xml"),
    ("<x:message xmlns='jabber:server'/>", "not-well-formed"),  # an undeclared prefix
])
def test_malformed_xml_over_tls(nodes, xml, condition):
    a, b = nodes
    with Peer(a) as p:
        _, feats = p.open()
        assert feats.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls") is not None
        p.starttls()
        p.open()
        assert isinstance(p.sock, ssl.SSLSocket)
        p.send(xml)
        assert p.expect_stream_error() == condition
    across(a, b)


@pytest.mark.parametrize("ns,stream_ns", [("jabber:client", NS_STREAM),
                                           (NS_SERVER, "http://example.com/streams")])
def test_wrong_stream_namespace(nodes, ns, stream_ns):
    """A client's stream, or a stream in another namespace, on the server port."""
    a, b = nodes
    with Peer(a) as p:
        p.send(header(to="a.test", ns=ns, stream_ns=stream_ns, extra=p.stream_extra))
        assert p.expect_stream_error() == "invalid-namespace"
    across(a, b)


@pytest.mark.parametrize("sender", ["bob@b.test/x", "carol@a.test", "elsewhere.test"])
def test_spoofed_from(nodes, sender):
    """A stanza from a domain the stream did not authenticate: b.test's, ours, any."""
    stanza_error(f"<message from='{sender}' to='alice@a.test' type='chat'>"
                 "<body>spoofed</body></message>", "invalid-from", nodes)
    a, _ = nodes
    assert b"spoofed" not in a.alice.received


def test_stream_to_a_domain_not_served(nodes):
    a, b = nodes
    with Peer(a) as p:
        p.send(header(to="elsewhere.test", ns=NS_SERVER, extra=p.stream_extra))
        assert p.expect_stream_error() == "host-unknown"
    across(a, b)


@pytest.mark.parametrize("answer", [
    f"<db:result from='{EVIL}' to='a.test' type='valid'/>",  # "you accepted me"
    f"<db:verify from='{EVIL}' to='a.test' id='x' type='valid'/>",
])
def test_unsolicited_dialback_answer(nodes, answer):
    """A dialback answer to no request of ours authenticates nothing (XEP-0220 §3.1):
    on an inbound stream without XEP-0288 no answer can come at all (dialback.h)."""
    a, b = nodes
    with Peer(a) as p:
        p.open()
        p.send(answer)
        p.send(f"<message from='mallory@{EVIL}' to='alice@a.test' type='chat'>"
               "<body>unsolicited</body></message>")
        assert p.expect_stream_error() == "unsupported-stanza-type"
    across(a, b)
    assert b"unsolicited" not in a.alice.received


def test_wrong_to_domain(nodes):
    stanza_error(f"<message from='mallory@{EVIL}' to='alice@elsewhere.test' type='chat'>"
                 "<body>lost</body></message>", "host-unknown", nodes)


@pytest.mark.parametrize("attrs", ["to='alice@a.test'", f"from='mallory@{EVIL}'"])
def test_missing_address(nodes, attrs):
    stanza_error(f"<message {attrs} type='chat'><body>unaddressed</body></message>",
                 "improper-addressing", nodes)
    a, _ = nodes
    assert b"unaddressed" not in a.alice.received


def test_huge_stanza(nodes):
    """10 MB in one stanza: policy-violation once it passes s2s.max_stanza_size, long
    before the end, and the s2s process never holds it."""
    a, b = nodes
    pid = s2s_pid(a)
    before = vm_hwm_kb(pid)
    total, sent = 10 * 1024 * 1024, 0
    chunk = b"x" * 65536
    with Peer(a) as p:
        p.authenticate()
        p.send(f"<message from='mallory@{EVIL}' to='alice@a.test' type='chat'><body>")
        try:
            while sent < total and not p.eof and not any(
                    k == "stanza" and v.tag == q(NS_STREAM, "error") for k, v in p.events):
                p.send(chunk)
                sent += len(chunk)
                p.pump(time.monotonic())
        except OSError:
            pass  # the node closed the stream while we were still sending
        assert p.expect_stream_error() == "policy-violation"
    assert sent < total, "the node read the whole 10 MB stanza"
    assert vm_hwm_kb(pid) - before < 4096, "the s2s process grew by the stanza"
    across(a, b)


def test_unauthenticated_stream_times_out(nodes):
    a, b = nodes
    with Peer(a) as p:
        p.open()
        t0 = time.monotonic()
        assert p.expect_stream_error(timeout=AUTH_TIMEOUT + 5) == "connection-timeout"
        assert time.monotonic() - t0 > AUTH_TIMEOUT - 1.5
    across(a, b)


def test_dialback_flood(nodes):
    """More dialback requests than s2s.max_dialback_pending on one stream: the ones
    past it get resource-constraint at once, and the stream keeps carrying stanzas."""
    a, b = nodes
    with Peer(a) as p:
        p.authenticate()
        for d in FLOOD:
            p.dialback(d)
        refused = set()
        while len(refused) < len(FLOOD) - MAX_PENDING:
            el = p.wait_for(lambda e: e.tag == q(NS_DB, "result"), timeout=AUTH_TIMEOUT - 1,
                            what="dialback errors for the requests past the limit")
            assert el.get("type") == "error", ET.tostring(el)
            # The <error/> is in the stream's default namespace (XEP-0220 §2.4.2).
            err = el.find(q(NS_SERVER, "error"))
            assert err is not None and err.find(
                "{urn:ietf:params:xml:ns:xmpp-stanzas}resource-constraint") is not None, \
                ET.tostring(el)
            refused.add(el.get("to"))
        assert refused == set(FLOOD[MAX_PENDING:])
        p.send(f"<message from='mallory@{EVIL}' to='alice@a.test' type='chat'>"
               "<body>after the flood</body></message>")
        a.alice.wait_message("after the flood")
    # ... while the ones within it were put to their authoritative server.
    deadline = time.monotonic() + 5
    while not set(FLOOD[:MAX_PENDING]) <= set(a.auth.verifies):
        assert time.monotonic() < deadline, a.auth.verifies
        time.sleep(0.05)
    across(a, b)


def test_too_many_connections_from_one_address(nodes):
    a, b = nodes
    addr = source()
    peers = []
    try:
        for _ in range(MAX_PER_ADDRESS):
            p = Peer(a, source=addr)
            p.open()
            peers.append(p)
        # Each thread of s2s accepts its share of them (SO_REUSEPORT): the count is the
        # process's, so every one past the limit is refused; on the Direct TLS port
        # (XEP-0368) it hears so over TLS, at its stream header.
        for i in range(2 * MAX_PER_ADDRESS):
            extra = Peer(a, source=addr, direct_tls=i % 2 == 1)
            peers.append(extra)
            if extra.direct_tls:
                extra.send(header(to="a.test", ns=NS_SERVER, extra=extra.stream_extra))
            assert extra.expect_stream_error() == "policy-violation"
        # The ones within the limit are still served: one goes on to STARTTLS.
        peers[0].starttls()
        _, feats = peers[0].open()
        assert feats.tag == q(NS_STREAM, "features")
        # Another address is not affected.
        with Peer(a) as other:
            other.open()
    finally:
        for p in peers:
            p.close()
    across(a, b)


def test_dialback_as_a_real_peer_with_a_forged_key(nodes):
    """The hostile stream claims to be b.test: a.test asks b.test, the real
    authoritative server, which finds the key invalid. The stream is refused, and the
    real streams between a.test and b.test are not disturbed."""
    a, b = nodes
    with Peer(a, stream_extra=f" xmlns:db='{NS_DB}' from='b.test'") as p:
        p.open()
        p.dialback("b.test")
        el = p.wait_for(lambda e: e.tag == q(NS_DB, "result"), timeout=10,
                        what="the dialback answer")
        assert el.get("type") == "invalid", ET.tostring(el)
        assert p.expect_stream_error() == "not-authorized"
    across(a, b)


@pytest.mark.parametrize("what", ["stanza", "header"])
def test_large_element_before_authentication(nodes, what):
    """Before the peer is authenticated it gets a client's pre-login element size
    (c2s.max_stanza_size_preauth, 8K), not s2s.max_stanza_size: for a stanza and for
    the stream header itself."""
    a, b = nodes
    with Peer(a) as p:
        try:
            if what == "header":
                p.send(header(to="a.test", ns=NS_SERVER, extra=f" x='{'k' * 20000}'"))
            else:
                p.open()
                p.send(f"<message from='mallory@{EVIL}' to='alice@a.test'><body>" +
                       "k" * 20000 + "</body></message>")
        except OSError:
            pass
        assert p.expect_stream_error() == "policy-violation"
    across(a, b)


def test_slow_unauthenticated_streams_time_out(nodes):
    """A stream that keeps trickling whitespace, and one that stops in the middle of
    its TLS handshake, are both cut at s2s.auth_timeout: traffic does not extend it."""
    a, b = nodes
    with Peer(a) as trickle, Peer(a) as stalled:
        trickle.open()
        stalled.open()
        stalled.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert stalled.stanza().tag == "{urn:ietf:params:xml:ns:xmpp-tls}proceed"
        t0 = time.monotonic()
        while not trickle.events and time.monotonic() - t0 < AUTH_TIMEOUT + 2:
            try:
                trickle.send(" ")
            except OSError:
                break
            trickle.pump(time.monotonic() + 0.3)
        took = time.monotonic() - t0
        assert AUTH_TIMEOUT - 1.5 < took < AUTH_TIMEOUT + 2, f"the trickle lasted {took:.1f} s"
        assert trickle.expect_stream_error(timeout=1) == "connection-timeout"
        # No stream error in the middle of a handshake: the connection just closes.
        stalled.stop_parsing()
        assert stalled.wait_eof(timeout=3), "the stalled handshake is still open"
    across(a, b)


def test_stanza_flood_leaves_others_served(nodes):
    """An authenticated peer writes stanzas as fast as it can (to a user who does not
    exist, so the router answers each); meanwhile messages still cross between a.test
    and b.test."""
    a, b = nodes
    with Peer(a) as p:
        p.authenticate()
        stop = threading.Event()
        sent = [0]

        def flood():
            batch = "".join(f"<message from='mallory@{EVIL}' to='nobody@a.test' id='{i}' "
                            "type='chat'><body>flood</body></message>" for i in range(200))
            try:
                while not stop.is_set():
                    p.send(batch)
                    sent[0] += 200
            except OSError:
                pass

        th = threading.Thread(target=flood, daemon=True)
        th.start()
        try:
            time.sleep(0.5)
            t0 = time.monotonic()
            across(a, b)
            took = time.monotonic() - t0
        finally:
            stop.set()
            th.join(10)
    assert sent[0] > 10000, "the flood did not get going"
    assert took < 5, f"messages took {took:.1f} s to cross during the flood"
