"""
Faults: a child process killed with SIGKILL and restarted by the supervisor, and an
orderly shutdown on SIGTERM. Each test has a node of its own (make_server) and signals
only the processes of that node, by PID.
"""
import asyncio
import os
import signal
import time

from conftest import pid_alive
from rawxmpp import RawClient, login, stanza_error_condition
from slixclient import Clients, first_of, run


def raw_login(server, user, resource):
    return login(server, user, resource, available=True)


def test_kill_c2s_supervisor_restarts_it(make_server):
    # With resource_conflict = refuse, a session the router failed to drop would make
    # binding the same resource again fail with <conflict/>.
    s = make_server(expect_stable=False, c2s={"resource_conflict": "refuse"})
    bob = raw_login(s, "bob", "phone")
    carol = raw_login(s, "carol", "old")
    old_c2s, router = s.c2s_pid(), s.router_pid()

    os.kill(old_c2s, signal.SIGKILL)
    for c in (bob, carol):  # their connections die with the process
        assert c.wait_eof(5)
        c.close()

    new_c2s = s.wait_child_replaced("starling-c2s", old_c2s)
    assert new_c2s != old_c2s
    s.wait_serving(c2s=2)  # the new c2s told the supervisor it serves
    assert s.router_pid() == router, "the router should have survived"

    with raw_login(s, "bob", "phone") as bob, raw_login(s, "alice", "desk") as alice:
        assert bob.jid == "bob@localhost/phone"  # not a conflict: the old one is gone
        alice.message(bob.jid, "after the c2s restart")
        assert bob.wait_message("after the c2s restart").get("from") == alice.jid
        bob.message(alice.jid, "back")
        assert alice.wait_message("back").get("from") == bob.jid
        # carol's session died with the old c2s and the router dropped it: her full JID
        # leads nowhere. A chat message to it is handled as if to her bare JID, and with
        # no available resource it is stored (RFC 6121 §8.5.3.2.1, §8.5.2.2), not
        # written to a session that is not there; an iq gets service-unavailable.
        alice.message("carol@localhost/old", "hello?")
        alice.send("<iq type='get' id='q1' to='carol@localhost/old'><query xmlns='jabber:iq:version'/></iq>")
        err = alice.wait_for(lambda e: e.get("id") == "q1")
        assert stanza_error_condition(err) == ("cancel", "service-unavailable")
        assert err.get("from") == "carol@localhost/old"
        with raw_login(s, "carol", "new") as carol:
            m = carol.wait_message("hello?")
            assert m.get("from") == alice.jid
            assert m.find("{urn:xmpp:delay}delay") is not None, "not from offline storage"
    assert s.restarts() and len(s.restarts()) == 1, s.restarts()


def test_kill_router_clients_stay_and_chat_again(make_server):
    s = make_server(expect_stable=False)

    async def scenario():
        async with Clients(s) as cs:
            alice = await cs.login("alice", "desk", available=True)
            high = await cs.login("bob", "high", available=True, priority=5)
            low = await cs.login("bob", "low", available=True, priority=1)
            alice.send_message(mto="bob@localhost", mbody="before", mtype="chat")
            assert (await high.next_message())["body"] == "before"
            old_router, c2s = s.router_pid(), s.c2s_pid()

            os.kill(old_router, signal.SIGKILL)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, s.wait_child_replaced, "starling-router", old_router)
            await loop.run_in_executor(None, lambda: s.wait_serving(router=2))
            assert s.c2s_pid() == c2s, "c2s should have survived the router"

            # c2s registers its sessions (and their presence) with the new router. Each
            # c2s thread does so on its own, so a message may beat the addressee's
            # re-registration: retry on an error, for a few seconds at most. "before"
            # may come again: its ticket waits for its archive row (router/mam.c), so
            # the new router replays it (at least once, never lost).
            deadline = loop.time() + 10
            for i in range(1000):
                alice.send_message(mto="bob@localhost", mbody=f"after {i}", mtype="chat")
                got = await first_of(high.next_message(lambda m: m["body"] != "before", timeout=10),
                                     alice.next_message(timeout=10))
                if got["type"] != "error":
                    assert got["body"] == f"after {i}"
                    break
                assert loop.time() < deadline, "bob never became reachable again"
                await asyncio.sleep(0.05)
            # The priorities came back with the sessions: only "high" got it.
            alice.send_message(mto=low.boundjid.full, mbody="marker", mtype="chat")
            assert (await low.next_message())["body"] == "marker"
            high.send_message(mto=alice.boundjid.full, mbody="back", mtype="chat")
            m = await alice.next_message(lambda m: m["type"] != "error")
            assert (m["body"], m["from"].full) == ("back", high.boundjid.full)
            for c in (alice, high, low):
                assert not c.gone.done(), f"{c.boundjid} was disconnected"
            # New logins work too, and see the old sessions.
            carol = await cs.login("carol", "new", available=True)
            carol.send_message(mto=low.boundjid.full, mbody="new here", mtype="chat")
            assert (await low.next_message())["body"] == "new here"
            assert await alice.ping_server()

    run(scenario(), timeout=40)
    assert len(s.restarts()) == 1, s.restarts()


def test_sigterm_system_shutdown_and_all_exit(make_server):
    s = make_server(expect_stable=False)
    kids = s.children()
    assert set(kids) == {"starling-c2s", "starling-router", "starling-s2s"}
    bound = raw_login(s, "alice", "desk")
    bound_tls = RawClient(s, direct_tls=True)
    bound_tls.login("bob", s.password("bob"), "phone")
    unauth = RawClient(s)
    unauth.open()

    async def slix_client_sees_shutdown():
        async with Clients(s) as cs:
            carol = await cs.login("carol", "x", available=True)
            loop = asyncio.get_running_loop()
            loop.call_soon(s.proc.send_signal, signal.SIGTERM)
            err = await carol.next_stream_error()
            assert err["condition"] == "system-shutdown"
            await carol.wait_gone()

    t0 = time.monotonic()
    run(slix_client_sees_shutdown())
    with bound, bound_tls, unauth:
        for c in (bound, bound_tls, unauth):
            assert c.expect_stream_error() == "system-shutdown"
    assert s.proc.wait(10) == 0
    assert time.monotonic() - t0 < 10
    for name, pid in kids.items():
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not pid_alive(pid), f"{name} ({pid}) still runs"


def test_every_thread_runs_under_sched_batch(server):
    """The supervisor sets SCHED_BATCH once; every process and thread of the node inherits
    it (no wake-up preemption between the stages of a stanza's path)."""
    from conftest import proc_children

    pids = [server.proc.pid] + proc_children(server.proc.pid)
    assert len(pids) >= 3  # supervisor, router, c2s
    tids = [(pid, int(t)) for pid in pids for t in os.listdir(f"/proc/{pid}/task")]
    assert len(tids) > len(pids)  # the workers' threads too
    for pid, tid in tids:
        assert os.sched_getscheduler(tid) == os.SCHED_BATCH, (pid, tid)
