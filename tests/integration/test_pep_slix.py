"""
PEP and what rides on it with slixmpp's own plugins against the real node: avatars
(xep_0084 over xep_0163/xep_0060: publish, the metadata event to a contact whose
xep_0115 capabilities say +notify, fetching the data), bookmarks (XEP-0402 through
xep_0060 with its publish-options; this slixmpp has no xep_0402 plugin), bookmarks in
private XML storage (xep_0048 over xep_0049, as profanity keeps them), vCard-temp
(xep_0054). Exact errors and the rest: test_pep.py.
"""
import asyncio
import hashlib

from slixmpp.plugins.xep_0004 import Form
from slixmpp.plugins.xep_0048 import Bookmarks
from slixmpp.xmlstream import ET

from im import befriend, connect
from slixclient import STEP, Clients, run

PLUGINS = ("xep_0030", "xep_0115", "xep_0060", "xep_0163", "xep_0084", "xep_0049", "xep_0048", "xep_0054")
META = "urn:xmpp:avatar:metadata"
BM = "urn:xmpp:bookmarks:1"


async def login(cs, user, resource):
    c = cs.new(user, resource)
    for p in PLUGINS:
        c.register_plugin(p)
    await c.start()
    await c["xep_0115"].update_caps(broadcast=False)  # +notify of the registered PEP nodes
    await c.available()
    return c


def event_of(msg, node):
    ev = msg.xml.find("{http://jabber.org/protocol/pubsub#event}event")
    its = ev.find("{http://jabber.org/protocol/pubsub#event}items") if ev is not None else None
    return its if its is not None and its.get("node") == node else None


def test_avatar_bookmarks_private_vcard(server):
    an, bn = server.new_users(2, "slixpep")
    with connect(server, an, "r") as a, connect(server, bn, "r") as b:
        befriend(a, b)
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64  # 16 KB of "image"
    sha = hashlib.sha1(png).hexdigest()

    async def scenario():
        async with Clients(server) as cs:
            alice = await login(cs, an, "phone")
            bob = await login(cs, bn, "laptop")
            bob.no_pending_messages()
            # XEP-0084: data, then metadata; bob's caps say metadata+notify.
            await alice["xep_0084"].publish_avatar(png, timeout=STEP)
            await alice["xep_0084"].publish_avatar_metadata(
                items=[{"id": sha, "type": "image/png", "bytes": len(png)}], timeout=STEP)
            msg = await bob.next_message(lambda m: event_of(m, META) is not None)
            item = event_of(msg, META).find("{http://jabber.org/protocol/pubsub#event}item")
            assert item.get("id") == sha and msg["from"].bare == alice.boundjid.bare
            got = await bob["xep_0084"].retrieve_avatar(alice.boundjid.bare, sha, timeout=STEP)
            data = got["pubsub"]["items"]["item"]["payload"]
            assert data.text and len(data.text) > len(png)  # base64
            import base64
            assert base64.b64decode(data.text) == png
            # XEP-0402: a conference per item, with the publish-options it asks for.
            opts = Form()
            opts.add_field(var="FORM_TYPE", ftype="hidden",
                           value="http://jabber.org/protocol/pubsub#publish-options")
            opts.add_field(var="pubsub#persist_items", value="true")
            opts.add_field(var="pubsub#max_items", value="max")
            opts.add_field(var="pubsub#access_model", value="whitelist")
            conf = ET.fromstring(f"<conference xmlns='{BM}' name='Orchard' autojoin='true'><nick>a</nick></conference>")
            await alice["xep_0060"].publish(alice.boundjid.bare, BM, id="orchard@conference.localhost",
                                            payload=conf, options=opts, timeout=STEP)
            res = await alice["xep_0060"].get_items(alice.boundjid.bare, BM, timeout=STEP)
            assert [i["id"] for i in res["pubsub"]["items"]] == ["orchard@conference.localhost"]
            # Whitelist: bob may not read them.
            try:
                await bob["xep_0060"].get_items(alice.boundjid.bare, BM, timeout=STEP)
                raise AssertionError("bob read alice's bookmarks")
            except Exception as e:  # IqError
                assert getattr(e, "condition", None) == "not-allowed", e
            # XEP-0048 in XEP-0049 private storage.
            bms = Bookmarks()
            bms.add_conference("balcony@conference.localhost", "a", name="Balcony", autojoin=True)
            await alice["xep_0048"].set_bookmarks(bms, method="xep_0049", timeout=STEP)
            got = await alice["xep_0048"].get_bookmarks(method="xep_0049", timeout=STEP)
            confs = got["private"]["bookmarks"]["conferences"]
            assert [c["jid"] for c in confs] == ["balcony@conference.localhost"]
            # XEP-0054.
            vc = alice["xep_0054"].make_vcard()
            vc["FN"] = "Alice Capulet"
            vc["NICKNAME"] = "alice"
            iq = alice.make_iq_set()
            iq.append(vc)
            await iq.send(timeout=STEP)
            got = await bob["xep_0054"].get_vcard(alice.boundjid.bare, timeout=STEP)
            assert got["vcard_temp"]["FN"] == "Alice Capulet"

    run(scenario(), timeout=60)
