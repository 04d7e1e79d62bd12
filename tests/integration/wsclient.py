"""
A small XMPP-over-WebSocket client (RFC 6455 frames written by hand, RFC 7395 framing)
for the integration tests: exact bytes both ways, so a test can also send what a real
client never would (unmasked frames, bad opcodes, fragments).

    ws = WSClient(port)                   # TCP connect and the HTTP upgrade
    ws.send_text("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
    el = ws.xml()                         # the next text message, parsed
    ws.login("alice", "alice-pw", "web")  # SASL PLAIN and bind; returns the full JID

A test that wants the handshake's answer itself passes upgrade=False and calls
ws.request(...) with the headers it likes.
"""
import base64
import os
import socket
import ssl
import struct
import time
import xml.etree.ElementTree as ET

NS_FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_CLIENT = "jabber:client"
NS_STREAM = "http://etherx.jabber.org/streams"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
TIMEOUT = 5.0


def q(ns, name):
    return f"{{{ns}}}{name}"


def open_elem(to="localhost"):
    return f"<open xmlns='{NS_FRAMING}' to='{to}' version='1.0'/>"


class Closed(AssertionError):
    pass


class WSClient:
    def __init__(self, port, host="127.0.0.1", tls_ctx=None, upgrade=True, **kw):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        if tls_ctx is not None:
            self.sock = tls_ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.host = host
        self.port = port
        self.rx = b""
        if upgrade:
            status, headers, _ = self.request(**kw)
            assert status == 101, f"upgrade refused: {status}"
            self.headers = headers

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- HTTP --

    def request(self, path="/xmpp-websocket", protocols="xmpp", key=None, origin=None,
                version="13", extra="", raw=None):
        """Sends the upgrade request (or raw bytes) and reads the answer: (status, headers
        as a dict with lower-case names, body)."""
        if raw is None:
            key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
            lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                     "Upgrade: websocket", "Connection: Upgrade"]
            if key:
                lines.append(f"Sec-WebSocket-Key: {key}")
            if version:
                lines.append(f"Sec-WebSocket-Version: {version}")
            if protocols:
                lines.append(f"Sec-WebSocket-Protocol: {protocols}")
            if origin:
                lines.append(f"Origin: {origin}")
            raw = ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()
            self.key = key
        self.sock.sendall(raw)
        deadline = time.monotonic() + TIMEOUT
        while b"\r\n\r\n" not in self.rx:
            self._recv(deadline)
        head, self.rx = self.rx.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        body = b""
        if status != 101:
            n = int(headers.get("content-length", "0"))
            while len(self.rx) < n:
                self._recv(deadline)
            body, self.rx = self.rx[:n], self.rx[n:]
        return status, headers, body

    def _recv(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError("timed out waiting for the server")
        except (ConnectionResetError, ssl.SSLError):
            data = b""
        if not data:
            raise Closed("connection closed")
        self.rx += data

    # -- frames --

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            head += key
        self.sock.sendall(head + payload)

    def send_text(self, s):
        self.send_frame(OP_TEXT, s)

    def frame(self, timeout=TIMEOUT):
        """The next frame from the server: (fin, opcode, payload). Server frames are
        never masked (RFC 6455 §5.1): one that is fails here."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.rx) >= 2:
                b0, b1 = self.rx[0], self.rx[1]
                assert not b1 & 0x80, "a masked frame from the server"
                n, h = b1 & 0x7F, 2
                if n == 126 and len(self.rx) >= 4:
                    n, h = struct.unpack("!H", self.rx[2:4])[0], 4
                elif n == 127 and len(self.rx) >= 10:
                    n, h = struct.unpack("!Q", self.rx[2:10])[0], 10
                if (b1 & 0x7F) < 126 or h > 2:
                    if len(self.rx) >= h + n:
                        payload, self.rx = self.rx[h:h + n], self.rx[h + n:]
                        return bool(b0 & 0x80), b0 & 0x0F, payload
            self._recv(deadline)

    def message(self, timeout=TIMEOUT):
        """The next text message, pings answered and pongs skipped; a close frame
        raises Closed with its code in .code."""
        while True:
            fin, op, payload = self.frame(timeout)
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                e = Closed("close frame")
                e.code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise e
            assert op == OP_TEXT and fin, f"unexpected frame {op} fin={fin}"
            return payload.decode()

    def xml(self, timeout=TIMEOUT):
        """The next text message parsed as a document of its own (RFC 7395 §3.3.3)."""
        return ET.fromstring(self.message(timeout))

    def close_code(self, timeout=TIMEOUT):
        """Reads until the server's close frame; returns its code (texts before it are
        dropped)."""
        while True:
            try:
                self.message(timeout)
            except Closed as e:
                return getattr(e, "code", None)

    def wait_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._recv(deadline)
        except Closed:
            return True

    # -- XMPP --

    def open_stream(self):
        self.send_text(open_elem())
        o = self.xml()
        assert o.tag == q(NS_FRAMING, "open"), o.tag
        f = self.xml()
        assert f.tag == q(NS_STREAM, "features"), f.tag
        return o, f

    def login(self, user, password, resource="ws"):
        _, f = self.open_stream()
        mechs = [m.text for m in f.iter(q(NS_SASL, "mechanism"))]
        assert "PLAIN" in mechs, mechs
        cred = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send_text(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{cred}</auth>")
        r = self.xml()
        assert r.tag == q(NS_SASL, "success"), ET.tostring(r)
        _, f = self.open_stream()
        assert f.find(q(NS_BIND, "bind")) is not None
        self.send_text(f"<iq xmlns='{NS_CLIENT}' type='set' id='b1'><bind xmlns='{NS_BIND}'>"
                       f"<resource>{resource}</resource></bind></iq>")
        r = self.xml()
        assert r.tag == q(NS_CLIENT, "iq") and r.get("type") == "result", ET.tostring(r)
        self.jid = r.find(f"{q(NS_BIND, 'bind')}/{q(NS_BIND, 'jid')}").text
        return self.jid

    def wait_for(self, pred, timeout=TIMEOUT, what="a matching element"):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            el = self.xml(left)
            if pred(el):
                return el
