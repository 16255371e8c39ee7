"""The Playground's side of the Responses API: Get code's Responses versions, and API conversations on Threads."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import session
from assistants import responses
from assistants.responses import containers, conversations
from components.get_code_view import SPELLED
from components.tables import RESPONSES_KIND
from tests.fakes.openai_server import FakeOpenAIServer
from tests.ui import fresh_data_dir
from tests.ui.test_playground import run

APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture
def rt(tmp_path, monkeypatch):
    """The pages' runtime over a fresh data dir, its only model the scripted fake server."""
    fresh_data_dir(monkeypatch, tmp_path, "PLAYGROUND_EMBEDDED_MODEL")
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("PLAYGROUND_BACKENDS", f"fake={server.base_url}")
        monkeypatch.setenv("PLAYGROUND_EMBEDDED_MODEL", "0")
        runtime = session.get_runtime()
        yield runtime
        runtime.close()
        session._runtime_for.clear()


def test_threads_page_labels_api_conversations_and_hides_containers(rt):
    playground = rt.create_thread(messages=[{"role": "user", "content": "Made in the Playground"}])
    made = responses.service(rt).create({"model": "fake-model", "input": "Made by /v1/responses"})
    by_items = conversations.create(rt, items=[
        {"type": "message", "role": "user", "content": "Made by /v1/conversations"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}])
    box = containers.create(rt, {"name": "scratch"})
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page("app_pages/threads.py")
    run(at)
    table = at.dataframe[0].value
    kinds = dict(zip(table["Conversation"], table["Type"], strict=True))
    assert kinds == {"Made in the Playground": "Thread", "Made by /v1/responses": RESPONSES_KIND,
                     "Made by /v1/conversations": RESPONSES_KIND}
    assert "thread_" + box["id"].removeprefix("cntr_") not in set(table["ID"])  # a container's thread is plumbing
    assert {m.label: m.value for m in at.metric}["Threads"] == "3"
    assert "Responses conversation" in at.caption[0].value
    thread_id = rt.store.get_response(made["id"])["thread_id"]
    row = list(table["ID"]).index(thread_id)
    assert table.iloc[row]["Assistant"] == "Responses API"
    at.session_state["threads_table_0"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    run(at)
    assert conversations.conversation_id(thread_id) in [c.value for c in at.code]  # its conv_ id, to use in code
    at.text_input(key="threads_search").set_value("responses conversation")
    run(at)
    assert set(at.dataframe[0].value["ID"]) == {thread_id, conversations.thread_id_of(by_items["id"])}
    assert playground["id"] not in set(at.dataframe[0].value["ID"])


def test_an_empty_conversation_is_labelled_from_its_creation(rt):
    empty = conversations.create(rt, metadata={"team": "support"})  # no items, no response yet
    plain = rt.create_thread()  # an empty thread of the Assistants API stays a plain thread
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page("app_pages/threads.py")
    run(at)
    table = at.dataframe[0].value
    kinds = dict(zip(table["ID"], table["Type"], strict=True))
    assert kinds == {conversations.thread_id_of(empty["id"]): RESPONSES_KIND, plain["id"]: "Thread"}
    assert "_conversation" not in rt.get_thread(plain["id"]) and "_conversation" not in rt.get_thread(
        conversations.thread_id_of(empty["id"]))  # private: the runtime's thread objects never carry it


def _open_get_code(rt, style: str | None = None) -> AppTest:
    a = rt.create_assistant(model="fake-model", name="Guide", instructions="Guide {{visitor}}.", temperature=0.3)
    thread = rt.create_thread(messages=[{"role": "user", "content": "hello"}], metadata={"assistant_id": a["id"]})
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["assistant_id"] = a["id"]
    at.session_state["thread_id"] = thread["id"]
    if style:
        at.session_state["playground_get_code_style"] = style
    run(at)
    at.button(key="playground_get_code").click()
    run(at)
    return at, a, thread


def test_get_code_offers_the_responses_version_as_a_prompt(rt):
    at, a, thread = _open_get_code(rt)
    codes = [c.value for c in at.code]
    assert any("client.beta.assistants.create(" in c for c in codes)  # the Assistants API tab is still there
    code = next(c for c in codes if "client.responses.create(" in c)
    assert f"'id': '{a['id']}'" in code and "'variables': {'visitor': '<visitor>'}" in code
    assert f"conversation={thread['id']!r}" in code and "input='hello'" in code
    assert [t.label for t in at.tabs] == ["Assistants API", "Responses API"]


def test_get_code_offers_the_responses_version_spelled_out(rt):
    at, _a, _thread = _open_get_code(rt, SPELLED)
    code = next(c.value for c in at.code if "client.responses.create(" in c.value)
    assert "model='fake-model'" in code and "instructions='Guide {{visitor}}.'" in code and "temperature=0.3" in code
    assert "prompt=" not in code and "input=[{'role': 'user', 'content': 'hello'}]" in code
