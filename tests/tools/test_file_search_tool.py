"""The file_search tool inside runs: which stores it searches, what the model and the run step get, citations."""

from __future__ import annotations

import json
import threading

from openai.types.beta.threads import FileCitationAnnotation
from openai.types.beta.threads.runs import RunStep

from assistants.runs.annotate import annotate
from assistants.tools import ToolContext
from assistants.tools.file_search_tool import make_handler, marker, search_config
from tests.conftest import wait_run


HANDBOOK = (b"# Employee handbook\n\nRefunds: customers may ask for a refund within 30 days of purchase.\n\n"
            b"Holidays: every employee gets 25 days of paid leave a year.")
MENU = b"The canteen serves soup on Mondays and fish on Fridays."
INCLUDE = ["step_details.tool_calls[*].file_search.results[*].content"]


def indexed_store(rt, files: dict[str, bytes]) -> tuple[str, dict[str, str]]:
    ids = {name: rt.files.create(name, data, "assistants")["id"] for name, data in files.items()}
    vs = rt.vector_stores.create(file_ids=list(ids.values()))
    assert rt.vector_stores.wait_idle(30)
    return vs["id"], ids


def search_call(query: str) -> tuple[str, str]:
    return ("file_search", json.dumps({"query": query}))


def run_to_end(rt, thread_id: str, assistant_id: str, **kwargs) -> dict:
    run = rt.create_run(thread_id, assistant_id=assistant_id, **kwargs)
    return wait_run(rt, thread_id, run["id"])


def tool_step(rt, thread_id: str, run_id: str, include=INCLUDE) -> dict:
    steps = rt.list_run_steps(thread_id, run_id, order="asc", include=include)["data"]
    (step,) = [s for s in steps if s["type"] == "tool_calls"]
    RunStep.model_validate(step)
    return step


def test_run_searches_the_assistants_store_and_records_results(rt, provider):
    vs_id, ids = indexed_store(rt, {"handbook.md": HANDBOOK, "menu.txt": MENU})
    a = rt.create_assistant(model="fake-model", tools=[{"type": "file_search"}],
                            tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    t = rt.create_thread(messages=[{"role": "user", "content": "How long do customers have for a refund?"}])
    provider.add({"tool_calls": [search_call("refund days")]}, {"text": "Within 30 days 【0†handbook.md】."})
    run = run_to_end(rt, t["id"], a["id"])
    assert run["status"] == "completed", run["last_error"]
    step = tool_step(rt, t["id"], run["id"])
    call = step["step_details"]["tool_calls"][0]
    assert call["type"] == "file_search" and step["status"] == "completed"
    fs = call["file_search"]
    assert fs["ranking_options"] == {"ranker": "auto", "score_threshold": 0.0}
    top = fs["results"][0]
    assert top["file_id"] == ids["handbook.md"] and top["file_name"] == "handbook.md" and 0 < top["score"] <= 1
    assert "within 30 days" in top["content"][0]["text"]
    # Without `include`, the chunk text is left out, as OpenAI does.
    plain = tool_step(rt, t["id"], run["id"], include=None)["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert plain[0]["file_id"] == top["file_id"] and "content" not in plain[0]
    # The model got numbered, named passages back and answered from them.
    tool_msg = next(m for m in provider.requests[1]["messages"] if m["role"] == "tool")
    assert "【0†handbook.md】" in tool_msg["content"] and "within 30 days" in tool_msg["content"]
    reply = rt.list_messages(t["id"], order="asc")["data"][-1]
    text = reply["content"][0]["text"]
    assert text["value"] == "Within 30 days 【0†handbook.md】."
    (cite,) = text["annotations"]
    FileCitationAnnotation.model_validate(cite)
    assert cite["file_citation"] == {"file_id": ids["handbook.md"]}
    assert text["value"][cite["start_index"]:cite["end_index"]] == cite["text"] == "【0†handbook.md】"


def test_run_tool_config_sets_max_results_and_threshold(rt, provider):
    vs_id, _ = indexed_store(rt, {f"note{i}.txt": f"Note {i}: the parrot is called Polly {i}.".encode() for i in range(6)})
    tool = {"type": "file_search", "file_search": {"max_num_results": 2, "ranking_options": {"score_threshold": 0.0}}}
    a = rt.create_assistant(model="fake-model", tools=[tool], tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    t = rt.create_thread(messages=[{"role": "user", "content": "parrot?"}])
    provider.add({"tool_calls": [search_call("parrot Polly")]}, {"text": "Polly."})
    run = run_to_end(rt, t["id"], a["id"])
    assert len(tool_step(rt, t["id"], run["id"])["step_details"]["tool_calls"][0]["file_search"]["results"]) == 2
    strict = {"type": "file_search", "file_search": {"ranking_options": {"ranker": "default_2024_08_21", "score_threshold": 1.0}}}
    provider.add({"tool_calls": [search_call("parrot Polly")]}, {"text": "Nothing."})
    run = run_to_end(rt, t["id"], a["id"], tools=[strict])
    fs = tool_step(rt, t["id"], run["id"])["step_details"]["tool_calls"][0]["file_search"]
    assert fs["results"] == [] and fs["ranking_options"] == {"ranker": "default_2024_08_21", "score_threshold": 1.0}
    tool_msg = next(m for m in provider.requests[-1]["messages"] if m["role"] == "tool")
    assert tool_msg["content"].startswith("No passage")


def test_thread_attachments_are_searched(rt, provider):
    fid = rt.files.create("handbook.md", HANDBOOK, "assistants")["id"]
    a = rt.create_assistant(model="fake-model", tools=[{"type": "file_search"}])
    t = rt.create_thread(messages=[{"role": "user", "content": "Holidays?", "attachments": [
        {"file_id": fid, "tools": [{"type": "file_search"}]}]}])
    assert rt.vector_stores.wait_idle(30)
    provider.add({"tool_calls": [search_call("paid leave holidays")]}, {"text": "25 days."})
    run = run_to_end(rt, t["id"], a["id"])
    results = tool_step(rt, t["id"], run["id"])["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert results[0]["file_id"] == fid and "25 days" in results[0]["content"][0]["text"]


def test_create_thread_and_run_tool_resources_are_searched(rt, provider):
    vs_id, ids = indexed_store(rt, {"menu.txt": MENU})
    a = rt.create_assistant(model="fake-model", tools=[{"type": "file_search"}])
    provider.add({"tool_calls": [search_call("fish Friday")]}, {"text": "Fish."})
    run = rt.create_thread_and_run(assistant_id=a["id"], thread={"messages": [{"role": "user", "content": "Friday?"}]},
                                   tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    run = wait_run(rt, run["thread_id"], run["id"])
    results = tool_step(rt, run["thread_id"], run["id"])["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert [r["file_id"] for r in results] == [ids["menu.txt"]]


def test_markers_continue_across_searches_of_one_run(rt, provider):
    vs_id, ids = indexed_store(rt, {"handbook.md": HANDBOOK, "menu.txt": MENU})
    a = rt.create_assistant(model="fake-model", tools=[{"type": "file_search"}],
                            tool_resources={"file_search": {"vector_store_ids": [vs_id]}})
    t = rt.create_thread(messages=[{"role": "user", "content": "refunds and soup"}])
    provider.add({"tool_calls": [search_call("refund"), search_call("soup")]}, {"text": "done"})
    run = run_to_end(rt, t["id"], a["id"])
    step = rt.store.get("run_steps", tool_step(rt, t["id"], run["id"])["id"])
    marks = [(c["index"], c["file_id"]) for c in step["_annotations"]]
    assert marks == [(0, ids["handbook.md"]), (1, ids["menu.txt"])]
    outputs = list(step["_outputs"].values())
    assert "【0†handbook.md】" in outputs[0] and "【1†menu.txt】" in outputs[1]


def test_handler_output_and_citation_candidates(rt):
    vs_id, ids = indexed_store(rt, {"handbook.md": HANDBOOK, "menu.txt": MENU})
    handler = make_handler(rt)
    ctx = ToolContext(run={"id": "run_x", "tools": [{"type": "file_search"}]}, cancel=threading.Event(),
                      assistant={"tool_resources": {"file_search": {"vector_store_ids": [vs_id]}}}, thread=None)
    outcome = handler({"query": "refund within days"}, ctx)
    assert outcome.error is None
    assert outcome.output.splitlines()[0].startswith("1 passage(s)") and "【0†handbook.md】 (score" in outcome.output
    (candidate,) = outcome.annotations
    assert candidate == {"type": "file_citation", "index": 0, "marker": "【0†handbook.md】", "file_id": ids["handbook.md"],
                         "filename": "handbook.md", "quote": outcome.details["results"][0]["content"][0]["text"]}
    reply = "Refunds take 30 days 【0†handbook.md】; 【7†nothing】 is not ours."
    (cite,) = annotate(reply, outcome.annotations)  # what the engine does with the candidates
    FileCitationAnnotation.model_validate(cite)
    assert cite["file_citation"] == {"file_id": ids["handbook.md"]} and cite["text"] == "【0†handbook.md】"


def test_handler_reports_missing_expired_and_unindexed_stores(rt):
    handler = make_handler(rt)

    def ctx(ids):
        return ToolContext(run={"id": "run_y", "tools": []}, assistant=None, cancel=threading.Event(),
                           thread={"tool_resources": {"file_search": {"vector_store_ids": ids}}})

    nothing = handler({"query": "anything"}, ctx([]))
    assert nothing.output.startswith("No files are attached") and nothing.details["results"] == []
    empty_query = handler({"query": "  "}, ctx([]))
    assert empty_query.error and "query" in empty_query.output
    gone = handler({"query": "x"}, ctx(["vs_deleted"]))
    assert "vs_deleted no longer exists" in gone.output
    vs = rt.vector_stores.create(name="old", expires_after={"anchor": "last_active_at", "days": 1})
    stored = rt.store.get("vector_stores", vs["id"])
    stored["expires_at"] = 1
    rt.store.put("vector_stores", stored)
    assert "has expired" in handler({"query": "x"}, ctx([vs["id"]])).output


def test_search_config_defaults_and_markers():
    assert search_config({"tools": [{"type": "file_search"}]}) == (20, {"ranker": "auto", "score_threshold": 0.0})
    assert search_config({"tools": [{"type": "file_search", "file_search": {
        "max_num_results": 5, "ranking_options": {"ranker": "something-new", "score_threshold": 0.4}}}]}) == (
        5, {"ranker": "auto", "score_threshold": 0.4})
    assert marker(3, "a】b\nc.txt") == "【3†a b c.txt】"
