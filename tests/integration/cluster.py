"""
A cluster of real starling nodes on loopback, for the cluster tests.

    with Cluster(tmp_path, n=3) as cl:
        a, b, c = cl.nodes          # conftest.Server objects: a.port, a.jid(...), ...
        cl.wait_whole()             # every node sees every other one up
        cl.status(a)                # a's status file, parsed

Each node is a full starling (supervisor, router, c2s, s2s) in its own folder, with its
own c2s ports and admin listener (node.admin_port, for test_admin.get()) on 127.0.0.1
and its link socket (cluster.listen) on an address of its
own, 127.0.0.(11 + i). The nodes share one store: a PostgreSQL of the cluster's own
(pg.py; store="sqlite": one SQLite file that every node's processes open instead), with
the accounts of conftest.ACCOUNTS made once; the files kept beside storage.path (the
SCRAM and dialback secrets) are one set for all. Node i is named node<i+1>. A node whose
own_cert is set False before the cluster starts keeps the c2s.certificate its groups
name (a test CA's, say) instead of one from gencert.

kill(node) sends SIGKILL to the node's supervisor and its children, by PID; start(node)
brings it back on the same folder and ports.
"""
import os
import signal
import socket
import time
from pathlib import Path

from conftest import ACCOUNTS, Server, free_port, pid_alive
from pg import PostgreSQL

WHOLE_TIMEOUT = 20.0


def _free_port_on(host):
    for _ in range(200):
        port = free_port()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError(f"no free port on {host}")


def parse_status(text):
    """The status file: {'self': name, 'nodes': {name: {key: value}}, 'shards': {...}}."""
    st = {"nodes": {}, "shards": {}}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "node":
            kv = dict(p.split("=", 1) for p in parts[2:])
            st["nodes"][parts[1]] = {k: (int(v) if v.lstrip("-").isdigit() else v) for k, v in kv.items()}
        elif parts[0] == "shards":
            st["shards"] = {k: int(v) for k, v in (p.split("=", 1) for p in parts[1:])}
        elif len(parts) == 2:
            st[parts[0]] = int(parts[1]) if parts[1].isdigit() else parts[1]
    return st


class ClusterNode(Server):
    def __init__(self, workdir, index, db, **groups):
        super().__init__(workdir, name=f"node{index + 1}", **groups)
        self.index = index
        self.db = db
        self.link_host = f"127.0.0.{11 + index}"
        self.own_cert = True  # False: c2s.certificate is given (not gencert's)

    def setup(self, make_accounts):
        self.write_config()
        if self.own_cert:
            self.ctl("gencert")
        if make_accounts:
            for user, pw in self.accounts.items():
                self.ctl("adduser", f"{user}@{self.domain}", pw)

    @property
    def status_path(self):
        return self.dir / "cluster.status"


class Cluster:
    def __init__(self, workdir, n=3, store="postgresql", **groups):
        self.dir = Path(workdir)
        self.db = self.dir / "shared.db"
        self.pg = None
        shared = {"path": str(self.db)}
        if store == "postgresql":
            self.pg = PostgreSQL().start()
            shared.update(backend="postgresql", dsn=self.pg.create_database("cluster"))
        links = [f"127.0.0.{11 + i}:{_free_port_on(f'127.0.0.{11 + i}')}" for i in range(n)]
        self.nodes = []
        for i in range(n):
            g = {k: dict(v) for k, v in groups.items()}
            cl = {
                "node": f"node{i + 1}",
                "listen": links[i],
                "nodes": [f"node{j + 1}={links[j]}" for j in range(n) if j != i],
            }
            cl.update(g.pop("cluster", {}))
            storage = dict(shared)
            storage.update(g.pop("storage", {}))
            admin = {"listen": f"127.0.0.1:{free_port()}"}
            admin.update(g.pop("admin", {}))
            node = ClusterNode(self.dir / f"node{i + 1}", i, self.db, cluster=cl,
                               storage=storage, admin=admin, **g)
            node.admin_port = int(admin["listen"].rsplit(":", 1)[1])
            node.link_port = int(links[i].rsplit(":", 1)[1])
            self.nodes.append(node)

    def __enter__(self):
        try:
            for i, node in enumerate(self.nodes):
                node.setup(make_accounts=(i == 0))
            for node in self.nodes:
                node.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.stop()
        if self.pg:
            self.pg.remove()

    def new_users(self, n=1, prefix="u"):
        """Accounts nobody else uses, made on node 1 (the store is shared), known to all."""
        names = self.nodes[0].new_users(n, prefix)
        for node in self.nodes[1:]:
            for name in names:
                node.accounts[name] = f"{name}-pw"
        return names

    def status(self, node):
        try:
            return parse_status(node.status_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def wait(self, pred, timeout=WHOLE_TIMEOUT, what="the cluster"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}: " +
                             "; ".join(f"{n.name}: {self.status(n)}" for n in self.nodes))

    def sees(self, node, others, state):
        st = self.status(node)
        if not st:
            return False
        return all(st["nodes"].get(o.name, {}).get("state") == state for o in others)

    def wait_whole(self, nodes=None, timeout=WHOLE_TIMEOUT):
        """Until each of nodes (default all) sees the others up."""
        nodes = nodes or self.nodes
        self.wait(lambda: all(self.sees(n, [o for o in nodes if o is not n], "up") for n in nodes),
                  timeout, "every node to see the others up")
        # The status file is a second old at most: a second more and every view is in.
        time.sleep(1.2)

    def counters(self, node):
        st = self.status(node)
        return st["shards"] if st else {}

    def kill(self, node):
        """SIGKILL to the node's supervisor and every child of it, by PID."""
        pids = [node.proc.pid] + list(node.children().values())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in pids[1:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if node._log:
            node._log.close()
        node.proc = None

    def start(self, node):
        node.start()
