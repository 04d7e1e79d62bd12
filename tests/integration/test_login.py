"""
Logging in: TLS (STARTTLS and Direct TLS), SASL mechanisms (RFC 6120 §6, RFC 5802,
RFC 7677), channel binding (RFC 5929, XEP-0440), failures. The limits on logins per
address and per account are in test_limits.py.
"""
import ssl

import pytest

from rawxmpp import (
    NS_SASL,
    NS_TLS,
    RawClient,
    Scram,
    cb_types,
    cert_hash_for_end_point,
    mechanisms,
    q,
    tls_context,
)
from slixclient import Clients, LoginFailed, run

MECHS = ["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"]


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "directtls"])
@pytest.mark.parametrize("mech", MECHS)
def test_login(server, mech, direct_tls):
    async def scenario():
        async with Clients(server) as cs:
            c = await cs.login("alice", f"login-{mech}", mech=mech, direct_tls=direct_tls)
            assert c.used_mech == mech
            assert c.tls_version() in ("TLSv1.2", "TLSv1.3")
            assert c.boundjid.full == server.jid("alice", f"login-{mech}")
            result = await c.ping_server()
            assert result["type"] == "result"

    run(scenario())


# ---- SCRAM by hand: channel binding ----------------------------------------------------


def raw_tls(server, tls_max=None, direct_tls=False):
    """A raw client past TLS, at the SASL features. Returns (client, features)."""
    c = RawClient(server, direct_tls=direct_tls, tls_ctx=tls_context(server.cert, tls_max))
    _, feats = c.open()
    if not direct_tls:
        c.starttls()
        _, feats = c.open()
    return c, feats


def scram_exchange(c, mech, scram, cb_data=None):
    """Runs a SCRAM exchange; returns the final <success/> or <failure/> element."""
    c.send(f"<auth xmlns='{NS_SASL}' mechanism='{mech}'>{scram.first()}</auth>")
    el = c.stanza()
    if el.tag != q(NS_SASL, "challenge"):
        return el
    c.send(f"<response xmlns='{NS_SASL}'>{scram.final(el.text, cb_data)}</response>")
    return c.stanza()


def assert_bound_after_success(c, scram, el):
    assert el.tag == q(NS_SASL, "success"), el
    scram.check_success(el.text)  # the server proved it knows the password too
    c.restart()
    jid = c.bind("plus")
    assert jid == c.server.jid("alice", "plus")
    assert c.ping_server().get("type") == "result"


def test_scram_sha256_plus_tls_unique_on_tls12(server):
    c, feats = raw_tls(server, ssl.TLSVersion.TLSv1_2)
    with c:
        assert c.sock.version() == "TLSv1.2"
        assert "SCRAM-SHA-256-PLUS" in mechanisms(feats)
        assert "tls-unique" in cb_types(feats)  # XEP-0440; RFC 9266 keeps it for TLS 1.2
        cb = c.sock.get_channel_binding("tls-unique")
        scram = Scram("alice", server.password("alice"), "sha256", "tls-unique", cb)
        assert_bound_after_success(c, scram, scram_exchange(c, "SCRAM-SHA-256-PLUS", scram))


def test_scram_sha1_plus_tls_unique_on_tls12(server):
    c, feats = raw_tls(server, ssl.TLSVersion.TLSv1_2)
    with c:
        assert "SCRAM-SHA-1-PLUS" in mechanisms(feats)
        cb = c.sock.get_channel_binding("tls-unique")
        scram = Scram("alice", server.password("alice"), "sha1", "tls-unique", cb)
        assert_bound_after_success(c, scram, scram_exchange(c, "SCRAM-SHA-1-PLUS", scram))


def test_scram_plus_wrong_binding_refused(server):
    c, _ = raw_tls(server, ssl.TLSVersion.TLSv1_2)
    with c:
        cb = bytearray(c.sock.get_channel_binding("tls-unique"))
        cb[0] ^= 0xFF  # the binding of some other TLS session: a man in the middle
        scram = Scram("alice", server.password("alice"), "sha256", "tls-unique", bytes(cb))
        el = scram_exchange(c, "SCRAM-SHA-256-PLUS", scram)
        assert el.tag == q(NS_SASL, "failure"), el
        assert el.find(q(NS_SASL, "not-authorized")) is not None
    # The right password with the right binding still works afterwards.
    c, _ = raw_tls(server, ssl.TLSVersion.TLSv1_2)
    with c:
        scram = Scram("alice", server.password("alice"), "sha256", "tls-unique",
                      c.sock.get_channel_binding("tls-unique"))
        assert_bound_after_success(c, scram, scram_exchange(c, "SCRAM-SHA-256-PLUS", scram))


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "directtls"])
def test_scram_plus_tls_server_end_point_on_tls13(server, direct_tls):
    c, feats = raw_tls(server, direct_tls=direct_tls)
    with c:
        assert c.sock.version() == "TLSv1.3"
        types = cb_types(feats)
        assert "tls-server-end-point" in types
        assert "tls-unique" not in types  # undefined for TLS 1.3 (RFC 9266 §1)
        cb = cert_hash_for_end_point(c.sock.getpeercert(binary_form=True))
        scram = Scram("alice", server.password("alice"), "sha256", "tls-server-end-point", cb)
        assert_bound_after_success(c, scram, scram_exchange(c, "SCRAM-SHA-256-PLUS", scram))


def test_scram_tls_unique_refused_on_tls13(server):
    c, _ = raw_tls(server)
    with c:
        scram = Scram("alice", server.password("alice"), "sha256", "tls-unique", b"\0" * 12)
        el = scram_exchange(c, "SCRAM-SHA-256-PLUS", scram)
        assert el.tag == q(NS_SASL, "failure"), el


def test_scram_downgrade_flag_y_refused_on_tls12(server):
    """RFC 5802 §6: gs2 flag "y" says the client thinks the server cannot bind
    channels; a server that can (it offered -PLUS with tls-unique, RFC 5802's
    default binding) must fail the exchange."""
    c, feats = raw_tls(server, ssl.TLSVersion.TLSv1_2)
    with c:
        assert "SCRAM-SHA-256-PLUS" in mechanisms(feats)
        scram = Scram("alice", server.password("alice"), "sha256", gs2_flag="y")
        el = scram_exchange(c, "SCRAM-SHA-256", scram)
        assert el.tag == q(NS_SASL, "failure"), el
        assert [x.tag for x in el] == [q(NS_SASL, "not-authorized")]


def test_scram_flag_y_accepted_on_tls13(server):
    """The documented exception (common/auth/sasl.c, top comment): over TLS 1.3 a client
    that knows only tls-unique rightly finds no shared binding and says "y" (slixmpp
    1.8 does), so "y" is accepted there. Pinned so that a change is deliberate."""
    c, _ = raw_tls(server)
    with c:
        scram = Scram("alice", server.password("alice"), "sha256", gs2_flag="y")
        el = scram_exchange(c, "SCRAM-SHA-256", scram)
        assert el.tag == q(NS_SASL, "success"), el
        scram.check_success(el.text)


def test_scram_p_flag_with_non_plus_mechanism_refused(server):
    c, _ = raw_tls(server)
    with c:
        cb = cert_hash_for_end_point(c.sock.getpeercert(binary_form=True))
        scram = Scram("alice", server.password("alice"), "sha256", "tls-server-end-point", cb)
        el = scram_exchange(c, "SCRAM-SHA-256", scram)
        assert el.tag == q(NS_SASL, "failure"), el


# ---- failures ---------------------------------------------------------------------------


def test_wrong_password_not_authorized_and_others_served(server):
    async def scenario():
        async with Clients(server) as cs:
            bad = cs.new("bob", "wrongpw", password="not-bobs", mech="SCRAM-SHA-256")
            with pytest.raises(LoginFailed):
                await bad.start()
            assert bad.auth_failures == ["not-authorized"]
            # Everyone else is still served.
            alice = await cs.login("alice", "afterwrong", available=True)
            bob = await cs.login("bob", "afterwrong", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="still here", mtype="chat")
            m = await bob.next_message()
            assert m["body"] == "still here"

    run(scenario())


@pytest.mark.parametrize("user,password", [("bob", "wrong"), ("nosuchuser", "whatever")],
                         ids=["wrong-password", "unknown-user"])
def test_plain_failure_on_the_wire(server, user, password):
    c, _ = raw_tls(server)
    with c:
        el = c.auth_plain(user, password)
        assert el.tag == q(NS_SASL, "failure")
        assert [x.tag for x in el] == [q(NS_SASL, "not-authorized")]
        # RFC 6120 §6.4.5: the client may retry on the same stream.
        el = c.auth_plain("bob", server.password("bob"))
        assert el.tag == q(NS_SASL, "success")


def test_scram_unknown_user_looks_like_wrong_password(server):
    for user in ("nosuchuser", "bob"):
        c, _ = raw_tls(server)
        with c:
            scram = Scram(user, "wrong", "sha256")
            el = scram_exchange(c, "SCRAM-SHA-256", scram)
            assert el.tag == q(NS_SASL, "failure")
            assert [x.tag for x in el] == [q(NS_SASL, "not-authorized")]


def test_five_sasl_failures_policy_violation(server):
    """RFC 6120 §6.4.5: a reasonable number of retries (2 to 5), then the stream ends."""
    c, _ = raw_tls(server)
    with c:
        for _ in range(4):
            el = c.auth_plain("bob", "wrong")
            assert el.tag == q(NS_SASL, "failure")
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>AGJvYgB3cm9uZw==</auth>")  # \0bob\0wrong
        el = c.next()
        assert el[0] == "stanza" and el[1].tag == q(NS_SASL, "failure")
        assert c.expect_stream_error() == "policy-violation"


def test_sasl_before_tls_refused(server):
    with RawClient(server) as c:
        _, feats = c.open()
        starttls = feats.find(q(NS_TLS, "starttls"))
        assert starttls is not None and starttls.find(q(NS_TLS, "required")) is not None
        assert mechanisms(feats) == []  # nothing to authenticate with before TLS
        el = c.auth_plain("bob", server.password("bob"))
        assert el.tag == q(NS_SASL, "failure")
        assert el.find(q(NS_SASL, "encryption-required")) is not None


@pytest.mark.parametrize("tls_max", [None, ssl.TLSVersion.TLSv1_2], ids=["tls13", "tls12"])
def test_login_slixmpp_default_choice(server, tls_max):
    """slixmpp left to choose (as an application would): it must get in. On TLS 1.2 it
    picks SCRAM-SHA-256-PLUS with tls-unique, so this drives -PLUS from a real client.
    On TLS 1.3, slixmpp 1.8.3 first tries both -PLUS mechanisms with tls-unique, which
    TLS 1.3 does not have; both fail (not-authorized) and the third try, plain SCRAM,
    gets in, below the server's limit of five failures."""

    async def scenario():
        async with Clients(server) as cs:
            c = await cs.login("alice", "default-mech", tls_max=tls_max)
            assert c.tls_version() == ("TLSv1.2" if tls_max else "TLSv1.3")
            if tls_max:
                assert c.used_mech == "SCRAM-SHA-256-PLUS"
                assert c.auth_failures == []
            else:
                assert c.used_mech == "SCRAM-SHA-256"
                assert c.auth_failures == ["not-authorized"] * 2
            assert (await c.ping_server())["type"] == "result"

    run(scenario())
