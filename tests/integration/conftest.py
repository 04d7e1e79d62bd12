"""
Fixtures that run real starling nodes on loopback for the integration tests.

A node lives in its own temporary directory: its config (unique free ports on 127.0.0.1,
the shipped defaults for every limit), beside it the database and a self-signed
certificate from `starlingctl gencert` at their default names (the config's file names
are relative to its folder), a few accounts from `starlingctl adduser`, and the log the
processes write to stderr. `starling --config` runs as our child; teardown stops it
with SIGTERM, then SIGKILL after a timeout. Only processes this file started are ever
signalled, by PID.

Binaries come from $STARLING_BIN (default build/release/bin); the C clients the tests
drive from $STARLING_TEST_BIN (default: the tests/integration folder of that build).

Fixtures:
  server        module scope, the defaults (STARTTLS required, Direct TLS on)
  plain_server  module scope, plaintext allowed (require_encryption = false and
                allow_plain_without_tls = true), small limits, for raw bad-input tests
  make_server   function scope, a factory: make_server(c2s={...}, ...) for tests that
                need their own node (faults, timeouts, other policies)

Federation peers (peers.py): make_federation, module scope, a factory of
peers.Federation (a DNS server, a test CA, real Prosody and ejabberd servers and
starling nodes on addresses of their own), each stopped and its folder removed when the
module ends (STARLING_KEEP_PEERS=1 keeps the folders). A test that takes a Federation or a peer as
an argument gets their logs in its report when it fails, and fails if one of their
servers died.

Accounts: every node has ACCOUNTS (alice, bob, carol, dave, erin). A test that must not
share state with others (rosters, offline messages, blocklists live in the node's
database and outlast a test) makes accounts nobody else uses with
server.new_users(n), while the node runs. server.restart() stops a node and starts it
again on the same database (persistence tests).

A node that is not expected to lose a process (every one but those a fault test
kills) is checked after each test that used it: a crashed and restarted c2s or
router fails the test even though the supervisor hid it from the clients.
"""
import os
import re
import signal
import itertools
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = Path(os.environ.get("STARLING_BIN", REPO / "build" / "release" / "bin")).resolve()
TEST_BIN = Path(os.environ.get("STARLING_TEST_BIN", BIN.parent / "tests" / "integration")).resolve()
# Running against the SAN=address,undefined build (build/san/bin): some known server bugs
# show only there (a sanitizer report), so their tests are xfail only then.
SANITIZED = BIN.parent.name == "san"

DOMAIN = "localhost"
# Accounts every node has: name -> password.
ACCOUNTS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "dave": "dave-pw",
    "erin": "erin-pw",
}

START_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0  # the supervisor itself gives its children 10 s

sys.path.insert(0, str(HERE))


# ---- ports ----------------------------------------------------------------------------

# Ports handed out by this pytest process; never handed out twice.
_given_ports = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, outside the ephemeral range
    (where our own clients' source ports come from). c2s binds with SO_REUSEPORT, so a
    port someone else also binds with it would silently share connections: Server.start
    checks afterwards that only our c2s listens on its ports."""
    import random

    rnd = random.SystemRandom()
    for _ in range(500):
        port = rnd.randrange(20000, 32000)
        if port in _given_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _given_ports.add(port)
        return port
    raise RuntimeError("no free port on 127.0.0.1")


# ---- /proc helpers ----------------------------------------------------------------------


def proc_children(pid):
    """PIDs of the direct children of pid."""
    kids = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.update(int(x) for x in f.read().split())
        return sorted(kids)
    except OSError:
        pass
    for name in os.listdir("/proc"):  # kernels without /proc/.../children
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == pid:
                kids.add(int(name))
    return sorted(kids)


def proc_stat(pid):
    """(state, ppid, starttime) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_exe(pid):
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return None


def proc_libs(pid):
    """The shared objects pid maps, by name and major version (libpq.so.5 for the file
    libpq.so.5.15)."""
    with open(f"/proc/{pid}/maps") as f:
        paths = (line.split(maxsplit=5)[5:] for line in f)
        names = (os.path.basename(p[0].strip()) for p in paths if p)
        return {m.group(1) for m in map(re.compile(r"(.+\.so(\.\d+)?)").match, names) if m}


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


def listening_inodes(port):
    """Socket inodes listening on 127.0.0.1:port (or any address) over IPv4 and IPv6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local, state, inode = fields[1], fields[3], fields[9]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            pass
    return inodes


def socket_inodes_of(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def port_accepts(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# ---- one node ---------------------------------------------------------------------------


def conf_value(v):
    """v in the config's syntax (libconfig): a bool, number, string or list of them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(conf_value(x) for x in v) + " ]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Server:
    """One starling node in its own directory. Attributes: domain, port (STARTTLS),
    tls_port (Direct TLS), dir, cert, conf, log_path, proc (the supervisor's Popen)."""

    def __init__(self, workdir, name="node", expect_stable=True, accounts=None, **groups):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.domain = DOMAIN
        self.accounts = dict(ACCOUNTS if accounts is None else accounts)
        self.expect_stable = expect_stable
        self.groups = groups
        self.proc = None
        self.log_path = self.dir / "starling.log"
        # c2s.certificate and c2s.key at their defaults: relative to the config's folder.
        self.cert = self.dir / "localhost.crt"
        self.key = self.dir / "localhost.key"
        self.conf = self.dir / "starling.conf"
        # The node's working directory; start() names the config relative to it.
        self.cwd = self.dir
        self.initial = {}
        self._log = None
        self._user_ids = itertools.count()

    # -- config and setup --

    def write_config(self):
        self.port = free_port()
        self.tls_port = free_port()
        c2s = {
            "listen": f"127.0.0.1:{self.port}",
            "listen_tls": f"127.0.0.1:{self.tls_port}",
            # Two of each whatever the machine: stanzas cross threads and shards.
            "threads": 2,
        }
        c2s.update(self.groups.get("c2s", {}))
        cfg = {
            "log": {"level": "info"},
            "c2s": c2s,
            "router": {"shards": 2},
            # Peers are looked up at a loopback port where no DNS server listens (the
            # query is refused at once: remote-server-not-found), never at the machine's.
            "s2s": {"listen": "", "dns_servers": [f"127.0.0.1:{free_port()}"]},
        }
        for group, values in self.groups.items():
            if group != "c2s":
                cfg.setdefault(group, {}).update(values)
        lines = [f"domain = {conf_value(self.domain)};"]
        for group, values in cfg.items():
            lines.append(f"{group} = {{")
            lines += [f"    {k} = {conf_value(v)};" for k, v in values.items()]
            lines.append("};")
        self.conf.write_text("\n".join(lines) + "\n")

    def ctl(self, *args, check=True):
        # starlingctl is a tool here, not the subject: a SAN= build's leak report at
        # its exit would fail the setup of every test.
        env = {**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
        r = subprocess.run(
            [str(BIN / "starlingctl"), "--config", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"starlingctl {' '.join(args)}: {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def setup(self):
        for exe in ("starling", "starling-c2s", "starling-router", "starlingctl"):
            if not (BIN / exe).exists():
                raise RuntimeError(f"{BIN / exe} is missing: run make (or set STARLING_BIN)")
        self.write_config()
        self.ctl("gencert")
        for user, pw in self.accounts.items():
            self.ctl("adduser", f"{user}@{self.domain}", pw)

    # -- lifecycle --

    def start(self):
        for attempt in range(3):
            if attempt:
                self.write_config()  # new ports: someone else had ours
            # The log is appended to across restarts: wait for this start's lines.
            log = self.log_text()
            served = (log.count("router is serving") + 1, log.count("c2s is serving") + 1)
            self._log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                [str(BIN / "starling"), "--config", os.path.relpath(self.conf, self.cwd)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
            )
            self.wait_serving(router=served[0], c2s=served[1])
            if self._ports_are_ours():
                self.initial = self.children()
                return self
            self.stop()
        raise RuntimeError("could not get ports of our own")

    def wait_serving(self, timeout=START_TIMEOUT, router=1, c2s=1):
        """Until both ports accept and the supervisor has logged that the router is
        serving (at least `router` times: once per start) and c2s too (`c2s` times)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"starling exited with {self.proc.returncode}:\n{self.log_text()}")
            log = self.log_text()
            if (
                log.count("router is serving") >= router
                and log.count("c2s is serving") >= c2s
                and port_accepts(self.port)
                and port_accepts(self.tls_port)
            ):
                return
            time.sleep(0.02)
        raise RuntimeError(f"starling did not start serving in {timeout}s:\n{self.log_text()}")

    def _ports_are_ours(self):
        c2s = self.c2s_pid()
        mine = socket_inodes_of(c2s) if c2s else set()
        for port in (self.port, self.tls_port):
            inodes = listening_inodes(port)
            if not inodes or not inodes <= mine:
                return False
        return True

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout. Returns the supervisor's exit status."""
        if self.proc is None:
            return None
        kids = {pid: proc_stat(pid) for pid in proc_children(self.proc.pid)}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Children we saw, if they outlived it (same PID and start time: still ours).
        for pid, st in kids.items():
            now = proc_stat(pid)
            if st and now and now[2] == st[2] and now[0] != "Z":
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def restart(self):
        """Stops the node cleanly (SIGTERM, exit status 0) and starts it again with the
        same config and database. Clients of the old run are disconnected."""
        rc = self.stop()
        assert rc == 0, f"starling ({self.name}) exited with {rc} on SIGTERM:\n{self.log_tail()}"
        return self.start()

    # -- processes --

    def children(self):
        """{'starling-c2s': pid, 'starling-router': pid} of the running children."""
        out = {}
        if self.proc is None:
            return out
        for pid in proc_children(self.proc.pid):
            exe = proc_exe(pid)
            if exe and pid_alive(pid):
                out[exe] = pid
        return out

    def c2s_pid(self):
        return self.children().get("starling-c2s")

    def router_pid(self):
        return self.children().get("starling-router")

    def wait_child_replaced(self, exe, old_pid, timeout=10.0):
        """Waits until a child `exe` with a PID other than old_pid runs; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self.children().get(exe)
            if pid and pid != old_pid:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"no new {exe} within {timeout}s:\n{self.log_text()}")

    def restarts(self):
        """Log lines telling that a child died."""
        return [
            line
            for line in self.log_text().splitlines()
            if "died of signal" in line or "exited with status" in line
        ]

    def sanitizer_reports(self):
        """First lines of AddressSanitizer and UBSan reports in the log (with a SAN=
        build in STARLING_BIN). Leak reports are not among them: see leak_reports."""
        return [
            line
            for line in self.log_text().splitlines()
            if "ERROR: AddressSanitizer" in line or ": runtime error: " in line
        ]

    def leak_reports(self):
        """LeakSanitizer's summaries (written when a process exits). They only warn:
        a leak at exit costs nothing in a server, and the ones known are listed in the
        test report rather than failing every test that stops a node."""
        return [line for line in self.log_text().splitlines() if line.startswith("SUMMARY: AddressSanitizer")
                and "leaked" in line]

    def assert_stable(self):
        assert not self.sanitizer_reports(), "\n".join(self.sanitizer_reports())
        assert self.proc.poll() is None, f"starling exited with {self.proc.returncode}"
        assert not self.restarts(), "a child died:\n" + "\n".join(self.restarts())
        assert self.children() == self.initial, f"children {self.children()} != {self.initial}"

    # -- log --

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=150):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- accounts --

    def jid(self, user, resource=None):
        return f"{user}@{self.domain}" + (f"/{resource}" if resource else "")

    def password(self, user):
        return self.accounts[user]

    def new_users(self, n=1, prefix="u"):
        """n accounts nobody else uses (created now, with starlingctl, while the node
        runs): their names, e.g. ['u0', 'u1']. Each has the password '<name>-pw'."""
        names = []
        for _ in range(n):
            name = f"{prefix}{next(self._user_ids)}"
            self.ctl("adduser", f"{name}@{self.domain}", f"{name}-pw")
            self.accounts[name] = f"{name}-pw"
            names.append(name)
        return names


def start_server(tmp_dir, **kw):
    s = Server(tmp_dir, **kw)
    s.setup()
    s.start()
    return s


# Small limits for the plaintext node, so bad-input tests stay quick.
PLAIN_C2S = {
    "require_encryption": False,
    "allow_plain_without_tls": True,
    "max_stanza_size": 20000,
    "max_depth": 16,
    "max_attrs": 16,
}


def _stop_cleanly(s):
    crashed = s.expect_stable and s.proc.poll() is not None
    rc = s.stop()
    assert not crashed, f"starling ({s.name}) had exited before teardown with {rc}"
    assert rc == 0, f"starling ({s.name}) exited with {rc} on SIGTERM:\n{s.log_tail()}"
    assert not s.sanitizer_reports(), "\n".join(s.sanitizer_reports())
    _warn_leaks(s)


def _warn_leaks(s):
    leaks = s.leak_reports()
    if leaks:
        warnings.warn(f"starling ({s.name}, {s.dir}): LeakSanitizer: " + "; ".join(sorted(set(leaks))))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("node"))
    yield s
    _stop_cleanly(s)


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("plain"), name="plain", c2s=dict(PLAIN_C2S))
    yield s
    _stop_cleanly(s)


@pytest.fixture
def make_server(tmp_path, request):
    """make_server(expect_stable=True, **groups): a node of its own for this test."""
    made = []
    request.node._made_servers = made

    def make(**kw):
        s = start_server(tmp_path / f"node{len(made)}", **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed:
        for s in made:
            assert not s.sanitizer_reports(), "\n".join(s.sanitizer_reports())
            _warn_leaks(s)


@pytest.fixture(scope="module")
def make_federation():
    """make_federation(): a new peers.Federation, closed at the end of the module."""
    import peers

    made = []

    def make():
        net = peers.Federation.make()
        made.append(net)
        return net

    yield make
    for net in made:
        net.close()


def _peers_of(item):
    """Federations and peers among the test's arguments (duck-typed: peers.py is only
    imported by the modules that use it)."""
    return [v for v in getattr(item, "funcargs", {}).values() if hasattr(v, "report_sections")]


def _servers_of(item):
    found = []
    for v in getattr(item, "funcargs", {}).values():
        if isinstance(v, Server):
            found.append(v)
    for s in getattr(item, "_made_servers", []):
        found.append(s)
    return found


@pytest.fixture(autouse=True)
def _check_stable(request):
    """After a test: no node it used lost a process, unless the test kills them."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is None or not rep.passed:
        return
    for s in _servers_of(request.node):
        if s.expect_stable and s.proc is not None and s.proc.poll() is None:
            s.assert_stable()
    for p in _peers_of(request.node):
        p.assert_running()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        for s in _servers_of(item):
            rep.sections.append((f"starling log ({s.name}, {s.dir})", s.log_tail()))
        for p in _peers_of(item):
            rep.sections.extend(p.report_sections())
