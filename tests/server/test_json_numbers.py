"""NaN, Infinity and runaway nesting: refused with a 400 naming the field; rows stored before that still list."""

from __future__ import annotations

import json
import sqlite3

import httpx2
import pytest

from assistants import jsonsafe
from assistants.errors import BadRequest
from assistants.server.sse import encode
from tests.server.conftest import running_api

FUNCTION_NAN = ('{"model": "gpt-4o-mini", "tools": [{"type": "function", "function": {"name": "f", "parameters": '
                '{"type": "object", "properties": {"n": {"type": "number", "maximum": NaN}}}}}]}')
SCHEMA_NEG_INF = ('{"model": "gpt-4o-mini", "response_format": {"type": "json_schema", "json_schema": {"name": "s", '
                  '"schema": {"type": "object", "properties": {"n": {"type": "number", "minimum": -Infinity}}}}}}')


def strict_json(text: str):
    """Parse as a strict JSON parser (JavaScript's, Go's) would: NaN and Infinity are errors."""
    def refuse(token):
        raise AssertionError(f"{token} in a response body: {text[:300]}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("numbers")) as running:
        yield running


@pytest.fixture(scope="module")
def raw(api):
    with httpx2.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.key}",
                                                        "Content-Type": "application/json"}, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def ids(client):
    """A thread, and a vector store holding one file, for the routes that need them."""
    thread = client.beta.threads.create()
    f = client.files.create(file=("a.txt", b"apples and pears"), purpose="assistants")
    vs = client.vector_stores.create(name="numbers")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    return {"t": thread.id, "vs": vs.id, "f": f.id}


CASES = [
    ("/assistants", FUNCTION_NAN, "tools[0].function.parameters.properties.n.maximum", "/assistants"),
    ("/assistants", SCHEMA_NEG_INF, "response_format.json_schema.schema.properties.n.minimum", "/assistants"),
    ("/assistants", '{"model": "gpt-4o-mini", "temperature": 1e999}', "temperature", "/assistants"),
    ("/assistants", '{"model": "gpt-4o-mini", "metadata": {"a": Infinity}}', "metadata.a", "/assistants"),
    ("/threads/{t}/messages", '{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", '
     '"image_url": {"url": "https://example.com/a.png", "detail": NaN}}]}', "content[1].image_url.detail",
     "/threads/{t}/messages"),
    ("/threads", '{"messages": [{"role": "user", "content": "x", "metadata": {"k": NaN}}]}',
     "messages[0].metadata.k", None),
    ("/vector_stores/{vs}/files/{f}", '{"attributes": {"score": NaN}}', "attributes.score", "/vector_stores/{vs}/files"),
    ("/vector_stores", '{"name": "x", "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": '
     'Infinity, "chunk_overlap_tokens": 0}}}', "chunking_strategy.static.max_chunk_size_tokens", "/vector_stores"),
    ("/vector_stores/{vs}/search", '{"query": "apples", "filters": {"type": "gt", "key": "score", "value": -Infinity}}',
     "filters.value", None),
    ("/threads/runs", '{"assistant_id": "asst_x", "thread": {"messages": [{"role": "user", "content": "x"}]}, '
     '"top_p": NaN}', "top_p", None),
]


@pytest.mark.parametrize(("path", "body", "param", "listing"), CASES, ids=[c[2] for c in CASES])
def test_non_finite_numbers_are_a_400_naming_the_field_and_nothing_is_stored(raw, ids, path, body, param, listing):
    before = raw.get(listing.format(**ids)).json() if listing else None
    response = raw.post(path.format(**ids), content=body.encode())
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["code"] == "invalid_number", error
    assert param in error["message"] and "finite number" in error["message"]
    if listing:
        after = raw.get(listing.format(**ids))
        assert after.status_code == 200 and after.json() == before


def test_the_vector_store_file_keeps_its_attributes_after_a_refused_update(client, raw, ids):
    raw.post(f"/vector_stores/{ids['vs']}/files/{ids['f']}", content=b'{"attributes": {"score": NaN}}')
    assert client.vector_stores.files.retrieve(ids["f"], vector_store_id=ids["vs"]).attributes in ({}, None)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b'{"model": "m", "metadata": ' + b"[" * 5000])
def test_absurd_nesting_is_a_400_not_a_500(raw, body):
    response = raw.post("/assistants", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("nesting_too_deep", "invalid_json")


def test_nesting_past_the_depth_limit_is_a_400_naming_where(raw):
    deep: dict = {"type": "string"}
    for _ in range(jsonsafe.MAX_DEPTH):
        deep = {"type": "object", "properties": {"x": deep}}
    body = {"model": "gpt-4o-mini", "tools": [{"type": "function", "function": {"name": "f", "parameters": deep}}]}
    response = raw.post("/assistants", content=json.dumps(body).encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "nesting_too_deep" and error["param"].startswith("tools[0].function.parameters.properties")


def test_a_deep_but_reasonable_schema_is_accepted_and_lists(client):
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"type": "object", "properties": {"x": schema}}
    made = client.beta.assistants.create(model="gpt-4o-mini", tools=[
        {"type": "function", "function": {"name": "deep", "parameters": schema}}])
    assert made.id in [a.id for a in client.beta.assistants.list(limit=100)]


def test_the_playground_path_refuses_them_too(api):
    """The Playground calls the runtime directly, not over HTTP: the runtime's own checks refuse them."""
    rt = api.rt
    nan_tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "x": float("nan")}}}
    with pytest.raises(BadRequest) as err:
        rt.create_assistant(model="gpt-4o-mini", tools=[nan_tool])
    assert err.value.param == "tools[0].function.parameters.x" and err.value.code == "invalid_number"
    made = rt.create_assistant(model="gpt-4o-mini")
    schema = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"maximum": float("inf")}}}
    with pytest.raises(BadRequest) as err:
        rt.update_assistant(made["id"], response_format=schema)
    assert err.value.param == "response_format.json_schema.schema.maximum"
    with pytest.raises(BadRequest) as err:
        rt.create_thread(tool_resources={"file_search": {"vector_stores": [
            {"file_ids": [], "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": float("-inf"),
                                                                                "chunk_overlap_tokens": 0}}}]}})
    assert err.value.param == "tool_resources.file_search.vector_stores[0].chunking_strategy.static.max_chunk_size_tokens"
    assert rt.get_assistant(made["id"])["response_format"] == "auto"


def test_serializers_write_null_for_what_is_already_stored():
    value = {"a": [1.5, float("nan"), {"b": float("inf"), "c": (float("-inf"), "x")}], "d": True}
    assert json.loads(jsonsafe.dumps(value)) == {"a": [1.5, None, {"b": None, "c": [None, "x"]}], "d": True}
    assert value["a"][1] != value["a"][1]  # the original is left as it was
    frame = encode("thread.run.created", {"tools": [{"maximum": float("nan")}]}).decode()
    assert frame == 'event: thread.run.created\ndata: {"tools":[{"maximum":null}]}\n\n'
    deep: list = []
    cursor = deep
    for _ in range(5000):  # deeper than the recursion limit: the copy is iterative
        cursor.append([])
        cursor = cursor[0]
    cursor.append(float("nan"))
    assert jsonsafe.finite(deep) is not deep


def _poison(db, table: str, obj_id: str, change) -> None:
    """Rewrite one stored row as Python's json writes NaN/Infinity (how they got in before they were refused)."""
    with sqlite3.connect(db) as conn:
        data = json.loads(conn.execute(f"SELECT data FROM {table} WHERE id = ?", (obj_id,)).fetchone()[0])
        change(data)
        conn.execute(f"UPDATE {table} SET data = ? WHERE id = ?", (json.dumps(data), obj_id))


@pytest.mark.sqlite_only(reason="rows with NaN exist only in SQLite databases written before the API refused NaN "
                                "(PostgreSQL's jsonb cannot hold NaN)")
def test_rows_stored_with_nan_still_list_across_a_restart_and_the_sdk_parses_them(tmp_path):
    with running_api(tmp_path) as api:
        client = api.client()
        good = client.beta.assistants.create(model="gpt-4o-mini", name="good")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])
        f = client.files.create(file=("a.txt", b"apples and pears"), purpose="assistants")
        vs = client.vector_stores.create(name="poisoned")
        client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id, attributes={"score": 1})
        message_id = client.beta.threads.messages.list(thread_id=thread.id).data[0].id
        db = api.rt.settings.db_path
    # Raw rows as a server before this fix stored them: one inserted whole, the others rewritten in place.
    with sqlite3.connect(db) as conn:
        created = conn.execute("SELECT created_at FROM assistants WHERE id = ?", (good.id,)).fetchone()[0]
        bad = {"id": "asst_poisoned", "object": "assistant", "created_at": created, "name": "poisoned",
               "description": None, "instructions": None, "model": "gpt-4o-mini", "tool_resources": {},
               "metadata": {}, "temperature": 1.0, "top_p": 1.0, "response_format": {"type": "json_schema",
               "json_schema": {"name": "s", "schema": {"type": "number", "minimum": float("-inf")}}},
               "tools": [{"type": "function", "function": {"name": "f", "description": None, "parameters": {
                   "type": "object", "properties": {"n": {"type": "number", "maximum": float("nan")}}}}}]}
        conn.execute("INSERT INTO assistants (id, created_at, data) VALUES (?, ?, ?)",
                     (bad["id"], created, json.dumps(bad)))
    _poison(db, "messages", message_id, lambda m: m["content"][1]["image_url"].update(detail=float("nan")))
    _poison(db, "vector_store_files", f.id, lambda row: row["attributes"].update(score=float("inf")))
    assert "NaN" in sqlite3.connect(db).execute("SELECT data FROM assistants WHERE id = 'asst_poisoned'").fetchone()[0]

    with running_api(tmp_path) as api:  # a restart over the same database
        client = api.client()
        headers = {"Authorization": f"Bearer {api.key}"}
        for path in ("/assistants", "/assistants/asst_poisoned", f"/threads/{thread.id}/messages",
                     f"/threads/{thread.id}/messages/{message_id}", f"/vector_stores/{vs.id}/files",
                     f"/vector_stores/{vs.id}/files/{f.id}"):
            response = httpx2.get(api.base_url + path, headers=headers)
            assert response.status_code == 200, (path, response.text)
            strict_json(response.text)
        listed = {a.id: a for a in client.beta.assistants.list()}
        assert set(listed) == {good.id, "asst_poisoned"}
        poisoned = listed["asst_poisoned"]
        assert poisoned.tools[0].function.parameters["properties"]["n"]["maximum"] is None
        assert poisoned.response_format.json_schema.schema_["minimum"] is None
        message = client.beta.threads.messages.retrieve(message_id, thread_id=thread.id)
        assert message.content[1].image_url.detail is None
        (vs_file,) = client.vector_stores.files.list(vector_store_id=vs.id).data
        assert vs_file.attributes == {"score": None}
        # Saving the assistant again (as the Playground's editor would, with null) cleans the row.
        client.beta.assistants.update("asst_poisoned", tools=[t.model_dump() for t in poisoned.tools],
                                      response_format="auto")
    row = sqlite3.connect(db).execute("SELECT data FROM assistants WHERE id = 'asst_poisoned'").fetchone()[0]
    assert "NaN" not in row
