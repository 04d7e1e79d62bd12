"""
Persistent rooms (XEP-0045 muc#roomconfig_persistentroom) in the store
(common/store/store_muc.h, router/muc_store.c): a persistent room's configuration,
subject and affiliations survive the router being killed (SIGKILL, the supervisor
starts a new one; the clients stay on c2s) and the whole node restarting; a temporary
room does not, and a destroyed persistent room stays gone. The service's disco#items
lists the public persistent rooms with their names, not the hidden ones, at most
muc.max_listed of them. With PostgreSQL as the store, the room is a row there.

Before a kill, each test waits until the store has the rows it expects (read from the
node's SQLite file): what is tested is what was stored, not what c2s replays.
"""
import os
import signal
import sqlite3
import time
import xml.etree.ElementTree as ET

import pytest

from im import NS_DISCO_INFO, NS_DISCO_ITEMS, connect, stanza_error
from pg import PostgreSQL
from rawxmpp import NS_CLIENT, q
from test_muc import (MUC, NS_ADMIN, NS_OWNER, NS_XDATA, codes, configure, error_of, item, join,
                      new_room, room_name)


def rows(s, sql):
    db = sqlite3.connect(f"file:{s.dir / 'starling.db'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def wait_rows(s, sql, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        got = rows(s, sql)
        if got == want:
            return
        assert time.monotonic() < deadline, f"{sql}: {got}, not {want}"
        time.sleep(0.05)


def kill_router(s):
    old = s.router_pid()
    os.kill(old, signal.SIGKILL)
    s.wait_child_replaced("starling-router", old)
    s.wait_serving(router=2)


def until_answered(c, kind, payload, to, timeout=10.0):
    """An iq sent again while the new router has not the sender's session yet."""
    deadline = time.monotonic() + timeout
    while True:
        r = c.iq(kind, payload, to=to)
        cond = stanza_error(r)[1] if r.get("type") == "error" else None
        if cond not in ("service-unavailable", "recipient-unavailable", "remote-server-not-found"):
            return r
        assert time.monotonic() < deadline, ET.tostring(r)
        time.sleep(0.1)


def disco_info(c, room):
    return until_answered(c, "get", f"<query xmlns='{NS_DISCO_INFO}'/>", room)


def features(info):
    return {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}


def listed(c):
    items = until_answered(c, "get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", MUC)
    assert items.get("type") == "result", ET.tostring(items)
    return {i.get("jid"): i.get("name") for i in items.iter(q(NS_DISCO_ITEMS, "item"))}


def set_subject(c, room, nick, text):
    c.send(f"<message to='{room}' type='groupchat'><subject>{text}</subject></message>")
    c.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("from") == f"{room}/{nick}"
               and e.findtext(q(NS_CLIENT, "subject")) == text, what="the subject echoed")


def subject_on_join(c, room):
    m = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("from", "").startswith(room)
                   and e.find(q(NS_CLIENT, "subject")) is not None, what="the subject on join")
    return m.get("from"), m.findtext(q(NS_CLIENT, "subject"))


def make_rooms(a, b, c):
    """A persistent members-only public room with a member (b), an outcast (c) and a
    subject; a persistent hidden room; a temporary public one; a persistent one
    destroyed. Returns their JIDs."""
    keep = new_room(a, "alice", persistentroom=1, membersonly=1, publicroom=1,
                    roomname="Kept &amp; named", roomdesc="stays")
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{b.bare}'/>"
                   f"<item affiliation='outcast' jid='{c.bare}'/></query>", to=keep)
    set_subject(a, keep, "alice", "Kept subject")
    hidden = new_room(a, "alice", persistentroom=1, publicroom=0, roomname="Hidden")
    temp = new_room(a, "alice", publicroom=1, roomname="Temporary")
    gone = new_room(a, "alice", persistentroom=1, roomname="Gone")
    a.iq_ok("set", f"<query xmlns='{NS_OWNER}'><destroy/></query>", to=gone)
    return keep, hidden, temp, gone


def check_rooms_back(a, b, c, d, keep, hidden, temp, gone):
    info = disco_info(d, keep)
    assert info.get("type") == "result", ET.tostring(info)
    ident = info.find(f"{q(NS_DISCO_INFO, 'query')}/{q(NS_DISCO_INFO, 'identity')}")
    assert ident.get("name") == "Kept & named"
    assert {"muc_persistent", "muc_membersonly", "muc_public"} <= features(info), features(info)
    # The member gets in, as a member, and hears the subject and who set it.
    p = join(b, keep, "bob")
    assert item(p).get("affiliation") == "member", ET.tostring(p)
    assert subject_on_join(b, keep) == (f"{keep}/alice", "Kept subject")
    # Members only, and the ban, still hold.
    d.send(f"<presence to='{keep}/dave'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    assert error_of(d, f"{keep}/dave") == ("auth", "registration-required")
    c.send(f"<presence to='{keep}/carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
    assert error_of(c, f"{keep}/carol") == ("auth", "forbidden")
    # The owner is still the owner: the form is hers, with the room's values.
    form = a.iq_ok("get", f"<query xmlns='{NS_OWNER}'/>", to=keep)
    vals = {f.get("var"): f.findtext(q(NS_XDATA, "value")) for f in form.iter(q(NS_XDATA, "field"))}
    assert vals["muc#roomconfig_roomname"] == "Kept & named"
    assert vals["muc#roomconfig_roomdesc"] == "stays"
    assert vals["muc#roomconfig_persistentroom"] == "1"
    # The hidden persistent room is back too; the temporary and the destroyed are not.
    assert disco_info(d, hidden).get("type") == "result"
    for room in (temp, gone):
        r = disco_info(d, room)
        assert stanza_error(r)[1] == "item-not-found", ET.tostring(r)
    # Only the public persistent room is listed.
    rooms = listed(d)
    assert rooms.get(keep) == "Kept & named", rooms
    assert hidden not in rooms and temp not in rooms and gone not in rooms, rooms
    # A join of the temporary room's JID makes a new room (201).
    p = join(d, temp, "dave")
    assert 201 in codes(p), ET.tostring(p)


def test_persistent_room_survives_router_kill(make_server):
    s = make_server(expect_stable=False)
    names = s.new_users(4, "mp")
    a, b, c, d = (connect(s, n, "r", available=True) for n in names)
    try:
        keep, hidden, temp, gone = make_rooms(a, b, c)
        # Before the kill: listed while in memory (the temporary room is not: only
        # persistent rooms are listed).
        rooms = listed(d)
        assert rooms.get(keep) == "Kept & named" and temp not in rooms and gone not in rooms, rooms
        wait_rows(s, "SELECT jid FROM muc_rooms ORDER BY jid", sorted([(keep,), (hidden,)]))
        wait_rows(s, f"SELECT subject FROM muc_rooms WHERE jid = '{keep}'", [("Kept subject",)])
        kill_router(s)
        check_rooms_back(a, b, c, d, keep, hidden, temp, gone)
    finally:
        for x in (a, b, c, d):
            x.close()
    assert len(s.restarts()) == 1, s.restarts()


def test_persistent_room_survives_node_restart_and_goes_when_made_temporary(make_server):
    s = make_server()
    names = s.new_users(4, "mq")
    a, b, c, d = (connect(s, n, "r", available=True) for n in names)
    with a, b, c, d:
        keep, hidden, temp, gone = make_rooms(a, b, c)
        wait_rows(s, "SELECT count(*) FROM muc_rooms", [(2,)])
    s.restart()
    a, b, c, d = (connect(s, n, "again", available=True) for n in names)
    with a, b, c, d:
        check_rooms_back(a, b, c, d, keep, hidden, temp, gone)
        # Made temporary, its row goes (and with its last occupant, the room).
        assert configure(a, hidden, persistentroom=0).get("type") == "result"
        wait_rows(s, "SELECT jid FROM muc_rooms", [(keep,)])
        # Destroyed, it goes from the store and the list.
        a.iq_ok("set", f"<query xmlns='{NS_OWNER}'><destroy/></query>", to=keep)
        wait_rows(s, "SELECT count(*) FROM muc_rooms", [(0,)])
        assert keep not in listed(d)


@pytest.fixture(scope="module")
def pg():
    p = PostgreSQL().start()
    yield p
    p.remove()


def test_persistent_room_is_a_row_in_postgresql(pg, make_server):
    s = make_server(storage={"backend": "postgresql", "dsn": pg.create_database("mucnode"),
                             "timeout": 5})
    names = s.new_users(2, "mg")
    with connect(s, names[0], "r", available=True) as a, connect(s, names[1], "r") as b:
        room = new_room(a, "alice", persistentroom=1, roomname="In PostgreSQL")
        a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{b.bare}'/></query>",
                to=room)
        deadline = time.monotonic() + 10
        # The affiliations are lines of text: '4' and the owner, '2' and the member.
        member = f"SELECT strpos(affs, E'2{b.bare}\\n') > 0 FROM muc_rooms WHERE jid = '{room}'"
        while pg.sql("mucnode", member) != "t":
            assert time.monotonic() < deadline, pg.sql("mucnode", "SELECT * FROM muc_rooms")
            time.sleep(0.05)
        assert pg.sql("mucnode", f"SELECT name FROM muc_rooms WHERE jid = '{room}'") == "In PostgreSQL"
        assert listed(b).get(room) == "In PostgreSQL"
    s.restart()
    with connect(s, names[1], "again", available=True) as b:
        p = join(b, room, "bob")
        assert item(p).get("affiliation") == "member", ET.tostring(p)


def test_room_list_is_bounded_by_max_listed(make_server):
    s = make_server(muc={"max_listed": 2})
    (name,) = s.new_users(1, "ml")
    with connect(s, name, "r", available=True) as a:
        made = sorted(new_room(a, "alice", persistentroom=1, roomname=f"R{i}") for i in range(3))
        wait_rows(s, "SELECT count(*) FROM muc_rooms", [(3,)])
        assert list(listed(a)) == made[:2]  # the first two in JID order
