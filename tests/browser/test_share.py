"""The real server on a shared address: refused without a login, a login with one; foreign websockets refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.browser import ROOT, app_env, free_port, idle, launch, stop_app

playwright_api = pytest.importorskip("playwright.sync_api")
websockets = pytest.importorskip("websockets")


def start(data_dir, port: int, *args: str, **env: str) -> subprocess.Popen:
    """`streamlit run app.py` with extra options and environment, once it answers its health check."""
    clean = app_env(data_dir, **env)
    log = open(data_dir / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.port", str(port), "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none", *args],
                            cwd=ROOT, env=clean, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    stop_app(proc)
    raise RuntimeError("streamlit did not start")


def handshake(port: int, origin: str | None, host: str | None = None) -> str:
    """What a websocket handshake on /_stcore/stream with these headers gets: "open" or the refusal."""
    headers = {k: v for k, v in (("Origin", origin), ("Host", host)) if v}

    async def attempt() -> str:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", additional_headers=headers,
                                          subprotocols=["streamlit"], open_timeout=10):
                return "open"
        except websockets.exceptions.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"
    return asyncio.run(attempt())


def test_default_binds_loopback_and_refuses_foreign_websockets(tmp_path):
    port = free_port()
    proc = start(tmp_path, port)
    try:
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        local = {line.split()[3] for line in out.splitlines() if line.strip()}
        assert local == {f"127.0.0.1:{port}"}, out
        assert handshake(port, f"http://127.0.0.1:{port}") == "open"
        assert handshake(port, "http://evil.example") == "refused 403"
        # DNS rebinding: the attacker's host name resolving to us, same-origin from the browser's view.
        assert handshake(port, f"http://evil.example:{port}", f"evil.example:{port}").startswith("refused")
    finally:
        stop_app(proc)


@pytest.mark.parametrize("path", ["/", "/playground", "/settings"])
def test_shared_address_pages_need_a_login(tmp_path, path):
    port = free_port()
    refused = start(tmp_path, port, "--server.address", "0.0.0.0")
    port2 = free_port()
    (tmp_path / "b").mkdir()
    gated = start(tmp_path / "b", port2, "--server.address", "0.0.0.0", PLAYGROUND_PASSWORD="open sesame 42")
    try:
        with playwright_api.sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}{path}")
            idle(page)
            body = page.inner_text("body")
            assert "The Playground is not open" in body and "PLAYGROUND_PASSWORD" in body
            assert "Settings" not in page.locator("h1").all_inner_texts() and "New" not in body

            page.goto(f"http://127.0.0.1:{port2}{path}")
            idle(page)
            assert page.locator("input[type=password]").count() == 1 and "Saved in" not in page.inner_text("body")
            page.locator("input[type=password]").fill("nope")
            page.get_by_role("button", name="Log in").click()
            idle(page)
            assert "Wrong password" in page.inner_text("body")
            page.locator("input[type=password]").fill("open sesame 42")
            page.get_by_role("button", name="Log in").click()
            idle(page)
            assert page.get_by_role("button", name="Log in").count() == 0 and "Wrong password" not in page.inner_text("body")
            browser.close()
    finally:
        stop_app(refused)
        stop_app(gated)
