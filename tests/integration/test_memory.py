"""
Memory at rest: what a node holds before clients come. Read from /proc/PID/status of
the node's own processes. The figures themselves (start-up RSS, bytes per idle
connection) are bench/memory.sh's; these tests check the mechanisms with margins no
machine noise reaches.
"""
import time

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
