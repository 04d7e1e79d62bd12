"""
A node whose store is PostgreSQL (storage.backend = "postgresql"), against a real
PostgreSQL the module starts (pg.py): accounts made with starlingctl land in the
database and log in, rosters and offline messages are kept there and survive a
restart of the node, and the node rides out the database restarting under it.
"""
import pytest

from conftest import free_port, proc_libs
from im import connect, is_message, roster_items
from pg import PostgreSQL
from slixclient import Clients, run


@pytest.fixture(scope="module")
def pg():
    p = PostgreSQL().start()
    yield p
    p.remove()


@pytest.fixture
def pg_node(pg, make_server):
    def make(db="node"):
        return make_server(storage={"backend": "postgresql", "dsn": pg.create_database(db),
                                    "timeout": 5})
    return make


def test_accounts_roster_offline_in_postgresql(pg, pg_node):
    s = pg_node()
    # The accounts starlingctl made (the node's setup) are rows in PostgreSQL.
    assert pg.sql("node", "SELECT count(*) FROM accounts") == str(len(s.accounts))
    assert pg.sql("node", "SELECT version FROM schema_version") == "6"  # every migration of store_pgsql.c ran
    rn, = s.new_users(1, "pgu")  # made while the node runs: seen at once
    R = f"{rn}@localhost"

    async def before(server):
        async with Clients(server) as cs:
            alice = await cs.login("alice", "phone", roster=True)
            bob = await cs.login("bob", "laptop", available=True)
            await alice.update_roster("bob@localhost", name="Bobby", groups=["Friends"], timeout=5)
            alice.send_message(mto="bob@localhost", mbody="hello over postgresql", mtype="chat")
            got = await bob.next_message(lambda m: m["body"] == "hello over postgresql")
            assert got["from"].bare == "alice@localhost"
            # To someone offline: stored.
            alice.send_message(mto=R, mbody="kept in postgresql", mtype="chat")
            await alice.ping_jid(R)  # answered after the message was handled in R's shard
    run(before(s))
    assert pg.sql("node", "SELECT name FROM roster WHERE username = 'alice'") == "Bobby"
    assert pg.sql("node", f"SELECT count(*) FROM offline WHERE username = '{rn}'") == "1"

    s.restart()

    with connect(s, "alice", "again") as a:
        items = roster_items(a.roster())
        assert items["bob@localhost"].get("name") == "Bobby"
    with connect(s, rn, "r", available=True) as r:
        m = r.wait_for(is_message(), what="the offline message")
        assert "kept in postgresql" in "".join(m.itertext())
        r.store_barrier()
    assert pg.sql("node", f"SELECT count(*) FROM offline WHERE username = '{rn}'") == "0"


def test_node_rides_out_a_database_restart(pg, pg_node):
    s = pg_node("restart")
    pg.stop()
    pg.start()
    # The store reconnects by itself: a login (credentials from the store) works again
    # within storage.timeout, with no restart of the node.
    import time
    deadline = time.monotonic() + 15
    while True:
        try:
            with connect(s, "alice", "back") as a:
                assert a.ping("localhost").get("type") == "result"
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert "connection lost" in s.log_text()
    assert "connection back" in s.log_text()
    s.assert_stable()


def test_postgresql_node_loads_libpq(pg_node):
    # Loaded at store_open() (common/store/store_pgsql.h), in each process with a store.
    s = pg_node("libs")
    kids = s.children()
    for exe in ("starling-c2s", "starling-router"):
        assert "libpq.so.5" in proc_libs(kids[exe]), exe


def test_arbiter_refuses_logins_while_the_database_is_away(pg, pg_node, make_server):
    """The arbiter (README "Cluster"): unreachable PostgreSQL for cluster.dead_after (2 s
    here) fails /ready with the reason and refuses new logins as a drain does, while the
    sessions there go on; once it is back, /ready and logins are too."""
    import time
    from test_admin import get, new_login_refused, wait_until
    port = free_port()
    s = make_server(storage={"backend": "postgresql", "dsn": pg.create_database("arbiter"),
                             "timeout": 5},
                    admin={"listen": f"127.0.0.1:{port}"},
                    cluster={"heartbeat": 1, "dead_after": 2})
    s.admin_port = port
    wait_until(lambda: get(s, "/ready")[0] == 200, what="/ready at start")
    held = connect(s, "alice", "held")
    try:
        pg.stop()
        t0 = time.monotonic()
        wait_until(lambda: get(s, "/ready")[0] == 503, timeout=20, what="/ready failing")
        assert time.monotonic() - t0 >= 1.5  # not before dead_after
        assert get(s, "/ready")[::2] == (503, "storage unreachable\n")
        assert get(s, "/health")[0] == 200
        cond, c = new_login_refused(s)
        assert cond == "system-shutdown"
        c.close()
        assert s.log_text().count("storage unreachable for 2 s") == 1
    finally:
        pg.start()
    wait_until(lambda: get(s, "/ready")[0] == 200, timeout=20, what="/ready back")
    with connect(s, "alice", "back") as a:
        assert a.ping("localhost").get("type") == "result"
    assert s.log_text().count("storage reachable again") == 1
    held.close()
    s.assert_stable()
