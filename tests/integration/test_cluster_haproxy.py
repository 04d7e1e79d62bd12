"""
Three real nodes behind a real HAProxy (TCP mode, PROXY protocol v2, health checks on
each node's /ready), as an operator runs them (README "Deploying a cluster"): clients
that log in through HAProxy land on different nodes and chat; kill -9 of one node: its
clients log in again through HAProxy, which sends them to the nodes left, and what was
sent to them meanwhile reaches them; the node comes back and HAProxy sends logins to it
again.
"""
import re
import signal
import ssl
import subprocess
import time
from pathlib import Path

from cluster import Cluster
from conftest import free_port
from im import Peer
from peers import AddressClaim

HAPROXY = Path("/usr/sbin/haproxy")
BALANCER = "127.0.0.46"  # HAProxy's frontend and its source towards the nodes


class Front:
    """What a client needs to reach the cluster through HAProxy, like a Server."""

    def __init__(self, nodes, port):
        self.node, self.host, self.port, self.tls_port = nodes[0], BALANCER, port, port
        self.domain, self.cert = nodes[0].domain, nodes[0].cert
        # Each node has a self-signed certificate of its own, all for the same name:
        # whichever node HAProxy picks is taken (certificates are test_login's business).
        self.tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.tls_ctx.check_hostname = False
        self.tls_ctx.verify_mode = ssl.CERT_NONE

    def password(self, user):
        return self.node.password(user)


def start_haproxy(workdir, nodes, port):
    lines = [
        "global",
        "    maxconn 500",
        "    log stdout format raw local0",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option tcplog",
        "    option logasap",  # a session's line when it starts: where it went
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "frontend xmpp",
        f"    bind {BALANCER}:{port}",
        "    default_backend nodes",
        "backend nodes",
        "    balance roundrobin",
        f"    source {BALANCER}",
        "    option httpchk",
        "    http-check send meth GET uri /ready",
        "    http-check expect status 200",
    ]
    for n in nodes:
        lines.append(f"    server {n.name} 127.0.0.1:{n.port} send-proxy-v2 "
                     f"check port {n.admin_port} inter 200ms fall 2 rise 2")
    conf = Path(workdir) / "haproxy.cfg"
    conf.write_text("\n".join(lines) + "\n")
    log = open(Path(workdir) / "haproxy.log", "ab")
    return subprocess.Popen([str(HAPROXY), "-db", "-f", str(conf)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT), Path(workdir) / "haproxy.log"


def servers_up(log_path, names):
    """HAProxy's view: the last UP/DOWN line of each server, UP when none yet (checks
    start UP)."""
    state = {n: "UP" for n in names}
    for m in re.finditer(r"Server nodes/(\S+) is (UP|DOWN)", log_path.read_text(errors="replace")):
        state[m.group(1)] = m.group(2)
    return {n for n, s in state.items() if s == "UP"}


def sessions_on(log_path, name):
    """Client sessions HAProxy sent to server `name` (option logasap: one line each)."""
    return len(re.findall(rf" xmpp nodes/{name} ", log_path.read_text(errors="replace")))


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def login(front, user, resource):
    p = Peer(front, tls_ctx=front.tls_ctx)
    try:
        p.login(user, front.password(user), resource)
        p.available()
    except BaseException:
        p.close()
        raise
    return p


def alive(p):
    try:
        return p.ping(p.domain).get("type") == "result"
    except (OSError, AssertionError):
        return False


def test_three_nodes_behind_haproxy_survive_a_node(tmp_path):
    claim = AddressClaim(BALANCER, ports=())
    with Cluster(tmp_path, n=3, c2s={"proxy_from": [BALANCER]}) as cl:
        cl.wait_whole()
        port = free_port()
        hap, hlog = start_haproxy(tmp_path, cl.nodes, port)
        peers = {}
        try:
            front = Front(cl.nodes, port)
            names = [n.name for n in cl.nodes]
            time.sleep(1.0)  # HAProxy's first checks of /ready (every 200 ms)
            users = cl.new_users(6, "hap")
            for u in users:
                peers[u] = login(front, u, "lb")
            # Round robin: two sessions on each node, their homes wherever the ring says:
            # every pair chats.
            wait(lambda: all(sessions_on(hlog, n) == 2 for n in names), 5, "two sessions per node")
            for i, u in enumerate(users):
                peers[u].message(f"{users[(i + 1) % 6]}@{front.domain}", f"through haproxy from {u}")
            for i, u in enumerate(users):
                m = peers[u].wait_message(f"through haproxy from {users[(i - 1) % 6]}")
                assert m.get("from") == f"{users[(i - 1) % 6]}@{front.domain}/lb"

            # kill -9 of node3: its two clients lose their connections, HAProxy marks it
            # down, the others keep routing.
            dead = cl.nodes[2]
            cl.kill(dead)
            lost = [u for u in users if not alive(peers[u])]
            assert len(lost) == 2, lost
            wait(lambda: dead.name not in servers_up(hlog, names), 15, "HAProxy to mark node3 down")
            cl.wait(lambda: cl.sees(cl.nodes[0], [dead], "down") and cl.sees(cl.nodes[1], [dead], "down"),
                    what="node3 down")
            stay = [u for u in users if u not in lost]
            for u in lost:
                peers.pop(u).close()
            for u in lost:
                for s in stay:
                    peers[s].message(f"{u}@{front.domain}", f"while {u} was away, from {s}")
                    peers[s].ping(f"{u}@{front.domain}")
            # They log in again through HAProxy, on the nodes left, and get what was sent.
            for u in lost:
                peers[u] = login(front, u, "again")
                for s in stay:
                    peers[u].wait_message(f"while {u} was away, from {s}")
                peers[u].message(f"{stay[0]}@{front.domain}", f"back from {u}")
                peers[stay[0]].wait_message(f"back from {u}")

            # node3 returns: HAProxy sends it logins again, and nobody else is cut off.
            cl.start(dead)
            cl.wait_whole()
            wait(lambda: servers_up(hlog, names) == set(names), 15, "HAProxy to see node3 up")
            before = sessions_on(hlog, dead.name)
            late = cl.new_users(3, "late")
            for u in late:
                peers[u] = login(front, u, "late")
            assert sessions_on(hlog, dead.name) > before
            for u in late:
                peers[u].message(f"{users[0]}@{front.domain}", f"late hello from {u}")
                peers[users[0]].wait_message(f"late hello from {u}")
            assert all(alive(peers[u]) for u in users)
            for node in cl.nodes[:2]:
                assert not node.restarts(), node.restarts()
                assert not node.sanitizer_reports(), node.sanitizer_reports()
        finally:
            for p in peers.values():
                p.close()
            hap.send_signal(signal.SIGTERM)
            hap.wait(10)
            claim.release()
