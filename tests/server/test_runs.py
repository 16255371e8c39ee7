"""Runs through the SDK against the scripted model: polling, streaming, tool calls, failures, cancel, steps."""

from __future__ import annotations

import json
import os
import time

import openai
import pytest
from openai import AssistantEventHandler

from assistants.tools import BuiltinOutcome


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


class Recorder(AssistantEventHandler):
    """Keeps every event name and the streamed text."""

    def __init__(self):
        super().__init__()
        self.events: list[str] = []
        self.text = ""

    def on_event(self, event) -> None:
        self.events.append(event.event)

    def on_text_delta(self, delta, snapshot) -> None:
        self.text += delta.value


@pytest.fixture(scope="module")
def assistant(client):
    return client.beta.assistants.create(model="gpt-4o-mini", name="runner", instructions="Be brief.",
                                         tools=[WEATHER, {"type": "file_search"}])


def new_thread(client, text="hello"):
    return client.beta.threads.create(messages=[{"role": "user", "content": text}])


def test_create_and_poll_completes_with_usage(client, assistant, fake):
    fake.add({"text": "The answer is 42"})
    thread = new_thread(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   instructions="Provide detailed analysis.")
    assert run.status == "completed" and run.completed_at and run.instructions == "Provide detailed analysis."
    assert run.usage.prompt_tokens == 11 and run.usage.completion_tokens == 4 and run.usage.total_tokens == 15
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.run_id == run.id and reply.content[0].text.value == "The answer is 42"
    assert fake.requests[-1]["messages"][0] == {"role": "system", "content": "Provide detailed analysis."}


def test_retrieve_sends_poll_hint(api, client, assistant):
    thread = new_thread(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    raw = client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread.id)
    assert raw.headers["openai-poll-after-ms"] == "25"


def test_poll_helper_answers_when_the_run_settles(client, assistant, fake):
    fake.add({"text": "slow", "delay": 0.4})
    thread = new_thread(client)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    started = time.monotonic()
    polled = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert polled.status == "completed" and time.monotonic() - started < 2
    # The long poll answers with the run its settling event carried: the same object a plain read gives now.
    assert polled == client.beta.threads.runs.retrieve(run.id, thread_id=thread.id)
    assert polled.usage.total_tokens > 0


def test_stream_with_event_handler(client, assistant, fake):
    fake.add({"text": "streamed words arrive in order"})
    thread = new_thread(client)
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    assert handler.text == "streamed words arrive in order"
    assert handler.events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert handler.events[-1] == "thread.run.completed"
    for name in ("thread.run.step.created", "thread.message.created", "thread.message.delta",
                 "thread.message.completed", "thread.run.step.completed"):
        assert name in handler.events
    final = handler.get_final_run()
    assert final.status == "completed" and final.usage.total_tokens > 0


def test_raw_stream_ends_with_done(api, client, assistant):
    import httpx2

    thread = new_thread(client)
    with httpx2.stream("POST", f"{api.base_url}/threads/{thread.id}/runs", json={"assistant_id": assistant.id, "stream": True},
                       headers={"Authorization": f"Bearer {api.key}"}, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    frames = [f for f in body.split("\n\n") if f]
    assert frames[0].startswith("event: thread.run.created\ndata: {")
    assert frames[-1] == "event: done\ndata: [DONE]"


def test_requires_action_then_submit_and_poll(client, assistant, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Oslo"}')]},
             {"text": "Sunny in Paris, snow in Oslo"})
    thread = new_thread(client, "weather?")
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action" and run.required_action.type == "submit_tool_outputs"
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Oslo"]

    with pytest.raises(openai.BadRequestError, match="missing"):
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id,
                                                     tool_outputs=[{"tool_call_id": calls[0].id, "output": "x"}])
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id,
        tool_outputs=[{"tool_call_id": c.id, "output": "sunny" if i == 0 else "snow"} for i, c in enumerate(calls)])
    assert done.status == "completed"
    tool_msgs = [m for m in fake.requests[-1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_msgs] == ["sunny", "snow"]
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].function.output == "sunny"


def test_stream_requires_action_then_submit_stream(client, assistant, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Rome"}')]}, {"text": "Warm in Rome"})
    thread = new_thread(client, "rome?")
    first = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=first) as s:
        s.until_done()
    assert first.events[-1] == "thread.run.requires_action"
    run = first.current_run
    call = run.required_action.submit_tool_outputs.tool_calls[0]

    second = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "25C"}],
            event_handler=second) as s:
        s.until_done()
    assert second.text == "Warm in Rome" and second.events[-1] == "thread.run.completed"
    assert "thread.run.queued" in second.events


def test_backend_failure_fails_the_run_with_last_error(client, assistant, fake):
    fake.add({"status": 500, "message": "backend exploded"})
    thread = new_thread(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "failed" and run.failed_at
    assert run.last_error.code == "server_error" and "backend exploded" in run.last_error.message
    # The user's message is kept.
    assert client.beta.threads.messages.list(thread_id=thread.id).data[-1].content[0].text.value == "hello"


def test_failure_streams_run_failed(client, assistant, fake):
    fake.add({"status": 500, "message": "nope"})
    handler = Recorder()
    thread = new_thread(client)
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    assert handler.events[-1] == "thread.run.failed"


def test_cancel_a_running_run(client, assistant, fake):
    fake.add({"text": "never mind", "delay": 3})
    thread = new_thread(client)
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    cancelling = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert cancelling.status in ("cancelling", "cancelled")
    final = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert final.status == "cancelled" and final.cancelled_at
    with pytest.raises(openai.BadRequestError, match="Cannot cancel"):
        client.beta.threads.runs.cancel(run.id, thread_id=thread.id)


def test_cancel_while_waiting_for_tool_outputs(client, assistant, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Lima"}')]})
    thread = new_thread(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "requires_action"
    assert client.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id,
                                                     tool_outputs=[{"tool_call_id": "x", "output": "y"}])


def test_runs_list_modify_and_retrieve(client, assistant):
    thread = new_thread(client)
    first = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    second = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                      metadata={"n": "2"})
    assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id).data] == [second.id, first.id]
    assert client.beta.threads.runs.update(first.id, thread_id=thread.id, metadata={"x": "y"}).metadata == {"x": "y"}
    assert client.beta.threads.runs.update(second.id, thread_id=thread.id).metadata == {"n": "2"}
    assert client.beta.threads.runs.retrieve(first.id, thread_id=thread.id).metadata == {"x": "y"}


def test_create_thread_and_run(client, assistant, fake):
    fake.add({"text": "made a thread"})
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "new"}], "metadata": {"t": "1"}})
    assert run.status == "completed"
    assert client.beta.threads.retrieve(run.thread_id).metadata == {"t": "1"}
    assert client.beta.threads.messages.list(thread_id=run.thread_id).data[0].content[0].text.value == "made a thread"


def test_create_thread_and_run_stream(client, assistant, fake):
    fake.add({"text": "streamed thread"})
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "go"}]},
            event_handler=handler) as s:
        s.until_done()
    assert handler.events[0] == "thread.created" and handler.events[1] == "thread.run.created"
    assert handler.text == "streamed thread"


def test_run_steps_include_file_search_content(api, client, fake):
    def search(arguments, ctx):
        return BuiltinOutcome("found it", {
            "ranking_options": {"ranker": "auto", "score_threshold": 0.0},
            "results": [{"file_id": "file-abc", "file_name": "notes.txt", "score": 0.9,
                         "content": [{"type": "text", "text": "the chunk text"}]}]})

    api.rt.toolbox.register("file_search", search)
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "file_search"}])
    include = ["step_details.tool_calls[*].file_search.results[*].content"]
    fake.add({"tool_calls": [("file_search", '{"query": "notes"}')]}, {"text": "done"})
    thread = new_thread(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed"
    plain = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    result = plain.step_details.tool_calls[0].file_search.results[0]
    assert result.file_name == "notes.txt" and result.content is None
    full = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc", include=include).data[0]
    assert full.step_details.tool_calls[0].file_search.results[0].content[0].text == "the chunk text"
    one = client.beta.threads.runs.steps.retrieve(full.id, thread_id=thread.id, run_id=run.id, include=include)
    assert one.step_details.tool_calls[0].file_search.results[0].content[0].text == "the chunk text"
    assert client.beta.threads.runs.steps.retrieve(full.id, thread_id=thread.id, run_id=run.id) \
        .step_details.tool_calls[0].file_search.results[0].content is None

    # Streamed steps follow the same rule.
    for wanted, expect in ((None, None), (include, "the chunk text")):
        fake.add({"tool_calls": [("file_search", '{"query": "notes"}')]}, {"text": "done"})
        kwargs = {"include": wanted} if wanted else {}
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, **kwargs) as s:
            steps = [e.data for e in s if e.event == "thread.run.step.completed"]
        result = steps[0].step_details.tool_calls[0].file_search.results[0]
        assert (result.content[0].text if result.content else None) == expect


def test_keep_alive_comments_during_a_slow_stream(api, client, assistant, fake, monkeypatch):
    import httpx2

    from assistants.server import sse

    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.05)
    fake.add({"text": "late", "delay": 0.4})
    thread = new_thread(client)
    with httpx2.stream("POST", f"{api.base_url}/threads/{thread.id}/runs", json={"assistant_id": assistant.id, "stream": True},
                       headers={"Authorization": f"Bearer {api.key}"}, timeout=10) as response:
        body = response.read().decode()
    assert ": keep-alive\n\n" in body and body.endswith("event: done\ndata: [DONE]\n\n")
    fake.add({"text": "late too", "delay": 0.3})
    handler = Recorder()  # the SDK skips the comments
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    assert handler.text == "late too"


def test_client_leaving_a_stream_does_not_stop_the_run(api, client, assistant, fake):
    fake.add({"text": "finished anyway", "delay": 0.3})
    thread = new_thread(client)
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        first = next(iter(stream))
    run_id = first.data.id
    assert client.beta.threads.runs.poll(run_id, thread_id=thread.id).status == "completed"
    deadline = time.monotonic() + 2
    while api.rt.engine.hub.has_subscribers(run_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not api.rt.engine.hub.has_subscribers(run_id)  # the stream's subscription was released


@pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="the code interpreter sandbox needs bubblewrap")
def test_code_interpreter_run_streams_and_records_its_step(client, fake):
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "code_interpreter"}])
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(6 * 7)"}))]}, {"text": "It is 42"})
    thread = new_thread(client, "compute")
    handler = Recorder()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id, event_handler=handler) as s:
        s.until_done()
    run = handler.get_final_run()
    assert run.status == "completed" and handler.text == "It is 42"
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    call = step.step_details.tool_calls[0]
    assert call.type == "code_interpreter" and call.code_interpreter.input == "print(6 * 7)"
    assert call.code_interpreter.outputs[0].logs == "42\n"
