"""truncation (auto / disabled), several vector stores in one file_search, tools changed with function outputs."""

from __future__ import annotations

import io

import openai
import pytest

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture
def small_window(api, monkeypatch):
    """The fake backend's model, seen as one with a 300-token context window."""
    provider, _ = api.rt.router.resolve("gpt-4o-mini")
    monkeypatch.setattr(provider, "context_window", 300, raising=False)
    return provider


def counts(api) -> tuple[int, int]:
    return api.rt.store.count("responses"), api.rt.store.count("threads")


def test_truncation_disabled_refuses_what_does_not_fit_and_auto_drops_the_oldest(api, client, fake, small_window):
    conv = client.conversations.create()
    for i in range(3):
        fake.add({"text": f"noted {i}"})
        client.responses.create(model="gpt-4o-mini", conversation=conv.id, input=f"fact {i}: " + "x" * 200,
                                max_output_tokens=50)
    before = counts(api)
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="and?", max_output_tokens=50)
    assert err.value.code == "context_length_exceeded" and err.value.body["param"] == "input"
    assert counts(api) == before  # nothing stored
    assert len(client.conversations.items.list(conv.id).data) == 6
    fake.add({"text": "ok"})
    r = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="and?", max_output_tokens=50,
                                truncation="auto")
    assert r.status == "completed" and r.truncation == "auto"
    sent = " ".join(str(m.get("content")) for m in fake.requests[-1]["messages"])
    assert "fact 0" not in sent and "and?" in sent  # the oldest went, the newest stayed
    with pytest.raises(openai.BadRequestError) as err:  # even auto cannot drop the newest item
        client.responses.create(model="gpt-4o-mini", input="y" * 2000, max_output_tokens=50, truncation="auto")
    assert err.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="y" * 2000, max_output_tokens=50)
    assert err.value.code == "context_length_exceeded" and counts(api)[0] == before[0] + 1
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/responses", body={"model": "gpt-4o-mini", "input": "x", "truncation": "middle"}, cast_to=object)
    assert err.value.body["param"] == "truncation"


def _store(client, name: str, text: str):
    f = client.files.create(file=(f"{name}.txt", io.BytesIO(text.encode()), "text/plain"), purpose="assistants")
    vs = client.vector_stores.create(name=name)
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    return vs


def test_file_search_over_two_vector_stores(api, client, fake):
    a = _store(client, "boats", "The ferry to the island leaves at noon.")
    b = _store(client, "trains", "The train to the island leaves at nine.")
    tool = {"type": "file_search", "vector_store_ids": [a.id, b.id]}
    fake.add({"tool_calls": [("file_search", '{"query": "island leaves"}')]}, {"text": "Noon by ferry, nine by train."})
    r = client.responses.create(model="gpt-4o-mini", input="When?", tools=[tool], include=["file_search_call.results"])
    assert sorted(x.filename for x in r.output[0].results) == ["boats.txt", "trains.txt"]
    assert r.tools[0].vector_store_ids == [a.id, b.id]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{**tool, "vector_store_ids": [a.id, "vs_gone"]}])
    assert err.value.body["param"] == "tools[0].vector_store_ids" and err.value.code == "vector_store_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{**tool, "vector_store_ids": [a.id] * 11}])
    assert err.value.body["param"] == "tools[0].vector_store_ids"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[tool, tool])
    assert err.value.body["param"] == "tools[1].type"


def test_tools_changed_with_the_function_outputs(api, client, fake):
    vs = _store(client, "menu", "Soup of the day: tomato.")
    fake.add({"tool_calls": [("get_weather", "{}")]})
    first = client.responses.create(model="gpt-4o-mini", input="Weather, then the soup?", tools=[WEATHER])
    call = first.output[0]
    fake.add({"tool_calls": [("file_search", '{"query": "soup"}')]}, {"text": "Sunny; tomato soup."})
    search = {"type": "file_search", "vector_store_ids": [vs.id]}
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=first.id, tools=[search],
                                     input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
                                     include=["file_search_call.results"])
    assert [o.type for o in follow.output] == ["file_search_call", "message"]
    assert follow.output[0].results[0].filename == "menu.txt" and follow.tools[0].type == "file_search"
    sent = [t["function"]["name"] for t in fake.requests[-2]["tools"]]
    assert sent == ["file_search"]  # the rest of the run has the new tools only
    # Outputs without tools: the run keeps the tools it had (and the response says which).
    fake.add({"tool_calls": [("get_weather", "{}")]})
    again = client.responses.create(model="gpt-4o-mini", input="Weather?", tools=[WEATHER])
    fake.add({"text": "Sunny."})
    kept = client.responses.create(model="gpt-4o-mini", previous_response_id=again.id, input=[
        {"type": "function_call_output", "call_id": again.output[0].call_id, "output": "sunny"}])
    assert kept.tools[0].name == "get_weather"
    assert [t["function"]["name"] for t in fake.requests[-1]["tools"]] == ["get_weather"]
    # A wrong tool in that request is a 400 and leaves the run waiting with its own tools.
    fake.add({"tool_calls": [("get_weather", "{}")]})
    third = client.responses.create(model="gpt-4o-mini", input="Weather?", tools=[WEATHER])
    bad = [{"type": "file_search", "vector_store_ids": ["vs_gone"]}]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4o-mini", previous_response_id=third.id, tools=bad, input=[
            {"type": "function_call_output", "call_id": third.output[0].call_id, "output": "x"}])
    fake.add({"text": "Sunny."})
    done = client.responses.create(model="gpt-4o-mini", previous_response_id=third.id, input=[
        {"type": "function_call_output", "call_id": third.output[0].call_id, "output": "sunny"}])
    assert done.output_text == "Sunny."
