"""
Stanza semantics on the wire, with raw clients over STARTTLS: addressing rules of
RFC 6120 §10 (no `to`, normalisation, malformed JIDs), iq between clients, message types
to a bare JID (RFC 6121 §8.5.2), errors never answered with errors, stamping of every
stanza kind, and the stream's own life cycle (close, STARTTLS twice, SASL authzid).
"""
import base64

import pytest

import rawxmpp
from rawxmpp import NS_CLIENT, NS_SASL, NS_TLS, RawClient, q, stanza_error_condition

def login(server, user, resource=None, available=True, priority=None):
    return rawxmpp.login(server, user, resource, available, priority)


def test_message_without_to_goes_to_own_bare_jid(server):
    with login(server, "dave", "notoa", priority=1) as a, login(server, "dave", "notob", priority=5) as b:
        a.wait_for(lambda e: e.get("from") == b.jid, what="b's presence")
        a.send("<message type='chat'><body>note to self</body></message>")
        a.message(b.jid, "marker")  # same sender, same shard: arrives after it
        m = b.wait_message()
        assert m.findtext(q(NS_CLIENT, "body")) == "note to self", "got the marker first"
        assert m.get("from") == a.jid


def test_addresses_are_normalised(server):
    """RFC 7622: localpart and domainpart compare case-insensitively (after
    nodeprep/nameprep), the resourcepart does not."""
    with login(server, "alice") as a, login(server, "bob", "Phone") as b:
        a.message("BoB@LocalHost/Phone", "case 1")
        assert b.wait_message("case 1").get("from") == a.jid
        a.message("BOB@localhost", "case 2")
        assert b.wait_message("case 2").get("from") == a.jid
        # "phone" is another resource: no such session, so (chat) the bare JID gets it.
        a.message("bob@localhost/phone", "case 3")
        assert b.wait_message("case 3").get("from") == a.jid


@pytest.mark.parametrize("to", ["a@b@localhost", "@localhost", "alice@", "alice@localhost/", "x" * 1100 + "@localhost"],
                         ids=["two-at", "empty-local", "empty-domain", "empty-resource", "long-local"])
def test_malformed_to_jid_malformed(server, to):
    """RFC 6120 §8.3.3.8: a `to` that is not a valid JID gets jid-malformed (modify)."""
    with login(server, "alice") as a:
        a.send(f"<message type='chat' to='{to}' id='m1'><body>x</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "m1")
        assert stanza_error_condition(err) == ("modify", "jid-malformed")
        assert a.ping_server().get("type") == "result"  # the stream lives on


def test_iq_between_clients(server):
    with login(server, "alice") as a, login(server, "bob") as b:
        a.send(f"<iq type='get' id='v1' to='{b.jid}'><query xmlns='jabber:iq:version'/></iq>")
        iq = b.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == "v1")
        assert (iq.get("type"), iq.get("from")) == ("get", a.jid)
        assert iq.find("{jabber:iq:version}query") is not None
        b.send(f"<iq type='result' id='v1' to='{a.jid}'><query xmlns='jabber:iq:version'>"
               "<name>raw</name></query></iq>")
        res = a.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == "v1")
        assert (res.get("type"), res.get("from")) == ("result", b.jid)
        assert res.findtext("{jabber:iq:version}query/{jabber:iq:version}name") == "raw"


def test_iq_to_missing_resource_service_unavailable(server):
    """RFC 6121 §8.5.3.2 (no resource matches): an iq gets service-unavailable and
    is never redirected to another resource."""
    with login(server, "alice") as a, login(server, "bob") as b:
        a.send("<iq type='get' id='v2' to='bob@localhost/nothere'><query xmlns='jabber:iq:version'/></iq>")
        err = a.wait_for(lambda e: e.get("id") == "v2")
        assert err.get("from") == "bob@localhost/nothere"
        assert stanza_error_condition(err) == ("cancel", "service-unavailable")
        b.message(a.jid, "marker")  # b saw nothing before it
        assert a.wait_message("marker") is not None


def test_iq_ping_to_bare_jid_answered_by_server(server):
    """RFC 6120 §10.5.3.1: an iq to a bare JID is handled by the server on the
    account's behalf; XEP-0199 §4.2 has the server answer a ping so."""
    with login(server, "alice") as a, login(server, "bob") as b:
        a.send("<iq type='get' id='pb' to='bob@localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        res = a.wait_for(lambda e: e.get("id") == "pb")
        assert (res.get("type"), res.get("from")) == ("result", "bob@localhost")
        a.message(b.jid, "after the ping")
        first = b.wait_for(lambda e: e.tag in (q(NS_CLIENT, "iq"), q(NS_CLIENT, "message")))
        assert first.tag == q(NS_CLIENT, "message"), "the ping reached the client"


def test_iq_without_to_is_for_own_account(server):
    with login(server, "alice") as a:
        a.send("<iq type='get' id='nt'><ping xmlns='urn:xmpp:ping'/></iq>")
        res = a.wait_for(lambda e: e.get("id") == "nt")
        assert res.get("type") == "result"


def test_headline_to_bare_jid_reaches_every_nonnegative_resource(server):
    with login(server, "alice") as a, \
            login(server, "carol", "h1", priority=7) as c1, \
            login(server, "carol", "h2", priority=1) as c2, \
            login(server, "carol", "h3", priority=-1) as c3:
        a.send("<message type='headline' to='carol@localhost'><body>news</body></message>")
        assert c1.wait_message("news") is not None
        assert c2.wait_message("news") is not None
        a.message(c3.jid, "marker")
        first = c3.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert first.findtext(q(NS_CLIENT, "body")) == "marker", "priority -1 got a headline"


def test_groupchat_to_bare_jid_service_unavailable(server):
    """RFC 6121 §8.5.2.1.2."""
    with login(server, "alice") as a, login(server, "bob"):
        a.send("<message type='groupchat' to='bob@localhost' id='gc'><body>room?</body></message>")
        err = a.wait_for(lambda e: e.get("id") == "gc")
        assert stanza_error_condition(err) == ("cancel", "service-unavailable")


def test_explicit_unavailable_leaves_bare_jid_routing(server):
    user, = server.new_users(1, "unav")  # no stored messages of other tests
    with login(server, "alice") as a, \
            login(server, user, "busy", priority=9) as e1, \
            login(server, user, "idle", priority=1) as e2:
        e1.wait_for(lambda e: e.get("from") == e2.jid, what="e2's presence")
        # e2 saw e1's available presence at its own initial presence; then unavailable.
        e1.send("<presence type='unavailable'/>")
        e2.wait_for(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("from") == e1.jid
                        and e.get("type") == "unavailable", what="e1's unavailable presence")
        a.message(f"{user}@localhost", "who gets it")
        assert e2.wait_message("who gets it").get("from") == a.jid


def test_error_is_never_answered_with_error(server):
    """RFC 6120 §8.3.1: an error stanza to nobody is dropped, never bounced."""
    with login(server, "alice") as a:
        a.send("<message type='error' to='nobody@localhost' id='e1'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        a.send("<message type='chat' to='nobody@localhost' id='e2'><body>x</body></message>")
        first = a.wait_for(lambda e: e.tag == q(NS_CLIENT, "message"))
        assert first.get("id") == "e2", "the error message was bounced"


def test_every_stanza_kind_is_stamped(server):
    with login(server, "alice") as a, login(server, "bob") as b:
        a.send(f"<iq type='get' id='sp1' to='{b.jid}' from='carol@localhost/x'><query xmlns='urn:x'/></iq>")
        assert b.wait_for(lambda e: e.get("id") == "sp1").get("from") == a.jid
        a.send(f"<presence to='{b.jid}' from='carol@localhost/x' id='sp2'/>")
        assert b.wait_for(lambda e: e.get("id") == "sp2").get("from") == a.jid
        a.send("<presence from='carol@localhost/x' id='sp3'><priority>2</priority></presence>")
        assert a.wait_for(lambda e: e.get("id") == "sp3").get("from") == a.jid


def test_byte_by_byte_stanza_is_delivered(server):
    """A stanza split at every byte (multibyte characters included) parses the same."""
    with login(server, "alice") as a, login(server, "bob") as b:
        data = f"<message to='{b.jid}' type='chat'><body>sl\u00f6w \u2713 \U0001d11e</body></message>".encode()
        for i in range(len(data)):
            a.send(data[i : i + 1])
        assert b.wait_message("sl\u00f6w \u2713 \U0001d11e").get("from") == a.jid


def test_many_stanzas_in_one_write(server):
    with login(server, "alice") as a, login(server, "bob") as b:
        a.send("".join(f"<message to='{b.jid}' type='chat'><body>batch {i}</body></message>" for i in range(200)))
        for i in range(200):
            assert b.wait_message().findtext(q(NS_CLIENT, "body")) == f"batch {i}"


def test_client_closes_stream(server):
    """RFC 6120 §4.4: the server answers </stream:stream> with its own and closes."""
    with login(server, "alice", available=False) as a:
        a.send("</stream:stream>")
        kinds = []
        while "eof" not in kinds:
            kinds.append(a.next()[0])
        assert kinds == ["close", "eof"]


def test_starttls_twice_fails(server):
    """RFC 6120 §5.4.2.2 (no second TLS layer): <failure/> and the stream closes."""
    with RawClient(server) as c:
        c.open()
        c.starttls()
        c.open()
        c.send(f"<starttls xmlns='{NS_TLS}'/>")
        assert c.stanza().tag == q(NS_TLS, "failure")
        assert [c.next()[0], c.next()[0]] == ["close", "eof"]


def test_direct_tls_offers_no_starttls(server):
    with RawClient(server, direct_tls=True) as c:
        _, feats = c.open()
        assert feats.find(q(NS_TLS, "starttls")) is None
        assert feats.find(q(NS_SASL, "mechanisms")) is not None


@pytest.mark.parametrize("authzid,ok", [("bob@localhost", False), ("alice@localhost", True)],
                         ids=["other-user", "own-bare-jid"])
def test_plain_authzid(server, authzid, ok):
    """RFC 6120 §6.4.6/6.5.6: alice may not authorize as bob (invalid-authzid)."""
    with RawClient(server) as c:
        c.open()
        c.starttls()
        c.open()
        token = base64.b64encode(f"{authzid}\0alice\0{server.password('alice')}".encode()).decode()
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        el = c.stanza()
        if ok:
            assert el.tag == q(NS_SASL, "success")
            c.restart()
            assert c.bind("authz") == "alice@localhost/authz"
        else:
            assert el.tag == q(NS_SASL, "failure")
            assert [x.tag for x in el] == [q(NS_SASL, "invalid-authzid")]


def test_bind_resource_too_long_bad_request(server):
    """RFC 6120 §7.7.2.1; a resourcepart is at most 1023 bytes (RFC 7622 §3.4)."""
    with RawClient(server) as c:
        c.open()
        c.starttls()
        c.open()
        assert c.auth_plain("alice", server.password("alice")).tag == q(NS_SASL, "success")
        c.restart()
        assert stanza_error_condition(c.bind_raw("r" * 1100)) == ("modify", "bad-request")
        assert c.bind("fine") == "alice@localhost/fine"  # another try on the same stream
