"""
Memory at rest: what a node holds before clients come, and what it gives back once they
are quiet. Read from /proc/PID/status of the node's own processes. The figures
themselves (start-up RSS, bytes per idle connection) are bench/memory.sh's; these tests
check the mechanisms with margins no machine noise reaches.
"""
import time

from conftest import proc_libs
from rawxmpp import login

MiB = 1 << 20


def _status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_connection_slots_cost_nothing_until_used(make_server):
    # Slots used to be written at start: 2,000,000 of them were 700 MiB before a client.
    rss = {}
    for n in (1000, 2_000_000):
        s = make_server(c2s={"max_connections": n})
        time.sleep(1)
        rss[n] = _status(s.c2s_pid(), "VmRSS")
        s.stop()
    assert rss[2_000_000] - rss[1000] < 8 * MiB, rss


def test_quiet_rings_give_their_pages_back(make_server):
    s = make_server(c2s={"threads": 1}, router={"shards": 1})
    procs = {"c2s": s.c2s_pid(), "router": s.router_pid()}
    alice, bob = login(s, "alice"), login(s, "bob")
    # 512 KiB through the ring to the router and back: each process maps that much of it.
    body = "x" * 8000
    for i in range(64):
        alice.message(bob.jid, f"{i} {body}")
    for i in range(64):
        bob.wait_message(f"{i} {body}")
    burst = {k: _status(pid, "RssShmem") for k, pid in procs.items()}
    for k, v in burst.items():
        assert v > 256 * 1024, f"{k}: the burst did not reach the rings? {burst}"
    # Quiet now: within a few seconds only the rings' headers and bells stay.
    deadline = time.monotonic() + 10
    while True:
        now = {k: _status(pid, "RssShmem") for k, pid in procs.items()}
        if all(v <= 64 * 1024 for v in now.values()):
            break
        assert time.monotonic() < deadline, f"shared memory after the burst {burst}, quiet {now}"
        time.sleep(0.2)
    # And the rings still carry what comes next.
    alice.message(bob.jid, "after")
    bob.wait_message("after")
    alice.close()
    bob.close()


def test_a_node_on_sqlite_maps_no_libpq_nor_openssl(make_server):
    # libpq, and through it OpenSSL 3, Kerberos and LDAP, are loaded by a PostgreSQL
    # store only (common/store/store_pgsql.h): linked, they were MiBs of every process.
    s = make_server()
    kids = s.children()
    assert {"starling-c2s", "starling-router"} <= kids.keys(), kids
    for exe, pid in [("starling", s.proc.pid), *kids.items()]:
        libs = proc_libs(pid)
        assert libs & {"libpq.so.5", "libssl.so.3", "libcrypto.so.3"} == set(), (exe, sorted(libs))
