"""
starlingctl beside a node: file names in the config relative to the config's folder,
whatever the working directory of starlingctl or of the node.
"""
import os
import subprocess

from conftest import BIN, Server, _stop_cleanly
from rawxmpp import login


def ctl_in(cwd, conf, *args):
    """starlingctl run from cwd with --config conf as given (relative to cwd or not)."""
    env = {**os.environ, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"}
    return subprocess.run(
        [str(BIN / "starlingctl"), "--config", str(conf), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


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
