#!/usr/bin/python3
"""
bench/cluster.py: what a cluster costs, on this machine (bench/RESULTS.md, "Cluster").

Starts three nodes on loopback (tests/integration/cluster.py: one shared store, links on
127.0.0.11-13) and one node alone, with the same accounts, then measures with
starling-bench:

  1. server CPU per message (every node's processes summed, from /proc), 100 chatting
     pairs, 10 messages in flight each: on the node alone; in the cluster with both users
     of each pair connected to node1; with the first user on node1 and the second on node2.
  2. the bytes on the cluster's links for a presence broadcast to 1,000 contacts: the hub
     (user1) on node1, its contacts connected half to node2, half to node3; from the link
     counters of the status files (starlingctl cluster). The hub logs in, broadcasts n
     times and leaves, twice (n = 5, then 25): the difference over 20 broadcasts leaves
     out its login, the probes of its initial presence (each contact's answer is its own
     stanza) and the heartbeats.

    bench/cluster.py [BIN] [THREADS]   (BIN: build/release/bin; THREADS: c2s threads and
                                        router shards of each node, 2)

Prints the figures; nothing is written into the tree.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIN = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "build" / "release" / "bin").resolve()
os.environ["STARLING_BIN"] = str(BIN)
sys.path.insert(0, str(REPO / "tests" / "integration"))

from cluster import Cluster  # noqa: E402
from conftest import Server  # noqa: E402

USERS = 1001
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
C2S = {"require_encryption": False, "login_rate": 0, "max_connections_per_address": 0,
       "max_connections": 20000, "threads": THREADS}
ROUTER = {"shards": THREADS}


def bench(*args, json_out=None):
    cmd = [str(BIN / "starling-bench"), *map(str, args), "-q"]
    if json_out:
        cmd += ["--json", str(json_out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return r, (json.loads(Path(json_out).read_text()) if json_out and Path(json_out).exists() else None)


def import_users(node):
    lst = node.dir / "users.txt"
    lst.write_text("".join(f"user{i}@localhost password\n" for i in range(1, USERS + 1)))
    node.ctl("import-users", "--replace", str(lst))


def pids(nodes):
    return ",".join(str(n.proc.pid) for n in nodes)


def cpu_per_message(tmp, label, port, peer, nodes):
    out = tmp / f"{label}.json"
    args = ["chat", "-p", port, "-c", 200, "-w", 10, "-d", 10, "--server-pid", pids(nodes)]
    if peer:
        args += ["--peer", f"127.0.0.1:{peer}", "--peer-domain", "localhost"]
    r, j = bench(*args, json_out=out)
    if not j:
        print(f"{label}: starling-bench failed: {r.stderr[-2000:]}")
        return None
    cpu = j.get("cpu", {}).get("server_us_per_unit")
    rate = j.get("rate") or j.get("throughput")
    print(f"{label}: server CPU per message {cpu:.2f} us (exit {r.returncode}) {rate or ''}")
    return cpu


def link_bytes(cl):
    total = 0
    frames = 0
    for n in cl.nodes:
        st = cl.status(n)
        for name, v in st["nodes"].items():
            if v.get("state") != "self":
                total += v.get("bytes_out", 0)
                frames += v.get("frames_out", 0)
    return total, frames


def shard_counters(cl):
    out = {}
    for n in cl.nodes:
        for k, v in cl.counters(n).items():
            out[k] = out.get(k, 0) + v
    return out


def main():
    tmp = Path(tempfile.mkdtemp(prefix="starling-cluster-bench-"))
    alone = Server(tmp / "alone", name="alone", accounts={}, c2s=dict(C2S), router=dict(ROUTER))
    alone.setup()
    import_users(alone)
    alone.start()
    try:
        cpu_alone = cpu_per_message(tmp, "node alone", alone.port, None, [alone])
    finally:
        alone.stop()

    with Cluster(tmp / "cluster", n=3, c2s=dict(C2S), router=dict(ROUTER)) as cl:
        a, b, c = cl.nodes
        cl.wait_whole()
        import_users(a)
        cpu_same = cpu_per_message(tmp, "cluster, pairs on node1", a.port, None, cl.nodes)
        cpu_cross = cpu_per_message(tmp, "cluster, node1 -> node2", a.port, b.port, cl.nodes)

        # Rosters: user1 and every other user, through subscriptions, all on node1.
        r, _ = bench("presence", "--hub", "-p", a.port, "-c", USERS, "-n", 2, "--roster-setup",
                     "--presence-rate", 1, "-d", 3)
        print(f"roster set-up: exit {r.returncode}")
        half = (USERS - 1) // 2
        idle = [subprocess.Popen([str(BIN / "starling-bench"), "idle", "-p", str(node.port), "-c", str(half),
                                  "--first", str(first), "-d", "60", "-q"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for node, first in ((b, 2), (c, 2 + half))]
        time.sleep(12)  # 1,000 logins and their initial presence
        def hub_run(n):
            time.sleep(1.5)
            before, fr_before = link_bytes(cl)
            cnt_before = shard_counters(cl)
            r, _ = bench("presence", "--hub", "-p", a.port, "-c", 1, "--no-roster-setup", "-n", n,
                         "--presence-rate", 10, "-d", 3, "--drain", 1)
            time.sleep(max(0.0, 6.0 - n / 10) + 1.5)  # the same time whatever n: heartbeats cancel
            after, fr_after = link_bytes(cl)
            cnt_after = shard_counters(cl)
            d = {k: cnt_after[k] - cnt_before.get(k, 0) for k in cnt_after}
            d["bytes"], d["frames"] = after - before, fr_after - fr_before
            return d

        small, large = hub_run(5), hub_run(25)
        d = {k: (large[k] - small[k]) / 20 for k in large}
        print(f"broadcast to {USERS - 1} contacts on node2 and node3 (difference of 25 and 5 broadcasts):")
        print(f"  link bytes per broadcast: {d['bytes']:,.0f} in {d['frames']:.1f} frames")
        print(f"  fan-out frames to other nodes per broadcast: {d['link_fanout_frames']:.2f}, "
              f"contacts listed: {d['link_fanout_contacts']:.0f}")
        print(f"  delivery lists to other nodes per broadcast: {d['link_deliver_frames']:.2f}, "
              f"recipients listed: {d['link_deliveries']:.0f}")
        print(f"  bytes saved per broadcast (counter: what one copy per recipient adds): "
              f"{d['link_bytes_saved']:,.0f}")
        for p in idle:
            p.terminate()
            p.wait()
    if cpu_alone and cpu_same and cpu_cross:
        print(f"CPU per message: alone {cpu_alone:.2f} us, cluster same node {cpu_same:.2f} us "
              f"({cpu_same / cpu_alone:.2f}x), across nodes {cpu_cross:.2f} us ({cpu_cross / cpu_alone:.2f}x)")


if __name__ == "__main__":
    main()
