"""
Raw-client helpers for the instant-messaging tests (RFC 6121, XEP-0160, XEP-0191,
XEP-0280): a client that keeps what it skipped, iq requests, rosters, presence,
subscriptions, and "nothing else came" checks that do not sleep.

Peer is a RawClient whose wait_for() keeps the stanzas it skips (in `stash`) instead of
dropping them, so a test can wait for several things that arrive in any order, and at
the end look at everything else that arrived.

"Nothing arrived" checks use markers, not sleeps. Frames from one router shard to one
connection keep their order, and each shard handles its inbound frames in order, so:

  - settle(c) makes c's own shard answer an iq (a ping to the server): everything that
    shard sent to c before that is then in c.stash;
  - store_barrier(c) first has c ping an account that does not exist: its shard must
    ask the store about it, and the store runs requests one at a time, in order, so the
    answer comes after everything the store was asked before (offline messages,
    subscription requests queued at a login); then settle(c).
"""
import itertools
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from rawxmpp import NS_CLIENT, NS_STANZAS, RawClient, q

NS_ROSTER = "jabber:iq:roster"
NS_BLOCKING = "urn:xmpp:blocking"
NS_BLOCKING_ERRORS = "urn:xmpp:blocking:errors"
NS_CARBONS = "urn:xmpp:carbons:2"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_PING = "urn:xmpp:ping"
NS_VERSION = "jabber:iq:version"

_ids = itertools.count()


def new_id(prefix="i"):
    return f"{prefix}{next(_ids)}"


# ---- predicates ---------------------------------------------------------------------------


def bare(jid):
    return jid.split("/", 1)[0] if jid else jid


def is_presence(frm=None, ptype="available", frm_bare=None, status=None):
    """A presence from `frm` (a full JID) or from any resource of `frm_bare`, of type
    ptype ('available' for none; None for any type), with this <status/> if given."""

    def pred(e):
        if e.tag != q(NS_CLIENT, "presence"):
            return False
        if status is not None and e.findtext(q(NS_CLIENT, "status")) != status:
            return False
        if frm is not None and e.get("from") != frm:
            return False
        if frm_bare is not None and bare(e.get("from")) != frm_bare:
            return False
        if ptype is None:
            return True
        return (e.get("type") or "available") == ptype

    return pred


def is_message(body=None, frm=None, mtype=None):
    def pred(e):
        return (
            e.tag == q(NS_CLIENT, "message")
            and (body is None or e.findtext(q(NS_CLIENT, "body")) == body)
            and (frm is None or e.get("from") == frm)
            and (mtype is None or (e.get("type") or "normal") == mtype)
        )

    return pred


def is_roster_push(jid=None):
    """A roster push (RFC 6121 §2.1.6), for the item `jid` if given."""

    def pred(e):
        if e.tag != q(NS_CLIENT, "iq") or e.get("type") != "set":
            return False
        qq = e.find(q(NS_ROSTER, "query"))
        if qq is None:
            return False
        return jid is None or any(i.get("jid") == jid for i in qq.findall(q(NS_ROSTER, "item")))

    return pred


def is_block_push(what=None):
    def pred(e):
        if e.tag != q(NS_CLIENT, "iq") or e.get("type") != "set":
            return False
        kids = [c for c in e if c.tag.startswith("{%s}" % NS_BLOCKING)]
        return bool(kids) and (what is None or kids[0].tag == q(NS_BLOCKING, what))

    return pred


def stanza_error(el):
    """(type, condition, the <error/> element) of an error stanza, after checking the
    RFC 6120 §8.3.2 form: type='error'; exactly one <error/> child, with a `type` among
    the five defined; in it exactly one defined condition in the stanzas namespace,
    optionally <text/> in that namespace and application-specific elements in others."""
    assert el.get("type") == "error", ET.tostring(el)
    errs = el.findall(q(NS_CLIENT, "error"))
    assert len(errs) == 1, f"{len(errs)} <error/> children: {ET.tostring(el)!r}"
    err = errs[0]
    assert err.get("type") in ("auth", "cancel", "continue", "modify", "wait"), ET.tostring(el)
    conds = [c for c in err if c.tag.startswith("{%s}" % NS_STANZAS) and c.tag != q(NS_STANZAS, "text")]
    assert len(conds) == 1, f"{len(conds)} defined conditions: {ET.tostring(el)!r}"
    assert len(conds[0]) == 0 and not (conds[0].text or "").strip(), "a condition is empty"
    return err.get("type"), conds[0].tag.split("}", 1)[1], err


def roster_items(el):
    """{jid: item attributes plus 'groups' (sorted list)} of a roster query/push/result."""
    qq = el if el.tag == q(NS_ROSTER, "query") else el.find(q(NS_ROSTER, "query"))
    out = {}
    for it in qq.findall(q(NS_ROSTER, "item")):
        d = dict(it.attrib)
        d["groups"] = sorted(g.text or "" for g in it.findall(q(NS_ROSTER, "group")))
        out[it.get("jid")] = d
    return out


def push_item(push):
    """The one item of a roster push, as roster_items gives it; and the push's ver."""
    items = roster_items(push)
    assert len(items) == 1, ET.tostring(push)
    (item,) = items.values()
    return item, push.find(q(NS_ROSTER, "query")).get("ver")


def sub_state(item):
    """(subscription, ask, approved) of an item, with the defaults filled in."""
    return item.get("subscription", "none"), item.get("ask"), item.get("approved")


# ---- the client ---------------------------------------------------------------------------


class Peer(RawClient):
    """A RawClient that keeps what wait_for() skipped (see the module's docstring)."""

    def __init__(self, server, **kw):
        super().__init__(server, **kw)
        self.stash = []

    @property
    def bare(self):
        return bare(self.jid)

    def wait_for(self, pred, timeout=None, what="a matching stanza"):
        for i, el in enumerate(self.stash):
            if pred(el):
                return self.stash.pop(i)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{self.jid}: no {what} in time; kept meanwhile: {[ET.tostring(e) for e in self.stash]}"
                )
            try:
                el = self.stanza(left)
            except AssertionError as e:
                if "nothing from the server in time" in str(e):
                    continue  # the deadline check above reports it
                raise
            if pred(el):
                return el
            self.stash.append(el)

    def take(self, pred=lambda e: True):
        """Removes and returns the kept stanzas matching pred (no reading)."""
        got = [e for e in self.stash if pred(e)]
        self.stash = [e for e in self.stash if not pred(e)]
        return got

    def clear(self):
        self.stash = []

    # -- requests --

    def send_iq(self, itype, payload, to=None, iq_id=None):
        iq_id = iq_id or new_id("iq")
        to_attr = f" to={quoteattr(to)}" if to else ""
        self.send(f"<iq type='{itype}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return iq_id

    def iq(self, itype, payload, to=None, timeout=None):
        """Sends an iq and returns its answer (result or error)."""
        iq_id = self.send_iq(itype, payload, to)
        return self.wait_for(
            lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id and e.get("type") in ("result", "error"),
            timeout,
            what=f"the answer to iq {iq_id}",
        )

    def iq_ok(self, itype, payload, to=None):
        r = self.iq(itype, payload, to)
        assert r.get("type") == "result", ET.tostring(r)
        return r

    def ping(self, jid):
        """XEP-0199 ping to jid; the answer. To another account's bare JID the server
        answers for the account in that account's shard, after whatever this session
        sent there before (a marker)."""
        return self.iq("get", f"<ping xmlns='{NS_PING}'/>", to=jid)

    def settle(self):
        """Everything our shard sent us before now is in stash (module docstring)."""
        self.iq_ok("get", f"<ping xmlns='{NS_PING}'/>", to=self.domain)

    def store_barrier(self):
        """Everything the store was asked before now, and what came of it, has reached
        us (module docstring)."""
        r = self.iq("get", f"<ping xmlns='{NS_PING}'/>", to=f"nobody-{new_id('b')}@{self.domain}")
        assert stanza_error(r)[1] == "service-unavailable", ET.tostring(r)
        self.settle()

    # -- roster --

    def roster(self, ver=None):
        """Roster get (the session becomes interested in pushes); the result element."""
        v = "" if ver is None else f" ver={quoteattr(ver)}"
        return self.iq_ok("get", f"<query xmlns='{NS_ROSTER}'{v}/>")

    def roster_set(self, jid, name=None, groups=(), extra_attrs=""):
        """Roster set of one item; the answer (result or error)."""
        attrs = f" jid={quoteattr(jid)}" + (f" name={quoteattr(name)}" if name is not None else "") + extra_attrs
        gs = "".join(f"<group>{escape(g)}</group>" for g in groups)
        return self.iq("set", f"<query xmlns='{NS_ROSTER}'><item{attrs}>{gs}</item></query>")

    def roster_remove(self, jid):
        return self.iq("set", f"<query xmlns='{NS_ROSTER}'><item jid={quoteattr(jid)} subscription='remove'/></query>")

    def push(self, jid=None, timeout=None):
        """The next roster push (for jid), answered with a result as RFC 6121 §2.1.6 asks."""
        p = self.wait_for(is_roster_push(jid), timeout, what=f"a roster push for {jid}")
        self.send(f"<iq type='result' id={quoteattr(p.get('id') or '')}/>")
        return p

    def push_state(self, jid):
        item, _ = push_item(self.push(jid))
        return sub_state(item)

    # -- presence --

    def presence(self, ptype=None, to=None, status=None, priority=None, show=None):
        a = (f" type='{ptype}'" if ptype else "") + (f" to={quoteattr(to)}" if to else "")
        kids = ""
        if show is not None:
            kids += f"<show>{escape(show)}</show>"
        if status is not None:
            kids += f"<status>{escape(status)}</status>"
        if priority is not None:
            kids += f"<priority>{priority}</priority>"
        self.send(f"<presence{a}>{kids}</presence>" if kids else f"<presence{a}/>")

    def subscribe(self, to):
        self.presence("subscribe", to)

    def subscribed(self, to):
        self.presence("subscribed", to)

    def unsubscribe(self, to):
        self.presence("unsubscribe", to)

    def unsubscribed(self, to):
        self.presence("unsubscribed", to)

    # -- blocking --

    def blocklist(self):
        r = self.iq_ok("get", f"<blocklist xmlns='{NS_BLOCKING}'/>")
        bl = r.find(q(NS_BLOCKING, "blocklist"))
        assert bl is not None, ET.tostring(r)
        return sorted(i.get("jid") for i in bl.findall(q(NS_BLOCKING, "item")))

    def block(self, *jids):
        items = "".join(f"<item jid={quoteattr(j)}/>" for j in jids)
        return self.iq("set", f"<block xmlns='{NS_BLOCKING}'>{items}</block>")

    def unblock(self, *jids):
        items = "".join(f"<item jid={quoteattr(j)}/>" for j in jids)
        return self.iq("set", f"<unblock xmlns='{NS_BLOCKING}'>{items}</unblock>")


def connect(server, user, resource=None, available=False, priority=None, roster=False, **kw):
    """A Peer logged in (STARTTLS, PLAIN, bind); optionally having asked for the roster
    (so it gets pushes) and sent available presence (waiting for its echo). kw go to
    RawClient (stream_extra=...)."""
    plain = not server.groups.get("c2s", {}).get("require_encryption", True)
    c = Peer(server, **kw)
    try:
        c.login(user, server.password(user), resource or new_id("r"), tls=not plain)
        if roster:
            c.roster()
        if available:
            c.available(priority)
    except BaseException:
        c.close()
        raise
    return c


def wait_state(c, jid, state):
    """Reads c's roster pushes for jid until one shows state, a (subscription, ask,
    approved) tuple as sub_state gives it; returns that push's item."""
    seen = []
    while True:
        item, _ = push_item(c.push(jid))
        seen.append(sub_state(item))
        if sub_state(item) == state:
            return item
        assert len(seen) < 10, f"{c.jid}: {jid} went through {seen}, never {state}"


def befriend(a, b):
    """Makes a and b (logged-in Peers of two accounts) subscribe to each other with two
    ordinary handshakes (RFC 6121 §3.1): both items end as subscription='both'. Each
    request is followed by a ping to the contact's bare JID, answered in the contact's
    shard after the request, so the approval that follows is never taken for a
    pre-approval. Waits for the roster pushes that show 'both' on each side (so both ask
    for the roster first); pushes and subscription stanzas on the way are consumed."""
    a.roster()
    b.roster()
    a.subscribe(b.bare)
    assert a.ping(b.bare).get("type") == "result"
    b.subscribed(a.bare)
    b.subscribe(a.bare)
    assert b.ping(a.bare).get("type") == "result"
    a.subscribed(b.bare)
    wait_state(a, b.bare, ("both", None, None))
    wait_state(b, a.bare, ("both", None, None))
    for c in (a, b):
        c.settle()
        c.take(lambda e: e.tag == q(NS_CLIENT, "presence") and e.get("type") in ("subscribed", "subscribe"))
        c.take(is_roster_push())
