"""
A raw XMPP client over a blocking socket, for exact wire checks and bad input.

RawClient keeps every byte it received (`received`) and parses the stream with
ElementTree's pull parser: next() returns ('open', attrs) for the server's stream header,
('stanza', element) for each first-level child, ('close', None) for </stream:stream> and
('eof', None) when the server closed the connection. Stream restarts (after STARTTLS and
SASL success) start a new parser, as RFC 6120 §4.3.3 asks.

Also here: client-side SCRAM (RFC 5802/7677) with channel binding, so -PLUS mechanisms can
be driven by hand.
"""
import base64
import hashlib
import hmac
import itertools
import os
import select
import socket
import ssl
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS_STREAM = "http://etherx.jabber.org/streams"
NS_CLIENT = "jabber:client"
NS_STREAMS_ERR = "urn:ietf:params:xml:ns:xmpp-streams"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"
NS_SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SASL_CB = "urn:xmpp:sasl-cb:0"
NS_PING = "urn:xmpp:ping"

DEFAULT_TIMEOUT = 5.0


def q(ns, name):
    return "{%s}%s" % (ns, name)


class StreamClosed(AssertionError):
    pass


def header(to="localhost", version="1.0", ns=NS_CLIENT, stream_ns=NS_STREAM, decl=True, extra=""):
    """A client stream header. Pass None to leave an attribute out."""
    s = "<?xml version='1.0'?>" if decl else ""
    s += "<stream:stream"
    if to is not None:
        s += " to=" + quoteattr(to)
    if version is not None:
        s += " version=" + quoteattr(version)
    if ns is not None:
        s += " xmlns=" + quoteattr(ns)
    s += " xmlns:stream=" + quoteattr(stream_ns) + extra + ">"
    return s


def tls_context(cafile, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(cafile))
    ctx.check_hostname = True
    if max_version is not None:
        ctx.maximum_version = max_version
    return ctx


class RawClient:
    def __init__(self, server, port=None, direct_tls=False, tls_ctx=None, timeout=DEFAULT_TIMEOUT,
                 stream_extra="", source=None):
        """stream_extra: raw attributes every stream header of ours gets (namespace
        declarations, say). source: the client's own address (127.0.0.2...), for the
        limits per address."""
        self.server = server
        self.stream_extra = stream_extra
        self.domain = server.domain
        self.timeout = timeout
        self.tls_ctx = tls_ctx or tls_context(server.cert)
        self.jid = None
        self.received = bytearray()
        port = port or (server.tls_port if direct_tls else server.port)
        # Federation peers (peers.py) listen on addresses of their own.
        self.sock = socket.create_connection((getattr(server, "host", "127.0.0.1"), port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if direct_tls:
            self.sock = self.tls_ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.eof = False
        self.reset_parser()

    # -- bytes --

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def pump(self, deadline):
        """Reads what arrives until `deadline` (time.monotonic()) at most, one read;
        feeds the parser. False when nothing came."""
        if self.eof:
            return False
        buffered = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not buffered:  # select() cannot see plaintext OpenSSL already holds
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False
        try:
            data = self.sock.recv(65536)
        except (ssl.SSLWantReadError, BlockingIOError):
            return True
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        except ssl.SSLError as e:
            if "APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in str(e):
                data = b""
            else:
                raise
        if not data:
            self.eof = True
            self.events.append(("eof", None))
            return True
        self.received += data
        self._feed(data)
        return True

    def wait_eof(self, timeout=None):
        """Reads (and parses) until the server closes the connection. True if it did."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof and time.monotonic() < deadline:
            self.pump(deadline)
        return self.eof

    # -- parsing --

    def reset_parser(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.events = []
        self.parse_error = None

    def stop_parsing(self):
        """From now on only collect bytes (what follows is not XML: TLS, say)."""
        self.parse_error = "stopped"

    def _feed(self, data):
        if self.parse_error:
            return
        try:
            self.parser.feed(data)
            for ev, el in self.parser.read_events():
                if ev == "start":
                    self.depth += 1
                    if self.depth == 1:
                        self.root = el
                        self.events.append(("open", dict(el.attrib)))
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.events.append(("stanza", el))
                        self.root.remove(el)  # the tree keeps only what is unread
                    elif self.depth == 0:
                        self.events.append(("close", None))
        except ET.ParseError as e:
            self.parse_error = e
            raise AssertionError(f"server sent bad XML ({e}): {bytes(self.received)!r}")

    def next(self, timeout=None):
        """The next event; AssertionError on timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.events:
            if not self.pump(deadline) and not self.events:
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"nothing from the server in time; so far: {bytes(self.received[-2000:])!r}"
                    )
        return self.events.pop(0)

    def stanza(self, timeout=None):
        """The next first-level element; StreamClosed if the stream ends instead."""
        while True:
            kind, val = self.next(timeout)
            if kind == "stanza":
                if val.tag == q(NS_STREAM, "error"):
                    raise StreamClosed(f"stream error: {stream_error_condition(val)}")
                return val
            if kind in ("close", "eof"):
                raise StreamClosed(f"stream ended ({kind}); received {bytes(self.received[-2000:])!r}")
            # 'open' of a restarted stream: skip

    def wait_for(self, pred, timeout=None, what="a matching stanza"):
        """Skips stanzas until pred(el); returns it."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} in time")
            el = self.stanza(left)
            if pred(el):
                return el

    def expect_stream_error(self, timeout=None):
        """Reads until the connection closes. Checks that the stream ends with exactly
        one <stream:error/> whose defined condition is in the streams namespace,
        followed directly by </stream:stream>, and then the connection closing
        (RFC 6120 §4.9.1.1). Stanzas before the error are skipped. Returns the
        condition's name."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        err, after = None, []
        while not self.eof:
            if not self.pump(deadline) and time.monotonic() >= deadline:
                raise AssertionError(
                    f"stream not closed in time (error={err}, then {after}); "
                    f"received {bytes(self.received[-2000:])!r}"
                )
            while self.events:
                kind, val = self.events.pop(0)
                if kind == "stanza" and val.tag == q(NS_STREAM, "error"):
                    assert err is None, "two stream errors"
                    err = stream_error_condition(val)
                elif err is not None:
                    after.append(kind if kind != "stanza" else val.tag)
        tail = bytes(self.received[-2000:])
        assert err is not None, f"no stream error; received {tail!r}"
        assert after == ["close", "eof"], f"after the error came {after}, not the stream's end: {tail!r}"
        return err

    # -- negotiation --

    def open(self, **kw):
        """Sends our stream header; returns (server header attrs, features element)."""
        kw.setdefault("extra", self.stream_extra)
        self.send(header(to=self.domain, **kw))
        return self.read_header_and_features()

    def read_header_and_features(self):
        kind, attrs = self.next()
        assert kind == "open", f"expected a stream header, got {kind}: {bytes(self.received)!r}"
        feats = self.stanza()
        assert feats.tag == q(NS_STREAM, "features"), ET.tostring(feats)
        return attrs, feats

    def starttls(self):
        self.send(f"<starttls xmlns='{NS_TLS}'/>")
        el = self.stanza()
        assert el.tag == q(NS_TLS, "proceed"), ET.tostring(el)
        self.sock.settimeout(self.timeout)
        self.sock = self.tls_ctx.wrap_socket(self.sock, server_hostname=self.domain)
        self.reset_parser()

    def auth_plain(self, user, password):
        """Sends PLAIN; returns the answer (<success/> or <failure/>)."""
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return self.stanza()

    def restart(self):
        self.reset_parser()
        return self.open()

    def bind(self, resource=None):
        """Binds; returns the full JID (AssertionError on an error)."""
        el = self.bind_raw(resource)
        assert el.get("type") == "result", ET.tostring(el)
        self.jid = el.find(f"{{{NS_BIND}}}bind/{{{NS_BIND}}}jid").text
        return self.jid

    def bind_raw(self, resource=None, iq_id="bind1"):
        res = f"<resource>{escape(resource)}</resource>" if resource else ""
        self.send(f"<iq type='set' id='{iq_id}'><bind xmlns='{NS_BIND}'>{res}</bind></iq>")
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id)

    def login(self, user, password, resource=None, tls=True, available=False):
        """Stream, STARTTLS (unless tls is False or the socket is already TLS), PLAIN,
        restart, bind; optionally available presence (waiting for its echo). Returns the
        full JID."""
        _, feats = self.open()
        if tls and not isinstance(self.sock, ssl.SSLSocket):
            assert feats.find(q(NS_TLS, "starttls")) is not None, ET.tostring(feats)
            self.starttls()
            _, feats = self.open()
        el = self.auth_plain(f"{user}", password)
        assert el.tag == q(NS_SASL, "success"), ET.tostring(el)
        _, feats = self.restart()
        assert feats.find(q(NS_BIND, "bind")) is not None, ET.tostring(feats)
        jid = self.bind(resource)
        if available:
            self.available()
        return jid

    def available(self, priority=None):
        """Sends available presence and waits until the router echoes it back (so the
        session is available in the router before anyone addresses it)."""
        prio = f"<priority>{priority}</priority>" if priority is not None else ""
        self.send(f"<presence>{prio}</presence>")
        self.wait_for(
            lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == self.jid and e.get("type") is None,
            what="the echo of our presence",
        )

    def message(self, to, body, mtype="chat", mid=None, extra_attrs=""):
        mid = f" id={quoteattr(mid)}" if mid else ""
        self.send(f"<message to={quoteattr(to)} type='{mtype}'{mid}{extra_attrs}><body>{escape(body)}</body></message>")

    def wait_message(self, body=None, timeout=None):
        """The next <message/> (with this body, if given), skipping other stanzas."""

        def match(e):
            return e.tag == q(NS_CLIENT, "message") and (body is None or e.findtext(q(NS_CLIENT, "body")) == body)

        return self.wait_for(match, timeout, what=f"message {body!r}")

    def ping_server(self, iq_id="ping1", timeout=None):
        self.send(f"<iq type='get' id='{iq_id}' to='{self.domain}'><ping xmlns='{NS_PING}'/></iq>")
        return self.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id, timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def stream_error_condition(el):
    """The defined condition of a <stream:error/>: exactly one child in the streams
    namespace other than <text/>."""
    conds = [c for c in el if c.tag.startswith("{%s}" % NS_STREAMS_ERR) and c.tag != q(NS_STREAMS_ERR, "text")]
    assert len(conds) == 1, f"stream error with {len(conds)} conditions: {ET.tostring(el)!r}"
    return conds[0].tag.split("}", 1)[1]


def stanza_error_condition(el):
    """(type, condition) of a stanza of type error."""
    assert el.get("type") == "error", ET.tostring(el)
    err = el.find(q(NS_CLIENT, "error"))
    assert err is not None, ET.tostring(el)
    conds = [c for c in err if c.tag.startswith("{%s}" % NS_STANZAS) and c.tag != q(NS_STANZAS, "text")]
    assert len(conds) == 1, ET.tostring(el)
    return err.get("type"), conds[0].tag.split("}", 1)[1]


def mechanisms(features):
    mechs = features.find(q(NS_SASL, "mechanisms"))
    return [m.text for m in mechs] if mechs is not None else []


def cb_types(features):
    cb = features.find(q(NS_SASL_CB, "sasl-channel-binding"))
    return [c.get("type") for c in cb] if cb is not None else []


# ---- SCRAM (RFC 5802, RFC 7677) --------------------------------------------------------


class Scram:
    """The client side of SCRAM-SHA-1/256(-PLUS). cb_name/cb_data give the channel
    binding for -PLUS (gs2 flag p=); gs2_flag may be forced to 'n' or 'y'."""

    def __init__(self, user, password, hash_name="sha256", cb_name=None, cb_data=b"", gs2_flag=None):
        self.user, self.password = user, password
        self.hash = hash_name
        if gs2_flag is None:
            gs2_flag = f"p={cb_name}" if cb_name else "n"
        self.gs2 = f"{gs2_flag},,".encode()
        self.cb_data = cb_data if gs2_flag.startswith("p=") else b""
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = f"n={user},r={self.nonce}"
        self.server_signature = None

    def H(self, b):
        return hashlib.new(self.hash, b).digest()

    def HMAC(self, k, b):
        return hmac.new(k, b, self.hash).digest()

    def first(self):
        return base64.b64encode(self.gs2 + self.client_first_bare.encode()).decode()

    def final(self, challenge_b64, cb_data=None):
        server_first = base64.b64decode(challenge_b64).decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce), server_first
        salt = base64.b64decode(attrs["s"])
        it = int(attrs["i"])
        cbind = self.gs2 + (self.cb_data if cb_data is None else cb_data)
        without_proof = f"c={base64.b64encode(cbind).decode()},r={attrs['r']}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        salted = hashlib.pbkdf2_hmac(self.hash, self.password.encode(), salt, it)
        client_key = self.HMAC(salted, b"Client Key")
        stored_key = self.H(client_key)
        sig = self.HMAC(stored_key, auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        server_key = self.HMAC(salted, b"Server Key")
        self.server_signature = self.HMAC(server_key, auth_message)
        msg = f"{without_proof},p={base64.b64encode(proof).decode()}"
        return base64.b64encode(msg.encode()).decode()

    def check_success(self, text_b64):
        final = base64.b64decode(text_b64 or "").decode()
        assert final.startswith("v="), f"server-final-message {final!r}"
        assert base64.b64decode(final[2:]) == self.server_signature, "wrong server signature"


def cert_hash_for_end_point(der):
    """RFC 5929 §4.1 for the certificates gencert makes (ecdsa-with-SHA256 or
    sha256WithRSAEncryption, by their OIDs in the DER): SHA-256; SHA-384/512 when
    signed so."""
    oids = {
        bytes.fromhex("2a8648ce3d040303"): "sha384",  # ecdsa-with-SHA384
        bytes.fromhex("2a8648ce3d040304"): "sha512",  # ecdsa-with-SHA512
        bytes.fromhex("2a864886f70d01010c"): "sha384",  # sha384WithRSAEncryption
        bytes.fromhex("2a864886f70d01010d"): "sha512",  # sha512WithRSAEncryption
    }
    name = "sha256"
    for oid, h in oids.items():
        if oid in der:
            name = h
    return hashlib.new(name, der).digest()


# ---- helpers the tests share ------------------------------------------------------------

_ids = itertools.count()


def login(server, user, resource=None, available=False, priority=None):
    """A RawClient logged in to a node (conftest.Server): in plaintext on a node that
    allows it, else over STARTTLS; with a fresh resource unless one is given."""
    plain = not server.groups.get("c2s", {}).get("require_encryption", True)
    c = RawClient(server)
    c.login(user, server.password(user), resource or f"r{next(_ids)}", tls=not plain)
    if available:
        c.available(priority)
    return c


def opened(server, **kw):
    """A RawClient whose stream is open (header and features read), not logged in."""
    c = RawClient(server, **kw)
    c.open()
    return c


def assert_healthy(server):
    """The node still serves: two new clients log in and exchange a message both
    ways, and (unless the node is expected to lose processes) none of its processes
    died since it started."""
    with login(server, "alice") as a, login(server, "bob", available=True) as b:
        a.available()
        body = f"healthy {next(_ids)}"
        a.message(b.jid, body)
        assert b.wait_message(body).get("from") == a.jid
        b.message(a.jid, "re: " + body)
        assert a.wait_message("re: " + body).get("from") == b.jid
    if server.expect_stable:
        server.assert_stable()
