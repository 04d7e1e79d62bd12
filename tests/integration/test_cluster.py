"""
The cluster (README "Cluster"): three real nodes (cluster.py) whose clients' connections
land on different nodes: they chat, subscribe, see presence, get roster pushes, carbons,
offline messages and blocking as on one node; a user with resources on two nodes gets
bare-JID messages by priority; a presence broadcast crosses each link once with its
recipient list (the shards' link counters in the status file say so). Where each user
lives is the ring's choice: the tests put connections on nodes, and every one of them
passes whichever node is a user's home.
"""
import time

import pytest

from cluster import Cluster
from im import NS_CLIENT, befriend, connect, is_message, is_presence, q, stanza_error
from test_admin import m, metrics
from test_server_basics import carbon, enable_carbons


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("cluster"), n=3) as c:
        c.wait_whole()
        yield c
        for node in c.nodes:
            assert not node.sanitizer_reports(), "\n".join(node.sanitizer_reports())
            assert not node.restarts(), "a child died:\n" + "\n".join(node.restarts())


def totals(cl):
    """Every node's shard counters, summed, once the status files are fresh."""
    time.sleep(1.5)
    out = {}
    for node in cl.nodes:
        for k, v in cl.counters(node).items():
            out[k] = out.get(k, 0) + v
    return out


def link_metrics(node):
    v = metrics(node)
    return {k: m(v, f"starling_cluster_{k}") for k in ("links_up", "nodes_up")} | {
        f"{k}_{d}": m(v, f"starling_cluster_link_{k}_total", direction=d)
        for k in ("bytes", "frames") for d in ("in", "out")}


def test_chat_across_nodes(cl):
    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "chat")
    before = {n.name: link_metrics(n) for n in cl.nodes}
    for n in cl.nodes:  # /metrics sees the whole cluster from every node
        assert before[n.name]["links_up"] == 2 and before[n.name]["nodes_up"] == 3, before
    with connect(a, un, "u", available=True) as u, connect(b, vn, "v", available=True) as v:
        for i in range(5):
            u.message(v.jid, f"to v {i} " + "x" * 4000)
            v.message(u.jid, f"to u {i}")
        for i in range(5):  # in order, both ways
            assert v.wait_message(f"to v {i} " + "x" * 4000).get("from") == u.jid
            assert u.wait_message(f"to u {i}").get("from") == v.jid
        time.sleep(1.5)  # the link threads publish each second
        after = {n.name: link_metrics(n) for n in cl.nodes}
        # 20 KB of messages crossed at least one link (a's connection to b's at least once,
        # whatever the homes), besides heartbeats: more than the heartbeats add in 1.5 s.
        sent = sum(after[k]["bytes_out"] - before[k]["bytes_out"] for k in after)
        got = sum(after[k]["bytes_in"] - before[k]["bytes_in"] for k in after)
        assert sent >= 20000 and got >= 20000, (before, after)
        assert after[a.name]["frames_out"] > before[a.name]["frames_out"]
        # An iq answered by the server on the other user's behalf, and one to a user
        # that does not exist, from whichever node.
        assert u.ping(v.bare).get("type") == "result"
        r = u.ping(f"nobody-here@{a.domain}")
        assert stanza_error(r)[1] == "service-unavailable"


def test_subscription_presence_and_roster_pushes(cl):
    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "sub")
    with connect(a, un, "u") as u, connect(c, vn, "v") as v:
        befriend(u, v)  # roster pushes on both sides, through the links
        v.available()
        u.presence(status="here on node1")
        p = v.wait_for(is_presence(frm=u.jid, status="here on node1"), what="u's presence")
        assert p.get("to") == v.bare
        # v is told by probe of u's presence on its next login, from another node.
        u.presence(status="still here")
        v.wait_for(is_presence(frm=u.jid, status="still here"), what="u's update")
    with connect(b, vn, "v2") as v:
        with connect(a, un, "u2") as u:
            u.presence(status="u2 up")
            v.presence()
            v.wait_for(is_presence(frm=u.jid, status="u2 up"), what="u's presence by probe")
            u.wait_for(is_presence(frm=v.jid), what="v's initial presence")
        # u2 goes: v sees it unavailable.
        v.wait_for(is_presence(frm=f"{un}@{a.domain}/u2", ptype="unavailable"), what="u's goodbye")


def test_carbons_across_nodes(cl):
    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "carb")
    with connect(a, un, "phone", available=True) as u1, connect(c, un, "laptop", available=True) as u2, \
            connect(b, vn, "v", available=True) as v:
        enable_carbons(u1)
        enable_carbons(u2)
        v.message(u1.jid, "to the phone")
        u1.wait_message("to the phone")
        _, fwd = carbon(u2, "received", "to the phone")
        assert fwd.get("from") == v.jid
        u1.message(v.jid, "from the phone")
        v.wait_message("from the phone")
        _, fwd = carbon(u2, "sent", "from the phone")
        assert fwd.get("to") == v.jid


def test_offline_messages_across_nodes(cl):
    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "offl")
    with connect(a, un, "u", available=True) as u:
        for i in range(3):
            u.message(f"{vn}@{a.domain}", f"while away {i}")
        u.ping(f"{vn}@{a.domain}")  # answered in v's shard after the messages were stored
    with connect(c, vn, "v", available=True) as v:
        for i in range(3):
            m = v.wait_message(f"while away {i}")
            assert m.get("from") == f"{un}@{a.domain}/u"


def test_blocking_across_nodes(cl):
    a, b, c = cl.nodes
    un, cn = cl.new_users(2, "blk")
    with connect(b, un, "u", available=True) as u, connect(c, cn, "c", available=True) as blocked:
        assert u.block(blocked.bare).get("type") == "result"
        blocked.send(f"<message to='{u.jid}' type='chat' id='bm'><body>let me in</body></message>")
        err = blocked.wait_for(lambda e: e.get("id") == "bm", what="the error")
        assert stanza_error(err)[:2] == ("cancel", "service-unavailable")
        u.settle()
        assert u.take(is_message()) == []
        assert u.unblock(blocked.bare).get("type") == "result"
        blocked.message(u.jid, "now you hear me")
        u.wait_message("now you hear me")


def test_bare_jid_by_priority_across_nodes(cl):
    """RFC 6121 §8.5.2.1.1: a message to the bare JID goes to the available resource of
    highest priority, wherever its connection is."""
    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "prio")
    with connect(a, un, "high", available=True, priority=5) as hi, \
            connect(b, un, "low", available=True, priority=1) as lo, \
            connect(c, vn, "v", available=True) as v:
        v.message(f"{un}@{a.domain}", "to the bare jid")
        hi.wait_message("to the bare jid")
        lo.settle()
        assert lo.take(is_message("to the bare jid")) == []
        lo.presence(priority=9)
        lo.wait_for(is_presence(frm=lo.jid, ptype=None), what="the echo")
        v.message(f"{un}@{a.domain}", "now to low")
        lo.wait_message("now to low")
        hi.settle()
        assert hi.take(is_message("now to low")) == []


def test_broadcast_crosses_each_link_once(cl):
    """A presence broadcast to contacts homed on the other nodes crosses each link once,
    listing every contact there (link_fanout_frames, link_fanout_contacts), and the
    deliveries to many connections of one node cross once (link_deliver_frames)."""
    a, b, c = cl.nodes
    n = 12
    un, *cns = cl.new_users(n + 1, "fan")
    peers = []
    try:
        u = connect(a, un, "u")
        peers.append(u)
        for i, cn in enumerate(cns):
            p = connect((b, c)[i % 2], cn, "c")
            peers.append(p)
            befriend(u, p)
            p.available()
        u.presence(status="warm-up")
        for p in peers[1:]:
            p.wait_for(is_presence(frm=u.jid, status="warm-up"), what="the first broadcast")
        before = totals(cl)
        u.presence(status="counted")
        for p in peers[1:]:
            p.wait_for(is_presence(frm=u.jid, status="counted"), what="the broadcast")
        after = totals(cl)
        d = {k: after[k] - before.get(k, 0) for k in after}
        # u's home sends one frame per other node at most, with all its contacts there
        # (12 contacts over three nodes: more than one per frame, but for a freak draw).
        assert 1 <= d["link_fanout_frames"] <= 2, d
        assert d["link_fanout_contacts"] > d["link_fanout_frames"], d
        assert d["link_fanout_contacts"] <= n, d
        # The contacts' homes deliver to their connections on nodes 2 and 3: a list per
        # node, never more frames than recipients.
        assert d["link_deliver_frames"] <= d["link_deliveries"], d
        assert d["link_bytes_saved"] > 0, d
        assert d["link_bounced"] == 0, d
        # /metrics counts the same as the status files.
        mv = [metrics(node) for node in cl.nodes]
        tot = lambda name, **lb: sum(m(v, name, **lb) for v in mv)
        assert tot("starling_cluster_fanout_frames_total", kind="presence") == \
            after["link_fanout_frames"]
        assert tot("starling_cluster_fanout_recipients_total", kind="presence") == \
            after["link_fanout_contacts"]
        assert tot("starling_cluster_link_bytes_saved_total") == after["link_bytes_saved"]
        assert tot("starling_cluster_frames_bounced_total") == after["link_bounced"]
    finally:
        for p in peers:
            p.close()


def test_starlingctl_cluster(cl):
    a, b, c = cl.nodes
    r = a.ctl("cluster")
    out = r.stdout
    for node in cl.nodes:
        assert node.name in out
    assert out.count(" up ") >= 2, out
    assert "self" in out


def test_discovery_through_postgresql(tmp_path):
    """cluster.discovery = "postgresql" and no cluster.nodes: each node writes its row
    in cluster_nodes and finds the others there; they link up and chat across nodes."""
    with Cluster(tmp_path, n=3, cluster={"discovery": "postgresql", "nodes": []}) as dc:
        dc.wait_whole()
        rows = dc.pg.sql("cluster", "SELECT name || '=' || address FROM cluster_nodes"
                         " ORDER BY name").split()
        assert rows == [f"{n.name}={n.link_host}:{n.link_port}" for n in dc.nodes], rows
        slots = dc.pg.sql("cluster", "SELECT count(DISTINCT slot) FROM cluster_nodes")
        assert slots == "3"
        a, b, c = dc.nodes
        un, vn, wn = dc.new_users(3, "disc")
        with connect(a, un, "u", available=True) as u, \
                connect(b, vn, "v", available=True) as v, \
                connect(c, wn, "w", available=True) as w:
            for x, y in ((u, v), (v, w), (w, u)):
                x.message(y.jid, f"from {x.jid}")
            for x, y in ((u, v), (v, w), (w, u)):
                assert y.wait_message(f"from {x.jid}").get("from") == x.jid
        for node in dc.nodes:
            assert m(metrics(node), "starling_cluster_links_up") == 2
            assert not node.restarts(), node.restarts()
            assert not node.sanitizer_reports(), node.sanitizer_reports()


def test_resume_on_another_node(cl):
    """XEP-0198: a session whose connection to one node is cut resumes on another node,
    with everything it had not acknowledged, whichever node is its user's home."""
    from test_sm import NS_SM, SMPeer, bodies

    a, b, c = cl.nodes
    un, vn = cl.new_users(2, "smc")
    u = SMPeer(a)
    u.login(un, a.password(un), "phone")
    u.available()
    with connect(c, vn, "v", available=True) as v:
        previd = u.enable().get("id")
        v.message(u.jid, "one")
        assert bodies(u, {"one"}) == {"one": 1}
        h = u.h
        u.cut()
        for i in range(3):
            v.message(u.jid, f"away {i}")
        assert v.ping(u.bare).get("type") == "result"  # u's home has them
        for node in (b, a):  # another node; then, resumed there and cut again, the first
            u2 = SMPeer(node)
            u2.open()
            u2.starttls()
            u2.open()
            assert u2.auth_plain(un, node.password(un)).tag.endswith("success")
            u2.restart()
            u2.send(f"<resume xmlns='{NS_SM}' previd='{previd}' h='{h}'/>")
            el = u2.wait_for(lambda e: e.tag in (q(NS_SM, "resumed"), q(NS_SM, "failed")))
            assert el.tag == q(NS_SM, "resumed"), (node.name, el.tag)
            u2.h = h
            want = {f"away {i}" for i in range(3)} if node is b else set()
            v.message(u.jid, f"on {node.name}")
            want.add(f"on {node.name}")
            assert bodies(u2, want) == {w: 1 for w in want}, node.name
            u2.message(v.jid, f"from {node.name}")
            assert v.wait_message(f"from {node.name}").get("from") == u.jid
            u2.send(f"<a xmlns='{NS_SM}' h='{u2.h}'/>")
            h = u2.h
            u2.cut()
        assert not v.take(is_presence(frm=u.jid, ptype="unavailable"))
