"""
slixmpp clients for the integration tests, driven from asyncio with timeouts.

    async def scenario(server):
        async with Clients(server) as cs:
            alice = await cs.login("alice", "phone")
            bob = await cs.login("bob", "laptop", available=True)
            alice.send_message(mto=bob.boundjid.full, mbody="hi", mtype="chat")
            msg = await bob.next_message()
    run(scenario(server))

Every received <message/>, <presence/> and stream error lands in a queue of the client,
so a test awaits exactly what it expects, in order, instead of sleeping (message and
presence errors land in one more, client.errors: a bounce is noticed whatever the test
awaits). The certificate
gencert wrote is the only trust anchor (the domain is "localhost", which the certificate
names).
"""
import asyncio

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

STEP = 5.0  # seconds any single expected event may take


def run(coro, timeout=30.0):
    """Runs a scenario in a fresh event loop; fails it after timeout seconds."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def first_of(*coros):
    """The result of whichever coroutine finishes first; the others are cancelled."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return done.pop().result()


class LoginFailed(AssertionError):
    pass


class Client(slixmpp.ClientXMPP):
    def __init__(self, server, user, resource=None, password=None, mech=None, direct_tls=False,
                 tls_max=None, auto_authorize=None, auto_subscribe=False):
        password = server.password(user) if password is None else password
        super().__init__(server.jid(user, resource), password, sasl_mech=mech)
        # slixmpp answers subscription requests by itself unless told not to: tests
        # decide (pass auto_authorize=True, auto_subscribe=True for its defaults).
        self.auto_authorize = auto_authorize
        self.auto_subscribe = auto_subscribe
        self.node = server
        self.direct_tls = direct_tls
        self.ca_certs = str(server.cert)
        if tls_max is not None:
            self.ssl_context.maximum_version = tls_max
        self.messages = asyncio.Queue()
        self.presences = asyncio.Queue()
        self.stream_errors = asyncio.Queue()
        self.errors = asyncio.Queue()  # message and presence errors, also in their own queues
        self.auth_failures = []  # <failure/> conditions, in order
        self.used_mech = None
        self.gone = asyncio.get_running_loop().create_future()
        self._session = asyncio.get_running_loop().create_future()
        self.register_handler(Callback("all messages", MatchXPath("{jabber:client}message"),
                                       lambda st: self._queue(self.messages, st)))
        self.register_handler(Callback("all presence", MatchXPath("{jabber:client}presence"),
                                       lambda st: self._queue(self.presences, st)))
        self.add_event_handler("session_start", self._on_session)
        self.add_event_handler("auth_success", self._on_auth)
        self.add_event_handler("failed_auth", lambda st: self.auth_failures.append(st["condition"]))
        self.add_event_handler("failed_all_auth", lambda _: self._fail("authentication failed"))
        self.add_event_handler("stream_error", self.stream_errors.put_nowait)
        self.add_event_handler("connection_failed", lambda e: self._fail(f"connection failed: {e}"))
        self.add_event_handler("disconnected", self._on_disconnected)

    # -- events --

    def _queue(self, queue, stanza):
        queue.put_nowait(stanza)
        if stanza["type"] == "error":
            self.errors.put_nowait(stanza)

    def _on_session(self, _):
        if not self._session.done():
            self._session.set_result(True)

    def _on_auth(self, _):
        self.used_mech = self["feature_mechanisms"].mech.name

    def _fail(self, why):
        if not self._session.done():
            self._session.set_exception(LoginFailed(f"{self.boundjid}: {why}; sasl failures {self.auth_failures}"))
        self.cancel_connection_attempt()  # slixmpp would retry forever

    def _on_disconnected(self, reason):
        self._fail(f"disconnected ({reason})")
        if not self.gone.done():
            self.gone.set_result(reason)

    # -- actions --

    async def start(self, timeout=STEP):
        port = self.node.tls_port if self.direct_tls else self.node.port
        # Federation peers (peers.py) listen on addresses of their own.
        self.connect((getattr(self.node, "host", "127.0.0.1"), port), use_ssl=self.direct_tls)
        try:
            await asyncio.wait_for(self._session, timeout)
        except asyncio.TimeoutError:
            raise LoginFailed(f"{self.boundjid}: no session in {timeout}s") from None
        return self

    def tls_version(self):
        obj = self.transport.get_extra_info("ssl_object") if self.transport else None
        return obj.version() if obj else None

    async def available(self, priority=None, timeout=STEP):
        """Available presence; returns once the router echoed it to us, so from then on
        the session counts as available for routing."""
        self.send_presence(ppriority=priority)
        me = self.boundjid.full
        await self.next_presence(lambda p: p["from"].full == me and p["type"] == "available", timeout)

    async def next_message(self, pred=None, timeout=STEP):
        """The next message (the next one matching pred, when given)."""
        return await self._next(self.messages, pred, timeout, "message")

    async def next_presence(self, pred=None, timeout=STEP):
        return await self._next(self.presences, pred, timeout, "presence")

    async def next_error(self, pred=None, timeout=STEP):
        """The next message or presence of type error (it stays in its own queue too)."""
        return await self._next(self.errors, pred, timeout, "error")

    async def next_stream_error(self, timeout=STEP):
        return await self._next(self.stream_errors, None, timeout, "stream error")

    async def _next(self, queue, pred, timeout, what):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            try:
                item = await asyncio.wait_for(queue.get(), max(left, 0))
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.boundjid}: no {what} within {timeout}s") from None
            if pred is None or pred(item):
                return item

    def no_pending_messages(self):
        """Messages received so far and not consumed (for checks after a marker)."""
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    async def ping_server(self, timeout=STEP):
        return await self.ping_jid(self.node.domain, timeout)

    async def ping_jid(self, jid, timeout=STEP):
        """XEP-0199 ping to jid. To an account's bare JID the server answers for the
        account, in that account's shard: the answer comes after everything sent there
        before it (a marker for "nothing came back")."""
        iq = self.make_iq_get(ito=jid)
        iq.append(slixmpp.xmlstream.ET.Element("{urn:xmpp:ping}ping"))
        return await iq.send(timeout=timeout)

    async def wait_gone(self, timeout=STEP):
        try:
            return await asyncio.wait_for(asyncio.shield(self.gone), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.boundjid}: still connected after {timeout}s") from None

    async def close(self):
        if self.gone.done() or not self.transport:
            self.cancel_connection_attempt()
            return
        self.disconnect(wait=1.0)
        try:
            await asyncio.wait_for(asyncio.shield(self.gone), 2.0)
        except asyncio.TimeoutError:
            self.abort()


class Clients:
    """Makes clients and closes them all at the end, whatever happened."""

    def __init__(self, server):
        self.node = server
        self.all = []

    def new(self, user, resource=None, **kw):
        c = Client(self.node, user, resource, **kw)
        self.all.append(c)
        return c

    async def login(self, user, resource=None, available=False, priority=None, roster=False, **kw):
        """roster=True fetches the roster first: RFC 6121 §2.1.6 sends roster pushes only
        to resources that did ("interested"), and Prosody and ejabberd keep to that."""
        c = self.new(user, resource, **kw)
        await c.start()
        if roster:
            await c.get_roster(timeout=STEP)
        if available:
            await c.available(priority)
        return c

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await asyncio.gather(*(c.close() for c in self.all), return_exceptions=True)

