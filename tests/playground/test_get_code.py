"""Get code: the generated `openai` SDK script runs against a real API server and makes the same things again."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from openai import OpenAI

from playground.get_code import generate, generate_responses, generate_responses_prompt
from tests.conftest import database_url_for, wait_run
from tests.fakes.openai_server import FakeOpenAIServer
from tests.server.conftest import free_port, running_api, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]

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


# -- the Responses API versions, run as scripts against `python -m assistants.server` -------------------------
@contextlib.contextmanager
def served(tmp_path):
    """`python -m assistants.server` in a subprocess over a fresh data dir, its model the scripted fake server."""
    with FakeOpenAIServer() as fake:
        port = free_port()
        env = {**os.environ, "PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_EMBEDDED_MODEL": "0",
               "PLAYGROUND_API_KEYS": "", "PLAYGROUND_BACKENDS": f"fake={fake.base_url}", "OPENAI_API_KEY": "",
               "OPENAI_BASE_URL": "", "PLAYGROUND_DATABASE_URL": database_url_for(tmp_path)}
        proc = subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(port), "--log-level",
                                 "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            base_url = f"http://127.0.0.1:{port}/v1"
            wait_until_serving(proc, base_url + "/models", 60)
            yield fake, base_url, OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
        finally:
            proc.terminate()
            proc.communicate(timeout=20)


def _run_file(tmp_path, code: str) -> str:
    """The generated script run as `python script.py`, as a person would; its output."""
    script = tmp_path / "script.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _playground_objects(client, fake) -> tuple[dict, list[dict], dict, str]:
    """An assistant with a {{variable}}, a function and a vector store, and a thread with one finished run."""
    vs = client.vector_stores.create(name="kb")
    a = client.beta.assistants.create(
        model="fake-model", name="Guide", instructions="You guide {{ visitor }} around town.", temperature=0.4,
        tools=[{"type": "function", "function": WEATHER}, {"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Where is the 'old' bridge?"}])
    fake.add({"text": "By the river."})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=a.id, max_completion_tokens=40)
    assert run.status == "completed"
    messages = [m.model_dump() for m in client.beta.threads.messages.list(thread.id, order="asc")]
    return a.model_dump(), messages, run.model_dump(), thread.id


def test_responses_code_as_a_prompt_runs_and_continues_the_thread(tmp_path):
    with served(tmp_path) as (fake, base_url, client):
        assistant, messages, _run, thread_id = _playground_objects(client, fake)
        code = generate_responses_prompt(assistant, messages, thread_id, base_url=base_url)
        assert f"'id': '{assistant['id']}'" in code and "'variables': {'visitor': '<visitor>'}" in code
        assert f"conversation={thread_id!r}" in code
        fake.add({"text": "Still by the river."})
        printed = _run_file(tmp_path, code)
        assert "completed" in printed and "Still by the river." in printed
        sent = fake.requests[-1]
        assert sent["messages"][0] == {"role": "system", "content": "You guide <visitor> around town."}
        assert sent["temperature"] == 0.4
        assert {t["function"]["name"] for t in sent["tools"]} == {"get_weather", "file_search"}
        # The reply joined the Playground's thread: it was continued, as a conversation.
        texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id, order="asc")]
        assert texts == ["Where is the 'old' bridge?", "By the river.", "Where is the 'old' bridge?",
                         "Still by the river."]


def test_responses_code_spelled_out_runs_with_the_same_settings(tmp_path):
    with served(tmp_path) as (fake, base_url, client):
        assistant, messages, run, _thread_id = _playground_objects(client, fake)
        code = generate_responses(assistant, messages, run, base_url=base_url)
        assert "prompt=" not in code and "conversation=" not in code
        fake.add({"text": "Across the square."})
        printed = _run_file(tmp_path, code)
        assert "completed" in printed and "Across the square." in printed
        sent = fake.requests[-1]
        assert sent["messages"] == [{"role": "system", "content": "You guide {{ visitor }} around town."},
                                    {"role": "user", "content": "Where is the 'old' bridge?"}]
        assert sent["temperature"] == 0.4 and sent["max_tokens"] == 40
        assert {t["function"]["name"] for t in sent["tools"]} == {"get_weather", "file_search"}


def test_responses_code_for_tools_that_need_resources_and_a_fresh_assistant():
    a = {"id": "asst_1", "model": "fake-model", "instructions": "", "tools": [
        {"type": "file_search"}, {"type": "code_interpreter"}], "tool_resources": {},
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"},
                                                                    "strict": True}}}
    code = generate_responses(a, [], None, base_url="http://127.0.0.1:9/v1")
    compile(code, "get_code.py", "exec")
    assert "# file_search is left out" in code and "'type': 'code_interpreter'" in code
    assert "input='Hello!'" in code
    assert "text={'format': {'type': 'json_schema', 'name': 'n', 'schema': {'type': 'object'}, 'strict': True}}" in code
    prompt = generate_responses_prompt(a, [], None, base_url="http://127.0.0.1:9/v1")
    compile(prompt, "get_code.py", "exec")
    assert "conversation=" not in prompt and "variables" not in prompt
