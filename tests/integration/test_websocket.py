"""
XMPP over WebSocket (RFC 7395) on c2s's WebSocket listeners, with a client that writes
its frames by hand (wsclient.py): the upgrade and its refusals, a login with SASL and
bind, messages both ways with a TCP client (slixmpp), the framing of every element,
pings, the close handshake, and the close codes of broken framing. One node for the
module, with both WebSocket listeners and a small stanza limit.
"""
import asyncio
import base64
import os
import ssl
import struct
import xml.etree.ElementTree as ET

import pytest

from conftest import _stop_cleanly, free_port, start_server
from slixclient import Clients, run
from wsclient import (NS_CLIENT, NS_FRAMING, NS_SASL, NS_STREAM, OP_BINARY, OP_CLOSE, OP_CONT,
                      OP_PING, OP_PONG, OP_TEXT, Closed, WSClient, open_elem, q)

MAX_STANZA = 20000
ORIGIN = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("ws"), name="ws", c2s={
        "websocket_listen": f"127.0.0.1:{free_port()}",
        "websocket_tls_listen": f"127.0.0.1:{free_port()}",
        "websocket_origins": f"{ORIGIN} https://chat.example",
        "max_stanza_size": MAX_STANZA,
        "keepalive": 1,
    })
    s.ws_port = int(s.groups["c2s"]["websocket_listen"].rsplit(":", 1)[1])
    s.wss_port = int(s.groups["c2s"]["websocket_tls_listen"].rsplit(":", 1)[1])
    yield s
    _stop_cleanly(s)


def ws(node, **kw):
    return WSClient(node.ws_port, **kw)


# ---- the opening handshake --------------------------------------------------------------


def test_upgrade(node):
    c = ws(node, origin=ORIGIN)
    assert c.headers["sec-websocket-protocol"] == "xmpp"
    expect = base64.b64encode(__import__("hashlib").sha1(
        (c.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    assert c.headers["sec-websocket-accept"] == expect
    assert c.headers["upgrade"].lower() == "websocket"
    c.close()


@pytest.mark.parametrize("kw,status", [
    ({"protocols": None}, 400),                    # no Sec-WebSocket-Protocol
    ({"protocols": "chat, mqtt"}, 400),            # not xmpp
    ({"key": "c2hvcnQ="}, 400),                    # not 16 bytes
    ({"key": ""}, 400),                            # none
    ({"version": "8"}, 426),                       # an old draft
    ({"origin": "https://evil.example"}, 403),     # not in c2s.websocket_origins
])
def test_upgrade_refused(node, kw, status):
    c = ws(node, upgrade=False)
    got, headers, body = c.request(**kw)
    assert got == status, (got, body)
    assert headers.get("connection") == "close"
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    assert c.wait_eof()
    c.close()


def test_upgrade_not_get(node):
    c = ws(node, upgrade=False)
    status, headers, _ = c.request(raw=b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 405 and headers["allow"] == "GET"
    c.close()


def test_upgrade_oversize(node):
    c = ws(node, upgrade=False)
    status, _, _ = c.request(extra="X-Filler: " + "a" * 9000 + "\r\n")
    assert status == 431
    assert c.wait_eof()
    c.close()


def test_upgrade_in_pieces_and_origin_case(node):
    c = ws(node, upgrade=False)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /xmpp HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
           f"Sec-WebSocket-Protocol: chat, xmpp\r\nOrigin: HTTPS://Chat.Example\r\n\r\n").encode()
    for i in range(0, len(req), 7):
        c.sock.sendall(req[i:i + 7])
    status, _, _ = c.request(raw=b"")
    assert status == 101
    c.open_stream()
    c.close()


# ---- the stream ---------------------------------------------------------------------------


def test_framing(node):
    """Every element the server sends is a document of its own (RFC 7395 §3.3.3): <open/>
    with the stream's attributes, features with their stream prefix declared, stanzas
    in jabber:client."""
    c = ws(node)
    c.send_text(open_elem())
    raw = c.message()
    o = ET.fromstring(raw)
    assert o.tag == q(NS_FRAMING, "open") and raw.endswith("/>")
    assert o.get("from") == "localhost" and o.get("version") == "1.0" and o.get("id")
    assert "<?xml" not in raw
    f = c.xml()
    assert f.tag == q(NS_STREAM, "features")
    # No STARTTLS over WebSocket: the listener's streams count as encrypted.
    assert f.find(q("urn:ietf:params:xml:ns:xmpp-tls", "starttls")) is None
    assert "PLAIN" in [m.text for m in f.iter(q(NS_SASL, "mechanism"))]
    c.close()


def test_login_and_messages(node):
    async def scenario():
        async with Clients(node) as cs:
            bob = await cs.login("bob", "tcp", available=True)
            c = ws(node)
            # The WebSocket client blocks: off the loop slixmpp runs on.
            jid = await asyncio.to_thread(c.login, "alice", node.password("alice"), "web")
            assert jid == "alice@localhost/web"
            c.send_text(f"<presence xmlns='{NS_CLIENT}'/>")
            # WebSocket -> TCP
            c.send_text(f"<message xmlns='{NS_CLIENT}' to='{bob.boundjid.full}' type='chat'>"
                        f"<body>over the web</body></message>")
            m = await bob.next_message(lambda m: m["body"])
            assert m["body"] == "over the web" and m["from"] == jid
            # TCP -> WebSocket: arrives in jabber:client, one message
            bob.send_message(mto=jid, mbody="back to you & <yours>", mtype="chat")
            el = await asyncio.to_thread(c.wait_for, lambda e: e.tag == q(NS_CLIENT, "message"))
            assert el.find(q(NS_CLIENT, "body")).text == "back to you & <yours>"
            assert el.get("from") == bob.boundjid.full
            # an iq round trip: the server's own answer
            c.send_text(f"<iq xmlns='{NS_CLIENT}' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
            r = await asyncio.to_thread(c.wait_for, lambda e: e.tag == q(NS_CLIENT, "iq"))
            assert r.get("id") == "p1" and r.get("type") == "result"
            c.close()
    run(scenario())


def test_tls_listener(node):
    ctx = ssl.create_default_context(cafile=str(node.cert))
    c = WSClient(node.wss_port, tls_ctx=ctx)
    assert c.login("carol", node.password("carol")) == "carol@localhost/ws"
    c.close()


def test_fragmented_message(node):
    c = ws(node)
    c.login("dave", node.password("dave"), "frag")
    stanza = f"<iq xmlns='{NS_CLIENT}' type='get' id='f1'><ping xmlns='urn:xmpp:ping'/></iq>"
    parts = [stanza[:5], stanza[5:30], stanza[30:]]
    c.send_frame(OP_TEXT, parts[0], fin=False)
    c.send_frame(OP_PING, b"in between")  # a control frame amid the fragments
    c.send_frame(OP_CONT, parts[1], fin=False)
    c.send_frame(OP_CONT, parts[2], fin=True)
    fin, op, payload = c.frame()
    assert (op, payload) == (OP_PONG, b"in between")
    r = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq"))
    assert r.get("id") == "f1" and r.get("type") == "result"
    c.close()


def test_ping_and_keepalive(node):
    c = ws(node)
    c.login("erin", node.password("erin"), "ping")
    c.send_frame(OP_PING, b"hello")
    fin, op, payload = c.frame()
    assert (fin, op, payload) == (True, OP_PONG, b"hello")
    # c2s.keepalive = 1: the whitespace keepalive is a ping frame, never a text message.
    fin, op, payload = c.frame(timeout=5)
    assert op == OP_PING and payload == b""
    c.close()


def test_close_handshake(node):
    c = ws(node)
    c.login("alice", node.password("alice"), "bye")
    c.send_text(f"<close xmlns='{NS_FRAMING}'/>")
    el = c.xml()
    assert el.tag == q(NS_FRAMING, "close")
    assert c.close_code() == 1000
    assert c.wait_eof()
    c.close()


def test_close_frame_from_client(node):
    c = ws(node)
    c.login("bob", node.password("bob"), "gone")
    c.send_frame(OP_CLOSE, struct.pack("!H", 1001))
    assert c.close_code() == 1001  # echoed (RFC 6455 §5.5.1)
    assert c.wait_eof()
    c.close()


def test_stream_error_then_close(node):
    """Stanzas before authentication: the stream error as a message, then <close/>,
    then the close frame."""
    c = ws(node)
    c.open_stream()
    c.send_text(f"<message xmlns='{NS_CLIENT}' to='bob@localhost'><body>x</body></message>")
    err = c.xml()
    assert err.tag == q(NS_STREAM, "error")
    assert err.find("{urn:ietf:params:xml:ns:xmpp-streams}not-authorized") is not None
    assert c.xml().tag == q(NS_FRAMING, "close")
    assert c.close_code() == 1000
    c.close()


# ---- broken framing ---------------------------------------------------------------------


@pytest.mark.parametrize("send,code", [
    (lambda c: c.send_frame(OP_TEXT, open_elem(), mask=False), 1002),   # §5.1: unmasked
    (lambda c: c.send_frame(OP_TEXT, open_elem(), rsv=4), 1002),        # no extension
    (lambda c: c.send_frame(3, b"x"), 1002),                            # a reserved opcode
    (lambda c: c.send_frame(OP_PING, b"x", fin=False), 1002),           # fragmented control
    (lambda c: c.send_frame(OP_PING, b"x" * 126), 1002),                # control over 125
    (lambda c: c.send_frame(OP_CONT, b"x"), 1002),                      # nothing to continue
    (lambda c: (c.send_frame(OP_TEXT, b"<a", fin=False),
                c.send_frame(OP_TEXT, b"/>")), 1002),                   # new message inside one
    (lambda c: c.send_frame(OP_BINARY, b"\x00\x01"), 1003),             # XMPP is text
])
def test_bad_frames(node, send, code):
    c = ws(node)
    send(c)
    assert c.close_code() == code
    assert c.wait_eof()
    c.close()


def test_oversize_message(node):
    """Over the stanza limit (c2s.max_stanza_size_preauth before SASL, then
    max_stanza_size): policy-violation, then close code 1009."""
    c = ws(node)
    c.login("carol", node.password("carol"), "big")
    body = "x" * MAX_STANZA
    c.send_text(f"<message xmlns='{NS_CLIENT}' to='bob@localhost'><body>{body}</body></message>")
    err = c.wait_for(lambda e: e.tag == q(NS_STREAM, "error"))
    assert err.find("{urn:ietf:params:xml:ns:xmpp-streams}policy-violation") is not None
    assert c.close_code() == 1009
    c.close()


def test_oversize_fragments(node):
    """The bound is on the message, whatever its fragments."""
    c = ws(node)
    c.open_stream()
    for _ in range(3):
        c.send_frame(OP_TEXT if _ == 0 else OP_CONT, b"<a>" + b"y" * 4000, fin=False)
    assert c.close_code() == 1009
    c.close()


def test_behind_proxy_protocol(make_server):
    """c2s.proxy_from applies to the WebSocket listener too: a balancer's PROXY header
    comes first, the upgrade after it."""
    port = free_port()
    s = make_server(c2s={"websocket_listen": f"127.0.0.1:{port}", "proxy_from": ["127.0.0.1"]},
                    log={"level": "debug"})
    c = WSClient(port, upgrade=False)
    c.sock.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 5290\r\n")
    status, _, _ = c.request()
    assert status == 101
    assert c.login("alice", s.password("alice"), "proxied") == "alice@localhost/proxied"
    c.close()
    assert "client 192.0.2.7" in s.log_text()
    # Without the header, the balancer's connection is closed without a word.
    c = WSClient(port, upgrade=False)
    c.sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert c.wait_eof() and c.rx == b""
    c.close()
