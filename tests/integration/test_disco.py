"""
disco#info of the server is made of the router's modules (router/module.h): it lists
exactly what the server serves. For each feature listed, a request in its namespace is
served (no service-unavailable); a namespace clients ask for that is not listed gets
service-unavailable (RFC 6120 §8.3.3.19), so a client never finds a feature that is
not there, nor misses one that is.
"""
import xml.etree.ElementTree as ET

from im import NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING, NS_VERSION, connect, stanza_error
from rawxmpp import q

# For each namespace, a request in it: (type, payload, to). None: to the user's own
# account (no `to`), "server": to the domain.
REQUESTS = {
    NS_DISCO_INFO: ("get", f"<query xmlns='{NS_DISCO_INFO}'/>", "server"),
    NS_DISCO_ITEMS: ("get", f"<query xmlns='{NS_DISCO_ITEMS}'/>", "server"),
    NS_PING: ("get", f"<ping xmlns='{NS_PING}'/>", "server"),
    NS_VERSION: ("get", f"<query xmlns='{NS_VERSION}'/>", "server"),
    "jabber:iq:roster": ("get", "<query xmlns='jabber:iq:roster'/>", None),
    "urn:xmpp:blocking": ("get", "<blocklist xmlns='urn:xmpp:blocking'/>", None),
    "urn:xmpp:carbons:2": ("set", "<enable xmlns='urn:xmpp:carbons:2'/>", None),
    # What modern clients ask for (issue 12's other parts serve them): not served here
    # until a module lists them.
    "jabber:iq:private": (
        "get",
        "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>",
        None,
    ),
    "vcard-temp": ("get", "<vCard xmlns='vcard-temp'/>", None),
    "http://jabber.org/protocol/pubsub": (
        "get",
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>"
        "<items node='urn:xmpp:bookmarks:1'/></pubsub>",
        None,
    ),
    "urn:xmpp:mam:2": ("set", "<query xmlns='urn:xmpp:mam:2'/>", None),
    "jabber:iq:last": ("get", "<query xmlns='jabber:iq:last'/>", "server"),
    "urn:xmpp:time": ("get", "<time xmlns='urn:xmpp:time'/>", "server"),
    "jabber:iq:register": ("get", "<query xmlns='jabber:iq:register'/>", "server"),
    "urn:example:nothing": ("get", "<query xmlns='urn:example:nothing'/>", "server"),
}

# Features that are no iq namespace: nothing to ask in them.
NOT_IQ = {"msgoffline", "urn:xmpp:sid:0"}


def served(c, ns):
    itype, payload, to = REQUESTS[ns]
    res = c.iq(itype, payload, to="localhost" if to == "server" else to)
    if res.get("type") == "result":
        return True
    cond = stanza_error(res)
    assert cond[1] != "internal-server-error", ET.tostring(res)
    return cond[1] != "service-unavailable"


NS_PUBSUB = "http://jabber.org/protocol/pubsub"


def features(c, to="localhost"):
    res = c.iq("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=to)
    assert res.get("type") == "result", ET.tostring(res)
    feats = [f.get("var") for f in res.find(q(NS_DISCO_INFO, "query")).findall(
        q(NS_DISCO_INFO, "feature"))]
    assert len(feats) == len(set(feats)), f"a feature twice: {feats}"
    return set(feats)


def account_features(c):
    """PEP lives at the account (XEP-0163 §3): its pubsub#... features there say that
    the pubsub namespace is served at the user's own bare JID."""
    feats = features(c, to=c.bare)
    ns = {f for f in feats if not f.startswith(NS_PUBSUB + "#")}
    if len(ns) < len(feats):
        ns.add(NS_PUBSUB)
    return ns - {NS_DISCO_INFO}


def test_disco_lists_exactly_what_is_served(server):
    with connect(server, "alice") as a:
        listed = features(a) | account_features(a)
        unknown = listed - NOT_IQ - REQUESTS.keys()
        assert not unknown, f"listed, and no request here to try it with: {unknown}"
        wrong = {ns for ns in listed - NOT_IQ if not served(a, ns)}
        assert not wrong, f"listed but service-unavailable: {wrong}"
        hidden = {ns for ns in REQUESTS.keys() - listed if served(a, ns)}
        assert not hidden, f"served but not listed: {hidden}"
        # The default configuration: software version is off, so neither listed nor served.
        assert NS_VERSION not in listed
        assert {"jabber:iq:roster", "urn:xmpp:blocking", "urn:xmpp:carbons:2"} <= listed
