"""AppTest tests for the Playground page: config sidebar, chat with streaming, function calls, the log, hand-off."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import session
from assistants.config import EMBEDDED_MODEL_ID
from components.sidebar import K, check_function, check_schema
from components.thread_view import AFTER_KEY, safe_markdown, timeline, with_citations
from tests.conftest import wait_run
from tests.fakes.openai_server import FakeOpenAIServer
from tests.ui import fresh_data_dir

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh data dir for the app; the runtime the page builds for it is closed afterwards."""
    fresh_data_dir(monkeypatch, tmp_path, "PLAYGROUND_EMBEDDED_MODEL")
    yield tmp_path
    session.get_runtime().close()
    session._runtime_for.clear()


@pytest.fixture
def fake(data_dir, monkeypatch):
    """A scripted OpenAI-compatible server as the only backend (no embedded model)."""
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("PLAYGROUND_BACKENDS", f"fake={server.base_url}")
        monkeypatch.setenv("PLAYGROUND_EMBEDDED_MODEL", "0")
        yield server


def rt():
    """The runtime the page uses (same process, same st.cache_resource)."""
    return session.get_runtime()


def start(timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="playground_prompt").set_value(text)
    return run(at)


def bubbles(at: AppTest) -> list[tuple[str, str]]:
    """(role, text) of every chat message drawn, in order."""
    return [(m.name, "\n".join(md.value for md in m.markdown)) for m in at.chat_message]


def badges(at: AppTest) -> str:
    return " ".join(m.value for m in at.sidebar.markdown)


def everything(at: AppTest) -> str:
    """All text the page drew (markdown, captions, alerts, code)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [c.value for c in at.code]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(str(p) for p in parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- assistants: create, clone, delete, config ---------------------------------------------------------------
def test_first_visit_create_clone_and_delete(data_dir):
    at = start()
    assert not rt().list_assistants()["data"]
    at.button(key="playground_first").click()
    run(at)
    made = rt().list_assistants()["data"]
    assert len(made) == 1 and made[0]["model"] == EMBEDDED_MODEL_ID
    assert made[0]["temperature"] == 0.2 and made[0]["top_p"] == 0.9  # focused: the tiny model rambles at 1.0
    assert at.session_state["assistant_id"] == made[0]["id"]
    assert at.text_input(key=K + "name").value == "New assistant"
    assert any(made[0]["id"] in c.value for c in at.sidebar.caption)  # the id, small
    assert at.button(key="playground_delete_confirm").proto.type == "secondary"  # not Save's green

    at.button(key="playground_clone").click()
    run(at)
    assert not at.toast and any("Cloned into" in s.value for s in at.success)
    names = sorted(a["name"] for a in rt().list_assistants()["data"])
    assert names == ["Copy of New assistant", "New assistant"]
    clone_id = at.session_state["assistant_id"]
    assert clone_id != made[0]["id"] and at.text_input(key=K + "name").value == "Copy of New assistant"

    at.button(key="playground_delete_confirm").click()
    run(at)
    left = rt().list_assistants()["data"]
    assert [a["id"] for a in left] == [made[0]["id"]]
    assert at.session_state["assistant_id"] == made[0]["id"]


def test_save_config_with_unsaved_marker(data_dir):
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Bot", instructions="Old.")
    at = start()
    assert "Saved" in badges(at) and "Unsaved" not in badges(at)
    at.text_input(key=K + "name").set_value("Investing Bot")
    at.text_area(key=K + "instructions").set_value("You are an expert in calculating investments.")
    at.slider(key=K + "temperature").set_value(0.2)
    at.toggle(key=K + "code_interpreter").set_value(True)
    at.segmented_control(key=K + "format").set_value("json_object")
    run(at)
    assert "Unsaved changes" in badges(at)
    assert rt().get_assistant(a["id"])["name"] == "Bot"  # nothing saved yet

    at.button(key="playground_save").click()
    run(at)
    saved = rt().get_assistant(a["id"])
    assert saved["name"] == "Investing Bot"
    assert saved["instructions"] == "You are an expert in calculating investments."
    assert saved["temperature"] == 0.2
    assert {"type": "code_interpreter"} in saved["tools"]
    assert saved["response_format"] == {"type": "json_object"}
    assert "Unsaved" not in badges(at) and "Saved" in badges(at)
    assert not at.toast  # the badge says it; a toast covered the run log's heading


def test_unsaved_edits_survive_switching_assistants(data_dir):
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="A")
    b = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="B")
    at = start()
    assert at.session_state["assistant_id"] == b["id"]  # the newest opens first
    at.text_area(key=K + "instructions").set_value("half-typed instructions")
    run(at)
    at.selectbox(key="playground_pick").set_value(a["id"])
    run(at)
    assert at.text_input(key=K + "name").value == "A"
    at.selectbox(key="playground_pick").set_value(b["id"])
    run(at)
    assert at.text_area(key=K + "instructions").value == "half-typed instructions"
    assert "Unsaved changes" in badges(at)


def test_function_editor_validates_and_refuses_invalid_json(data_dir):
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Funcs")
    at = start()
    at.button(key="playground_add_function").click()
    run(at)
    uid = at.session_state[K + "fn_ids"][0]
    example = at.text_area(key=K + f"fn_{uid}").value
    assert json.loads(example)["name"] == "get_weather"  # starts from an example
    assert "Valid function definition" in " ".join(c.value for c in at.sidebar.caption)

    at.text_area(key=K + f"fn_{uid}").set_value('{"name": "get weather", ')
    run(at)
    assert any("Not valid JSON" in e.value for e in at.sidebar.error)
    assert at.button(key="playground_save").disabled and at.button(key="playground_save_top").disabled
    assert any("Not saved" in e.value for e in at.sidebar.error)
    assert rt().get_assistant(a["id"])["tools"] == []

    at.text_area(key=K + f"fn_{uid}").set_value('{"name": "get weather", "parameters": {"type": "object"}}')
    run(at)
    assert any("letters, digits" in e.value for e in at.sidebar.error)

    at.text_area(key=K + f"fn_{uid}").set_value(example)
    run(at)
    assert not at.sidebar.error
    at.button(key="playground_save").click()
    run(at)
    tools = rt().get_assistant(a["id"])["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather"]
    assert tools[0]["function"]["parameters"]["required"] == ["city"]


def test_json_schema_response_format(data_dir):
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Structured")
    at = start()
    at.segmented_control(key=K + "format").set_value("json_schema")
    run(at)
    assert json.loads(at.text_area(key=K + "schema").value)["name"] == "answer"  # the example fills in
    at.text_area(key=K + "schema").set_value('{"name": "answer", "schema": {"type": "objekt"}}')
    run(at)
    assert any("not a valid JSON Schema" in e.value for e in at.sidebar.error)
    assert at.button(key="playground_save").disabled
    at.text_area(key=K + "schema").set_value('{"name": "answer", "strict": true, "schema": {"type": "object", '
                                             '"properties": {"answer": {"type": "string"}}}}')
    run(at)
    at.button(key="playground_save").click()
    run(at)
    fmt = rt().get_assistant(a["id"])["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "answer"


def test_model_dropdown_lists_backends_and_unreachable_ones(data_dir, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_BACKENDS", f"ollama=http://127.0.0.1:{free_port()}/v1")
    rt().create_assistant(model="llama3.2", name="Local")
    at = start()
    assert EMBEDDED_MODEL_ID in at.selectbox(key=K + "model").options[1]  # after the saved, unavailable one
    assert "not available now" in at.selectbox(key=K + "model").options[0]
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "ollama" in captions and "unreachable" in captions
    banner = " ".join(w.value for w in at.warning)
    assert "llama3.2" in banner and "ollama" in banner and "Settings" in banner


# -- the thread ----------------------------------------------------------------------------------------------
def test_send_message_streams_reply_from_embedded_model(data_dir):
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Tiny", instructions="Answer in one short sentence.",
                              temperature=0.0)
    at = start()
    at.number_input(key="playground_max_tokens").set_value(16)
    run(at)
    send(at, "Say hello.")
    thread_id = at.session_state["thread_id"]
    assert thread_id and rt().get_thread(thread_id)["metadata"]["assistant_id"] == a["id"]
    drawn = bubbles(at)
    assert drawn[0] == ("user", "Say hello.")
    assert drawn[1][0] == "assistant" and drawn[1][1].strip()
    (run_,) = rt().list_runs(thread_id)["data"]
    assert run_["status"] in ("completed", "incomplete") and run_["usage"]["completion_tokens"] <= 16
    tokens_line = next(m.value for m in at.markdown if "Last run" in m.value)
    assert f"**{run_['usage']['total_tokens']}** tokens" in tokens_line and "$0" in tokens_line
    at.toggle(key="playground_logs").set_value(True)
    assert any(EMBEDDED_MODEL_ID in e.label for e in run(at).expander)  # the run in the log
    at.number_input(key="playground_max_tokens").set_value(0)
    send(run(at), "Say hello again.")
    assert rt().list_runs(thread_id)["data"][0]["max_completion_tokens"] == 256  # the embedded model's own cap


def test_token_line_hides_zero_counts():
    from components.tokens import _line
    assert _line("Last run", {"total_tokens": 0, "prompt_tokens": 0, "completion_tokens": 0}, 0.0) == \
        ":gray[Last run] &nbsp; :gray[no runs yet]"
    assert "**12** tokens" in _line("Last run", {"total_tokens": 12, "prompt_tokens": 10, "completion_tokens": 2}, 0.0)


def test_empty_message_sends_nothing(data_dir):
    rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Quiet")
    at = start()
    send(at, "   ")
    assert at.session_state["thread_id"] is None
    assert not rt().list_threads()["data"]


def test_add_only_then_run(fake):
    rt().create_assistant(model="fake-model", name="Echo")
    at = start()
    at.segmented_control(key="playground_send_mode").set_value("add")
    run(at)
    send(at, "first")
    thread_id = at.session_state["thread_id"]
    assert [m["role"] for m in rt().list_messages(thread_id)["data"]] == ["user"]
    assert not rt().list_runs(thread_id)["data"]
    at.button(key="playground_run").click()
    run(at)
    assert bubbles(at)[-1] == ("assistant", "echo: first")


def test_clear_thread_starts_a_new_one_and_keeps_the_old(fake):
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(start(), "hello")
    old = at.session_state["thread_id"]
    at.button(key="playground_threads_new").click()
    run(at)
    assert at.session_state["thread_id"] is None and not at.chat_message
    send(at, "again")
    assert at.session_state["thread_id"] != old
    assert rt().get_thread(old)["id"] == old


def test_function_call_by_hand_resumes_the_run(fake):
    weather = {"name": "get_weather", "description": "Weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    rt().create_assistant(model="fake-model", name="Weather", tools=[{"type": "function", "function": weather}])
    fake.add({"tool_calls": [("get_weather", '{"city": "Paris"}')]}, {"text": "It is 22 degrees in Paris."})
    at = send(start(), "Weather in Paris?")
    thread_id = at.session_state["thread_id"]
    (waiting,) = rt().list_runs(thread_id)["data"]
    assert waiting["status"] == "requires_action"
    (call,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert '"city": "Paris"' in " ".join(c.value for c in at.main.code)
    assert at.chat_input(key="playground_prompt").disabled  # no new message while the run waits

    at.text_area(key=f"playground_out_{call['id']}").set_value('{"temperature": 22}')
    at.button(key=f"playground_outputs_{waiting['id']}_submit").click()
    run(at)
    assert rt().get_run(thread_id, waiting["id"])["status"] == "completed"
    assert bubbles(at)[-1] == ("assistant", "It is 22 degrees in Paris.")
    tool_turn = [m for m in fake.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_turn and tool_turn[0]["content"] == '{"temperature": 22}'
    at.toggle(key="playground_logs").set_value(True)
    log = " ".join(e.label for e in run(at).expander)
    assert "Completed · fake-model" in log


def test_failed_run_shows_last_error_in_thread_and_log(fake):
    rt().create_assistant(model="fake-model", name="Fragile")
    fake.add({"status": 500, "message": "the GPU caught fire"})
    at = send(start(), "hello?")
    (failed,) = rt().list_runs(at.session_state["thread_id"])["data"]
    assert failed["status"] == "failed" and "GPU caught fire" in failed["last_error"]["message"]
    at.toggle(key="playground_logs").set_value(True)
    errors = [e.value for e in run(at).error]
    assert any("The run failed" in e and "GPU caught fire" in e for e in errors)  # in the thread
    assert sum("GPU caught fire" in e for e in errors) >= 2  # and in the (expanded) log entry
    assert any(e.label.startswith("Failed") for e in at.expander)
    send(at, "still there?")  # the app keeps working
    assert bubbles(at)[-1] == ("assistant", "echo: still there?")


def test_backend_down_keeps_the_message_and_explains(data_dir, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_BACKENDS", f"openai-proxy=http://127.0.0.1:{free_port()}/v1")
    rt().create_assistant(model="gpt-4o", name="Cloud")
    at = send(start(), "Are you there?")
    thread_id = at.session_state["thread_id"]
    assert [m["role"] for m in rt().list_messages(thread_id)["data"]] == ["user"]  # stored before any model call
    text = everything(at)
    assert "gpt-4o" in text and "openai-proxy" in text and "kept in the thread" in text
    assert bubbles(at)[0] == ("user", "Are you there?")


def test_second_tab_sees_the_active_run_and_can_cancel_it(fake):
    a = rt().create_assistant(model="fake-model", name="Slow")
    thread = rt().create_thread(metadata={"assistant_id": a["id"]})
    at = start()  # opened before the run starts, like a second tab
    assert at.session_state["thread_id"] == thread["id"]
    first = rt().create_message(thread["id"], role="user", content="take your time")
    fake.add({"text": "done at last", "delay": 5})
    busy = rt().create_run(thread["id"], assistant_id=a["id"], metadata={AFTER_KEY: first["id"]})  # as a tab would
    send(at, "me too!")  # typed in this tab while the other one's run works
    assert at.session_state["playground_unsent"] == "me too!"  # kept, not lost
    assert any("already in progress" in i.value for i in at.info)
    assert any("Thinking" in s.label or "Queued" in s.label for s in at.status)
    assert at.chat_input(key="playground_prompt").disabled
    at.button(key="playground_cancel").click()
    run(at)
    assert wait_run(rt(), thread["id"], busy["id"])["status"] == "cancelled"
    run(at)
    assert not at.chat_input(key="playground_prompt").disabled
    at.button(key="playground_resend").click()
    run(at)
    assert bubbles(at)[-1] == ("assistant", "echo: me too!")
    assert at.session_state["playground_unsent"] is None


def test_handoff_sends_reply_into_another_assistants_thread(fake):
    writer = rt().create_assistant(model="fake-model", name="Writer")
    researcher = rt().create_assistant(model="fake-model", name="Researcher")
    at = send(start(), "find facts")
    assert at.session_state["assistant_id"] == researcher["id"]
    source_thread = at.session_state["thread_id"]
    menu = at.main.menu_button[0]
    assert menu.options == ["Send to Writer"]
    fake.add({"text": "echo: echo: find facts", "delay": 2})
    menu.set_value(writer["id"])
    run(at)
    assert at.session_state["assistant_id"] == writer["id"]
    target_thread = at.session_state["thread_id"]
    assert target_thread != source_thread
    assert rt().get_thread(target_thread)["metadata"]["assistant_id"] == writer["id"]
    (working,) = rt().list_runs(target_thread)["data"]
    assert working["status"] in ("queued", "in_progress")  # the Writer is answering: it can be cancelled...
    assert at.button(key="playground_cancel") and at.chat_input(key="playground_prompt").disabled  # ...and waited for
    assert "Unsaved" not in badges(at) and at.text_input(key=K + "name").value == "Writer"
    wait_run(rt(), target_thread, working["id"])
    run(at)
    assert "Unsaved" not in badges(at) and not at.chat_input(key="playground_prompt").disabled
    texts = bubbles(at)
    assert texts[0] == ("user", "echo: find facts")  # Researcher's reply, as a user message
    assert texts[1] == ("assistant", "echo: echo: find facts")  # and the Writer answered it
    assert "Handed off from **Researcher**" in " ".join(c.value for c in at.chat_message[0].caption)
    at.chat_message[0].button[0].click()  # "Open its thread"
    run(at)
    assert at.session_state["assistant_id"] == researcher["id"]
    assert at.session_state["thread_id"] == source_thread


def test_logs_toggle_and_the_newest_run_open(fake):
    rt().create_assistant(model="fake-model", name="Echo")
    fake.add({"status": 500, "message": "an old failure"})
    at = send(start(), "one")
    send(at, "two")
    assert not at.expander and "Run log" not in everything(at)  # the conversation has the room
    at.toggle(key="playground_logs").set_value(True)
    run(at)
    runs = [e for e in at.expander if not e.label.startswith("Model call")]
    assert runs[0].label.startswith("Completed") and runs[1].label.startswith("Failed")
    assert runs[0].proto.expanded and not runs[1].proto.expanded  # the newest open, the old failure not


def test_thread_list_titles_rename_search_open_and_delete(fake):
    a = rt().create_assistant(model="fake-model", name="Echo")
    at = send(start(), "Shopping list for the weekend")
    first = at.session_state["thread_id"]
    assert rt().get_thread(first)["metadata"] == {"assistant_id": a["id"], "title": "Shopping list for the weekend"}
    at.button(key="playground_threads_new").click()
    run(at)
    send(at, "Holiday plans")
    second = at.session_state["thread_id"]
    assert second != first
    assert [b.label for b in at.button if b.key and b.key.startswith("playground_threads_open_")] == [
        "Shopping list for the weekend"]
    assert at.button(key="playground_threads_current").label == "Holiday plans"  # the open one, outlined
    at.text_input(key="playground_threads_search").set_value("shop")
    run(at)
    at.button(key=f"playground_threads_open_{first}").click()
    run(at)
    assert at.session_state["thread_id"] == first and bubbles(at)[0] == ("user", "Shopping list for the weekend")
    at.text_input(key=f"playground_threads_title_{first}").set_value("Groceries")
    at.button(key="playground_threads_rename").click()
    run(at)
    assert rt().get_thread(first)["metadata"] == {"assistant_id": a["id"], "title": "Groceries"}
    assert "**Groceries**" in everything(at)
    at.text_input(key="playground_threads_search").set_value("")
    run(at)
    at.button(key="playground_threads_delete").click()
    run(at)
    assert at.session_state["thread_id"] is None and [t["id"] for t in rt().list_threads()["data"]] == [second]


def test_get_code_shows_the_script(fake):
    rt().create_assistant(model="fake-model", name="Coder", temperature=0.3)
    at = send(start(), "hello")
    at.button(key="playground_get_code").click()
    run(at)
    code = next(c.value for c in at.code if "client.beta.assistants.create(" in c.value)
    assert "name='Coder'" in code and "temperature=0.3" in code and "'content': 'hello'" in code


def test_long_thread_shows_the_latest_messages_first(fake):
    a = rt().create_assistant(model="fake-model", name="Chatty")
    thread = rt().create_thread(metadata={"assistant_id": a["id"]})
    for i in range(45):
        rt().create_message(thread["id"], role="user", content=f"message {i}")
    at = start()
    shown = bubbles(at)
    assert len(shown) == 30 and shown[-1] == ("user", "message 44")
    at.button(key="playground_more").click()
    run(at)
    assert len(bubbles(at)) == 45 and bubbles(at)[0] == ("user", "message 0")


def test_image_attachment_is_stored_and_shown(fake):
    if session.get_runtime().files is None:
        pytest.skip("the files service is not installed")
    rt().create_assistant(model="fake-model", name="Eyes")
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
           b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    at = start()
    at.chat_input(key="playground_prompt").upload("dot.png", png, "image/png").set_value("what is this?")
    run(at)
    (user_msg,) = [m for m in rt().list_messages(at.session_state["thread_id"])["data"] if m["role"] == "user"]
    assert [b["type"] for b in user_msg["content"]] == ["text", "image_file"]
    assert at.chat_message[0].image


def test_code_interpreter_image_in_thread_and_log(fake):
    if not Path("/usr/bin/bwrap").exists() or rt().files is None:
        pytest.skip("needs bubblewrap and the files service")
    rt().create_assistant(model="fake-model", name="Plotter", tools=[{"type": "code_interpreter"}])
    code = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "plt.plot([1, 2, 3], [1, 4, 9])\nplt.show()\nprint('plotted')")
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]}, {"text": "Here is the chart."})
    at = send(start(timeout=90), "plot squares")
    ran, reply = at.chat_message[1], at.chat_message[2]  # the code's step in the thread, then the reply
    assert ran.expander[0].label == "Ran code" and ran.image  # the figure with the code that made it
    assert reply.image and "Here is the chart." in reply.markdown[0].value
    assert len(rt().list_runs(at.session_state["thread_id"])["data"]) == 1
    at.toggle(key="playground_logs").set_value(True)
    run(at)  # the newest run opens in the log by itself
    shown = " ".join(c.value for c in at.code)
    assert "plt.plot" in shown and "plotted" in shown
    assert len(at.image) >= 3  # in the reply, the thread's code step and the log's tool output


def test_file_search_vector_store_from_uploaded_files(data_dir):
    if rt().vector_stores is None:
        pytest.skip("the vector store service is not installed")
    a = rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Librarian")
    at = start()
    at.toggle(key=K + "file_search").set_value(True)
    run(at)
    at.file_uploader(key="playground_fs_upload_0").set_value(
        [("notes.txt", b"The office cat is called Marmalade.", "text/plain"),
         ("broken.pdf", b"%PDF-1.4 this is not really a PDF", "application/pdf")])
    run(at)
    at.button(key="playground_fs_upload_go").click()
    run(at)
    (store_id,) = at.multiselect(key=K + "vector_store_ids").value
    # The uploader is empty again (a second click must not make a second store of the same files).
    assert at.file_uploader(key="playground_fs_upload_1").value in (None, [])
    assert at.button(key="playground_fs_upload_go").disabled
    assert rt().vector_stores.wait_idle(30)
    run(at)
    status = " ".join(c.value for c in at.sidebar.caption)
    assert "1 file ready" in status and "1 could not be read" in status, status
    assert "broken.pdf" in status and "byte" in status
    at.button(key="playground_save").click()
    run(at)
    saved = rt().get_assistant(a["id"])
    assert {"type": "file_search"} in saved["tools"]
    assert saved["tool_resources"]["file_search"]["vector_store_ids"] == [store_id]


def test_unsaved_edits_survive_a_visit_to_another_page(data_dir):
    rt().create_assistant(model=EMBEDDED_MODEL_ID, name="Keeper")
    at = start()
    at.text_input(key=K + "name").set_value("Keeper, renamed")
    run(at)
    at.switch_page("app_pages/threads.py")
    run(at)
    at.switch_page("app_pages/playground.py")
    run(at)
    assert at.text_input(key=K + "name").value == "Keeper, renamed"
    assert "Unsaved changes" in badges(at)


def test_no_pages_folder_next_to_app_py():
    """A pages/ folder beside app.py makes Streamlit run its files without app.py after every restart."""
    assert not (ROOT / "pages").exists(), "put page files in app_pages/ (see app.py)"
    paths = re.findall(r'st\.Page\("([^"]+)"', (ROOT / "app.py").read_text())
    assert paths and all((ROOT / p).exists() for p in paths), paths


# -- pure helpers ---------------------------------------------------------------------------------------------
def test_streamed_text_is_merged_into_a_few_redraws():
    from playground.live import coalesce

    def delta(msg: str, text: str) -> tuple[str, dict]:
        return "thread.message.delta", {"id": msg, "delta": {"content": [{"index": 0, "type": "text",
                                                                          "text": {"value": text}}]}}

    now = [0.0]
    events = [("thread.run.in_progress", {"status": "in_progress"})]
    events += [delta("msg_1", "abcdefghij") for _ in range(10_000)]  # 100,000 characters, no time passing
    events += [("thread.run.completed", {"status": "completed"}), ("done", None)]
    out = list(coalesce(iter(events), clock=lambda: now[0]))
    texts = [d["delta"]["content"][0]["text"]["value"] for e, d in out if e == "thread.message.delta"]
    # Nothing lost: the first piece at once (the first word on screen is what a person waits for), the rest in one.
    assert "".join(texts) == "abcdefghij" * 10_000 and texts[0] == "abcdefghij" and len(texts) == 2
    assert [e for e, _ in out] == ["thread.run.in_progress", "thread.message.delta", "thread.message.delta",
                                   "thread.run.completed", "done"]

    def ticking():  # 1 ms between pieces: redraws every 0.1 s at first, then less often as the reply grows
        for i in range(5_000):
            now[0] = i / 1000
            yield delta("msg_1", "x" * 10)
    texts = [d["delta"]["content"][0]["text"]["value"] for e, d in coalesce(ticking(), clock=lambda: now[0])]
    assert sum(map(len, texts)) == 50_000 and 10 <= len(texts) <= 50, len(texts)
    mixed = list(coalesce(iter([delta("m1", "a"), delta("m2", "b"), ("ping", None), delta("m2", "c")]),
                          clock=lambda: 0.0))
    assert [(e, d and d["id"]) for e, d in mixed] == [("thread.message.delta", "m1"), ("thread.message.delta", "m2"),
                                                      ("ping", None), ("thread.message.delta", "m2")]


def test_the_rest_of_the_page_is_drawn_once_the_first_text_is_out():
    """then_draw: the sidebar and the rest come after the reply's first text is out (with the second), or at a quiet
    moment, or at the end."""
    from playground.live import then_draw

    text = ("thread.message.delta", {"id": "m1", "delta": {"content": [{"index": 0, "type": "text",
                                                                       "text": {"value": "Hi"}}]}})
    image = ("thread.message.delta", {"id": "m1", "delta": {"content": [{"index": 0, "type": "image_file",
                                                                        "image_file": {"file_id": "f"}}]}})

    def order(events: list) -> list[str]:
        seen: list[str] = []
        for event, _data in then_draw(iter(events), lambda: seen.append("DRAW")):
            seen.append(event)
        return seen

    run = ("thread.run.in_progress", {"status": "in_progress"})
    assert order([run, image, text, text, ("done", None)]) == [
        "thread.run.in_progress", "thread.message.delta", "thread.message.delta", "DRAW", "thread.message.delta", "done"]
    assert order([run, text, ("done", None)]) == ["thread.run.in_progress", "thread.message.delta", "done", "DRAW"]
    assert order([run, ("ping", None), ("ping", None), text]) == [
        "thread.run.in_progress", "ping", "DRAW", "ping", "thread.message.delta"]
    assert order([run, ("thread.run.failed", {"status": "failed"}), ("done", None)]) == [
        "thread.run.in_progress", "thread.run.failed", "done", "DRAW"]


def test_markdown_escaping_keeps_money_and_code():
    assert safe_markdown("I make $5,000 and want $100,000") == "I make \\$5,000 and want \\$100,000"
    assert safe_markdown("`echo $HOME` costs $1") == "`echo $HOME` costs \\$1"
    assert safe_markdown("```sh\necho $PATH\n```\n$2") == "```sh\necho $PATH\n```\n\\$2"
    assert safe_markdown("<script>alert(1)</script>") == "\\<script>alert(1)\\</script>"  # shown as text


def test_citations_become_numbered_markers():
    block = {"type": "text", "text": {"value": "Paris is big【4:0†source】.", "annotations": [
        {"type": "file_citation", "text": "【4:0†source】", "start_index": 12, "end_index": 24,
         "file_citation": {"file_id": "file-1"}}]}}
    text, notes = with_citations(block)
    assert text == "Paris is big [1]." and notes[0]["file_citation"]["file_id"] == "file-1"


def test_timeline_places_failed_runs_where_they_happened():
    msgs = [{"id": "m1", "created_at": 10, "role": "user"}, {"id": "m2", "created_at": 10, "role": "user"}]
    exact = {"id": "r1", "created_at": 10, "status": "failed", "metadata": {AFTER_KEY: "m1"}}
    assert [x["id"] for _, x in timeline(msgs, [exact], older_hidden=False)] == ["m1", "r1", "m2"]
    by_time = {"id": "r2", "created_at": 9, "status": "cancelled", "metadata": {}}
    assert [x["id"] for _, x in timeline(msgs, [by_time], older_hidden=False)] == ["r2", "m1", "m2"]
    assert [x["id"] for _, x in timeline(msgs, [by_time], older_hidden=True)] == ["m1", "m2"]  # before the window
    done = {"id": "r3", "created_at": 10, "status": "completed", "metadata": {}}
    assert len(timeline(msgs, [done], older_hidden=False)) == 2


def test_function_and_schema_checks():
    assert check_function('{"type": "function", "function": {"name": "f"}}')[0]["name"] == "f"  # pasted whole tool
    assert "built-in" in check_function('{"name": "code_interpreter"}')[1]
    assert "already named" in check_function('{"name": "f"}', {"f"})[1]
    assert "Unknown field" in check_function('{"name": "f", "args": {}}')[1]
    assert "JSON Schema" in check_function('{"name": "f", "parameters": {"type": "object", "required": 3}}')[1]
    assert check_schema('{"type": "object", "properties": {}}')[0]["name"] == "response"  # a bare schema is wrapped
    assert "line 1" in check_schema("{oops")[1]


def test_page_never_injects_model_html(fake):
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(start(), "<img src=x onerror=alert(1)>")
    # The reply's text does reach st.html once, escaped inside the Copy button's data attribute: never as a tag.
    assert all("<img" not in h.proto.body for h in at.get("html"))
    assert any("&lt;img src=x onerror" in h.proto.body for h in at.get("html"))
    assert all(not m.proto.allow_html for m in at.markdown if "onerror" in m.value)


def test_words_for_people():
    from components import plain_error
    from components.sidebar import fmt_bytes, store_status
    from components.thread_view import plain_text
    assert "nothing is listening" in plain_error("Could not connect to x ([Errno 111] Connection refused).")
    assert fmt_bytes(340) == "340 bytes" and fmt_bytes(2_800) == "2.8 KB" and fmt_bytes(1_400_000) == "1.4 MB"
    busy = {"file_counts": {"total": 3, "completed": 1, "in_progress": 1, "failed": 1}}
    assert "Indexing 3 of 3 files" in store_status(busy) and "1 could not be read" in store_status(busy)
    assert "2 files ready" in store_status({"file_counts": {"total": 2, "completed": 2}})
    assert store_status({"file_counts": {}}) == "No files yet"
    # A reply passed on (hand-off, Compare) keeps its words only: no image placeholder, no citation marker.
    msg = {"content": [{"type": "image_file", "image_file": {"file_id": "file-1"}},
                       {"type": "text", "text": {"value": "Within 30 days 【0†handbook.md】.", "annotations": [
                           {"type": "file_citation", "start_index": 15, "end_index": 30,
                            "file_citation": {"file_id": "file-2"}}]}}]}
    assert plain_text(msg) == "Within 30 days."


def test_user_message_shown_as_written_and_reply_images_not_loaded(fake):
    """Issue 12 item 4: a list typed by a person keeps its lines; a reply's image is a link, never an <img>."""
    from components.safe_text import plain
    rt().create_assistant(model="fake-model", name="Echo")
    fake.add({"text": "Done ![beacon](http://127.0.0.1:9/leak?q=list)"})
    at = send(start(), "Shopping list:\n- milk\neggs\nbread")
    user, reply = bubbles(at)[-2:]
    assert user == ("user", plain("Shopping list:\n- milk\neggs\nbread"))  # each line kept, "- milk" no bullet
    assert "![" not in reply[1].replace("\\![", "") and "image not loaded" in reply[1]
