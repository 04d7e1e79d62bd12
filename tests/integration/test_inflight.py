"""
Connections that end while something of theirs is in flight: a bind the router has not
answered yet, a stanza held back because the ring to the router is full. A process of
the node (by its PID) is held still with SIGSTOP so that the request stays in flight;
SIGCONT lets it go on. Each test has a node of its own.
"""
import os
import signal
import socket
import struct
import time

import pytest

from rawxmpp import NS_CLIENT, RawClient, login, q


def _fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def _state(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


class stopped:
    """Holds a process still (SIGSTOP) for the duration of a with block."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        # kill() returns before every thread has stopped: one the signal has not reached
        # yet may still take a frame.
        deadline = time.monotonic() + 5
        while not all(_state(self.pid, tid) == "T" for tid in os.listdir(f"/proc/{self.pid}/task")):
            assert time.monotonic() < deadline, f"{self.pid} did not stop"
            time.sleep(0.001)
        return self

    def __exit__(self, *a):
        os.kill(self.pid, signal.SIGCONT)


def _until_bind(s, user):
    """A raw client authenticated (STARTTLS, PLAIN, restart), not yet bound."""
    c = RawClient(s)
    c.open()
    c.starttls()
    c.open()
    el = c.auth_plain(user, s.password(user))
    assert el.tag.endswith("success"), el.tag
    c.restart()
    return c


@pytest.mark.parametrize("held", ["starling-router", "starling-c2s"])
def test_close_mid_bind_leaves_no_session(make_server, held):
    # With resource_conflict = refuse, a session left behind in the router would make
    # every later bind of that resource fail with <conflict/>, until the router restarts.
    s = make_server(c2s={"resource_conflict": "refuse"})
    c = _until_bind(s, "bob")
    with stopped(s.children()[held]):
        # Router stopped: the bind reaches it only after c2s has seen the close.
        # c2s stopped: it reads the bind and the end of the connection together.
        c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<resource>phone</resource></bind></iq>")
        time.sleep(0.5)
        c.close()
        time.sleep(0.5)
    with login(s, "bob", "phone") as again:
        assert again.jid == "bob@localhost/phone"


def test_paused_connections_resume_when_slots_are_reused(make_server):
    # One c2s thread and one shard, so every sender shares one ring to the router, as
    # small as a node makes it (two of the largest frames: 2 x (10000 + 64 KiB)).
    s = make_server(
        # A paused connection does not read, so c2s learns that its client is gone when
        # a write fails: a keepalive each second writes.
        c2s={"threads": 1, "require_encryption": False, "allow_plain_without_tls": True,
             "max_stanza_size": 10000, "keepalive": 1},
        router={"shards": 1},
        shm={"ring_size": 262144},
    )
    bob = login(s, "bob", "desk", available=True)
    senders = [login(s, "alice", f"s{i}") for i in range(6)]
    sent = {i: 0 for i in range(len(senders))}
    fresh = []
    c2s = s.c2s_pid()
    body = "x" * 8000
    with stopped(s.router_pid()):
        # The first sender fills the ring and is paused; each next one is paused at its
        # first message. The thread's list of paused connections: s5, s4, ... s0.
        for i, a in enumerate(senders):
            for _ in range(40 if i == 0 else 3):
                a.message(bob.jid, f"{i} {sent[i]} {body}")
                sent[i] += 1
            time.sleep(0.3)
        # Paused connections close, and new connections take their slots at once (a
        # slot freed last is the first reused): s1 and s3 are behind others in the list.
        for i in (1, 3):
            before = _fds(c2s)
            senders[i].sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            senders[i].close()  # with a reset
            deadline = time.monotonic() + 10
            while _fds(c2s) >= before:
                assert time.monotonic() < deadline, "c2s did not notice a client was gone"
                time.sleep(0.002)  # until c2s has closed its socket and freed the slot
            fresh.append(RawClient(s))
            del sent[i]
            time.sleep(0.3)
    # Every remaining sender's messages go through, promptly.
    got = {i: 0 for i in sent}
    deadline = time.monotonic() + 15
    while got != sent:
        left = deadline - time.monotonic()
        assert left > 0, f"messages arrived {got} of {sent}"
        try:
            m = bob.wait_message(timeout=left)
        except AssertionError:
            raise AssertionError(f"messages arrived {got} of {sent}") from None
        i, n, _ = m.findtext(q(NS_CLIENT, "body")).split(" ", 2)
        if int(i) not in got:
            continue  # a closed sender's, in the ring before it closed
        assert int(n) == got[int(i)], f"sender {i}: message {n} came after {got[int(i)]}"
        got[int(i)] += 1
    # The thread did not hang: the new connections log in and chat, and the server answers.
    for k, c in enumerate(fresh):
        c.login("alice", s.password("alice"), f"new{k}", tls=False)
        c.message(bob.jid, f"new {k} hello")
        assert bob.wait_message(f"new {k} hello").get("from") == c.jid
    assert bob.ping_server().get("type") == "result"
    for c in [bob, *senders, *fresh]:
        c.close()
