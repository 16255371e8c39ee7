"""Tool steps inline in the thread: one collapsed line per call, in order, before the reply they led to (AppTest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.thread_view import timeline
from tests.ui.test_playground import data_dir, fake, rt, run, send, start  # noqa: F401  (fixtures)


def thread_items(at) -> list[str]:
    """The conversation from top to bottom: each tool line's label, each message's first text."""
    out = []
    for bubble in at.main.chat_message:
        if bubble.expander:
            out += [e.label for e in bubble.expander]
        elif bubble.markdown:
            out.append(bubble.markdown[0].value)
    return out


def test_a_function_call_and_its_output_stay_in_the_thread(fake):  # noqa: F811
    weather = {"name": "book_meeting_room", "parameters": {"type": "object", "properties": {"room": {"type": "string"}}}}
    rt().create_assistant(model="fake-model", name="Office", tools=[{"type": "function", "function": weather}])
    fake.add({"tool_calls": [("book_meeting_room", '{"room": "Ada"}')]}, {"text": "Booked Ada for you."})
    at = send(start(), "Book Ada")
    (waiting,) = rt().list_runs(at.session_state["thread_id"])["data"]
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert not any(e.label.startswith("Called") for e in at.main.expander)  # the form shows it while it waits
    at.text_area(key=f"playground_out_{call['id']}").set_value('{"booked": true}')
    at.button(key=f"playground_outputs_{waiting['id']}_submit").click()
    run(at)
    assert thread_items(at) == ["Book Ada", "Called `book_meeting_room`", "Booked Ada for you."]
    (line,) = [e for e in at.main.expander if e.label.startswith("Called")]
    shown = [c.value for c in line.code]
    assert '"room": "Ada"' in shown[0] and shown[1] == '{"booked": true}'  # the arguments, then the output given
    run(at)  # and on every later redraw
    assert "Called `book_meeting_room`" in thread_items(at)


def test_code_and_search_steps_in_order_before_the_reply(fake):  # noqa: F811
    if not Path("/usr/bin/bwrap").exists() or rt().files is None:
        pytest.skip("needs bubblewrap and the files service")
    doc = rt().files.create("notes.txt", b"The meeting room Ada seats twelve people.", "assistants")
    store = rt().vector_stores.create(name="Notes", file_ids=[doc["id"]])
    rt().vector_stores.wait_idle(30)
    rt().create_assistant(model="fake-model", name="Helper", tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
                          tool_resources={"file_search": {"vector_store_ids": [store["id"]]}})
    fake.add({"tool_calls": [("file_search", json.dumps({"query": "Ada seats"}))]},
             {"tool_calls": [("code_interpreter", json.dumps({"code": "print(12 * 2)"}))]},
             {"text": "Ada seats twelve; two of them seat 24."})
    at = send(start(timeout=90), "How many seats?")
    items = thread_items(at)
    assert items[0] == "How many seats?" and items[-1].startswith("Ada seats twelve")
    assert items[1].startswith("Searched files · 1 passage") and items[2] == "Ran code", items
    search, code = [e for e in at.main.expander if e.label.startswith(("Searched", "Ran"))]
    assert "`Ada seats`" in search.markdown[0].value and "notes.txt" in search.markdown[1].value
    assert "score" in search.markdown[1].value and "seats twelve" in search.code[0].value
    assert code.code[0].value == "print(12 * 2)" and code.code[1].value.strip() == "24"


def _step(run_id, kind, n, message_id=None, status="completed"):
    details = {"type": "message_creation", "message_creation": {"message_id": message_id}} if kind == "message" else \
        {"type": "tool_calls", "tool_calls": [{"id": f"c{n}", "type": "code_interpreter",
                                               "code_interpreter": {"input": "", "outputs": []}}]}
    return {"id": f"s{n}", "run_id": run_id, "status": status, "step_details": details}


def test_timeline_puts_tools_before_their_reply_and_trailing_ones_after():
    msgs = [{"id": "m1", "role": "user", "created_at": 10, "run_id": None},
            {"id": "m2", "role": "assistant", "created_at": 12, "run_id": "r1"},
            {"id": "m3", "role": "user", "created_at": 20, "run_id": None}]
    r1 = {"id": "r1", "status": "completed", "created_at": 11, "metadata": {"playground_after_message": "m1"}}
    r2 = {"id": "r2", "status": "failed", "created_at": 21, "metadata": {"playground_after_message": "m3"}}
    steps = {"r1": [_step("r1", "tool", 1), _step("r1", "tool", 2), _step("r1", "message", 3, "m2")],
             "r2": [_step("r2", "tool", 4), _step("r2", "tool", 5, status="in_progress")]}
    items = timeline(msgs, [r1, r2], older_hidden=False, steps=steps)
    flat = [(k, [s["id"] for s in x] if k == "tools" else x["id"]) for k, x in items]
    assert flat == [("message", "m1"), ("tools", ["s1", "s2"]), ("message", "m2"), ("message", "m3"),
                    ("tools", ["s4"]), ("run", "r2")]  # the waiting call (s5) has its own form
