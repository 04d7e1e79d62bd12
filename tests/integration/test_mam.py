"""
Message archive (XEP-0313 urn:xmpp:mam:2) with RSM paging (XEP-0059) and stanza-ids
(XEP-0359): what is archived on each side and with which id, queries by with, start and
end, paging forwards and backwards with the complete flag, preferences, messages to an
offline user, retention, and slixmpp's own xep_0313 plugin against the node. Raw
clients (im.Peer) check the exact ids and pages; accounts of their own per test.

A query sees every message archived before it: the shard sends its queued rows to the
store before the query, and the store runs one shard's requests in order. So a test
queries as soon as the message is delivered (or a ping to the recipient came back),
without sleeping.
"""
import datetime
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import pytest

from im import NS_DISCO_INFO, connect, is_message, new_id, stanza_error
from rawxmpp import NS_CLIENT, q
from slixclient import Clients, run

NS_MAM = "urn:xmpp:mam:2"
NS_SID = "urn:xmpp:sid:0"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_XDATA = "jabber:x:data"


def body(m):
    return m.findtext(q(NS_CLIENT, "body"))


def stanza_ids(m):
    return [(s.get("by"), s.get("id")) for s in m.findall(q(NS_SID, "stanza-id"))]


def form(**fields):
    f = "".join(
        f"<field var={quoteattr(k.replace('_', '-'))}><value>{escape(v)}</value></field>"
        for k, v in fields.items()
    )
    return (f"<x xmlns='{NS_XDATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
            f"<value>{NS_MAM}</value></field>{f}</x>")


def rsm(max=None, after=None, before=None):
    s = ""
    if max is not None:
        s += f"<max>{max}</max>"
    if after is not None:
        s += f"<after>{after}</after>"
    if before is not None:
        s += f"<before>{before}</before>" if before else "<before/>"
    return f"<set xmlns='{NS_RSM}'>{s}</set>" if s else ""


def query(c, fields=None, page="", expect="result"):
    """A MAM query: (the result messages' (id, forwarded message), the fin element), or
    the error iq when expect is 'error'."""
    qid = new_id("q")
    iq_id = c.send_iq("set", f"<query xmlns='{NS_MAM}' queryid='{qid}'>{form(**(fields or {}))}{page}</query>")
    ans = c.wait_for(lambda e: e.tag == q(NS_CLIENT, "iq") and e.get("id") == iq_id, what="the query's answer")
    assert ans.get("type") == expect, ET.tostring(ans)
    if expect == "error":
        return ans
    got = []
    for m in c.take(lambda e: e.find(q(NS_MAM, "result")) is not None):
        r = m.find(q(NS_MAM, "result"))
        assert r.get("queryid") == qid
        assert m.get("to") == c.jid
        fwd = r.find(q(NS_FORWARD, "forwarded"))
        assert fwd.find(q(NS_DELAY, "delay")).get("stamp").endswith("Z")
        got.append((r.get("id"), fwd.find(q(NS_CLIENT, "message"))))
    fin = ans.find(q(NS_MAM, "fin"))
    assert fin is not None, ET.tostring(ans)
    return got, fin


def fin_set(fin):
    s = fin.find(q(NS_RSM, "set"))
    first = s.find(q(NS_RSM, "first"))
    return {
        "complete": fin.get("complete") == "true",
        "first": first.text if first is not None else None,
        "index": first.get("index") if first is not None else None,
        "last": s.findtext(q(NS_RSM, "last")),
        "count": int(s.findtext(q(NS_RSM, "count"))),
    }


def bodies(got):
    return [body(m) for _, m in got]


def chat(a, to, text, mtype="chat", extra=""):
    a.send(f"<message to={quoteattr(to)} type='{mtype}' id='{new_id('m')}'><body>{escape(text)}</body>{extra}</message>")


def test_archived_on_both_sides_with_the_delivered_stanza_id(server):
    an, bn = server.new_users(2, "mam")
    with connect(server, an, "a", available=True) as a, connect(server, bn, "b", available=True) as b:
        chat(a, b.bare, "hello")
        m = b.wait_for(is_message(body="hello"))
        ids = stanza_ids(m)
        assert len(ids) == 1 and ids[0][0] == b.bare, ET.tostring(m)
        sid = ids[0][1]
        # The recipient's archive has it under that id, from a.
        got, fin = query(b)
        assert [(i, body(x), x.get("from")) for i, x in got] == [(sid, "hello", a.jid)]
        assert got[0][1].get("xmlns") is None  # parsed: the forwarded message is jabber:client
        assert fin_set(fin) == {"complete": True, "first": sid, "index": "0", "last": sid, "count": 1}
        # The sender's archive has it too, under an id of its own.
        got, _ = query(a)
        assert bodies(got) == ["hello"] and got[0][1].get("to") == b.bare
        # A reply: both archives hold both messages, in order.
        chat(b, a.jid, "hi back")
        a.wait_for(is_message(body="hi back"))
        assert bodies(query(a)[0]) == ["hello", "hi back"]
        assert bodies(query(b)[0]) == ["hello", "hi back"]


def test_what_is_not_archived(server):
    an, bn = server.new_users(2, "mamn")
    with connect(server, an, "a", available=True) as a, connect(server, bn, "b", available=True) as b:
        # A chat state alone, a receipt alone, a headline, a no-store hint: delivered, not
        # archived, and no stanza-id added.
        a.send(f"<message to='{b.bare}' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
        a.send(f"<message to='{b.bare}' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>")
        chat(a, b.bare, "news", mtype="headline")
        chat(a, b.bare, "secret", extra="<no-store xmlns='urn:xmpp:hints'/>")
        chat(a, b.bare, "kept")
        for text in ("news", "secret"):
            assert stanza_ids(b.wait_for(is_message(body=text))) == []
        b.wait_for(is_message(body="kept"))
        assert bodies(query(b)[0]) == ["kept"]
        assert bodies(query(a)[0]) == ["kept"]


def test_a_senders_stanza_id_naming_the_recipient_is_removed(server):
    an, bn = server.new_users(2, "mams")
    with connect(server, an, "a", available=True) as a, connect(server, bn, "b", available=True) as b:
        # XEP-0359 §5: a forged stanza-id by the recipient goes; another entity's stays.
        forged = (f"<stanza-id xmlns='{NS_SID}' by='{b.bare.upper()}' id='forged'/>"
                  f"<stanza-id xmlns='{NS_SID}' by='{b.bare}' id='forged2'></stanza-id>"
                  f"<stanza-id xmlns='{NS_SID}' by='room@conference.example' id='other'/>")
        chat(a, b.bare, "forged", extra=forged)
        m = b.wait_for(is_message(body="forged"))
        ids = stanza_ids(m)
        assert ("room@conference.example", "other") in ids
        assert [i for i in ids if i[0] == b.bare and i[1].startswith("forged")] == []
        assert len([i for i in ids if i[0] == b.bare]) == 1, ids
        got, _ = query(b)
        assert [x for _, x in got][0].find(q(NS_CLIENT, "body")).text == "forged"
        assert stanza_ids([x for _, x in got][0]) == [("room@conference.example", "other")]


def test_query_by_with_start_and_end(server):
    an, bn, cn = server.new_users(3, "mamw")
    with connect(server, an, "a", available=True) as a, connect(server, bn, "b", available=True) as b, \
            connect(server, cn, "c", available=True) as c:
        chat(b, a.jid, "from b 1")
        a.wait_for(is_message(body="from b 1"))
        chat(c, a.jid, "from c")
        a.wait_for(is_message(body="from c"))
        time.sleep(0.01)
        mid = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.01)
        chat(b, a.jid, "from b 2")
        a.wait_for(is_message(body="from b 2"))
        chat(a, b.jid, "to b full")
        b.wait_for(is_message(body="to b full"))
        assert bodies(query(a, {"with": b.bare})[0]) == ["from b 1", "from b 2", "to b full"]
        # A full JID matches that resource only.
        assert bodies(query(a, {"with": b.jid})[0]) == ["from b 1", "from b 2", "to b full"]
        assert bodies(query(a, {"with": b.bare + "/other"})[0]) == []
        assert bodies(query(a, {"with": c.bare})[0]) == ["from c"]
        stamp = mid.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert bodies(query(a, {"start": stamp})[0]) == ["from b 2", "to b full"]
        assert bodies(query(a, {"end": stamp})[0]) == ["from b 1", "from c"]
        # The same instant in another zone.
        plus = (mid + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")
        assert bodies(query(a, {"end": plus})[0]) == ["from b 1", "from c"]
        # Bad values: bad-request; an id that is none of ours: item-not-found.
        assert stanza_error(query(a, {"start": "yesterday"}, expect="error"))[1] == "bad-request"
        assert stanza_error(query(a, {"colour": "red"}, expect="error"))[1] == "bad-request"
        assert stanza_error(query(a, {"with": "@@"}, expect="error"))[1] == "bad-request"
        assert stanza_error(query(a, page=rsm(after="nope"), expect="error"))[1] == "item-not-found"


def test_paging_forwards_and_backwards(server):
    an, bn = server.new_users(2, "mamp")
    with connect(server, an, "a", available=True) as a, connect(server, bn, "b", available=True) as b:
        for i in range(7):
            chat(a, b.bare, f"m{i}")
        for i in range(7):
            b.wait_for(is_message(body=f"m{i}"))
        want = [f"m{i}" for i in range(7)]
        got, fin = query(b, page=rsm(max=3))
        s = fin_set(fin)
        assert bodies(got) == want[:3] and not s["complete"] and s["count"] == 7 and s["index"] == "0"
        assert s["first"] == got[0][0] and s["last"] == got[2][0]
        got, fin = query(b, page=rsm(max=3, after=s["last"]))
        s = fin_set(fin)
        assert bodies(got) == want[3:6] and not s["complete"] and s["index"] == "3"
        got, fin = query(b, page=rsm(max=3, after=s["last"]))
        s = fin_set(fin)
        assert bodies(got) == want[6:] and s["complete"] and s["index"] == "6"
        # Backwards from the end: <before/> is the last page.
        got, fin = query(b, page=rsm(max=3, before=""))
        s = fin_set(fin)
        assert bodies(got) == want[4:] and not s["complete"] and s["index"] == "4"
        got, fin = query(b, page=rsm(max=3, before=s["first"]))
        s = fin_set(fin)
        assert bodies(got) == want[1:4] and not s["complete"]
        got, fin = query(b, page=rsm(max=3, before=s["first"]))
        s = fin_set(fin)
        assert bodies(got) == want[:1] and s["complete"] and s["index"] == "0"
        # after-id and before-id in the form (urn:xmpp:mam:2#extended's fields).
        ids = [i for i, _ in query(b)[0]]
        assert bodies(query(b, {"after_id": ids[1], "before_id": ids[5]})[0]) == want[2:5]
        # max 0: the count only.
        got, fin = query(b, page=rsm(max=0))
        assert got == [] and fin_set(fin)["count"] == 7
        # Above mam.max_page (50): lowered to it, not refused.
        got, fin = query(b, page=rsm(max=100000))
        assert bodies(got) == want and fin_set(fin)["complete"]


def test_form_and_disco(server):
    an, = server.new_users(1, "mamf")
    with connect(server, an, "a") as a:
        r = a.iq_ok("get", f"<query xmlns='{NS_MAM}'/>")
        x = r.find(q(NS_MAM, "query")).find(q(NS_XDATA, "x"))
        vars_ = {f.get("var") for f in x.findall(q(NS_XDATA, "field"))}
        assert {"FORM_TYPE", "with", "start", "end"} <= vars_
        r = a.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=a.bare)
        feats = {f.get("var") for f in r.find(q(NS_DISCO_INFO, "query")).findall(q(NS_DISCO_INFO, "feature"))}
        assert {NS_MAM, NS_SID} <= feats
        # Someone else's archive: forbidden.
        bn, = server.new_users(1, "mamf2")
        r = a.iq("set", f"<query xmlns='{NS_MAM}'/>", to=f"{bn}@localhost")
        assert stanza_error(r)[1] == "forbidden"


def prefs(c, default=None, always=(), never=()):
    if default is None:
        r = c.iq_ok("get", f"<prefs xmlns='{NS_MAM}'/>")
    else:
        a = "".join(f"<jid>{j}</jid>" for j in always)
        n = "".join(f"<jid>{j}</jid>" for j in never)
        r = c.iq_ok("set", f"<prefs xmlns='{NS_MAM}' default='{default}'><always>{a}</always><never>{n}</never></prefs>")
    p = r.find(q(NS_MAM, "prefs"))
    return (p.get("default"),
            [j.text for j in p.find(q(NS_MAM, "always")).findall(q(NS_MAM, "jid"))],
            [j.text for j in p.find(q(NS_MAM, "never")).findall(q(NS_MAM, "jid"))])


def test_preferences_never_roster_always(server):
    an, bn, cn = server.new_users(3, "mampr")
    with connect(server, an, "a", available=True, roster=True) as a, \
            connect(server, bn, "b", available=True) as b, connect(server, cn, "c", available=True) as c:
        assert prefs(a) == ("always", [], [])
        assert prefs(a, "never", always=[c.bare.upper()]) == ("never", [c.bare], [])
        chat(b, a.bare, "b never")
        chat(c, a.bare, "c always")
        a.wait_for(is_message(body="b never"))
        m = a.wait_for(is_message(body="c always"))
        assert stanza_ids(m) != []
        assert bodies(query(a)[0]) == ["c always"]
        # roster: b is in a's roster (a roster item, no subscription needed).
        a.iq_ok("set", f"<query xmlns='jabber:iq:roster'><item jid='{b.bare}'/></query>")
        assert prefs(a, "roster", never=[c.bare]) == ("roster", [], [c.bare])
        chat(b, a.bare, "b roster")
        chat(c, a.bare, "c never")
        assert stanza_ids(a.wait_for(is_message(body="c never"))) == []
        a.wait_for(is_message(body="b roster"))
        chat(a, b.bare, "a to b")  # after: the order of two senders' messages is not ours
        b.wait_for(is_message(body="a to b"))
        assert bodies(query(a)[0]) == ["c always", "b roster", "a to b"]
        assert prefs(a, "always") == ("always", [], [])
        chat(c, a.bare, "c again")
        a.wait_for(is_message(body="c again"))
        assert bodies(query(a)[0])[-1] == "c again"
        # mam.max_prefs (1000) JIDs at most: one more is refused, and nothing changes.
        many = "".join(f"<jid>u{i}@example.com</jid>" for i in range(1001))
        r = a.iq("set", f"<prefs xmlns='{NS_MAM}' default='never'><always>{many}</always><never/></prefs>")
        assert stanza_error(r)[1] == "policy-violation"
        assert prefs(a) == ("always", [], [])
    # Preferences persist: a new login (after the user left the shard) has them.
    with connect(server, an, "a2") as a:
        assert prefs(a) == ("always", [], [])


def test_offline_message_is_archived_and_stored_with_its_stanza_id(server):
    an, bn = server.new_users(2, "mamo")
    with connect(server, an, "a", available=True) as a:
        chat(a, f"{bn}@localhost", "while away")
        assert a.ping(f"{bn}@localhost").get("type") == "result"
    with connect(server, bn, "b", available=True) as b:
        m = b.wait_for(is_message(body="while away"))
        ids = stanza_ids(m)
        assert len(ids) == 1 and ids[0][0] == b.bare
        got, _ = query(b)
        assert [(i, body(x)) for i, x in got] == [(ids[0][1], "while away")]


def test_message_to_self_is_archived_once(server):
    an, = server.new_users(1, "mamself")
    with connect(server, an, "a", available=True) as a, connect(server, an, "a2", available=True) as a2:
        chat(a, a2.jid, "note to self")
        a2.wait_for(is_message(body="note to self"))
        assert bodies(query(a)[0]) == ["note to self"]


def test_slixmpp_mam_plugin(server):
    """slixmpp's own xep_0313 (with xep_0059's iterator) pages through the archive."""
    an, bn = server.new_users(2, "mamsx")

    async def scenario():
        async with Clients(server) as cs:
            a = await cs.login(an, "sx", available=True)
            b = cs.new(bn, "sx")
            for plugin in ("xep_0059", "xep_0313", "xep_0359"):
                b.register_plugin(plugin)
            await b.start()
            await b.available()
            for i in range(5):
                a.send_message(mto=b.boundjid.bare, mbody=f"sx{i}", mtype="chat")
            for i in range(5):
                m = await b.next_message(lambda m: m["body"] == f"sx{i}")
                assert m["stanza_id"]["by"] == b.boundjid.bare and m["stanza_id"]["id"]
            seen, pages = [], 0
            async for page in b["xep_0313"].retrieve(with_jid=a.boundjid.bare, iterator=True,
                                                     rsm={"max": 2}):
                pages += 1
                for res in page["mam"]["results"]:
                    seen.append(res["mam_result"]["forwarded"]["stanza"]["body"])
                assert pages < 10
            # Backwards (RSM <before/>): the newest page. slixmpp 1.8.3's iterator then
            # stops (its rule, first index + items == count, holds on the newest page);
            # the raw paging test goes on backwards.
            back = []
            async for page in b["xep_0313"].retrieve(with_jid=a.boundjid.bare, iterator=True,
                                                     reverse=True, rsm={"max": 2}):
                back.append([r["mam_result"]["forwarded"]["stanza"]["body"]
                             for r in page["mam"]["results"]])
                assert len(back) < 10
            return seen, back

    seen, back = run(scenario())
    assert seen == [f"sx{i}" for i in range(5)], seen
    assert back[0] == ["sx3", "sx4"], back


def test_archive_and_ids_across_a_restart(make_server):
    """The archive is in the store; ids after a restart are above those before (they
    start above the store's highest)."""
    s = make_server()
    an, bn = s.new_users(2, "mamrs")
    with connect(s, an, "a", available=True) as a, connect(s, bn, "b", available=True) as b:
        chat(a, b.bare, "before")
        first = stanza_ids(b.wait_for(is_message(body="before")))[0][1]
    s.restart()
    with connect(s, an, "a", available=True) as a, connect(s, bn, "b", available=True) as b:
        chat(a, b.bare, "after")
        second = stanza_ids(b.wait_for(is_message(body="after")))[0][1]
        assert int(second) > int(first)
        got, _ = query(b)
        assert [(i, body(m)) for i, m in got] == [(first, "before"), (second, "after")]


def test_retention(make_server):
    s = make_server(mam={"retention": 2, "sweep_interval": 1})
    an, bn = s.new_users(2, "mamr")
    with connect(s, an, "a", available=True) as a, connect(s, bn, "b", available=True) as b:
        chat(a, b.bare, "old")
        b.wait_for(is_message(body="old"))
        assert bodies(query(b)[0]) == ["old"]
        time.sleep(2.5)
        chat(a, b.bare, "new")
        b.wait_for(is_message(body="new"))
        # Past mam.retention: not returned; and the sweep deletes it from the store.
        assert bodies(query(b)[0]) == ["new"]
        deadline = time.monotonic() + 10
        while "mam: 2 archived messages past mam.retention deleted" not in s.log_path.read_text() \
                and "archived messages past mam.retention deleted" not in s.log_path.read_text():
            assert time.monotonic() < deadline, "no retention sweep in the log"
            time.sleep(0.2)


def test_disabled(make_server):
    s = make_server(mam={"enabled": False})
    an, bn = s.new_users(2, "mamd")
    with connect(s, an, "a", available=True) as a, connect(s, bn, "b", available=True) as b:
        chat(a, b.bare, "plain")
        assert stanza_ids(b.wait_for(is_message(body="plain"))) == []
        r = b.iq("set", f"<query xmlns='{NS_MAM}'/>")
        assert stanza_error(r)[1] == "service-unavailable"
        r = b.iq_ok("get", f"<query xmlns='{NS_DISCO_INFO}'/>", to=b.bare)
        feats = {f.get("var") for f in r.find(q(NS_DISCO_INFO, "query")).findall(q(NS_DISCO_INFO, "feature"))}
        assert NS_MAM not in feats
