"""The Open Responses compliance scenarios (basic, streaming, system prompt, tool calling and its streaming, image
input, multi-turn), sent as raw HTTP the way the suite sends them, every answer and event checked strictly."""

from __future__ import annotations

import json

import httpx2
import pytest

from tests.server.open_responses import check_event, check_response

ONE_PIXEL_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElF"
                 "TkSuQmCC")
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a location",
           "parameters": {"type": "object", "properties": {"location": {"type": "string",
                                                                         "description": "The city and state"}},
                          "required": ["location"]}}


def user(text: str) -> dict:
    return {"type": "message", "role": "user", "content": text}


SCENARIOS = {
    "basic-response": {"input": [user("Say hello in exactly 3 words.")]},
    "system-prompt": {"input": [{"type": "message", "role": "system",
                                 "content": "You are a pirate. Always respond in pirate speak."}, user("Say hello.")]},
    "tool-calling": {"input": [user("What's the weather like in San Francisco?")], "tools": [WEATHER]},
    "image-input": {"input": [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What do you see in this image? Answer in one sentence."},
        {"type": "input_image", "image_url": ONE_PIXEL_PNG}]}]},
    "multi-turn": {"input": [user("My name is Alice."), {"type": "message", "role": "assistant",
                                                         "content": "Hello Alice! Nice to meet you."},
                             user("What is my name?")]},
}


def post(api, body: dict) -> httpx2.Response:
    return httpx2.post(f"{api.base_url}/responses", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"})


def sse(api, body: dict) -> list[dict]:
    """Every event of a streamed response, parsed from the SSE frames (event name = data's type)."""
    events = []
    with httpx2.stream("POST", f"{api.base_url}/responses", json={**body, "stream": True}, timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = json.loads(line[5:].strip())
                assert data["type"] == name
                events.append(data)
    return events


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario(api, fake, scenario):
    if scenario == "tool-calling":
        fake.add({"tool_calls": [("get_weather", '{"location": "San Francisco, CA"}')]})
    else:
        fake.add({"text": "Ahoy, hello there!"})
    r = post(api, {"model": "gpt-4o-mini", **SCENARIOS[scenario]})
    assert r.status_code == 200, r.text
    resp = check_response(r.json())
    assert resp.output
    if scenario == "tool-calling":
        assert resp.output[0].type == "function_call" and json.loads(resp.output[0].arguments)["location"]
    else:
        assert resp.status == "completed" and resp.output_text == "Ahoy, hello there!"
    sent = fake.requests[-1]["messages"]
    if scenario == "system-prompt":
        assert sent[0]["role"] == "system" and "pirate" in sent[0]["content"]
    if scenario == "multi-turn":
        assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "assistant", "user"]
    if scenario == "image-input":
        assert sent[-1]["content"][1]["image_url"]["url"] == ONE_PIXEL_PNG


def test_streaming_response(api, fake):
    fake.add({"text": "1, 2, 3, 4, 5"})
    events = sse(api, {"model": "gpt-4o-mini", "input": [user("Count from 1 to 5.")]})
    for event in events:
        check_event(event)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "1, 2, 3, 4, 5"
    assert events[-1]["response"]["status"] == "completed"


def test_tool_calling_streaming(api, fake):
    fake.add({"tool_calls": [("get_weather", '{"location": "San Francisco, CA"}')]})
    events = sse(api, {"model": "gpt-4o-mini", "input": [user("What's the weather like in San Francisco?")],
                       "tools": [WEATHER]})
    for event in events:
        check_event(event)
    kinds = [e["type"] for e in events]
    assert any(e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call" for e in events)
    assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    assert any(e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call" for e in events)
    assert events[-1]["type"] == "response.completed"
