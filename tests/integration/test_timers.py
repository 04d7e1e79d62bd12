"""
Timers of a stream (a node of their own each, with short durations): the handshake
deadline (connection-timeout), XEP-0199 pings to idle clients and whitespace
keepalives (RFC 6120 §4.6.1). The server's clock ticks once a second, so a timer of N
seconds fires within N to N+2 seconds.
"""
import time

from rawxmpp import NS_CLIENT, RawClient, assert_healthy, login, opened, q


def test_handshake_timeout_connection_timeout(make_server):
    s = make_server(c2s={"handshake_timeout": 1})
    bound = login(s, "bob")  # a bound session has no handshake deadline
    silent = RawClient(s)  # sends nothing at all
    header_only = opened(s)  # opens the stream, then nothing
    with bound, silent, header_only:
        t0 = time.monotonic()
        assert header_only.expect_stream_error(timeout=5) == "connection-timeout"
        assert silent.expect_stream_error(timeout=5) == "connection-timeout"
        assert time.monotonic() - t0 < 4
        # More than the handshake timeout has passed: the bound client is unaffected.
        assert bound.ping_server(timeout=5).get("type") == "result"
    assert_healthy(s)


def test_idle_client_is_pinged(make_server):
    """XEP-0199: a client quiet for c2s.idle_timeout gets a ping from the server."""
    s = make_server(c2s={"idle_timeout": 1, "keepalive": 0})
    with login(s, "bob") as c:
        ping = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq"), timeout=5, what="a ping")
        assert ping.get("type") == "get"
        assert ping.get("from") == "localhost" and ping.get("to") == c.jid
        assert ping.find("{urn:xmpp:ping}ping") is not None
        c.send(f"<iq type='result' id='{ping.get('id')}' to='localhost'/>")
        assert c.ping_server().get("type") == "result"


def test_whitespace_keepalive(make_server):
    s = make_server(c2s={"keepalive": 1, "idle_timeout": 0})
    with login(s, "bob") as c:
        before = len(c.received)
        deadline = time.monotonic() + 5
        while len(c.received) == before and time.monotonic() < deadline:
            c.pump(deadline)
        assert bytes(c.received[before:]).strip() == b"", bytes(c.received[before:])
        assert len(c.received) > before, "no keepalive within 5 s"
        assert c.ping_server().get("type") == "result"
