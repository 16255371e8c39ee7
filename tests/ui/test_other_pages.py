"""AppTest tests for the Assistants, Threads, Settings and Compare pages."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import session
from assistants import export
from assistants.config import EMBEDDED_MODEL_ID
from components import settings_form as form
from tests.conftest import wait_run
from tests.fakes.openai_server import FakeOpenAIServer
from tests.ui import ENV, fresh_data_dir

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def app_rt(tmp_path, monkeypatch):
    """The runtime the pages get from session.get_runtime(), over a fresh data dir."""
    fresh_data_dir(monkeypatch, tmp_path)
    runtime = session.get_runtime()
    yield runtime
    runtime.close()
    session._runtime_for.clear()


def open_page(name: str, timeout: float = 30) -> AppTest:
    """An AppTest of app.py switched to app_pages/<name>.py and run once."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.switch_page(f"app_pages/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def select(at: AppTest, key: str, rows: list[int]) -> None:
    """Select table rows the way a click would."""
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def texts(at: AppTest) -> str:
    """Everything the page sent to the browser, as one string (to check nothing leaks)."""
    def walk(node):
        if getattr(node, "proto", None) is not None:
            yield str(node.proto)
        for child in getattr(node, "children", {}).values():
            yield from walk(child)
    return "\n".join(walk(at._tree))


def _assistant(rt, name: str, **extra) -> dict:
    body = {"model": EMBEDDED_MODEL_ID, "name": name, "instructions": f"You are {name}.", "temperature": 0.0}
    body.update(extra)
    return rt.create_assistant(**body)


# -- Assistants --------------------------------------------------------------------------------------
def test_assistants_table_search_and_open(app_rt):
    _assistant(app_rt, "Investing Bot", tools=[{"type": "code_interpreter"}])
    weather = _assistant(app_rt, "Weather helper", tools=[{"type": "function", "function": {"name": "get_weather"}}])
    at = open_page("assistants")
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Weather helper", "Investing Bot"]
    assert list(table["Tools"]) == ["1 function (get_weather)", "Code Interpreter"]
    assert set(table.columns) >= {"Name", "Model", "Tools", "Created", "ID"}

    at.text_input(key="assistants_search").set_value("weather").run()
    assert list(at.dataframe[0].value["Name"]) == ["Weather helper"]
    at.text_input(key="assistants_search").set_value("nothing like this").run()
    assert not at.dataframe and "No assistant matches" in at.info[0].value

    at.text_input(key="assistants_search").set_value("").run()
    select(at, "assistants_table_0", [0])
    older = app_rt.create_thread(metadata={"assistant_id": weather["id"]})
    newest = app_rt.create_thread(metadata={"assistant_id": weather["id"]})
    app_rt.create_thread()
    at.button(key="assistants_open").click().run()
    # Opens the assistant's newest Playground thread, as picking it in the Playground's sidebar does.
    assert at.session_state["assistant_id"] == weather["id"] and at.session_state["thread_id"] == newest["id"] != older["id"]


def test_assistants_clone_and_delete_with_confirmation(app_rt):
    bot = _assistant(app_rt, "Bot", tools=[{"type": "function", "function": {"name": "f"}}])
    at = open_page("assistants")
    select(at, "assistants_table_0", [0])
    at.button(key="assistants_clone").click().run()
    copy = next(a for a in export.all_assistants(app_rt) if a["name"] == "Bot (copy)")
    assert copy["tools"] == bot["tools"] and "Cloned" in at.success[0].value

    select(at, "assistants_table_1", [0, 1])
    at.button(key="assistants_delete").click().run()
    assert "Delete 2 assistants" in at.warning[0].value
    at.button(key="assistants_confirm_no").click().run()
    assert len(export.all_assistants(app_rt)) == 2 and not at.warning

    select(at, "assistants_table_1", [0])
    at.button(key="assistants_delete").click().run()
    at.button(key="assistants_confirm_yes").click().run()
    assert [a["name"] for a in export.all_assistants(app_rt)] == ["Bot"]
    assert "Deleted" in at.success[0].value


def test_assistants_export_import_round_trip(app_rt):
    schema = {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"}}}
    fn = {"type": "function", "function": {"name": "lookup", "description": "Look it up",
                                           "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}
    originals = [_assistant(app_rt, "One", tools=[fn], response_format=schema), _assistant(app_rt, "Two")]
    at = open_page("assistants")
    assert at.get("download_button")  # export all + (after selecting) export selected
    select(at, "assistants_table_0", [0])
    assert len(at.get("download_button")) == 2
    exported = export.export_assistants(originals)
    for a in originals:
        app_rt.delete_assistant(a["id"])

    at = open_page("assistants")
    at.file_uploader[0].set_value(("assistants.json", exported.encode(), "application/json")).run()
    assert "Ready to import **2**" in at.markdown[-1].value
    at.button(key="assistants_import").click().run()
    assert not at.exception
    imported = sorted(export.all_assistants(app_rt), key=lambda a: a["name"])
    keep = ("name", "model", "instructions", "tools", "response_format", "temperature", "top_p")
    assert [{k: a[k] for k in keep} for a in imported] == [{k: a[k] for k in keep} for a in originals]
    assert "Imported 2 assistants" in at.success[0].value
    assert list(at.dataframe[0].value["Name"]) == ["Two", "One"] or len(at.dataframe[0].value) == 2


def test_invalid_import_shows_why_and_creates_nothing(app_rt):
    at = open_page("assistants")
    bad = json.dumps([{"model": "m", "name": "ok"}, {"model": "m", "name": "bad", "temperature": 9}])
    at.file_uploader[0].set_value(("mixed.json", bad.encode(), "application/json")).run()
    assert "can't be imported" in at.error[0].value and "Assistant 2 of 2 \\('bad'\\)" in at.error[0].value  # shown as text
    assert not any(b.key == "assistants_import" for b in at.button)
    at.file_uploader[0].set_value(("notes.json", b"not json at all", "application/json")).run()
    assert "not valid JSON" in at.error[0].value
    assert export.all_assistants(app_rt) == []


# -- Threads -----------------------------------------------------------------------------------------
def _conversation(rt, assistant: dict, text: str) -> dict:
    thread = rt.create_thread(messages=[{"role": "user", "content": text}])
    run = rt.create_run(thread["id"], assistant_id=assistant["id"], max_completion_tokens=16, temperature=0)
    wait_run(rt, thread["id"], run["id"], timeout=120)
    return thread


def test_threads_page_summary_open_export_delete(app_rt):
    bot = _assistant(app_rt, "Bot")
    first = _conversation(app_rt, bot, "Hello there")
    empty = app_rt.create_thread()
    at = open_page("threads")
    table = at.dataframe[0].value
    assert list(table["ID"]) == [empty["id"], first["id"]]
    row = table.iloc[1]
    assert row["Assistant"] == "Bot" and row["Messages"] == 2 and row["Conversation"] == "Hello there"
    usage = app_rt.list_runs(first["id"])["data"][0]["usage"]
    assert row["Tokens"] == usage["total_tokens"] > 0
    assert {m.label: m.value for m in at.metric} == {"Threads": "2", "Messages": "2", "Runs": "1",
                                                    "Tokens": f"{usage['total_tokens']:,}"}

    select(at, "threads_table_0", [1])
    keys = {d.key for d in at.get("download_button")}
    assert {"threads_export_json", "threads_export_md"} <= keys
    at.button(key="threads_open").click().run()
    assert at.session_state["thread_id"] == first["id"] and at.session_state["assistant_id"] == bot["id"]

    at = open_page("threads")
    select(at, "threads_table_0", [0, 1])
    at.button(key="threads_delete").click().run()
    assert "Delete 2 threads" in at.warning[0].value
    at.button(key="threads_confirm_yes").click().run()
    assert export.thread_summaries(app_rt.store) == []
    assert "No threads yet" in at.info[0].value


# -- Settings ----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _add_server(at: AppTest, preset: str = "Other server") -> str:
    at.button(key=f"settings_add_{preset}").click().run()
    return at.session_state[form.ROWS][-1]["uid"]


def test_settings_refuse_bad_alias_and_bad_url_inline(app_rt):
    at = open_page("settings")
    uid = _add_server(at)
    at.text_input(key=f"settings_b_{uid}_name").set_value("lab")
    at.text_input(key=f"settings_b_{uid}_url").set_value("localhost:11434")
    at.text_area(key=form.ALIASES).set_value("gpt-4o-mini = smollm2-135m-instruct\nnot an alias").run()
    errors = [m.value for m in at.markdown if ":red[" in m.value]
    assert any("must start with http:// or https://" in e for e in errors)
    assert any("Line 2" in e and "alias = model" in e for e in errors)
    assert at.button(key=f"settings_b_{uid}_test").disabled

    at.button(key="settings_save").click().run()
    assert "Nothing was saved" in at.error[0].value
    assert app_rt.saved_settings() == {}
    # What was typed is still there after the refusal.
    assert at.text_input(key=f"settings_b_{uid}_url").value == "localhost:11434"
    assert "not an alias" in at.text_area(key=form.ALIASES).value


def test_settings_test_connection(app_rt):
    with FakeOpenAIServer(models=("llama3.2", "qwen2.5"), api_key="sk-lab-0123456789wxyz") as srv:
        at = open_page("settings")
        uid = _add_server(at, "Ollama")
        assert at.text_input(key=f"settings_b_{uid}_name").value == "ollama"
        assert at.text_input(key=f"settings_b_{uid}_url").value == "http://localhost:11434/v1"
        at.text_input(key=f"settings_b_{uid}_url").set_value(srv.base_url).run()
        at.button(key=f"settings_b_{uid}_test").click().run()
        assert "401" in at.error[0].value  # no key yet: the server's refusal, in words

        at.text_input(key=f"settings_b_{uid}_key").set_value("sk-lab-0123456789wxyz").run()
        at.button(key=f"settings_b_{uid}_test").click().run()
        assert "Connected: 2 models" in at.success[0].value
        assert "llama3.2" in at.success[0].value and "qwen2.5" in at.success[0].value
        assert "sk-lab-0123456789wxyz" not in texts(at).replace(at.text_input(key=f"settings_b_{uid}_key").value, "")

    closed = f"http://127.0.0.1:{_free_port()}/v1"
    at.text_input(key=f"settings_b_{uid}_url").set_value(closed).run()
    at.button(key=f"settings_b_{uid}_test").click().run()
    shown = re.sub(r"\\(.)", r"\1", at.error[0].value)  # as the page shows it (no markdown escapes)
    assert "Could not connect" in shown and "Is the server running?" in shown
    assert not at.exception


def test_settings_save_masks_keys_and_reloads(app_rt):
    with FakeOpenAIServer(models=("lab-model",)) as srv:
        at = open_page("settings")
        at.text_input(key=form.OPENAI_KEY).set_value("sk-proj-SECRET0123456789abcd")
        uid = _add_server(at)
        at.text_input(key=f"settings_b_{uid}_name").set_value("lab")
        at.text_input(key=f"settings_b_{uid}_url").set_value(srv.base_url)
        at.text_input(key=f"settings_b_{uid}_key").set_value("lab-key-0000000000zzzz")
        at.text_area(key=form.ALIASES).set_value("gpt-4o-mini = lab-model").run()
        assert any("Unsaved" in str(b.proto) for b in at.get("badge")) or "Unsaved changes" in texts(at)
        at.button(key="settings_save").click().run()
        assert "Saved" in at.success[0].value, [e.value for e in at.error]

        saved = app_rt.saved_settings()
        assert saved["openai_api_key"] == "sk-proj-SECRET0123456789abcd"
        assert saved["backends"] == [{"name": "lab", "base_url": srv.base_url, "api_key": "lab-key-0000000000zzzz"}]
        assert saved["aliases"] == {"gpt-4o-mini": "lab-model"}
        # The runtime picked the new settings up: the lab server's model and the alias resolve.
        assert app_rt.settings.aliases == {"gpt-4o-mini": "lab-model"}
        assert [b.name for b in app_rt.settings.backends] == ["lab"]
        assert app_rt.router.resolve("gpt-4o-mini")[1] == "lab-model"

        page = texts(at)
        assert "sk-proj-SECRET0123456789abcd" not in page and "lab-key-0000000000zzzz" not in page
        assert "sk-…abcd" in page and "lab…zzzz" in page
        assert at.text_input(key=form.OPENAI_KEY).value == ""

        # Reopened later (a new session): the keys stay masked and leaving them empty keeps them.
        at = open_page("settings")
        assert "sk-proj-SECRET0123456789abcd" not in texts(at)
        at.text_area(key=form.ALIASES).set_value("").run()
        at.button(key="settings_save").click().run()
        again = app_rt.saved_settings()
        assert again["openai_api_key"] == "sk-proj-SECRET0123456789abcd" and "aliases" not in again
        assert again["backends"][0]["api_key"] == "lab-key-0000000000zzzz"

        at.checkbox(key=form.OPENAI_KEY_CLEAR).check().run()
        at.button(key="settings_save").click().run()
        assert "openai_api_key" not in app_rt.saved_settings()


def test_settings_helpers():
    assert form.mask("sk-proj-abcdefghijklmnop1234") == "sk-…1234" and form.mask("") == "" and "•" in form.mask("short")
    assert form.check_url("http://localhost:11434/v1", required=True) is None
    assert form.check_url("", required=False) is None and form.check_url("", required=True)
    for bad in ("localhost:1234", "ftp://x/v1", "http://", "http://a b/v1", "http://h:99999/v1", "http://h/v1?x=1"):
        assert form.check_url(bad, required=True), bad
    assert form.url_hint("http://localhost:11434") and not form.url_hint("http://localhost:11434/v1")
    assert form.check_name("openai", []) and form.check_name("lab", ["LAB"]) and form.check_name("a=b", [])
    assert form.check_name("my lab-2", ["other"]) is None
    assert form.check_aliases("a = b\n# note\n\nc=d") == ({"a": "b", "c": "d"}, None)
    for bad in ("a", "a = a", "a = b\na = c", "a = b\nb = c", "a = b, c = d", "a = two words"):
        assert form.check_aliases(bad)[1], bad
    saved = {"openai_api_key": "sk-old", "theme": "kept", "backends": [{"name": "x", "base_url": "http://x/v1", "api_key": "k"}]}
    d = {"openai_key": "", "openai_key_clear": False, "openai_url": "", "aliases": "", "default_model": "",
         "backends": [{"uid": "1", "name": "x", "url": "http://x/v1", "key": "", "key_clear": False, "saved_key": "k",
                      "saved_url": "http://x/v1"}]}
    assert form.to_values(d, saved) == saved


def test_settings_saved_in_another_tab_are_merged_not_overwritten(app_rt):
    """Two tabs on Settings: the second tab's save must not silently undo the first tab's."""
    app_rt.save_settings({"aliases": {"gpt-4o-mini": EMBEDDED_MODEL_ID}})
    mine = open_page("settings")
    mine.text_area(key=form.ALIASES).set_value(f"gpt-4o-mini = {EMBEDDED_MODEL_ID}\ngpt-4.1 = {EMBEDDED_MODEL_ID}").run()

    theirs = open_page("settings")  # another tab saves a default model meanwhile
    theirs.text_input(key=form.DEFAULT_MODEL).set_value("gpt-4o-mini").run()
    theirs.button(key="settings_save").click().run()
    assert app_rt.saved_settings()["default_model"] == "gpt-4o-mini"

    mine.run()  # any redraw: it says so, and keeps the edits
    assert "saved these settings elsewhere" in mine.warning[0].value and "the default model" in mine.warning[0].value
    assert "gpt-4.1" in mine.text_area(key=form.ALIASES).value
    mine.button(key="settings_save").click().run()
    saved = app_rt.saved_settings()
    assert saved["default_model"] == "gpt-4o-mini"  # theirs, kept
    assert saved["aliases"] == {"gpt-4o-mini": EMBEDDED_MODEL_ID, "gpt-4.1": EMBEDDED_MODEL_ID}  # mine
    assert "were kept: the default model" in mine.success[0].value
    assert mine.text_input(key=form.DEFAULT_MODEL).value == "gpt-4o-mini" and not mine.warning


def test_settings_without_edits_follow_a_save_elsewhere(app_rt):
    at = open_page("settings")
    app_rt.save_settings({"default_model": "gpt-4o-mini"})  # saved elsewhere: another tab, another instance
    at.run()
    assert at.text_input(key=form.DEFAULT_MODEL).value == "gpt-4o-mini" and not at.warning
    assert not any("Unsaved" in str(b.proto) for b in at.get("badge"))

    # Edits, then a save elsewhere, then "Load theirs": the edits go, the saved settings show.
    at.text_input(key=form.DEFAULT_MODEL).set_value("mine").run()
    app_rt.save_settings({"default_model": "theirs"})
    at.run()
    at.button(key="settings_load_latest").click().run()
    assert at.text_input(key=form.DEFAULT_MODEL).value == "theirs" and not at.warning


def test_settings_merge():
    base = {"aliases": {"a": "m"}, "backends": [{"name": "x", "base_url": "http://x/v1", "api_key": ""}],
            "default_model": "d"}
    mine = {"aliases": {"a": "m", "b": "m"}, "backends": [{"name": "x", "base_url": "http://x2/v1", "api_key": ""}],
            "default_model": "d"}
    theirs = {"aliases": {"a": "n"}, "default_model": "e", "openai_api_key": "sk-theirs",
              "backends": [{"name": "x", "base_url": "http://x3/v1", "api_key": ""},
                           {"name": "y", "base_url": "http://y/v1", "api_key": ""}]}
    values, notes = form.merge(base, mine, theirs)
    assert values["aliases"] == {"a": "n", "b": "m"}
    assert values["default_model"] == "e" and values["openai_api_key"] == "sk-theirs"
    assert [b["base_url"] for b in values["backends"]] == ["http://x2/v1", "http://y/v1"]
    assert notes["replaced"] == ["server 'x'"]
    assert set(notes["kept"]) == {"alias 'a'", "the default model", "the OpenAI API key", "server 'y'"}
    # Removing what the other side left alone removes it; nothing changed elsewhere means nothing to report.
    values, notes = form.merge(base, {"default_model": "d"}, base)
    assert values == {"default_model": "d"} and notes == {"kept": [], "replaced": []}


# -- Compare -----------------------------------------------------------------------------------------
def test_compare_two_sides_with_the_embedded_model(app_rt):
    bot = _assistant(app_rt, "Tiny")
    broken = _assistant(app_rt, "Broken", model="no-such-model")
    at = open_page("compare", timeout=180)
    at.selectbox(key="compare_A_assistant").set_value(bot["id"]).run()
    at.selectbox(key="compare_B_assistant").set_value(bot["id"]).run()
    at.slider(key="compare_B_temperature").set_value(1.2)
    at.number_input(key="compare_max_tokens").set_value(32)
    at.button(key="compare_send").click().run()
    assert "nothing was sent" in at.warning[0].value
    assert export.thread_summaries(app_rt.store) == []

    at.text_area(key="compare_prompt").set_value("Say hello in one short sentence.")
    at.button(key="compare_send").click().run()
    assert not at.exception and not at.error
    replies = [cm.markdown[0].value for cm in at.chat_message]
    assert len(replies) == 2 and all(r.strip() for r in replies)
    metrics = [(m.label, m.value) for m in at.metric]
    assert [label for label, _ in metrics] == ["Tokens", "First token", "Total time"] * 2
    assert all(int(v.replace(",", "")) > 0 for label, v in metrics if label == "Tokens")
    assert all(v.endswith(" s") for label, v in metrics if label in ("First token", "Total time"))
    assert sum("estimated cost $0" in c.value for c in at.caption) == 2  # local model: free
    result = at.session_state["compare_result"]
    assert [s["temperature"] for s in result["sides"]] == [0.0, 1.2]
    threads = {s["thread_id"] for s in result["sides"]}
    assert len(threads) == 2
    for s in result["sides"]:
        run = app_rt.get_run(s["thread_id"], s["run_id"])
        assert run["status"] in ("completed", "incomplete") and run["temperature"] == s["temperature"]
        assert app_rt.get_thread(s["thread_id"])["metadata"] == {"playground": "compare", "assistant_id": bot["id"]}

    # One side that cannot start says why; the other still answers.
    at.selectbox(key="compare_A_assistant").set_value(broken["id"]).run()
    threads_before = export.thread_count(app_rt.store)
    at.button(key="compare_send").click().run()
    assert "no-such-model" in at.error[0].value and "not served" in at.error[0].value
    assert export.thread_count(app_rt.store) == threads_before + 1  # no empty thread for the side that failed
    assert len(at.chat_message) == 1 and at.chat_message[0].markdown[0].value.strip()

    at.button(key="compare_open_1").click().run()
    assert at.session_state["assistant_id"] == bot["id"]
    assert at.session_state["thread_id"] == at.session_state["compare_result"]["sides"][1]["thread_id"]


def test_typed_text_survives_leaving_the_page(app_rt):
    _assistant(app_rt, "Tiny")
    at = open_page("compare")
    at.text_area(key="compare_prompt").set_value("half-written prompt").run()
    at.switch_page("app_pages/threads.py").run()
    at.switch_page("app_pages/compare.py").run()
    assert at.text_area(key="compare_prompt").value == "half-written prompt"

    at.switch_page("app_pages/settings.py").run()
    at.text_area(key=form.ALIASES).set_value("a = b").run()
    at.switch_page("app_pages/assistants.py").run()
    at.switch_page("app_pages/settings.py").run()
    assert at.text_area(key=form.ALIASES).value == "a = b"


def test_settings_new_row_starts_without_red_errors_until_save(app_rt):
    at = open_page("settings")
    uid = _add_server(at)
    assert not [m.value for m in at.markdown if ":red[" in m.value]
    assert at.button(key=f"settings_b_{uid}_test").disabled  # nothing to test yet, still
    at.button(key="settings_save").click().run()
    assert "Nothing was saved" in at.error[0].value
    errors = [m.value for m in at.markdown if ":red[" in m.value]
    assert any("Give this server a name" in e for e in errors) and any("Enter the server's base URL" in e for e in errors)


def test_compare_outputs_and_names_are_not_markdown_that_fetches(tmp_path, monkeypatch):
    """A hostile reply, assistant name and prompt on Compare: images become links, names and prompt stay text."""
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    beacon = "![x](http://127.0.0.1:9/leak)"
    with FakeOpenAIServer() as srv:
        monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("PLAYGROUND_BACKENDS", f"fake={srv.base_url}")
        monkeypatch.setenv("PLAYGROUND_EMBEDDED_MODEL", "0")
        srv.add({"text": f"A {beacon}"}, {"text": f"B {beacon}"})
        rt = session.get_runtime()
        try:
            rt.create_assistant(model="fake-model", name=f"Evil {beacon}")
            at = open_page("compare")
            at.text_area(key="compare_prompt").set_value(f"Prompt {beacon}")
            at.button(key="compare_send").click().run()
            assert not at.exception
            shown = [m.value for m in at.markdown] + [c.value for c in at.caption]
            unescaped = [v for v in shown if re.search(r"(?<!\\)!\[", v)]
            assert not unescaped, unescaped
            assert sum("image not loaded" in cm.markdown[0].value for cm in at.chat_message) == 2
        finally:
            rt.close()
            session._runtime_for.clear()
