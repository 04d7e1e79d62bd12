"""
Federation peers for the integration tests: a real Prosody and a real ejabberd from
Debian (deploy/deps.sh installs them and keeps the system services of the packages from
running), each started here on an address of its own with a config of ours, a starling
node among them, and one DNS server that every server resolves the test domains through.

    net = Federation(workdir)                       # dnsmasq + a test CA, not started yet
    st = net.starling("starling.test", "127.0.0.20", accounts={"carol": "carol-pw"})
    net.name("other.test", "127.0.0.23")            # DNS only: a server of the test's own
    pr = net.prosody("prosody.test", "127.0.0.21", accounts={"alice": "alice-pw"})
    ej = net.ejabberd("ejabberd.test", "127.0.0.22", accounts={"bob": "bob-pw"},
                      certs="self-signed")
    net.start()       # DNS first, then every server at once: about 2 s
    ...  pr.host, pr.port (c2s), pr.s2s_port, pr.cert (what a client trusts), pr.jid("alice")
    pr.restart()      # stop by PID and start again on the same data (starling: status 0)
    net.stop()

What each peer gets:
  - An address of its own. Each server listens on its address only: c2s on 5222 and s2s
    on 5269 there, and nothing else (Prosody: no HTTP, no components, no admin socket;
    ejabberd: no Erlang distribution at all, so no epmd and no node port: its accounts
    are made by an -eval at boot). assert_listeners() checks it from /proc. An address
    is claimed with a lock file in /tmp/starling-test-addresses/ for as long as the peer
    exists, so two test runs on one machine never share one: the address asked for is
    used when free, another in 127.0.2.0/24 otherwise. Tests read pr.host, never a
    literal.
  - Names: dnsmasq on 127.0.0.53 (a free port there) answers for every domain named in
    the Federation, with an A record to its address and an SRV record
    _xmpp-server._tcp.<domain> to <domain>:5269 (options: another SRV target, an
    _xmpps-server record, no A record for the domain itself, no SRV), NXDOMAIN for any
    other name under .test, REFUSED for the rest of the world. Prosody asks it through
    libunbound (lua-unbound, `unbound = { forward = ... }`), ejabberd through Erlang's
    inet_res (an ERL_INETRC naming it as the only nameserver, no /etc/resolv.conf, no
    /etc/hosts). Nothing system-wide is read or changed.
  - Certificates (pki.py): certs="ca" (the default) gives the peer a certificate for its
    domain signed by the Federation's test CA (net.ca.cert_path), which every peer
    trusts: streams between two such peers authenticate with SASL EXTERNAL.
    certs="self-signed" gives it one nobody can verify: streams to or from it use
    dialback. A peer always trusts the CA, so a mix authenticates each direction by
    what the receiving side can verify.
  - Accounts, made at setup (Prosody: prosodyctl register; ejabberd: at each boot, an
    -eval of ejabberd_auth:try_register, which keeps the ones that exist; starling:
    starlingctl import-users).

starling (Starling): the supervisor from $STARLING_BIN (default build/release/bin),
started like the others, with this config (st.config_written()):

    domain = "<domain>";
    log = { level = "info"; };                       # "debug" with debug=True
    c2s = { listen = "<address>:5222"; listen_tls = ""; threads = 1;
            certificate = "<its certificate>"; key = "<its key>"; };   # s2s presents it too
    router = { shards = 2; };
    s2s = { listen = "<address>:5269";
            dns_servers = [ "127.0.0.53:<port>" ];   # our dnsmasq, the only resolver
            ca_file = "<the test CA>"; };

A directive the binary does not know (its `starlingctl sample-config` lacks it) is left
out (st.left_out), so that a build from before it still starts; config={group: {...}}
adds or replaces directives. Its log is its stderr (st.log_path).

Processes: each server and dnsmasq is our child, started with Popen and stopped by its
PID (SIGTERM, then SIGKILL after a timeout; ejabberd's port helpers are its children and
die with it). As root, Prosody runs as the prosody user (it refuses root), through
setpriv; the Federation's folder is made readable for it.

Logs: each peer's server log (pr.log_path) and its stdout (pr.out_path); debug=True
makes both servers log every byte of XML they send and receive (stream headers,
features, dialback and SASL included), which is how bench-free tests find out what a
peer does on the wire.
"""
import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pki
from conftest import BIN, conf_value, proc_children, proc_stat, socket_inodes_of

START_TIMEOUT = 30.0  # ejabberd boots in 2-3 s on an idle machine; much more under load
STOP_TIMEOUT = 10.0
C2S_PORT = 5222
S2S_PORT = 5269
DNS_ADDRESS = "127.0.0.53"
LOCK_DIR = Path(tempfile.gettempdir()) / "starling-test-addresses"
FALLBACK_ADDRESSES = [f"127.0.2.{i}" for i in range(1, 255)]


class PeerError(RuntimeError):
    pass


# ---- addresses ----------------------------------------------------------------------------


def _bindable(address, port, kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    # As the servers bind: connections of an earlier run in TIME_WAIT do not count.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class AddressClaim:
    """An address of 127.0.0.0/8 held for this process: a lock file taken with flock
    (released when the claim is released or the process dies), and nothing else bound to
    the ports asked for when it was taken."""

    def __init__(self, wanted, ports=(C2S_PORT, S2S_PORT)):
        LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
        for address in [wanted] + [a for a in FALLBACK_ADDRESSES if a != wanted]:
            f = open(LOCK_DIR / f"{address}.lock", "w")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                continue
            if all(_bindable(address, p) for p in ports):
                self.address, self._lock = address, f
                return
            f.close()
        raise PeerError(f"no free loopback address (wanted {wanted}) for ports {ports}: does a system "
                        "service listen on them on every address? (deploy/deps.sh disables "
                        "Debian's prosody and ejabberd)")

    def release(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None


# ---- processes ----------------------------------------------------------------------------


def _descendants(pid):
    out = []
    for k in proc_children(pid):
        out += [k] + _descendants(k)
    return out


def _start_time(pid):
    """pid's start time, None once it is gone or a zombie (a PID taken again by another
    process has another start time)."""
    st = proc_stat(pid)
    return None if st is None or st[0] == "Z" else st[2]


class Process:
    """One child process, its output appended to a file, stopped by its PID."""

    def __init__(self, argv, out_path, cwd=None, env=None):
        self.out_path = Path(out_path)
        self._out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, cwd=cwd, env=env)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def pids(self):
        """This process and its descendants (ejabberd: beam.smp, erl_child_setup and the
        port programs under it)."""
        return [self.pid] + _descendants(self.pid) if self.alive() else []

    def stop(self, timeout=STOP_TIMEOUT, sig=signal.SIGTERM):
        """sig (SIGTERM), then SIGKILL after timeout to it and to the descendants it had
        when asked (those still alive, checked by start time). Returns the exit status."""
        kids = {k: _start_time(k) for k in _descendants(self.pid)} if self.alive() else {}
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid, started in kids.items():
            if started is not None and _start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._out.close()
        return self.proc.returncode


def _wait(what, ready, procs, timeout, log):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise PeerError(f"{what} exited with {p.proc.returncode}:\n{log()}")
        if ready():
            return
        time.sleep(0.05)
    raise PeerError(f"{what} not ready in {timeout}s:\n{log()}")


def _tail(path, lines=80):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- sockets of a process, from /proc ----------------------------------------------------


def _proc_net(kind):
    """{inode: (local address, port, state)} of every socket of this kind (tcp, udp)."""
    out = {}
    for v6 in ("", "6"):
        try:
            with open(f"/proc/net/{kind}{v6}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    addr, port = fields[1].rsplit(":", 1)
                    out[fields[9]] = (_hex_address(addr), int(port, 16), fields[3])
        except OSError:
            pass
    return out


def _hex_address(h):
    b = bytes.fromhex(h)
    if len(b) == 4:
        return socket.inet_ntop(socket.AF_INET, b[::-1])
    words = b"".join(b[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def bound_sockets(pids):
    """What the processes listen on or have bound: ('tcp', address, port) for each TCP
    listener, ('udp', address, port) for each UDP socket, ('unix', path) for each Unix
    socket with a name."""
    inodes = set().union(*(socket_inodes_of(pid) for pid in pids))
    out = set()
    for inode, (addr, port, state) in _proc_net("tcp").items():
        if inode in inodes and state == "0A":
            out.add(("tcp", addr, port))
    for inode, (addr, port, _) in _proc_net("udp").items():
        if inode in inodes:
            out.add(("udp", addr, port))
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[6] in inodes and len(fields) > 7 and not fields[7].startswith("@"):
                    out.add(("unix", fields[7]))
    except OSError:
        pass
    return out


# ---- DNS ---------------------------------------------------------------------------------


class Dns:
    """dnsmasq on 127.0.0.53:<free port>, answering only for the names given it.
    addresses: {name: address} of its A records; srv: (name, target, port) of its SRV
    records."""

    def __init__(self, folder):
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.address = DNS_ADDRESS
        self.port = None
        self.addresses = {}
        self.srv = []
        self.zones = {"test"}  # answered here (NXDOMAIN for names not given), never passed on
        self.process = None
        self.out_path = self.dir / "dnsmasq.log"

    def add_domain(self, domain, address, port=S2S_PORT, srv=True, srv_target=None, a_record=True,
                   tls_port=None):
        """Records for an XMPP domain served at address: SRV _xmpp-server._tcp.<domain>
        to srv_target (default the domain itself) at port, an A record for srv_target
        (and for the domain, unless a_record is False), and _xmpps-server._tcp
        (XEP-0368) at tls_port when given."""
        target = srv_target or domain
        if a_record or target != domain:
            self.addresses[target] = address
        if a_record:
            self.addresses[domain] = address
        if srv:
            self.srv.append((f"_xmpp-server._tcp.{domain}", target, port))
        if tls_port:
            self.srv.append((f"_xmpps-server._tcp.{domain}", target, tls_port))
        self.zones.add(domain.rsplit(".", 1)[-1])

    def hosts_file(self):
        """The A records as an /etc/hosts, for resolvers that only read that (see
        Ejabberd)."""
        return "".join(f"{a} {n}\n" for n, a in sorted(self.addresses.items()))

    def start(self):
        for _ in range(50):
            port = int.from_bytes(os.urandom(2), "big") % 20000 + 30000
            if _bindable(self.address, port, socket.SOCK_DGRAM) and _bindable(self.address, port):
                break
        else:
            raise PeerError(f"no free port on {self.address}")
        self.port = port
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                f"--listen-address={self.address}", f"--port={port}",
                "--log-queries", "--log-facility=-", "--cache-size=0"]
        argv += [f"--local=/{z}/" for z in sorted(self.zones)]
        argv += [f"--host-record={n},{a}" for n, a in sorted(self.addresses.items())]
        # _xmpps-server before _xmpp-server by priority too: ejabberd sorts the records of
        # both services together (XEP-0368 leaves the order to the initiator).
        argv += [f"--srv-host={n},{t},{p},{0 if n.startswith('_xmpps') else 10},5"
                 for n, t, p in self.srv]
        self.process = Process(argv, self.out_path)
        _wait("dnsmasq", lambda: "started, version" in _tail(self.out_path) and not _bindable(self.address, port),
              [self.process], 10, lambda: _tail(self.out_path))

    def stop(self):
        if self.process:
            self.process.stop()
            self.process = None

    def forward(self):
        """address@port, as libunbound names a forwarder."""
        return f"{self.address}@{self.port}"

    def queries(self):
        """(type, name) of every query dnsmasq was asked, in order."""
        out = []
        for line in _tail(self.out_path, 100000).splitlines():
            if ": query[" in line:
                rest = line.split(": query[", 1)[1]
                qtype, rest = rest.split("] ", 1)
                out.append((qtype, rest.split(" ", 1)[0]))
        return out


# ---- one peer server -----------------------------------------------------------------------


class Peer:
    """A federation peer server. Attributes for tests: domain, host (its address), port
    (c2s, STARTTLS), s2s_port, cert (the file a c2s client trusts: the CA or the
    self-signed certificate), certificate (its pki.Cert), accounts, log_path, out_path.
    Quacks like conftest's Server where slixclient.Client needs it (jid, password, cert,
    port, tls_port, host)."""

    kind = "peer"
    tls_port = None  # no Direct TLS c2s port
    subdomains = ()  # services of the server on domains of their own, in DNS and certificate

    def __init__(self, net, domain, address, accounts=None, certs="ca", debug=None, s2s_tls_port=None,
                 extra_config=""):
        if certs not in ("ca", "self-signed"):
            raise ValueError("certs: 'ca' or 'self-signed'")
        self.net = net
        self.domain = domain
        self.claim = AddressClaim(address, (C2S_PORT, S2S_PORT) + ((s2s_tls_port,) if s2s_tls_port else ()))
        self.host = self.claim.address
        self.port = C2S_PORT
        self.s2s_port = S2S_PORT
        self.s2s_tls_port = s2s_tls_port
        self.accounts = dict(accounts or {})
        self.certs = certs
        self.debug = os.environ.get("STARLING_PEERS_DEBUG") == "1" if debug is None else debug
        self.extra_config = extra_config
        self.dir = net.dir / f"{self.kind}-{domain}"
        self.dir.mkdir(parents=True)
        self.out_path = self.dir / "stdout.log"
        self.process = None
        names = [domain] + [f"{sub}.{domain}" for sub in self.subdomains]
        if certs == "ca":
            self.certificate = net.ca.issue(domain, names)
            self.cert = net.ca.cert_path
        else:
            self.certificate = pki.self_signed(net.dir / "pki", domain, names)
            self.cert = self.certificate.cert_path

    # -- for clients --

    def jid(self, user, resource=None):
        return f"{user}@{self.domain}" + (f"/{resource}" if resource else "")

    def password(self, user):
        return self.accounts[user]

    # -- lifecycle --

    def setup(self):
        raise NotImplementedError

    def launch(self):
        """Starts the server process; start() then waits for it."""
        raise NotImplementedError

    def ready(self):
        # From /proc rather than by connecting: a probe would be an s2s stream in the
        # logs that tests read.
        listening = self.listeners()
        return ("tcp", self.host, self.port) in listening and ("tcp", self.host, self.s2s_port) in listening

    def start(self):
        self.launch()
        self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        _wait(f"{self.kind} ({self.domain})", self.ready, [self.process], timeout, self.log_tail)

    def stop(self):
        if self.process is None:
            return None
        rc = self.process.stop()
        self.process = None
        return rc

    def restart(self):
        """Stopped by its PID (stop()) and started again on the same data: accounts,
        rosters and offline messages stay; clients and s2s streams are cut."""
        self.stop()
        return self.start()

    def pids(self):
        return self.process.pids() if self.process else []

    def listeners(self):
        return bound_sockets(self.pids())

    def assert_listeners(self):
        """Every TCP listener is on our address at the c2s or s2s port; no UDP socket is
        bound to a fixed port of any address (DNS clients' ephemeral ports aside); no
        named Unix socket."""
        allowed = {("tcp", self.host, self.port), ("tcp", self.host, self.s2s_port)}
        if self.s2s_tls_port:
            allowed.add(("tcp", self.host, self.s2s_tls_port))
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        bad = [s for s in self.listeners()
               if s not in allowed and not (s[0] == "udp" and low <= s[2] <= high)]
        assert not bad, f"{self.kind} ({self.domain}) has sockets beyond {sorted(allowed)}: {sorted(bad)}"

    # -- logs --

    log_path = None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_log(self, *texts, timeout=15.0):
        """The log once it holds every one of texts (ejabberd's logger writes the file
        behind what the server does, by up to a second or so). Fails after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log_text()
            missing = [t for t in texts if t not in log]
            if not missing:
                return log
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} ({self.domain}) did not log {missing} in {timeout}s")
            time.sleep(0.1)

    def log_tail(self, lines=120):
        return f"{_tail(self.log_path, lines)}\n--- stdout ---\n{_tail(self.out_path, 40)}"

    def report_sections(self):
        return [(f"{self.kind} log ({self.domain}, {self.dir})", self.log_tail())]

    def assert_running(self):
        """A peer that was started and not stopped still runs."""
        if self.process is not None:
            assert self.process.alive(), (f"{self.kind} ({self.domain}) exited with "
                                          f"{self.process.proc.returncode}:\n{self.log_tail()}")


class Prosody(Peer):
    kind = "prosody"

    def __init__(self, *args, bidi=False, muc=False, **kw):
        # muc: Prosody's chat service, Component "conference.<domain>" "muc", in DNS and
        # in the certificate like the domain.
        if muc:
            self.subdomains = ("conference",)
        super().__init__(*args, **kw)
        self.bidi = bidi
        self.muc = muc
        self.cfg = self.dir / "prosody.cfg.lua"
        self.log_path = self.dir / "prosody.log"

    @staticmethod
    def _lua(s):
        return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'

    def setup(self):
        if not shutil.which("prosody"):
            raise PeerError("prosody is not installed (deploy/deps.sh installs it)")
        (self.dir / "data").mkdir()
        # Where Prosody's certmanager looks for <domain>.crt and .key, for every service
        # (STARTTLS and Direct TLS alike).
        (self.dir / "certs").mkdir()
        shutil.copy(self.certificate.cert_path, self.dir / "certs" / f"{self.domain}.crt")
        shutil.copy(self.certificate.key_path, self.dir / "certs" / f"{self.domain}.key")
        for sub in self.subdomains:  # one certificate names them all
            shutil.copy(self.certificate.cert_path, self.dir / "certs" / f"{sub}.{self.domain}.crt")
            shutil.copy(self.certificate.key_path, self.dir / "certs" / f"{sub}.{self.domain}.key")
        L = self._lua
        modules = ["roster", "saslauth", "tls", "dialback", "disco", "ping", "blocklist", "version", "posix"]
        if self.bidi:
            modules.append("s2s_bidi")
        # Only what is listed here is loaded (plus Prosody's autoloads: presence,
        # message, iq, offline, c2s, s2s, s2s_auth_certs). None of them opens HTTP or a
        # component port; the admin socket comes with mod_admin_shell, not loaded.
        self.cfg.write_text(f"""-- Written by tests/integration/peers.py.
pidfile = {L(self.dir / "prosody.pid")}
data_path = {L(self.dir / "data")}
log = {{ {"debug" if self.debug else "info"} = {L(self.log_path)} }}
admins = {{ }}
plugin_paths = {{ }}
modules_enabled = {{ {", ".join(L(m) for m in modules)} }}
interfaces = {{ {L(self.host)} }}
local_interfaces = {{ {L(self.host)} }}
c2s_ports = {{ {self.port} }}
s2s_ports = {{ {self.s2s_port} }}
s2s_direct_tls_ports = {{ {self.s2s_tls_port or ""} }}
legacy_ssl_ports = {{ }}
c2s_direct_tls_ports = {{ }}
component_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
authentication = "internal_hashed"
storage = "internal"
s2s_require_encryption = true
s2s_secure_auth = false
s2s_timeout = 10
-- Names through libunbound, from our dnsmasq only. libunbound answers NXDOMAIN for
-- all of test. by itself (RFC 6761's default local zone) unless told to pass it on.
unbound = {{ resolvconf = false, hoststxt = false, forward = {L(self.net.dns.forward())},
            options = {{ ["local-zone:"] = "test. transparent" }} }}
certificates = {L(self.dir / "certs")}
ssl = {{ cafile = {L(self.net.ca.cert_path)} }}
{self.extra_config}
VirtualHost {L(self.domain)}
""" + (f"""
Component {L("conference." + self.domain)} "muc"
    restrict_room_creation = false
""" if self.muc else ""))
        if os.getuid() == 0:
            pw = pwd.getpwnam("prosody")
            for p in [self.dir, *self.dir.rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)
        for user, password in self.accounts.items():
            r = subprocess.run(["prosodyctl", "--config", str(self.cfg), "register", user, self.domain, password],
                               capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise PeerError(f"prosodyctl register {user}: {r.returncode}\n{r.stdout}{r.stderr}")

    def _as_prosody(self):
        # prosodyctl switches to the prosody user by itself; prosody does not, and
        # refuses to run as root.
        if os.getuid() == 0:
            return ["setpriv", "--reuid=prosody", "--regid=prosody", "--clear-groups"]
        return []

    def launch(self):
        self.process = Process(self._as_prosody() + ["prosody", "--config", str(self.cfg), "-F"], self.out_path,
                               cwd=self.dir)


def _erl_bin(s):
    return '<<"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"/utf8>>'


class Ejabberd(Peer):
    kind = "ejabberd"
    subdomains = ("multicast",)  # mod_multicast (XEP-0033)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.yml = self.dir / "ejabberd.yml"
        self.inetrc = self.dir / "inetrc"
        self.log_dir = self.dir / "logs"
        self.log_path = self.log_dir / "ejabberd.log"
        self._boots = 0

    def setup(self):
        if not shutil.which("erl") or not Path("/usr/sbin/ejabberdctl").exists():
            raise PeerError("ejabberd is not installed (deploy/deps.sh installs it)")
        (self.dir / "spool").mkdir()
        self.log_dir.mkdir()
        ca = self.net.ca.cert_path
        dns = self.net.dns
        # ejabberd 23.01 finds a peer in two steps: SRV records through Erlang's
        # inet_res, told here to ask our dnsmasq only; then the address of each SRV
        # target (or of the domain) through libc's getaddrinfo (p1_xmpp's a_lookup, as
        # Debian builds it), which reads /etc/hosts and /etc/resolv.conf and takes no
        # port. So ejabberd runs in a mount namespace of its own (launch) where those two
        # files are ours: the DNS server's A records as hosts, and a resolv.conf whose
        # nameserver answers nothing of ours (names not in hosts fail, on this machine).
        self.inetrc.write_text(
            "{resolv_conf, \"\"}.\n{hosts_file, \"\"}.\n{lookup, [dns]}.\n"
            f"{{nameserver, {{{dns.address.replace('.', ',')}}}, {dns.port}}}.\n"
        )
        (self.dir / "hosts").write_text("127.0.0.1 localhost\n" + dns.hosts_file())
        (self.dir / "resolv.conf").write_text(f"nameserver {dns.address}\noptions timeout:1 attempts:1\n")
        s2s_tls = ""
        if self.s2s_tls_port:
            s2s_tls = f"""  -
    port: {self.s2s_tls_port}
    ip: "{self.host}"
    module: ejabberd_s2s_in
    tls: true
"""
        self.yml.write_text(f"""# Written by tests/integration/peers.py.
loglevel: {"debug" if self.debug else "info"}
hide_sensitive_log_data: false
hosts:
  - "{self.domain}"
certfiles:
  - "{self.certificate.pem_path}"
acme:
  auto: false
ca_file: "{ca}"
s2s_cafile: "{ca}"
s2s_use_starttls: required
s2s_dns_timeout: 5
s2s_dns_retries: 1
s2s_max_retry_delay: 2
outgoing_s2s_families:
  - ipv4
outgoing_s2s_ipv4_address: "{self.host}"
listen:
  -
    port: {self.port}
    ip: "{self.host}"
    module: ejabberd_c2s
    starttls: true
    starttls_required: true
    access: c2s
  -
    port: {self.s2s_port}
    ip: "{self.host}"
    module: ejabberd_s2s_in
{s2s_tls}auth_method: internal
auth_password_format: scram
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10
  c2s_shaper: none
  s2s_shaper: none
modules:
  mod_disco: {{}}
  mod_roster: {{}}
  mod_privacy: {{}}
  mod_blocking: {{}}
  mod_offline: {{}}
  mod_ping: {{}}
  mod_version: {{}}
  mod_caps: {{}}
  mod_s2s_dialback: {{}}
  mod_multicast: {{}}
{self.extra_config}
""")

    def launch(self):
        self._boots += 1
        libs = "/usr/lib/x86_64-linux-gnu"
        for line in Path("/usr/sbin/ejabberdctl").read_text().splitlines():
            if line.startswith("ERL_LIBS="):
                libs = line.split("=", 1)[1].strip("'\"")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "EJABBERD_CONFIG_PATH": str(self.yml),
            "EJABBERD_LOG_PATH": str(self.log_path),
            "ERL_LIBS": libs,
            "ERL_INETRC": str(self.inetrc),
            "ERL_CRASH_DUMP": str(self.log_dir / "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
            "ERL_MAX_PORTS": "4096",
        }
        users = ", ".join(f"{{{_erl_bin(u)}, {_erl_bin(p)}}}" for u, p in self.accounts.items())
        # After -s ejabberd has started the application: the accounts, then a line
        # ready() waits for. No -sname/-name: no distribution, no epmd.
        boot = (f"H = {_erl_bin(self.domain)}, "
                f"[case ejabberd_auth:try_register(U, H, P) of ok -> ok; {{error, exists}} -> ok end "
                f" || {{U, P}} <- [{users}]], "
                f"io:format(\"starling-peers: ready ~b~n\", [{self._boots}]).")
        # unshare execs the shell, which execs erl, which execs beam.smp: the PID we
        # started stays the server's. Without root, a user namespace gives the mount.
        ns = ["unshare", "--mount", "--propagation", "private"]
        if os.getuid() != 0:
            ns[1:1] = ["--user", "--map-root-user"]
        mounts = (f'mount --bind "{self.dir / "hosts"}" /etc/hosts && '
                  f'mount --bind "{self.dir / "resolv.conf"}" /etc/resolv.conf && exec "$@"')
        self.process = Process(
            ns + ["sh", "-c", mounts, "sh",
                  "erl", "-noinput", "+K", "true", "-mnesia", "dir", f'"{self.dir / "spool"}"',
                  "-s", "ejabberd", "-eval", boot],
            self.out_path, cwd=self.dir / "spool", env=env)

    def ready(self):
        try:
            out = self.out_path.read_text(errors="replace")
        except OSError:
            return False
        return f"starling-peers: ready {self._boots}\n" in out and super().ready()


class Starling(Peer):
    """A starling node as a member of the Federation: its supervisor (from $STARLING_BIN,
    default build/release/bin) our child, c2s on <address>:5222, s2s on <address>:5269,
    its certificate (c2s.certificate, which s2s presents too) from the test CA or
    self-signed, the test CA as s2s.ca_file and our DNS server as s2s.dns_servers.
    config: {group: {key: value}} over what is written (config_written() tells it).
    Directives the binary does not know yet (its `starlingctl sample-config` lacks them)
    are left out, so that an older build still starts."""

    kind = "starling"
    subdomains = ("conference",)  # the chat service (muc.domain), a server of its own to peers

    def __init__(self, *args, config=None, **kw):
        super().__init__(*args, **kw)
        self.bin = BIN
        self.conf = self.dir / "starling.conf"
        self.log_path = self.out_path  # the supervisor and its children log to stderr
        self.overrides = config or {}
        self.left_out = []  # directives the binary does not know, not written
        self._boots = 0

    def known_keys(self):
        """group.key of every directive the binary knows, from its sample config."""
        r = subprocess.run([str(self.bin / "starlingctl"), "sample-config"], capture_output=True, text=True,
                           timeout=30)
        keys, group = set(), None
        for line in r.stdout.splitlines():
            if line.endswith("= {"):
                group = line.split()[0]
            elif line == "};":
                group = None
            elif not line.lstrip().startswith("#") and " = " in line:
                keys.add(f"{group}.{line.split()[0]}" if group else line.split()[0])
        return keys

    def config(self):
        cfg = {
            "log": {"level": "debug" if self.debug else "info"},
            "c2s": {"listen": f"{self.host}:{self.port}", "listen_tls": "", "threads": 1,
                    "certificate": str(self.certificate.cert_path), "key": str(self.certificate.key_path)},
            "router": {"shards": 2},
            "s2s": {"listen": f"{self.host}:{self.s2s_port}",
                    "dns_servers": [f"{self.net.dns.address}:{self.net.dns.port}"],
                    "ca_file": str(self.net.ca.cert_path)},
        }
        if self.s2s_tls_port:
            cfg["s2s"]["listen_tls"] = f"{self.host}:{self.s2s_tls_port}"
        for group, values in self.overrides.items():
            cfg.setdefault(group, {}).update(values)
        return cfg

    def setup(self):
        for exe in ("starling", "starling-c2s", "starling-router", "starling-s2s", "starlingctl"):
            if not (self.bin / exe).exists():
                raise PeerError(f"{self.bin / exe} is missing: run make (or set STARLING_BIN)")
        known = self.known_keys()
        lines = [f"domain = {conf_value(self.domain)};"]
        for group, values in self.config().items():
            lines.append(f"{group} = {{")
            for k, v in values.items():
                if f"{group}.{k}" in known:
                    lines.append(f"    {k} = {conf_value(v)};")
                else:
                    self.left_out.append(f"{group}.{k}")
            lines.append("};")
        self.conf.write_text("\n".join(lines) + "\n")
        if self.accounts:
            accounts = "".join(f"{u}@{self.domain} {p}\n" for u, p in self.accounts.items())
            r = subprocess.run([str(self.bin / "starlingctl"), "--config", str(self.conf), "import-users", "-"],
                               input=accounts, capture_output=True, text=True, timeout=60,
                               env={**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "")
                                    + ":detect_leaks=0"})
            if r.returncode != 0:
                raise PeerError(f"starlingctl import-users: {r.returncode}\n{r.stdout}{r.stderr}")

    def config_written(self):
        return self.conf.read_text()

    def launch(self):
        self._boots += 1
        self.process = Process([str(self.bin / "starling"), "--config", str(self.conf)], self.out_path,
                               cwd=self.dir)

    def ready(self):
        log = self.log_text()
        return (all(log.count(f"{c} is serving") >= self._boots for c in ("router", "c2s", "s2s"))
                and super().ready())

    def restart(self):
        """A clean stop (SIGTERM; the supervisor must exit with status 0) and a start on
        the same config and store."""
        rc = self.stop()
        assert rc == 0, f"starling ({self.domain}) exited with {rc} on SIGTERM:\n{self.log_tail()}"
        return self.start()

    def sanitizer_reports(self):
        """AddressSanitizer and UBSan reports in the log (a SAN= build in STARLING_BIN)."""
        return [line for line in self.log_text().splitlines()
                if "ERROR: AddressSanitizer" in line or ": runtime error: " in line]

    def restarts(self):
        """Log lines telling that a child of the supervisor died."""
        return [line for line in self.log_text().splitlines()
                if "died of signal" in line or "exited with status" in line]

    def assert_running(self):
        super().assert_running()
        assert not self.sanitizer_reports(), "\n".join(self.sanitizer_reports())
        if self.process is not None:
            assert not self.restarts(), f"starling ({self.domain}): a child died:\n" + "\n".join(self.restarts())


# ---- the whole federation ------------------------------------------------------------------


class Federation:
    """A DNS server, a test CA and the peers of one test module. workdir: a folder that
    the prosody user can reach (Federation.make() makes one in /tmp)."""

    def __init__(self, workdir):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ca = pki.TestCA(self.dir / "pki")
        self.dns = Dns(self.dir / "dns")
        self.peers = []
        self.names = {}  # domain -> AddressClaim, for servers that are not peers (starling)

    @classmethod
    def make(cls, prefix="starling-peers-"):
        d = Path(tempfile.mkdtemp(prefix=prefix))
        d.chmod(0o755)
        return cls(d)

    def name(self, domain, address, **dns):
        """A domain served by something other than a peer (starling): an address of its
        own (returned: the one asked for, or another when taken) and DNS records to it
        (Dns.add_domain's options)."""
        claim = AddressClaim(address, (dns.get("port", S2S_PORT),))
        self.names[domain] = claim
        self.dns.add_domain(domain, claim.address, **dns)
        return claim.address

    def _peer(self, cls, domain, address, dns=None, **kw):
        p = cls(self, domain, address, **kw)
        for d in [domain] + [f"{sub}.{domain}" for sub in p.subdomains]:
            self.dns.add_domain(d, p.host, tls_port=p.s2s_tls_port, **(dns or {}))
        self.peers.append(p)
        return p

    def prosody(self, domain, address, **kw):
        return self._peer(Prosody, domain, address, **kw)

    def ejabberd(self, domain, address, **kw):
        return self._peer(Ejabberd, domain, address, **kw)

    def starling(self, domain, address, **kw):
        """A starling node (Starling): its config, accounts and certificate as for the
        other peers; config={group: {key: value}} adds or replaces directives."""
        return self._peer(Starling, domain, address, **kw)

    def start(self):
        """DNS, then every peer's setup, then all of them at once."""
        self.dns.start()
        try:
            for p in self.peers:
                p.setup()
            for p in self.peers:
                p.launch()
            errors = []

            def wait(p):
                try:
                    p.wait_ready()
                except Exception as e:  # noqa: BLE001 - reported below, all of them
                    errors.append(e)

            threads = [threading.Thread(target=wait, args=(p,)) for p in self.peers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise PeerError("\n\n".join(str(e) for e in errors))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for p in self.peers:
            p.stop()
        self.dns.stop()

    def close(self, keep=None):
        """stop(), the addresses released, the folder removed unless keep (default: the
        environment's STARLING_KEEP_PEERS=1)."""
        if keep is None:
            keep = os.environ.get("STARLING_KEEP_PEERS") == "1"
        self.stop()
        for p in self.peers:
            p.claim.release()
        for c in self.names.values():
            c.release()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def report_sections(self):
        """(title, text) of each peer's log, for a failed test's report."""
        out = [sec for p in self.peers for sec in p.report_sections()]
        out.append((f"dnsmasq log ({self.dns.dir})", _tail(self.dns.out_path, 40)))
        return out

    def assert_running(self):
        for p in self.peers:
            p.assert_running()
        if self.dns.process is not None:
            assert self.dns.process.alive(), f"dnsmasq exited:\n{_tail(self.dns.out_path)}"
