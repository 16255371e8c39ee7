"""Background responses stream response.queued; a response's stream can be picked up again (retrieve stream=True)."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from tests.server.open_responses import check_event

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def dumped(events) -> list[dict]:
    return [e.model_dump(mode="json", exclude_unset=True, warnings=False) for e in events]


def raw_events(api, response_id: str) -> list[dict]:
    """The replayed events exactly as the server sends them."""
    with httpx2.stream("GET", f"{api.base_url}/responses/{response_id}?stream=true", timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"}) as r:
        return [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]


def test_background_stream_is_queued_first(api, client, fake):
    fake.add({"text": "Hello there."})
    events = dumped(client.responses.create(model="gpt-4o-mini", input="hi", background=True, stream=True))
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["response"]["status"] == "queued" and events[0]["response"]["background"] is True
    assert kinds[-1] == "response.completed"
    for event in raw_events(api, events[0]["response"]["id"]):
        check_event(event)


def test_resume_a_running_background_response_and_replay_it(api, client, fake):
    fake.add({"text": "one two three four", "delay": 1})
    r = client.responses.create(model="gpt-4o-mini", input="slow", background=True)
    assert r.status == "queued"
    tail = dumped(client.responses.retrieve(r.id, stream=True, starting_after=2))
    assert tail[0]["sequence_number"] == 3 and tail[-1]["type"] == "response.completed"
    assert "".join(e["delta"] for e in tail if e["type"] == "response.output_text.delta") == "one two three four"
    full = dumped(client.responses.retrieve(r.id, stream=True))  # over now: read back from the log
    assert [e["sequence_number"] for e in full] == list(range(len(full)))
    assert full[3:] == tail and full[1]["type"] == "response.queued"
    assert dumped(client.responses.retrieve(r.id, stream=True, starting_after=len(full) - 2)) == full[-1:]
    assert [e["sequence_number"] for e in raw_events(api, r.id)] == list(range(len(full)))


def test_replay_of_each_segment_of_a_function_round_trip(client, fake):
    fake.add({"tool_calls": [("get_weather", "{}")]}, {"text": "Sunny."})
    with client.responses.stream(model="gpt-4o-mini", input="Weather?", tools=[WEATHER]) as stream:
        live = dumped(stream)
        first = stream.get_final_response()
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "sunny"}])
    again = dumped(client.responses.retrieve(first.id, stream=True))
    assert [e["type"] for e in again] == [e["type"] for e in live]
    assert again[-1]["response"]["output"][0]["type"] == "function_call"
    rest = dumped(client.responses.retrieve(follow.id, stream=True))
    assert rest[0]["type"] == "response.created" and rest[0]["response"]["id"] == follow.id
    assert [i["type"] for i in rest[-1]["response"]["output"]] == ["message"]
    assert "".join(e["delta"] for e in rest if e["type"] == "response.output_text.delta") == "Sunny."


def test_bad_resume_parameters(client, fake):
    fake.add({"text": "ok"})
    r = client.responses.create(model="gpt-4o-mini", input="hi")
    for query, param in (({"stream": "true", "starting_after": "-1"}, "starting_after"),
                         ({"stream": "true", "starting_after": "x"}, "starting_after"), ({"stream": "maybe"}, "stream")):
        with pytest.raises(openai.BadRequestError) as err:
            client.get(f"/responses/{r.id}", options={"params": query}, cast_to=object)
        assert err.value.body["param"] == param
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve("resp_missing", stream=True))
