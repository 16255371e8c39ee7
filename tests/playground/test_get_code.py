"""Get code: the generated `openai` SDK script runs against a real API server and makes the same things again."""

from __future__ import annotations

import contextlib
import io

from playground.get_code import generate
from tests.conftest import wait_run
from tests.server.conftest import running_api

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _run_script(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "get_code.py", "exec"), {})  # running the generated code is the point of the test
    return out.getvalue()


def test_generated_code_recreates_assistant_thread_and_run(tmp_path):
    with running_api(tmp_path, api_keys=()) as api:
        rt = api.rt
        a = rt.create_assistant(model="fake-model", name="Investing Bot", instructions="You are an expert's \"bot\".",
                                temperature=0.2, top_p=0.9, tools=[{"type": "function", "function": WEATHER}],
                                response_format={"type": "json_object"})
        thread = rt.create_thread(metadata={"assistant_id": a["id"]})
        rt.create_message(thread["id"], role="user", content="Line one\nline two: $10,000 'quoted'")
        api.fake.add({"text": "first answer"})
        done = wait_run(rt, thread["id"], rt.create_run(thread["id"], assistant_id=a["id"],
                                                        max_completion_tokens=64)["id"])
        messages = rt.list_messages(thread["id"], order="asc")["data"]
        code = generate(rt.get_assistant(a["id"]), messages, done, base_url=api.base_url)
        compile(code, "get_code.py", "exec")
        api.fake.add({"text": "answer again"})
        printed = _run_script(code)
        assert "completed" in printed and "answer again" in printed
        made = rt.list_assistants(limit=1)["data"][0]
        assert made["id"] != a["id"]
        for key in ("name", "instructions", "model", "tools", "temperature", "top_p", "response_format"):
            assert made[key] == a[key], key
        (new_run,) = [r for t in rt.list_threads(limit=2)["data"] for r in rt.list_runs(t["id"])["data"]
                      if r["assistant_id"] == made["id"]]
        assert new_run["max_completion_tokens"] == 64
        user = rt.list_messages(new_run["thread_id"], order="asc")["data"][0]
        assert user["content"][0]["text"]["value"] == "Line one\nline two: $10,000 'quoted'"
        assert api.fake.requests[-1]["messages"][-1]["content"] == "Line one\nline two: $10,000 'quoted'"


def test_code_for_a_fresh_thread_without_runs():
    a = {"id": "asst_1", "name": "Bot", "model": "fake-model", "instructions": "", "tools": [], "metadata": {}}
    code = generate(a, [], None, base_url="http://127.0.0.1:9/v1")
    compile(code, "get_code.py", "exec")
    assert "client.beta.threads.create(\n)" in code and "base_url='http://127.0.0.1:9/v1'" in code
