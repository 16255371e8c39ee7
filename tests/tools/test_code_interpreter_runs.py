"""The code interpreter inside real runs: a runaway call times out and the run goes on; figures reach the reply."""

from __future__ import annotations

import json
import shutil

import pytest

from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import make_settings, wait_run
from tests.fakes.provider import ScriptedProvider

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")


@pytest.fixture
def setup(tmp_path):
    provider = ScriptedProvider()
    runtime = Runtime(make_settings(tmp_path, code_timeout_s=2), router=ModelRouter([provider], default_model="fake-model"))
    yield runtime, provider
    runtime.close()


def start(rt):
    a = rt.create_assistant(model="fake-model", tools=[{"type": "code_interpreter"}])
    t = rt.create_thread(messages=[{"role": "user", "content": "go"}])
    return a, t


def test_a_runaway_call_times_out_and_the_run_continues(setup):
    rt, provider = setup
    provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": "while True: pass"}))]},
                 {"tool_calls": [("code_interpreter", json.dumps({"code": "print('still here')"}))]},
                 {"text": "The loop never ended, so I stopped it."})
    a, t = start(rt)
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"], timeout=60)
    assert run["status"] == "completed"
    steps = rt.list_run_steps(t["id"], run["id"], order="asc")["data"]
    calls = [s["step_details"]["tool_calls"][0] for s in steps if s["type"] == "tool_calls"]
    first, second = (c["code_interpreter"]["outputs"] for c in calls)
    assert "timed out" in json.dumps(first)
    assert "still here" in json.dumps(second) and "fresh session" in json.dumps(second)
    tool_msgs = [m["content"] for m in provider.requests[1]["messages"] if m["role"] == "tool"]
    assert "timed out" in tool_msgs[0]


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
