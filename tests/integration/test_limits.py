"""
What one client address or one account may do (c2s/limit.h), on nodes with small limits
so the tests stay short: failed authentications per address and per account, the pace
of logins, connections per address; and the bounds before authentication: the size of
what an unauthenticated client may send, PLAIN verifications waiting for the worker.

Clients come from other loopback addresses (127.0.0.2...) to stand for other hosts.
"""
import base64
import time

from rawxmpp import NS_SASL, RawClient, Scram, StreamClosed, header, login, opened, q

SUCCESS = ["success"]
WRONG = ["failure", "not-authorized"]
REFUSED = ["failure", "temporary-auth-failure"]


def tls_stream(server, source="127.0.0.1"):
    """A raw client from `source`, past STARTTLS, at the SASL features."""
    c = RawClient(server, source=source)
    c.open()
    c.starttls()
    c.open()
    return c


def answer(el):
    """<success/> as ['success'], <failure><x/></failure> as ['failure', 'x']."""
    return [el.tag.split("}")[1]] + [x.tag.split("}")[1] for x in el]


def plain(server, user, password, source="127.0.0.1"):
    with tls_stream(server, source) as c:
        return answer(c.auth_plain(user, password))


def answers_as_they_come(clients, timeout):
    """Waits for the first stanza of each client: [(seconds, answer)] in order of arrival."""
    t0 = time.monotonic()
    got = {}
    while len(got) < len(clients) and time.monotonic() - t0 < timeout:
        for i, c in enumerate(clients):
            if i in got:
                continue
            c.pump(time.monotonic() + 0.01)
            stanzas = [el for kind, el in c.events if kind == "stanza"]
            if stanzas:
                got[i] = (time.monotonic() - t0, answer(stanzas[0]))
    assert len(got) == len(clients), f"{len(clients) - len(got)} answers missing after {timeout}s"
    return sorted(got.values())


def logins_at_once(server, n, user, timeout):
    """n clients past STARTTLS send PLAIN logins of `user` at once: the answers, as
    answers_as_they_come() gives them."""
    token = base64.b64encode(f"\0{user}\0{server.password(user)}".encode()).decode()
    clients = [tls_stream(server) for _ in range(n)]
    try:
        for c in clients:
            c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>{token}</auth>")
        return answers_as_they_come(clients, timeout)
    finally:
        for c in clients:
            c.close()


# ---- failed authentications ----------------------------------------------------------


def test_failed_logins_from_one_address_refused(make_server):
    """Failing on three accounts from one address: its next attempts get
    temporary-auth-failure (RFC 6120 §6.5.12) without a password being tested, even
    the right one; other addresses are served."""
    s = make_server(c2s={"auth_failures_per_address": 3, "auth_failure_window": 3600})
    for user in ("alice", "bob", "carol"):
        assert plain(s, user, "wrong", "127.0.0.2") == WRONG
    assert plain(s, "dave", "wrong", "127.0.0.2") == REFUSED
    assert plain(s, "dave", s.password("dave"), "127.0.0.2") == REFUSED
    assert plain(s, "dave", s.password("dave"), "127.0.0.3") == SUCCESS


def test_stale_password_does_not_lock_out_its_address(make_server):
    """A device behind an office's NAT that keeps retrying an old password counts once
    for the address: the others there still log in."""
    s = make_server(
        c2s={"auth_failures_per_address": 2, "auth_failures_per_account": 100, "auth_failure_window": 3600}
    )
    for _ in range(8):
        assert plain(s, "alice", "stale", "127.0.0.2") == WRONG
    assert plain(s, "bob", s.password("bob"), "127.0.0.2") == SUCCESS


def test_failed_logins_on_one_account_refused(make_server):
    """Three failures on one account, from three addresses: its next logins are refused
    from anywhere, with PLAIN and SCRAM alike (before a challenge); other accounts are
    served."""
    s = make_server(c2s={"auth_failures_per_account": 3, "auth_failure_window": 3600})
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert plain(s, "bob", "wrong", source) == WRONG
    assert plain(s, "bob", s.password("bob"), "127.0.0.5") == REFUSED
    with tls_stream(s, "127.0.0.5") as c:
        scram = Scram("bob", s.password("bob"))
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256'>{scram.first()}</auth>")
        assert answer(c.stanza()) == REFUSED
    assert plain(s, "alice", s.password("alice"), "127.0.0.5") == SUCCESS


def test_failures_that_test_no_password_are_not_counted(make_server):
    """A mechanism the client cannot have (here -PLUS with tls-unique, which TLS 1.3
    lacks: slixmpp spends two attempts so at each login) tests no password: it does not
    use up an allowance of one."""
    s = make_server(c2s={"auth_failures_per_account": 1, "auth_failures_per_address": 1})
    with tls_stream(s) as c:
        for _ in range(4):
            scram = Scram("alice", s.password("alice"), "sha256", "tls-unique", b"\0" * 12)
            c.send(f"<auth xmlns='{NS_SASL}' mechanism='SCRAM-SHA-256-PLUS'>{scram.first()}</auth>")
            assert answer(c.stanza()) == WRONG
    assert plain(s, "alice", s.password("alice")) == SUCCESS


# ---- the pace of logins ---------------------------------------------------------------


def test_burst_of_logins_waits_its_turn(make_server):
    """Eight logins at once from one address, at 2 a second after a burst of 2: all
    succeed, two at once and the others later (the last about 3 s later), whichever of
    the four threads the kernel hands each connection to."""
    s = make_server(c2s={"login_rate": 2, "login_burst": 2, "threads": 4})
    got = logins_at_once(s, 8, "alice", 15)
    assert [a for _, a in got] == [SUCCESS] * 8, got
    assert got[1][0] < 1.0, got  # the burst
    assert got[-1][0] >= 2.0, got  # paced: not all at once


def test_login_whose_turn_is_too_late_refused_at_once(make_server):
    """A turn that would come too close to the handshake deadline is refused with
    temporary-auth-failure at once, not left to time out. One login a second, 4 s to
    authenticate, 2 s of margin (the thread's clock moves by seconds): the turns at 0
    and 1 s (and perhaps 2 s) are kept, the later ones refused."""
    s = make_server(c2s={"login_rate": 1, "login_burst": 1, "handshake_timeout": 4})
    got = logins_at_once(s, 6, "alice", 10)
    answers = [a for _, a in got]
    assert answers.count(SUCCESS) >= 2 and answers.count(REFUSED) >= 2, got
    assert set(map(tuple, answers)) <= {tuple(SUCCESS), tuple(REFUSED)}, got
    assert all(t < 1.5 for t, a in got if a == REFUSED), got


# ---- connections per address ----------------------------------------------------------


def served(server, source):
    """Does a new stream from `source` get its features (rather than a stream error)?"""
    with RawClient(server, source=source) as c:
        c.send(header())
        try:
            c.read_header_and_features()
            return True
        except StreamClosed:
            return False


def test_connections_per_address(make_server):
    """One connection more than c2s.max_connections_per_address from one address gets
    policy-violation at its stream header, on either port; another address is served,
    and so is the first again once one of its connections closes."""
    s = make_server(c2s={"max_connections_per_address": 3})
    held = [opened(s, source="127.0.0.2") for _ in range(3)]
    try:
        with RawClient(s, source="127.0.0.2") as c:
            c.send(header())
            assert c.expect_stream_error() == "policy-violation"
        with RawClient(s, source="127.0.0.2", direct_tls=True) as c:
            c.send(header())
            assert c.expect_stream_error() == "policy-violation"
        assert served(s, "127.0.0.3")
        held.pop().close()
        deadline = time.monotonic() + 5
        while not served(s, "127.0.0.2"):  # until the server has seen the close
            assert time.monotonic() < deadline, "the closed connection still counts"
            time.sleep(0.1)
    finally:
        for c in held:
            c.close()


# ---- before authentication ------------------------------------------------------------


def test_small_stanza_limit_before_auth(plain_server):
    """Before authentication an element may have c2s.max_stanza_size_preauth bytes (8K
    by default), not max_stanza_size (20000 on this node): over it, policy-violation."""
    with opened(plain_server) as c:
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>" + "A" * 7000 + "</auth>")
        assert c.stanza().tag == q(NS_SASL, "failure")  # within the limit: SASL's answer
        c.send(f"<auth xmlns='{NS_SASL}' mechanism='PLAIN'>" + "A" * 9000 + "</auth>")
        assert c.expect_stream_error() == "policy-violation"


def test_small_stanza_limit_lifts_after_auth(plain_server):
    with login(plain_server, "alice") as a:
        body = "x" * 15000
        a.message(a.jid, body)
        assert a.wait_message(body).get("from") == a.jid


def test_plain_verifications_waiting_are_bounded(make_server):
    """c2s.max_plain_pending = 2 on one thread, and PBKDF2 made slow (a million
    iterations): of eight PLAIN logins at once, two wait for the worker and get in; the
    others get temporary-auth-failure at once instead of queueing behind them."""
    s = make_server(
        accounts={"bob": "bob-pw"}, c2s={"scram_iterations": 1000000, "max_plain_pending": 2, "threads": 1}
    )
    got = logins_at_once(s, 8, "bob", 30)
    answers = [a for _, a in got]
    assert answers.count(SUCCESS) >= 2 and answers.count(REFUSED) >= 3, got
    assert set(map(tuple, answers)) <= {tuple(SUCCESS), tuple(REFUSED)}, got
