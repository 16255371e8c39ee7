"""What the runtime emits validates against the openai package's own types."""

from __future__ import annotations

import pydantic
from openai.types.beta import Assistant, AssistantStreamEvent, Thread
from openai.types.beta.threads import Message, Run
from openai.types.beta.threads.runs import RunStep

from assistants.runs.annotate import annotate
from tests.conftest import wait_run


FN = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
STREAM_EVENT = pydantic.TypeAdapter(AssistantStreamEvent)


def strict(model, obj: dict) -> None:
    """Validate, and fail on fields the type does not declare (a typo would otherwise pass silently)."""
    parsed = model.model_validate(obj)
    extra = set(obj) - set(model.model_fields)
    assert not extra, f"{model.__name__} has undeclared fields {extra}"
    assert parsed.id == obj["id"]


def test_objects_and_events_validate(rt, provider):
    provider.add({"tool_calls": [("lookup", "{}", "call_1"), ("code_interpreter", '{"code": "1"}', "call_2")]},
                 {"chunks": ["Done", "."]}, {"text": "cut", "finish": "length"}, {"error": "boom"})
    a = rt.create_assistant(model="fake-model", tools=[FN, {"type": "code_interpreter"}], metadata={"k": "v"},
                            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})
    strict(Assistant, a)
    t = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
    strict(Thread, t)
    sub = rt.create_run(t["id"], assistant_id=a["id"], stream=True)
    events = list(sub)
    run = rt.get_run(t["id"], events[1][1]["id"])
    assert run["status"] == "requires_action"
    sub = rt.submit_tool_outputs(t["id"], run["id"], stream=True, tool_outputs=[{"tool_call_id": "call_1", "output": "x"}])
    events += list(sub)
    for name, data in events:
        if name == "done":
            continue
        STREAM_EVENT.validate_python({"event": name, "data": data})
    rt.create_message(t["id"], role="user", content="more")
    cut = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=20)["id"])
    rt.create_message(t["id"], role="user", content="again")
    failed = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert (cut["status"], failed["status"]) == ("incomplete", "failed")
    for r in rt.list_runs(t["id"])["data"]:
        strict(Run, r)
        for step in rt.list_run_steps(t["id"], r["id"])["data"]:
            strict(RunStep, step)
    for m in rt.list_messages(t["id"])["data"]:
        strict(Message, m)


def test_annotations_from_markers_paths_and_quotes():
    text = "See sandbox:/mnt/data/out.csv and 【0†notes.txt】."
    got = annotate(text, [{"type": "file_path", "text": "sandbox:/mnt/data/out.csv", "file_id": "file-a"},
                          {"type": "file_citation", "index": 0, "filename": "notes.txt", "file_id": "file-b", "quote": "q"}])
    assert [(a["type"], text[a["start_index"]:a["end_index"]]) for a in got] == [
        ("file_path", "sandbox:/mnt/data/out.csv"), ("file_citation", "【0†notes.txt】")]
    quote = "The warranty covers parts and labour for two full years"
    got = annotate(f"Answer: {quote}.", [{"type": "file_citation", "index": 0, "file_id": "file-c",
                                          "quote": f"Intro. {quote}. Outro."}])
    assert got and got[0]["file_citation"] == {"file_id": "file-c"}
