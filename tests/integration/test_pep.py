"""
PEP (XEP-0163) and what rides on it, against the real node: publish (auto-create, item
ids), items (all, by id, max_items), retract, delete, the configuration form,
publish-options (XEP-0060 §7.1.5) and access models (open, presence, roster,
whitelist) for contacts, strangers and users of other servers; notifications filtered
by entity capabilities (XEP-0115, the ver hash checked), last items on a resource's
arrival; OMEMO's open nodes (XEP-0384); the bounds and their errors; private XML
(XEP-0049) and vCard-temp (XEP-0054); everything back after a restart. Raw clients for
exact bytes here; slixmpp's own plugins in test_pep_slix.py.
"""
import base64
import hashlib
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import pytest

from im import befriend, connect, new_id, stanza_error
from rawxmpp import NS_CLIENT, q

PUBSUB = "http://jabber.org/protocol/pubsub"
OWNER = PUBSUB + "#owner"
EVENT = PUBSUB + "#event"
ERRORS = PUBSUB + "#errors"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
CAPS = "http://jabber.org/protocol/caps"
DATA = "jabber:x:data"
OMEMO_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
GEOLOC = "http://jabber.org/protocol/geoloc"
NICK = "http://jabber.org/protocol/nick"

PEP_GROUPS = {"pep": {"max_nodes": 8, "max_item_bytes": "2K", "max_items": 16}}


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    from conftest import _stop_cleanly, start_server

    s = start_server(tmp_path_factory.mktemp("pep"), **PEP_GROUPS)
    yield s
    _stop_cleanly(s)


def options(**fields):
    """A publish-options form (XEP-0060 §7.1.5)."""
    fs = "".join(f"<field var='pubsub#{k}'><value>{v}</value></field>" for k, v in fields.items())
    return (f"<publish-options><x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{PUBSUB}#publish-options</value></field>{fs}</x></publish-options>")


def publish(c, node, payload, item_id=None, opts=""):
    i = f" id={quoteattr(item_id)}" if item_id else ""
    return c.iq("set", f"<pubsub xmlns='{PUBSUB}'><publish node={quoteattr(node)}><item{i}>{payload}"
                       f"</item></publish>{opts}</pubsub>")


def items(c, owner, node, extra="", inner=""):
    return c.iq("get", f"<pubsub xmlns='{PUBSUB}'><items node={quoteattr(node)}{extra}>{inner}</items></pubsub>",
                to=owner)


def item_ids(res):
    assert res.get("type") == "result", ET.tostring(res)
    its = res.find(q(PUBSUB, "pubsub")).find(q(PUBSUB, "items"))
    return [i.get("id") for i in its.findall(q(PUBSUB, "item"))]


def err(res):
    """(type, condition, pubsub#errors condition or None)."""
    assert res.get("type") == "error", ET.tostring(res)
    e = res.find(q(NS_CLIENT, "error"))
    app = [c.tag.split("}")[1] for c in e if c.tag.startswith("{%s}" % ERRORS)]
    return e.get("type"), stanza_error(res)[1], app[0] if app else None


def caps_ver(features, identity=("client", "pc", "", "pep-test")):
    """XEP-0115 §5.1."""
    s = "/".join(identity) + "<" + "".join(f + "<" for f in sorted(features))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def caps_presence(c, features, lie=False):
    """Available presence with caps; answers the server's disco#info for it (with other
    features when lie), if it asks: the query comes from our own shard, before what the
    settle() after the presence brings. Returns whether it asked."""
    ver = caps_ver(features)
    c.send(f"<presence><c xmlns='{CAPS}' hash='sha-1' node='urn:test' ver='{ver}'/></presence>")
    c.settle()
    asks = c.take(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("type") == "get"
                  and e.find(q(DISCO_INFO, "query")) is not None)
    for ask in asks:
        qn = ask.find(q(DISCO_INFO, "query"))
        assert qn.get("node") == f"urn:test#{ver}"
        # From a bare JID: the PEP service of this user, or of a contact who saw it.
        assert "/" not in ask.get("from")
        feats = features + ["urn:test:extra"] if lie else features
        body = "<identity category='client' type='pc' name='pep-test'/>" + "".join(
            f"<feature var={quoteattr(f)}/>" for f in feats)
        c.send(f"<iq type='result' id={quoteattr(ask.get('id'))} to={quoteattr(ask.get('from'))}>"
               f"<query xmlns='{DISCO_INFO}' node={quoteattr(qn.get('node'))}>{body}</query></iq>")
    return bool(asks)


def is_event(node=None, frm=None):
    def pred(e):
        if e.tag != q(NS_CLIENT, "message") or e.get("type") != "headline":
            return False
        ev = e.find(q(EVENT, "event"))
        its = ev.find(q(EVENT, "items")) if ev is not None else None
        return its is not None and (node is None or its.get("node") == node) and (frm is None or e.get("from") == frm)
    return pred


def event_items(e):
    its = e.find(q(EVENT, "event")).find(q(EVENT, "items"))
    return [(i.get("id"), [ET.tostring(c).decode() for c in i]) for i in its.findall(q(EVENT, "item"))]


def no_event(c, node):
    c.settle()
    got = c.take(is_event(node))
    assert got == [], [ET.tostring(e) for e in got]


def geo(text):
    return f"<geoloc xmlns='{GEOLOC}'><text>{text}</text></geoloc>"


def test_publish_items_retract_delete(node):
    un, = node.new_users(1, "pep")
    with connect(node, un, "a") as a:
        r = publish(a, GEOLOC, geo("here"), "g1")
        assert r.get("type") == "result", ET.tostring(r)
        pub = r.find(q(PUBSUB, "pubsub")).find(q(PUBSUB, "publish"))
        assert pub.get("node") == GEOLOC and pub.find(q(PUBSUB, "item")).get("id") == "g1"
        # No id: the service makes one.
        r = publish(a, NICK, f"<nick xmlns='{NICK}'>Juliet</nick>")
        gen = r.find(q(PUBSUB, "pubsub")).find(q(PUBSUB, "publish")).find(q(PUBSUB, "item")).get("id")
        assert gen
        assert item_ids(items(a, a.bare, NICK)) == [gen]
        # Default max_items is 1: a second item replaces the first.
        assert publish(a, GEOLOC, geo("there"), "g2").get("type") == "result"
        res = items(a, None, GEOLOC)
        assert item_ids(res) == ["g2"]
        payload = res.find(q(PUBSUB, "pubsub")).find(q(PUBSUB, "items")).find(q(PUBSUB, "item"))[0]
        assert payload.tag == q(GEOLOC, "geoloc") and payload.find(q(GEOLOC, "text")).text == "there"
        # max_items 'max' keeps them all; by id; the newest n.
        node_b = "urn:test:many"
        for i in range(4):
            assert publish(a, node_b, geo(str(i)), f"i{i}", options(max_items="max")).get("type") == "result"
        assert item_ids(items(a, a.bare, node_b)) == ["i0", "i1", "i2", "i3"]
        assert item_ids(items(a, a.bare, node_b, " max_items='2'")) == ["i2", "i3"]
        assert item_ids(items(a, a.bare, node_b, "", "<item id='i1'/><item id='i3'/>")) == ["i1", "i3"]
        # Retract.
        r = a.iq("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{node_b}'><item id='i1'/></retract></pubsub>")
        assert r.get("type") == "result", ET.tostring(r)
        assert item_ids(items(a, a.bare, node_b)) == ["i0", "i2", "i3"]
        r = a.iq("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{node_b}'><item id='i1'/></retract></pubsub>")
        assert err(r)[1] == "item-not-found"
        # Disco of the account: its nodes; the features of what works.
        d = a.iq_ok("get", f"<query xmlns='{DISCO_ITEMS}'/>", to=a.bare)
        nodes = sorted(i.get("node") for i in d.find(q(DISCO_ITEMS, "query")))
        assert nodes == sorted([GEOLOC, NICK, node_b])
        info = a.iq_ok("get", f"<query xmlns='{DISCO_INFO}'/>", to=a.bare).find(q(DISCO_INFO, "query"))
        feats = {f.get("var") for f in info.findall(q(DISCO_INFO, "feature"))}
        for f in ("publish", "auto-create", "publish-options", "access-open", "access-presence",
                  "access-roster", "access-whitelist", "persistent-items", "retrieve-items"):
            assert f"{PUBSUB}#{f}" in feats, f
        assert f"{PUBSUB}#subscribe" not in feats  # explicit subscriptions are not served
        ids = {(i.get("category"), i.get("type")) for i in info.findall(q(DISCO_INFO, "identity"))}
        assert ("pubsub", "pep") in ids
        # Delete.
        r = a.iq("set", f"<pubsub xmlns='{OWNER}'><delete node='{node_b}'/></pubsub>")
        assert r.get("type") == "result", ET.tostring(r)
        assert err(items(a, a.bare, node_b))[1] == "item-not-found"


def test_errors_and_bounds(node):
    un, on = node.new_users(2, "pepb")
    with connect(node, un, "a") as a, connect(node, on, "o") as o:
        assert err(a.iq("set", f"<pubsub xmlns='{PUBSUB}'><publish><item>{geo('x')}</item></publish></pubsub>")) \
            == ("modify", "bad-request", "nodeid-required")
        assert err(publish(a, GEOLOC, ""))[2] == "payload-required"
        assert err(items(a, a.bare, "urn:none"))[1] == "item-not-found"
        # pep.max_item_bytes (2K here): not-acceptable with payload-too-big.
        big = geo("x" * 3000)
        assert err(publish(a, GEOLOC, big)) == ("modify", "not-acceptable", "payload-too-big")
        # pep.max_items (16): max_items past it is refused.
        assert err(publish(a, GEOLOC, geo("x"), opts=options(max_items="17")))[2] == "precondition-not-met"
        # pep.max_nodes (8): the ninth node.
        for i in range(8):
            assert publish(a, f"urn:test:n{i}", geo("x")).get("type") == "result"
        assert err(publish(a, "urn:test:n8", geo("x"))) == ("cancel", "resource-constraint", "max-nodes-exceeded")
        # Only the owner publishes or configures.
        r = o.iq("set", f"<pubsub xmlns='{PUBSUB}'><publish node='urn:test:n0'><item>{geo('x')}</item></publish></pubsub>",
                 to=a.bare)
        assert err(r)[1] == "forbidden"
        r = o.iq("set", f"<pubsub xmlns='{OWNER}'><delete node='urn:test:n0'/></pubsub>", to=a.bare)
        assert err(r)[1] == "forbidden"
        # Subscriptions are implicit.
        r = a.iq("set", f"<pubsub xmlns='{PUBSUB}'><subscribe node='urn:test:n0' jid={quoteattr(a.jid)}/></pubsub>")
        assert err(r)[1:] == ("feature-not-implemented", "unsupported")
        # Pubsub at the domain is not served.
        r = a.iq("get", f"<pubsub xmlns='{PUBSUB}'><items node='x'/></pubsub>", to=node.domain)
        assert err(r)[1] == "service-unavailable"


def test_publish_options_and_configuration(node):
    un, = node.new_users(1, "pepo")
    bm = "urn:xmpp:bookmarks:1"
    conf = options(persist_items="true", max_items="max", access_model="whitelist",
                   send_last_published_item="never")
    with connect(node, un, "a") as a:
        room = f"<conference xmlns='{bm}' name='Orchard' autojoin='true'><nick>j</nick></conference>"
        assert publish(a, bm, room, "orchard@conference.localhost", conf).get("type") == "result"
        assert publish(a, bm, room, "balcony@conference.localhost", conf).get("type") == "result"
        assert item_ids(items(a, a.bare, bm)) == ["orchard@conference.localhost", "balcony@conference.localhost"]
        # Options that do not match the node: conflict, precondition-not-met; not stored.
        r = publish(a, bm, room, "x@conference.localhost", options(access_model="open"))
        assert err(r) == ("cancel", "conflict", "precondition-not-met")
        assert len(item_ids(items(a, a.bare, bm))) == 2
        # The owner's form.
        r = a.iq_ok("get", f"<pubsub xmlns='{OWNER}'><configure node='{bm}'/></pubsub>")
        form = r.find(q(OWNER, "pubsub")).find(q(OWNER, "configure")).find(q(DATA, "x"))
        vals = {f.get("var"): f.find(q(DATA, "value")).text for f in form.findall(q(DATA, "field"))}
        assert vals["pubsub#access_model"] == "whitelist"
        assert vals["pubsub#persist_items"] == "1"
        assert vals["pubsub#max_items"] == "16"  # 'max' is pep.max_items
        # Submit: the node becomes open, and the open publish-options now match.
        sub = (f"<pubsub xmlns='{OWNER}'><configure node='{bm}'><x xmlns='{DATA}' type='submit'>"
               f"<field var='FORM_TYPE' type='hidden'><value>{PUBSUB}#node_config</value></field>"
               f"<field var='pubsub#access_model'><value>open</value></field></x></configure></pubsub>")
        a.iq_ok("set", sub)
        assert publish(a, bm, room, "x@conference.localhost", options(access_model="open")).get("type") == "result"
        bad = sub.replace("<value>open</value>", "<value>everyone</value>")
        assert err(a.iq("set", bad))[1] == "not-acceptable"


def test_access_models(node):
    """open: anyone (a stranger too, OMEMO's device list and bundles); presence: a contact
    with a subscription from the owner, not a stranger; roster: anyone in the roster;
    whitelist: the owner alone."""
    on, cn, sn = node.new_users(3, "pepa")
    with connect(node, on, "o") as o, connect(node, cn, "c") as c, connect(node, sn, "s") as s:
        befriend(o, c)
        devices = f"<list xmlns='{OMEMO_DEVICES[:-len('.devicelist')]}'><device id='4223'/></list>"
        bundle = "eu.siacs.conversations.axolotl.bundles:4223"
        assert publish(o, OMEMO_DEVICES, devices, "current", options(access_model="open")).get("type") == "result"
        assert publish(o, bundle, "<bundle xmlns='eu.siacs.conversations.axolotl'/>", "current",
                       options(access_model="open")).get("type") == "result"
        assert publish(o, GEOLOC, geo("presence"), "p").get("type") == "result"  # default: presence
        assert publish(o, "urn:test:roster", geo("roster"), "r", options(access_model="roster")).get("type") == "result"
        assert publish(o, "urn:test:white", geo("white"), "w", options(access_model="whitelist")).get("type") == "result"
        for who in (c, s):
            assert item_ids(items(who, o.bare, OMEMO_DEVICES)) == ["current"]
            assert item_ids(items(who, o.bare, bundle)) == ["current"]
        assert item_ids(items(c, o.bare, GEOLOC)) == ["p"]
        assert err(items(s, o.bare, GEOLOC)) == ("auth", "not-authorized", "presence-subscription-required")
        assert item_ids(items(c, o.bare, "urn:test:roster")) == ["r"]
        assert err(items(s, o.bare, "urn:test:roster"))[1:] == ("not-authorized", "not-in-roster-group")
        for who in (c, s):
            assert err(items(who, o.bare, "urn:test:white")) == ("cancel", "not-allowed", "closed-node")
        assert item_ids(items(o, o.bare, "urn:test:white")) == ["w"]
        # disco#items shows each asker the nodes it may read.
        d = s.iq_ok("get", f"<query xmlns='{DISCO_ITEMS}'/>", to=o.bare)
        assert sorted(i.get("node") for i in d.find(q(DISCO_ITEMS, "query"))) == sorted([OMEMO_DEVICES, bundle])
        d = c.iq_ok("get", f"<query xmlns='{DISCO_ITEMS}'/>", to=o.bare)
        assert sorted(i.get("node") for i in d.find(q(DISCO_ITEMS, "query"))) == \
            sorted([OMEMO_DEVICES, bundle, GEOLOC, "urn:test:roster"])


def test_notifications_follow_caps(node):
    """A contact's resource with NODE+notify gets the event, one without gets nothing; the
    owner's own resources likewise; a 'ver' whose answer does not hash to it is not
    trusted; a resource arriving with +notify gets the last item."""
    on, cn = node.new_users(2, "pepn")
    notify = [DISCO_INFO, GEOLOC + "+notify"]
    with connect(node, on, "o") as o, connect(node, cn, "want") as want, \
            connect(node, cn, "deaf") as deaf, connect(node, cn, "liar") as liar, \
            connect(node, on, "own") as own:
        befriend(o, want)
        uniq = "urn:test:" + new_id("f")  # a 'ver' no earlier test made known
        notify.append(uniq)
        caps_presence(o, [DISCO_INFO, uniq])
        caps_presence(own, notify)
        caps_presence(want, notify)
        caps_presence(deaf, [DISCO_INFO, NICK + "+notify", uniq])
        assert caps_presence(liar, notify + ["urn:test:liar"], lie=True)
        for c in (o, own, want, deaf, liar):
            c.settle()
        assert publish(o, GEOLOC, geo("orchard"), "g1").get("type") == "result"
        for c in (want, own):
            e = c.wait_for(is_event(GEOLOC, frm=o.bare), what="the event")
            assert [i for i, _ in event_items(e)] == ["g1"]
            assert "orchard" in event_items(e)[0][1][0]
        for c in (o, deaf, liar):
            no_event(c, GEOLOC)
        # Retract with notify.
        r = o.iq("set", f"<pubsub xmlns='{PUBSUB}'><retract node='{GEOLOC}' notify='true'><item id='g1'/></retract></pubsub>")
        assert r.get("type") == "result"
        ev = want.wait_for(lambda e: e.tag == q(NS_CLIENT, "message") and e.find(q(EVENT, "event")) is not None,
                           what="the retraction")
        assert ev.find(q(EVENT, "event")).find(q(EVENT, "items")).find(q(EVENT, "retract")).get("id") == "g1"
        assert publish(o, GEOLOC, geo("balcony"), "g2").get("type") == "result"
        want.wait_for(is_event(GEOLOC), what="the second event")
        # A new resource of the contact with +notify gets the last item on arrival.
        with connect(node, cn, "late") as late:
            assert not caps_presence(late, notify)  # known already (same shard as want)
            e = late.wait_for(is_event(GEOLOC, frm=o.bare), what="the last item")
            assert [i for i, _ in event_items(e)] == ["g2"]


def caps_ver_full(identities, features, forms):
    """XEP-0115 §5.1 with xml:lang and extended forms (§5.4): identities as (category,
    type, lang, name), forms as {FORM_TYPE: {var: [values]}}."""
    s = "".join("/".join(i) + "<" for i in sorted(identities))
    s += "".join(f + "<" for f in sorted(features))
    for ft in sorted(forms):
        s += ft + "<"
        for var in sorted(forms[ft]):
            s += var + "<" + "".join(v + "<" for v in sorted(forms[ft][var]))
    return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


SOFTWARE = "urn:xmpp:dataforms:softwareinfo"
PSI_IDS = [("client", "pc", "en", "Psi 0.11"), ("client", "pc", "el", "Ψ 0.11")]
PSI_FORM = {SOFTWARE: {"ip_version": ["ipv4", "ipv6"], "os": ["Mac"], "os_version": ["10.5.1"],
                       "software": ["Psi"], "software_version": ["0.11"]}}


def disco_answer(ids, features, forms):
    body = "".join(f"<identity category='{c}' type='{t}' xml:lang='{l}' name={quoteattr(n)}/>" for c, t, l, n in ids)
    body += "".join(f"<feature var={quoteattr(f)}/>" for f in features)
    for ft, fields in forms.items():
        body += f"<x xmlns='{DATA}' type='result'><field var='FORM_TYPE' type='hidden'><value>{ft}</value></field>"
        for var, vals in fields.items():
            body += f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in vals) + "</field>"
        body += "</x>"
    return body


def test_caps_with_forms_verified(node):
    """§5.3's complex example: identities with xml:lang, an extended form. The answer that
    hashes to the 'ver' is trusted (the resource gets notifications), one whose form
    differs is not."""
    assert caps_ver_full(PSI_IDS, [CAPS, DISCO_INFO, DISCO_ITEMS, "http://jabber.org/protocol/muc"],
                         PSI_FORM) == "q07IKJEyjvHSyhy//CH0CxmKi8w="  # the example's own
    on, cn = node.new_users(2, "pepf")
    feats = [CAPS, DISCO_INFO, GEOLOC + "+notify", "urn:test:" + new_id("f")]
    ver = caps_ver_full(PSI_IDS, feats, PSI_FORM)
    with connect(node, on, "o") as o, connect(node, cn, "good") as good, connect(node, cn, "bad") as bad:
        befriend(o, good)
        for c, form in ((good, PSI_FORM), (bad, {SOFTWARE: dict(PSI_FORM[SOFTWARE], os=["Linux"])})):
            v = ver if c is good else caps_ver_full(PSI_IDS, feats + ["urn:test:bad"], PSI_FORM)
            c.send(f"<presence><c xmlns='{CAPS}' hash='sha-1' node='urn:psi' ver='{v}'/></presence>")
            ask = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("type") == "get", what="the query")
            fs = feats + (["urn:test:bad"] if c is bad else [])
            c.send(f"<iq type='result' id={quoteattr(ask.get('id'))} to={quoteattr(ask.get('from'))}>"
                   f"<query xmlns='{DISCO_INFO}' node='urn:psi#{v}'>{disco_answer(PSI_IDS, fs, form)}</query></iq>")
            c.settle()
        assert publish(o, GEOLOC, geo("psi"), "p1").get("type") == "result"
        good.wait_for(is_event(GEOLOC), what="the event")
        no_event(bad, GEOLOC)


def test_last_items_when_the_owner_comes(node):
    """The owner's first session loads its nodes: contacts online with +notify get the
    last items then (XEP-0163 §4.3.2), the owner's resource too."""
    on, cn = node.new_users(2, "pepl")
    notify = [DISCO_INFO, NICK + "+notify", "urn:test:" + new_id("f")]
    with connect(node, on, "o") as o, connect(node, cn, "c") as c:
        befriend(o, c)
        caps_presence(c, notify)
        assert publish(o, NICK, f"<nick xmlns='{NICK}'>Romeo</nick>", "n1").get("type") == "result"
        c.wait_for(is_event(NICK), what="the event")
    # Everyone gone: the owner's state leaves memory. The contact comes back first.
    with connect(node, cn, "c2") as c:
        caps_presence(c, notify)
        with connect(node, on, "o2") as o:
            caps_presence(o, notify)
            e = o.wait_for(is_event(NICK), what="the owner's own last item")
            assert [i for i, _ in event_items(e)] == ["n1"]
            e = c.wait_for(is_event(NICK, frm=f"{on}@{node.domain}"), what="the contact's last item")
            assert [i for i, _ in event_items(e)] == ["n1"]


def test_private_xml(node):
    un, on = node.new_users(2, "pepp")
    ns = "storage:bookmarks"
    with connect(node, un, "a") as a, connect(node, on, "o") as o:
        r = a.iq_ok("get", f"<query xmlns='jabber:iq:private'><storage xmlns='{ns}'/></query>")
        st = r.find(q("jabber:iq:private", "query")).find(q(ns, "storage"))
        assert st is not None and len(st) == 0
        conf = f"<storage xmlns='{ns}'><conference jid='orchard@conference.localhost' autojoin='true'><nick>j</nick></conference></storage>"
        a.iq_ok("set", f"<query xmlns='jabber:iq:private'>{conf}</query>")
        r = a.iq_ok("get", f"<query xmlns='jabber:iq:private'><storage xmlns='{ns}'/></query>")
        st = r.find(q("jabber:iq:private", "query")).find(q(ns, "storage"))
        assert st.find(q(ns, "conference")).get("jid") == "orchard@conference.localhost"
        # Not another user's; not the stream's namespace; bounds.
        r = o.iq("get", f"<query xmlns='jabber:iq:private'><storage xmlns='{ns}'/></query>", to=a.bare)
        assert err(r)[1] == "forbidden"
        r = a.iq("set", "<query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query>")
        assert err(r)[1] == "not-acceptable"
        info = a.iq_ok("get", f"<query xmlns='{DISCO_INFO}'/>", to=node.domain).find(q(DISCO_INFO, "query"))
        feats = {f.get("var") for f in info.findall(q(DISCO_INFO, "feature"))}
        assert "jabber:iq:private" in feats and "vcard-temp" in feats


def test_vcard(node):
    un, on = node.new_users(2, "pepv")
    with connect(node, un, "a") as a, connect(node, on, "o") as o:
        r = a.iq_ok("get", "<vCard xmlns='vcard-temp'/>")
        assert len(r.find(q("vcard-temp", "vCard"))) == 0
        a.iq_ok("set", "<vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN><NICKNAME>J</NICKNAME></vCard>")
        for who, to in ((a, None), (a, a.bare), (o, a.bare)):
            r = who.iq_ok("get", "<vCard xmlns='vcard-temp'/>", to=to)
            assert r.find(q("vcard-temp", "vCard")).find(q("vcard-temp", "FN")).text == "Juliet Capulet"
        assert err(o.iq("set", "<vCard xmlns='vcard-temp'><FN>x</FN></vCard>", to=a.bare))[1] == "forbidden"
        big = "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>" + "A" * (200 * 1024) + "</BINVAL></PHOTO></vCard>"
        assert err(a.iq("set", big))[1] == "not-acceptable"


def test_everything_back_after_a_restart(make_server):
    s = make_server(**PEP_GROUPS)
    un, on = s.new_users(2, "pepr")
    with connect(s, un, "a") as a:
        assert publish(a, GEOLOC, geo("kept"), "k1", options(access_model="open")).get("type") == "result"
        assert publish(a, NICK, f"<nick xmlns='{NICK}'>x</nick>", "m",
                       options(persist_items="false")).get("type") == "result"
        a.iq_ok("set", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:test:prefs' a='1'/></query>")
        a.iq_ok("set", "<vCard xmlns='vcard-temp'><FN>Kept</FN></vCard>")
        a.store_barrier()
    s.restart()
    with connect(s, on, "o") as o:
        res = items(o, f"{un}@{s.domain}", GEOLOC)
        assert item_ids(res) == ["k1"]
        assert "kept" in ET.tostring(res).decode()
        r = o.iq_ok("get", "<vCard xmlns='vcard-temp'/>", to=f"{un}@{s.domain}")
        assert r.find(q("vcard-temp", "vCard")).find(q("vcard-temp", "FN")).text == "Kept"
    with connect(s, un, "a") as a:
        # The node of persist_items false is back, its item not.
        assert item_ids(items(a, a.bare, NICK)) == []
        r = a.iq_ok("get", "<query xmlns='jabber:iq:private'><prefs xmlns='urn:test:prefs'/></query>")
        assert r.find(q("jabber:iq:private", "query")).find(q("urn:test:prefs", "prefs")).get("a") == "1"
