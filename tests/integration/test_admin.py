"""
The admin listener (admin.listen) and draining, against a real node.

/health, /ready and /metrics are read with Python's http.client and the exposition is
parsed with prometheus_client's own parser (python3-prometheus-client), so a format error
fails here. The numbers must move with what clients do: three logins, a failed one,
messages. Hostile requests (oversize, slowloris, too many connections, garbage, other
methods and versions) get their HTTP error and leave the node serving. Draining
(starlingctl drain, SIGUSR1) fails /ready at once, refuses new logins with the stream
error the design says (see-other-host naming admin.drain_redirect, else system-shutdown),
ends the remaining client streams with it after admin.drain_grace, and undrain (SIGUSR2,
starlingctl undrain) serves again.
"""
import http.client
import re
import signal
import socket
import time

from prometheus_client.parser import text_string_to_metric_families

import rawxmpp
from conftest import free_port
from rawxmpp import NS_STREAMS_ERR, RawClient, login


def admin_node(make_server, c2s=None, **admin):
    port = free_port()
    cfg = {"listen": f"127.0.0.1:{port}", "timeout": 2, "max_connections": 4}
    cfg.update(admin)
    s = make_server(admin=cfg, c2s=c2s or {})
    s.admin_port = port
    # make_server waits for the router and c2s; /ready waits for s2s too.
    wait_until(lambda: get(s, "/ready")[0] == 200, what="/ready at start")
    return s


def get(server, path, version=11):
    c = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5)
    if version == 10:
        c._http_vsn, c._http_vsn_str = 10, "HTTP/1.0"
    c.request("GET", path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, r.getheader("Content-Type"), body


def metrics(server):
    """{(name, frozenset(labels.items())): value} of every sample."""
    status, ctype, body = get(server, "/metrics")
    assert status == 200, body
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def m(values, name, **labels):
    return values[(name, frozenset(labels.items()))]


def wait_until(pred, timeout=10.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen in {timeout}s")
        time.sleep(0.05)


def raw_http(server, data, timeout=10.0):
    """Sends bytes, reads until the server closes; the answer's status line."""
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        got = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return got.split(b"\r\n", 1)[0].decode(errors="replace"), got


# ---- the endpoints ------------------------------------------------------------------------


def test_endpoints(make_server):
    s = admin_node(make_server)
    assert get(s, "/health") == (200, "text/plain; charset=utf-8", "ok\n")
    assert get(s, "/ready")[:3:2] == (200, "ready\n")
    assert get(s, "/ready", version=10)[0] == 200  # HAProxy's httpchk speaks 1.0
    assert get(s, "/ready?check=1")[0] == 200
    assert get(s, "/nothing")[0] == 404
    v = metrics(s)
    for proc in ("router", "c2s", "s2s"):
        assert m(v, "starling_process_up", process=proc) == 1
    assert m(v, "starling_ready") == 1
    assert m(v, "starling_draining") == 0
    assert m(v, "starling_c2s_connections") == 0
    # The rings' size is the node's; nothing waits in them when idle.
    assert m(v, "starling_ring_size_bytes") >= 1 << 20
    assert m(v, "starling_ring_bytes", direction="to_router") == 0
    assert ("starling_store_request_seconds_count", frozenset({("backend", "sqlite")})) in v


def test_metrics_move(make_server):
    s = admin_node(make_server)
    before = metrics(s)
    clients = [login(s, u, available=True) for u in ("alice", "bob", "carol")]
    try:
        v = wait_until(
            lambda: (lambda v: v if m(v, "starling_c2s_connections") == 3 else None)(metrics(s)),
            what="3 connections in the gauge",
        )
        assert m(v, "starling_c2s_logins_total") == m(before, "starling_c2s_logins_total") + 3
        assert m(v, "starling_c2s_auth_failures_total") == m(before, "starling_c2s_auth_failures_total")
        # Each login asked the store for its credentials, and the router for the state.
        assert (m(v, "starling_store_request_seconds_count", backend="sqlite")
                >= m(before, "starling_store_request_seconds_count", backend="sqlite") + 3)
        assert m(v, "starling_stanzas_in_total", front_end="c2s", kind="presence") >= 3

        # A wrong password: one more failure, no more logins.
        bad = RawClient(s)
        bad.open()
        bad.starttls()
        bad.open()
        assert bad.auth_plain("dave", "wrong").tag == rawxmpp.q(rawxmpp.NS_SASL, "failure")
        v2 = metrics(s)
        assert m(v2, "starling_c2s_auth_failures_total") == m(v, "starling_c2s_auth_failures_total") + 1
        assert m(v2, "starling_c2s_logins_total") == m(v, "starling_c2s_logins_total")
        assert m(v2, "starling_c2s_connections") == 4
        bad.close()

        a, b, _ = clients
        for i in range(2):
            a.message(b.jid, f"metrics {i}")
            b.wait_message(f"metrics {i}")
        v3 = metrics(s)
        msg_in = ("starling_stanzas_in_total", frozenset({("front_end", "c2s"), ("kind", "message")}))
        msg_out = ("starling_stanzas_out_total", frozenset({("front_end", "c2s"), ("kind", "message")}))
        assert v3[msg_in] == v2[msg_in] + 2
        assert v3[msg_out] >= v2[msg_out] + 2
        assert m(v3, "starling_router_deliveries_total") >= m(v2, "starling_router_deliveries_total") + 2
        assert m(v3, "starling_router_frames_total", direction="in") > m(v2, "starling_router_frames_total", direction="in")
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: m(metrics(s), "starling_c2s_connections") == 0, what="the gauge back to 0")


# ---- hostile requests ---------------------------------------------------------------------


def test_hostile_requests(make_server):
    s = admin_node(make_server, max_request="1K")
    # Oversize: headers past admin.max_request, a request line past it.
    line, _ = raw_http(s, b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 2000 + b"\r\n\r\n")
    assert line == "HTTP/1.1 431 Request Header Fields Too Large"
    line, _ = raw_http(s, b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n")
    assert line == "HTTP/1.1 414 URI Too Long"
    # Garbage, a TLS ClientHello, other methods and versions.
    assert raw_http(s, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")[0] == "HTTP/1.1 400 Bad Request"
    assert raw_http(s, b"hello there\r\n\r\n")[0] == "HTTP/1.1 400 Bad Request"
    assert raw_http(s, b"GET / HTTP/1.1\r\n\r\n")[0] == "HTTP/1.1 400 Bad Request"  # no Host
    line, whole = raw_http(s, b"POST /ready HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert line == "HTTP/1.1 405 Method Not Allowed" and b"\r\nAllow: GET\r\n" in whole
    assert raw_http(s, b"DELETE /metrics HTTP/1.0\r\n\r\n")[0] == "HTTP/1.1 405 Method Not Allowed"
    assert raw_http(s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")[0] == "HTTP/1.1 505 HTTP Version Not Supported"

    # A slowloris: half a request, then nothing; after admin.timeout (2 s) it hears 408.
    with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        t0 = time.monotonic()
        got = slow.recv(4096)
        assert got.startswith(b"HTTP/1.1 408 Request Timeout"), got
        assert 1.0 < time.monotonic() - t0 < 8.0

    # admin.max_connections (4) held open by idle clients: a fifth gets 503 at once, and
    # the listener serves again once they are gone.
    idle = [socket.create_connection(("127.0.0.1", s.admin_port), timeout=5) for _ in range(4)]
    try:
        time.sleep(0.2)  # accepted by the supervisor
        assert raw_http(s, b"")[0] == "HTTP/1.1 503 Service Unavailable"
    finally:
        for c in idle:
            c.close()
    wait_until(lambda: get(s, "/health")[0] == 200, what="/health answering again")
    # None of it hurt the node.
    rawxmpp.assert_healthy(s)
    assert get(s, "/ready")[0] == 200


# ---- draining -----------------------------------------------------------------------------


def see_other_host_text(client):
    """The text of <see-other-host/> in what the client received."""
    got = bytes(client.received).decode(errors="replace")
    found = re.search(r"<see-other-host xmlns='%s'>([^<]*)</see-other-host>" % NS_STREAMS_ERR, got)
    return found.group(1) if found else None


def new_login_refused(s, direct_tls=False):
    """A new client's stream ends with the drain's stream error before it can log in; the
    condition. Over STARTTLS the error comes at the first header under TLS."""
    c = RawClient(s, direct_tls=direct_tls)
    if not direct_tls:
        c.open()
        c.starttls()
    c.send(rawxmpp.header(to=s.domain))
    cond = c.expect_stream_error()
    return cond, c


def test_drain_with_redirect(make_server):
    s = admin_node(make_server, drain_grace=2, drain_redirect="127.0.0.1:5999", pid_file="starling.pid")
    pid_file = s.dir / "starling.pid"
    assert int(pid_file.read_text()) == s.proc.pid
    a = login(s, "alice", available=True)
    b = login(s, "bob", available=True)

    r = s.ctl("drain")
    assert "sent to starling" in r.stdout
    t0 = time.monotonic()
    wait_until(lambda: get(s, "/ready")[0] == 503, what="/ready failing")
    assert get(s, "/ready")[::2] == (503, "draining\n")
    assert get(s, "/health")[0] == 200  # alive all the same
    assert m(metrics(s), "starling_draining") == 1

    for direct in (False, True):
        cond, c = new_login_refused(s, direct_tls=direct)
        assert cond == "see-other-host"
        assert see_other_host_text(c) == "127.0.0.1:5999"
        c.close()

    # The clients logged in before the drain hear it after admin.drain_grace.
    for c in (a, b):
        assert c.expect_stream_error(timeout=15) == "see-other-host"
        assert see_other_host_text(c) == "127.0.0.1:5999"
        c.close()
    assert time.monotonic() - t0 >= 1.5
    assert get(s, "/ready")[0] == 503  # still draining, still running
    assert s.proc.poll() is None

    s.ctl("undrain")
    wait_until(lambda: get(s, "/ready")[0] == 200, what="/ready back")
    assert m(metrics(s), "starling_draining") == 0
    rawxmpp.assert_healthy(s)
    rc = s.stop()
    assert rc == 0
    assert not pid_file.exists()


def test_drain_signal_system_shutdown(make_server):
    # Plaintext allowed too, to meet the refusal at <auth/> on a stream without TLS; the
    # grace long enough that nothing here waits for it.
    s = admin_node(make_server, drain_grace=600,
                   c2s={"require_encryption": False, "allow_plain_without_tls": True})
    a = login(s, "alice", available=True)
    before = m(metrics(s), "starling_c2s_logins_total")
    s.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: get(s, "/ready")[0] == 503, what="/ready failing")
    cond, c = new_login_refused(s)
    assert cond == "system-shutdown"
    c.close()
    plain = RawClient(s)
    plain.open()
    plain.send("<auth xmlns='%s' mechanism='PLAIN'>AGJvYgBib2ItcHc=</auth>" % rawxmpp.NS_SASL)
    assert plain.expect_stream_error() == "system-shutdown"
    assert b"<success" not in plain.received and b"<failure" not in plain.received
    plain.close()
    # Refused at once, not at the grace's end: alice is still served.
    assert a.ping_server().get("type") == "result"
    assert m(metrics(s), "starling_c2s_logins_total") == before

    # Undrained within the grace: alice was never cut off, and logins work again.
    s.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: get(s, "/ready")[0] == 200, what="/ready back")
    with login(s, "bob") as b:
        assert b.jid
    assert m(metrics(s), "starling_c2s_logins_total") == before + 1
    assert a.ping_server("ping2").get("type") == "result"
    a.close()


def test_drain_grace_system_shutdown(make_server):
    s = admin_node(make_server, drain_grace=1)
    a = login(s, "alice", available=True)
    s.proc.send_signal(signal.SIGUSR1)
    assert a.expect_stream_error(timeout=15) == "system-shutdown"
    a.close()
    assert get(s, "/ready")[0] == 503 and s.proc.poll() is None


def test_drain_needs_pid_file(make_server):
    s = admin_node(make_server)
    r = s.ctl("drain", check=False)
    assert r.returncode == 1 and "admin.pid_file is not set" in r.stderr
    assert get(s, "/ready")[0] == 200
