"""Runs shared by two real processes on one database: cancel, crash, races, other uids, streams."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import threading
import time

import pytest

from tests.conftest import wait_run
from tests.runs.conftest import LEASE_S
from tests.runs.proc import make_runtime


ORDER = ["queued", "in_progress", "requires_action", "cancelling", "cancelled", "completed", "failed", "incomplete",
         "expired"]


def _wait_status(rt, thread_id, run_id, status, timeout=10.0):
    deadline = time.monotonic() + timeout
    while rt.get_run(thread_id, run_id)["status"] != status:
        assert time.monotonic() < deadline, rt.get_run(thread_id, run_id)["status"]
        time.sleep(0.005)


def _run_on_a(a, content, assistant="assistant_id"):
    got = a.ask(op="run", content=content, assistant_id=a.ready[assistant])
    assert "run_id" in got, got
    return got["thread_id"], got["run_id"]


def _thread_takes_a_new_run(rt, thread_id):
    rt.create_message(thread_id, role="user", content="again")
    assistant = rt.create_assistant(model="fake-model")
    run = rt.create_run(thread_id, assistant_id=assistant["id"])
    assert wait_run(rt, thread_id, run["id"])["status"] == "completed"


def test_cancel_from_b_between_quick_tool_rounds_on_a(proc_a, rt_b):
    thread_id, run_id = _run_on_a(proc_a, "rounds:30")
    _wait_status(rt_b, thread_id, run_id, "in_progress")
    time.sleep(0.2)  # a few rounds in: the cancel lands between two quick model calls
    t0 = time.monotonic()
    assert rt_b.cancel_run(thread_id, run_id)["status"] == "cancelling"
    _wait_status(rt_b, thread_id, run_id, "cancelled", timeout=2)
    assert time.monotonic() - t0 < 1.0
    calls = len(rt_b.model_calls(run_id))
    time.sleep(0.3)
    assert len(rt_b.model_calls(run_id)) == calls  # no model call after the cancel
    _thread_takes_a_new_run(rt_b, thread_id)


def test_cancel_from_b_while_a_streams(proc_a, rt_b):
    thread_id, run_id = _run_on_a(proc_a, "slow:500:0.01")
    sub = rt_b.engine.hub.subscribe(run_id, after=0)
    names = []
    while "thread.message.delta" not in names:
        names.append(sub.queue.get(timeout=5)[0])
    t0 = time.monotonic()
    rt_b.cancel_run(thread_id, run_id)
    _wait_status(rt_b, thread_id, run_id, "cancelled", timeout=2)
    assert time.monotonic() - t0 < 1.0
    names += [e for e, _ in sub.events(timeout=5)]
    assert names[-2:] == ["thread.run.cancelled", "done"] and "thread.message.incomplete" in names
    reply = rt_b.list_messages(thread_id, order="desc")["data"][0]
    assert reply["status"] == "incomplete" and reply["content"][0]["text"]["value"].startswith("w0 ")
    _thread_takes_a_new_run(rt_b, thread_id)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")
def test_cancel_from_b_interrupts_a_code_cell_running_on_a(proc_a, rt_b):
    thread_id, run_id = _run_on_a(proc_a, "code", "code_assistant_id")
    deadline = time.monotonic() + 20
    while not any(s["type"] == "tool_calls" for s in rt_b.store.all("run_steps", run_id=run_id)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.5)  # the cell is sleeping inside the sandbox
    t0 = time.monotonic()
    rt_b.cancel_run(thread_id, run_id)
    _wait_status(rt_b, thread_id, run_id, "cancelled", timeout=3)
    assert time.monotonic() - t0 < 1.0
    (step,) = [s for s in rt_b.list_run_steps(thread_id, run_id)["data"] if s["type"] == "tool_calls"]
    assert step["status"] == "cancelled"


def test_sigkill_of_a_fails_its_runs_within_the_lease_while_b_serves(proc_a, rt_b):
    runs = [_run_on_a(proc_a, "slow:1000:0.01") for _ in range(3)]
    for thread_id, run_id in runs:
        _wait_status(rt_b, thread_id, run_id, "in_progress")
    os.kill(proc_a.p.pid, signal.SIGKILL)
    proc_a.p.wait(5)
    t0 = time.monotonic()
    for thread_id, run_id in runs:
        run = wait_run(rt_b, thread_id, run_id, timeout=LEASE_S + 3)
        assert run["status"] == "failed" and "restarted or killed" in run["last_error"]["message"]
    assert time.monotonic() - t0 < LEASE_S + 2.5
    _thread_takes_a_new_run(rt_b, runs[0][0])  # B kept serving, and the thread is usable again


def test_twenty_concurrent_submits_across_two_processes_accept_one(proc_a, rt_b):
    thread_id, run_id = _run_on_a(proc_a, "tool")
    _wait_status(rt_b, thread_id, run_id, "requires_action")
    call_id = rt_b.get_run(thread_id, run_id)["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
    outputs = [{"tool_call_id": call_id, "output": "18C"}]
    accepted_b: list[bool] = []
    barrier = threading.Barrier(10)

    def racer():
        barrier.wait()
        try:
            rt_b.submit_tool_outputs(thread_id, run_id, tool_outputs=outputs)
            accepted_b.append(True)
        except Exception:
            accepted_b.append(False)

    racers = [threading.Thread(target=racer) for _ in range(10)]
    [r.start() for r in racers]
    from_a = proc_a.ask(op="submit_many", n=10, thread_id=thread_id, run_id=run_id, tool_outputs=outputs)
    [r.join() for r in racers]
    assert sum(accepted_b) + from_a["accepted"] == 1
    assert wait_run(rt_b, thread_id, run_id)["status"] == "completed"
    replies = [m for m in rt_b.list_messages(thread_id)["data"] if m["role"] == "assistant"]
    assert len(replies) == 1 and len(rt_b.model_calls(run_id)) == 2


def _neighbour(data_dir: str, uid: int, stay_s: float, out) -> None:
    """Forked, then another uid: os.kill(pid, 0) would answer PermissionError for the other processes here."""
    os.setgid(uid)
    os.setuid(uid)
    rt = make_runtime(data_dir)
    try:
        a = rt.create_assistant(model="fake-model")
        t = rt.create_thread(messages=[{"role": "user", "content": "hello from nobody"}])
        run = rt.create_run(t["id"], assistant_id=a["id"])
        status = wait_run(rt, t["id"], run["id"])["status"]
        time.sleep(stay_s)  # its sweeper keeps running next to A's live run
        out.put((os.getuid(), status, rt.swept))
    finally:
        rt.close()


def test_a_neighbour_of_another_uid_leaves_live_runs_alone(shared_dir, proc_a, rt_b):
    for path in shared_dir.iterdir():  # the database's files, and the folder of uploaded files (SQLite)
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    thread_id, run_id = _run_on_a(proc_a, f"slow:{int(LEASE_S * 100 * 2)}:0.01")  # runs past two lease times
    _wait_status(rt_b, thread_id, run_id, "in_progress")
    ctx = multiprocessing.get_context("fork")  # exec'ing root's interpreter is not allowed to uid 65534
    out = ctx.Queue()
    child = ctx.Process(target=_neighbour, args=(str(shared_dir), 65534, LEASE_S * 1.5, out))
    child.start()
    try:
        uid, status, swept = out.get(timeout=30)
        assert uid == 65534 and status == "completed" and swept == 0
        assert rt_b.get_run(thread_id, run_id)["status"] == "in_progress"  # untouched while its lease lives
        assert wait_run(rt_b, thread_id, run_id, timeout=20)["status"] == "completed"
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def test_a_stream_on_b_gets_every_event_of_a_run_on_a_in_order_after_commit(proc_a, rt_b):
    _, run_id = _run_on_a(proc_a, "slow:40:0.005")
    proc_a.ask(op="stream", tag="a", run_id=run_id)
    seen_early = []
    on_b = []
    for event, data in rt_b.engine.hub.subscribe(run_id, after=0).events(timeout=10):
        on_b.append((event, data))
        if data and data.get("object") == "thread.run":
            # Never told before it is committed: the row already says so (or has moved on).
            stored = rt_b.store.get("runs", run_id)["status"]
            if ORDER.index(stored) < ORDER.index(data["status"]):
                seen_early.append((event, stored))
    on_a = proc_a.wait_tag("a")["events"]
    assert [(e, d) for e, d, _ in on_a] == on_b  # the same sequence, the same objects
    assert [e for e, _ in on_b][-2:] == ["thread.run.completed", "done"]
    assert sum(e == "thread.message.delta" for e, _ in on_b) == 40
    assert not seen_early


def test_deleting_a_thread_on_b_while_its_run_executes_on_a_leaves_no_orphans(proc_a, rt_b):
    thread_id, run_id = _run_on_a(proc_a, "slow:500:0.01")
    sub = rt_b.engine.hub.subscribe(run_id, after=0)
    while sub.queue.get(timeout=10)[0] != "thread.message.delta":
        pass
    rt_b.delete_thread(thread_id)
    assert sub.queue.get(timeout=3) is not None  # the stream ends (done) rather than hanging
    time.sleep(1.0)  # A's worker sees its run gone at its sweeper's next tick and stops
    for table in ("messages", "runs", "run_steps"):
        assert rt_b.store.count(table, thread_id=thread_id) == 0, table
    assert rt_b.store.count("model_calls", run_id=run_id) == 0
    assert rt_b.store.last_event_seq(run_id) == 0
    if hasattr(rt_b.store, "conn"):  # SQLite checks foreign keys on request; PostgreSQL always enforces them
        assert rt_b.store.conn().execute("PRAGMA foreign_key_check").fetchall() == []
    thread_id2, run_id2 = _run_on_a(proc_a, "hi")  # A keeps serving
    assert wait_run(rt_b, thread_id2, run_id2)["status"] == "completed"


def test_settings_saved_by_one_process_reach_another(shared_dir):
    from assistants.runtime import Runtime
    from tests.conftest import make_settings

    from assistants.store import open_store

    rt = Runtime(make_settings(shared_dir, ollama_autodetect=False))  # builds its own router: watches the settings
    other = open_store(make_settings(shared_dir))  # another process's store on the same database
    try:
        other.save_settings_document({"aliases": {"gpt-4o-mini": "fake-model"}})
        deadline = time.monotonic() + 5
        while rt.settings.aliases.get("gpt-4o-mini") != "fake-model":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert rt.router.aliases.get("gpt-4o-mini") == "fake-model"
    finally:
        other.close()
        rt.close()
