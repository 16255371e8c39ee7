"""Settings in Chromium: a key typed then Tab (no Enter) is used by Test connection and saved; new rows start clean."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from assistants.config import Settings
from assistants.store import open_store
from tests.conftest import database_url_for
from tests.browser import free_port, go, idle, launch, open_page, stop_app
from tests.browser.test_share import start
from tests.fakes.openai_server import FakeOpenAIServer

playwright_api = pytest.importorskip("playwright.sync_api")
KEY = "sk-lab-typed-then-tab-0123"


@contextmanager
def settings_page(data_dir, viewport: dict):
    """The app on data_dir (no embedded model, no Ollama probe) in Chromium, on its Settings page."""
    port = free_port()
    proc = start(data_dir, port, PLAYGROUND_EMBEDDED_MODEL="0", PLAYGROUND_OLLAMA_AUTODETECT="0")
    try:
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            page = open_page(browser, f"http://127.0.0.1:{port}", viewport=viewport)
            go(page, "Settings")
            yield page
            browser.close()
    finally:
        stop_app(proc)


@contextmanager
def shared_settings(data_dir):
    """The store holding the settings of data_dir's app, as another instance opens it."""
    store = open_store(Settings(data_dir=data_dir, database_url=database_url_for(data_dir)))
    try:
        yield store
    finally:
        store.close()


def test_key_typed_then_tab_is_tested_and_saved(tmp_path):
    with FakeOpenAIServer(models=("lab-model",), api_key=KEY) as srv, \
            settings_page(tmp_path, {"width": 1400, "height": 900}) as page:
        page.get_by_role("button", name="Add another server").click()
        idle(page)
        # Nothing typed yet: no red errors.
        assert page.locator("[data-testid=stMarkdownContainer] span", has_text="Give this server a name").count() == 0
        assert page.locator("[data-testid=stMarkdownContainer] span", has_text="Enter the server's base URL").count() == 0
        row = page.locator("[class*='st-key-settings_b_'][class*='_name']").first
        row.locator("input").fill("lab")
        row.locator("input").press("Tab")
        url = page.locator("[class*='st-key-settings_b_'][class*='_url'] input").first
        url.fill(srv.base_url)
        url.press("Tab")
        key = page.locator("[class*='st-key-settings_b_'][class*='_key'] input").first
        key.click()
        page.keyboard.type(KEY)
        page.keyboard.press("Tab")  # no Enter: the next click must still use it
        page.get_by_role("button", name="Test connection").last.click()
        idle(page)
        page.get_by_text("Connected: 1 model").wait_for(timeout=20_000)
        key = page.locator("[class*='st-key-settings_b_'][class*='_key'] input").first
        key.click()
        key.fill("")
        page.keyboard.type(KEY)
        page.keyboard.press("Tab")
        page.get_by_role("button", name="Save settings").click()
        idle(page)
        page.get_by_text("Saved.").first.wait_for(timeout=20_000)
        with shared_settings(tmp_path) as store:
            saved = store.settings_document()[1]
        assert saved["backends"] == [{"name": "lab", "base_url": srv.base_url, "api_key": KEY}]


def _overlaps(a: dict | None, b: dict | None) -> bool:
    return bool(a and b) and a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] \
        and a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_nothing_covers_the_save_button(tmp_path):
    """Settings saved elsewhere, then saved here: what the page says about it never lies over Save (issue 12 item 9)."""
    with settings_page(tmp_path, {"width": 1024, "height": 768}) as page:
        save = page.locator(".st-key-settings_save_top button")
        with shared_settings(tmp_path) as elsewhere:  # another instance saves (settings live in the database)
            elsewhere.save_settings_document({**elsewhere.settings_document()[1], "default_model": "elsewhere-model"})
        page.get_by_text("just saved elsewhere").first.wait_for(timeout=20_000)
        idle(page)
        page.screenshot(path=str(tmp_path / "settings_elsewhere.png"))
        toasts = page.get_by_test_id("stToast")
        assert all(not _overlaps(toasts.nth(i).bounding_box(), save.bounding_box()) for i in range(toasts.count()))
        save.click()
        page.get_by_text("Saved.").first.wait_for(timeout=20_000)
        idle(page)
        page.screenshot(path=str(tmp_path / "settings_saved.png"))
        toasts = page.get_by_test_id("stToast")
        assert all(not _overlaps(toasts.nth(i).bounding_box(), save.bounding_box()) for i in range(toasts.count()))
