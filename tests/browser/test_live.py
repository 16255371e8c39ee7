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
        # The thread list beside the thread (at 1024 px with the sidebar open too), not under the message box.
        listed = page.locator(".st-key-playground_threads_box").bounding_box()
        thread = page.locator(".st-key-playground_thread").bounding_box()
        assert listed["x"] + listed["width"] <= thread["x"] and listed["y"] < thread["y"] + thread["height"], \
            (listed, thread)
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
        # Greyed = shown and stale; an empty element shows nothing, nor does one inside a collapsed older run.
        greyed = log.locator("[data-stale=true]:not(:has([data-testid=stEmpty])) >> visible=true")
        assert greyed.count() == 0, greyed.first.inner_text()
        newest = log.get_by_test_id("stExpander").first.inner_text()  # as it was when the page drew: live, open
        assert newest.startswith(("progress_activity\n\nRunning", "schedule\n\nQueued")) and "run_" in newest, newest
        assert page.get_by_test_id("stChatMessage").filter(has_text="word20").count() == 1  # the reply once, not twice
        page.get_by_role("button", name="Cancel run").wait_for(state="detached", timeout=30_000)
    finally:
        page.close()


def _said(page, text: str) -> None:
    """Wait until the settled page shows `text` as a paragraph exactly once (a streamed bubble and the stored message
    can both be on screen for a moment)."""
    page.get_by_text(text, exact=True).first.wait_for(timeout=60_000)
    idle(page)
    page.wait_for_function("t => [...document.querySelectorAll('p')].filter(p => p.innerText === t).length === 1",
                           arg=text, timeout=15_000)


def _paragraphs(page) -> list[str]:
    return page.locator("[data-testid=stChatMessage] [data-testid=stMarkdownContainer] p").all_inner_texts()


def test_copy_and_regenerate_an_older_reply_in_the_browser(app, browser, fake):
    """Copy puts the reply on the clipboard in one click; Regenerate on an older reply streams a new one and takes
    the later turns out of the thread; ‹ brings the old reply and the later turns back."""
    url, _restart = app
    fake.add({"text": "Version *one* <b>not a tag</b>"}, {"text": "Later answer"}, {"text": "Version two"})
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
        box = page.get_by_test_id("stChatInput").locator("textarea")
        box.fill("And later?")
        box.press("Enter")
        _said(page, "Later answer")
        page.locator("[class*='st-key-playground_msg_'][class*='_regen'] button:visible").first.click()
        _said(page, "Version two")
        assert "Later answer" not in _paragraphs(page) and "And later?" not in _paragraphs(page)
        assert page.get_by_text("2 / 2").is_visible()
        page.locator("[class*='_switch0_prev'] button:visible").first.click()
        _said(page, "Later answer")
        assert "And later?" in _paragraphs(page) and "Version two" not in _paragraphs(page)
        assert page.get_by_text("1 / 2").is_visible()
    finally:
        context.close()


def test_edit_an_older_message_resend_and_flip_back_in_the_browser(app, browser, fake):
    """Edit and resend on an older message of yours: answered again from there; ‹ brings the old turns back."""
    url, _restart = app
    fake.add({"text": "Answer to A"}, {"text": "Answer to B"}, {"text": "Answer to A2"})
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        idle(page)
        ask_in_a_new_thread(page, "Question A")
        _said(page, "Answer to A")
        box = page.get_by_test_id("stChatInput").locator("textarea")
        box.fill("Question B")
        box.press("Enter")
        _said(page, "Answer to B")
        page.locator("[class*='st-key-playground_msg_'][class*='_edit'] button:visible").first.click()
        field = page.get_by_label("Edit your message")
        field.wait_for(timeout=15_000)
        field.fill("Question A, edited")
        field.press("Tab")
        idle(page)
        page.get_by_role("button", name="Send", exact=True).click()
        _said(page, "Answer to A2")
        assert _paragraphs(page)[-2:] == ["Question A, edited", "Answer to A2"]
        assert "Answer to B" not in _paragraphs(page)
        page.locator("[class*='_switch0_prev'] button:visible").first.click()
        _said(page, "Answer to B")
        assert _paragraphs(page)[-4:] == ["Question A", "Answer to A", "Question B", "Answer to B"]
    finally:
        page.close()


# The opacity of every element of the sidebar, the thread list and the toolbar that is greyed (below 0.9) right now.
GREYED = """
() => Array.from(document.querySelectorAll(
    "[data-testid=stSidebar] [data-testid=stElementContainer], .st-key-playground_main [data-testid=stColumn]"
    + ":has(.st-key-playground_threads_box) [data-testid=stElementContainer]"))
  .map(e => [e.innerText.slice(0, 40), parseFloat(getComputedStyle(e).opacity)]).filter(([, o]) => o < 0.9)
"""


def test_the_sidebar_and_thread_list_are_never_greyed_while_a_reply_streams(app, browser, fake):
    """A slow first token, then a streamed reply: the sidebar and thread list look live (not greyed) all along."""
    url, _restart = app
    fake.add({"text": " ".join(f"word{i}" for i in range(60)), "delay": 2.0, "chunk_delay": 0.05})
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(url)
        idle(page)
        ask_in_a_new_thread(page, "Take your time.")
        page.wait_for_timeout(1_500)  # waiting for the model: the sidebar is the previous redraw's, unchanged
        assert page.evaluate(GREYED) == []
        page.get_by_test_id("stChatMessage").filter(has_text="word10").first.wait_for(timeout=30_000)
        assert page.evaluate(GREYED) == []
        assert page.locator("[data-testid=stSidebar] [data-stale=true]").count() == 0  # drawn again, live
        page.get_by_role("button", name="Cancel run").wait_for(state="detached", timeout=30_000)
    finally:
        page.close()
