"""The openai SDK's helpers as real scripts use them: event-handler callbacks, stream snapshots, poll and upload
helpers, auto-paging, image content, errors. Each test is what SDK code does, unchanged but for base_url."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from contextlib import contextmanager

import openai
import pytest
from openai import AssistantEventHandler, AsyncAssistantEventHandler, AsyncOpenAI

from assistants.config import load_settings
from assistants.tools import BuiltinOutcome
from tests.server.conftest import running_api


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


class Handler(AssistantEventHandler):
    """Overrides the callbacks the OpenAI cookbook's streaming examples use, recording what they receive."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []
        self.text = ""
        self.code = ""
        self.logs = ""
        self.arguments: dict[int, str] = {}
        self.ended = 0

    def on_text_created(self, text) -> None:
        self.calls.append(("text_created",))

    def on_text_delta(self, delta, snapshot) -> None:
        self.text += delta.value
        assert snapshot.value == self.text  # the SDK's snapshot is everything so far, never doubled
        self.calls.append(("text_delta", delta.value))

    def on_text_done(self, text) -> None:
        self.calls.append(("text_done", text.value))

    def on_image_file_done(self, image_file) -> None:
        self.calls.append(("image_file_done", image_file.file_id))

    def on_tool_call_created(self, tool_call) -> None:
        self.calls.append(("tool_call_created", tool_call.type, tool_call.id))

    def on_tool_call_delta(self, delta, snapshot) -> None:
        self.calls.append(("tool_call_delta", delta.type, delta.index))
        if delta.type == "code_interpreter":
            if delta.code_interpreter.input:
                self.code += delta.code_interpreter.input
                assert snapshot.code_interpreter.input == self.code
            for output in delta.code_interpreter.outputs or []:
                if output.type == "logs":
                    self.logs += output.logs
        elif delta.type == "function" and delta.function.arguments:
            self.arguments[delta.index] = self.arguments.get(delta.index, "") + delta.function.arguments
            assert snapshot.function.arguments == self.arguments[delta.index]

    def on_tool_call_done(self, tool_call) -> None:
        self.calls.append(("tool_call_done", tool_call.type))

    def on_message_done(self, message) -> None:
        self.calls.append(("message_done", message.id))

    def on_end(self) -> None:
        self.ended += 1

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture(scope="module")
def weather_assistant(client):
    return client.beta.assistants.create(model="gpt-4o-mini", instructions="Be brief.", tools=[WEATHER])


@contextmanager
def builtin(api, name: str, handler):
    """Swap a built-in tool's handler (the real code sandbox is not what these tests are about)."""
    previous = api.rt.toolbox.handlers.get(name)
    api.rt.toolbox.register(name, handler)
    try:
        yield
    finally:
        if previous is None:
            api.rt.toolbox.handlers.pop(name, None)
        else:
            api.rt.toolbox.register(name, previous)


def figure_interpreter(api):
    """A code interpreter that prints 42 and draws a figure (a file, like the real one's)."""

    def run(arguments, ctx):
        figure = api.rt.files.create("figure.png", PNG, "assistants")
        return BuiltinOutcome("42\n[image]", {"input": arguments["code"], "outputs": [
            {"type": "logs", "logs": "42\n"}, {"type": "image", "image": {"file_id": figure["id"]}}]},
            image_file_ids=[figure["id"]])

    return run


def test_stream_handler_sees_code_input_outputs_figure_and_text(api, client, fake):
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "plot and compute"}])
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(6 * 7)"}))]}, {"text": "It is 42"})
    handler = Handler()
    with builtin(api, "code_interpreter", figure_interpreter(api)):
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id,
                                             event_handler=handler) as stream:
            stream.until_done()
    assert handler.ended == 1
    # Created once with its id (input still empty), then its code, then its outputs, as OpenAI streams them.
    created = [c for c in handler.calls if c[0] == "tool_call_created"]
    assert len(created) == 1 and created[0][1] == "code_interpreter" and created[0][2].startswith("call_")
    assert handler.names().index("tool_call_created") < handler.names().index("tool_call_delta")
    assert handler.code == "print(6 * 7)" and handler.logs == "42\n"
    assert ("tool_call_done", "code_interpreter") in handler.calls

    # The reply: the figure first (content index 0), then the text (index 1), streamed and finished in that order.
    assert handler.text == "It is 42"
    figure_id = stream.get_final_run_steps()[0].step_details.tool_calls[0].code_interpreter.outputs[1].image.file_id
    assert ("image_file_done", figure_id) in handler.calls
    assert handler.calls.index(("image_file_done", figure_id)) < handler.calls.index(("text_delta", " is"))
    assert ("text_done", "It is 42") in handler.calls
    (message,) = stream.get_final_messages()
    assert ("message_done", message.id) in handler.calls
    assert [b.type for b in message.content] == ["image_file", "text"] and message.content[0].image_file.file_id == figure_id

    run = stream.get_final_run()
    assert run.status == "completed" and run.usage.total_tokens > 0
    # The stream's step snapshots are what the API returns afterwards (nothing applied twice).
    streamed = stream.get_final_run_steps()
    stored = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.id for s in streamed] == [s.id for s in stored]
    call, stored_call = streamed[0].step_details.tool_calls[0], stored[0].step_details.tool_calls[0]
    assert call.id == stored_call.id and call.code_interpreter.input == stored_call.code_interpreter.input == "print(6 * 7)"
    assert [o.type for o in call.code_interpreter.outputs] == [o.type for o in stored_call.code_interpreter.outputs]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id).content == message.content


def test_step_deltas_carry_the_indexes_the_sdk_reads(api, client, fake):
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "code_interpreter"}, WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "both"}])
    fake.add({"tool_calls": [("code_interpreter", '{"code": "1"}'), ("get_weather", '{"city": "Oslo"}'),
                             ("code_interpreter", '{"code": "2"}')]})
    with builtin(api, "code_interpreter", figure_interpreter(api)):
        with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
            events = list(stream)
    created = next(e for e in events if e.event == "thread.run.step.created")
    assert created.data.step_details.tool_calls == []  # calls arrive as deltas, as from OpenAI
    deltas = [call for e in events if e.event == "thread.run.step.delta" for call in e.data.delta.step_details.tool_calls]
    assert [d.index for d in deltas if d.id] == [0, 1, 2]  # one opening delta (with the id) per call, in order
    for d in deltas:
        assert isinstance(d.index, int)
        if d.type == "code_interpreter":
            for i, output in enumerate(d.code_interpreter.outputs or []):
                assert output.index == i
    assert events[-1].event == "thread.run.requires_action"
    step = stream.get_final_run_steps()[0]
    assert [c.type for c in step.step_details.tool_calls] == ["code_interpreter", "function", "code_interpreter"]
    assert step.step_details.tool_calls[1].function.arguments == '{"city": "Oslo"}'
    assert [c.code_interpreter.input for c in step.step_details.tool_calls if c.type == "code_interpreter"] == ["1", "2"]
    pending = stream.get_final_run().required_action.submit_tool_outputs.tool_calls
    assert [c.id for c in pending] == [step.step_details.tool_calls[1].id]
    client.beta.threads.runs.cancel(stream.get_final_run().id, thread_id=thread.id)


def test_function_calls_stream_then_submit_tool_outputs_stream(client, weather_assistant, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Oslo"}')]},
             {"text": "Sunny in Paris, snow in Oslo"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "weather?"}])
    first = Handler()
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=weather_assistant.id,
                                         event_handler=first) as stream:
        stream.until_done()
    assert [c[1] for c in first.calls if c[0] == "tool_call_created"] == ["function", "function"]
    assert first.arguments == {0: '{"city": "Paris"}', 1: '{"city": "Oslo"}'}
    run = first.current_run
    assert run.status == "requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls
    snapshot = first.get_final_run_steps()[0].step_details.tool_calls
    assert [c.id for c in snapshot] == [c.id for c in calls] and snapshot[0].function.name == "get_weather"

    second = Handler()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=thread.id, event_handler=second,
            tool_outputs=[{"tool_call_id": c.id, "output": out} for c, out in zip(calls, ("sunny", "snow"), strict=True)]) as stream:
        stream.until_done()
    assert second.text == "Sunny in Paris, snow in Oslo" and second.ended == 1
    assert stream.get_final_run().status == "completed"
    (message,) = stream.get_final_messages()
    assert message.content[0].text.value == "Sunny in Paris, snow in Oslo" and message.run_id == run.id
    assert client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0].id == message.id
    step = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id, order="asc").data[0]
    assert [c.function.output for c in step.step_details.tool_calls] == ["sunny", "snow"]


def test_create_and_poll_with_a_function_tool_then_submit_and_poll(client, weather_assistant, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Lima"}')]}, {"text": "Mild in Lima"})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "lima?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=weather_assistant.id,
                                                   poll_interval_ms=10)
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert call.type == "function" and json.loads(call.function.arguments) == {"city": "Lima"}
    done = client.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "18C"}])
    assert done.status == "completed" and done.required_action is None
    assert client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data[0].content[0].text.value \
        == "Mild in Lima"


def test_create_and_run_poll_and_stream_helpers(client, weather_assistant, fake):
    fake.add({"text": "polled reply"})
    run = client.beta.threads.create_and_run_poll(assistant_id=weather_assistant.id,
                                                  thread={"messages": [{"role": "user", "content": "one"}]})
    assert run.status == "completed"
    assert client.beta.threads.messages.list(thread_id=run.thread_id).data[0].content[0].text.value == "polled reply"

    fake.add({"tool_calls": [("get_weather", '{"city": "Rome"}')]}, {"text": "Warm in Rome"})
    handler = Handler()
    with client.beta.threads.create_and_run_stream(
            assistant_id=weather_assistant.id, event_handler=handler,
            thread={"messages": [{"role": "user", "content": "rome?"}], "metadata": {"via": "stream"}}) as stream:
        stream.until_done()
    run = stream.get_final_run()
    assert run.status == "requires_action" and ("tool_call_created", "function") == handler.calls[0][:2]
    assert client.beta.threads.retrieve(run.thread_id).metadata == {"via": "stream"}
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    with client.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=run.thread_id, tool_outputs=[{"tool_call_id": call.id, "output": "25C"}]) as stream:
        assert "".join(stream.text_deltas) == "Warm in Rome"
    assert stream.get_final_messages()[0].content[0].text.value == "Warm in Rome"


def test_async_client_stream_with_async_handler(api, weather_assistant, fake):
    class Collect(AsyncAssistantEventHandler):
        def __init__(self):
            super().__init__()
            self.text, self.created = "", []

        async def on_text_delta(self, delta, snapshot) -> None:
            self.text += delta.value

        async def on_tool_call_created(self, tool_call) -> None:
            self.created.append(tool_call.type)

    async def main():
        client = AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0, timeout=30)
        thread = await client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        fake.add({"tool_calls": [("get_weather", '{"city": "Bern"}')]}, {"text": "async words"})
        handler = Collect()
        async with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=weather_assistant.id,
                                                   event_handler=handler) as stream:
            await stream.until_done()
        run = await stream.get_final_run()
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        final = await client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "x"}])
        await client.close()
        return handler, final

    handler, final = asyncio.run(main())
    assert handler.created == ["function"] and final.status == "completed"


# -- files and vector stores ---------------------------------------------------------------------
def test_vector_store_upload_helpers_search_and_file_content(client):
    vs = client.vector_stores.create(name="helpers")
    one = client.vector_stores.files.upload_and_poll(vector_store_id=vs.id,
                                                     file=("cats.txt", io.BytesIO(b"cats purr and nap in the sun")))
    assert one.status == "completed" and one.vector_store_id == vs.id
    assert client.files.retrieve(one.id).filename == "cats.txt"
    extra = client.files.create(file=("owls.txt", b"owls hoot at night"), purpose="assistants")
    batch = client.vector_stores.file_batches.upload_and_poll(
        vector_store_id=vs.id, files=[("dogs.txt", io.BytesIO(b"dogs bark at the mail")),
                                      ("fish.txt", io.BytesIO(b"fish swim in water"))],
        file_ids=[extra.id], poll_interval_ms=10)
    assert batch.status == "completed" and batch.file_counts.completed == batch.file_counts.total == 3
    assert len(list(client.vector_stores.files.list(vector_store_id=vs.id, limit=1))) == 4  # auto-paged

    hits = client.vector_stores.search(vs.id, query="which animal barks?", max_num_results=2)
    assert hits.data[0].filename == "dogs.txt" and len(hits.data) <= 2
    assert "bark" in hits.data[0].content[0].text and hits.data[0].file_id
    assert client.vector_stores.search(vs.id, query="owls hoot").data[0].filename == "owls.txt"

    content = client.files.content(one.id)
    assert content.read() == b"cats purr and nap in the sun" and content.text == "cats purr and nap in the sun"


def test_files_list_by_purpose_and_paging(client):
    image = client.files.create(file=("pixel.png", io.BytesIO(PNG), "image/png"), purpose="vision")
    doc = client.files.create(file=("doc.txt", io.BytesIO(b"words")), purpose="assistants")
    vision = [f.id for f in client.files.list(purpose="vision")]
    assert image.id in vision and doc.id not in vision
    assert doc.id in [f.id for f in client.files.list(purpose="assistants")]
    first = client.files.list(limit=1)
    assert len(first.data) == 1 and first.has_more
    walked = [f.id for f in client.files.list(limit=1)]
    assert len(walked) == len(set(walked)) and {image.id, doc.id} <= set(walked)
    assert client.files.content(image.id).read() == PNG


def test_auto_paging_walks_every_page(tmp_path):
    with running_api(tmp_path) as api:  # a fresh database, so the counts are exact
        client = api.client()
        ids = [client.beta.assistants.create(model="gpt-4o-mini", name=f"a{i}").id for i in range(7)]
        page = client.beta.assistants.list(limit=2)
        assert len(page.data) == 2 and page.has_more and page.has_next_page()
        assert [a.id for a in client.beta.assistants.list(limit=2)] == ids[::-1]  # four pages, newest first
        assert [a.id for a in client.beta.assistants.list(limit=3, order="asc")] == ids
        pages = list(client.beta.assistants.list(limit=2).iter_pages())
        assert [len(p.data) for p in pages] == [2, 2, 2, 1]

        thread = client.beta.threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
        texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id=thread.id, limit=2,
                                                                                    order="asc")]
        assert texts == [f"m{i}" for i in range(5)]
        runs = [client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=ids[0]).id for _ in range(3)]
        assert [r.id for r in client.beta.threads.runs.list(thread_id=thread.id, limit=1)] == runs[::-1]
        stores = [client.vector_stores.create(name=f"v{i}").id for i in range(3)]
        assert [v.id for v in client.vector_stores.list(limit=1)] == stores[::-1]


# -- messages with images and attachments --------------------------------------------------------
def test_image_content_parts_and_attachments(client, weather_assistant, fake):
    image = client.files.create(file=("pixel.png", io.BytesIO(PNG), "image/png"), purpose="vision")
    doc = client.files.create(file=("data.csv", io.BytesIO(b"a,b\n1,2\n")), purpose="assistants")
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread_id=thread.id, role="user",
        content=[{"type": "text", "text": "What is in these images?"},
                 {"type": "image_file", "image_file": {"file_id": image.id, "detail": "low"}},
                 {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}}],
        attachments=[{"file_id": doc.id, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}])
    assert [b.type for b in message.content] == ["text", "image_file", "image_url"]
    assert message.content[1].image_file.file_id == image.id and message.content[1].image_file.detail == "low"
    assert message.content[2].image_url.url == "https://example.com/cat.png" and message.content[2].image_url.detail == "high"
    assert message.attachments[0].file_id == doc.id
    assert [t.type for t in message.attachments[0].tools] == ["code_interpreter", "file_search"]
    assert client.beta.threads.messages.retrieve(message.id, thread_id=thread.id) == message

    fake.add({"text": "a pixel and a cat"})
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=weather_assistant.id)
    assert run.status == "completed"
    parts = next(m for m in fake.requests[-1]["messages"] if m["role"] == "user")["content"]
    urls = [p["image_url"] for p in parts if p["type"] == "image_url"]
    # The uploaded image reaches the model as a data URL, the linked one as its URL.
    assert urls[0]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode() and urls[0]["detail"] == "low"
    assert urls[1] == {"url": "https://example.com/cat.png", "detail": "high"}
    assert "data.csv" in parts[0]["text"]

    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content=[
            {"type": "image_file", "image_file": {"file_id": "file-missing"}}])
    assert err.value.param == "content[0].image_file.file_id"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content=[{"type": "image_url"}])
    assert err.value.param == "content[0]"


# -- errors --------------------------------------------------------------------------------------
def test_errors_map_to_the_sdk_exceptions_with_openai_bodies(client, weather_assistant):
    with pytest.raises(openai.NotFoundError) as err:
        client.beta.threads.retrieve("thread_missing")
    assert err.value.status_code == 404 and err.value.code == "not_found"
    assert set(err.value.body) == {"message", "type", "param", "code"} and err.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o-mini", temperature=3)
    assert err.value.param == "temperature" and err.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.runs.create(thread_id=client.beta.threads.create().id, assistant_id=weather_assistant.id,
                                        model="no-such-model")
    assert err.value.param == "model" and err.value.code == "model_not_found"
    # A stream that cannot start raises as the plain call does.
    with pytest.raises(openai.NotFoundError):
        with client.beta.threads.runs.stream(thread_id="thread_missing", assistant_id=weather_assistant.id):
            pass
    with pytest.raises(openai.BadRequestError) as err:
        with client.beta.threads.runs.stream(thread_id=client.beta.threads.create().id,
                                             assistant_id=weather_assistant.id, model="no-such-model"):
            pass
    assert err.value.param == "model"


def test_authentication_error_with_keys_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_API_KEYS", "key-one, key-two")
    keys = load_settings().api_keys
    assert keys == ("key-one", "key-two")
    with running_api(tmp_path, api_keys=keys) as api:
        assert api.client(api_key="key-two").models.list().data
        with pytest.raises(openai.AuthenticationError) as err:
            api.client(api_key="key-three").beta.assistants.list()
        assert err.value.status_code == 401 and err.value.code == "invalid_api_key"
        assert set(err.value.body) == {"message", "type", "param", "code"}
        with pytest.raises(openai.AuthenticationError):
            with api.client(api_key="nope").beta.threads.create_and_run_stream(
                    assistant_id="asst_x", thread={"messages": [{"role": "user", "content": "x"}]}):
                pass


def test_cancel_mid_stream_ends_the_message_incomplete_for_the_sdk(client, weather_assistant, fake):
    fake.add({"text": "word " * 200, "chunk_delay": 0.02})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "talk"}])
    events = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=weather_assistant.id) as stream:
        for event in stream:
            events.append(event.event)
            if event.event == "thread.message.delta" and events.count(event.event) == 3:
                client.beta.threads.runs.cancel(run_id=stream.current_run.id, thread_id=thread.id)
        (message,) = stream.get_final_messages()
    assert "thread.message.incomplete" in events and "thread.run.step.cancelled" in events
    assert events[-1] == "thread.run.cancelled"
    assert message.status == "incomplete" and message.incomplete_details.reason == "run_cancelled"
    assert message.content[0].text.value.startswith("word word")  # what streamed before the cancel is kept
