"""
Node loss and return (README "Cluster"): kill -9 of one node's processes (its
supervisor and children, by PID). Within cluster.dead_after the others route without
it: the contacts of users whose sessions it held see them unavailable, users and
messages whose home it was go to a node left (their state from the shared store), its
users log in again on a node left with their roster there, and what was sent meanwhile
is delivered or stored offline. Then the node starts again: it rejoins, the users whose
home it is move back to it, and nobody connected to the other nodes is disconnected.
"""
import time

from cluster import Cluster
from im import befriend, connect, is_presence, roster_items
from test_admin import m, metrics, wait_until


def links_up(node):
    v = metrics(node)
    return m(v, "starling_cluster_links_up"), m(v, "starling_cluster_nodes_up")


def test_node_lost_and_back(tmp_path):
    with Cluster(tmp_path, n=3) as cl:
        a, b, c = cl.nodes
        cl.wait_whole()
        users = cl.new_users(6, "loss")
        # u0, u1 on node1, u2, u3 on node2, w0, w1 on node3: w0 and w1 are friends of all.
        un = users[:4]
        wn = users[4:]
        peers = {}
        try:
            for i, n in enumerate(un):
                peers[n] = connect((a, b)[i // 2], n, "r")
            for n in wn:
                peers[n] = connect(c, n, "w")
            for n in un:
                for w in wn:
                    befriend(peers[n], peers[w])
            for n in un + wn:
                peers[n].available()
            for n in un:
                peers[n].settle()
                peers[n].clear()

            killed_at = time.monotonic()
            cl.kill(c)
            for w in wn:
                peers.pop(w).close()
            # Their contacts hear them go, within dead_after (3 s) and a heartbeat.
            for n in un:
                for w in wn:
                    peers[n].wait_for(is_presence(frm_bare=f"{w}@{a.domain}", ptype="unavailable"),
                                      timeout=15, what=f"{w} unavailable")
            assert time.monotonic() - killed_at < 12
            cl.wait(lambda: cl.sees(a, [c], "down") and cl.sees(b, [c], "down"), what="node3 down")
            # /metrics says so too: one link up of two, two nodes in the ring.
            for node in (a, b):
                wait_until(lambda: links_up(node) == (1, 2), what=f"{node.name}'s links_up 1")
            time.sleep(1.0)  # the sessions whose home was node3 register again

            # The nodes left route among themselves, whoever's home was node3.
            for i, n in enumerate(un):
                to = un[(i + 1) % 4]
                peers[n].message(f"{to}@{a.domain}", f"after the loss from {n}")
            for i, n in enumerate(un):
                frm = un[(i - 1) % 4]
                m = peers[n].wait_message(f"after the loss from {frm}")
                assert m.get("from") == f"{frm}@{a.domain}/r"
            # Messages to the lost node's users are stored at their new homes.
            for n in un:
                for w in wn:
                    peers[n].message(f"{w}@{a.domain}", f"for {w} from {n}")
                    peers[n].ping(f"{w}@{a.domain}")

            # They log in again on a node left: roster and messages are there.
            for w, node in zip(wn, (a, b)):
                with connect(node, w, "again", roster=False) as p:
                    items = roster_items(p.roster())
                    assert all(items[f"{n}@{a.domain}"]["subscription"] == "both" for n in un), items
                    p.available()
                    for n in un:
                        p.wait_message(f"for {w} from {n}")

            # node3 comes back: it rejoins, and nobody on node1 and node2 is disconnected.
            cl.start(c)
            cl.wait_whole()
            for node in cl.nodes:
                wait_until(lambda: links_up(node) == (2, 3), what=f"{node.name}'s links_up 2")
            for n in un:
                assert peers[n].ping(a.domain).get("type") == "result"
            with connect(c, wn[0], "back", available=True) as p:
                for n in un:
                    p.message(f"{n}@{a.domain}/r", "hello from node3 again")
                for n in un:
                    peers[n].wait_message("hello from node3 again")
                    peers[n].message(p.jid, f"welcome back from {n}")
                for n in un:
                    p.wait_message(f"welcome back from {n}")
            # Among the users of node1 and node2, whose homes moved back in part.
            for i, n in enumerate(un):
                peers[n].message(f"{un[(i + 1) % 4]}@{a.domain}", f"after the return from {n}")
            for i, n in enumerate(un):
                peers[n].wait_message(f"after the return from {un[(i - 1) % 4]}")
            st = cl.status(a)
            assert st["nodes"]["node3"]["state"] == "up"
            for node in (a, b):
                assert not node.restarts(), node.restarts()
                assert not node.sanitizer_reports(), node.sanitizer_reports()
        finally:
            for p in peers.values():
                p.close()


def test_slow_link_refuses_past_its_bound(tmp_path):
    """cluster.max_link_bytes: a node that stops reading (its router stopped, SIGSTOP)
    while still counted up (cluster.dead_after long) makes the others queue for it up to
    the bound; past it a stanza for it is answered remote-server-timeout, not dropped.
    The sender is a user homed on the stopped node: its stanzas cross to it first."""
    import os
    import signal

    from im import stanza_error

    with Cluster(tmp_path, n=3, cluster={"dead_after": 120, "max_link_bytes": 65536}) as cl:
        a, b, c = cl.nodes
        cl.wait_whole()
        names = cl.new_users(8, "slow")
        peers = [connect(a, n, "r", available=True) for n in names]
        stopped = c.router_pid()
        try:
            os.kill(stopped, signal.SIGSTOP)
            # The users homed on node3 are those whose home no longer answers.
            homed = []
            for p in peers:
                p.send_iq("get", "<ping xmlns='urn:xmpp:ping'/>", to=a.domain, iq_id="whose")
            time.sleep(2)
            for p in peers:
                try:
                    p.wait_for(lambda e: e.get("id") == "whose", timeout=0.2)
                except AssertionError:
                    homed.append(p)
            assert homed, "no user of 8 homed on node3: most unlikely (1 in 400)"
            u = homed[0]
            body = "x" * 200000
            errors = 0
            for i in range(200):  # 40 MB: past the kernel's and nanomsg's buffers, then ours
                u.send(f"<message to='{peers[0].bare}' id='m{i}' type='chat'><body>{body}</body></message>")
                while True:
                    try:
                        e = u.wait_for(lambda e: e.get("type") == "error", timeout=0.01)
                    except AssertionError:
                        break
                    assert stanza_error(e)[:2] == ("wait", "remote-server-timeout")
                    errors += 1
                if errors >= 3:
                    break
            assert errors >= 3
            time.sleep(1.5)  # the status file is a second old at most
            st = cl.status(a)
            assert st["nodes"]["node3"]["bounced"] > 0, st
            assert st["nodes"]["node3"]["queued_bytes"] <= 65536 + 220000, st
        finally:
            os.kill(stopped, signal.SIGCONT)
            for p in peers:
                p.close()
