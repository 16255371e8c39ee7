"""The run engine against a scripted provider: statuses, parameters, tools, failures, events."""

from __future__ import annotations

import threading
import time

import pytest

from assistants.errors import BadRequest
from assistants.providers.base import ProviderError
from tests.conftest import database_url_for, wait_run


FN = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                       "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def start(rt, content="hello", **assistant):
    a = rt.create_assistant(model="fake-model", instructions="Be brief.", **assistant)
    t = rt.create_thread(messages=[{"role": "user", "content": content}])
    return a, t


def test_run_completes_with_events_in_order_usage_and_steps(rt, provider):
    provider.add({"chunks": ["Hi", " there"], "usage": (12, 3)})
    a, t = start(rt)
    sub = rt.create_run(t["id"], assistant_id=a["id"], stream=True)
    events = [(e, d) for e, d in sub]
    names = [e for e, _ in events]
    assert names == ["thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.step.created",
                     "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress",
                     "thread.message.delta", "thread.message.delta", "thread.message.completed",
                     "thread.run.step.completed", "thread.run.completed", "done"]
    deltas = "".join(d["delta"]["content"][0]["text"]["value"] for e, d in events if e == "thread.message.delta")
    assert deltas == "Hi there"
    run = events[-2][1]
    assert run["status"] == "completed" and run["usage"] == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert run["started_at"] and run["completed_at"] and run["expires_at"] is None
    msgs = rt.list_messages(t["id"], order="asc")["data"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["content"][0]["text"]["value"] == "Hi there" and msgs[1]["run_id"] == run["id"]
    steps = rt.list_run_steps(t["id"], run["id"])["data"]
    assert len(steps) == 1 and steps[0]["type"] == "message_creation" and steps[0]["status"] == "completed"
    assert steps[0]["usage"]["total_tokens"] == 15
    calls = rt.model_calls(run["id"])
    assert len(calls) == 1 and calls[0]["request"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert calls[0]["response"]["choices"][0]["message"]["content"] == "Hi there"


def test_usage_is_null_until_terminal(rt, provider):
    provider.add({"text": "slow", "delay": 0.5})
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    assert run["usage"] is None and run["status"] == "queued"
    assert wait_run(rt, t["id"], run["id"])["usage"] is not None


def test_request_carries_run_parameters(rt, provider):
    a, t = start(rt, tools=[FN], temperature=0.3, top_p=0.9)
    run = rt.create_run(t["id"], assistant_id=a["id"], instructions="Override.", additional_instructions="Extra.",
                        temperature=0.1, response_format={"type": "json_object"}, tool_choice="none",
                        parallel_tool_calls=False, max_completion_tokens=50,
                        additional_messages=[{"role": "user", "content": "second"}])
    wait_run(rt, t["id"], run["id"])
    req = provider.requests[-1]
    assert req["messages"][0] == {"role": "system", "content": "Override.\n\nExtra."}
    assert [m["content"] for m in req["messages"][1:]] == ["hello", "second"]
    assert req["temperature"] == 0.1 and req["top_p"] == 0.9
    assert req["response_format"] == {"type": "json_object"}
    assert req["tool_choice"] == "none" and req["parallel_tool_calls"] is False and req["max_tokens"] == 50
    assert req["tools"][0]["function"]["name"] == "get_weather"


def test_builtin_tools_reach_the_model_as_functions(rt, provider):
    a, t = start(rt, tools=[{"type": "code_interpreter"}, {"type": "file_search"}, FN])
    run = rt.create_run(t["id"], assistant_id=a["id"], tool_choice={"type": "code_interpreter"})
    wait_run(rt, t["id"], run["id"])
    req = provider.requests[0]
    names = [tool["function"]["name"] for tool in req["tools"]]
    assert names == ["code_interpreter", "file_search", "get_weather"]
    assert req["tools"][0]["function"]["parameters"]["required"] == ["code"]
    assert req["tool_choice"] == {"type": "function", "function": {"name": "code_interpreter"}}


def test_function_named_like_builtin_is_rejected(rt):
    with pytest.raises(BadRequest, match="built-in"):
        rt.create_assistant(model="fake-model", tools=[{"type": "function", "function": {"name": "file_search"}}])


def test_function_calls_require_action_then_resume(rt, provider):
    provider.add({"tool_calls": [("get_weather", '{"city": "Paris"}', "call_a"), ("get_weather", '{"city": "Oslo"}', "call_b")]},
                 {"text": "Paris is sunny, Oslo is cold."})
    a, t = start(rt, tools=[FN])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "requires_action"
    calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_a", "call_b"]
    with pytest.raises(BadRequest, match="missing: call_b"):
        rt.submit_tool_outputs(t["id"], run["id"], tool_outputs=[{"tool_call_id": "call_a", "output": "x"}])
    with pytest.raises(BadRequest, match="not one of the run's pending"):
        rt.submit_tool_outputs(t["id"], run["id"], tool_outputs=[{"tool_call_id": "nope", "output": "x"}])
    with pytest.raises(BadRequest, match="active"):
        rt.create_message(t["id"], role="user", content="meanwhile")
    sub = rt.submit_tool_outputs(t["id"], run["id"], stream=True, tool_outputs=[
        {"tool_call_id": "call_a", "output": "sunny"}, {"tool_call_id": "call_b", "output": "cold"}])
    names = [e for e, _ in sub]
    assert names[-2:] == ["thread.run.completed", "done"]
    req = provider.requests[-1]
    assert [m["role"] for m in req["messages"]][-4:] == ["user", "assistant", "tool", "tool"]
    assert req["messages"][-1] == {"role": "tool", "tool_call_id": "call_b", "name": "get_weather", "content": "cold"}
    steps = rt.list_run_steps(t["id"], run["id"], order="asc")["data"]
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0]["step_details"]["tool_calls"][0]["function"]["output"] == "sunny"
    assert rt.get_run(t["id"], run["id"])["usage"]["total_tokens"] > 0


def test_malformed_tool_arguments_go_back_to_the_model(rt, provider):
    provider.add({"tool_calls": [("get_weather", ""), ("get_weather", "{not json"), ("get_weather", "[1]"),
                                 ("launch_rockets", "{}")]},
                 {"text": "Sorry."})
    a, t = start(rt, tools=[FN])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "completed"
    tool_msgs = [m["content"] for m in provider.requests[-1]["messages"] if m["role"] == "tool"]
    assert "empty arguments" in tool_msgs[0] and "not valid JSON" in tool_msgs[1]
    assert "JSON object" in tool_msgs[2] and "no function named 'launch_rockets'" in tool_msgs[3]


def test_builtin_without_handler_answers_not_available(rt, provider):
    provider.add({"tool_calls": [("code_interpreter", '{"code": "print(1)"}')]}, {"text": "ok"})
    rt.toolbox.handlers.pop("code_interpreter", None)
    a, t = start(rt, tools=[{"type": "code_interpreter"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "completed"
    tool_msg = next(m for m in provider.requests[-1]["messages"] if m["role"] == "tool")
    assert "not available" in tool_msg["content"]


def test_tool_loop_is_bounded(rt, provider):
    rt.engine.max_tool_rounds = 3
    provider.add(*[{"tool_calls": [("code_interpreter", "{bad")]}] * 5)
    a, t = start(rt, tools=[{"type": "code_interpreter"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "failed" and "3 rounds" in run["last_error"]["message"]


def test_last_tool_round_asks_for_an_answer(rt, provider):
    rt.engine.max_tool_rounds = 3
    provider.add({"tool_calls": [("code_interpreter", '{"code": "print(1)"}')]},
                 {"tool_calls": [("code_interpreter", '{"code": "print(2)"}')]}, {"text": "done"})
    a, t = start(rt, tools=[{"type": "code_interpreter"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "completed"
    assert [r.get("tool_choice") for r in provider.requests] == ["auto", "auto", "none"]


def test_a_repeated_tool_call_makes_the_next_round_answer(rt, provider):
    same = {"tool_calls": [("code_interpreter", '{"code": "print(1)"}')]}
    provider.add(same, same, {"text": "It prints 1."})
    a, t = start(rt, tools=[{"type": "code_interpreter"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "completed"
    assert [r.get("tool_choice") for r in provider.requests] == ["auto", "auto", "none"]


@pytest.mark.parametrize("code", ["server_error", "rate_limit_exceeded"])
def test_failing_backend_fails_run_and_keeps_user_message(rt, provider, code):
    provider.add({"error": ProviderError("Could not connect to backend 'x'. Is the server running?", code=code)})
    a, t = start(rt, content="keep me")
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "failed" and run["failed_at"]
    assert run["last_error"] == {"code": code, "message": "Could not connect to backend 'x'. Is the server running?"}
    msgs = rt.list_messages(t["id"])["data"]
    assert [m["content"][0]["text"]["value"] for m in msgs] == ["keep me"]
    assert rt.model_calls(run["id"])[0]["error"].startswith("Could not connect")


def test_max_completion_tokens_makes_run_incomplete(rt, provider):
    provider.add({"text": "a long answer cut", "finish": "length", "usage": (10, 16)})
    a, t = start(rt)
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16)["id"])
    assert run["status"] == "incomplete" and run["incomplete_details"] == {"reason": "max_completion_tokens"}
    assert run["completed_at"] >= run["started_at"]  # when it stopped, for the run log's duration
    msg = rt.list_messages(t["id"])["data"][0]
    assert msg["status"] == "incomplete" and msg["incomplete_details"] == {"reason": "max_tokens"}
    assert msg["incomplete_at"] and msg["completed_at"] is None


def test_a_cut_reply_streams_as_incomplete_not_completed(rt, provider):
    provider.add({"text": "a long answer cut", "finish": "length", "usage": (10, 16)})
    a, t = start(rt)
    events = [e for e, _ in rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16, stream=True)]
    assert "thread.message.incomplete" in events and "thread.message.completed" not in events
    assert events[-2:] == ["thread.run.incomplete", "done"]


def test_cancel_mid_reply_closes_the_step_and_the_message_in_the_stream(rt, provider):
    provider.add({"chunks": ["one ", "two ", "three ", "four "] * 20, "chunk_delay": 0.05})
    a, t = start(rt)
    sub = rt.create_run(t["id"], assistant_id=a["id"], stream=True)
    events = []
    for event, _data in sub:
        events.append(event)
        if event == "thread.message.delta" and events.count(event) == 2:
            rt.cancel_run(t["id"], sub.run_id)
    assert "thread.run.step.cancelled" in events and "thread.message.incomplete" in events
    assert events[-2:] == ["thread.run.cancelled", "done"]
    msg = rt.list_messages(t["id"])["data"][0]
    assert msg["status"] == "incomplete" and msg["incomplete_details"] == {"reason": "run_cancelled"}
    assert msg["content"][0]["text"]["value"].startswith("one two")  # the part that streamed is kept


def test_max_prompt_tokens_truncates_then_gives_up(rt, provider):
    a = rt.create_assistant(model="fake-model")
    t = rt.create_thread(messages=[{"role": "user", "content": "word " * 2000} for _ in range(3)]
                         + [{"role": "user", "content": "last"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_prompt_tokens=600)["id"])
    assert run["status"] == "completed"
    assert [m["content"] for m in provider.requests[-1]["messages"]] == ["last"]
    t2 = rt.create_thread(messages=[{"role": "user", "content": "word " * 4000}])
    run2 = wait_run(rt, t2["id"], rt.create_run(t2["id"], assistant_id=a["id"], max_prompt_tokens=300)["id"])
    assert run2["status"] == "incomplete" and run2["incomplete_details"] == {"reason": "max_prompt_tokens"}


def test_truncation_last_messages(rt, provider):
    a = rt.create_assistant(model="fake-model")
    t = rt.create_thread(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"],
                                        truncation_strategy={"type": "last_messages", "last_messages": 2})["id"])
    assert [m["content"] for m in provider.requests[-1]["messages"]] == ["m3", "m4"]


def test_cancel_while_model_call_in_flight(rt, provider):
    provider.add({"text": "never", "delay": 30})
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    time.sleep(0.2)
    started = time.monotonic()
    assert rt.cancel_run(t["id"], run["id"])["status"] == "cancelling"
    run = wait_run(rt, t["id"], run["id"], timeout=5)
    assert run["status"] == "cancelled" and run["cancelled_at"] and time.monotonic() - started < 2
    with pytest.raises(BadRequest, match="cancelled"):
        rt.cancel_run(t["id"], run["id"])
    rt.create_message(t["id"], role="user", content="after cancel works")


def test_cancel_requires_action_run(rt, provider):
    provider.add({"tool_calls": [("get_weather", "{}")]})
    a, t = start(rt, tools=[FN])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert rt.cancel_run(t["id"], run["id"])["status"] == "cancelled"
    with pytest.raises(BadRequest, match="do not accept"):
        rt.submit_tool_outputs(t["id"], run["id"], tool_outputs=[])


def test_one_active_run_per_thread(rt, provider):
    provider.add({"text": "slow", "delay": 1})
    a, t = start(rt)
    rt.create_run(t["id"], assistant_id=a["id"])
    with pytest.raises(BadRequest, match="already has an active run"):
        rt.create_run(t["id"], assistant_id=a["id"])
    with pytest.raises(BadRequest, match="while a run"):
        rt.create_message(t["id"], role="user", content="x")


def test_requires_action_run_expires(rt, provider):
    provider.add({"tool_calls": [("get_weather", "{}")]})
    a, t = start(rt, tools=[FN])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    stored = rt.store.get("runs", run["id"])
    stored["expires_at"] = 1
    rt.store.put("runs", stored)
    assert rt.get_run(t["id"], run["id"])["status"] == "expired"
    rt.create_message(t["id"], role="user", content="thread usable again")


def test_many_subscribers_see_the_same_events(rt, provider):
    provider.add({"chunks": ["a", "b", "c"], "delay": 0.3})
    a, t = start(rt)
    first = rt.create_run(t["id"], assistant_id=a["id"], stream=True)
    second = rt.engine.hub.subscribe(first.run_id)
    got: dict[str, list] = {}

    def drain(name, sub):
        got[name] = [e for e, _ in sub]

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("one", first), ("two", second))]
    [th.start() for th in threads]
    [th.join(10) for th in threads]
    assert got["one"][-1] == got["two"][-1] == "done"
    assert got["one"][-len(got["two"]):] == got["two"] and "thread.message.delta" in got["two"]


def test_unknown_model_names_what_is_available(rt):
    a = rt.create_assistant(model="gpt-9")
    t = rt.create_thread(messages=[{"role": "user", "content": "x"}])
    with pytest.raises(BadRequest) as info:
        rt.create_run(t["id"], assistant_id=a["id"])
    assert "gpt-9" in info.value.message and "fake-model" in info.value.message


def test_alias_routes_old_model_names(rt, provider):
    rt.router.aliases["gpt-4o-mini"] = "fake-model"
    a = rt.create_assistant(model="gpt-4o-mini")
    t = rt.create_thread(messages=[{"role": "user", "content": "x"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "completed" and run["model"] == "gpt-4o-mini"
    assert provider.requests[-1]["model"] == "fake-model"


def test_thread_and_run_and_stream_start_with_thread_created(rt):
    a = rt.create_assistant(model="fake-model")
    sub = rt.create_thread_and_run(assistant_id=a["id"], stream=True,
                                   thread={"messages": [{"role": "user", "content": "hi"}]})
    names = [e for e, _ in sub]
    assert names[0] == "thread.created" and names[1] == "thread.run.created" and names[-2] == "thread.run.completed"


def test_metadata_set_on_a_message_while_it_streams_is_kept(rt, provider):
    provider.add({"chunks": ["a"] * 40, "chunk_delay": 0.02})
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    deadline = time.monotonic() + 10
    while not (replies := rt.list_messages(t["id"], run_id=run["id"])["data"]):
        assert time.monotonic() < deadline
        time.sleep(0.005)
    rt.update_message(t["id"], replies[0]["id"], metadata={"tag": "kept"})
    assert wait_run(rt, t["id"], run["id"])["status"] == "completed"
    reply = rt.get_message(t["id"], replies[0]["id"])
    assert reply["metadata"] == {"tag": "kept"} and reply["content"][0]["text"]["value"] == "a" * 40
    rt.update_run(t["id"], run["id"], metadata={"run": "meta"})
    assert rt.get_run(t["id"], run["id"])["metadata"] == {"run": "meta"}


def test_the_status_machine_refuses_what_is_not_a_transition(rt, provider):
    from assistants.runs.status import RUN_TRANSITIONS, sources

    assert sources("queued") == ["requires_action"]  # a run is queued again only by tool outputs
    assert all(t not in RUN_TRANSITIONS for t in ("completed", "failed", "cancelled", "expired", "incomplete"))
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    done = wait_run(rt, t["id"], run["id"])
    assert rt.engine.status.move(run["id"], "in_progress") is None  # completed is final
    assert rt.get_run(t["id"], run["id"]) == done


def test_a_run_whose_failure_cannot_be_recorded_still_ends_when_its_lease_lapses(rt, provider, monkeypatch):
    rt.engine.status.lease_s = 1.0
    real_fail = rt.engine.status.fail

    def locked(run_id, code, message, *, mine=True, lease_before=None):
        if mine:  # the worker's own attempts: as if the database stayed locked
            raise RuntimeError("database is locked")
        return real_fail(run_id, code, message, mine=mine, lease_before=lease_before)

    monkeypatch.setattr(rt.engine.status, "fail", locked)
    provider.add({"error": ProviderError("backend down")})
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    t0 = time.monotonic()
    ended = wait_run(rt, t["id"], run["id"], timeout=10)
    assert ended["status"] == "failed" and "stopped before it finished" in ended["last_error"]["message"]
    assert time.monotonic() - t0 < 4


def test_the_sweeper_expires_a_waiting_run_and_its_step_at_expires_at(tmp_path, provider):
    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.conftest import make_settings

    runtime = Runtime(make_settings(tmp_path, run_expires_s=1), router=ModelRouter([provider], default_model="fake-model"))
    try:
        provider.add({"tool_calls": [("get_weather", '{"city": "Paris"}')]})
        a, t = start(runtime, tools=[FN])
        run = runtime.create_run(t["id"], assistant_id=a["id"])
        assert wait_run(runtime, t["id"], run["id"])["status"] == "requires_action"
        deadline = time.monotonic() + 5
        while runtime.store.get("runs", run["id"])["status"] != "expired":  # nobody reads it: the sweeper acts
            assert time.monotonic() < deadline
            time.sleep(0.05)
        (step,) = runtime.store.all("run_steps", run_id=run["id"])
        assert step["status"] == "expired" and step["expired_at"]
        runtime.create_message(t["id"], role="user", content="the thread is free again")
    finally:
        runtime.close()


def test_a_subscription_resumes_from_any_point_and_old_events_are_pruned(rt, provider):
    provider.add({"chunks": ["a", "b", "c"]})
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    wait_run(rt, t["id"], run["id"])
    whole = list(rt.engine.hub.subscribe(run["id"], after=0))
    assert [e for e, _ in whole][:2] == ["thread.run.created", "thread.run.queued"]
    # Resuming after the fifth event gives the rest, the same events in the same order.
    fifth = rt.store.events_after(0, [run["id"]])[4][0]
    assert list(rt.engine.hub.subscribe(run["id"], after=fifth)) == whole[5:]
    assert rt.store.prune_events(time.time() + 1) == len(whole) - 1  # an ended run's events go ("done" is not one)
    assert rt.store.last_event_seq(run["id"]) == 0


def test_following_an_ended_run_from_now_ends_at_once(rt, provider):
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    wait_run(rt, t["id"], run["id"])
    assert list(rt.engine.hub.subscribe(run["id"]).events(timeout=1)) == [("done", None)]


def test_the_lease_is_one_setting_passed_to_the_engine_and_the_indexer(tmp_path):
    from pathlib import Path

    from assistants.config import Settings, load_settings
    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.fakes.provider import ScriptedProvider

    assert Settings(data_dir=tmp_path).run_lease_s == 10.0
    with pytest.raises(ValueError, match="PLAYGROUND_RUN_LEASE_SECONDS"):
        load_settings({"PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_RUN_LEASE_SECONDS": "long"})
    settings = load_settings({"PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_RUN_LEASE_SECONDS": "2.5",
                              "PLAYGROUND_EMBEDDED_MODEL": "0", "PLAYGROUND_DATABASE_URL": database_url_for(tmp_path)})
    assert settings.run_lease_s == 2.5
    rt = Runtime(settings, router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
    try:
        assert rt.engine.status.lease_s == 2.5 and rt.vector_stores.lease_s == 2.5
        row = {"vector_store_id": "vs_x", "id": "file-x"}
        rt.vector_stores._claim(row)
        assert 2.0 < row["_lease_until"] - time.time() <= 2.5
        assert rt.engine.status.lease_until() - time.time() <= 2.5
    finally:
        rt.close()
    # Declared once: no other module reads it from the environment.
    root = Path(__file__).resolve().parents[1] / "assistants"
    readers = [p.relative_to(root).as_posix() for p in root.rglob("*.py") if "PLAYGROUND_RUN_LEASE_SECONDS" in p.read_text()]
    assert readers == ["config.py"]


def test_a_queued_run_left_by_a_dead_process_is_taken_over_and_run(rt, tmp_path):
    """Reserved, then its process stopped before starting it: another runtime's sweeper reserves it and runs it."""
    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.conftest import make_settings
    from tests.fakes.provider import ScriptedProvider

    rt.sweeper.stop()  # process A: reserves the run, then never starts it nor renews its lease
    rt.engine.submit = lambda run_id, queued=None: None
    a, t = start(rt)
    run = rt.create_run(t["id"], assistant_id=a["id"])
    rt.store.update_fields("runs", run["id"], {"_lease_until": 0.0})  # the lease ran out
    other = Runtime(make_settings(tmp_path), router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
    try:
        done = wait_run(other, t["id"], run["id"], timeout=10)
        assert done["status"] == "completed" and other.store.get("runs", run["id"])["status"] == "completed"
        assert other.store.take_over_queued("someone", 1e12, 1e12) == []  # nothing left to take
    finally:
        other.close()
