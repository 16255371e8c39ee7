"""Driving the real app in Debian's Chromium: start `streamlit run app.py`, open pages, time the first token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import database_url_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's; `playwright install` cannot download a browser here
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}

# Records when Enter is pressed in the chat box, when the new assistant message's run status box appears and
# when its first streamed text is on screen, in the page's own clock (performance.now()).
FIRST_TOKEN_PROBE = """
() => {
  const probe = window.__firstToken = {pressed: null, shown: null, status: null};
  const assistantMessages = () => Array.from(document.querySelectorAll('[data-testid=stChatMessage]'))
    .filter(m => m.querySelector('[data-testid=stChatMessageAvatarAssistant]'));
  const before = assistantMessages().length;
  document.addEventListener('keydown', e => {
    if (e.key === 'Enter' && probe.pressed === null) probe.pressed = performance.now();
  }, true);
  const check = () => {
    if (probe.pressed === null || probe.shown !== null) return;
    for (const m of assistantMessages().slice(before)) {
      if (probe.status === null && m.querySelector('[data-testid=stExpander]')) probe.status = performance.now();
      for (const md of m.querySelectorAll('[data-testid=stMarkdownContainer]')) {
        if (md.closest('[data-testid=stExpander]')) continue;  // the run's status box, not the reply
        if (md.innerText.replace('\u258d', '').trim()) { probe.shown = performance.now(); return; }
      }
    }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(data_dir: Path, **extra: str) -> dict:
    """The app's environment: none of the developer's OPENAI_/PLAYGROUND_ settings, the data dir and its database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PLAYGROUND_"))}
    env.update(PLAYGROUND_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    url = database_url_for(data_dir)  # "" unless the test runs on PostgreSQL
    if url:
        env["PLAYGROUND_DATABASE_URL"] = url
    env.update(extra)
    return env


def start_app(data_dir: Path, port: int, timeout: float = 90.0, env: dict | None = None,
              script: str = "app.py") -> subprocess.Popen:
    """`streamlit run app.py` (or `script`) on `port` over `data_dir` (plus settings in `env`), once it answers."""
    env = app_env(data_dir, **(env or {}))
    log = open(Path(data_dir) / "streamlit.log", "ab")  # closed by stop_app, with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: see {data_dir}/streamlit.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    stop_app(proc)
    raise RuntimeError(f"streamlit did not answer on port {port} within {timeout:.0f} s")


def stop_app(proc: subprocess.Popen) -> None:
    """Stop the app started by start_app (its own process group only)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    proc.log.close()  # type: ignore[attr-defined]


def launch(playwright):
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser, url: str, **new_page_args):
    """A new page of the browser at url, once Streamlit has finished its first run (60 s default timeout)."""
    page = browser.new_page(**new_page_args)
    page.set_default_timeout(60_000)
    page.goto(url)
    idle(page)
    return page


def idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout_ms)
    page.wait_for_timeout(300)


def go(page, title: str) -> None:
    """Open a page from the top navigation."""
    page.locator("header a, [data-testid=stSidebarNav] a", has_text=title).first.click()
    page.wait_for_url(f"**/{'' if title == 'Playground' else title.lower()}*")
    idle(page)
