"""
What the server answers itself: service discovery (XEP-0030) of the server and of an
account, ping (XEP-0199), software version (XEP-0092, off unless
router.software_version), unknown namespaces, the form of every stanza error
(RFC 6120 §8.3), and message carbons (XEP-0280).
"""
import xml.etree.ElementTree as ET

import pytest

from im import (
    NS_CARBONS,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_FORWARD,
    NS_PING,
    NS_VERSION,
    befriend,
    connect,
    is_message,
    stanza_error,
)
from rawxmpp import NS_CLIENT, q

FEATURES = {
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    "jabber:iq:roster",
    "urn:xmpp:blocking",
    NS_CARBONS,
    "msgoffline",
    "jabber:iq:private",  # XEP-0049 (router/private.c)
    "vcard-temp",  # XEP-0054 (router/vcard.c)
}


def disco_info(c, to):
    return c.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=to)


def info_of(res):
    assert res.get("type") == "result", ET.tostring(res)
    qq = res.find(q(NS_DISCO_INFO, "query"))
    assert qq is not None, ET.tostring(res)
    ids = [(i.get("category"), i.get("type")) for i in qq.findall(q(NS_DISCO_INFO, "identity"))]
    feats = [f.get("var") for f in qq.findall(q(NS_DISCO_INFO, "feature"))]
    assert len(feats) == len(set(feats)), f"a feature twice: {feats}"
    return ids, set(feats)


# ---- disco, ping, version -----------------------------------------------------------------


def test_disco_info_of_the_server(server):
    with connect(server, "alice") as a:
        res = disco_info(a, "localhost")
        assert (res.get("from"), res.get("to")) == ("localhost", a.jid)
        ids, feats = info_of(res)
        assert ids == [("server", "im")]
        assert feats == FEATURES, f"extra: {feats - FEATURES}, missing: {FEATURES - feats}"
        # A node the server does not have.
        res = a.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='nope'/>", to="localhost")
        assert stanza_error(res)[:2] == ("cancel", "item-not-found")


def test_disco_info_lists_version_when_enabled(make_server):
    s = make_server(router={"software_version": True})
    with connect(s, "alice") as a:
        _, feats = info_of(disco_info(a, "localhost"))
        assert feats == FEATURES | {NS_VERSION}


def test_disco_items_of_the_server(server):
    """The chat service (muc.enabled, at conference.<domain>) is the one item."""
    with connect(server, "alice") as a:
        res = a.iq("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to="localhost")
        assert res.get("type") == "result", ET.tostring(res)
        qq = res.find(q(NS_DISCO_ITEMS, "query"))
        assert qq is not None and [i.get("jid") for i in qq] == ["conference.localhost"], ET.tostring(res)


def test_disco_items_without_muc(make_server):
    s = make_server(muc={"enabled": False})
    with connect(s, "alice") as a:
        res = a.iq("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", to="localhost")
        qq = res.find(q(NS_DISCO_ITEMS, "query"))
        assert qq is not None and len(qq) == 0, ET.tostring(res)
        # Not ours then: the domain is looked up as a remote one (and is not found).
        r = a.iq("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>", to="conference.localhost")
        assert r.get("type") == "error", ET.tostring(r)


def test_disco_info_of_an_account(server):
    """XEP-0030 / RFC 6121: the server answers for an account's bare JID. The user
    itself and a contact subscribed to its presence get the account's identity; anyone
    else gets service-unavailable (the account's existence is not theirs to learn)."""
    un, cn, sn = server.new_users(3, "disco")
    with connect(server, un, "u") as u, connect(server, cn, "c") as c, connect(server, sn, "s") as s:
        ids, feats = info_of(disco_info(u, u.bare))
        assert ids == [("account", "registered"), ("pubsub", "pep")]  # XEP-0163 §1
        assert NS_DISCO_INFO in feats
        res = disco_info(s, u.bare)
        assert stanza_error(res)[:2] == ("cancel", "service-unavailable")
        assert res.get("from") == u.bare
        befriend(u, c)
        res = disco_info(c, u.bare)
        assert res.get("from") == u.bare
        assert info_of(res)[0] == [("account", "registered"), ("pubsub", "pep")]
        res = disco_info(s, u.bare)
        assert stanza_error(res)[:2] == ("cancel", "service-unavailable")


def test_ping(server):
    """XEP-0199: the server answers a ping to itself, without `to`, and to the user's
    own bare JID."""
    with connect(server, "alice") as a:
        for to in ("localhost", None, a.bare):
            res = a.iq("get", f"<ping xmlns='{NS_PING}'/>", to=to)
            assert res.get("type") == "result" and len(res) == 0, ET.tostring(res)
            if to:
                assert res.get("from") == to


def test_software_version_off_by_default(server):
    with connect(server, "alice") as a:
        res = a.iq("get", f"<query xmlns='{NS_VERSION}'/>", to="localhost")
        assert stanza_error(res)[:2] == ("cancel", "service-unavailable")


def test_software_version_when_enabled(make_server):
    s = make_server(router={"software_version": True})
    with connect(s, "alice") as a:
        res = a.iq("get", f"<query xmlns='{NS_VERSION}'/>", to="localhost")
        assert res.get("type") == "result", ET.tostring(res)
        qq = res.find(q(NS_VERSION, "query"))
        assert qq.findtext(q(NS_VERSION, "name")) == "starling"
        assert qq.findtext(q(NS_VERSION, "version"))


@pytest.mark.parametrize("itype", ["get", "set"])
@pytest.mark.parametrize("to", ["server", "own-bare"])
def test_unknown_namespace_service_unavailable(server, itype, to):
    with connect(server, "alice") as a:
        target = "localhost" if to == "server" else a.bare
        iq_id = a.send_iq(itype, "<query xmlns='urn:example:nothing-here'/>", to=target)
        res = a.wait_for(lambda e: e.get("id") == iq_id, what="the answer")
        assert stanza_error(res)[:2] == ("cancel", "service-unavailable")
        assert (res.get("from"), res.get("to")) == (target, a.jid)


# ---- the form of stanza errors ------------------------------------------------------------


ERROR_CASES = {
    # name: (stanza to send (with id='e1'), expected type, expected condition)
    "iq-unknown-ns": ("<iq type='get' id='e1' to='localhost'><q xmlns='urn:x'/></iq>", "cancel", "service-unavailable"),
    "iq-two-payloads": ("<iq type='get' id='e1' to='localhost'><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>",
                        "modify", "bad-request"),
    "message-unknown-user": ("<message type='chat' id='e1' to='nobody-at-all@localhost'><body>x</body></message>",
                             "cancel", "service-unavailable"),
    "message-groupchat-bare": ("<message type='groupchat' id='e1' to='alice@localhost'><body>x</body></message>",
                               "cancel", "service-unavailable"),
    "message-remote": ("<message type='chat' id='e1' to='someone@far.example'><body>x</body></message>",
                       "cancel", "remote-server-not-found"),
    "iq-full-jid-gone": ("<iq type='get' id='e1' to='alice@localhost/not-here'><q xmlns='urn:x'/></iq>",
                         "cancel", "service-unavailable"),
    "roster-two-items": ("<iq type='set' id='e1'><query xmlns='jabber:iq:roster'><item jid='a@localhost'/>"
                         "<item jid='b@localhost'/></query></iq>", "modify", "bad-request"),
    "roster-remove-missing": ("<iq type='set' id='e1'><query xmlns='jabber:iq:roster'><item jid='zz@localhost' "
                              "subscription='remove'/></query></iq>", "cancel", "item-not-found"),
    "roster-of-another": ("<iq type='get' id='e1' to='bob@localhost'><query xmlns='jabber:iq:roster'/></iq>",
                          "cancel", "forbidden"),
    "block-malformed": ("<iq type='set' id='e1'><block xmlns='urn:xmpp:blocking'><item jid='@@'/></block></iq>",
                        "modify", "jid-malformed"),
    "carbons-get": ("<iq type='get' id='e1'><enable xmlns='urn:xmpp:carbons:2'/></iq>", "modify", "bad-request"),
    "malformed-to": ("<message type='chat' id='e1' to='a@b@localhost'><body>x</body></message>",
                     "modify", "jid-malformed"),
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_stanza_error_form(server, name):
    """RFC 6120 §8.3: an error stanza has the request's kind and id, type='error', `from`
    the entity that was addressed (the server when nothing was) and `to` the sender,
    and one <error/> with a type and exactly one defined condition in
    urn:ietf:params:xml:ns:xmpp-stanzas."""
    stanza, etype, cond = ERROR_CASES[name]
    with connect(server, "alice") as a:
        a.send(stanza)
        err = a.wait_for(lambda e: e.get("id") == "e1", what="the error")
        sent = ET.fromstring(stanza.replace(">", " xmlns='jabber:client'>", 1))
        assert err.tag == sent.tag, "an error has the kind of the stanza it answers"
        assert stanza_error(err)[:2] == (etype, cond)
        assert err.get("to") == a.jid
        to = sent.get("to")
        if name != "malformed-to":  # a `to` that is no JID cannot be the error's `from`
            assert err.get("from") in ((to,) if to else ("localhost", a.bare, None))


# ---- carbons ------------------------------------------------------------------------------


def enable_carbons(c, on=True):
    res = c.iq("set", f"<{'enable' if on else 'disable'} xmlns='{NS_CARBONS}'/>")
    assert res.get("type") == "result", ET.tostring(res)


def carbon(c, kind, body):
    """The next carbon of `kind` (sent/received) whose forwarded message has this body:
    (outer message, forwarded message)."""

    def pred(e):
        if e.tag != q(NS_CLIENT, "message"):
            return False
        w = e.find(q(NS_CARBONS, kind))
        if w is None:
            return False
        m = w.find(f"{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")
        return m is not None and m.findtext(q(NS_CLIENT, "body")) == body

    outer = c.wait_for(pred, what=f"a {kind} carbon of {body!r}")
    return outer, outer.find(f"{q(NS_CARBONS, kind)}/{q(NS_FORWARD, 'forwarded')}/{q(NS_CLIENT, 'message')}")


def no_carbons(c):
    return c.take(lambda e: e.tag == q(NS_CLIENT, "message") and
                  (e.find(q(NS_CARBONS, "sent")) is not None or e.find(q(NS_CARBONS, "received")) is not None))


def test_carbons(server):
    """XEP-0280: with carbons on at A and B, a message A sends shows at B as <sent/>; a
    message to A's full JID shows at B as <received/>; <private/> ones are not copied;
    a resource that did not enable (or disabled) gets nothing."""
    un, cn = server.new_users(2, "carb")
    with connect(server, un, "A", available=True) as A, connect(server, un, "B", available=True) as B, \
            connect(server, un, "plain", available=True) as plain, connect(server, cn, "c", available=True) as c:
        enable_carbons(A)
        enable_carbons(B)
        # Sent (§6: to the user's other resources, from the user's bare JID).
        A.send(f"<message to='{c.jid}' type='chat' id='s1'><body>out</body></message>")
        assert c.wait_message("out").get("from") == A.jid
        outer, fwd = carbon(B, "sent", "out")
        assert (outer.get("from"), outer.get("to"), outer.get("type")) == (B.bare, B.jid, "chat")
        assert (fwd.get("from"), fwd.get("to"), fwd.get("id")) == (A.jid, c.jid, "s1")
        # Received.
        c.send(f"<message to='{A.jid}' type='chat' id='r1'><body>in</body></message>")
        assert A.wait_message("in").get("from") == c.jid
        outer, fwd = carbon(B, "received", "in")
        assert (outer.get("from"), outer.get("to")) == (B.bare, B.jid)
        assert (fwd.get("from"), fwd.get("to"), fwd.get("id")) == (c.jid, A.jid, "r1")
        # The sender gets no copy of its own message; the one that never enabled none.
        for r in (A, plain):
            r.settle()
            assert no_carbons(r) == [], f"{r.jid} got a carbon"
        # <private/> (§7): no copies either way.
        A.send(f"<message to='{c.jid}' type='chat'><body>psst</body><private xmlns='{NS_CARBONS}'/></message>")
        c.wait_message("psst")
        c.send(f"<message to='{A.jid}' type='chat'><body>psst back</body><private xmlns='{NS_CARBONS}'/></message>")
        A.wait_message("psst back")
        A.message(c.jid, "marker")  # same shards and connections as a sent carbon
        c.wait_message("marker")
        carbon(B, "sent", "marker")
        c.message(A.jid, "marker back")
        A.wait_message("marker back")
        carbon(B, "received", "marker back")
        assert no_carbons(B) == [], "a private message was copied"
        # Disable (§5): B gets no more copies.
        enable_carbons(B, on=False)
        A.message(c.jid, "after disable")
        c.wait_message("after disable")
        c.message(A.jid, "in after disable")
        A.wait_message("in after disable")
        B.settle()
        assert no_carbons(B) == []
        assert [m for m in B.take(is_message()) if m.findtext(q(NS_CLIENT, "body"))] == []


def test_carbons_for_bare_jid_message(server):
    """A message to the bare JID goes to the highest-priority resource; a lower one with
    carbons enabled gets it as <received/>."""
    un, cn = server.new_users(2, "carb")
    with connect(server, un, "high", available=True, priority=5) as hi, \
            connect(server, un, "low", available=True, priority=1) as lo, connect(server, cn, "c", available=True) as c:
        enable_carbons(lo)
        c.message(hi.bare, "to the bare jid")
        assert hi.wait_message("to the bare jid").get("from") == c.jid
        _, fwd = carbon(lo, "received", "to the bare jid")
        assert fwd.get("to") == hi.bare
        lo.settle()
        assert lo.take(is_message("to the bare jid")) == [], "the low one got the message itself too"


def test_carbons_only_for_chat(server):
    """XEP-0280 §6 as implemented: normal, headline and groupchat messages are not copied
    (see the report for type='normal' with a body)."""
    un, cn = server.new_users(2, "carb")
    with connect(server, un, "A", available=True) as A, connect(server, un, "B", available=True) as B, \
            connect(server, cn, "c", available=True) as c:
        enable_carbons(B)
        A.send(f"<message to='{c.jid}' type='headline'><body>news</body></message>")
        c.wait_message("news")
        A.message(c.jid, "marker")
        carbon(B, "sent", "marker")
        assert no_carbons(B) == []


def test_carbons_enable_with_slixmpp(server):
    """slixmpp's XEP-0280 plugin enables carbons and sees a sent copy."""
    from slixclient import Clients, run

    un, cn = server.new_users(2, "carb")

    async def scenario():
        async with Clients(server) as cs:
            a = await cs.login(un, "a", available=True)
            b = cs.new(un, "b")
            b.register_plugin("xep_0280")
            await b.start()
            await b.available()
            await b.plugin["xep_0280"].enable()
            c = await cs.login(cn, "c", available=True)
            a.send_message(mto=c.boundjid.full, mbody="copied", mtype="chat")
            await c.next_message()
            m = await b.next_message()
            fwd = m["carbon_sent"]
            assert (fwd["body"], fwd["to"].full, fwd["from"].full) == ("copied", c.boundjid.full, a.boundjid.full)

    run(scenario())


def test_carbons_for_normal_message_with_body(server):
    un, cn = server.new_users(2, "carb")
    with connect(server, un, "A", available=True) as A, connect(server, un, "B", available=True) as B, \
            connect(server, cn, "c", available=True) as c:
        enable_carbons(B)
        A.send(f"<message to='{c.jid}' type='normal'><body>a normal one</body></message>")
        c.wait_message("a normal one")
        B.timeout = 1
        carbon(B, "sent", "a normal one")
