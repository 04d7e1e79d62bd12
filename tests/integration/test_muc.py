"""
Multi-user chat (XEP-0045) at conference.localhost, and direct invitations (XEP-0249),
against one node with two c2s threads and two router shards (conftest's defaults).

Raw clients (im.Peer) check exact status codes and errors: joining with self-presence
(110, 201 on creation), the locked new room and the instant room (§10.1.2), nick
conflicts (409), history on join and its limits, the subject, private messages, nick
changes (303), kicks (307) and bans (301) with the error the banned one gets next,
members-only (407), passwords (401), max occupants (503), the owner's form, mediated
invitations and declines, destroying a room, the session end that leaves every room,
and disco of the service and rooms. slixmpp's xep_0045 and xep_0249 plugins join,
talk, change the subject, kick, ban, configure and invite as a client does. The fan-out
counters (/metrics) show a groupchat message crossing to each c2s thread once.
"""
import asyncio
import http.client
import time
import xml.etree.ElementTree as ET

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import _stop_cleanly, free_port, start_server
from im import NS_DISCO_INFO, NS_DISCO_ITEMS, connect, is_message, new_id, stanza_error
from rawxmpp import NS_CLIENT, q
from slixclient import Clients, run

NS_MUC = "http://jabber.org/protocol/muc"
NS_USER = NS_MUC + "#user"
NS_ADMIN = NS_MUC + "#admin"
NS_OWNER = NS_MUC + "#owner"
NS_XDATA = "jabber:x:data"
NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
MUC = "conference.localhost"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    port = free_port()
    s = start_server(tmp_path_factory.mktemp("muc"), admin={"listen": f"127.0.0.1:{port}"},
                     muc={"history": 5, "max_occupants": 50})
    s.admin_port = port
    yield s
    _stop_cleanly(s)


def metrics(server):
    c = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def room_name(prefix="r"):
    return f"{new_id(prefix)}@{MUC}"


# ---- predicates and helpers ----------------------------------------------------------


def muc_x(el):
    return el.find(q(NS_USER, "x"))


def codes(el):
    x = muc_x(el)
    return set() if x is None else {int(c.get("code")) for c in x.findall(q(NS_USER, "status"))}


def item(el):
    x = muc_x(el)
    return None if x is None else x.find(q(NS_USER, "item"))


def is_pres(frm, ptype=None):
    def pred(e):
        return (e.tag == q(NS_CLIENT, "presence") and e.get("from") == frm
                and (ptype is None or (e.get("type") or "available") == ptype))
    return pred


def join(c, room, nick, password=None, history="", expect=None):
    """Sends the join; returns the self-presence (or, with expect='error', the error)."""
    pw = f"<password>{password}</password>" if password else ""
    c.take(is_pres(f"{room}/{nick}"))  # an earlier stay's: not this answer
    c.send(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{pw}{history}</x></presence>")
    p = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == f"{room}/{nick}"
                   and (e.get("type") == "error" or 110 in codes(e)), what=f"joining {room} as {nick}")
    if expect == "error":
        assert p.get("type") == "error", ET.tostring(p)
    else:
        assert p.get("type") is None, ET.tostring(p)
    return p


def instant(c, room):
    """The owner's empty submission: the room opens (§10.1.2)."""
    c.iq_ok("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'/></query>", to=room)


def configure(c, room, **fields):
    vals = "".join(f"<field var='muc#roomconfig_{k}'><value>{v}</value></field>" for k, v in fields.items())
    return c.iq("set", f"<query xmlns='{NS_OWNER}'><x xmlns='{NS_XDATA}' type='submit'>{vals}</x></query>", to=room)


def new_room(owner, nick="owner", **fields):
    room = room_name()
    p = join(owner, room, nick)
    assert codes(p) >= {110, 201}, ET.tostring(p)
    if fields:
        r = configure(owner, room, **fields)
        assert r.get("type") == "result", ET.tostring(r)
    else:
        instant(owner, room)
    return room


def groupchat(c, room, body):
    c.send(f"<message to='{room}' type='groupchat'><body>{body}</body></message>")


def is_gc(body, frm=None):
    def pred(e):
        return (e.tag == q(NS_CLIENT, "message") and e.get("type") == "groupchat"
                and e.findtext(q(NS_CLIENT, "body")) == body and (frm is None or e.get("from") == frm))
    return pred


def error_of(c, frm, kind="presence"):
    e = c.wait_for(lambda e: e.tag == q(NS_CLIENT, kind) and e.get("from") == frm and e.get("type") == "error",
                   what=f"an error from {frm}")
    return stanza_error(e)[:2]


@pytest.fixture
def users(node):
    made = []

    def make(n, available=True):
        names = node.new_users(n, "m")
        for name in names:
            made.append(connect(node, name, "r", available=available))
        return made[-n:]

    yield make
    for c in made:
        c.close()


# ---- the service ---------------------------------------------------------------------


def test_service_is_listed_and_answers_disco(node, users):
    (a,) = users(1)
    items = a.iq_ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to=node.domain)
    assert MUC in [i.get("jid") for i in items.iter(q(NS_DISCO_ITEMS, "item"))], ET.tostring(items)
    info = a.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=MUC)
    ident = info.find(f"{q(NS_DISCO_INFO, 'query')}/{q(NS_DISCO_INFO, 'identity')}")
    assert (ident.get("category"), ident.get("type")) == ("conference", "text")
    feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert NS_MUC in feats, feats
    # A room that does not exist.
    r = a.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room_name())
    assert stanza_error(r)[1] == "item-not-found"


# ---- joining ---------------------------------------------------------------------------


def test_create_join_talk_leave(node, users):
    a, b, c = users(3)
    room = room_name()
    p = join(a, room, "alice")
    assert codes(p) >= {110, 201}
    it = item(p)
    assert (it.get("affiliation"), it.get("role")) == ("owner", "moderator")
    # Locked until configured: nobody else may enter (§10.1.1).
    assert stanza_error(join(b, room, "bob", expect="error"))[:2] == ("cancel", "item-not-found")
    instant(a, room)
    p = join(b, room, "bob")
    assert codes(p) == {110}, ET.tostring(p)
    assert (item(p).get("affiliation"), item(p).get("role")) == ("none", "participant")
    # The owner (a moderator) sees bob's real JID; bob, in a semi-anonymous room, saw
    # alice's presence without it.
    pb = a.wait_for(is_pres(f"{room}/bob"), what="bob's presence at alice")
    assert item(pb).get("jid") == b.jid
    b_saw = b.take(is_pres(f"{room}/alice"))
    assert len(b_saw) == 1 and item(b_saw[0]).get("jid") is None, [ET.tostring(e) for e in b_saw]
    # The subject comes last of the join (empty: none set).
    subj = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.find(q(NS_CLIENT, "subject")) is not None,
                      what="the subject")
    assert subj.get("from") == room and subj.get("to") == b.jid
    # Nick conflict (§7.2.9).
    assert stanza_error(join(c, room, "bob", expect="error"))[:2] == ("cancel", "conflict")
    # A message reaches every occupant with its own `to` and the sender's occupant JID.
    groupchat(b, room, "hello room")
    for peer in (a, b):
        m = peer.wait_for(is_gc("hello room"), what="the groupchat message")
        assert m.get("from") == f"{room}/bob" and m.get("to") == peer.jid, ET.tostring(m)
    # c is not an occupant: its message is refused (§7.4).
    groupchat(c, room, "intruder")
    assert error_of(c, room, "message") == ("modify", "not-acceptable")
    # Leaving: unavailable to everyone, 110 to the one leaving.
    b.send(f"<presence to='{room}/bob' type='unavailable'/>")
    p = b.wait_for(is_pres(f"{room}/bob", "unavailable"), what="bob's own unavailable")
    assert 110 in codes(p)
    a.wait_for(is_pres(f"{room}/bob", "unavailable"), what="bob leaving, at alice")


def test_join_errors_are_the_xep_ones(node, users):
    a, b = users(2)
    room = room_name()
    join(a, room, "alice")
    instant(a, room)
    # 409: the nick is taken.
    b.send(f"<presence to='{room}/alice'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(b, f"{room}/alice") == ("cancel", "conflict")
    # No nick at all (§7.2.1).
    b.send(f"<presence to='{room}'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(b, room) == ("modify", "jid-malformed")
    # A password (§7.2.6): 401 without it, in with it.
    assert configure(a, room, passwordprotectedroom=1, roomsecret="s3cret").get("type") == "result"
    b.send(f"<presence to='{room}/bob'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(b, f"{room}/bob") == ("auth", "not-authorized")
    b.send(f"<presence to='{room}/bob'><x xmlns='{NS_MUC}'><password>wrong</password></x></presence>")
    assert error_of(b, f"{room}/bob") == ("auth", "not-authorized")
    join(b, room, "bob", password="s3cret")
    b.send(f"<presence to='{room}/bob' type='unavailable'/>")
    b.wait_for(is_pres(f"{room}/bob", "unavailable"))
    # Members only (§7.2.7): 407 until made a member.
    assert configure(a, room, passwordprotectedroom=0, membersonly=1).get("type") == "result"
    b.send(f"<presence to='{room}/bob'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(b, f"{room}/bob") == ("auth", "registration-required")
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{b.bare}'/></query>", to=room)
    p = join(b, room, "bob")
    assert item(p).get("affiliation") == "member"
    # The member list, for admins and owners only.
    lst = a.iq_ok("get", f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    assert [i.get("jid") for i in lst.iter(q(NS_ADMIN, "item"))] == [b.bare]
    r = b.iq("get", f"<query xmlns='{NS_ADMIN}'><item affiliation='member'/></query>", to=room)
    assert stanza_error(r)[:2] == ("auth", "forbidden")


def test_max_occupants(node, users):
    a, b, c = users(3)
    room = new_room(a, maxusers=2)
    join(b, room, "bob")
    c.send(f"<presence to='{room}/carol'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(c, f"{room}/carol") == ("wait", "service-unavailable")


def test_history_and_subject_on_join(node, users):
    a, b = users(2)
    room = new_room(a)
    for i in range(7):
        groupchat(a, room, f"line {i}")
    for i in range(7):
        a.wait_for(is_gc(f"line {i}"))
    a.send(f"<message to='{room}' type='groupchat'><subject>Today's topic</subject></message>")
    s = a.wait_for(lambda e: e.findtext(q(NS_CLIENT, "subject")) == "Today's topic", what="the subject echo")
    assert s.get("from") == f"{room}/owner"
    # muc.history = 5: the last five, with <delay/>, then the subject.
    join(b, room, "bob")
    got = []
    while True:
        e = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"), what="history or subject")
        if e.find(q(NS_CLIENT, "subject")) is not None:
            assert e.findtext(q(NS_CLIENT, "subject")) == "Today's topic"
            assert e.get("from") == f"{room}/owner"
            break
        assert e.find("{urn:xmpp:delay}delay").get("from") == room
        got.append(e.findtext(q(NS_CLIENT, "body")))
    assert got == [f"line {i}" for i in range(2, 7)], got
    b.send(f"<presence to='{room}/bob' type='unavailable'/>")
    b.wait_for(is_pres(f"{room}/bob", "unavailable"))
    # maxstanzas='2'.
    join(b, room, "bob", history="<history maxstanzas='2'/>")
    got = []
    while True:
        e = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        if e.find(q(NS_CLIENT, "subject")) is not None:
            break
        got.append(e.findtext(q(NS_CLIENT, "body")))
    assert got == ["line 5", "line 6"], got
    # A participant may not change the subject by default (§8.1).
    b.send(f"<message to='{room}' type='groupchat'><subject>mine now</subject></message>")
    assert error_of(b, room, "message") == ("auth", "forbidden")


def test_private_messages_and_nick_change(node, users):
    a, b, c = users(3)
    room = new_room(a)
    join(b, room, "bob")
    b.send(f"<message to='{room}/owner' type='chat' id='pm1'><body>psst</body></message>")
    m = a.wait_for(is_message("psst"), what="the private message")
    assert m.get("from") == f"{room}/bob" and m.get("to") == a.jid and m.get("id") == "pm1"
    assert m.find(q(NS_USER, "x")) is not None
    # To a nick that is not there; from someone who is not an occupant.
    b.send(f"<message to='{room}/nobody' type='chat'><body>x</body></message>")
    assert error_of(b, f"{room}/nobody", "message") == ("cancel", "item-not-found")
    c.send(f"<message to='{room}/owner' type='chat'><body>x</body></message>")
    assert error_of(c, f"{room}/owner", "message") == ("modify", "not-acceptable")
    # Nick change (§7.6): unavailable with 303 and the new nick, then the new presence.
    b.send(f"<presence to='{room}/robert'/>")
    p = a.wait_for(is_pres(f"{room}/bob", "unavailable"), what="303")
    assert 303 in codes(p) and item(p).get("nick") == "robert"
    a.wait_for(is_pres(f"{room}/robert", "available"), what="the new nick")
    p = b.wait_for(is_pres(f"{room}/robert", "available"))
    assert 110 in codes(p)
    # Self-ping (XEP-0410) of the new occupant JID, and of a room one is not in.
    assert b.ping(f"{room}/robert").get("type") == "result"
    r = c.ping(f"{room}/robert")
    assert stanza_error(r)[1] == "not-acceptable"


def test_kick_and_ban(node, users):
    a, b, c = users(3)
    room = new_room(a)
    join(b, room, "bob")
    join(c, room, "carol")
    # A participant may not kick (§8.2).
    r = b.iq("set", f"<query xmlns='{NS_ADMIN}'><item nick='carol' role='none'/></query>", to=room)
    assert stanza_error(r)[:2] == ("auth", "forbidden")
    # Nobody kicks the owner.
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item nick='bob' role='moderator'/></query>", to=room)
    r = b.iq("set", f"<query xmlns='{NS_ADMIN}'><item nick='owner' role='none'/></query>", to=room)
    assert stanza_error(r)[1] == "not-allowed"
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item nick='carol' role='none'><reason>spam</reason></item></query>",
            to=room)
    p = c.wait_for(is_pres(f"{room}/carol", "unavailable"), what="carol's kick")
    assert codes(p) >= {307, 110}, ET.tostring(p)
    assert item(p).find(q(NS_USER, "reason")).text == "spam"
    b.wait_for(is_pres(f"{room}/carol", "unavailable"), what="carol's kick at bob")
    # Kicked is not banned: carol comes back; then the ban (§9.1): 301, and 403 next.
    join(c, room, "carol")
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='outcast' jid='{c.bare}'/></query>", to=room)
    p = c.wait_for(is_pres(f"{room}/carol", "unavailable"), what="carol's ban")
    assert 301 in codes(p)
    c.send(f"<presence to='{room}/carol2'><x xmlns='{NS_MUC}'/></presence>")
    assert error_of(c, f"{room}/carol2") == ("auth", "forbidden")
    # The last owner stays one (§10.7).
    r = a.iq("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{a.bare}'/></query>", to=room)
    assert stanza_error(r)[1] == "conflict"


def test_config_form_and_room_features(node, users):
    a, b = users(2)
    room = room_name()
    join(a, room, "owner")
    form = a.iq_ok("get", f"<query xmlns='{NS_OWNER}'/>", to=room)
    x = form.find(f"{q(NS_OWNER, 'query')}/{q(NS_XDATA, 'x')}")
    vars_ = {f.get("var") for f in x.findall(q(NS_XDATA, "field"))}
    assert {"FORM_TYPE", "muc#roomconfig_persistentroom", "muc#roomconfig_membersonly",
            "muc#roomconfig_moderatedroom", "muc#roomconfig_roomsecret", "muc#roomconfig_maxusers",
            "muc#roomconfig_whois", "muc#roomconfig_roomname"} <= vars_, vars_
    r = configure(a, room, roomname="Tea", persistentroom=1, moderatedroom=1, whois="anyone", publicroom=0)
    assert r.get("type") == "result", ET.tostring(r)
    info = b.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {NS_MUC, "muc_persistent", "muc_moderated", "muc_nonanonymous", "muc_hidden", "muc_open",
            "muc_unsecured"} <= feats, feats
    assert info.find(f"{q(NS_DISCO_INFO, 'query')}/{q(NS_DISCO_INFO, 'identity')}").get("name") == "Tea"
    # Non-owners get no form.
    r = b.iq("get", f"<query xmlns='{NS_OWNER}'/>", to=room)
    assert stanza_error(r)[:2] == ("auth", "forbidden")
    # Moderated: a newcomer is a visitor and may not speak; non-anonymous: 100 on join.
    p = join(b, room, "bob")
    assert item(p).get("role") == "visitor" and 100 in codes(p), ET.tostring(p)
    groupchat(b, room, "may I?")
    assert error_of(b, room, "message") == ("auth", "forbidden")
    # Voice (§8.3).
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item nick='bob' role='participant'/></query>", to=room)
    groupchat(b, room, "thanks")
    a.wait_for(is_gc("thanks"))
    # Persistent: the room outlives its last occupant.
    for c, n in ((b, "bob"), (a, "owner")):
        c.send(f"<presence to='{room}/{n}' type='unavailable'/>")
        c.wait_for(is_pres(f"{room}/{n}", "unavailable"))
    info = b.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    # And destroyed by its owner (§10.9): occupants hear it.
    join(b, room, "bob")
    a.iq_ok("set", f"<query xmlns='{NS_OWNER}'><destroy jid='other@{MUC}'><reason>moving</reason></destroy></query>",
            to=room)
    p = b.wait_for(is_pres(f"{room}/bob", "unavailable"), what="the destruction")
    d = muc_x(p).find(q(NS_USER, "destroy"))
    assert d is not None and d.get("jid") == f"other@{MUC}", ET.tostring(p)
    r = b.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    assert stanza_error(r)[1] == "item-not-found"


def test_mediated_invitation_and_decline(node, users):
    a, b = users(2)
    room = new_room(a, membersonly=1, roomsecret="pw", passwordprotectedroom=1)
    a.send(f"<message to='{room}'><x xmlns='{NS_USER}'><invite to='{b.bare}'><reason>join us</reason></invite></x></message>")
    m = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("from") == room
                   and e.find(q(NS_USER, "x")) is not None, what="the invitation")
    inv = m.find(f"{q(NS_USER, 'x')}/{q(NS_USER, 'invite')}")
    assert inv.get("from") == a.bare and inv.findtext(q(NS_USER, "reason")) == "join us"
    assert m.find(q(NS_USER, "x")).findtext(q(NS_USER, "password")) == "pw"
    # The owner's invitation made b a member of the members-only room.
    join(b, room, "bob", password="pw")
    b.send(f"<presence to='{room}/bob' type='unavailable'/>")
    b.wait_for(is_pres(f"{room}/bob", "unavailable"))
    b.send(f"<message to='{room}'><x xmlns='{NS_USER}'><decline to='{a.bare}'><reason>busy</reason></decline></x></message>")
    m = a.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.get("from") == room
                   and e.find(q(NS_USER, "x")) is not None, what="the decline")
    dec = m.find(f"{q(NS_USER, 'x')}/{q(NS_USER, 'decline')}")
    assert dec.get("from") == b.jid and dec.findtext(q(NS_USER, "reason")) == "busy"


def test_session_end_leaves_the_room(node, users):
    a, b = users(2)
    room = new_room(a)
    join(b, room, "bob")
    b.close()
    p = a.wait_for(is_pres(f"{room}/bob", "unavailable"), what="bob gone with his session")
    assert item(p).get("role") == "none"
    # The nick is free again.
    (c,) = users(1)
    join(c, room, "bob")


def test_groupchat_crosses_each_thread_once(node, users):
    """Ten occupants over the two c2s threads: each message to the room is one frame
    per thread (at most 2), listing every occupant there, and reaches all ten."""
    occ = users(10)
    room = new_room(occ[0])
    for i, c in enumerate(occ[1:], 1):
        join(c, room, f"n{i}")
    groupchat(occ[0], room, "warm-up")
    for c in occ:
        c.wait_for(is_gc("warm-up"))
    time.sleep(1.2)  # the shards publish their counters after work, at most once a second
    before = metrics(node)
    for k in range(3):
        groupchat(occ[k], room, f"counted {k}")
    for c in occ:
        for k in range(3):
            c.wait_for(is_gc(f"counted {k}", frm=f"{room}/{'owner' if k == 0 else f'n{k}'}"))
    deadline = time.monotonic() + 5
    while True:
        after = metrics(node)
        d = {k: after[k] - before[k] for k in after if k.startswith("starling_muc")}
        if d["starling_muc_deliveries_total"] >= 30 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert d["starling_muc_messages_total"] == 3, d
    assert d["starling_muc_deliveries_total"] == 30, d
    assert 3 <= d["starling_muc_deliver_frames_total"] <= 6, d


# ---- the room's archive (XEP-0313 for rooms, XEP-0359 stanza-ids) ---------------------


def room_ids(m, room):
    return [s.get("id") for s in m.findall(q(NS_SID, "stanza-id")) if s.get("by") == room]


def room_query(c, room, fields="", page="", expect="result"):
    """A MAM query to the room: ([(result id, forwarded message)], fin), or the error iq."""
    qid = new_id("q")
    form = (f"<x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{NS_MAM}</value></field>{fields}</x>")
    iq_id = c.send_iq("set", f"<query xmlns='{NS_MAM}' queryid='{qid}'>{form}{page}</query>", to=room)
    ans = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id, what="the query's answer")
    assert ans.get("type") == expect, ET.tostring(ans)
    if expect == "error":
        return ans
    got = []
    for m in c.take(lambda e: e.find(q(NS_MAM, "result")) is not None):
        r = m.find(q(NS_MAM, "result"))
        assert r.get("queryid") == qid and m.get("from") == room and m.get("to") == c.jid, ET.tostring(m)
        got.append((r.get("id"), r.find(f"{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")))
    fin = ans.find(q(NS_MAM, "fin"))
    assert fin is not None, ET.tostring(ans)
    return got, fin


def rsm(max, after=None, before=None):
    s = f"<max>{max}</max>"
    if after is not None:
        s += f"<after>{after}</after>"
    if before is not None:
        s += f"<before>{before}</before>"
    return f"<set xmlns='{NS_RSM}'>{s}</set>"


def test_room_archive_stanza_ids_and_paging(node, users):
    """Each groupchat message with a body is archived by the room and reaches every
    occupant (on both c2s threads) with the same stanza-id by the room; a sender's
    stanza-id claiming the room is removed (another's stays); subjects and no-store
    messages are not archived; a query to the room pages through the archive."""
    a, b, c = users(3)
    room = new_room(a, "alice")
    join(b, room, "bob")
    join(c, room, "carol")
    info = b.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=room)
    feats = {f.get("var") for f in info.iter(q(NS_DISCO_INFO, "feature"))}
    assert {NS_MAM, NS_SID} <= feats, feats
    a.send(f"<message to='{room}' type='groupchat'><subject>topic</subject></message>")
    for peer in (a, b, c):
        m = peer.wait_for(lambda e: e.findtext(q(NS_CLIENT, "subject")) == "topic", what="the subject")
        assert room_ids(m, room) == [], ET.tostring(m)
    forged = (f"<stanza-id xmlns='{NS_SID}' by='{room.upper()}' id='forged'/>"
              f"<stanza-id xmlns='{NS_SID}' by='elsewhere@example.net' id='kept'/>")
    ids = []
    for i in range(5):
        sender, nick = ((a, "alice"), (b, "bob"), (c, "carol"))[i % 3]
        extra = forged if i == 1 else ""
        sender.send(f"<message to='{room}' type='groupchat' id='g{i}'><body>m{i}</body>{extra}</message>")
        got = [peer.wait_for(is_gc(f"m{i}", frm=f"{room}/{nick}")) for peer in (a, b, c)]
        sids = [room_ids(m, room) for m in got]
        assert all(len(x) == 1 for x in sids) and len({x[0] for x in sids}) == 1, sids
        assert sids[0][0] != "forged"
        if i == 1:
            assert [s.get("id") for s in got[0].findall(q(NS_SID, "stanza-id"))
                    if s.get("by") == "elsewhere@example.net"] == ["kept"], ET.tostring(got[0])
        ids.append(sids[0][0])
    assert ids == sorted(ids, key=int) and len(set(ids)) == 5, ids
    b.send(f"<message to='{room}' type='groupchat'><body>not kept</body>"
           f"<no-store xmlns='urn:xmpp:hints'/></message>")
    m = a.wait_for(is_gc("not kept"))
    assert room_ids(m, room) == [], ET.tostring(m)
    # A private message is not archived, and a forged stanza-id naming the room goes.
    b.send(f"<message to='{room}/carol' type='chat'><body>psst</body>{forged}</message>")
    m = c.wait_for(lambda e: e.findtext(q(NS_CLIENT, "body")) == "psst", what="the private message")
    assert room_ids(m, room) == [], ET.tostring(m)

    # The whole archive, in order, from the room, each message from room/nick.
    got, fin = room_query(b, room)
    assert [i for i, _ in got] == ids and fin.get("complete") == "true"
    assert [m.findtext(q(NS_CLIENT, "body")) for _, m in got] == [f"m{i}" for i in range(5)]
    assert [m.get("from") for _, m in got] == [f"{room}/{n}" for n in ("alice", "bob", "carol", "alice", "bob")]
    assert [m.get("type") for _, m in got] == ["groupchat"] * 5
    # Stored as sent but for the room's stanza-id (the result's id says it).
    assert all(m.get("to") is None and room_ids(m, room) == [] for _, m in got)
    # Paging forwards, two at a time (RSM), then the last page backwards.
    seen, after = [], None
    for _ in range(5):
        got, fin = room_query(c, room, page=rsm(2, after=after))
        seen += [i for i, _ in got]
        s = fin.find(q(NS_RSM, "set"))
        assert int(s.findtext(q(NS_RSM, "count"))) == 5
        if fin.get("complete") == "true":
            break
        after = s.findtext(q(NS_RSM, "last"))
    assert seen == ids, seen
    got, fin = room_query(c, room, page=rsm(2, before=""))
    assert [i for i, _ in got] == ids[3:]
    # By occupant: `with` is the occupant's room JID.
    got, _ = room_query(a, room, fields=f"<field var='with'><value>{room}/bob</value></field>")
    assert [m.findtext(q(NS_CLIENT, "body")) for _, m in got] == ["m1", "m4"]
    # History on join carries the archive's ids (a client can page on from them).
    (d,) = users(1)
    join(d, room, "dave", history="<history maxstanzas='2'/>")
    hist = [d.wait_for(is_gc(f"m{i}")) for i in (4,)]
    assert room_ids(hist[0], room) == [ids[4]], ET.tostring(hist[0])


def test_who_may_read_a_room_archive(node, users):
    """Open room: anyone but outcasts; members-only (and password-protected): occupants
    and members, others forbidden."""
    a, b, outsider = users(3)
    open_room = new_room(a)
    groupchat(a, open_room, "open")
    a.wait_for(is_gc("open"))
    got, _ = room_query(outsider, open_room)
    assert [m.findtext(q(NS_CLIENT, "body")) for _, m in got] == ["open"]
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='outcast' jid='{outsider.bare}'/></query>",
            to=open_room)
    assert stanza_error(room_query(outsider, open_room, expect="error"))[:2] == ("auth", "forbidden")

    closed = new_room(a, membersonly=1)
    groupchat(a, closed, "members only")
    a.wait_for(is_gc("members only"))
    assert stanza_error(room_query(b, closed, expect="error"))[:2] == ("auth", "forbidden")
    a.iq_ok("set", f"<query xmlns='{NS_ADMIN}'><item affiliation='member' jid='{b.bare}'/></query>", to=closed)
    got, _ = room_query(b, closed)  # a member, not in the room
    assert [m.findtext(q(NS_CLIENT, "body")) for _, m in got] == ["members only"]
    got, _ = room_query(a, closed)  # the owner, in it
    assert len(got) == 1

    secret = new_room(a, roomsecret="pw", passwordprotectedroom=1)
    assert stanza_error(room_query(outsider, secret, expect="error"))[:2] == ("auth", "forbidden")
    join(outsider, secret, "o", password="pw")
    room_query(outsider, secret)
    # The query form is there for those who may read.
    form = b.iq_ok("get", f"<query xmlns='{NS_MAM}'/>", to=open_room)
    assert form.find(f"{q(NS_MAM, 'query')}/{q(NS_XDATA, 'x')}") is not None


def test_slixmpp_reads_a_room_archive(node):
    """slixmpp's xep_0313 (with xep_0059's iterator) pages through a room's archive; its
    xep_0359 reads the room's stanza-id off the live message."""
    names = node.new_users(2, "sxm")

    async def scenario():
        async with Clients(node) as cs:
            cl = []
            for n in names:
                c = cs.new(n, "sx")
                for plugin in ("xep_0045", "xep_0059", "xep_0313", "xep_0359"):
                    c.register_plugin(plugin)
                await c.start()
                await c.available()
                cl.append(c)
            a, b = cl
            room = room_name("sxm")
            await a.plugin["xep_0045"].join_muc_wait(room, "alice", maxstanzas=0, timeout=5)
            form = await a.plugin["xep_0045"].get_room_config(room)
            form["type"] = "submit"
            await a.plugin["xep_0045"].set_room_config(room, form)
            await b.plugin["xep_0045"].join_muc_wait(room, "bob", maxstanzas=0, timeout=5)
            live = []
            for i in range(5):
                a.send_message(mto=room, mbody=f"sx{i}", mtype="groupchat")
                m = await b.next_message(lambda m, i=i: m["type"] == "groupchat" and m["body"] == f"sx{i}")
                assert m["stanza_id"]["by"] == room, m
                live.append(m["stanza_id"]["id"])
            seen, pages = [], 0
            async for page in b["xep_0313"].retrieve(jid=room, iterator=True, rsm={"max": 2}):
                pages += 1
                for res in page["mam"]["results"]:
                    assert res["from"].bare == room
                    fwd = res["mam_result"]["forwarded"]["stanza"]
                    seen.append((res["mam_result"]["id"], fwd["body"], fwd["from"].full))
                assert pages < 10
            return live, seen, pages, room

    live, seen, pages, room = run(scenario(), timeout=60)
    assert [s[1] for s in seen] == [f"sx{i}" for i in range(5)], seen
    assert [s[0] for s in seen] == live
    assert {s[2] for s in seen} == {f"{room}/alice"}
    assert pages >= 3


# ---- slixmpp's plugins -----------------------------------------------------------------


def test_slixmpp_xep_0045_and_0249(node):
    names = node.new_users(3, "sx")

    async def scenario():
        async with Clients(node) as cs:
            cl = []
            for n in names:
                c = cs.new(n, "sx")
                c.register_plugin("xep_0045")
                c.register_plugin("xep_0249")
                await c.start()
                await c.available()
                cl.append(c)
            a, b, c = cl
            room = room_name("sx")
            muc_a, muc_b = a.plugin["xep_0045"], b.plugin["xep_0045"]
            await muc_a.join_muc_wait(room, "alice", maxstanzas=0, timeout=5)
            form = await muc_a.get_room_config(room)
            form["type"] = "submit"
            await muc_a.set_room_config(room, form)
            await muc_b.join_muc_wait(room, "bob", maxstanzas=0, timeout=5)
            # bob's join reached bob; alice's copy of his presence is on its own way.
            await a.next_presence(lambda p: p["from"].full == f"{room}/bob")
            assert set(muc_a.get_roster(room)) >= {"alice", "bob"}
            assert muc_a.get_jid_property(room, "bob", "role") == "participant"
            a.send_message(mto=room, mbody="hi all", mtype="groupchat")
            m = await b.next_message(lambda m: m["type"] == "groupchat" and m["body"] == "hi all")
            assert m["from"].full == f"{room}/alice" and m["mucnick"] == "alice"
            muc_a.set_subject(room, "plans")
            m = await b.next_message(lambda m: m["subject"] == "plans")
            # Kick, via the plugin's role change; then ban.
            await muc_a.set_role(room, "bob", "none", reason="bye")
            p = await b.next_presence(lambda p: p["from"].full == f"{room}/bob" and p["type"] == "unavailable")
            assert 307 in p["muc"]["status_codes"]
            await muc_b.join_muc_wait(room, "bob", maxstanzas=0, timeout=5)
            await muc_a.set_affiliation(room, "outcast", jid=b.boundjid.bare)
            p = await b.next_presence(lambda p: p["from"].full == f"{room}/bob" and p["type"] == "unavailable")
            assert 301 in p["muc"]["status_codes"]
            # XEP-0249: a message between users, which the router delivers as is.
            c_invites = asyncio.get_running_loop().create_future()
            c.add_event_handler("groupchat_direct_invite", lambda m: c_invites.done() or c_invites.set_result(m))
            a.plugin["xep_0249"].send_invitation(c.boundjid.full, room, reason="come")
            m = await asyncio.wait_for(c_invites, 5)
            assert m["groupchat_invite"]["jid"] == room and m["from"].bare == a.boundjid.bare
            # Mediated invitation through the plugin.
            c_mediated = asyncio.get_running_loop().create_future()
            c.add_event_handler("groupchat_invite", lambda m: c_mediated.done() or c_mediated.set_result(m))
            muc_a.invite(room, c.boundjid.bare, reason="please")
            m = await asyncio.wait_for(c_mediated, 5)
            assert m["from"].bare == room
            await c.plugin["xep_0045"].join_muc_wait(room, "carol", maxstanzas=0, timeout=5)

    run(scenario(), timeout=60)
