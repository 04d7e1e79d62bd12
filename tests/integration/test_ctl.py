"""
starlingctl beside a node: file names in the config relative to the config's folder
(whatever the working directory of starlingctl or of the node), import-users (one
transaction; a bad line names its file and line and imports nothing), and gencert's test CA
(certificates OpenSSL verifies both ways, with the names asked for).
"""
import os
import ssl
import subprocess

import pytest

from conftest import BIN, Server, _stop_cleanly
from rawxmpp import NS_SASL, RawClient, login, q
from slixclient import Clients, run


def ctl_in(cwd, conf, *args, input=None):
    """starlingctl run from cwd with --config conf as given (relative to cwd or not)."""
    env = {**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
    return subprocess.run(
        [str(BIN / "starlingctl"), "--config", str(conf), *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def ctl(cwd, *args):
    """starlingctl without a config."""
    env = {**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
    return subprocess.run(
        [str(BIN / "starlingctl"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=env
    )


def plain_fails(server, user, password):
    """True when PLAIN with this password gets <failure/> (over STARTTLS)."""
    with RawClient(server) as c:
        c.open()
        c.starttls()
        c.open()
        return c.auth_plain(user, password).tag == q(NS_SASL, "failure")


# ---- relative file names ------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    etc, elsewhere = tmp_path / "etc", tmp_path / "elsewhere"
    for d in (etc / "data", etc / "tls", elsewhere):
        d.mkdir(parents=True)
    s = Server(
        etc,
        accounts={"alice": "alice-pw"},
        storage={"path": "data/node.db"},
        c2s={"certificate": "tls/localhost.crt", "key": "tls/localhost.key"},
    )
    s.cert, s.key = etc / "tls" / "localhost.crt", etc / "tls" / "localhost.key"
    s.write_config()
    # From another directory, with the config named relatively and absolutely.
    conf = os.path.relpath(s.conf, elsewhere)
    r = ctl_in(elsewhere, conf, "gencert")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"wrote {s.cert} and {s.key} ")
    r = ctl_in(elsewhere, conf, "adduser", "alice@localhost", "alice-pw")
    assert r.returncode == 0, r.stderr
    r = ctl_in("/", s.conf, "users")
    assert (r.returncode, r.stdout) == (0, "alice@localhost\n"), r.stderr
    assert s.cert.exists() and s.key.exists() and (etc / "data" / "node.db").exists()

    # The node too, started from yet another directory.
    s.cwd = elsewhere
    s.start()
    try:
        with login(s, "alice") as c:
            assert c.jid.startswith("alice@localhost/")
        # c2s keeps its SASL secret beside the database it was told of.
        assert (etc / "data" / "node.db.secret").exists()
    finally:
        _stop_cleanly(s)
    assert list(elsewhere.iterdir()) == []


# ---- import-users -------------------------------------------------------------------------


def test_import_users_while_the_node_runs(server, tmp_path):
    lst = tmp_path / "users.txt"
    # A comment, a blank line, CRLF, tabs, a bare localpart, spaces inside and at the
    # end of a password (the rest of the line is the password).
    lst.write_bytes(
        b"# accounts for the import test\n"
        b"\n"
        b"imp-ann@localhost correct horse battery\r\n"
        b"  imp-bea\t\tb\xc3\xa9a-pw  \n"
        b"imp-cid@localhost cid-pw"
    )
    r = server.ctl("import-users", str(lst))
    assert r.stdout == "imported 3 accounts\n"
    users = server.ctl("users").stdout.splitlines()
    assert {"imp-ann@localhost", "imp-bea@localhost", "imp-cid@localhost"} <= set(users)
    server.accounts.update({"imp-ann": "correct horse battery", "imp-bea": "béa-pw  ", "imp-cid": "cid-pw"})
    with login(server, "imp-ann"), login(server, "imp-bea"):
        pass
    assert plain_fails(server, "imp-bea", "béa-pw")

    async def scenario():  # both SCRAM credentials were made
        async with Clients(server) as cs:
            for mech in ("SCRAM-SHA-1", "SCRAM-SHA-256"):
                c = await cs.login("imp-cid", mech, mech=mech)
                assert c.used_mech == mech

    run(scenario())


def test_import_users_bad_lines_import_nothing(server, tmp_path):
    lst = tmp_path / "bad.txt"
    lst.write_text(
        "imp-new@localhost fine\n"  # 1: good, but must not be created
        "alice@localhost other\n"  # 2: exists
        "x@@localhost pw\n"  # 3
        "imp-x@example.org pw\n"  # 4: another domain
        "imp-nopw@localhost\n"  # 5
        "imp-new@localhost again\n"  # 6: the same as line 1
        "imp-sp@localhost    \n"  # 7: blanks only
        "imp-res@localhost/phone pw\n"  # 8: a full JID
    )
    before = server.ctl("users").stdout
    r = server.ctl("import-users", str(lst), check=False)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"starlingctl: {lst}:2: the account exists (--replace sets its password)",
        f"starlingctl: {lst}:3: x@@localhost is not a valid JID",
        f"starlingctl: {lst}:4: imp-x@example.org is not an account of localhost",
        f"starlingctl: {lst}:5: no password after the JID",
        f"starlingctl: {lst}:6: the same account as line 1",
        f"starlingctl: {lst}:7: no password after the JID",
        f"starlingctl: {lst}:8: imp-res@localhost/phone is not a valid JID",
        f"starlingctl: import-users: 7 bad line(s) in {lst}, nothing imported",
    ]
    assert server.ctl("users").stdout == before
    assert plain_fails(server, "alice", "other")


def test_import_users_replace_from_stdin(server):
    (old,) = server.new_users(1, prefix="imp-r")
    r = ctl_in("/", server.conf, "import-users", "--replace", "-", input="")  # nothing
    assert (r.returncode, r.stdout) == (0, "imported 0 accounts: 0 created, 0 passwords replaced\n")
    r = ctl_in(
        "/", server.conf, "import-users", "--replace", "-", input=f"{old} new-pw\nimp-rnew fresh-pw\n"
    )
    assert (r.returncode, r.stdout) == (0, "imported 2 accounts: 1 created, 1 passwords replaced\n"), r.stderr
    assert plain_fails(server, old, f"{old}-pw")
    server.accounts.update({old: "new-pw", "imp-rnew": "fresh-pw"})
    with login(server, old), login(server, "imp-rnew"):
        pass
    # Without --replace the same input is refused, at the line of the existing account.
    r = ctl_in("/", server.conf, "import-users", "-", input=f"imp-rother pw\n{old} x\n")
    assert r.returncode == 1
    assert r.stderr.splitlines()[0] == "starlingctl: <stdin>:2: the account exists (--replace sets its password)"


def test_import_users_password_saslprep_refuses(server):
    # Found when the passwords are prepared (RFC 4013: no control characters, UTF-8).
    r = ctl_in("/", server.conf, "import-users", "-", input="imp-s1 fine\nimp-s2 a\x07b\n")
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "starlingctl: <stdin>:2: the password is not UTF-8 that SASLprep accepts",
        "starlingctl: import-users: 1 bad line(s) in <stdin>, nothing imported",
    ]
    assert "imp-s1@localhost" not in server.ctl("users").stdout


# ---- gencert --ca -------------------------------------------------------------------------


def openssl_handshake(ca, server_crt, server_key, name, client_crt=None, client_key=None):
    """A TLS handshake in memory between Python's OpenSSL as server (asking for a client
    certificate when client_crt is given) and as client checking `name`; both trust only ca
    and verify strictly (RFC 5280 profile, as newer OpenSSL peers do). Raises ssl.SSLError
    when either side refuses."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(server_crt, server_key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.load_verify_locations(ca)
    cctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if client_crt:
        sctx.verify_mode = ssl.CERT_REQUIRED
        sctx.load_verify_locations(ca)
        sctx.verify_flags |= ssl.VERIFY_X509_STRICT
        cctx.load_cert_chain(client_crt, client_key)
    bios = [ssl.MemoryBIO() for _ in range(4)]
    srv = sctx.wrap_bio(bios[0], bios[1], server_side=True)
    cli = cctx.wrap_bio(bios[2], bios[3], server_hostname=name)
    done = [False, False]
    for _ in range(20):
        for i, (end, inb, outb, peer_in) in enumerate(
            ((cli, bios[2], bios[3], bios[0]), (srv, bios[0], bios[1], bios[2]))
        ):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(outb.read())
        if all(done):
            # TLS 1.3: the server judges the client's certificate on its last flight.
            srv.write(b"x")
            cli.write(b"y")
            bios[2].write(bios[1].read())
            bios[0].write(bios[3].read())
            assert srv.read(1) == b"y" and cli.read(1) == b"x"
            return cli.getpeercert()
    raise AssertionError("handshake did not finish")


def test_gencert_ca_certificates_verify_with_openssl(tmp_path):
    r = ctl(tmp_path, "gencert", "--ca", "ca", "--san", "*.a.test", "--san", "XMPP:a.test",
            "--san", "SRV:_xmpp-server.a.test", "a.test", "a.crt", "a.key")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "made the CA ca/ca.crt (peers trust it) and its key ca/ca.key",
        "wrote a.crt and a.key for a.test, signed by ca/ca.crt",
    ]
    r = ctl(tmp_path, "gencert", "--ca", "ca", "--days", "30", "b.test", "b.crt", "b.key")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "wrote b.crt and b.key for b.test, signed by ca/ca.crt\n"  # the same CA
    assert oct((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "a.key").stat().st_mode & 0o777) == "0o600"

    ca, a, b = (str(tmp_path / f) for f in ("ca/ca.crt", "a", "b"))
    peer = openssl_handshake(ca, a + ".crt", a + ".key", "muc.a.test", b + ".crt", b + ".key")
    sans = peer["subjectAltName"]
    assert ("DNS", "a.test") in sans and ("DNS", "*.a.test") in sans
    assert ("othername", "XmppAddr:a.test") in sans
    assert ("othername", "SRVName:_xmpp-server.a.test") in sans
    # b as the server for its own name; a's wildcard does not make it b.
    openssl_handshake(ca, b + ".crt", b + ".key", "b.test", a + ".crt", a + ".key")
    with pytest.raises(ssl.SSLCertVerificationError):
        openssl_handshake(ca, b + ".crt", b + ".key", "a.test")

    # A self-signed certificate is not signed by the CA.
    assert ctl(tmp_path, "gencert", "c.test", "c.crt", "c.key").returncode == 0
    with pytest.raises(ssl.SSLCertVerificationError):
        openssl_handshake(ca, str(tmp_path / "c.crt"), str(tmp_path / "c.key"), "c.test")

    # Half a CA is refused rather than replaced.
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "ca.crt").write_bytes((tmp_path / "ca" / "ca.crt").read_bytes())
    r = ctl(tmp_path, "gencert", "--ca", "half", "d.test", "d.crt", "d.key")
    assert r.returncode == 1 and "half has ca.crt but not ca.key" in r.stderr
    assert not (tmp_path / "d.crt").exists()
    r = ctl(tmp_path, "gencert", "--san", "URI:xmpp:a.test", "d.test", "d.crt", "d.key")
    assert r.returncode == 1 and "invalid" in r.stderr
    # A name too long for a certificate is refused, never cut to one that fits.
    too_long = "XMPP:" + "\u00e9" * 200 + ".test"
    r = ctl(tmp_path, "gencert", "--san", too_long, "d.test", "d.crt", "d.key")
    assert r.returncode == 2 and "too long" in r.stderr
    assert not (tmp_path / "d.crt").exists()


def test_gencert_ca_with_a_config(tmp_path):
    s = Server(tmp_path, accounts={})
    s.write_config()
    r = ctl_in(tmp_path, s.conf, "gencert", "--ca", str(tmp_path / "ca"))
    assert r.returncode == 0, r.stderr
    assert f"wrote {s.cert} and {s.key} for localhost, signed by " in r.stdout
    openssl_handshake(str(tmp_path / "ca" / "ca.crt"), str(s.cert), str(s.key), "localhost")
    assert ctl_in(tmp_path, s.conf, "gencert", "extra").returncode == 2  # no positional args
