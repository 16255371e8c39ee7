"""Settings and model aliases live in the database: saved once, seen by every process sharing it, imported once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from assistants.config import write_settings_file
from assistants.runtime import Runtime
from assistants.shared_settings import import_settings_file
from assistants.store import open_store
from tests.conftest import database_url_for, make_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.ui import fresh_data_dir

pytestmark = pytest.mark.both_databases

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-proj-SETTINGSDB0123456789wxyz"

# Process A: a Runtime of its own over the same database, printing its aliases and servers whenever they change.
WATCHER = """
import json, sys, time
from assistants.config import load_settings
from assistants.runtime import Runtime
rt = Runtime(load_settings())
last = None
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    now = {"aliases": rt.settings.aliases, "backends": [[b.name, b.base_url] for b in rt.settings.backends],
           "resolves": rt.router.aliases.get("gpt-4o-mini")}
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
    time.sleep(0.02)
rt.close()
"""


@pytest.fixture
def env(tmp_path, monkeypatch, db):
    """This process's environment for a Runtime of its own: no model servers, nothing from the developer's shell."""
    fresh_data_dir(monkeypatch, tmp_path / "a", "PLAYGROUND_API_KEYS")
    for name, value in (("PLAYGROUND_EMBEDDED_MODEL", "0"), ("PLAYGROUND_OLLAMA_AUTODETECT", "0"),
                        ("PLAYGROUND_DATABASE_URL", database_url_for(tmp_path / "a"))):
        monkeypatch.setenv(name, value)
    return tmp_path / "a"


def _other_instance_env(tmp_path: Path, data_dir: Path) -> dict:
    """Another instance's environment: on PostgreSQL another machine (its own data dir, the same database)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if env["PLAYGROUND_DATABASE_URL"]:
        env["PLAYGROUND_DATA_DIR"] = str(tmp_path / "b")
    return env


def test_the_document_round_trips_with_a_version_that_only_grows(tmp_path, db):
    store = open_store(make_settings(tmp_path))
    try:
        assert store.settings_document() == (0, {}) and store.settings_version() == 0
        doc = {"aliases": {"gpt-4o-mini": "fake-model", "模型": "fake-model"}, "openai_api_key": SECRET,
               "openai_api_key_url": "http://gw/v1", "backends": [{"name": "lab", "base_url": "http://lab/v1",
                                                                    "api_key": "k"}], "default_model": "m"}
        assert store.save_settings_document(doc) == 1
        assert store.settings_document() == (1, doc)
        assert store.save_settings_document(dict(doc)) == 1  # nothing changed: no new version, nobody reloads
        less = {k: v for k, v in doc.items() if k not in ("openai_api_key", "openai_api_key_url")}
        assert store.save_settings_document(less) == 2  # a removed key counts as a change
        assert store.settings_document() == (2, less)
        assert store.save_settings_document({}) == 3 and store.settings_document() == (3, {})
        assert store.save_settings_document({"aliases": {"a": "b"}}, only_if_never_saved=True) is None
        assert store.settings_document() == (3, {})
        for bad in (["not", "an", "object"], "text", {1: "x"}):
            with pytest.raises(ValueError, match="JSON object"):
                store.save_settings_document(bad)
        assert store.settings_version() == 3
    finally:
        store.close()


def test_settings_json_is_imported_once_and_never_lost(env, caplog):
    old = {"aliases": {"gpt-4o-mini": "fake-model"}, "openai_api_key": SECRET, "openai_api_key_url": "http://gw/v1",
           "openai_base_url": "http://gw/v1", "backends": [{"name": "lab", "base_url": "http://lab/v1", "api_key": ""}]}
    write_settings_file(env / "settings.json", old)
    with caplog.at_level(logging.WARNING, logger="assistants.shared_settings"):
        rt = Runtime()
    try:
        assert rt.saved_settings() == old
        assert rt.settings.aliases == {"gpt-4o-mini": "fake-model"} and rt.router.aliases["gpt-4o-mini"] == "fake-model"
        assert [(b.name, b.base_url, b.api_key) for b in rt.settings.all_backends()] == [
            ("openai", "http://gw/v1", SECRET), ("lab", "http://lab/v1", "")]  # the key kept its URL
    finally:
        rt.close()
    assert not (env / "settings.json").exists()
    assert json.loads((env / "settings.json.imported").read_text()) == old  # renamed, never deleted
    said = _said(caplog)
    assert len(said) == 1 and "imported" in said[0] and str(env / "settings.json") in said[0]
    assert SECRET not in caplog.text and SECRET not in repr(rt.settings)

    caplog.clear()
    rt = Runtime()  # the next start: nothing to import, the settings are the database's
    try:
        assert rt.settings.aliases == {"gpt-4o-mini": "fake-model"} and not _said(caplog)
        rt.save_settings({"aliases": {"gpt-4.1": "fake-model"}})
    finally:
        rt.close()

    # An old copy put back (a backup) does not overwrite settings saved since: it is set aside, and the log says so.
    write_settings_file(env / "settings.json", old)
    with caplog.at_level(logging.WARNING, logger="assistants.shared_settings"):
        rt = Runtime()
    try:
        assert rt.settings.aliases == {"gpt-4.1": "fake-model"}
    finally:
        rt.close()
    assert len(_said(caplog)) == 1 and "NOT imported" in caplog.text and "settings.json.not-imported" in caplog.text
    assert json.loads((env / "settings.json.not-imported").read_text()) == old
    assert json.loads((env / "settings.json.imported").read_text()) == old  # the first copy is still there


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "assistants.shared_settings"]


def test_an_unreadable_or_hostile_settings_json_is_left_alone(tmp_path, db):
    store = open_store(make_settings(tmp_path))
    try:
        path = tmp_path / "settings.json"
        path.write_text("{not json")
        note = import_settings_file(store, path)
        assert "not valid JSON" in note and "not imported" in note and path.exists()
        assert store.settings_document() == (0, {})
        path.write_text("[1, 2]")  # JSON, not a settings document
        assert "not a JSON object" in import_settings_file(store, path)
        assert path.exists() and store.settings_document() == (0, {})
        path.write_text(json.dumps({"aliases": {"x\u0000y": "m"}, "default_model": "'; DROP TABLE settings; --"}))
        assert "imported" in import_settings_file(store, path)
        assert store.settings_document()[1]["default_model"] == "'; DROP TABLE settings; --"
        assert import_settings_file(store, path) is None  # renamed: nothing left to import
    finally:
        store.close()


def _watch(proc: subprocess.Popen, want, timeout: float) -> dict:
    """The first state process A prints that `want` accepts (A prints each change at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"process A ended (exit {proc.poll()})")
        state = json.loads(line)
        if want(state):
            return state
    raise AssertionError(f"process A did not see the change within {timeout} s (last: {state})")


def test_a_change_saved_by_one_process_reaches_another_within_a_second(env, tmp_path):
    rt = Runtime()
    proc = subprocess.Popen([sys.executable, "-c", WATCHER], cwd=ROOT, env=_other_instance_env(tmp_path, env),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert _watch(proc, lambda s: True, 60) == {"aliases": {}, "backends": [], "resolves": None}
        for _ in range(3):  # more than once: every change is seen, not only the first
            for aliases, backends in (({"gpt-4o-mini": "fake-model"}, []),
                                      ({"gpt-4o-mini": "fake-model"}, [["lab", "http://lab/v1"]]),
                                      ({}, [["lab", "http://lab:8000/v1"]])):
                rt.save_settings({"aliases": aliases, "backends": [{"name": n, "base_url": u, "api_key": SECRET}
                                                                  for n, u in backends]})
                t0 = time.monotonic()  # saved (and applied in this process)
                seen = _watch(proc, lambda s, a=aliases, b=backends: s["aliases"] == a and s["backends"] == b, 5)
                # ~0.3 s here; the bound leaves room for a loaded machine, below PostgreSQL's 5 s safety-net poll.
                assert time.monotonic() - t0 < 1.5, "process A took too long to see the change"
                assert seen["resolves"] == aliases.get("gpt-4o-mini")  # its router too, not only its settings
    finally:
        proc.kill()
        proc.wait()
        rt.close()


def test_an_alias_added_in_the_playground_resolves_in_an_api_server(env, tmp_path):
    from components import settings_form as form
    from tests.server.conftest import free_port
    from tests.ui.test_other_pages import open_page

    with FakeOpenAIServer(models=("lab-model",)) as model:
        port = free_port()
        server_env = {**_other_instance_env(tmp_path, env), "PLAYGROUND_BACKENDS": f"lab={model.base_url}"}
        proc = subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(port), "--log-level",
                                 "warning"], cwd=ROOT, env=server_env, stderr=subprocess.PIPE, text=True)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        try:
            deadline = time.monotonic() + 90  # a loaded machine takes a while to start a server
            while True:
                try:
                    assert "gpt-4o-mini" not in [m.id for m in client.models.list()]
                    break
                except openai.APIConnectionError:
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.1)

            at = open_page("settings")  # the Playground's Settings page, in this process
            at.text_input(key=form.OPENAI_KEY).set_value(SECRET)
            at.text_input(key=form.OPENAI_URL).set_value(model.base_url)
            at.text_area(key=form.ALIASES).set_value("gpt-4o-mini = lab-model").run()
            at.button(key="settings_save").click().run()
            assert "Saved" in at.success[0].value, [e.value for e in at.error]

            t0 = time.monotonic()
            while "gpt-4o-mini" not in (ids := [m.id for m in client.models.list()]):
                assert time.monotonic() - t0 < 2, ids
                time.sleep(0.05)
            assistant = client.beta.assistants.create(model="gpt-4o-mini")
            thread = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
            run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                           poll_interval_ms=20)
            assert run.status == "completed", run.last_error
            assert model.requests[-1]["model"] == "lab-model"  # the alias, resolved by the API server
            # The key saved with that URL went there (its own URL), and no API answer carries it.
            assert f"Bearer {SECRET}" in [v for h in model.headers for k, v in h.items() if k.lower() == "authorization"]
            for answer in (client.models.list(), client.beta.assistants.retrieve(assistant.id), run):
                assert SECRET not in json.dumps(answer.model_dump() if hasattr(answer, "model_dump")
                                                else [m.model_dump() for m in answer])
        finally:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            import session

            session.get_runtime().close()
            session._runtime_for.clear()
    assert SECRET not in err  # nor in what the server logged
