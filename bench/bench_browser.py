"""Browser latency: Enter in the Playground's message box to the first streamed token on screen.

`ui_first_token_ratio` is that time over the same for the simplest possible Streamlit chat page over the same model
(`bench/minimal_chat.py`: `st.chat_input` + `st.write_stream`), measured in the same Chromium, round for round
(alternating, so both see the same load), median over rounds. It travels between machines; absolute times do not.
`ui_first_token_ms` is what the app adds (Streamlit rerun, storing the message, queueing the run, the event
stream, the websocket and the browser drawing): per message, the time the page saw minus the time the
embedded model itself took to its first token on the very same request (replayed in this process from the
run's logged model call), median over messages. Run as a script: `python bench/bench_browser.py [--quick]`.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.providers.embedded import EmbeddedProvider
from assistants.runtime import Runtime
from assistants.store import Store
from tests.browser import FIRST_TOKEN_PROBE, VIEWPORT, free_port, idle, launch, start_app, stop_app

MAX_TOKENS = 32


def _seed(data_dir: Path) -> None:
    rt = Runtime(Settings(data_dir=data_dir))
    try:
        rt.create_assistant(model=EMBEDDED_MODEL_ID, name="Bench", temperature=0.0,
                            instructions="You are a friendly assistant. Answer in one short sentence.")
    finally:
        rt.close()


def _prepare_playground(page) -> None:
    """The reply cap of the baseline page, set in Run options once."""
    page.get_by_role("button", name="Run options").click()
    limit = page.get_by_role("spinbutton", name="Max reply tokens")
    limit.fill(str(MAX_TOKENS))
    limit.press("Enter")
    idle(page)
    page.keyboard.press("Escape")


def _one_round(page, text: str, playground: bool) -> tuple[float, float]:
    """Enter-to-first-token and Enter-to-status (ms) for one message; the Playground's on a fresh thread."""
    if playground:
        new = page.locator(".st-key-playground_threads_new button").first
        if new.is_enabled():
            new.click()
            idle(page)
    page.evaluate(FIRST_TOKEN_PROBE)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function("() => window.__firstToken.shown !== null")
    probe = page.evaluate("window.__firstToken")
    idle(page)  # the page run that streams ends with the reply (then redraws it stored)
    page.get_by_test_id("stChatInputTextArea").and_(page.locator(":enabled")).wait_for()
    return probe["shown"] - probe["pressed"], (probe["status"] or probe["shown"]) - probe["pressed"]


def _browser_rounds(url: str, baseline_url: str, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """`rounds` messages to the Playground and to the minimal chat page, alternating, in one Chromium: the
    Playground's Enter-to-first-token and Enter-to-status times and the baseline's first-token times (ms)."""
    from playwright.sync_api import sync_playwright

    times, status, baseline = [], [], []
    with sync_playwright() as p:
        browser = launch(p)
        page, base = browser.new_page(viewport=VIEWPORT), browser.new_page(viewport=VIEWPORT)
        for tab, address in ((page, url), (base, baseline_url)):
            tab.set_default_timeout(120_000)
            tab.goto(address)
            idle(tab)
        _prepare_playground(page)
        for i in range(rounds):
            text = f"Say hello to visitor number {i + 1}."
            shown, seen = _one_round(page, text, playground=True)
            times.append(shown)
            status.append(seen)
            baseline.append(_one_round(base, text, playground=False)[0])
        browser.close()
    return times, status, baseline


def _model_first_token(requests: list[dict]) -> list[float]:
    """The embedded model's own time to first token (ms) for each logged request, replayed in order."""
    provider = EmbeddedProvider()
    provider.worker().start()  # loading the model is not part of any request's time
    out = []
    for request in requests:
        first: list[float] = []

        def on_text(_text: str, first: list[float] = first) -> None:
            if not first:
                first.append(time.perf_counter())

        started = time.perf_counter()
        provider.chat(request, on_text=on_text, cancel=threading.Event())
        out.append((first[0] - started) * 1000 if first else float("nan"))
    return out


def bench(quick: bool) -> dict:
    """ui_first_token_ratio (the Playground's Enter to first token over the minimal chat page's), and
    ui_first_token_ms (median of page time minus model time) with its parts, in ms."""
    rounds = 4 if quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        data_dir = Path(tmp)
        _seed(data_dir)
        port, baseline_port = free_port(), free_port()
        proc = start_app(data_dir, port)
        (data_dir / "baseline").mkdir()
        baseline = start_app(data_dir / "baseline", baseline_port, script="bench/minimal_chat.py")
        try:
            # The first round loads the model in each app and is left out of every number.
            page_ms, status_ms, base_ms = _browser_rounds(f"http://127.0.0.1:{port}",
                                                          f"http://127.0.0.1:{baseline_port}", rounds + 1)
        finally:
            stop_app(proc)
            stop_app(baseline)
        store = Store(data_dir / "playground.db")
        try:
            requests = [c["request"] for c in store.all("model_calls")]
        finally:
            store.close()
    if len(requests) != len(page_ms):
        raise RuntimeError(f"expected {len(page_ms)} model calls, found {len(requests)}")
    model_ms = _model_first_token(requests)
    added = [p - m for p, m in zip(page_ms[1:], model_ms[1:], strict=True)]
    return {
        "ui_first_token_ratio": round(statistics.median(page_ms[1:]) / statistics.median(base_ms[1:]), 2),
        "ui_first_token_baseline_ms": round(statistics.median(base_ms[1:]), 1),
        "ui_first_token_ms": round(statistics.median(added), 1),
        "ui_first_token_page_ms": round(statistics.median(page_ms[1:]), 1),
        "ui_first_token_model_ms": round(statistics.median(model_ms[1:]), 1),
        # Enter to the run's status box on screen: the part spent before the run even reaches the model.
        "ui_run_shown_ms": round(statistics.median(status_ms[1:]), 1),
    }


if __name__ == "__main__":
    print(json.dumps(bench("--quick" in sys.argv)))
