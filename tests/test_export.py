"""Assistants export/import, thread export and the Threads page's summary query."""

from __future__ import annotations

import json

import pytest

from assistants import export
from assistants.errors import BadRequest
from tests.conftest import wait_run


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": True}}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "answer", "schema": {"type": "object", "properties": {"value": {"type": "number"}}}, "strict": True}}


def _config(a: dict) -> dict:
    return {k: a.get(k) for k in export.PORTABLE_FIELDS}


def _make(rt, **extra) -> dict:
    body = {"model": "fake-model", "name": "Weather bot", "instructions": "Use the tools.\nBe brief.",
            "tools": [{"type": "code_interpreter"}, WEATHER], "response_format": SCHEMA_FORMAT,
            "temperature": 0.3, "top_p": 0.9, "metadata": {"team": "demo"}}
    body.update(extra)
    return rt.create_assistant(**body)


def test_round_trip_keeps_functions_and_schemas(rt):
    originals = [_make(rt), _make(rt, name="Plain", tools=[], response_format="auto", instructions=None)]
    text = export.export_assistants(originals)
    created, notes = export.import_assistants(rt, text.encode())
    assert notes == []
    assert [_config(c) for c in created] == [_config(o) for o in originals]
    assert {c["id"] for c in created}.isdisjoint(o["id"] for o in originals)
    assert len(export.all_assistants(rt)) == 4


def test_import_reads_openai_shapes(rt):
    one = _make(rt)
    assert len(export.parse_import(json.dumps(one))) == 1  # a single retrieved assistant object
    page = {"object": "list", "data": [one, one], "first_id": one["id"], "last_id": one["id"], "has_more": False}
    assert len(export.parse_import(json.dumps(page))) == 2  # client.beta.assistants.list() dumped
    assert len(export.parse_import(json.dumps([one]))) == 1


@pytest.mark.parametrize("raw, says", [
    (b"", "empty"),
    (b"\xff\xfe\x00", "not text"),
    (b"{\"assistants\": [", "not valid JSON"),
    (b"42", "JSON object or a list"),
    (b"{\"hello\": 1}", "not an assistants export"),
    (b"[]", "no assistants"),
    (b"[{\"name\": \"x\"}]", "model"),
    (b"[{\"model\": \"m\", \"temperature\": 3}]", "temperature must be a number between 0 and 2"),
    (b"[{\"model\": \"m\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"bad name!\"}}]}]", "function.name"),
    (b"[{\"model\": \"m\", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": "
     b"{\"type\": \"array\"}}}]}]", "type 'object'"),
    (b"[{\"model\": \"m\", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {}}}]", "needs a 'name'"),
    (b"[{\"model\": \"m\", \"surprise\": true}]", "surprise"),
    (b"{\"object\": \"assistants_playground.export\", \"version\": 99, \"assistants\": []}", "version 99"),
    (b"{\"object\": \"assistants_playground.export\", \"version\": 1, \"kind\": \"thread\"}", "thread export"),
])
def test_invalid_files_are_refused_with_a_reason(rt, raw, says):
    with pytest.raises(export.ImportProblem) as info:
        export.import_assistants(rt, raw)
    assert says.lower() in str(info.value).lower()
    assert export.all_assistants(rt) == []


def test_one_bad_assistant_imports_nothing(rt):
    good = export.portable(_make(rt))
    bad = dict(good, name="Broken", top_p=7)
    with pytest.raises(export.ImportProblem, match=r"Assistant 2 of 3 \('Broken'\).*top_p"):
        export.import_assistants(rt, json.dumps([good, bad, good]))
    assert len(export.all_assistants(rt)) == 1


def test_a_store_failure_half_way_rolls_everything_back(rt, monkeypatch):
    doc = export.export_assistants([_make(rt), _make(rt), _make(rt)])
    real, calls = rt.create_assistant, []

    def flaky(**body):
        calls.append(body)
        if len(calls) == 2:
            raise BadRequest("disk said no")
        return real(**body)

    monkeypatch.setattr(rt, "create_assistant", flaky)
    with pytest.raises(export.ImportProblem, match="Nothing was imported: disk said no"):
        export.import_assistants(rt, doc)
    assert len(export.all_assistants(rt)) == 3


def test_missing_files_are_left_out_with_a_note(rt):
    item = {"model": "m", "name": "Reader", "tools": [{"type": "file_search"}],
            "tool_resources": {"file_search": {"vector_store_ids": ["vs_gone"]}}}
    created, notes = export.import_assistants(rt, json.dumps([item]))
    assert created[0]["tool_resources"]["file_search"]["vector_store_ids"] == []
    assert len(notes) == 1 and "vs_gone" in notes[0] and "Reader" in notes[0]


def test_clone_body_copies_configuration():
    a = {"id": "asst_1", "object": "assistant", "created_at": 1, "name": "Bot", "model": "m", "tools": [WEATHER],
         "response_format": SCHEMA_FORMAT, "temperature": 0.5, "top_p": 1.0, "description": None}
    body = export.clone_body(a)
    assert body["name"] == "Bot (copy)" and body["tools"] == [WEATHER] and body["response_format"] == SCHEMA_FORMAT
    assert "id" not in body and "created_at" not in body and "description" not in body


def test_export_filename():
    assert export.export_filename([{"id": "asst_1", "name": "Investing Bot!"}]) == "assistant-investing-bot.json"
    assert export.export_filename([{"id": "a"}, {"id": "b"}]).startswith("assistants-2-")


def test_thread_summaries_in_one_query(rt, provider):
    bot = _make(rt, name="Bot", tools=[], response_format="auto")
    other = _make(rt, name="Other", tools=[], response_format="auto")
    empty = rt.create_thread()
    busy = rt.create_thread(messages=[{"role": "user", "content": "first question"}])
    provider.add({"text": "one"}, {"text": "two"})
    run1 = rt.create_run(busy["id"], assistant_id=bot["id"])
    wait_run(rt, busy["id"], run1["id"])
    rt.create_message(busy["id"], role="user", content="second question")
    run2 = rt.create_run(busy["id"], assistant_id=other["id"])
    wait_run(rt, busy["id"], run2["id"])

    rows = {r["id"]: r for r in export.thread_summaries(rt.store)}
    assert list(rows) == [busy["id"], empty["id"]]  # newest first
    b = rows[busy["id"]]
    runs = [rt.get_run(busy["id"], r["id"]) for r in (run1, run2)]
    assert b["messages"] == 4 and b["runs"] == 2
    assert b["total_tokens"] == sum(r["usage"]["total_tokens"] for r in runs) > 0
    assert b["prompt_tokens"] + b["completion_tokens"] == b["total_tokens"]
    assert b["assistant_id"] == other["id"] and b["assistant_name"] == "Other"  # the latest run's assistant
    assert b["first_message"] == "first question"
    assert b["last_activity"] >= busy["created_at"]
    e = rows[empty["id"]]
    assert (e["messages"], e["runs"], e["total_tokens"], e["assistant_id"], e["first_message"]) == (0, 0, 0, None, None)

    noted = rt.create_thread(metadata={"assistant_id": bot["id"]})  # opened in the Playground, no run yet
    row = export.thread_summaries(rt.store)[0]
    assert row["id"] == noted["id"] and row["assistant_id"] == bot["id"] and row["assistant_name"] == "Bot"
    assert export.latest_thread(rt.store, bot["id"]) == noted["id"] and export.latest_thread(rt.store, "asst_x") is None
    rt.delete_thread(noted["id"])

    rt.delete_assistant(other["id"])
    again = {r["id"]: r for r in export.thread_summaries(rt.store)}[busy["id"]]
    assert again["assistant_id"] == other["id"] and not again["assistant_exists"]
    assert len(export.thread_summaries(rt.store, limit=1)) == 1 and export.thread_count(rt.store) == 2


def test_thread_exports(rt, provider):
    bot = _make(rt, name="Bot", tools=[], response_format="auto")
    thread = rt.create_thread(messages=[{"role": "user", "content": "What is 2+2?"}])
    provider.add({"text": "It is **4**.\n\n```python\nprint(2 + 2)\n```"})
    run = rt.create_run(thread["id"], assistant_id=bot["id"])
    wait_run(rt, thread["id"], run["id"])
    bundle = export.load_thread(rt, thread["id"])

    doc = json.loads(export.thread_json(bundle))
    assert doc["kind"] == "thread" and doc["thread"]["id"] == thread["id"]
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant"]
    assert doc["runs"][0]["usage"]["total_tokens"] > 0
    assert not any(k.startswith("_") for k in doc["runs"][0])  # engine-private fields stay private

    md = export.thread_markdown(bundle, {bot["id"]: "Bot"})
    assert md.startswith(f"# Thread {thread['id']}")
    assert "## User" in md and "## Bot" in md and "What is 2+2?" in md and "```python\nprint(2 + 2)\n```" in md
    assert md.index("## User") < md.index("## Bot")
