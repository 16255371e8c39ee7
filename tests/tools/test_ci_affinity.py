"""Code Interpreter across instances: two real API servers on one database, each with its own fake model backend.

Which backend a run's model calls reach says which instance executed it. The model is scripted by the thread's last
user message: "code:<python>" calls code_interpreter with that code once, then answers with the tool's output.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import openai
import pytest

from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runs.instances import ApiServer, instance_env

pytestmark = [pytest.mark.both_databases,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")]

GRACE_S = 4.0  # long enough that a loaded machine's holder still adopts in time; lease 10 s (default)


def scripted(body: dict) -> dict:
    """The turn for a request: run the code of a "code:" message once, then answer with what it printed."""
    messages = body["messages"]
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    text = messages[last_user]["content"]
    text = text if isinstance(text, str) else "".join(p.get("text", "") for p in text)
    tool_results = [m["content"] for m in messages[last_user:] if m["role"] == "tool"]
    if text.startswith("slow:"):
        return {"text": "slow " * 20, "chunk_delay": float(text[5:]) / 20}
    if text.startswith("code:") and not tool_results:
        return {"tool_calls": [("code_interpreter", json.dumps({"code": text[5:]}))]}
    return {"text": "done: " + (tool_results[-1] if tool_results else text)}


class Instance:
    """One `python -m assistants.server` (tests/runs/instances.py) with its own fake model backend."""

    def __init__(self, stack: ExitStack, data_dir: Path, **env_extra: str):
        self.model = stack.enter_context(FakeOpenAIServer(responder=scripted))
        env = instance_env(data_dir, self.model.base_url, database_url_for(data_dir),
                           code_affinity_seconds=GRACE_S, run_lease_seconds=GRACE_S * 2.5)
        self.server = ApiServer({**env, **env_extra})
        stack.callback(self.server.stop)
        self.client = self.server.client()

    def calls(self) -> int:
        """Model calls this instance made (only the instance executing a run calls the model)."""
        return len(self.model.requests)


@pytest.fixture
def data_dir(db):
    path = Path(tempfile.mkdtemp(prefix="ci-affinity-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pair(data_dir):
    """Instances A (one run worker, so it can be made busy) and B."""
    with ExitStack() as stack:
        a = Instance(stack, data_dir, PLAYGROUND_RUN_WORKERS="1")  # first: it creates the schema
        b = Instance(stack, data_dir)
        yield a, b


def run_code(via: Instance, thread_id: str, assistant_id: str, code: str, *, timeout: float = 60) -> tuple[str, float]:
    """Run `code` through a run created on `via`; (the code interpreter's logs, seconds the run took)."""
    client = via.client
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content="code:" + code)
    t0 = time.monotonic()
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    while run.status in ("queued", "in_progress"):
        assert time.monotonic() - t0 < timeout, f"run still {run.status}"
        time.sleep(0.05)
        run = client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    took = time.monotonic() - t0
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc").data
    call = next(s for s in steps if s.type == "tool_calls").step_details.tool_calls[0]
    return "".join(o.logs for o in call.code_interpreter.outputs if o.type == "logs"), took


def make_assistant(client: openai.OpenAI) -> tuple[str, str]:
    """An assistant with a data file for code_interpreter; (its id, the data file's name)."""
    data = client.files.create(file=("data.csv", b"city,temp\nParis,21\n"), purpose="assistants")
    assistant = client.beta.assistants.create(model="fake-model", tools=[{"type": "code_interpreter"}],
                                              tool_resources={"code_interpreter": {"file_ids": [data.id]}})
    return assistant.id, "data.csv"


def test_runs_go_to_the_session_holder_and_move_with_the_files_when_it_is_killed(pair):
    a, b = pair
    assistant_id, _ = make_assistant(a.client)
    thread = a.client.beta.threads.create()
    logs, _ = run_code(a, thread.id, assistant_id, "x = 41\nopen('out.txt', 'w').write('kept')\nprint('ready')")
    assert logs == "ready\n"
    calls_a, calls_b = a.calls(), b.calls()

    # Runs of that thread queued through B are executed by A, in the same live session (x is still there).
    for expected in (42, 43):
        logs, took = run_code(b, thread.id, assistant_id, "x += 1\nprint(x)")
        assert logs == f"{expected}\n"
        assert took < GRACE_S  # A adopted them: B did not wait out its grace and run them itself
    assert a.calls() == calls_a + 4 and b.calls() == calls_b

    # A dies: after the grace, B runs the thread's code in a fresh session with the thread's files back.
    a.server.kill()
    logs, took = run_code(b, thread.id, assistant_id,
                          "import os\nprint(sorted(os.listdir('.')))\nprint(open('out.txt').read())\nprint(x)")
    assert b.calls() == calls_b + 2
    assert "the previous Python session ran in another server process" in logs
    assert "this is a fresh session, so earlier variables are gone" in logs
    assert "the thread's files were restored into /mnt/data: data.csv, out.txt." in logs
    assert "['data.csv', 'out.txt']\nkept\n" in logs
    assert "NameError: name 'x' is not defined" in logs

    # B holds the session now: the next run keeps what the previous one defined, and says nothing of a restart.
    logs, _ = run_code(b, thread.id, assistant_id, "y = 5\nprint('y set')")
    logs, _ = run_code(b, thread.id, assistant_id, "print(y * 2)")
    assert logs == "10\n"


def test_a_busy_holder_loses_the_run_after_the_grace_and_gets_the_thread_back_later(pair):
    a, b = pair
    assistant_id, _ = make_assistant(a.client)
    thread = a.client.beta.threads.create()
    run_code(a, thread.id, assistant_id, "x = 1\nopen('notes.txt', 'w').write('from A')\nprint('ok')")

    # A's only worker is busy streaming a slow reply on another thread.
    other = a.client.beta.threads.create(messages=[{"role": "user", "content": f"slow:{GRACE_S * 3}"}])
    slow = a.client.beta.threads.runs.create(thread_id=other.id, assistant_id=assistant_id)
    deadline = time.monotonic() + 10
    while a.client.beta.threads.runs.retrieve(slow.id, thread_id=other.id).status != "in_progress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    calls_b = b.calls()
    logs, took = run_code(b, thread.id, assistant_id, "print(open('notes.txt').read())\nprint('x' in dir())")
    assert took >= GRACE_S * 0.9 and b.calls() == calls_b + 2  # B waited for A, then ran it itself
    assert "the thread's files were restored into /mnt/data: data.csv, notes.txt." in logs
    assert logs.endswith("from A\nFalse\n")
    a.client.beta.threads.runs.poll(slow.id, thread_id=other.id, poll_interval_ms=100)

    # Now B holds the session: a run queued through A (free again) goes to B, into B's session.
    calls_a = a.calls()
    run_code(b, thread.id, assistant_id, "z = 'on B'\nprint(z)")
    logs, took = run_code(a, thread.id, assistant_id, "print(z)")
    assert logs == "on B\n" and took < GRACE_S and a.calls() == calls_a


def test_threads_without_a_session_are_run_at_once_by_the_instance_that_got_them(pair):
    a, b = pair
    assistant_id, _ = make_assistant(a.client)
    for via in (a, b, a, b):
        before = via.calls()
        thread = via.client.beta.threads.create()
        logs, took = run_code(via, thread.id, assistant_id, "print(6 * 7)")
        assert logs == "42\n" and took < GRACE_S and via.calls() == before + 2


def test_the_store_records_holders_adopts_only_for_live_sessions_and_forgets_deleted_threads(rt):
    store, now = rt.store, time.time()
    held, other, gone = (rt.create_thread()["id"] for _ in range(3))
    store.record_ci_session(held, "me", now, now + 10)
    store.record_ci_session(other, "them", now, now + 10)
    store.record_ci_session(gone, "me", now, now + 10)
    assert store.ci_session(held) == ("me", now + 10) and store.ci_session("thread_none") is None
    for thread_id in (held, other, gone):  # queued runs reserved by an instance that is not us
        store.insert("runs", {"id": f"run_{thread_id}", "created_at": 1, "thread_id": thread_id, "status": "queued",
                              "_owner": "queuer", "_lease_until": now + 10})
    # A run of a thread whose live session is ours is adopted, once; the others' are not.
    assert store.adopt_ci_runs("me", now + 20, now, 10) == [f"run_{held}", f"run_{gone}"]
    assert store.adopt_ci_runs("me", now + 20, now, 10) == []
    # The heartbeat keeps live sessions alive, ends the rest, and says which live ones are still ours.
    rt.delete_thread(gone)
    store.record_ci_session(other, "me", now, now + 10)  # we take `other` over...
    store.record_ci_session(other, "them", now, now + 10)  # ...and lose it again
    assert store.renew_ci_sessions("me", [held, gone, other], now + 30) == [held]
    assert store.ci_session(gone) is None and store.ci_session(other) == ("them", now + 10)
    assert store.renew_ci_sessions("me", [], now + 40) == [] and store.ci_session(held) == ("me", None)
    assert store.adopt_ci_runs("me", now + 20, now, 10) == []  # no live session of ours left


def test_a_session_another_instance_took_over_is_retired_unless_used_since(tmp_path):
    from assistants.tools.code_interpreter import CodeInterpreter

    interp = CodeInterpreter(tmp_path, timeout_s=20)
    try:
        interp.execute("t1", "a = 1")
        before = time.monotonic()
        interp.execute("t2", "b = 2")
        assert sorted(interp.live_keys()) == ["t1", "t2"]
        interp.retire("t2", before)  # used since: kept, with its variables
        interp.retire("t1", before)
        assert interp.live_keys() == ["t2"] and interp.execute("t2", "print(b)").logs == "2\n"
        assert interp.execute("t1", "print('a' in dir())").logs == "False\n"  # a new session, nothing to say
        interp.restart("t1", "ran in another server process", {"kept.txt": b"back"})
        interp.retire("t1", time.monotonic())  # restarted, its code about to run here: not retired
        logs = interp.execute("t1", "print(open('kept.txt').read())").logs
        assert logs.startswith("Note: the previous Python session ran in another server process; this is a fresh "
                               "session, so earlier variables are gone; the thread's files were restored into "
                               "/mnt/data: kept.txt.\n") and logs.endswith("back\n")
    finally:
        interp.close()
