"""
Rosters (RFC 6121 §2) on the wire: get, set, update, remove, pushes to interested
resources, the errors of §2.3.3 and §2.5.3, the size limit (roster.max_items),
versioning (§2.6) and the stream features that announce it. Every test uses accounts
nobody else uses (server.new_users), so rosters never leak between tests.
"""
import xml.etree.ElementTree as ET

import pytest

from im import (
    NS_ROSTER,
    connect,
    is_roster_push,
    push_item,
    roster_items,
    stanza_error,
)
from rawxmpp import NS_BIND, RawClient, q
from slixclient import Clients, run


def query_of(res):
    qq = res.find(q(NS_ROSTER, "query"))
    assert qq is not None, ET.tostring(res)
    return qq


def test_get_empty_then_items(server):
    u, = server.new_users(1, "rost")
    with connect(server, u) as c:
        res = c.roster()
        assert res.get("to") == c.jid
        qq = query_of(res)
        assert qq.get("ver") is not None, "no ver: versioning is advertised (RFC 6121 §2.6.1)"
        assert roster_items(res) == {}
        assert c.roster_set("romeo@localhost", name="Romeo", groups=["Friends", "Lovers"]).get("type") == "result"
        assert c.roster_set("nurse@example.org").get("type") == "result"
        items = roster_items(c.roster())
        assert items == {
            "romeo@localhost": {"jid": "romeo@localhost", "name": "Romeo", "subscription": "none",
                                "groups": ["Friends", "Lovers"]},
            "nurse@example.org": {"jid": "nurse@example.org", "subscription": "none", "groups": []},
        }


def test_set_pushes_to_the_setter_and_other_interested_resources(server):
    """RFC 6121 §2.3.2 and §2.1.6: the push goes to every interested resource (one that
    asked for the roster), the one that made the change included; a resource that never
    asked gets none."""
    u, = server.new_users(1, "rost")
    with connect(server, u, "a", roster=True) as a, connect(server, u, "b", roster=True) as b, \
            connect(server, u, "quiet") as quiet:
        res = a.roster_set("tybalt@localhost", name="Tybalt", groups=["Foes"])
        assert res.get("type") == "result"
        assert res.find(q(NS_ROSTER, "query")) is None, "a set's result is empty (§2.3.2)"
        for c in (a, b):
            push = c.push("tybalt@localhost")
            assert push.get("to") == c.jid
            item, ver = push_item(push)
            assert (item["name"], item["subscription"], item["groups"]) == ("Tybalt", "none", ["Foes"])
            assert ver is not None
        quiet.settle()
        assert quiet.take(is_roster_push()) == [], "a resource that never asked got a push"


def test_update_and_remove(server):
    u, = server.new_users(1, "rost")
    with connect(server, u, roster=True) as c:
        assert c.roster_set("mercutio@localhost", name="Mercutio", groups=["Friends"]).get("type") == "result"
        c.push("mercutio@localhost")
        # An update replaces name and groups (§2.4).
        assert c.roster_set("mercutio@localhost", name="Merc", groups=["Dead", "Friends"]).get("type") == "result"
        item, _ = push_item(c.push("mercutio@localhost"))
        assert (item["name"], item["groups"]) == ("Merc", ["Dead", "Friends"])
        # No name and no groups: both gone.
        assert c.roster_set("mercutio@localhost").get("type") == "result"
        item, _ = push_item(c.push("mercutio@localhost"))
        assert "name" not in item and item["groups"] == []
        assert roster_items(c.roster())["mercutio@localhost"]["groups"] == []
        # Remove (§2.5): result, then a push with subscription='remove'.
        res = c.roster_remove("mercutio@localhost")
        assert res.get("type") == "result", ET.tostring(res)
        item, _ = push_item(c.push("mercutio@localhost"))
        assert item["subscription"] == "remove"
        assert roster_items(c.roster()) == {}


def test_remove_missing_item_not_found(server):
    u, = server.new_users(1, "rost")
    with connect(server, u) as c:
        res = c.roster_remove("nobody-here@localhost")
        assert stanza_error(res)[:2] == ("cancel", "item-not-found")  # §2.5.3


def test_client_subscription_values_are_ignored(server):
    """§2.1.2.5: a roster set's subscription other than 'remove' is ignored (and 'ask',
    'approved' are the server's to set): the item is plain 'none'."""
    u, = server.new_users(1, "rost")
    with connect(server, u, roster=True) as c:
        res = c.roster_set("cheat@localhost", extra_attrs=" subscription='both' ask='subscribe' approved='true'")
        assert res.get("type") == "result", ET.tostring(res)
        item, _ = push_item(c.push("cheat@localhost"))
        assert (item.get("subscription"), item.get("ask"), item.get("approved")) == ("none", None, None)


@pytest.mark.parametrize(
    "payload, expected",
    [
        ("<item jid='a@localhost'/><item jid='b@localhost'/>", ("modify", "bad-request")),
        ("<item jid='a@localhost'><group>G</group><group>G</group></item>", ("modify", "bad-request")),
        ("<item jid='a@localhost'><group></group></item>", ("modify", "not-acceptable")),
        ("", ("modify", "bad-request")),
    ],
    ids=["two-items", "duplicate-group", "empty-group", "no-item"],
)
def test_set_errors(server, payload, expected):
    """§2.3.3: more than one item (or none) is bad-request, a group twice bad-request,
    an empty group not-acceptable; and nothing is added."""
    u, = server.new_users(1, "rost")
    with connect(server, u, roster=True) as c:
        res = c.iq("set", f"<query xmlns='{NS_ROSTER}'>{payload}</query>")
        assert stanza_error(res)[:2] == expected
        assert res.get("to") == c.jid
        c.settle()
        assert c.take(is_roster_push()) == []
        assert roster_items(c.roster()) == {}


def test_roster_size_limit_not_allowed(make_server):
    s = make_server(roster={"max_items": 2})
    u, = s.new_users(1, "rost")
    with connect(s, u, roster=True) as c:
        assert c.roster_set("one@localhost").get("type") == "result"
        assert c.roster_set("two@localhost").get("type") == "result"
        res = c.roster_set("three@localhost")
        assert stanza_error(res)[:2] == ("cancel", "not-allowed")
        # Updating an item that is there is not adding one.
        assert c.roster_set("two@localhost", name="Two").get("type") == "result"
        assert sorted(roster_items(c.roster())) == ["one@localhost", "two@localhost"]
        # Removing makes room.
        assert c.roster_remove("one@localhost").get("type") == "result"
        assert c.roster_set("three@localhost").get("type") == "result"
        # A subscription request for a new contact is an item too: refused when full.
        c.send("<presence type='subscribe' to='four@localhost' id='sub4'/>")
        err = c.wait_for(lambda e: e.get("id") == "sub4", what="the refusal")
        assert stanza_error(err)[:2] == ("cancel", "not-allowed")
        assert sorted(roster_items(c.roster())) == ["three@localhost", "two@localhost"]


def test_roster_bytes_limits(make_server):
    """roster.max_item_bytes: a name and groups longer than that together are
    not-acceptable (§2.3.3); roster.max_bytes: a change that takes the roster's JIDs,
    names and groups past it is not-allowed, like a full roster, for a roster set and for
    a subscription request; an update that shrinks an item always goes; room comes back
    when items go."""
    s = make_server(roster={"max_item_bytes": 300, "max_bytes": 4096})
    u, = s.new_users(1, "rost")
    with connect(s, u, roster=True) as c:
        res = c.roster_set("big@localhost", name="n" * 200, groups=["g" * 60, "h" * 60])
        assert stanza_error(res)[:2] == ("modify", "not-acceptable")
        assert roster_items(c.roster()) == {}
        # Each 13-byte JID with a 250-byte label: 263 bytes; 15 of them fit in 4096.
        for i in range(15):
            assert c.roster_set(f"c{i:02}@localhost", name="n" * 200, groups=["g" * 50]).get("type") == "result"
        res = c.roster_set("c15@localhost", name="n" * 200, groups=["g" * 50])
        assert stanza_error(res)[:2] == ("cancel", "not-allowed")
        assert c.roster_set("d@localhost", name="n" * 130).get("type") == "result"  # 10 left
        res = c.roster_set("c00@localhost", name="n" * 299)  # grows an item past the room
        assert stanza_error(res)[:2] == ("cancel", "not-allowed")
        c.send("<presence type='subscribe' to='sub@localhost' id='sub1'/>")
        err = c.wait_for(lambda e: e.get("id") == "sub1", what="the refusal")
        assert stanza_error(err)[:2] == ("cancel", "not-allowed")
        assert c.roster_set("c00@localhost", name="short").get("type") == "result"
        assert c.roster_set("c15@localhost", name="n" * 200).get("type") == "result"
        assert c.roster_remove("c01@localhost").get("type") == "result"
        assert c.roster_set("c16@localhost", name="n" * 200, groups=["g" * 50]).get("type") == "result"
        items = roster_items(c.roster())
        assert len(items) == 17 and "c01@localhost" not in items
    # What loads from the store counts as well.
    s.restart()
    with connect(s, u, roster=True) as c:
        res = c.roster_set("c17@localhost", name="n" * 200, groups=["g" * 50])
        assert stanza_error(res)[:2] == ("cancel", "not-allowed")


def test_strangers_cannot_fill_a_roster(make_server):
    """Subscription requests from strangers take hidden items, within the roster's
    bounds; past them the stranger gets an error (and the request is not kept)."""
    s = make_server(roster={"max_items": 2})
    u, a, b, c = s.new_users(4, "rost")
    with connect(s, u, roster=True, available=True) as owner:
        for name in (a, b, c):
            with connect(s, name, available=True) as x:
                x.send(f"<presence type='subscribe' to='{u}@localhost' id='s-{name}'/>")
                if name == c:
                    err = x.wait_for(lambda e: e.get("id") == f"s-{name}", what="the refusal")
                    assert stanza_error(err)[:2] == ("wait", "resource-constraint")
                else:
                    owner.wait_for(lambda e: e.get("type") == "subscribe" and e.get("from") == f"{name}@localhost",
                                   what="the request")


def test_versioning(server):
    """§2.6: the result carries ver; a get with the current ver is answered with an empty
    result (no query) and pushes follow; an older or empty ver gets the whole roster."""
    u, = server.new_users(1, "rost")
    with connect(server, u) as c:
        v0 = query_of(c.roster()).get("ver")
        assert c.roster_set("a@localhost").get("type") == "result"
        v1 = query_of(c.roster()).get("ver")
        assert v1 != v0
        res = c.roster(ver=v1)
        assert res.get("type") == "result" and len(res) == 0, ET.tostring(res)
        # The push after a change carries the new version, which a get then matches.
        assert c.roster_set("b@localhost").get("type") == "result"
        _, v2 = push_item(c.push("b@localhost"))
        assert v2 not in (v0, v1)
        assert len(c.roster(ver=v2)) == 0
        for old in (v0, v1, ""):
            res = c.roster(ver=old)
            assert query_of(res).get("ver") == v2
            assert sorted(roster_items(res)) == ["a@localhost", "b@localhost"]


def test_stream_features_announce_rosterver_and_preapproval(server):
    with RawClient(server) as c:
        c.open()
        c.starttls()
        c.open()
        assert c.auth_plain("alice", server.password("alice")).tag.endswith("success")
        _, feats = c.restart()
        assert feats.find(q(NS_BIND, "bind")) is not None
        assert feats.find(q("urn:xmpp:features:rosterver", "ver")) is not None, ET.tostring(feats)
        assert feats.find(q("urn:xmpp:features:pre-approval", "sub")) is not None, ET.tostring(feats)


def test_someone_elses_roster_forbidden(server):
    u, v = server.new_users(2, "rost")
    with connect(server, u) as c:
        res = c.iq("get", f"<query xmlns='{NS_ROSTER}'/>", to=f"{v}@localhost")
        assert stanza_error(res)[:2] == ("cancel", "forbidden")


def test_roster_with_slixmpp(server):
    """A real client's view: slixmpp gets the roster, adds and removes an item, and its
    roster follows the pushes."""
    u, = server.new_users(1, "rost")

    async def scenario():
        async with Clients(server) as cs:
            c = await cs.login(u, "slix")
            await c.get_roster()
            assert list(c.client_roster) == []
            await c.update_roster("juliet@localhost", name="Juliet", groups=["Capulets"])
            await c.get_roster()
            item = c.client_roster["juliet@localhost"]
            assert (item["name"], item["groups"], item["subscription"]) == ("Juliet", ["Capulets"], "none")
            await c.del_roster_item("juliet@localhost")
            await c.get_roster()
            assert "juliet@localhost" not in list(c.client_roster)

    run(scenario())
