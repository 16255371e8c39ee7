"""The real app in Chromium: create an assistant, chat with the embedded model, and look at every page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.runtime import Runtime
from tests.browser import FIRST_TOKEN_PROBE, ROOT, VIEWPORT, free_port, go, idle, launch, open_page, start_app, stop_app
from tests.conftest import database_url_for

playwright_api = pytest.importorskip("playwright.sync_api")
SHOTS = ROOT / "docs" / "screenshots"


def seed(data_dir) -> None:
    """Two assistants made beforehand, so the Assistants and Compare pages have something to show."""
    rt = Runtime(Settings(data_dir=data_dir, database_url=database_url_for(data_dir)))
    try:
        rt.create_assistant(model=EMBEDDED_MODEL_ID, name="Investing Bot", temperature=0.2,
                            instructions="You are an expert in calculating investments.",
                            tools=[{"type": "code_interpreter"}])
        rt.create_assistant(model=EMBEDDED_MODEL_ID, name="Weather helper", temperature=0.7,
                            instructions="Answer weather questions briefly.",
                            tools=[{"type": "function", "function": {
                                "name": "get_weather", "description": "Current weather in a city",
                                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
    finally:
        rt.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("browser-data")
    seed(data_dir)
    port = free_port()
    proc = start_app(data_dir, port)
    yield f"http://127.0.0.1:{port}"
    stop_app(proc)


@pytest.fixture(scope="module")
def page(app_url):
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        pg = open_page(browser, app_url, viewport=VIEWPORT, color_scheme="light")
        yield pg
        browser.close()


def test_create_an_assistant_and_chat_with_the_embedded_model(page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.get_by_role("button", name="New", exact=True).click()
    idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill("Tutor")
    page.get_by_role("textbox", name="Instructions", exact=True).fill("You are a friendly tutor. Answer in one short sentence.")
    page.get_by_role("textbox", name="Instructions", exact=True).press("Control+Enter")
    idle(page)
    page.get_by_role("button", name="Save", exact=True).first.click()
    idle(page)
    page.get_by_text(re.compile(r"^\W*(check)?\s*Saved$")).first.wait_for(timeout=10_000)
    assert page.get_by_text("Unsaved changes").count() == 0

    page.evaluate(FIRST_TOKEN_PROBE)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill("What is the capital of France?")
    box.press("Enter")
    # The reply streams in, then the run log and the token counts show the finished run.
    page.wait_for_function("() => window.__firstToken.shown !== null", timeout=120_000)
    probe = page.evaluate("window.__firstToken")
    assert probe["pressed"] is not None and probe["shown"] > probe["pressed"]
    page.get_by_role("button", name="Cancel run").wait_for(state="detached", timeout=120_000)
    idle(page)
    page.get_by_text("Logs", exact=True).click()  # the run log is behind the Logs toggle
    idle(page)
    log_entry = page.get_by_text(re.compile(r"^Completed · smollm2-135m-instruct · .* tok$"))
    log_entry.first.wait_for(timeout=120_000)
    idle(page)

    messages = page.get_by_test_id("stChatMessage")
    assert messages.count() == 2
    assert "What is the capital of France?" in messages.nth(0).inner_text()
    reply = messages.nth(1).inner_text()
    assert "Tutor" in reply and len(reply.strip()) > len("smart_toy Tutor")
    tokens = page.get_by_test_id("stMarkdownContainer").filter(has_text="Last run").first.inner_text()
    assert re.search(r"Last run\s+[\d,]+ tokens · [\d,]+ prompt · [\d,]+ completion · \$0", tokens), tokens
    page.get_by_text("Wrote a reply").first.wait_for(timeout=10_000)  # the newest run is open in the log
    assert page.get_by_text(re.compile(r"Model call 1 · ")).count() == 1
    page.mouse.move(0, 0)
    page.screenshot(path=str(SHOTS / "playground.png"))


def test_laptop_window_keeps_the_message_box_on_screen(page):
    """1024 x 768 with the sidebar open: the run log goes under the thread, the thread list stays beside it, and the
    message box stays in view."""
    page.set_viewport_size({"width": 1024, "height": 768})
    try:
        page.wait_for_timeout(500)
        box = page.get_by_test_id("stChatInput").bounding_box()
        assert box["y"] + box["height"] <= 768, box
        thread = page.locator(".st-key-playground_thread").bounding_box()
        log = page.locator(".st-key-playground_log_box").bounding_box()
        assert log["y"] > thread["y"] + thread["height"], (thread, log)  # stacked, not a narrow column
        listed = page.locator(".st-key-playground_threads_box").bounding_box()
        assert listed["x"] + listed["width"] <= thread["x"] and listed["y"] < thread["y"] + thread["height"], listed
        assert thread["width"] > 400, thread  # the thread list takes 11 rem of the 640 px beside the sidebar
    finally:
        page.set_viewport_size(VIEWPORT)
        page.wait_for_timeout(300)


def test_assistants_page(page):
    go(page, "Assistants")
    grid = page.get_by_test_id("stDataFrame")
    grid.wait_for()
    assert "3 assistants in this Playground" in page.get_by_test_id("stCaptionContainer").first.inner_text()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 18 + 35 * 2)  # the second row's checkbox: Weather helper
    idle(page)
    assert page.get_by_text("Weather helper selected").is_visible()
    assert page.get_by_role("button", name="Open in Playground").is_enabled()
    page.mouse.move(0, 0)  # no hover toolbar over the table in the picture
    page.screenshot(path=str(SHOTS / "assistants.png"))


def test_threads_page(page):
    go(page, "Threads")
    page.get_by_test_id("stDataFrame").wait_for()
    metrics = page.get_by_test_id("stMetric").all_inner_texts()
    assert any(m.startswith("Threads") and m.endswith("1") for m in metrics), metrics
    box = page.get_by_test_id("stDataFrame").bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 18 + 35)  # the only thread's checkbox
    idle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export Markdown").click()
    text = Path(download.value.path()).read_text("utf-8")
    assert text.startswith("# Thread thread_") and "## User" in text and "## Tutor" in text
    assert "What is the capital of France?" in text
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    doc = json.loads(Path(download.value.path()).read_text("utf-8"))
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"] and doc["runs"][0]["usage"]["total_tokens"] > 0


def test_compare_page(page):
    go(page, "Compare")
    # The same assistant on both sides, at two temperatures.
    page.get_by_test_id("stSelectbox").nth(2).click()
    page.get_by_role("option", name="Tutor · smollm2-135m-instruct").click()
    idle(page)
    for side, presses in ((0, 0), (1, 4)):  # from the assistant's 0.2 (the embedded model's default)
        slider = page.get_by_test_id("stSlider").nth(side).locator("input[type=range]")
        slider.focus()
        for _ in range(presses):
            slider.press("ArrowRight")
        idle(page)
    values = [page.get_by_test_id("stSlider").nth(i).locator("input[type=range]").input_value() for i in (0, 1)]
    assert values == ["0.2", "0.6"], values
    page.get_by_role("textbox", name="Prompt", exact=True).fill("Explain compound interest in one sentence.")
    page.get_by_role("spinbutton", name="Max reply tokens").fill("48")
    page.get_by_role("spinbutton", name="Max reply tokens").press("Enter")
    idle(page)
    page.get_by_role("button", name="Send to both").click()
    page.get_by_role("button", name="Open in Playground").nth(1).wait_for(timeout=180_000)
    idle(page)
    replies = page.get_by_test_id("stChatMessage")
    assert replies.count() == 2
    assert page.get_by_text("A · Tutor").is_visible() and page.get_by_text("B · Tutor").is_visible()
    assert all(text.strip() for text in replies.all_inner_texts())
    labels = [m.split("\n")[0] for m in page.get_by_test_id("stMetric").all_inner_texts()]
    assert labels == ["Tokens", "First token", "Total time"] * 2
    # Streamlit scrolls inside the page, so a taller window is what shows both replies in one picture.
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1280})
    idle(page)
    page.mouse.move(0, 0)  # no hover colour on "Send to both" in the picture
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "compare.png"))
    page.set_viewport_size(VIEWPORT)


def test_settings_page(page):
    go(page, "Settings")
    page.get_by_role("button", name="Add Ollama").click()
    idle(page)
    assert page.get_by_role("textbox", name="Base URL", exact=True).nth(1).input_value() == "http://localhost:11434/v1"
    page.get_by_role("textbox", name="Base URL", exact=True).nth(1).fill("localhost:11434")
    page.get_by_role("textbox", name="Base URL", exact=True).nth(1).press("Enter")
    idle(page)
    assert page.get_by_text("The URL must start with http:// or https://").is_visible()
