"""The code interpreter inside real runs: a runaway call times out and the run goes on; figures and files
reach the reply; an idle session is shut down and the next run is told."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import make_settings, wait_run
from tests.file_bytes import stored
from tests.fakes.provider import ScriptedProvider

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")
NO_CGROUP = "Note: no per-session cgroup ("


def plain(logs: str) -> str:
    """Logs without the first-call note of a host that gives us no cgroup (these tests run on both kinds)."""
    return logs.split("\n", 1)[1] if logs.startswith(NO_CGROUP) else logs


@pytest.fixture
def setup(tmp_path, request):
    """A runtime with a 20 s code timeout (matplotlib's first import takes seconds on a busy machine), or the param's."""
    provider = ScriptedProvider()
    timeout = getattr(request, "param", 20)
    runtime = Runtime(make_settings(tmp_path, code_timeout_s=timeout), router=ModelRouter([provider], default_model="fake-model"))
    yield runtime, provider
    runtime.close()


def start(rt):
    a = rt.create_assistant(model="fake-model", tools=[{"type": "code_interpreter"}])
    t = rt.create_thread(messages=[{"role": "user", "content": "go"}])
    return a, t


@pytest.mark.parametrize("setup", [2], indirect=True)
def test_a_runaway_call_times_out_and_the_run_continues(setup):
    rt, provider = setup
    runaway = "print('got this far')\nwhile True: pass"
    provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": runaway}))]},
                 {"tool_calls": [("code_interpreter", json.dumps({"code": "print('still here')"}))]},
                 {"text": "The loop never ended, so I stopped it."})
    a, t = start(rt)
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
    assert run["status"] == "completed"
    steps = rt.list_run_steps(t["id"], run["id"], order="asc")["data"]
    calls = [s["step_details"]["tool_calls"][0] for s in steps if s["type"] == "tool_calls"]
    first, second = (c["code_interpreter"]["outputs"] for c in calls)
    assert [o["type"] for o in first] == ["logs"]
    assert plain(first[0]["logs"]) == "got this far\nExecution timed out after 2 s and was stopped; the next call starts a fresh session.\n"
    assert "still here" in json.dumps(second) and "fresh session" in json.dumps(second)
    tool_msgs = [m["content"] for m in provider.requests[1]["messages"] if m["role"] == "tool"]
    assert plain(tool_msgs[0]).startswith("got this far\nExecution timed out")  # the model sees how far it got


def test_a_figure_becomes_an_image_in_the_reply_and_the_step(setup):
    rt, provider = setup
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
    provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]}, {"text": "Here it is."})
    a, t = start(rt)
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
    assert run["status"] == "completed"
    step = next(s for s in rt.list_run_steps(t["id"], run["id"])["data"] if s["type"] == "tool_calls")
    (image,) = [o for o in step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"] if o["type"] == "image"]
    reply = rt.list_messages(t["id"], run_id=run["id"])["data"][0]
    shown = [b["image_file"]["file_id"] for b in reply["content"] if b["type"] == "image_file"]
    assert shown == [image["image"]["file_id"]]
    assert rt.files.content(image["image"]["file_id"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_written_file_becomes_a_file_path_link_to_its_content(setup):
    rt, provider = setup
    code = "open('out.csv', 'w').write('a,b\\n1,2\\n')"
    provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]},
                 {"text": "Saved to sandbox:/mnt/data/out.csv for you."})
    a, t = start(rt)
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
    assert run["status"] == "completed"
    reply = rt.list_messages(t["id"], run_id=run["id"])["data"][0]
    (link,) = [n for n in reply["content"][0]["text"]["annotations"] if n["type"] == "file_path"]
    assert link["text"] == "sandbox:/mnt/data/out.csv"
    assert rt.files.content(link["file_path"]["file_id"]) == b"a,b\n1,2\n"  # written by the sandbox's uid, read here


def test_an_idle_session_is_shut_down_and_the_next_run_is_told(tmp_path):
    provider = ScriptedProvider()
    settings = make_settings(tmp_path, code_timeout_s=10, code_idle_minutes=1 / 60)
    rt = Runtime(settings, router=ModelRouter([provider], default_model="fake-model"))
    try:
        provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": "v = 1"}))]}, {"text": "Set."},
                     {"tool_calls": [("code_interpreter", json.dumps({"code": "print('v' in globals())"}))]},
                     {"text": "It is gone."})
        a, t = start(rt)
        assert wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)["status"] == "completed"
        time.sleep(2)  # twice the idle limit
        rt.create_message(t["id"], role="user", content="and now?")
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
        assert run["status"] == "completed"
        step = next(s for s in rt.list_run_steps(t["id"], run["id"])["data"] if s["type"] == "tool_calls")
        (logs,) = step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]
        assert plain(logs["logs"]) == ("Note: the previous Python session was shut down after 1 second without use; "
                                "this is a fresh session, so earlier variables and files are gone.\nFalse\n")
        reaper = rt.code_interpreter._reaper[0]
        assert reaper.is_alive()
    finally:
        rt.close()
    assert not reaper.is_alive()  # Runtime.close() stops it


def test_output_files_count_against_the_threads_quota_and_go_with_the_thread(tmp_path):
    provider = ScriptedProvider()
    rt = Runtime(make_settings(tmp_path, code_timeout_s=20, code_output_quota_mb=1),
                 router=ModelRouter([provider], default_model="fake-model"))
    try:
        write = "open('{0}', 'wb').write(b'x' * 600_000)"
        provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": write.format("one.bin")}))]},
                     {"tool_calls": [("code_interpreter", json.dumps({"code": write.format("two.bin")}))]},
                     {"text": "Done."})
        a, t = start(rt)
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
        assert run["status"] == "completed"
        kept = rt.files.list(purpose="assistants_output")["data"]
        assert [f["filename"] for f in kept] == ["one.bin"] and "_thread_id" not in kept[0]
        steps = rt.list_run_steps(t["id"], run["id"], order="asc")["data"]
        calls = [s["step_details"]["tool_calls"][0] for s in steps if s["type"] == "tool_calls"]
        (logs,) = calls[1]["code_interpreter"]["outputs"]  # the run log says why two.bin is missing
        assert logs["logs"].endswith("[two.bin (0.6 MB) was not kept: this thread's output files would pass their 1.0 MB "
                                     "quota (0.6 MB kept already; PLAYGROUND_CODE_OUTPUT_QUOTA_MB)]\n")
        tool_msgs = [m["content"] for m in provider.requests[2]["messages"] if m["role"] == "tool"]
        assert "two.bin (0.6 MB) was not kept" in tool_msgs[1]  # and so does the model's tool output
        assert kept[0]["id"] in stored(rt)
        other = rt.create_thread(messages=[{"role": "user", "content": "keep mine"}])
        mine = rt.files.create("mine.txt", b"user upload", "assistants")
        rt.delete_thread(t["id"])
        assert rt.files.list(purpose="assistants_output")["data"] == [] and kept[0]["id"] not in stored(rt)
        assert rt.files.get(mine["id"]) and rt.get_thread(other["id"])  # nothing else goes with it
    finally:
        rt.close()


def test_a_host_without_cgroups_says_so_in_the_run_log(tmp_path, monkeypatch):
    from assistants.tools.code_interpreter import budget

    monkeypatch.setattr(budget, "CGROUP_MOUNT", tmp_path / "no-cgroups")
    provider = ScriptedProvider()
    rt = Runtime(make_settings(tmp_path, code_timeout_s=20), router=ModelRouter([provider], default_model="fake-model"))
    try:
        provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(6 * 7)"}))]}, {"text": "42."})
        a, t = start(rt)
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
        step = next(s for s in rt.list_run_steps(t["id"], run["id"])["data"] if s["type"] == "tool_calls")
        (logs,) = step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"]
        assert logs["logs"] == (f"Note: no per-session cgroup (no cgroup filesystem is mounted at {tmp_path / 'no-cgroups'}), "
                                "so memory and process limits apply per process.\n42\n")
        assert "no per-session cgroup" in rt.code_interpreter.available()[1]
    finally:
        rt.close()
