"""
Client State Indication (XEP-0352, urn:xmpp:csi:0). While a client is inactive, presence
updates and standalone chat states wait, only the latest per sender; a message with a
body or an iq goes at once, behind what waited (so order is kept); <active/> sends what
waited. What waits is not sent, so stream management resends it after a resumption.

"Nothing came early" is shown by order, not by sleeping: had the server not held the
first updates, they would arrive before the stanza that flushes the rest.
"""
import asyncio
import xml.etree.ElementTree as ET

import slixclient
from im import NS_PING, befriend, new_id
from rawxmpp import NS_CLIENT, q
from test_sm import NS_SM, SMPeer, bodies, resume

NS_CSI = "urn:xmpp:csi:0"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


def login(server, user):
    c = SMPeer(server)
    c.login(user, server.password(user), new_id("r"))
    c.available()
    return c


def pair(server):
    a_user, b_user = server.new_users(2, prefix="csi")
    a, b = login(server, a_user), login(server, b_user)
    befriend(a, b)
    return a, b


def inactive(c):
    c.send(f"<inactive xmlns='{NS_CSI}'/>")
    c.settle()  # answered after the <inactive/> was read
    c.clear()  # what came before


def status(b, text):
    b.send(f"<presence><status>{text}</status></presence>")


def chat_state(b, to, state):
    b.send(f"<message to='{to}' type='chat'><{state} xmlns='{NS_CHATSTATES}'/></message>")


def until(c, pred):
    """Every stanza c receives, in order, up to the first matching pred."""
    seen = []
    while True:
        e = c.stanza()
        if not e.tag.startswith("{%s}" % NS_CLIENT):
            continue  # stream management's <r/>
        seen.append(e)
        if pred(e):
            return seen


def describe(e):
    name = e.tag.split("}")[1]
    if name == "presence":
        return f"presence {e.get('type') or ''}{e.findtext(q(NS_CLIENT, 'status')) or ''}".strip()
    if name == "message":
        body = e.findtext(q(NS_CLIENT, "body"))
        if body is not None:
            return f"body {body}"
        return "state " + ",".join(c.tag.split("}")[1] for c in e)
    return f"{name} {e.get('type')}"


def test_inactive_holds_latest_and_body_goes_at_once(server):
    a, b = pair(server)
    with a, b:
        inactive(a)
        for s in ("s1", "s2", "s3"):
            status(b, s)
        chat_state(b, a.jid, "composing")
        chat_state(b, a.jid, "paused")
        b.message(a.jid, "now")
        got = [describe(e) for e in until(a, lambda e: e.findtext(q(NS_CLIENT, "body")) == "now")]
        assert got == ["presence s3", "state paused", "body now"], got


def test_iq_goes_at_once_and_active_flushes(server):
    a, b = pair(server)
    with a, b:
        inactive(a)
        status(b, "w1")
        iq_id = new_id("p")
        b.send(f"<iq type='get' id='{iq_id}' to='{a.jid}'><ping xmlns='{NS_PING}'/></iq>")
        got = [describe(e) for e in until(a, lambda e: e.get("id") == iq_id)]
        assert got == ["presence w1", "iq get"], got
        for s in ("t1", "t2"):
            status(b, s)
        assert b.ping(a.bare).get("type") == "result"  # a's shard has handed them on
        a.send(f"<active xmlns='{NS_CSI}'/>")
        a.settle()
        got = [describe(e) for e in a.take()]
        assert got == ["presence t2"], got
        # Active again: nothing waits.
        status(b, "t3")
        assert describe(a.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence"))) == "presence t3"


def test_held_stanzas_survive_a_resumption(server):
    a, b = pair(server)
    with b:
        previd = a.enable().get("id")
        inactive(a)
        for s in ("v1", "v2"):
            status(b, s)
        assert b.ping(a.bare).get("type") == "result"
        h = a.h
        a.cut()
        a2, el = resume(server, a.jid.split("@")[0], previd, h)
        with a2:
            assert el.tag == q(NS_SM, "resumed"), ET.tostring(el)
            a2.h = h
            b.message(a.jid, "mark")
            got = [describe(e) for e in until(a2, lambda e: e.findtext(q(NS_CLIENT, "body")) == "mark")]
            assert got == ["presence v2", "body mark"], got
            # Our count matches the server's: an ack of everything is accepted.
            a2.send(f"<a xmlns='{NS_SM}' h='{a2.h}'/>")
            assert a2.ack_count() == 1  # the settle ping, before the cut


def test_slixmpp_xep_0352(server):
    a_user, b_user = server.new_users(2, prefix="csx")

    async def scenario():
        async with slixclient.Clients(server) as cs:
            # Each subscribes once, and approves the other's: b's presence reaches a once,
            # when b approves (auto_subscribe would ask again, and bring it twice).
            a = cs.new(a_user, "phone", auto_authorize=True, auto_subscribe=False)
            a.register_plugin("xep_0352")
            await a.start()
            assert a.plugin["xep_0352"].enabled
            b = await cs.login(b_user, auto_authorize=True, auto_subscribe=False)
            a.send_presence()
            b.send_presence()
            b.send_presence(pto=a.boundjid.bare, ptype="subscribe")
            a.send_presence(pto=b.boundjid.bare, ptype="subscribe")
            await a.next_presence(lambda p: p["from"] == b.boundjid and p["type"] == "available")
            while not a.presences.empty():
                a.presences.get_nowait()
            a.plugin["xep_0352"].send_inactive()
            await a.ping_server()
            for s in ("x1", "x2", "x3"):
                b.send_presence(pstatus=s)
            b.send_message(mto=a.boundjid.full, mbody="wake", mtype="chat")
            await a.next_message(lambda m: m["body"] == "wake")
            seen = []
            while not a.presences.empty():
                p = a.presences.get_nowait()
                if p["from"] == b.boundjid:
                    seen.append(p["status"])
            assert seen == ["x3"], seen

    slixclient.run(scenario(), timeout=60)
