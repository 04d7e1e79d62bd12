"""
One room, occupants everywhere: a starling cluster of two nodes sharing PostgreSQL
(cluster.py, pg.py) that federates with a real Prosody (peers.py), and a room of the
cluster's chat service whose occupants are at once on both nodes (four connections on
the first, which the kernel spreads over its two c2s threads by SO_REUSEPORT, both of
them but one time in eight; two on the second) and on Prosody (two users of
prosody.test over s2s).

The cluster is one domain, cluster.test, to Prosody: each node runs s2s on an address of
its own; the test DNS sends Prosody to node1 for cluster.test and to node2 for its chat
service (conference.cluster.test), whatever node a room or a stream lives on. The nodes
present one certificate naming both domains (the test CA's: SASL EXTERNAL both ways; or
self-signed: dialback, where for one of the two domains the node Prosody asks to verify
a key is not the one that made it, which works because every node has the dialback
secret beside the shared storage.path). The streams to prosody.test belong to the node that domain hashes to on
the ring (router/out.c): the room's stanzas for Prosody's users cross a link to it when
the room lives on the other node.

Checked: every occupant sees every join and leave; every occupant gets each groupchat
message (from a user of each node and one of Prosody) exactly once, with the one
stanza-id the room gave it; and the counters of /metrics say the fan-out crossed each
hop once per destination: the room's home node writes one link message per message to
the other node (starling_cluster_fanout_frames_total{kind="deliver"}), and one remote
fan-out frame per message leaves for s2s for Prosody's two users, on the one node that
owns prosody.test's streams (starling_router_fanout_frames_total{to="s2s"}, listing
both: starling_router_fanout_contacts_total{to="s2s"}). Twice: the room homed on the node
holding prosody.test's streams, and on the other one.

Release only, to keep `make test` short: its parts run against the sanitized server in
test_muc_cluster.py and test_muc_s2s.py.
"""
import time
import xml.etree.ElementTree as ET

import pki
import pytest

from cluster import Cluster, _free_port_on
from conftest import SANITIZED
from im import Peer, connect, new_id
from rawxmpp import NS_CLIENT, q
from test_admin import m, metrics
from test_muc import codes, groupchat, instant, is_gc, is_pres, join, room_ids

pytestmark = pytest.mark.skipif(SANITIZED, reason="release only: test_muc_cluster and "
                                "test_muc_s2s run its parts sanitized")

DOMAIN = "cluster.test"
MUC = f"conference.{DOMAIN}"
PEER = "prosody.test"
WAIT = 40.0  # per stanza: s2s streams are made on first use, on a loaded 2-core machine
PUBLISH = 1.3  # the shards publish their counters after work, at most once a second
COUNTED = {
    "msgs": ("starling_muc_messages_total", {}),
    "muc_dlv": ("starling_muc_deliveries_total", {}),
    "muc_frames": ("starling_muc_deliver_frames_total", {}),
    "link_frames": ("starling_cluster_fanout_frames_total", {"kind": "deliver"}),
    "link_rcpts": ("starling_cluster_fanout_recipients_total", {"kind": "deliver"}),
    "fe_frames": ("starling_router_deliver_frames_total", {}),
    "fe_dlv": ("starling_router_deliveries_total", {}),
    "s2s_frames": ("starling_router_fanout_frames_total", {"to": "s2s"}),
    "s2s_rcpts": ("starling_router_fanout_contacts_total", {"to": "s2s"}),
}


@pytest.fixture(scope="module", params=["ca", "self-signed"])
def world(request, make_federation, tmp_path_factory):
    certs = request.param
    net = make_federation()
    prosody = net.prosody(PEER, "127.0.0.47", accounts={"pat": "pat-pw", "pia": "pia-pw"}, certs=certs)
    cl = Cluster(tmp_path_factory.mktemp(f"mucall-{certs}"), n=2)
    names = [DOMAIN, MUC]
    if certs == "ca":
        cert, trust = net.ca.issue(DOMAIN, names), net.ca.cert_path
    else:
        cert = pki.self_signed(net.dir / "pki", DOMAIN, names)
        trust = cert.cert_path
    for node in cl.nodes:
        node.domain = DOMAIN
        node.own_cert = False
        node.cert = trust  # what our clients verify the nodes' certificate with
        node.s2s_port = _free_port_on(node.link_host)
        node.groups.setdefault("c2s", {}).update(certificate=str(cert.cert_path), key=str(cert.key_path))
    a, b = cl.nodes
    net.dns.add_domain(DOMAIN, a.link_host, port=a.s2s_port)
    net.dns.add_domain(MUC, b.link_host, port=b.s2s_port)
    net.start()  # the DNS server (its port is the nodes' dns_servers) and Prosody
    try:
        for node in cl.nodes:
            node.groups["s2s"] = {"listen": f"{node.link_host}:{node.s2s_port}",
                                  "dns_servers": [f"{net.dns.address}:{net.dns.port}"],
                                  "ca_file": str(net.ca.cert_path)}
        with cl:
            cl.wait_whole()
            cl.net, cl.prosody, cl.certs = net, prosody, certs
            cl.streams = streams_owner(cl)
            yield cl
            for node in cl.nodes:
                assert not node.sanitizer_reports(), "\n".join(node.sanitizer_reports())
                assert not node.restarts(), "a child died:\n" + "\n".join(node.restarts())
            net.assert_running()
    finally:
        net.close()


def counters(cl):
    out = {}
    for node in cl.nodes:
        v = metrics(node)
        out[node.name] = {k: m(v, name, **labels) for k, (name, labels) in COUNTED.items()}
    return out


def delta(before, after):
    return {n: {k: after[n][k] - before[n][k] for k in after[n]} for n in after}


def settled_counters(cl, before, want):
    """The counters' deltas once want(delta) holds (they are published within a second
    or so of the work), or the last ones after a while."""
    deadline = time.monotonic() + 20
    while True:
        time.sleep(PUBLISH)
        d = delta(before, counters(cl))
        if want(d) or time.monotonic() > deadline:
            return d


def prosody_user(prosody, user):
    c = Peer(prosody, timeout=WAIT)
    try:
        c.login(user, prosody.password(user), new_id("r"))
        c.available()
    except BaseException:
        c.close()
        raise
    return c


def streams_owner(cl):
    """The node whose s2s holds the streams to prosody.test (the ring's choice): the one
    that made the first, for a message from cluster.test to a user there."""
    (u,) = cl.new_users(1, "so")
    with connect(cl.nodes[0], u, "r", available=True, timeout=WAIT) as c, \
            prosody_user(cl.prosody, "pat") as pat:
        c.send(f"<message to='{pat.jid}' type='chat'><body>which node</body></message>")
        pat.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "which node", what="the first message")
    deadline = time.monotonic() + 10
    while True:
        made = [n for n in cl.nodes if any(t in n.log_text() for t in (
            f"authenticated to {PEER} with our certificate", f"{PEER} accepted us as {DOMAIN}"))]
        if made or time.monotonic() > deadline:
            assert len(made) == 1, [n.log_tail() for n in cl.nodes]
            return made[0]
        time.sleep(0.1)


def room_homed_on(cl, owner, nick, home):
    """A new open room with owner in it whose home is `home` (rooms hash over the ring
    like users: new names until one lands there, found from the one node whose
    starling_muc_messages_total moved for a probe message)."""
    for _ in range(30):
        room = f"{new_id('all')}-{cl.certs}@{MUC}"
        assert {110, 201} <= codes(join(owner, room, nick))
        instant(owner, room)
        before = counters(cl)
        groupchat(owner, room, "probe")
        owner.wait_for(is_gc("probe"), what="the probe")
        d = settled_counters(cl, before, lambda d: sum(x["msgs"] for x in d.values()) >= 1)
        homes = [n for n in cl.nodes if d[n.name]["msgs"] == 1]
        assert len(homes) == 1 and sum(x["msgs"] for x in d.values()) == 1, d
        if homes[0] is home:
            return room
        owner.send(f"<presence to='{room}/{nick}' type='unavailable'/>")  # gone with it
        owner.wait_for(is_pres(f"{room}/{nick}", "unavailable"), what="leaving the probe room")
    raise AssertionError(f"no room homed on {home.name} in 30 names")


@pytest.mark.parametrize("placed", ["with-streams", "across-link"])
def test_one_room_on_two_nodes_and_prosody(world, placed):
    """placed: the room's home is the node holding prosody.test's streams, or the other
    one (its stanzas for Prosody's users then cross the link to reach s2s)."""
    cl = world
    a, b = cl.nodes
    names = cl.new_users(6, "ev")
    ours = ([connect(a, n, "r", available=True, timeout=WAIT) for n in names[:4]] +
            [connect(b, n, "r", available=True, timeout=WAIT) for n in names[4:]])
    where = {c.jid: (a if i < 4 else b) for i, c in enumerate(ours)}
    theirs = [prosody_user(cl.prosody, u) for u in ("pat", "pia")]
    peers = ours + theirs
    nick = {c.jid: f"n{i}" for i, c in enumerate(peers)}
    try:
        owner = ours[0]
        home = cl.streams if placed == "with-streams" else next(n for n in cl.nodes if n is not cl.streams)
        room = room_homed_on(cl, owner, nick[owner.jid], home)
        other = b if home is a else a
        # Joins in turn, each seen by everyone already in (Prosody's users included) and
        # each newcomer seeing everyone before it.
        for k, c in enumerate(peers[1:], start=1):
            join(c, room, nick[c.jid])
            for o in peers[:k]:
                o.wait_for(is_pres(f"{room}/{nick[c.jid]}"), what=f"{nick[c.jid]}'s join")
                c.wait_for(is_pres(f"{room}/{nick[o.jid]}"), what=f"{nick[o.jid]}'s presence")

        groupchat(owner, room, "warm-up")
        for c in peers:
            c.wait_for(is_gc("warm-up"), what="warm-up")

        # One message from a user of each node and one from Prosody.
        senders = [ours[1], ours[4], theirs[0]]
        bodies = [f"everywhere {k}" for k in range(len(senders))]
        before = counters(cl)
        for s, body in zip(senders, bodies):
            s.send(f"<message to='{room}' type='groupchat' id='{new_id('g')}'><body>{body}</body></message>")
        sids = {}
        for c in peers:
            for s, body in zip(senders, bodies):
                got = c.wait_for(is_gc(body, frm=f"{room}/{nick[s.jid]}"), what=body)
                assert got.get("to") == c.jid, ET.tostring(got)
                ids = room_ids(got, room)
                assert len(ids) == 1, ET.tostring(got)
                sids.setdefault(body, set()).update(ids)
        assert all(len(v) == 1 for v in sids.values()), sids  # one id per message, everywhere

        n, n_occ = len(bodies), len(peers)
        local = sum(1 for c in ours if where[c.jid] is home)
        d = settled_counters(cl, before, lambda d: (d[home.name]["muc_dlv"] >= n * n_occ and
                                                    sum(x["s2s_frames"] for x in d.values()) >= n))
        h = d[home.name]
        assert h["msgs"] == n and h["muc_dlv"] == n * n_occ, d
        assert d[other.name]["msgs"] == 0, d
        # The link to the other node: one message per groupchat message, listing its
        # occupants; it splits it per c2s thread there.
        assert h["link_frames"] == n and h["link_rcpts"] == n * (len(ours) - local), d
        assert d[other.name]["link_frames"] == 0, d
        assert d[other.name]["fe_dlv"] == n * (len(ours) - local), d
        assert n <= d[other.name]["fe_frames"] <= 2 * n, d
        # The home's own occupants: one frame per c2s thread holding some.
        assert h["fe_dlv"] == n * local and n <= h["fe_frames"] <= 2 * n, d
        # Prosody's two users: one fan-out frame per message to s2s, on the node owning
        # prosody.test's streams (the home or, across the link, the other), never more.
        s = d[cl.streams.name]
        assert s["s2s_frames"] == n and s["s2s_rcpts"] == n * len(theirs), d
        assert all(d[x.name]["s2s_frames"] == 0 for x in cl.nodes if x is not cl.streams), d
        # All of it is the room's fan-out at its home: its threads', the link's, and
        # the one for Prosody's users wherever it leaves from.
        assert h["muc_frames"] == h["fe_frames"] + h["link_frames"] + n, d

        # Leaving: a user of the other node and one of Prosody; everyone left sees both.
        gone = [next(c for c in ours if where[c.jid] is other), theirs[1]]
        for g in gone:
            g.send(f"<presence to='{room}/{nick[g.jid]}' type='unavailable'/>")
            assert 110 in codes(g.wait_for(is_pres(f"{room}/{nick[g.jid]}", "unavailable"), what="own leave"))
        stay = [c for c in peers if c not in gone]
        for c in stay:
            for g in gone:
                c.wait_for(is_pres(f"{room}/{nick[g.jid]}", "unavailable"), what=f"{nick[g.jid]}'s leave")
        groupchat(theirs[0], room, "after")
        for c in stay:
            c.wait_for(is_gc("after"), what="after")

        # Exactly once: a last message through the same paths comes after any copy of the
        # earlier ones (frames to one connection and one s2s stream keep their order).
        groupchat(next(c for c in stay if c in ours), room, "marker")
        for c in stay:
            c.wait_for(is_gc("marker"), what="marker")
        for c in gone:  # they left: "after" went to nobody there, the marker neither
            c.send(f"<message to='{room}' type='groupchat'><body>outside</body></message>")
            c.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("type") == "error",
                       what="the error for a non-occupant's message")
        for c in peers:
            extra = c.take(lambda e: e.tag == q(NS_CLIENT, "message") and
                           e.findtext(q(NS_CLIENT, "body")) in bodies + ["warm-up", "after", "marker"])
            assert extra == [], (c.jid, [ET.tostring(e) for e in extra])
    finally:
        for c in peers:
            c.close()
