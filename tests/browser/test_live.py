"""The app in Chromium over a scripted model: a server restart under an open tab, a bookmark, a 50k-character reply."""

from __future__ import annotations

import pytest

from assistants.config import Settings
from assistants.runtime import Runtime
from tests.browser import ROOT, VIEWPORT, free_port, idle, launch, start_app, stop_app
from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer

playwright_api = pytest.importorskip("playwright.sync_api")
LONG_REPLY_CHARS = 50_000
SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake):
    """A fresh app over a scripted model with one assistant; yields (url, restart)."""
    data_dir = tmp_path_factory.mktemp("live-data")
    env = {"PLAYGROUND_BACKENDS": f"fake={fake.base_url}", "PLAYGROUND_EMBEDDED_MODEL": "0",
           "PLAYGROUND_DEFAULT_MODEL": "fake-model"}
    rt = Runtime(Settings(data_dir=data_dir, embedded_enabled=False, database_url=database_url_for(data_dir)))
    try:
        rt.create_assistant(model="fake-model", name="Scripted", instructions="Say what the script says.")
    finally:
        rt.close()
    port = free_port()
    state = {"proc": start_app(data_dir, port, env=env)}

    def restart() -> None:
        stop_app(state["proc"])
        state["proc"] = start_app(data_dir, port, env=env)

    yield f"http://127.0.0.1:{port}", restart
    stop_app(state["proc"])


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def assert_healthy(page) -> None:
    """No traceback, and the app's own top navigation (not the one Streamlit makes from a pages/ folder)."""
    page.get_by_test_id("stChatInput").wait_for(timeout=30_000)  # a cold start shows a spinner first
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()
    assert page.get_by_test_id("stSidebarNav").count() == 0  # the auto-generated lowercase menu lives there
    assert page.locator("header a", has_text="Playground").count() >= 1
    assert page.get_by_test_id("stChatInput").count() == 1
    assert "Page not found" not in page.inner_text("body")  # /playground is a known address, not a fallback


def ask_in_a_new_thread(page, text: str) -> None:
    """Start a new thread in the Playground (if the current one is not new already) and send text in it."""
    new = page.locator(".st-key-playground_threads_new button").first
    if new.is_enabled():
        new.click()
        idle(page)
    box = page.get_by_test_id("stChatInput").locator("textarea")
    box.fill(text)
    box.press("Enter")


def test_a_bookmark_to_playground_on_a_fresh_server(app, browser):
    """The very first request after a start is /playground: it must run through app.py like any other."""
    url, restart = app
    restart()  # nothing has run app.py in this process yet
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{url}/playground")
        idle(page)
        assert_healthy(page)
        page.reload()
        idle(page)
        assert_healthy(page)
    finally:
        page.close()


def test_an_open_tab_survives_a_server_restart(app, browser):
    url, restart = app
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        idle(page)
        page.goto(f"{url}/playground")  # the page's own URL, as after a click in the menu and back
        idle(page)
        assert_healthy(page)
        restart()
        # The tab reconnects by itself and reruns the page it shows on the new server.
        page.wait_for_function("() => document.querySelector('[data-testid=stApp]')"
                               "?.getAttribute('data-test-connection-state') === 'CONNECTED'", timeout=60_000)
        for _attempt in range(12):  # the first rerun on the new server; the page is inert while "connecting"
            try:
                page.get_by_role("button", name="Refresh").click(timeout=5_000)
                break
            except playwright_api.TimeoutError:
                continue
        idle(page)
        assert_healthy(page)
    finally:
        page.close()


def test_a_50k_character_reply_streams_to_the_end(app, browser, fake):
    """A long reply (about 8,500 streamed pieces) is on screen in full, and the page leaves "Running" when it ends."""
    url, _restart = app
    words = [f"w{i:05d}" for i in range(LONG_REPLY_CHARS // 7)]  # 7 characters each with its space
    text = " ".join(words) + " THE-END"
    assert len(text) >= LONG_REPLY_CHARS
    fake.add({"text": text})
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        idle(page)
        box = page.get_by_test_id("stChatInput").locator("textarea")
        box.fill("Write something long.")
        box.press("Enter")
        reply = page.get_by_test_id("stChatMessage").filter(has_text="THE-END")
        reply.first.wait_for(timeout=90_000)
        page.get_by_role("button", name="Cancel run").wait_for(state="detached", timeout=60_000)
        idle(page)
        shown = page.get_by_test_id("stChatMessage").filter(has_text="THE-END").first.inner_text()
        assert words[0] in shown and words[len(words) // 2] in shown and words[-1] in shown
        assert page.get_by_test_id("stChatInput").locator("textarea").is_enabled()
    finally:
        page.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1400, 1024])
def test_playground_screenshots(app, browser, fake, scheme, width):
    """docs/screenshots/playground-<scheme>-<width>.png: a conversation on the scripted model, thread list and log."""
    url, _restart = app
    fake.add({"text": "The capital of France is **Paris**."})
    page = browser.new_page(viewport={"width": width, "height": 900 if width > 1100 else 768}, color_scheme=scheme)
    try:
        page.goto(url)
        idle(page)
        ask_in_a_new_thread(page, "What is the capital of France?")
        page.get_by_test_id("stChatMessage").filter(has_text="capital of France is").first.wait_for(timeout=60_000)
        idle(page)
        page.get_by_text("Logs", exact=True).click()
        idle(page)
        page.get_by_text("Wrote a reply").first.wait_for(timeout=10_000)
        messages = page.get_by_test_id("stChatMessage")
        assert "What is the capital of France?" in messages.nth(0).inner_text()
        assert "What is the capital" in page.locator(".st-key-playground_threads_current").inner_text()
        chat = page.get_by_test_id("stChatInput").bounding_box()
        assert chat["y"] + chat["height"] <= page.viewport_size["height"], chat
        page.mouse.move(0, 0)
        page.wait_for_timeout(300)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"playground-{scheme}-{width}.png"))
    finally:
        page.close()


def test_a_running_run_is_open_and_never_greyed_in_the_log(app, browser, fake):
    """While a reply streams, the log shows the new run open and nothing left over (greyed) from the run before."""
    url, _restart = app
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        idle(page)
        page.get_by_text("Logs", exact=True).click()
        idle(page)
        fake.add({"text": "first reply"})
        box = page.get_by_test_id("stChatInput").locator("textarea")
        box.fill("one")
        box.press("Enter")
        page.get_by_text("Wrote a reply").first.wait_for(timeout=30_000)  # the finished run, open
        idle(page)
        fake.add({"text": " ".join(f"word{i}" for i in range(120)), "chunk_delay": 0.05})
        box.fill("two")
        box.press("Enter")
        page.get_by_test_id("stChatMessage").filter(has_text="word20").first.wait_for(timeout=30_000)
        log = page.locator(".st-key-playground_log_box")
        greyed = log.locator("[data-stale=true]:not(:has([data-testid=stEmpty]))")  # an empty one shows nothing
        assert greyed.count() == 0, greyed.first.inner_text()
        newest = log.get_by_test_id("stExpander").first.inner_text()  # as it was when the page drew: live, open
        assert newest.startswith(("progress_activity\n\nRunning", "schedule\n\nQueued")) and "run_" in newest, newest
        assert page.get_by_test_id("stChatMessage").filter(has_text="word20").count() == 1  # the reply once, not twice
        page.get_by_role("button", name="Cancel run").wait_for(state="detached", timeout=30_000)
    finally:
        page.close()


def test_copy_and_regenerate_in_the_browser(app, browser, fake):
    """Copy puts the reply on the clipboard in one click; Regenerate streams a new reply and ‹ flips back."""
    url, _restart = app
    fake.add({"text": "Version *one* <b>not a tag</b>"}, {"text": "Version two"})
    context = browser.new_context(viewport=VIEWPORT, permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    try:
        page.goto(url)
        idle(page)
        ask_in_a_new_thread(page, "Say a version")
        page.locator(".pg-copy").first.wait_for(timeout=60_000)
        idle(page)
        page.locator(".pg-copy").last.click()
        page.wait_for_timeout(300)
        assert page.evaluate("navigator.clipboard.readText()") == "Version *one* <b>not a tag</b>"
        page.locator("[class*='st-key-playground_msg_'][class*='_regen'] button:visible").last.click()
        # While the new reply streams, the streamed bubble and the stored message can both be on screen for a
        # moment; once the page has settled the thread shows it once.
        page.get_by_text("Version two").first.wait_for(timeout=60_000)
        idle(page)
        page.wait_for_function("() => [...document.querySelectorAll('p')].filter(p => p.innerText === 'Version two')"
                               ".length === 1", timeout=15_000)
        assert page.get_by_text("2 / 2").is_visible()
        page.locator("[class*='_ver_prev'] button:visible").last.click()
        idle(page)
        assert page.get_by_text("An earlier version").is_visible() and page.get_by_text("Version").last.is_visible()
        assert "1 / 2" in page.inner_text("body")
    finally:
        context.close()
