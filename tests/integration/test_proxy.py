"""
The PROXY protocol (c2s.proxy_from) behind a real HAProxy: Debian's /usr/sbin/haproxy in
TCP mode, started here in the foreground (-db) with a config of ours, on a loopback
address of its own (claimed as peers.py claims addresses), in front of one starling node.
Its frontends reach the node's two listeners with `send-proxy` (v1) and `send-proxy-v2`;
one more on [::1] carries IPv6 clients; two backends run health checks (`check`, which
with send-proxy-v2 sends the LOCAL command; with send-proxy a v1 header). Clients connect from loopback addresses of
their own (127.0.0.51...), so the node sees them apart only through the header.

Checked: the client's address reaches the log with the balancer's and the stream works
over every frontend (the bytes after the header, stream header or ClientHello, are not
lost); c2s.max_connections_per_address and c2s.auth_failures_per_address count real
clients; a connection from the balancer's address without a header, or with none in time,
is closed without a byte; a header from anywhere else is not read (the stream fails as
XML, no address taken from it); health checks leave no warning and no DOWN server.
"""
import re
import signal
import socket
import subprocess
import time
import types
from pathlib import Path

import pytest

from conftest import _stop_cleanly, free_port, start_server
from peers import AddressClaim
from rawxmpp import RawClient, header

HAPROXY = Path("/usr/sbin/haproxy")

pytestmark = pytest.mark.skipif(not HAPROXY.exists(), reason="haproxy is not installed (deploy/deps.sh)")

# Frontend name -> (PROXY version, the node's listener, bind address family).
FRONTENDS = {
    "v1-starttls": ("send-proxy", "port", "4"),
    "v2-starttls": ("send-proxy-v2", "port", "4"),
    "v1-tls": ("send-proxy", "tls_port", "4"),
    "v2-tls": ("send-proxy-v2", "tls_port", "4"),
    "v2-starttls-ipv6": ("send-proxy-v2", "port", "6"),
}


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class HAProxy:
    """HAProxy on `ip`, one frontend per FRONTENDS entry in front of `node`, and two
    backends that only run health checks against it (v1 and v2), every 100 ms."""

    def __init__(self, workdir, ip, check_ips, node):
        self.ip, self.check_ips, self.node = ip, check_ips, node
        self.dir = Path(workdir)
        self.ports = {}
        lines = [
            "global",
            "    maxconn 500",
            "    log stdout format raw local0",
            "defaults",
            "    mode tcp",
            "    log global",
            "    option log-health-checks",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
        ]
        for name, (send, listener, fam) in FRONTENDS.items():
            if fam == "6" and not _ipv6_loopback():
                continue
            port = free_port()
            self.ports[name] = port
            bind = f"[::1]:{port}" if fam == "6" else f"{ip}:{port}"
            lines += [
                f"frontend {name}",
                f"    bind {bind}",
                f"    default_backend {name}",
                f"backend {name}",
                f"    source {ip}",
                f"    server node 127.0.0.1:{getattr(node, listener)} {send}",
            ]
        # Each from an address of its own: one check at a time per address, so that
        # they never meet c2s.max_connections_per_address = 1. The v1 one only connects
        # (and resets the connection at once: the node mostly never reads it); the v2 one
        # (LOCAL) opens a stream and waits for the node's features.
        opening = header().replace('"', "'")
        lines += [
            "backend checks-v1",
            f"    source {check_ips[0]}",
            "    option tcp-check",
            f"    server node 127.0.0.1:{node.port} send-proxy check inter 100ms",
            "backend checks-v2",
            f"    source {check_ips[1]}",
            "    option tcp-check",
            f'    tcp-check send "{opening}"',
            "    tcp-check expect string <stream:features>",
            f"    server node 127.0.0.1:{node.port} send-proxy-v2 check inter 100ms",
        ]
        self.conf = self.dir / "haproxy.cfg"
        self.conf.write_text("\n".join(lines) + "\n")
        self.log_path = self.dir / "haproxy.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(HAPROXY), "-db", "-f", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.monotonic() + 10
        while not all(self._accepts(n) for n in self.ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start:\n{self.log_text()}")
            time.sleep(0.05)

    def _accepts(self, name):
        host = "::1" if name.endswith("ipv6") else self.ip
        try:
            with socket.create_connection((host, self.ports[name]), timeout=0.2):
                return True
        except OSError:
            return False

    def via(self, name):
        """What RawClient needs to reach the node through frontend `name`."""
        host = "::1" if name.endswith("ipv6") else self.ip
        port = self.ports[name]
        return types.SimpleNamespace(host=host, port=port, tls_port=port, domain=self.node.domain,
                                     cert=self.node.cert)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def claims():
    """Three loopback addresses for HAProxy: its frontends' and backends', and one for
    each kind of health check."""
    cs = [AddressClaim(f"127.0.0.{40 + i}", ports=()) for i in range(3)]
    yield [c.address for c in cs]
    for c in cs:
        c.release()


@pytest.fixture(scope="module")
def node(tmp_path_factory, claims):
    s = start_server(
        tmp_path_factory.mktemp("proxied"),
        name="proxied",
        log={"level": "debug"},
        c2s={
            "proxy_from": claims,
            "proxy_timeout": 2,
            "max_connections_per_address": 1,
            "auth_failures_per_address": 2,
            "auth_failure_window": 3600,
        },
    )
    yield s
    _stop_cleanly(s)


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory, node, claims):
    h = HAProxy(tmp_path_factory.mktemp("haproxy"), claims[0], claims[1:], node)
    yield h
    h.stop()


def wait_log(node, pattern, timeout=5.0):
    """The first line of the node's log that matches the regular expression."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, node.log_text(), re.M)
        if m:
            return m.group(0)
        assert time.monotonic() < deadline, f"no log line matches {pattern!r}:\n{node.log_tail(40)}"
        time.sleep(0.05)


def client(haproxy, frontend, source, **kw):
    direct = FRONTENDS[frontend][1] == "tls_port"
    return RawClient(haproxy.via(frontend), direct_tls=direct, source=source, **kw)


SOURCES = {name: f"127.0.0.{51 + i}" for i, name in enumerate(FRONTENDS)}


@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_client_address_reaches_the_log(node, haproxy, frontend):
    """A client logs in through each frontend (v1 and v2, STARTTLS and Direct TLS, IPv6):
    the stream works, so nothing after the header was lost, and the log names the
    client's address and port, and the balancer's."""
    if frontend not in haproxy.ports:
        pytest.skip("no IPv6 loopback")
    source = "::1" if frontend.endswith("ipv6") else SOURCES[frontend]
    with client(haproxy, frontend, source) as c:
        port = c.sock.getsockname()[1]
        jid = c.login("alice", node.password("alice"), "proxied")
        assert jid == f"alice@{node.domain}/proxied"
        shown = f"[{source}]:{port}" if ":" in source else f"{source}:{port}"
        wait_log(node, rf"client {re.escape(shown)}, through the proxy {re.escape(haproxy.ip)}:\d+ "
                       rf"\(PROXY v{1 if frontend.startswith('v1') else 2}\)")


@pytest.mark.parametrize("frontend", ["v2-starttls", "v1-tls"])
def test_connections_counted_per_client_address(node, haproxy, frontend):
    """With c2s.max_connections_per_address = 1, two clients from two addresses through
    one balancer are both served; a second from one of them gets policy-violation, and
    the warning names that client."""
    a_src, b_src = ("127.0.0.61", "127.0.0.62") if frontend == "v2-starttls" else ("127.0.0.63", "127.0.0.64")
    a, b = client(haproxy, frontend, a_src), client(haproxy, frontend, b_src)
    try:
        a.open()
        b.open()
        with client(haproxy, frontend, a_src) as again:
            again.send(header())
            assert again.expect_stream_error() == "policy-violation"
        wait_log(node, rf"{re.escape(a_src)}:\d+ has c2s.max_connections_per_address already: refused")
    finally:
        a.close()
        b.close()


def plain_answer(haproxy, user, password, source):
    """A PLAIN login's answer; the stream is then closed and its end awaited, so that the
    node has counted the connection out (c2s.max_connections_per_address is 1)."""
    with client(haproxy, "v2-starttls", source) as c:
        c.open()
        c.starttls()
        c.open()
        el = c.auth_plain(user, password)
        if el.tag.endswith("}success"):
            c.restart()
        c.send("</stream:stream>")
        assert c.wait_eof()
        return [el.tag.split("}")[1]] + [x.tag.split("}")[1] for x in el]


def test_auth_failures_counted_per_client_address(node, haproxy):
    """c2s.auth_failures_per_address = 2: a client that failed on two accounts is refused
    (temporary-auth-failure), even with the right password; another client behind the
    same balancer logs in."""
    for user in ("bob", "carol"):
        assert plain_answer(haproxy, user, "wrong", "127.0.0.71") == ["failure", "not-authorized"]
    assert plain_answer(haproxy, "dave", node.password("dave"), "127.0.0.71") == ["failure", "temporary-auth-failure"]
    assert plain_answer(haproxy, "dave", node.password("dave"), "127.0.0.72") == ["success"]
    wait_log(node, r"127\.0\.0\.71:\d+ failed on too many accounts lately")


def raw(node, port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return s


def read_all(s, timeout=10.0):
    """Everything until the server closes, or AssertionError if it does not in time."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return got
            got += data
    except ConnectionResetError:
        return got
    except socket.timeout:
        raise AssertionError(f"not closed in {timeout}s; received {got!r}")


@pytest.mark.parametrize("listener", ["port", "tls_port"])
def test_balancer_without_header_closed(node, haproxy, listener):
    """From the balancer's address, a stream header (or a ClientHello) instead of a PROXY
    header closes the connection without a byte sent back."""
    first = header().encode() if listener == "port" else b"\x16\x03\x01\x00\x05hello"
    with raw(node, getattr(node, listener), haproxy.ip) as s:
        s.sendall(first)
        assert read_all(s) == b""
    wait_log(node, rf"{re.escape(haproxy.ip)}:\d+, which must send a PROXY header, sent not a PROXY "
                   r"protocol header: closed")


def test_balancer_silent_closed_at_timeout(node, haproxy):
    """From the balancer's address, nothing at all: closed after c2s.proxy_timeout (2 s),
    without a byte."""
    t0 = time.monotonic()
    with raw(node, node.port, haproxy.ip) as s:
        assert read_all(s, timeout=15) == b""
    assert time.monotonic() - t0 >= 1.0
    wait_log(node, rf"no PROXY header from {re.escape(haproxy.ip)}:\d+ in time: closed")


def test_header_from_elsewhere_not_read(node, haproxy):
    """A client not in c2s.proxy_from that sends a PROXY header naming another address gets
    no address from it: its stream fails as XML would (a stream error after our header)
    and the address it named appears nowhere."""
    with raw(node, node.port, "127.0.0.81") as s:
        s.sendall(b"PROXY TCP4 127.0.0.99 127.0.0.1 1234 5222\r\n" + header().encode())
        got = read_all(s)
    assert got.startswith(b"<?xml") and b"<stream:error>" in got, got
    assert "127.0.0.99" not in node.log_text()


def test_health_checks_quiet(node, haproxy):
    """HAProxy's health checks leave no warning or stream error in the node's log, and the
    balancer never marks the node DOWN: v2's LOCAL ones keep the balancer's own address and
    are served; v1's connect-only ones, mostly reset before the node reads them, leave
    nothing."""
    time.sleep(2)  # twenty checks of each kind
    v1_ip, v2_ip = haproxy.check_ips
    local = re.findall(rf"the proxy {re.escape(v2_ip)}:\d+, for itself \(PROXY v2", node.log_text())
    assert len(local) >= 5, node.log_tail(40)
    noise = [line for line in node.log_text().splitlines()
             if " warn: " in line or " error: " in line or "stream error" in line]
    assert not [line for line in noise if v1_ip in line or v2_ip in line or ": -: " in line], "\n".join(noise)
    assert "DOWN" not in haproxy.log_text(), haproxy.log_text()
