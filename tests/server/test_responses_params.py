"""Parameters the Responses API applies, not only echoes: max_tool_calls, logprobs, a continuation's own settings."""

from __future__ import annotations

import io

import openai
import pytest

from assistants.config import EMBEDDED_MODEL_ID

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _store(client, text: bytes = b"The sky over the harbour is blue.") -> str:
    f = client.files.create(file=("notes.txt", io.BytesIO(text), "text/plain"), purpose="assistants")
    vs = client.vector_stores.create(name="kb")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    return vs.id


def test_max_tool_calls_ignores_built_in_calls_past_the_limit(client, fake):
    tool = {"type": "file_search", "vector_store_ids": [_store(client)]}
    # The model asks for three searches in one turn, then (if it could) once more: only the first one runs.
    fake.add({"tool_calls": [("file_search", '{"query": "a"}'), ("file_search", '{"query": "b"}'),
                             ("file_search", '{"query": "c"}')]},
             {"text": "Blue."})
    r = client.responses.create(model="gpt-4o-mini", input="sky?", tools=[tool, WEATHER], max_tool_calls=1)
    assert [o.type for o in r.output] == ["file_search_call", "message"] and r.max_tool_calls == 1
    assert r.output[0].queries == ["a"]
    answer = fake.requests[-1]
    # The spent built-in tool is no longer offered; functions still are (the limit is for built-in tools).
    assert [t["function"]["name"] for t in answer["tools"]] == ["get_weather"]
    (answered,) = [m for m in answer["messages"] if m["role"] == "tool"]  # the ignored calls never reach it
    assert answered["tool_call_id"] == r.output[0].id.removeprefix("fs_")


def test_without_max_tool_calls_every_call_runs(client, fake):
    tool = {"type": "file_search", "vector_store_ids": [_store(client)]}
    fake.add({"tool_calls": [("file_search", '{"query": "a"}'), ("file_search", '{"query": "b"}')]}, {"text": "ok"})
    r = client.responses.create(model="gpt-4o-mini", input="sky?", tools=[tool])
    assert [o.type for o in r.output] == ["file_search_call", "file_search_call", "message"]
    assert "tools" in fake.requests[-1]


def test_logprobs_are_passed_through_and_returned(client, fake):
    r = client.responses.create(model="gpt-4o-mini", input="hi there", top_logprobs=2,
                                include=["message.output_text.logprobs"])
    sent = fake.requests[-1]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    part = r.output[0].content[0]
    assert [lp.token for lp in part.logprobs] == ["echo:", " hi", " there"]
    assert part.logprobs[0].logprob == pytest.approx(-0.1) and len(part.logprobs[0].top_logprobs) == 2
    assert part.logprobs[1].bytes == list(b" hi")
    again = client.responses.retrieve(r.id, include=["message.output_text.logprobs"])
    assert [lp.token for lp in again.output[0].content[0].logprobs] == ["echo:", " hi", " there"]
    assert client.responses.retrieve(r.id).output[0].content[0].logprobs == []  # only where include asks


def test_logprobs_in_the_streamed_final_response(client, fake):
    with client.responses.stream(model="gpt-4o-mini", input="two words",
                                 include=["message.output_text.logprobs"]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert [lp.token for lp in final.output[0].content[0].logprobs] == ["echo:", " two", " words"]
    assert "top_logprobs" not in fake.requests[-1]  # include alone: logprobs without alternatives


def test_logprobs_in_the_streamed_delta_and_done_events(client, fake):
    with client.responses.stream(model="gpt-4o-mini", input="two words", top_logprobs=1,
                                 include=["message.output_text.logprobs"]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    # Each delta carries its own tokens (the fake backend sends one token a chunk), as OpenAI's.
    assert [(d.delta, [lp.token for lp in d.logprobs]) for d in deltas] == [
        ("echo:", ["echo:"]), (" two", [" two"]), (" words", [" words"])]
    assert deltas[1].logprobs[0].logprob == pytest.approx(-0.2)
    assert [t.token for t in deltas[1].logprobs[0].top_logprobs] == ["alt0"]
    (done,) = [e for e in events if e.type == "response.output_text.done"]
    assert [lp.token for lp in done.logprobs] == ["echo:", " two", " words"]
    assert [lp.model_dump() for lp in done.logprobs] == [lp.model_dump() for lp in final.output[0].content[0].logprobs]
    (part,) = [e for e in events if e.type == "response.content_part.done"]
    assert [lp.token for lp in part.part.logprobs] == ["echo:", " two", " words"]


def test_streamed_deltas_carry_no_logprobs_unless_included(client, fake):
    with client.responses.stream(model="gpt-4o-mini", input="two words", top_logprobs=2) as stream:
        events = list(stream)
    texts = [e for e in events if e.type in ("response.output_text.delta", "response.output_text.done")]
    assert len(texts) == 4 and all(e.logprobs == [] for e in texts)
    assert fake.requests[-1]["top_logprobs"] == 2  # asked of the model, not returned: include decides


def test_the_assistants_stream_of_the_same_run_leaves_the_tokens_out():
    from assistants.server.sse import StepShaper

    delta = {"id": "msg_1", "object": "thread.message.delta", "_logprobs": [{"token": "a"}],
             "delta": {"content": [{"index": 0, "type": "text", "text": {"value": "a", "annotations": []}}]}}
    ((event, data),) = StepShaper(False).frames("thread.message.delta", delta)
    assert event == "thread.message.delta" and "_logprobs" not in data and data["delta"] == delta["delta"]
    assert "_logprobs" in delta  # the shared event is copied, never changed


def test_no_logprobs_asked_none_sent(client, fake):
    r = client.responses.create(model="gpt-4o-mini", input="hi")
    assert "logprobs" not in fake.requests[-1] and r.output[0].content[0].logprobs == []


def test_logprobs_from_a_backend_without_them_is_a_400(tmp_path):
    from tests.server.conftest import running_api

    with running_api(tmp_path, embedded_enabled=True) as api:
        client = api.client()
        threads = api.rt.store.count("threads")
        for kwargs, param in (({"include": ["message.output_text.logprobs"]}, "include"),
                              ({"top_logprobs": 3}, "top_logprobs")):
            with pytest.raises(openai.BadRequestError) as err:
                client.responses.create(model=EMBEDDED_MODEL_ID, input="hi", **kwargs)
            assert err.value.body["param"] == param and err.value.code == "unsupported_parameter"
            assert "log probabilities" in err.value.body["message"]
        assert api.rt.store.count("threads") == threads


def test_function_outputs_with_a_new_model_and_instructions_apply_them(api, client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Oslo"}')]})
    first = client.responses.create(model="gpt-4o-mini", input="Weather in Oslo?", tools=[WEATHER],
                                    instructions="Answer in English.", temperature=0.2)
    call = first.output[0]
    fake.add({"text": "Es ist kalt."})
    second = client.responses.create(model="fake-model", previous_response_id=first.id, tools=[WEATHER],
                                     instructions="Antworte auf Deutsch.", temperature=0.7,
                                     input=[{"type": "function_call_output", "call_id": call.call_id, "output": "-5C"}])
    sent = fake.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Antworte auf Deutsch."}
    assert sent["temperature"] == 0.7
    assert second.model == "fake-model" and second.instructions == "Antworte auf Deutsch."
    assert second.output_text == "Es ist kalt."
    run = api.rt.get_run(api.rt.store.get_response(second.id)["thread_id"], api.rt.store.get_response(second.id)["run_id"])
    assert run["model"] == "fake-model" and run["instructions"] == "Antworte auf Deutsch."


def test_function_outputs_with_max_output_tokens_give_the_continuation_its_own_budget(api, client, fake):
    # The first response's budget (16, one token spent on the call) does not carry over to the second.
    fake.add({"tool_calls": [("get_weather", '{"city": "Oslo"}')]})
    first = client.responses.create(model="gpt-4o-mini", input="Oslo?", tools=[WEATHER], max_output_tokens=16)
    assert first.status == "completed" and first.output[0].type == "function_call"
    fake.add({"text": "Cold."})
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=[WEATHER],
                                      max_output_tokens=40, input=[
                                          {"type": "function_call_output", "call_id": first.output[0].call_id,
                                           "output": "-5C"}])
    assert second.status == "completed" and second.output_text == "Cold." and second.max_output_tokens == 40
    assert fake.requests[-1]["max_tokens"] == 40  # counted from this response's start, not the run's
    record = api.rt.store.get_response(second.id)
    assert api.rt.get_run(record["thread_id"], record["run_id"])["max_completion_tokens"] == 40


def test_a_continuation_cut_by_its_own_max_output_tokens_is_incomplete(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Rome"}')]})
    first = client.responses.create(model="gpt-4o-mini", input="Rome?", tools=[WEATHER], max_output_tokens=500)
    fake.add({"text": " ".join(["warm"] * 16), "finish": "length"})  # the fake backend counts a token a word
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, max_output_tokens=16,
                                     input=[{"type": "function_call_output", "call_id": first.output[0].call_id,
                                             "output": "30C"}])
    assert fake.requests[-1]["max_tokens"] == 16
    assert second.status == "incomplete" and second.incomplete_details.reason == "max_output_tokens"
    assert second.usage.output_tokens == 16  # this response's tokens only


def test_function_outputs_without_max_output_tokens_lift_the_earlier_limit(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Lima"}')]})
    first = client.responses.create(model="gpt-4o-mini", input="Lima?", tools=[WEATHER], max_output_tokens=16)
    fake.add({"text": "Mild."})
    second = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "18C"}])
    assert "max_tokens" not in fake.requests[-1] and second.max_output_tokens is None  # as OpenAI: per request


def test_function_outputs_without_instructions_drop_the_earlier_ones(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Rome"}')]})
    first = client.responses.create(model="gpt-4o-mini", input="Rome?", tools=[WEATHER], instructions="Be terse.")
    fake.add({"text": "Warm."})
    client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "30C"}])
    assert fake.requests[-1]["messages"][0]["role"] != "system"  # instructions do not carry over, as OpenAI's


def test_system_developer_and_built_in_items_are_kept_in_the_conversation(client, fake):
    conv = client.conversations.create()
    replayed = [
        {"role": "developer", "content": "Answer in French."},
        {"type": "file_search_call", "id": "fs_old", "queries": ["tides"], "status": "completed",
         "results": [{"file_id": "file-1", "filename": "t.txt", "score": 0.9, "text": "High tide at 6."}]},
        {"type": "code_interpreter_call", "id": "ci_old", "code": "print(6*7)", "status": "completed",
         "container_id": "cntr_x", "outputs": [{"type": "logs", "logs": "42"}]},
        {"role": "user", "content": "When is high tide?"},
    ]
    r = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input=replayed)
    sent = fake.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer in French."}  # a system message, said once
    assert "High tide at 6." in sent[1]["content"] and "print(6*7)" in sent[2]["content"] and "42" in sent[2]["content"]
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [(i.type, getattr(i, "role", None)) for i in items] == [
        ("message", "developer"), ("file_search_call", None), ("code_interpreter_call", None), ("message", "user"),
        ("message", "assistant")]
    assert items[1].id == "fs_old" and items[1].queries == ["tides"] and items[2].code == "print(6*7)"
    assert items[0].content[0].text == "Answer in French."
    assert [i.type for i in client.responses.input_items.list(r.id, order="asc").data] == [
        "message", "file_search_call", "code_interpreter_call", "message"]
    # A later response in the conversation still reads the developer message as system text.
    client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="And low tide?")
    assert fake.requests[-1]["messages"][0] == {"role": "system", "content": "Answer in French."}


def test_a_system_message_added_as_a_conversation_item(client, fake):
    conv = client.conversations.create(items=[{"type": "message", "role": "system", "content": "Be brief."}])
    client.conversations.items.create(conv.id, items=[{"type": "message", "role": "user", "content": "Hello"}])
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [(i.role, i.content[0].text) for i in items] == [("system", "Be brief."), ("user", "Hello")]
    client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="Hi")
    assert fake.requests[-1]["messages"][:2] == [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "Hello"}]


def test_without_a_conversation_system_items_stay_instructions(client, fake):
    r = client.responses.create(model="gpt-4o-mini", instructions="Base.",
                                input=[{"role": "system", "content": "Extra."}, {"role": "user", "content": "q"}])
    assert fake.requests[-1]["messages"][0] == {"role": "system", "content": "Base.\n\nExtra."}
    assert r.output_text == "echo: q"
