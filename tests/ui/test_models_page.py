"""AppTest of the Models page's downloaded list: what each model can do, and deleting one whose worker runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import session
from assistants.providers.embedded import model_path
from assistants.providers.worker_client import live_workers
from tests.conftest import wait_run
from tests.fakes.gguf_writer import llama_metadata, write_gguf

APP = str(Path(__file__).resolve().parents[2] / "app.py")
ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PLAYGROUND_BACKENDS", "PLAYGROUND_MODEL_ALIASES", "PLAYGROUND_DEFAULT_MODEL",
       "PLAYGROUND_MODELS_DIR")
BROKEN = "qwen2.5-3b-instruct-q4_k_m"  # a catalog model's file name, cut short


@pytest.fixture
def models(tmp_path, monkeypatch):
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLAYGROUND_EMBEDDED_MODEL", "0")
    monkeypatch.setenv("PLAYGROUND_OLLAMA_AUTODETECT", "0")
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copyfile(model_path(), folder / "smol-copy.gguf")
    write_gguf(folder / f"{BROKEN}.gguf", llama_metadata("Qwen"), {"w": 100_000}, cut=5000)
    yield folder
    session.get_runtime().close()
    session._runtime_for.clear()


def run_page(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_downloaded_models_say_what_they_can_do_and_delete_stops_the_worker(models):
    rt = session.get_runtime()
    a = rt.create_assistant(model="smol-copy", temperature=0)
    t = rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16)["id"],
                   timeout=120)
    assert run["status"] in ("completed", "incomplete"), run.get("last_error")
    [worker] = [w for w in live_workers() if w.path.resolve() == (models / "smol-copy.gguf").resolve()]
    pid = worker.pid

    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/models.py")
    run_page(at)
    rows = " ".join(m.value for m in at.markdown)
    assert "**smol-copy** · 98.4 MB · 8k context" in rows
    assert any("Needs about 0." in c.value and "GB of memory" in c.value for c in at.caption)
    [error] = [e.value for e in at.error]
    assert "truncated" in error and "Download it again" in error
    card = at.button(key=f"models_card_have_{BROKEN.replace('.', '_').replace('-', '_')}")
    assert card.label == "Downloaded, cannot run" and card.disabled

    at.button(key="models_have_delete_smol_copy").click()
    run_page(at)
    at.button(key="models_confirm_yes").click()
    run_page(at)
    assert any("Deleted smol-copy." in s.value for s in at.success)
    assert not (models / "smol-copy.gguf").exists() and not alive(pid)
    assert not [w for w in live_workers() if w.path.name == "smol-copy.gguf"]
    # The page refreshed the router: the picker's (cached) list no longer offers it.
    assert "smol-copy" not in {m["id"] for m in rt.list_models()}
    assert BROKEN in {m["id"] for m in rt.list_models()}
