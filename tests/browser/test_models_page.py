"""The Models page in Chromium: download a catalog model from a (throttled) fake hub with a live progress bar."""

from __future__ import annotations

import re

import pytest

from assistants.model_catalog import CATALOG
from assistants.providers.embedded import model_path
from tests.browser import ROOT, VIEWPORT, free_port, go, idle, launch, open_page, start_app, stop_app
from tests.fakes.hf_hub import FakeHub, HubFile, HubServer

playwright_api = pytest.importorskip("playwright.sync_api")
SHOTS = ROOT / "docs" / "screenshots"
FIRST, OTHER = CATALOG[0], CATALOG[2]


@pytest.fixture(scope="module")
def hub():
    f = HubFile(model_path())
    fake = FakeHub(repos={m.repo: {m.filename: f} for m in CATALOG}, throttle=12_000_000)  # ~8 s for 98 MB
    with HubServer(fake) as served:
        yield served


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("models-page")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", hub.url)  # start_app passes the environment on
        mp.delenv("HF_TOKEN", raising=False)
        mp.setenv("HF_HOME", str(data_dir / "hf-home"))
        port = free_port()
        proc = start_app(data_dir, port)
    yield f"http://127.0.0.1:{port}", data_dir / "models"
    stop_app(proc)


@pytest.fixture(scope="module")
def page(app):
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        pg = open_page(browser, app[0], viewport=VIEWPORT, color_scheme="light")
        go(pg, "Models")
        yield pg
        browser.close()


def slug(model) -> str:
    return "".join(c if c.isalnum() else "_" for c in model.model_id)


def card(page, model):
    return page.locator(f".st-key-models_card_{slug(model)}")


def test_download_a_catalog_model_with_a_live_progress_bar(page, app):
    _, models_dir = app
    page.get_by_role("heading", name="Recommended models").wait_for()
    assert card(page, FIRST).get_by_text(re.compile(r"Fits this machine|Best fit|Needs \d+ GB RAM")).count() == 1
    assert card(page, FIRST).get_by_text(FIRST.licence).count() == 1

    card(page, FIRST).get_by_role("button", name="Download", exact=True).click()
    bar = page.get_by_test_id("stProgress")
    bar.wait_for(timeout=20_000)
    # The bar moves on its own (the page is not touched): bytes, speed and time left.
    status = page.get_by_text(re.compile(r"^[\d.]+ MB of 98\.4 MB · [\d.]+ MB/s · \d+ s left$"))
    status.first.wait_for(timeout=20_000)
    first = status.first.inner_text()
    page.wait_for_function("(t) => !document.body.innerText.includes(t)", arg=first, timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "models.png"))
    assert card(page, FIRST).get_by_role("button", name="Downloading…").is_disabled()

    # Another tab sees the same download (one manager per process, not per browser session).
    other = page.context.browser.new_page(viewport=VIEWPORT)
    other.goto(page.url)
    idle(other)
    other.locator(".st-key-models_dl_" + slug(FIRST)).wait_for(timeout=20_000)
    other.close()

    page.get_by_text(f"{FIRST.model_id} is in the models folder").wait_for(timeout=60_000)
    idle(page)
    assert (models_dir / f"{FIRST.model_id}.gguf").stat().st_size == 98_362_432
    assert not list(models_dir.glob("*.part")) and not list((models_dir / ".downloads").glob("*.part"))
    assert card(page, FIRST).get_by_role("button", name="Downloaded").is_disabled()
    assert page.locator(f".st-key-models_have_{slug(FIRST)}").count()


def test_cancel_a_download(page, app):
    _, models_dir = app
    card(page, OTHER).get_by_role("button", name="Download", exact=True).click()
    page.get_by_test_id("stProgress").wait_for(timeout=20_000)
    page.get_by_role("button", name="Cancel", exact=True).click()
    page.get_by_text("Cancelled; the partial file was removed.").wait_for(timeout=20_000)
    assert not (models_dir / f"{OTHER.model_id}.gguf").exists()
    assert not list((models_dir / ".downloads").glob(f"{OTHER.model_id}*"))
    page.get_by_role("button", name="Dismiss").first.click()
    idle(page)


def test_a_repo_that_does_not_exist_says_so(page):
    page.get_by_role("textbox", name="Repository").fill("nobody/No-Such-Model-GGUF")
    page.get_by_role("textbox", name="File").fill("model-Q4_K_M.gguf")
    page.locator("[data-testid=stForm]").get_by_role("button", name="Download").click()
    page.get_by_text(re.compile("no repository “nobody/No-Such-Model-GGUF”")).wait_for(timeout=20_000)
    page.get_by_role("textbox", name="File").fill("model.safetensors")
    page.locator("[data-testid=stForm]").get_by_role("button", name="Download").click()
    page.get_by_text("is not a GGUF file name").wait_for(timeout=20_000)


def test_delete_a_downloaded_model_after_confirming(page, app):
    _, models_dir = app
    page.locator(f".st-key-models_have_{slug(FIRST)}").get_by_role("button", name="Delete").click()
    idle(page)
    page.get_by_text(f"Delete the model {FIRST.model_id}?").wait_for()
    assert (models_dir / f"{FIRST.model_id}.gguf").exists()
    page.get_by_role("button", name="Yes, delete").click()
    page.get_by_text(f"Deleted {FIRST.model_id}.").wait_for(timeout=20_000)
    assert not (models_dir / f"{FIRST.model_id}.gguf").exists()
    card(page, FIRST).get_by_role("button", name="Download", exact=True).wait_for()
