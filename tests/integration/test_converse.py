"""
Converse.js (from npm, unpacked into build/converse by deploy/deps.sh) in a real headless
Chromium (Debian's, driven by Debian's python3-selenium and chromium-driver) logs in to
a starling node over WebSocket (c2s.websocket_listen) as alice, with the SASL mechanism
it picks (SCRAM), and exchanges a message with bob, a slixmpp client over TCP: bob
receives what alice sent from the page, and bob's answer is read back from the page's
DOM. The page is a tiny one of ours (the test writes it) served with Converse's files
by a Python http.server on 127.0.0.1; a plugin of ours hands the test Converse's API.

Release only: a browser under the sanitized server's slower run is the same test,
only slower (the sanitizer checks the WebSocket code in test_websocket.py).
"""
import asyncio
import functools
import http.server
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, SANITIZED, _stop_cleanly, free_port, start_server
from slixclient import Clients, run

CONVERSE = Path(os.environ.get("STARLING_CONVERSE", REPO / "build" / "converse" / "package" / "dist"))
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    webdriver = None

pytestmark = [
    pytest.mark.skipif(SANITIZED, reason="release only: the browser adds nothing under the sanitizer"),
    pytest.mark.skipif(webdriver is None or not CHROMIUM or not CHROMEDRIVER,
                       reason="chromium, chromium-driver and python3-selenium are needed (make deps)"),
    pytest.mark.skipif(not (CONVERSE / "converse.min.js").exists(),
                       reason=f"Converse.js is not in {CONVERSE} (make deps)"),
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>starling</title>
<link rel="stylesheet" href="dist/converse.min.css">
<script type="module" src="dist/converse.min.js"></script></head>
<body><script type="module">
window.starling = {connected: false, log: []};
converse.plugins.add('starling-test', {
    initialize() {
        const api = this._converse.api;
        window.starling.api = api;
        api.listen.on('connected', () => { window.starling.connected = true; });
        api.listen.on('disconnected', () => { window.starling.log.push('disconnected'); });
    }
});
converse.initialize(Object.assign(%s, {whitelisted_plugins: ['starling-test']}));
</script></body></html>
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("converse"), name="converse",
                     c2s={"websocket_listen": f"127.0.0.1:{free_port()}"})
    s.ws_url = f"ws://{s.groups['c2s']['websocket_listen']}/xmpp-websocket"
    yield s
    _stop_cleanly(s)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def site(node, tmp_path):
    """The page and Converse's files on http://127.0.0.1:PORT/."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "dist").symlink_to(CONVERSE)
    settings = {
        "websocket_url": node.ws_url,
        "jid": node.jid("alice"),
        "password": node.password("alice"),
        "authentication": "login",
        "auto_login": True,
        "auto_reconnect": False,
        "discover_connection_methods": False,
        "view_mode": "fullscreen",
        "assets_path": "dist/",
        "persistent_store": "localStorage",
        "play_sounds": False,
        "show_desktop_notifications": False,
        "loglevel": "debug",
    }
    (root / "index.html").write_text(PAGE % json.dumps(settings))
    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port),
                                            functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/index.html"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def browser(tmp_path):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_script_timeout(10)
    yield drv
    drv.quit()


def wait_js(drv, expr, timeout=15.0, what=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = drv.execute_script(f"return {expr};")
        if v:
            return v
        time.sleep(0.1)
    console = "\n".join(e["message"] for e in drv.get_log("browser"))
    raise AssertionError(f"timed out waiting for {what or expr}; the page's console:\n{console}")


def test_converse_chat(node, site, browser):
    async def scenario():
        async with Clients(node) as cs:
            bob = await cs.login("bob", "tcp", available=True)
            # Selenium blocks: off the loop slixmpp runs on.
            call = asyncio.to_thread
            await call(browser.get, site)
            await call(wait_js, browser, "window.starling && window.starling.connected",
                       what="Converse.js to log in over WebSocket")
            err = await call(browser.execute_async_script, """
                const done = arguments[arguments.length - 1];
                window.starling.api.chats.open('bob@localhost')
                    .then(chat => chat.sendMessage({body: 'hello from the browser'}))
                    .then(() => done(''), e => done(String(e)));
            """)
            assert err == "", err
            m = await bob.next_message(lambda m: m["body"], timeout=10)
            assert m["body"] == "hello from the browser"
            assert m["from"].bare == node.jid("alice")
            bob.send_message(mto=m["from"], mbody="bob answers the browser", mtype="chat")
            await call(wait_js, browser,
                       "[...document.querySelectorAll('.chat-msg__text')]"
                       ".some(e => e.textContent.includes('bob answers the browser'))",
                       what="bob's answer in the page")
    run(scenario(), timeout=40)
