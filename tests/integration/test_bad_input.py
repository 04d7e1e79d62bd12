"""
Bad input over raw sockets: each case checks the exact stream error on the wire
(RFC 6120 §4.9: one <stream:error/> holding one defined condition in
urn:ietf:params:xml:ns:xmpp-streams, then </stream:stream>, then the connection closes)
and then that the node still serves everyone else: a fresh pair of clients logs in and
chats, and no process of the node died.

Most cases run on `plain_server` (plaintext allowed, small limits: max_stanza_size
20000, max_depth 16, max_attrs 16); some on `server`, over STARTTLS and Direct TLS.
"""
import ssl
import threading
import time

import pytest

from rawxmpp import NS_CLIENT, RawClient, assert_healthy, header, login, opened, q, stanza_error_condition

# ---- not-well-formed --------------------------------------------------------------------

MALFORMED = {
    "mismatched-end-tag": b"<message to='bob@localhost'><body>hi</message>",
    "duplicate-attribute": b"<message to='bob@localhost' to='bob@localhost'><body>x</body></message>",
    "unquoted-attribute": b"<message to=bob@localhost><body>x</body></message>",
    "lt-in-attribute": b"<message to='a<b'><body>x</body></message>",
    "bad-name": b"<message><1body>x</1body></message>",
    "unbound-prefix": b"<message><foo:body>x</foo:body></message>",
    "stray-end-tag": b"</message>",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_not_well_formed_after_bind(plain_server, data):
    with login(plain_server, "alice") as c:
        c.send(data)
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(plain_server)


def test_not_well_formed_before_auth(plain_server):
    with opened(plain_server) as c:
        c.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'></aut>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(plain_server)


def test_not_well_formed_header(plain_server):
    with RawClient(plain_server) as c:
        c.send(b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' <<>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(plain_server)


BAD_UTF8 = {
    "ff-byte": b"\xff",
    "continuation-alone": b"\x80",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3-byte": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-10ffff": b"\xf4\x90\x80\x80",
    "truncated": b"\xe2\x82x",
}


@pytest.mark.parametrize("where", ["body", "attribute"])
@pytest.mark.parametrize("bad", BAD_UTF8.values(), ids=BAD_UTF8.keys())
def test_invalid_utf8_not_well_formed(plain_server, bad, where):
    with login(plain_server, "alice") as c:
        if where == "body":
            c.send(b"<message to='bob@localhost'><body>a" + bad + b"b</body></message>")
        else:
            c.send(b"<message to='bob@localhost' id='a" + bad + b"b'><body>x</body></message>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(plain_server)


@pytest.mark.parametrize("data", [b"\x00", b"\x01", b"\x1b", b"&#0;", b"&#x1;", b"\xef\xbf\xbe"],
                         ids=["nul", "soh", "esc", "charref-0", "charref-1", "u+fffe"])
def test_characters_outside_xml_not_well_formed(plain_server, data):
    """XML 1.0 §2.2: these are not characters of an XML document."""
    with login(plain_server, "alice") as c:
        c.send(b"<message to='bob@localhost'><body>a" + data + b"b</body></message>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(plain_server)


def test_valid_utf8_and_escapes_pass_intact(plain_server):
    """The other side of the coin: what XML allows is not refused, and arrives intact."""
    with login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        text = "héllo ✓ 𝄞 <&>\"'"
        a.send("<message to='%s' type='chat'><body>h\u00e9llo \u2713 \U0001d11e "
               "&lt;&amp;&gt;&quot;&apos;</body></message>" % b.jid)
        assert b.wait_message().findtext(q(NS_CLIENT, "body")) == text
        a.send(f"<message to='{b.jid}' type='chat'><body>&#65;&#x42;&#x1D11E;</body></message>")
        assert b.wait_message().findtext(q(NS_CLIENT, "body")) == "AB\U0001d11e"


# ---- restricted-xml (RFC 6120 §11.1) ---------------------------------------------------

RESTRICTED_AFTER_BIND = {
    "comment-between-stanzas": b"<!-- a comment -->",
    "comment-in-stanza": b"<message to='bob@localhost'><!-- c --><body>x</body></message>",
    "pi-between-stanzas": b"<?foo bar?>",
    "pi-in-stanza": b"<message to='bob@localhost'><?foo bar?><body>x</body></message>",
    "entity-reference": b"<message to='bob@localhost'><body>&foo;</body></message>",
}


@pytest.mark.parametrize("data", RESTRICTED_AFTER_BIND.values(), ids=RESTRICTED_AFTER_BIND.keys())
def test_restricted_xml_after_bind(plain_server, data):
    """Comments, processing instructions, entity references (other than the five
    predefined ones) are restricted XML. An undeclared entity reference would also be a
    well-formedness error; restricted-xml is the more specific condition and is what we
    expect."""
    with login(plain_server, "alice") as c:
        c.send(data)
        assert c.expect_stream_error() == "restricted-xml"
    assert_healthy(plain_server)


RESTRICTED_HEADER = {
    "doctype": "<!DOCTYPE stream:stream>",
    "internal-subset": "<!DOCTYPE stream:stream [<!ENTITY x 'y'>]>",
    "external-dtd": "<!DOCTYPE stream:stream SYSTEM 'http://example.org/x.dtd'>",
    "comment-before-header": "<!-- hello -->",
    "pi-before-header": "<?foo bar?>",
}


def test_cdata_section_is_allowed(plain_server):
    """CDATA sections are not in RFC 6120 §11.1's list: allowed, and the text arrives."""
    with login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        a.send(f"<message to='{b.jid}' type='chat'><body><![CDATA[<not> & markup]]></body></message>")
        assert b.wait_message().findtext(q(NS_CLIENT, "body")) == "<not> & markup"


@pytest.mark.parametrize("prolog", RESTRICTED_HEADER.values(), ids=RESTRICTED_HEADER.keys())
def test_restricted_xml_in_prolog(plain_server, prolog):
    with RawClient(plain_server) as c:
        h = header(to="localhost")
        decl, rest = h.split("?>", 1)
        c.send(decl + "?>" + prolog + rest)
        assert c.expect_stream_error() == "restricted-xml"
    assert_healthy(plain_server)


def test_xml_declaration_is_allowed(plain_server):
    with RawClient(plain_server) as c:
        attrs, feats = c.open(decl=True)
        assert attrs.get("from") == "localhost"
    with RawClient(plain_server) as c:
        attrs, feats = c.open(decl=False)
        assert attrs.get("from") == "localhost"


# ---- the stream header ------------------------------------------------------------------


def test_wrong_stream_namespace_invalid_namespace(plain_server):
    with RawClient(plain_server) as c:
        c.send(header(to="localhost", stream_ns="http://example.org/streams"))
        assert c.expect_stream_error() == "invalid-namespace"
    assert_healthy(plain_server)


def test_wrong_content_namespace_invalid_namespace(plain_server):
    """RFC 6120 §4.9.3.10: a content namespace other than jabber:client on a client
    stream (here jabber:server) is invalid-namespace."""
    with RawClient(plain_server) as c:
        c.send(header(to="localhost", ns="jabber:server"))
        assert c.expect_stream_error() == "invalid-namespace"
    assert_healthy(plain_server)


def test_other_domain_host_unknown(plain_server):
    with RawClient(plain_server) as c:
        c.send(header(to="example.org"))
        assert c.expect_stream_error() == "host-unknown"
    assert_healthy(plain_server)


def test_missing_version_unsupported_version(plain_server):
    """No version means XMPP 0.9 (RFC 6120 §4.7.5), which the server does not speak."""
    with RawClient(plain_server) as c:
        c.send(header(to="localhost", version=None))
        assert c.expect_stream_error() == "unsupported-version"
    assert_healthy(plain_server)


# ---- limits (policy-violation) ----------------------------------------------------------


def send_while_reading(c, data, chunk=4096):
    """Sends data in chunks and stops once the server has closed the stream (it may do
    so before it read everything: a blocked sendall would then end in a reset, or over
    TLS in SSLEOFError)."""
    for i in range(0, len(data), chunk):
        try:
            c.send(data[i : i + chunk])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            return
        c.pump(time.monotonic())  # a look, without waiting
        if c.eof or any(k == "close" for k, _ in c.events):
            return


def test_stanza_over_max_size_policy_violation(plain_server):
    with login(plain_server, "alice") as c:
        body = b"x" * 30000  # max_stanza_size is 20000
        send_while_reading(c, b"<message to='bob@localhost'><body>" + body + b"</body></message>")
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(plain_server)


def test_stanza_under_max_size_delivered(plain_server):
    with login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        body = "y" * 15000
        a.message(b.jid, body)
        assert b.wait_message(body).get("from") == a.jid


def test_unclosed_element_over_max_size_policy_violation(plain_server):
    """A stanza that never ends still counts against the limit as it grows."""
    with login(plain_server, "alice") as c:
        send_while_reading(c, b"<message to='bob@localhost'><body>" + b"z" * 40000)
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(plain_server)


def test_deep_nesting_policy_violation(plain_server):
    with login(plain_server, "alice") as c:
        depth = 100  # max_depth is 16
        c.send(b"<message to='bob@localhost'>" + b"<a xmlns='urn:x'>" * depth + b"</a>" * depth + b"</message>")
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(plain_server)


def test_nesting_within_limit_delivered(plain_server):
    with login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        depth = 8
        a.send(f"<message to='{b.jid}' id='nest'><body>n</body>" + "<a xmlns='urn:x'>" * depth + "</a>" * depth + "</message>")
        m = b.wait_message("n")
        assert m.get("id") == "nest"


def test_too_many_attributes_policy_violation(plain_server):
    with login(plain_server, "alice") as c:
        attrs = " ".join(f"a{i}='v'" for i in range(40))  # max_attrs is 16
        c.send(f"<message to='bob@localhost'><x xmlns='urn:x' {attrs}/><body>x</body></message>")
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(plain_server)


def test_attributes_within_limit_delivered(plain_server):
    with login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        attrs = " ".join(f"a{i}='v{i}'" for i in range(10))
        a.send(f"<message to='{b.jid}'><body>attrs</body><x xmlns='urn:x' {attrs}/></message>")
        x = b.wait_message("attrs").find("{urn:x}x")
        assert x is not None and x.get("a9") == "v9"


def test_overlong_name_policy_violation(plain_server):
    with login(plain_server, "alice") as c:
        name = "n" * 300  # max_name is 255
        c.send(f"<message to='bob@localhost'><{name} xmlns='urn:x'/></message>")
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(plain_server)


# ---- order of negotiation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "stanza",
    [
        "<message to='bob@localhost'><body>early</body></message>",
        "<presence/>",
        "<iq type='get' id='e1'><ping xmlns='urn:xmpp:ping'/></iq>",
    ],
    ids=["message", "presence", "iq"],
)
def test_stanza_before_auth_not_authorized(plain_server, stanza):
    with opened(plain_server) as c:
        c.send(stanza)
        assert c.expect_stream_error() == "not-authorized"
    assert_healthy(plain_server)


def test_message_after_auth_before_bind_not_authorized(plain_server):
    with opened(plain_server) as c:
        assert c.auth_plain("alice", plain_server.password("alice")).tag.endswith("success")
        c.restart()
        c.send("<message to='bob@localhost'><body>unbound</body></message>")
        assert c.expect_stream_error() == "not-authorized"
    assert_healthy(plain_server)


@pytest.mark.parametrize(
    "element",
    ["<foo/>", "<bar xmlns='urn:example:unknown'/>", "<message xmlns='urn:example:other'/>"],
    ids=["unknown-name", "other-namespace", "message-other-namespace"],
)
def test_unknown_top_level_element_unsupported_stanza_type(plain_server, element):
    with login(plain_server, "alice") as c:
        c.send(element)
        assert c.expect_stream_error() == "unsupported-stanza-type"
    assert_healthy(plain_server)


def test_iq_without_id_bad_request(plain_server):
    """RFC 6120 §8.2.3: an iq must have an id; a stanza error, the stream lives on."""
    with login(plain_server, "alice") as c:
        c.send("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        el = c.stanza()
        assert stanza_error_condition(el) == ("modify", "bad-request")
        assert c.ping_server().get("type") == "result"


# ---- flooding ---------------------------------------------------------------------------


def test_flood_does_not_starve_others(plain_server):
    """One client keeps the node busy with stanzas for as long as two others exchange
    100 round trips; each round trip must still finish promptly. The flooder sends
    batches of 500 stanzas, each followed by a ping, and the next batch as soon as the
    ping is answered: as fast as the node processes them, without running into
    test_fast_sender_is_throttled_not_disconnected."""
    flooder = login(plain_server, "carol")
    stop = threading.Event()
    batches = [0]
    failure = []
    batch = b"".join(
        b"<message type='headline' to='nobody@localhost'><body>flood %d</body></message>" % i for i in range(500)
    )

    def flood():
        try:
            while not stop.is_set():
                flooder.send(batch)
                flooder.ping_server(f"flood{batches[0]}", timeout=10)
                batches[0] += 1
        except (OSError, AssertionError) as e:
            failure.append(e)

    t = threading.Thread(target=flood, daemon=True)
    with flooder, login(plain_server, "alice") as a, login(plain_server, "bob", available=True) as b:
        a.available()
        t.start()
        try:
            while batches[0] < 2 and not failure:  # the flood is under way
                time.sleep(0.01)
            during = batches[0]
            slowest = 0.0
            for i in range(100):
                t0 = time.monotonic()
                a.message(b.jid, f"ping {i}")
                b.wait_message(f"ping {i}", timeout=5)
                b.message(a.jid, f"pong {i}")
                a.wait_message(f"pong {i}", timeout=5)
                slowest = max(slowest, time.monotonic() - t0)
            during = batches[0] - during
            print(f"{during} batches during the chat, slowest round trip {slowest:.3f}s")
        finally:
            stop.set()
            t.join(30)
        assert not failure, f"the flooder was cut off: {failure}"
        assert slowest < 3.0, f"a round trip took {slowest:.2f}s during the flood"
        assert during >= 1, "the flood did not go on during the chat"
    assert_healthy(plain_server)


FAST_STANZAS = 200_000  # about 16 MB


def test_fast_sender_is_throttled_not_disconnected(plain_server):
    """A burst of valid stanzas: the server may slow the sender down (stop reading,
    so TCP pushes back) but must process all of it; the ping after it is answered."""
    with login(plain_server, "carol") as c:
        batch = b"".join(
            b"<message type='headline' to='nobody@localhost'><body>burst %d</body></message>" % i
            for i in range(1000)
        )
        for _ in range(FAST_STANZAS // 1000):
            c.send(batch)
        assert c.ping_server("after-burst", timeout=30).get("type") == "result"
    assert_healthy(plain_server)


# ---- over TLS ---------------------------------------------------------------------------


def test_not_well_formed_over_starttls(server):
    with login(server, "alice") as c:
        c.send(b"<message to='bob@localhost'><body>hi</body></mess>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(server)


def test_restricted_xml_over_direct_tls(server):
    c = RawClient(server, direct_tls=True)
    with c:
        c.login("alice", server.password("alice"), "dtls")
        c.send(b"<!-- no comments -->")
        assert c.expect_stream_error() == "restricted-xml"
    assert_healthy(server)


def test_invalid_utf8_over_direct_tls_before_auth(server):
    with opened(server, direct_tls=True) as c:
        c.send(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PL\xffAIN'/>")
        assert c.expect_stream_error() == "not-well-formed"
    assert_healthy(server)


def test_stanza_over_max_size_over_tls(server):
    """The default limit (256 KiB), across many TLS records."""
    with login(server, "alice") as c:
        send_while_reading(c, b"<message to='bob@localhost'><body>" + b"x" * 300000 + b"</body></message>", 16384)
        assert c.expect_stream_error() == "policy-violation"
    assert_healthy(server)


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a TLS ClientHello\r\n" * 10, b"foo", b"\0", b"\x16\x01"],
    ids=["text", "short", "nul", "bad-version"],
)
def test_garbage_instead_of_tls_handshake(server, garbage):
    """Plain bytes where the TLS handshake should be: the connection closes at once (no
    XML can be spoken any more), even when they are fewer than a TLS record header, and
    the node is unharmed. (Held until the 30 s handshake timeout, a client would see
    the same; here it must come well before.)"""
    with opened(server) as c:
        c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        assert c.stanza().tag == "{urn:ietf:params:xml:ns:xmpp-tls}proceed"
        c.stop_parsing()  # a TLS alert may come back
        c.send(garbage)
        assert c.wait_eof(3)
    assert_healthy(server)


def test_bytes_pipelined_after_starttls_close_at_once(server):
    """Bytes sent behind <starttls/> without waiting for <proceed/> predate TLS and are
    never used (CVE-2011-0411); a client that sends them will not complete a handshake,
    so the connection closes at once rather than at the handshake timeout."""
    with RawClient(server) as c:
        c.send(header() + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><presence/>")
        c.stop_parsing()
        assert c.wait_eof(3)
        assert b"<proceed" in c.received
    assert_healthy(server)


def test_whitespace_after_starttls_is_harmless(server):
    """Whitespace behind <starttls/> (a newline after the element) is not garbage."""
    with RawClient(server) as c:
        c.send(header() + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\n")
        c.read_header_and_features()
        assert c.stanza().tag == "{urn:ietf:params:xml:ns:xmpp-tls}proceed"
        c.sock = c.tls_ctx.wrap_socket(c.sock, server_hostname=c.domain)
        c.reset_parser()
        c.open()
        assert c.auth_plain("alice", server.password("alice")).tag.endswith("success")
