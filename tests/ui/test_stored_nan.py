"""Rows stored with NaN/Infinity before the runtime refused them: every page still draws, editors show null."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import session
from assistants import export
from assistants.config import EMBEDDED_MODEL_ID
from components.sidebar import K
from tests.ui import fresh_data_dir

APP = str(Path(__file__).resolve().parents[2] / "app.py")
pytestmark = pytest.mark.sqlite_only(reason="rows with NaN exist only in SQLite databases written before the runtime "
                                            "refused NaN (PostgreSQL's jsonb cannot hold NaN)")


@pytest.fixture
def poisoned(tmp_path, monkeypatch):
    """An assistant whose function and schema hold NaN/-Infinity, and a thread whose message holds NaN."""
    fresh_data_dir(monkeypatch, tmp_path)
    rt = session.get_runtime()
    a = rt.create_assistant(model=EMBEDDED_MODEL_ID, name="poisoned",
                            tools=[{"type": "function", "function": {"name": "f", "parameters": {
                                "type": "object", "properties": {"n": {"type": "number", "maximum": 5}}}}}],
                            response_format={"type": "json_schema", "json_schema": {
                                "name": "s", "schema": {"type": "object", "minProperties": 1}}})
    t = rt.create_thread(metadata={"assistant_id": a["id"]}, messages=[{"role": "user", "content": [
        {"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}])
    with sqlite3.connect(rt.settings.db_path) as conn:
        row = json.loads(conn.execute("SELECT data FROM assistants WHERE id = ?", (a["id"],)).fetchone()[0])
        row["tools"][0]["function"]["parameters"]["properties"]["n"]["maximum"] = float("nan")
        row["response_format"]["json_schema"]["schema"]["minProperties"] = float("-inf")
        conn.execute("UPDATE assistants SET data = ? WHERE id = ?", (json.dumps(row), a["id"]))
        msg = json.loads(conn.execute("SELECT data FROM messages WHERE thread_id = ?", (t["id"],)).fetchone()[0])
        msg["content"][1]["image_url"]["detail"] = float("nan")
        conn.execute("UPDATE messages SET data = ? WHERE id = ?", (json.dumps(msg), msg["id"]))
    yield rt, a["id"], t["id"]
    rt.close()
    session._runtime_for.clear()


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_threads_page_lists_a_thread_whose_rows_hold_nan(poisoned):
    thread_id = poisoned[2]
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/threads.py")
    run(at)
    assert thread_id in "".join(str(v) for df in at.dataframe for v in df.value.to_numpy().ravel())


def test_the_playground_editors_show_null_where_nan_was_stored(poisoned):
    at = run(AppTest.from_file(APP, default_timeout=60))
    (uid,) = at.session_state[K + "fn_ids"]
    function = at.text_area(key=K + f"fn_{uid}").value
    schema = at.session_state[K + "schema"]
    assert "NaN" not in function and json.loads(function)["parameters"]["properties"]["n"]["maximum"] is None
    assert "Infinity" not in schema and json.loads(schema)["schema"]["minProperties"] is None


def test_exports_are_json_every_parser_reads(poisoned):
    rt, assistant_id, thread_id = poisoned

    def strict(text: str):
        return json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in an export"))

    assert strict(export.export_assistants([rt.get_assistant(assistant_id)]))["assistants"][0]["name"] == "poisoned"
    assert strict(export.thread_json(export.load_thread(rt, thread_id)))["thread"]["id"] == thread_id
