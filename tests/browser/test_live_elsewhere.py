"""A run executing in another process (here: this test's own Runtime) streams live in the Playground's Chromium page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from assistants.runtime import Runtime
from tests.browser import free_port, idle, launch, open_page, start_app, stop_app
from tests.conftest import wait_run
from tests.runs.proc import make_runtime

playwright_api = pytest.importorskip("playwright.sync_api")

# The reply text drawn in the thread (not the run's status box), from every assistant bubble.
REPLY_TEXT = """
() => Array.from(document.querySelectorAll('[data-testid=stChatMessage]'))
  .filter(m => m.querySelector('[data-testid=stChatMessageAvatarAssistant]'))
  .flatMap(m => Array.from(m.querySelectorAll('[data-testid=stMarkdownContainer]')))
  .filter(md => !md.closest('[data-testid=stExpander]'))
  .map(md => md.innerText).join('\\n')
"""
CURSOR = "\u258d"  # drawn after the text only while a reply streams


@dataclass
class Remote:
    rt: Runtime  # process B: executes the runs with a scripted slow model
    page: object  # process A's page: the Playground, which only follows them
    assistant_id: str
    thread_id: str

    def start_run(self, content: str) -> str:
        self.rt.create_message(self.thread_id, role="user", content=content)
        return self.rt.create_run(self.thread_id, assistant_id=self.assistant_id)["id"]

    def status(self, run_id: str) -> str:
        return self.rt.get_run(self.thread_id, run_id)["status"]


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> Iterator[Remote]:
    data_dir = tmp_path_factory.mktemp("live-elsewhere")
    rt = make_runtime(str(data_dir))
    try:
        a = rt.create_assistant(model="fake-model", name="Remote")
        t = rt.create_thread(metadata={"assistant_id": a["id"]})  # the thread the Playground opens
        port = free_port()
        proc = start_app(data_dir, port)
        try:
            with playwright_api.sync_playwright() as p:
                browser = launch(p)
                page = open_page(browser, f"http://127.0.0.1:{port}", viewport={"width": 1400, "height": 900})
                yield Remote(rt, page, a["id"], t["id"])
                browser.close()
        finally:
            stop_app(proc)
    finally:
        rt.close()


def test_a_run_executing_in_another_process_streams_token_by_token(remote):
    run_id = remote.start_run("slow:200:0.05")  # 200 words over ~10 s
    growing: list[int] = []  # lengths of the streamed reply seen while the run was still working
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = remote.page.evaluate(REPLY_TEXT)
        if remote.status(run_id) != "in_progress":
            break
        reply = remote.rt.list_messages(remote.thread_id, run_id=run_id)["data"]
        # Mid-stream the stored reply has no text yet: what the page shows comes from the event log.
        assert not reply or reply[0]["status"] != "in_progress" or reply[0]["content"] == []
        if "w0 w1" in text and CURSOR in text:
            if not growing or len(text) > growing[-1]:
                growing.append(len(text))
        remote.page.wait_for_timeout(150)
    assert len(growing) >= 5, growing  # the page followed the reply as it grew, not only at the end
    assert wait_run(remote.rt, remote.thread_id, run_id)["status"] == "completed"
    # Once the run ends the page redraws from the store: the whole reply, no cursor.
    remote.page.wait_for_function(f"() => ({REPLY_TEXT})().includes('w199')", timeout=30_000)
    idle(remote.page)
    final = remote.page.evaluate(REPLY_TEXT)
    assert CURSOR not in final and final.count("w199") == 1, final


def test_the_followed_run_can_be_cancelled_from_the_playground_while_it_streams(remote):
    run_id = remote.start_run("slow:600:0.05")  # ~30 s unless cancelled
    # Streaming: the cursor, after a few words of the new reply (the previous one ends with w199).
    remote.page.wait_for_function(f"() => {{ const t = ({REPLY_TEXT})(); return t.includes('{CURSOR}') && "
                                  "t.split('w199').pop().includes('w3 w4 w5'); }", timeout=30_000)
    remote.page.get_by_role("button", name="Cancel run").click()  # the stream gives way to the click
    run = wait_run(remote.rt, remote.thread_id, run_id, timeout=10)
    assert run["status"] == "cancelled"
    remote.page.get_by_text("Run cancelled.").first.wait_for(timeout=30_000)


# Watches every change of the page: whether an assistant bubble ever said "writing…" with no words of the reply in
# it, and the most bubbles that showed the reply's last word at one moment.
BUBBLE_PROBE = """
(last) => {
  const probe = window.__bubbles = {emptyWriting: 0, most: 0};
  const check = () => {
    const bubbles = Array.from(document.querySelectorAll('[data-testid=stChatMessage]'))
      .filter(m => m.querySelector('[data-testid=stChatMessageAvatarAssistant]'));
    let copies = 0;
    for (const m of bubbles) {
      const text = m.innerText;
      if (text.includes('writing…') && !/\\bw\\d+\\b/.test(text)) probe.emptyWriting += 1;
      if (new RegExp('\\\\b' + last + '\\\\b').test(text)) copies += 1;
    }
    probe.most = Math.max(probe.most, copies);
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""


def test_following_a_run_of_another_process_shows_one_bubble_with_words(remote):
    """The reply of a run started elsewhere is drawn once: never an empty "writing…" bubble beside the streamed one,
    never the streamed bubble and the stored reply side by side once it ends."""
    thread = remote.rt.create_thread(metadata={"assistant_id": remote.assistant_id, "title": "Followed"})
    remote.rt.create_message(thread["id"], role="user", content="first")
    remote.page.reload()  # opens the newest thread: this one
    idle(remote.page)
    remote.page.evaluate(BUBBLE_PROBE, "w59")
    remote.rt.create_message(thread["id"], role="user", content="slow:60:0.05")  # ~3 s, its first words at once
    run_id = remote.rt.create_run(thread["id"], assistant_id=remote.assistant_id)["id"]
    assert wait_run(remote.rt, thread["id"], run_id, timeout=60)["status"] == "completed"
    remote.page.wait_for_function(f"() => ({REPLY_TEXT})().includes('w59')", timeout=30_000)
    idle(remote.page)
    remote.page.wait_for_timeout(3_500)  # the idle page's next look at the thread (every 3 s) changes nothing
    probe = remote.page.evaluate("window.__bubbles")
    assert probe["emptyWriting"] == 0, probe
    assert probe["most"] == 1, probe
    final = remote.page.evaluate(REPLY_TEXT)
    assert CURSOR not in final and final.count("w59") == 1, final
