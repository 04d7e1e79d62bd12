"""
Connections that end while something of theirs is in flight: a bind the router has not
answered yet, a stanza held back because the ring to the router is full. A process of
the node (by its PID) is held still with SIGSTOP so that the request stays in flight;
SIGCONT lets it go on. Each test has a node of its own.
"""
import os
import signal
import time

import pytest

from rawxmpp import RawClient, login


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
