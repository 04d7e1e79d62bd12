"""
Multi-user chat in a cluster (router/muc.h "Fan-out"): three real nodes sharing
PostgreSQL (cluster.py), two c2s threads and two shards each, a room whose occupants
are on every node. Every occupant gets each groupchat message exactly once; joins,
leaves and a session's end cross the nodes as presence; private messages cross too.
The counters say how: the room's home node writes each message once and sends one
link message per other node holding occupants (starling_cluster_fanout_frames_total
{kind="deliver"}, listing that node's occupants), and one frame per c2s thread of its own
(starling_muc_deliver_frames_total); each other node splits the link message into at
most one frame per c2s thread (starling_router_deliver_frames_total), never one per
occupant. Then a room whose home is a node none of its occupants is on: the same, all
through the links, and the room's archive answers an occupant on another node.

Which node is a room's home is the ring's choice: the tests find it from the one node
whose starling_muc_messages_total moved.
"""
import time
import xml.etree.ElementTree as ET

import pytest

from cluster import Cluster
from im import connect, new_id
from rawxmpp import NS_CLIENT, q
from test_admin import m, metrics
from test_muc import NS_SID, codes, groupchat, instant, is_gc, is_pres, join, room_ids, room_query

PUBLISH = 1.3  # the shards publish their counters after work, at most once a second
COUNTED = {
    "msgs": ("starling_muc_messages_total", {}),
    "muc_dlv": ("starling_muc_deliveries_total", {}),
    "muc_frames": ("starling_muc_deliver_frames_total", {}),
    "link_frames": ("starling_cluster_fanout_frames_total", {"kind": "deliver"}),
    "link_rcpts": ("starling_cluster_fanout_recipients_total", {"kind": "deliver"}),
    "fe_frames": ("starling_router_deliver_frames_total", {}),
    "fe_dlv": ("starling_router_deliveries_total", {}),
}


@pytest.fixture(scope="module")
def cl(tmp_path_factory):
    with Cluster(tmp_path_factory.mktemp("muccluster"), n=3) as c:
        c.wait_whole()
        yield c
        for node in c.nodes:
            assert not node.sanitizer_reports(), "\n".join(node.sanitizer_reports())
            assert not node.restarts(), "a child died:\n" + "\n".join(node.restarts())


def counters(cl):
    out = {}
    for node in cl.nodes:
        v = metrics(node)
        out[node.name] = {k: m(v, name, **labels) for k, (name, labels) in COUNTED.items()}
    return out


def delta(before, after):
    return {n: {k: after[n][k] - before[n][k] for k in after[n]} for n in after}


def muc_domain(cl):
    return f"conference.{cl.nodes[0].domain}"


def home_of(cl, before):
    """The node whose rooms' counter moved since before (one message since)."""
    time.sleep(PUBLISH)
    d = delta(before, counters(cl))
    homes = [n for n in cl.nodes if d[n.name]["msgs"] == 1]
    assert len(homes) == 1 and sum(d[n.name]["msgs"] for n in cl.nodes) == 1, d
    return homes[0]


def wait_counted(cl, before, home, deliveries):
    """The counters once the home's muc deliveries reached `deliveries` (they lag)."""
    deadline = time.monotonic() + 6
    while True:
        time.sleep(PUBLISH)
        d = delta(before, counters(cl))
        if d[home.name]["muc_dlv"] >= deliveries or time.monotonic() > deadline:
            return d


def exactly_once(peers, bodies):
    """Each peer got each body once: waited for, then nothing more of them came."""
    for c in peers:
        c.settle()
        extra = c.take(lambda e: e.tag == q(NS_CLIENT, "message")
                       and e.findtext(q(NS_CLIENT, "body")) in bodies)
        assert extra == [], (c.jid, [ET.tostring(e) for e in extra])


def test_room_with_occupants_on_three_nodes(cl):
    nodes = cl.nodes
    per_node = 4  # on two c2s threads, as the kernel spreads them (SO_REUSEPORT)
    names = cl.new_users(per_node * len(nodes), "mc")
    peers = [connect(nodes[i // per_node], n, "r", available=True) for i, n in enumerate(names)]
    where = {c.jid: nodes[i // per_node] for i, c in enumerate(peers)}
    nick = {c.jid: f"n{i}" for i, c in enumerate(peers)}
    try:
        room = f"{new_id('big')}@{muc_domain(cl)}"
        owner = peers[0]
        assert {110, 201} <= codes(join(owner, room, nick[owner.jid]))
        instant(owner, room)
        for c in peers[1:]:
            join(c, room, nick[c.jid])
        # Every join crossed to every node: each occupant saw everyone's presence (the
        # ones before it on its join, the ones after it as they came).
        for c in peers:
            for o in peers:
                if o is not c:
                    c.wait_for(is_pres(f"{room}/{nick[o.jid]}"), what=f"{nick[o.jid]}'s presence")

        before = counters(cl)
        groupchat(owner, room, "warm-up")
        for c in peers:
            c.wait_for(is_gc("warm-up"))
        home = home_of(cl, before)
        local = sum(1 for c in peers if where[c.jid] is home)
        remote_nodes = [n for n in nodes if n is not home]

        before = counters(cl)
        senders = [peers[0], peers[per_node + 1], peers[2 * per_node + 2]]  # one per node
        bodies = [f"counted {k}" for k in range(len(senders))]
        for s, b in zip(senders, bodies):
            s.send(f"<message to='{room}' type='groupchat' id='{new_id('g')}'><body>{b}</body></message>")
        sids = {}
        for c in peers:
            for s, b in zip(senders, bodies):
                got = c.wait_for(is_gc(b, frm=f"{room}/{nick[s.jid]}"), what=b)
                assert got.get("to") == c.jid, ET.tostring(got)
                sids.setdefault(b, set()).update(room_ids(got, room))
        # One archive row per message (at its home), the same id on every node.
        assert all(len(v) == 1 for v in sids.values()), sids
        n_msgs, n_occ = len(bodies), len(peers)
        d = wait_counted(cl, before, home, n_msgs * n_occ)
        h = d[home.name]
        assert h["msgs"] == n_msgs and h["muc_dlv"] == n_msgs * n_occ, d
        # One link message per other node and message, listing that node's occupants...
        assert h["link_frames"] == n_msgs * len(remote_nodes), d
        assert h["link_rcpts"] == n_msgs * (n_occ - local), d
        # ...and one frame per c2s thread of the home's own occupants (one or two).
        assert n_msgs * (len(remote_nodes) + 1) <= h["muc_frames"] <= n_msgs * (len(remote_nodes) + 2), d
        assert h["fe_frames"] == h["muc_frames"] - h["link_frames"], d
        assert h["fe_dlv"] == n_msgs * local, d
        for n in remote_nodes:
            # Split there per c2s thread, every occupant of the node reached.
            assert d[n.name]["fe_dlv"] == n_msgs * per_node, d
            assert n_msgs <= d[n.name]["fe_frames"] <= 2 * n_msgs, d
            assert d[n.name]["msgs"] == 0 and d[n.name]["link_frames"] == 0, d
        exactly_once(peers, bodies + ["warm-up"])

        # A private message from one node to an occupant on another.
        a, b = peers[1], peers[-1]
        a.send(f"<message to='{room}/{nick[b.jid]}' type='chat'><body>psst</body></message>")
        pm = b.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "psst", what="the private message")
        assert pm.get("from") == f"{room}/{nick[a.jid]}"

        # Leaving, and a session's end on another node: everyone hears it, once.
        gone = peers[per_node]  # node2
        gone.send(f"<presence to='{room}/{nick[gone.jid]}' type='unavailable'/>")
        assert 110 in codes(gone.wait_for(is_pres(f"{room}/{nick[gone.jid]}", "unavailable")))
        closed = peers.pop()  # node3
        closed.close()
        for c in peers:
            if c is not gone:
                c.wait_for(is_pres(f"{room}/{nick[gone.jid]}", "unavailable"), what="the leave")
                c.wait_for(is_pres(f"{room}/{nick[closed.jid]}", "unavailable"), what="the session end")
        groupchat(peers[1], room, "after")
        for c in peers:
            if c is not gone:
                c.wait_for(is_gc("after"))
        gone.settle()
        assert gone.take(is_gc("after")) == []
        exactly_once([c for c in peers if c is not gone], ["after"])
    finally:
        for c in peers:
            c.close()


def test_room_homed_where_no_occupant_is(cl):
    """All occupants on one node, the room's home another: each message is one link
    message to that node and nothing local; the archive answers across nodes."""
    nodes = cl.nodes
    at = nodes[1]
    names = cl.new_users(5, "mh")
    peers = [connect(at, n, "r", available=True) for n in names[:4]]
    (reader,) = [connect(nodes[2], names[4], "r", available=True)]
    nick = {c.jid: f"p{i}" for i, c in enumerate(peers)}
    try:
        owner = peers[0]
        for _ in range(20):
            room = f"{new_id('far')}@{muc_domain(cl)}"
            join(owner, room, nick[owner.jid])
            instant(owner, room)
            before = counters(cl)
            groupchat(owner, room, "where")
            owner.wait_for(is_gc("where"))
            home = home_of(cl, before)
            if home is not at:
                break
            owner.send(f"<presence to='{room}/{nick[owner.jid]}' type='unavailable'/>")
            owner.wait_for(is_pres(f"{room}/{nick[owner.jid]}", "unavailable"))
        assert home is not at
        for c in peers[1:]:
            join(c, room, nick[c.jid])
        for c in peers:
            for o in peers:
                if o is not c:
                    c.wait_for(is_pres(f"{room}/{nick[o.jid]}"), what="presence")

        before = counters(cl)
        bodies = [f"far {k}" for k in range(4)]
        for k, b in enumerate(bodies):
            groupchat(peers[k], room, b)
        live = []  # per occupant: {body: the room's stanza-id}
        for c in peers:
            got = {b: room_ids(c.wait_for(is_gc(b)), room) for b in bodies}
            assert all(len(v) == 1 for v in got.values()), got
            live.append({b: v[0] for b, v in got.items()})
        assert all(x == live[0] for x in live), live
        n = len(bodies)
        d = wait_counted(cl, before, home, n * len(peers))
        h = d[home.name]
        assert h["msgs"] == n and h["muc_dlv"] == n * len(peers), d
        assert h["link_frames"] == n and h["link_rcpts"] == n * len(peers), d
        # Nothing for the home's own threads (no frame listing nobody).
        assert h["muc_frames"] == n and h["fe_frames"] == 0, d
        assert d[at.name]["fe_dlv"] == n * len(peers), d
        assert n <= d[at.name]["fe_frames"] <= 2 * n, d
        exactly_once(peers, bodies)

        # The archive, at the home, to an occupant on another node and to a reader on
        # a third one (an open room: anyone may read it), paged.
        got, fin = room_query(peers[1], room)
        archived = {g.findtext(q(NS_CLIENT, "body")): i for i, g in got}
        assert len(got) == 5 and fin.get("complete") == "true"
        assert got[0][1].findtext(q(NS_CLIENT, "body")) == "where"
        assert {b: archived[b] for b in bodies} == live[0]
        # In the order the room sent them (the senders' four connections raced).
        assert [i for i, _ in got] == sorted((i for i, _ in got), key=int)
        got, fin = room_query(reader, room, page=f"<set xmlns='http://jabber.org/protocol/rsm'><max>2</max></set>")
        assert len(got) == 2 and fin.get("complete") != "true"
        assert got[0][1].get("from") == f"{room}/{nick[owner.jid]}"
        assert got[0][1].find(q(NS_SID, "stanza-id")) is None
    finally:
        for c in peers + [reader]:
            c.close()
