"""
libstrophe against starling: tests/integration/strophe_client.c (built by `make` into
$STARLING_TEST_BIN) logs in over STARTTLS, trusting only the node's certificate, and
exchanges messages with a slixmpp client or with a second instance of itself.

Each test has accounts of its own: libstrophe enables XEP-0198 but closes its stream
without acknowledging what it got last, so the server keeps those messages for the
account's next login (offline storage, as XEP-0198 asks for unacknowledged stanzas).
"""
import asyncio
import os

import pytest

from conftest import TEST_BIN
from slixclient import Clients, run

STROPHE = TEST_BIN / "strophe_client"


@pytest.fixture(scope="module", autouse=True)
def _built():
    assert STROPHE.exists(), f"{STROPHE} is missing: run make"


class Strophe:
    """One strophe_client process; its stdout is read line by line."""

    def __init__(self, server, user, resource, peer, text, mode):
        self.args = [
            str(STROPHE),
            server.jid(user, resource),
            server.password(user),
            "127.0.0.1",
            str(server.port),
            peer,
            text,
            mode,
            str(server.cert),
        ]
        self.lines = []

    async def start(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "LC_ALL": "C"},
        )
        return self

    async def expect(self, prefix, timeout=10):
        """Reads lines until one starts with prefix; returns the rest of it."""
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            if not line:
                raise AssertionError(f"strophe_client ended without {prefix!r}: {self.lines}")
            line = line.decode().rstrip("\n")
            self.lines.append(line)
            if line.startswith(prefix + " ") or line == prefix:
                return line[len(prefix) + 1 :]

    async def wait(self, timeout=10):
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"strophe_client did not exit: {self.lines}") from None

    async def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def test_strophe_receives_from_slixmpp(server):
    alice_, bob_ = server.new_users(2, "strophe")

    async def scenario():
        bob = await Strophe(server, bob_, "strophe", f"{alice_}@localhost", "-", "receive").start()
        try:
            assert await bob.expect("BOUND") == f"{bob_}@localhost/strophe"
            assert await bob.expect("SECURED") == "yes"
            await bob.expect("READY")
            async with Clients(server) as cs:
                alice = await cs.login(alice_, "slix", available=True)
                alice.send_message(mto=f"{bob_}@localhost", mbody="hello strophe", mtype="chat")
                assert await bob.expect("RECEIVED") == "hello strophe"
                m = await alice.next_message()
                assert (m["body"], m["from"].full) == ("ack: hello strophe", f"{bob_}@localhost/strophe")
            assert await bob.wait() == 0, bob.lines
        finally:
            await bob.kill()

    run(scenario())


def test_strophe_to_strophe(server):
    alice_, bob_ = server.new_users(2, "strophe")

    async def scenario():
        bob = await Strophe(server, bob_, "s-recv", f"{alice_}@localhost", "-", "receive").start()
        alice = None
        try:
            await bob.expect("READY")
            alice = await Strophe(server, alice_, "s-send", f"{bob_}@localhost/s-recv",
                                  "hi from libstrophe", "send").start()
            assert await bob.expect("RECEIVED") == "hi from libstrophe"
            assert await alice.expect("RECEIVED") == "ack: hi from libstrophe"
            assert await alice.wait() == 0, alice.lines
            assert await bob.wait() == 0, bob.lines
        finally:
            await bob.kill()
            if alice:
                await alice.kill()

    run(scenario())


def test_strophe_message_to_unknown_user_gets_error(server):
    async def scenario():
        alice = await Strophe(server, "alice", "s-err", "nosuchuser@localhost", "anyone?", "send").start()
        try:
            assert await alice.expect("ERROR") == "service-unavailable"
            assert await alice.wait() == 3
        finally:
            await alice.kill()

    run(scenario())


def test_strophe_receives_offline_message(server):
    """A message stored while the account was offline reaches libstrophe at login
    (XEP-0160), as an ordinary message it answers."""
    alice_, user = server.new_users(2, "strophe")

    async def scenario():
        async with Clients(server) as cs:
            alice = await cs.login(alice_, "slix-offl", available=True)
            alice.send_message(mto=f"{user}@localhost", mbody="while you were out", mtype="chat")
            res = await alice.ping_jid(f"{user}@localhost")  # the message was handled
            assert res["type"] == "result"
            bob = await Strophe(server, user, "strophe", f"{alice_}@localhost", "-", "receive").start()
            try:
                assert await bob.expect("RECEIVED") == "while you were out"
                m = await alice.next_message()
                assert (m["body"], m["from"].full) == ("ack: while you were out", f"{user}@localhost/strophe")
                assert await bob.wait() == 0, bob.lines
            finally:
                await bob.kill()

    run(scenario())
