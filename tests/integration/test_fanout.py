"""
Presence fan-out (RFC 6121 §4.2.2, §4.4.2): a user with many contacts online changes
presence, and every available resource of every contact receives it once, with `to`
set to that contact's own bare JID (the router sends one stanza per destination shard
and c2s thread and fills in each recipient's `to`), and nobody else receives it.
"""
import pytest

from im import connect, is_presence

N_CONTACTS = 30


def subscribe_all(u, contacts):
    """Every contact subscribes to u and u approves (plain handshakes, RFC 6121 §3.1);
    returns once each contact has u's 'subscribed'."""
    for k in contacts:
        k.subscribe(u.bare)
    for k in contacts:
        assert k.ping(u.bare).get("type") == "result"  # the request is pending at u
    for k in contacts:
        u.subscribed(k.bare)
    for k in contacts:
        k.wait_for(is_presence(frm=u.bare, ptype="subscribed"), what="u's approval")


def run_fanout(server):
    names = server.new_users(N_CONTACTS + 2, "fan")
    un, stranger_n, contact_names = names[0], names[1], names[2:]
    contacts, u, stranger = [], None, None
    try:
        u = connect(server, un, "hub")
        stranger = connect(server, stranger_n, "s", available=True)
        for n in contact_names:
            contacts.append(connect(server, n, "r", available=True))
        # One contact with a second resource: both get each broadcast.
        second = connect(server, contact_names[0], "r2", available=True)
        contacts.append(second)
        subscribe_all(u, contacts[:-1])
        u.presence(status="fan 1")
        for rnd in ("fan 1", "fan 2", "fan 3"):
            if rnd != "fan 1":
                u.presence(status=rnd, show="away")
            for k in contacts:
                p = k.wait_for(is_presence(frm=u.jid, status=rnd), what=f"{rnd!r}")
                assert p.get("to") == k.bare, f"{k.jid} got to={p.get('to')!r}"
        # Exactly once each.
        for k in contacts:
            k.settle()
            assert k.take(is_presence(frm=u.jid, ptype=None)) == [], f"{k.jid} got a broadcast twice"
        # The stranger got none (the marker follows the broadcasts from u's shard).
        u.message(stranger.jid, "marker")
        stranger.wait_message("marker")
        assert stranger.take(is_presence(frm=u.jid, ptype=None)) == []
        # Unavailable too, at the end of the session.
        u.close()
        for k in contacts:
            p = k.wait_for(is_presence(frm=u.jid, ptype="unavailable"), what="u's unavailable presence")
            assert p.get("to") == k.bare
    finally:
        for c in [u, stranger, *contacts]:
            if c is not None:
                c.close()


def test_fanout_to_many_contacts(server):
    run_fanout(server)


@pytest.mark.parametrize("shards, threads", [(1, 1), (4, 3)])
def test_fanout_other_topologies(make_server, shards, threads):
    """The same with every user in one shard and one c2s thread, and spread over four
    shards and three c2s threads (more frames between shards and more destination
    threads per broadcast)."""
    run_fanout(make_server(router={"shards": shards}, c2s={"threads": threads}))
