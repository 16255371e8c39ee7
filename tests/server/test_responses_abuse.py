"""Odd values for every parameter of the Responses and Conversations routes: a 200 or an OpenAI-shaped 400/404."""

from __future__ import annotations

import httpx2
import pytest

from assistants.responses.inputs import FIELDS

ODD_VALUES = [None, True, -1, 1e308, "x", "", [], [None], {}, {"type": None}, {"": ""}, [{"type": "function"}],
              [{"type": "message"}], [{"role": "user", "content": [{"type": "input_image"}]}],
              {"format": {"type": "json_schema"}}, [{"type": "file_search"}], {"type": "auto", "file_ids": [1]}]


@pytest.fixture(scope="module")
def raw(api):
    with httpx2.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.key}"}, timeout=30) as http:
        yield http


def _checked(response: httpx2.Response, what) -> None:
    assert response.status_code in (200, 400, 404), (what, response.status_code, response.text[:300])
    if response.status_code != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"], what


def test_odd_values_for_every_responses_parameter_never_cause_a_500(api, raw, fake):
    threads = api.rt.store.count("threads")
    for field in sorted(FIELDS - {"stream"}):
        for value in ODD_VALUES:
            body = {"model": "gpt-4o-mini", "input": "hi", field: value}
            response = raw.post("/responses", json=body)
            _checked(response, body)
            if response.status_code == 400:
                assert api.rt.store.count("threads") == threads, body  # a refused request stores nothing
            else:
                threads = api.rt.store.count("threads")


def test_odd_values_for_conversations_never_cause_a_500(raw):
    conv = raw.post("/conversations", json={}).json()["id"]
    for path, fields in {"/conversations": ["items", "metadata"], f"/conversations/{conv}": ["metadata"],
                         f"/conversations/{conv}/items": ["items"]}.items():
        for field in fields:
            for value in ODD_VALUES:
                _checked(raw.post(path, json={field: value}), (path, field, value))
    for path in ("/conversations/conv_nope", "/conversations/conv_nope/items", f"/conversations/{conv}/items/msg_x",
                 "/responses/resp_nope", "/responses/resp_nope/input_items"):
        response = raw.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", path


NESTED = {
    "tools": [[{"type": "function", "name": "f", "parameters": 5}], [{"type": "function", "name": 5}],
              [{"type": "file_search", "vector_store_ids": "vs"}], [{"type": "file_search", "vector_store_ids": [5]}],
              [{"type": "code_interpreter", "container": 5}], [{"type": "code_interpreter", "container": {"type": "x"}}],
              [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}],
              [{"type": "function", "name": "file_search"}],
              [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": [1]}}],
              [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "8g"}}]],
    "input": [[{"role": "user", "content": [{"type": "input_text", "text": 5}]}], [{"role": "user", "content": 5}],
              [{"role": "user", "content": [{"type": "input_image", "image_url": 5}]}],
              [{"role": "user", "content": [{"type": "input_image", "file_id": "file-nope"}]}],
              [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/a.png", "detail": 7}]}],
              [{"type": "function_call_output", "call_id": 5, "output": "x"}],
              [{"type": "function_call_output", "call_id": "c", "output": {"a": 1}}],
              [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}],
              [{"type": "item_reference", "id": "x"}], [{"role": "tool", "content": "x"}],
              [{"type": "file_search_call", "id": 5}], [{"type": "file_search_call", "id": "fs", "queries": "q"}],
              [{"type": "file_search_call", "id": "fs", "queries": [5]}], [{"type": "code_interpreter_call"}],
              [{"type": "code_interpreter_call", "id": "ci", "code": 5}]],
    "text": [{"format": 5}, {"format": {"type": "json_schema", "name": "n", "schema": 5}},
             {"format": {"type": "json_schema", "name": "bad name!", "schema": {}}}, {"format": {"type": "yaml"}}],
    "tool_choice": [{"type": "function"}, {"type": "function", "name": "nope"}, "sometimes", {"type": "file_search"}],
}


def test_odd_nested_values_never_cause_a_500(raw, client):
    vs = client.vector_stores.create(name="abuse").id
    for key in ("ranking_options", "max_num_results", "filters"):
        for value in (5, "x", {"ranker": 5, "score_threshold": "high"}, [1], 99, True):
            tool = {"type": "file_search", "vector_store_ids": [vs], key: value}
            _checked(raw.post("/responses", json={"model": "gpt-4o-mini", "input": "hi", "tools": [tool]}), tool)
    for field, values in NESTED.items():
        for value in values:
            body = {"model": "gpt-4o-mini", "input": "hi", field: value}
            response = raw.post("/responses", json=body)
            _checked(response, body)
            assert response.status_code == 400, body


def test_odd_replayed_tool_calls_are_kept_only_as_far_as_they_are_valid(raw, client, fake):
    odd = [{"type": "file_search_call", "id": "fs_odd", "queries": ["q"], "results": [5, {"text": "t", "x": 1}]},
           {"type": "code_interpreter_call", "id": "ci_odd", "code": "1", "outputs": [5, {"type": "logs", "logs": 3},
                                                                                       {"type": "logs", "logs": "ok"}]},
           {"role": "user", "content": "hi"}]
    response = raw.post("/responses", json={"model": "gpt-4o-mini", "input": odd})
    assert response.status_code == 200, response.text
    items = client.responses.input_items.list(response.json()["id"], order="asc").data  # the SDK parses them
    assert items[0].results[0].text == "t" and items[1].outputs[0].logs == "ok" and len(items[1].outputs) == 1


def test_odd_values_for_containers_never_cause_a_500(api, raw):
    from assistants.responses.containers import FIELDS as CONTAINER_FIELDS

    threads = api.rt.store.count("threads")
    for field in sorted(CONTAINER_FIELDS):
        for value in ODD_VALUES:
            body = {"name": "odd", field: value}
            response = raw.post("/containers", json=body)
            _checked(response, body)
            if response.status_code == 200:
                assert raw.delete(f"/containers/{response.json()['id']}").status_code == 200
            assert api.rt.store.count("threads") == threads, body
    made = raw.post("/containers", json={"name": "files"}).json()["id"]
    for value in ODD_VALUES:
        _checked(raw.post(f"/containers/{made}/files", json={"file_id": value}), value)
    for query in ("stream=true&starting_after=1e9", "stream=2", "stream=true&starting_after="):
        _checked(raw.get(f"/responses/resp_nope?{query}"), query)
    _checked(raw.post("/responses", json={"model": "gpt-4o-mini", "input": "hi",
                                          "tools": [{"type": "code_interpreter", "container": "cntr_nope"}]}), "cntr")
    raw.delete(f"/containers/{made}")
