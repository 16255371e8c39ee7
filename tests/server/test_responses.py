"""The Responses API through unchanged `openai` SDK code: text, multi-turn, functions, streaming, cancel."""

from __future__ import annotations

import json
import time

import httpx2
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseItem, ResponseStreamEvent

from tests.server.open_responses import UNDECLARED_BY_SDK

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
ITEM = pydantic.TypeAdapter(ResponseItem)
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def strict(model, obj: dict) -> None:
    model.model_validate(obj)
    extra = set(obj) - set(model.model_fields) - (UNDECLARED_BY_SDK if model is Response else set())
    assert not extra, f"{model.__name__} has undeclared fields {extra}"


def raw(client, path: str) -> dict:
    """The JSON body exactly as the server sent it (the SDK's objects hide undeclared fields)."""
    return client.get(path, cast_to=object)


def test_text_response_and_its_round_trip(client, fake):
    fake.add({"text": "Hello there"})
    r = client.responses.create(model="gpt-4o-mini", input="Say hello", instructions="Be brief.", temperature=0.2,
                                metadata={"k": "v"})
    assert r.status == "completed" and r.output_text == "Hello there"
    assert r.id.startswith("resp_") and r.instructions == "Be brief." and r.metadata == {"k": "v"}
    assert r.usage.input_tokens == 11 and r.usage.output_tokens == 2 and r.usage.total_tokens == 13
    sent = fake.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."} and sent["temperature"] == 0.2
    assert sent["messages"][-1]["content"] == "Say hello"
    body = raw(client, f"/responses/{r.id}")
    strict(Response, body)
    again = client.responses.retrieve(r.id)
    assert again.output_text == "Hello there" and again.output[0].id == r.output[0].id
    items = client.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "Say hello"
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


def test_multi_turn_by_previous_response_id(client, fake):
    first = client.responses.create(model="gpt-4o-mini", input="My name is Ada.")
    second = client.responses.create(model="gpt-4o-mini", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    contents = [m["content"] for m in fake.requests[-1]["messages"]]
    assert contents == ["My name is Ada.", "echo: My name is Ada.", "What is my name?"]


def test_multi_turn_by_conversation(client, fake):
    conv = client.conversations.create(metadata={"topic": "names"}, items=[{"role": "user", "content": "I am Bo."}])
    assert conv.id.startswith("conv_")
    r = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="Who am I?")
    assert r.conversation.id == conv.id
    client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="Again?")
    contents = [m["content"] for m in fake.requests[-1]["messages"]]
    assert contents == ["I am Bo.", "Who am I?", "echo: Who am I?", "Again?"]
    items = client.conversations.items.list(conv.id, order="asc")
    assert [(i.role, i.type) for i in items.data] == [("user", "message"), ("user", "message"),
                                                      ("assistant", "message"), ("user", "message"),
                                                      ("assistant", "message")]
    for item in raw(client, f"/conversations/{conv.id}/items")["data"]:
        ITEM.validate_python(item)


def test_function_call_round_trip_by_previous_response_id(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Paris"}')]}, {"text": "Sunny in Paris"})
    r = client.responses.create(model="gpt-4o-mini", input="Weather in Paris?", tools=[WEATHER])
    assert r.status == "completed"
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=r.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 24C"}])
    assert follow.status == "completed" and follow.output_text == "Sunny in Paris"
    assert [o.type for o in follow.output] == ["message"]
    tool_msg = fake.requests[-1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "sunny, 24C"
    assert client.responses.input_items.list(follow.id).data[0].type == "function_call_output"


def test_function_call_round_trip_stateless_history(client, fake):
    """What the Agents SDK does: no previous_response_id, the whole history replayed each turn."""
    fake.add({"tool_calls": [("get_weather", '{"city": "Oslo"}')]}, {"text": "Cold in Oslo"})
    history = [{"role": "user", "content": "Weather in Oslo?"}]
    r = client.responses.create(model="gpt-4o-mini", input=history, tools=[WEATHER])
    call = next(o for o in r.output if o.type == "function_call")
    history += [o.model_dump(exclude_none=True) for o in r.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "-5C"})
    follow = client.responses.create(model="gpt-4o-mini", input=history, tools=[WEATHER])
    assert follow.output_text == "Cold in Oslo"
    last = fake.requests[-1]["messages"][-1]
    assert (last["role"], last["tool_call_id"], last["content"]) == ("tool", call.call_id, "-5C")


def test_streaming_event_order_and_types(api, client, fake):
    fake.add({"text": "one two three"})
    names, payloads = [], []
    with client.responses.stream(model="gpt-4o-mini", input="count") as stream:
        for event in stream:
            names.append(event.type)
            payloads.append(event)
        final = stream.get_final_response()
    assert final.output_text == "one two three"
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert names.count("response.output_text.delta") == 3
    assert names[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in payloads] == list(range(len(payloads)))


def test_stream_true_events_validate_against_openai_types(api, client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Rome"}')]})
    body = {"model": "gpt-4o-mini", "input": "Rome?", "tools": [WEATHER], "stream": True}
    with httpx2.stream("POST", f"{api.base_url}/responses", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = []
    for block in text.split("\n\n"):
        if block.strip():
            name, data = (line.split(": ", 1)[1] for line in block.split("\n"))
            events.append(json.loads(data))
            assert events[-1]["type"] == name
    for event in events:
        parsed = STREAM_EVENT.validate_python(event)
        strict(type(parsed), event)
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert json.loads(done["arguments"]) == {"city": "Rome"}
    strict(Response, events[-1]["response"])
    assert events[-1]["response"]["output"][0]["type"] == "function_call"


def test_create_stream_true_through_the_sdk(client, fake):
    fake.add({"text": "a b"})
    events = list(client.responses.create(model="gpt-4o-mini", input="x", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "a b"
    assert events[-1].response.output_text == "a b"


def test_background_response_can_be_cancelled(client, fake):
    fake.add({"text": "slow", "delay": 3})
    r = client.responses.create(model="gpt-4o-mini", input="take your time", background=True)
    assert r.status in ("queued", "in_progress") and r.background is True
    cancelled = client.responses.cancel(r.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(r.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(r.id)


def test_store_false_is_not_kept(api, client, fake):
    r = client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    assert r.output_text == "echo: forget me"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="hi", previous_response_id=r.id)
    assert err.value.body["param"] == "previous_response_id"


def test_max_output_tokens_and_structured_output_reach_the_model(client, fake):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    fake.add({"text": '{"n": 3}'})
    r = client.responses.create(model="gpt-4o-mini", input="n?", max_output_tokens=50,
                                text={"format": {"type": "json_schema", "name": "num", "schema": schema, "strict": True}})
    assert json.loads(r.output_text) == {"n": 3} and r.text.format.type == "json_schema"
    sent = fake.requests[-1]
    assert sent["response_format"]["type"] == "json_schema" and sent["response_format"]["json_schema"]["name"] == "num"
    assert sent["max_tokens"] == 50


@pytest.mark.parametrize("kwargs, param", [
    ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
    ({"previous_response_id": "resp_x", "conversation": "conv_x"}, "conversation"),
    ({"input": [{"type": "function_call_output", "call_id": "call_nope", "output": "1"}]}, "input[0].call_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://example.com/a.png"}]}]},
     "input[0].content[0].image_url"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_missing"]}]}, "tools[0].vector_store_ids"),
    ({"previous_response_id": "resp_missing"}, "previous_response_id"),
    ({"conversation": "conv_missing"}, "conversation"),
    ({"temperature": 3}, "temperature"),
    ({"model": "no-such-model"}, "model"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA",
                                              "detail": "ultra"}]}]}, "input[0].content[0].detail"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA",
                                              "detail": 3}]}]}, "input[0].content[0].detail"),
    ({"max_tool_calls": 0}, "max_tool_calls"),
    ({"top_logprobs": 21}, "top_logprobs"),
    ({"include": ["message.output_text.everything"]}, "include[0]"),
])
def test_bad_input_is_a_400_naming_the_parameter(api, client, fake, kwargs, param):
    threads_before = api.rt.store.count("threads")
    runs_before = api.rt.store.count("runs")
    body = {"model": "gpt-4o-mini", "input": "hi", **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(**body)
    assert err.value.body["param"] == param, err.value.body
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["message"]  # OpenAI's error shape
    assert api.rt.store.count("threads") == threads_before and api.rt.store.count("runs") == runs_before


def test_previous_response_id_of_a_store_false_response_leaves_nothing(api, client, fake):
    gone = client.responses.create(model="gpt-4o-mini", input="forget me", store=False)
    counts = [api.rt.store.count(t) for t in ("threads", "runs", "messages")]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="hi", previous_response_id=gone.id)
    assert err.value.body["param"] == "previous_response_id" and err.value.code == "previous_response_not_found"
    assert [api.rt.store.count(t) for t in ("threads", "runs", "messages")] == counts


def test_image_detail_is_checked_in_conversation_items_and_thread_messages(api, client):
    conv = client.conversations.create()
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "max"}
    with pytest.raises(openai.BadRequestError) as err:
        client.conversations.items.create(conv.id, items=[{"type": "message", "role": "user", "content": [image]}])
    assert err.value.body["param"] == "items[0].content[0].detail"
    thread = client.beta.threads.create()
    for part, param in (({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "max"}},
                         "content[0].image_url.detail"),
                        ({"type": "image_file", "image_file": {"file_id": "file-x", "detail": ""}},
                         "content[0].image_file.detail")):
        with pytest.raises(openai.BadRequestError) as err:
            client.beta.threads.messages.create(thread.id, role="user", content=[part])
        assert err.value.body["param"] == param, err.value.body
    assert client.beta.threads.messages.list(thread.id).data == []
    assert client.conversations.items.list(conv.id).data == []


def test_deleted_vector_store_is_a_400(api, client):
    vs = client.vector_stores.create(name="gone")
    client.vector_stores.delete(vs.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="find",
                                tools=[{"type": "file_search", "vector_store_ids": [vs.id]}])
    assert err.value.body["param"] == "tools[0].vector_store_ids"


def test_conversation_crud_and_items(client):
    conv = client.conversations.create(metadata={"a": "1"})
    assert client.conversations.retrieve(conv.id).metadata == {"a": "1"}
    assert client.conversations.update(conv.id, metadata={"a": "2"}).metadata == {"a": "2"}
    made = client.conversations.items.create(conv.id, items=[{"type": "message", "role": "user", "content": "x"}])
    item = client.conversations.items.retrieve(made.data[0].id, conversation_id=conv.id)
    assert item.content[0].text == "x"
    client.conversations.items.delete(item.id, conversation_id=conv.id)
    assert client.conversations.items.list(conv.id).data == []
    client.conversations.delete(conv.id)
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_the_private_conversation_mark_never_shows_through_the_api_nor_is_set_by_it(api, client):
    with httpx2.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.key}"}, timeout=30) as raw:
        _private_mark_checks(api, client, raw)


def _private_mark_checks(api, client, raw_http) -> None:
    conv = client.conversations.create(metadata={"a": "1"})
    thread_id = "thread_" + conv.id.removeprefix("conv_")
    assert api.rt.store.get("threads", thread_id)["_conversation"] is True  # what the Threads page reads
    for response in (raw_http.get(f"/conversations/{conv.id}"), raw_http.get(f"/threads/{thread_id}"),
                     raw_http.post(f"/threads/{thread_id}", json={"metadata": {"a": "2"}}),
                     raw_http.post(f"/conversations/{conv.id}", json={"metadata": {"a": "3"}})):
        assert response.status_code == 200 and not any(k.startswith("_") for k in response.json()), response.text
    assert api.rt.store.get("threads", thread_id)["_conversation"] is True  # kept through updates
    # A stranger cannot mark a thread: the private field is not a parameter.
    for body in ({"_conversation": True}, {"conversation": True}):
        made = raw_http.post("/threads", json=body)
        assert made.status_code in (200, 400), made.text
        if made.status_code == 200:
            assert "_conversation" not in api.rt.store.get("threads", made.json()["id"])
    refused = raw_http.post("/threads/runs", json={"assistant_id": "asst_x", "thread": {"conversation": True}})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "conversation"


def test_an_assistants_thread_is_a_conversation(client, fake):
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "from the old API"}])
    r = client.responses.create(model="gpt-4o-mini", conversation=thread.id, input="and the new one")
    assert [m["content"] for m in fake.requests[-1]["messages"]] == ["from the old API", "and the new one"]
    assert r.conversation.id == "conv_" + thread.id.removeprefix("thread_")
    time.sleep(0)


def test_unknown_call_id_after_a_finished_response(client, fake):
    first = client.responses.create(model="gpt-4o-mini", input="hello")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input=[
            {"type": "function_call_output", "call_id": "call_unknown", "output": "x"}])
    assert err.value.body["param"] == "input[0].call_id"


def test_a_waiting_response_needs_every_output(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "A"}'), ("get_weather", '{"city": "B"}')]}, {"text": "both"})
    r = client.responses.create(model="gpt-4o-mini", input="A and B?", tools=[WEATHER])
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 2
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", previous_response_id=r.id, input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "1"}])
    assert calls[1].call_id in err.value.body["message"]
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=r.id, input=[
        {"type": "function_call_output", "call_id": c.call_id, "output": "1"} for c in calls])
    assert follow.output_text == "both"


def test_a_failing_backend_fails_the_response(client, fake):
    fake.add({"status": 500, "message": "backend exploded"})
    r = client.responses.create(model="gpt-4o-mini", input="boom")
    assert r.status == "failed" and r.error.code == "server_error" and "exploded" in r.error.message
    fake.add({"status": 500})
    events = list(client.responses.create(model="gpt-4o-mini", input="boom", stream=True))
    assert events[-1].type == "response.failed" and events[-1].response.status == "failed"


def test_a_reply_cut_by_max_output_tokens_is_incomplete(client, fake):
    fake.add({"text": "cut short", "finish": "length"})
    r = client.responses.create(model="gpt-4o-mini", input="long story", max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].status == "incomplete"


def test_store_false_function_round_trip_replays_history(api, client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Nuuk"}')]}, {"text": "Cold"})
    threads = api.rt.store.count("threads")
    history = [{"role": "user", "content": "Nuuk?"}]
    r = client.responses.create(model="gpt-4o-mini", input=history, tools=[WEATHER], store=False)
    call = r.output[0]
    history += [call.model_dump(exclude_none=True),
                {"type": "function_call_output", "call_id": call.call_id, "output": "-20C"}]
    follow = client.responses.create(model="gpt-4o-mini", input=history, tools=[WEATHER], store=False)
    assert follow.output_text == "Cold"
    assert api.rt.store.count("threads") == threads  # nothing of a store=false exchange stays
    from assistants.responses import records

    assert records.get(api.rt.store, r.id) is None and records.get(api.rt.store, follow.id) is None


def test_a_failure_while_streaming_ends_with_an_error_event(client, fake, monkeypatch):
    from assistants.responses.service import ResponsesService

    def broken(self, *args, **kwargs):
        raise RuntimeError("finalize broke")

    monkeypatch.setattr(ResponsesService, "finalize", broken)
    events = list(client.responses.create(model="gpt-4o-mini", input="x", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "error"
    assert "finalize broke" in events[-1].message
    with pytest.raises(openai.InternalServerError):
        client.responses.create(model="gpt-4o-mini", input="x")


def test_a_playground_assistant_as_a_reusable_prompt(client, fake):
    fn = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    a = client.beta.assistants.create(model="gpt-4o-mini", instructions="You help {{customer}} with {{topic}}.",
                                      tools=[fn], temperature=0.3)
    fake.add({"tool_calls": [("lookup", "{}")]})
    r = client.responses.create(prompt={"id": a.id, "variables": {"customer": "Ada", "topic": "billing"}}, input="hi")
    sent = fake.requests[-1]
    assert sent["messages"][0] == {"role": "system", "content": "You help Ada with billing."}
    assert [t["function"]["name"] for t in sent["tools"]] == ["lookup"] and sent["temperature"] == 0.3
    assert r.prompt.id == a.id and r.model == "gpt-4o-mini" and r.instructions == "You help Ada with billing."
    assert r.output[0].type == "function_call" and r.tools[0].name == "lookup"
    strict(Response, raw(client, f"/responses/{r.id}"))
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(prompt={"id": "asst_missing"}, input="hi")
    assert err.value.body["param"] == "prompt.id"


def test_conversation_items_show_function_calls_and_outputs(client, fake):
    conv = client.conversations.create()
    fake.add({"tool_calls": [("get_weather", '{"city": "Bern"}')]}, {"text": "Mild in Bern"})
    r = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="Bern?", tools=[WEATHER])
    call = r.output[0]
    client.responses.create(model="gpt-4o-mini", conversation=conv.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "12C"}])
    items = client.conversations.items.list(conv.id, order="asc").data
    assert [i.type for i in items] == ["message", "function_call", "function_call_output", "message"]
    assert items[1].call_id == call.call_id and items[2].output == "12C" and items[3].content[0].text == "Mild in Bern"
    for item in raw(client, f"/conversations/{conv.id}/items")["data"]:
        ITEM.validate_python(item)
    assert client.conversations.items.retrieve(items[2].id, conversation_id=conv.id).output == "12C"
    page = client.conversations.items.list(conv.id, order="asc", limit=2, after=items[0].id)
    assert [i.id for i in page.data] == [items[1].id, items[2].id] and page.has_more


def test_branching_from_an_earlier_response(client, fake):
    first = client.responses.create(model="gpt-4o-mini", input="Pick a colour.")
    client.responses.create(model="gpt-4o-mini", input="Red, then.", previous_response_id=first.id)
    branch = client.responses.create(model="gpt-4o-mini", input="Blue, then.", previous_response_id=first.id)
    assert branch.output_text == "echo: Blue, then."
    contents = [m["content"] for m in fake.requests[-1]["messages"]]
    assert contents == ["Pick a colour.", "echo: Pick a colour.", "Blue, then."]
    assert client.responses.input_items.list(branch.id).data[0].content[0].text == "Blue, then."
    after = client.responses.create(model="gpt-4o-mini", input="Sure?", previous_response_id=branch.id)
    assert [m["content"] for m in fake.requests[-1]["messages"]][-3:] == ["Blue, then.", "echo: Blue, then.", "Sure?"]
    assert after.status == "completed"


def test_a_refused_response_leaves_the_conversation_as_it_was(api, client, fake):
    vs = client.vector_stores.create(name="kb2")
    conv = client.conversations.create(items=[{"role": "user", "content": "hi"}])
    fake.add({"text": "slow", "delay": 2})
    busy = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="wait", background=True)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="now",
                                tools=[{"type": "file_search", "vector_store_ids": [vs.id]}])
    thread = api.rt.get_thread("thread_" + conv.id.removeprefix("conv_"))
    assert "file_search" not in (thread["tool_resources"] or {})
    client.responses.cancel(busy.id)


def test_a_background_response_shows_its_progress(client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Riga"}')]})
    fake.add({"text": "slow", "delay": 2})
    first = client.responses.create(model="gpt-4o-mini", input="Riga?", tools=[WEATHER])
    r = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, background=True, input=[
        {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "rain"}])
    seen = client.responses.retrieve(r.id)
    assert seen.status in ("queued", "in_progress") and seen.usage is None
    assert client.responses.cancel(r.id).status == "cancelled"


def test_a_stream_left_early_still_settles_its_response(api, client, fake):
    threads = api.rt.store.count("threads")
    fake.add({"text": "a b c d", "chunk_delay": 0.2})
    body = {"model": "gpt-4o-mini", "input": "go", "stream": True, "store": False}
    with httpx2.stream("POST", f"{api.base_url}/responses", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"}) as response:
        next(response.iter_lines())  # the first event, then hang up
    deadline = time.monotonic() + 10
    while api.rt.store.count("threads") != threads and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.rt.store.count("threads") == threads  # store=false: the thread went once the run ended


def test_function_outputs_after_the_run_gave_up_waiting_reach_the_model_as_text(api, client, fake):
    fake.add({"tool_calls": [("get_weather", '{"city": "Baku"}')]}, {"text": "Windy."})
    r = client.responses.create(model="gpt-4o-mini", input="Baku?", tools=[WEATHER])
    call = r.output[0]
    from assistants.responses import records

    rec = records.get(api.rt.store, r.id)
    api.rt.cancel_run(rec["thread_id"], rec["run_id"])  # as if it had expired while the caller worked
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=r.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "windy, 30 km/h"}])
    assert follow.output_text == "Windy."
    texts = [m["content"] for m in fake.requests[-1]["messages"]]
    assert any("get_weather" in t for t in texts) and "windy, 30 km/h" in texts[-1]


def test_concurrent_responses_all_complete(api, fake):
    from concurrent.futures import ThreadPoolExecutor

    clients = [api.client() for _ in range(10)]

    def one(i: int) -> str:
        kwargs = {"stream": True} if i % 2 else {}
        result = clients[i].responses.create(model="gpt-4o-mini", input=f"n{i}", **kwargs)
        if kwargs:
            return list(result)[-1].response.output_text
        return result.output_text

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(one, range(10)))
    assert answers == [f"echo: n{i}" for i in range(10)]
