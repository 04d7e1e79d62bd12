"""
Every stanza a client receives is well-formed, whatever its sender wrote (XML 1.0 and
Namespaces in XML: no attribute twice, quotes matched, every prefix bound), for the
ways a sender's bytes reach other users: carbon copies, stanzas that declare a prefix
the sender's stream header also binds (live, in a presence broadcast, stored offline),
and error replies echoing an id. The receiving side is RawClient, whose parser is
expat (xml.etree): it fails the test on the first byte that is not well-formed XML, so
each test also checks the namespaces and values the stanza arrives with.
"""
import xml.etree.ElementTree as ET

import pytest

from im import NS_CARBONS, NS_FORWARD, befriend, connect, is_message, is_presence, new_id, stanza_error
from rawxmpp import NS_CLIENT, q

# The sender's stream header binds two prefixes besides `stream`.
X, Z = "urn:test:stream-x", "urn:test:stream-z"
HEADER_DECLS = f" xmlns:x='{X}' xmlns:z='{Z}'"
MINE = "urn:test:stanza-x"


def enable_carbons(c):
    assert c.iq("set", f"<enable xmlns='{NS_CARBONS}'/>").get("type") == "result"


def forwarded(outer, kind):
    """The message inside a carbon: the one child of <forwarded/>, whatever its tag."""
    fwd = outer.find(f"{q(NS_CARBONS, kind)}/{q(NS_FORWARD, 'forwarded')}")
    assert fwd is not None, ET.tostring(outer)
    kids = list(fwd)
    assert len(kids) == 1, ET.tostring(outer)
    return kids[0]


def is_carbon(kind, mid):
    def pred(e):
        w = e.find(f"{q(NS_CARBONS, kind)}/{q(NS_FORWARD, 'forwarded')}")
        return e.tag == q(NS_CLIENT, "message") and w is not None and any(m.get("id") == mid for m in w)

    return pred


# Start tags XEP-0280's copy must not give two xmlns attributes, or none; {mid} is the
# id, which may hold "xmlns=".
CARBON_TAGS = {
    "xmlns-spaced": "<message xmlns = 'jabber:client' to={to} type='chat' id='{mid}'>",
    "xmlns-double-quotes": '<message xmlns="jabber:client" to={to} type="chat" id="{mid}">',
    "id-holds-xmlns": "<message to={to} type='chat' id='{mid}'>",
    "plain": "<message to={to} type='chat' id='{mid}'>",
}


@pytest.mark.parametrize("name", sorted(CARBON_TAGS))
def test_carbons_keep_one_namespace(server, name):
    """XEP-0280: the forwarded original is in jabber:client exactly once, whether the
    sender stated the namespace (blanks around '=' included) or not, and whatever its
    attribute values hold; sent and received copies alike."""
    un, cn = server.new_users(2, "wf")
    with connect(server, un, "A", available=True) as A, connect(server, un, "B", available=True) as B, \
            connect(server, cn, "c", available=True) as c:
        enable_carbons(B)
        for kind, sender, rcpt in (("sent", A, c), ("received", c, A)):
            mid = ("xmlns=" if name == "id-holds-xmlns" else "") + new_id("wf")
            tag = CARBON_TAGS[name].format(to=f"'{rcpt.jid}'", mid=mid)
            sender.send(f"{tag}<body>{kind} {name}</body></message>")
            assert rcpt.wait_for(lambda e: e.get("id") == mid).findtext(q(NS_CLIENT, "body")) == f"{kind} {name}"
            m = forwarded(B.wait_for(is_carbon(kind, mid), what=f"the {kind} carbon"), kind)
            assert m.tag == q(NS_CLIENT, "message"), f"forwarded as {m.tag}"
            assert (m.get("from"), m.get("to"), m.findtext(q(NS_CLIENT, "body"))) == \
                (sender.jid, rcpt.jid, f"{kind} {name}")


def redeclaring(to, mid, kind="message", mtype="chat"):
    """A stanza that declares prefix x itself and uses z from the stream header (so the
    header's declarations must be added, and x's must not be added again); and
    `stream`, declared again."""
    t = f" type='{mtype}'" if mtype else ""
    to_attr = f" to='{to}'" if to else ""
    body = "<body>redeclared</body>" if kind == "message" else "<status>redeclared</status>"
    return (f"<{kind}{to_attr}{t} id='{mid}' xmlns:x='{MINE}' "
            f"xmlns:stream='http://etherx.jabber.org/streams'>"
            f"{body}<x:own/><z:shared z:k='v'/></{kind}>")


def check_redeclared(el):
    """The stanza arrived with each prefix meaning what its sender meant."""
    assert el.find(q(MINE, "own")) is not None, ET.tostring(el)
    shared = el.find(q(Z, "shared"))
    assert shared is not None and shared.get(q(Z, "k")) == "v", ET.tostring(el)
    assert el.find(q(X, "own")) is None


def test_redeclared_prefix_live(server):
    """A message that declares a prefix its sender's stream header binds reaches the
    recipient with that prefix declared once (its own) and the header's others added."""
    un, rn = server.new_users(2, "wf")
    with connect(server, un, "s", available=True, stream_extra=HEADER_DECLS) as s, \
            connect(server, rn, "r", available=True) as r:
        s.send(redeclaring(r.jid, "live1"))
        check_redeclared(r.wait_for(lambda e: e.get("id") == "live1", what="the message"))
        # To the bare JID and carbons-copied to the sender's other resource as well.
        with connect(server, un, "s2", available=True) as s2:
            enable_carbons(s2)
            s.send(redeclaring(r.bare, "live2"))
            check_redeclared(r.wait_for(lambda e: e.get("id") == "live2", what="the message"))
            check_redeclared(forwarded(s2.wait_for(is_carbon("sent", "live2")), "sent"))


def test_redeclared_prefix_in_presence_broadcast(server):
    """The same in a presence broadcast: at a contact, and at the sender's other
    resource."""
    un, cn = server.new_users(2, "wf")
    with connect(server, un, "s", stream_extra=HEADER_DECLS) as s, connect(server, cn, "c") as c:
        befriend(s, c)
        c.available()
        with connect(server, un, "other", available=True) as other:
            s.send(redeclaring(None, "pres1", kind="presence", mtype=None))
            check_redeclared(c.wait_for(is_presence(frm=s.jid, status="redeclared"), what="the broadcast"))
            check_redeclared(other.wait_for(is_presence(frm=s.jid, status="redeclared"), what="the echo"))


def test_redeclared_prefix_stored_offline(server):
    """The same stored offline, then delivered with its delay stamp."""
    un, rn = server.new_users(2, "wf")
    with connect(server, un, "s", available=True, stream_extra=HEADER_DECLS) as s:
        s.send(redeclaring(f"{rn}@localhost", "off1"))
        s.store_barrier()
        assert not [e for e in s.take() if e.get("type") == "error"]
        with connect(server, rn, "r", available=True) as r:
            m = r.wait_for(is_message("redeclared"), what="the offline message")
            assert m.get("id") == "off1"
            check_redeclared(m)
            assert m.find("{urn:xmpp:delay}delay") is not None


# id values as written (in the quotes shown) and as the client means them.
ERROR_IDS = [
    ('"a\'b"', "a'b"),
    ("'a&lt;b'", "a<b"),
    ("'a&amp;b'", "a&b"),
    ("'a\"b'", 'a"b'),
    ("\"&apos;&quot;&lt;&gt;&amp;\"", "'\"<>&"),
    ("'tab&#9;nl&#10;'", "tab\tnl\n"),
]


@pytest.mark.parametrize("written,meant", ERROR_IDS)
def test_error_replies_escape_the_id(server, written, meant):
    """RFC 6120 §8.3: an error carries the request's id; the server writes it escaped,
    so it comes back as the client meant it, whatever quotes and references it used.
    Errors made by the router (no such account, an unknown iq) and by c2s (a malformed
    address) alike."""
    with connect(server, "alice", new_id("wf")) as a:
        for stanza in (f"<message to='nobody-{new_id()}@localhost' type='chat' id={written}><body>x</body></message>",
                       f"<iq type='get' id={written}><query xmlns='urn:test:unknown'/></iq>",
                       f"<message to='a@b@localhost' id={written}><body>x</body></message>"):
            a.send(stanza)
            err = a.wait_for(lambda e: e.get("type") == "error", what=f"the error for {stanza}")
            assert err.get("id") == meant, ET.tostring(err)
            stanza_error(err)
