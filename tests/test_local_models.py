"""The models folder: GGUF files listed from their headers, bad files explained, a real second model chatting."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from assistants.config import Settings
from assistants.providers import local
from assistants.providers.base import ProviderError
from assistants.providers.embedded import model_path
from assistants.providers.local import LocalModelsProvider, scan_models
from assistants.providers.worker_client import live_workers
from assistants.runtime import Runtime
from components.sidebar import model_facts
from tests.conftest import database_url_for, wait_run
from tests.fakes.gguf_writer import llama_metadata, write_gguf

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


def test_header_facts_are_listed_without_loading(tmp_path):
    write_gguf(tmp_path / "tiny-test.gguf", llama_metadata("Tiny Test", context=2048), {"a": 64, "b": 32})
    (tmp_path / "notes.txt").write_text("not a model")
    [info] = scan_models(tmp_path)
    assert (info.name, info.title, info.context_length, info.parameters, info.architecture) == (
        "tiny-test", "Tiny Test", 2048, 96, "llama")
    assert info.usable and not info.error and info.chat_template
    assert info.size_bytes == (tmp_path / "tiny-test.gguf").stat().st_size
    assert scan_models(tmp_path)[0] is info  # unchanged file: the header is not read again
    assert scan_models(tmp_path / "missing") == []


@pytest.mark.parametrize("make,words", [
    (lambda p: write_gguf(p, llama_metadata(), {"w": 100_000}, cut=1000), "truncated"),
    (lambda p: write_gguf(p, llama_metadata(), cut=700), "truncated"),  # cut inside the metadata
    (lambda p: p.write_bytes(b"PK\x03\x04" + b"\0" * 100), "not a GGUF file"),
    (lambda p: p.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (2**60).to_bytes(8, "little") * 2), "corrupt"),
    (lambda p: p.write_bytes(b"GGUF"), "truncated"),
])
def test_a_truncated_or_corrupt_file_is_listed_as_unusable_with_the_reason(tmp_path, make, words):
    make(tmp_path / "broken.gguf")
    [info] = scan_models(tmp_path)
    assert info.name == "broken" and not info.usable and words in info.error


def test_a_model_too_big_for_the_machine_says_how_much_it_needs(tmp_path):
    write_gguf(tmp_path / "huge.gguf", llama_metadata(context=131072, layers=4000, embd=16384, heads=128))
    [info] = scan_models(tmp_path)
    assert not info.usable and "Too big for this machine: it needs about" in info.error and "GB" in info.error


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny-chat.gguf").symlink_to(model_path())  # the SmolLM2 file under another name: a real second model
    write_gguf(folder / "half-download.gguf", llama_metadata(), {"w": 100_000}, cut=5000)
    return folder


@pytest.fixture
def local_rt(tmp_path, models_dir):
    settings = Settings(data_dir=tmp_path / "data", embedded_enabled=False, default_model="tiny-chat",
                        models_dir_override=models_dir, ollama_autodetect=False,
                        database_url=database_url_for(tmp_path / "data"))
    runtime = Runtime(settings)
    yield runtime
    runtime.close()


def test_folder_models_are_listed_with_size_and_context(local_rt, models_dir):
    entries = {m["id"]: m for m in local_rt.list_models()}
    chat = entries["tiny-chat"]
    assert chat["owned_by"] == "models-folder" and chat["usable"] is True
    assert chat["size_bytes"] == model_path().stat().st_size and chat["context_length"] == 8192
    broken = entries["half-download"]
    assert broken["usable"] is False and "truncated" in broken["error"]
    assert model_facts(chat) == "  ·  94 MB  ·  8k ctx" and model_facts(broken) == "  ·  unusable"
    assert model_facts({"size_bytes": int(1.1 * 2**30), "context_length": 32768}) == "  ·  1.1 GB  ·  32k ctx"


def test_a_new_file_shows_up_without_a_restart(local_rt, models_dir):
    assert "later" not in {m["id"] for m in local_rt.list_models()}
    write_gguf(models_dir / "later.gguf", llama_metadata("Later"))
    assert local_rt.router.resolve("later")[1] == "later"  # a model not in the cached list triggers a fresh look
    assert "later" in {m["id"] for m in local_rt.list_models(refresh=True)}


def test_a_folder_model_answers_and_calls_a_tool_with_valid_json(local_rt):
    a = local_rt.create_assistant(model="tiny-chat", instructions="You are a helpful assistant.", temperature=0)
    t = local_rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
    run = local_rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16)
    run = wait_run(local_rt, t["id"], run["id"], timeout=120)
    assert run["status"] in ("completed", "incomplete"), run["last_error"]
    assert local_rt.list_messages(t["id"])["data"][0]["content"][0]["text"]["value"].strip()
    a = local_rt.create_assistant(model="tiny-chat", tools=[WEATHER], temperature=0)
    t = local_rt.create_thread(messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    run = local_rt.create_run(t["id"], assistant_id=a["id"], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    run = wait_run(local_rt, t["id"], run["id"], timeout=120)
    assert run["status"] == "requires_action", run["last_error"]
    call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and isinstance(json.loads(call["function"]["arguments"]), dict)


def test_an_unusable_model_fails_its_run_with_the_reason_and_is_never_loaded(local_rt):
    before = {w.path for w in live_workers()}
    a = local_rt.create_assistant(model="half-download")
    t = local_rt.create_thread(messages=[{"role": "user", "content": "Hi"}])
    run = wait_run(local_rt, t["id"], local_rt.create_run(t["id"], assistant_id=a["id"])["id"])
    assert run["status"] == "failed" and "truncated" in run["last_error"]["message"]
    assert {w.path for w in live_workers()} == before


def test_a_model_that_does_not_fit_in_free_memory_is_refused_before_loading(models_dir, monkeypatch):
    monkeypatch.setattr(local, "mem_available", lambda: 50 * 2**20)
    provider = LocalModelsProvider(models_dir, worker_command=["false"])  # must never be started
    with pytest.raises(ProviderError, match=r"Not enough free memory to load 'tiny-chat': it needs about 0\.\d GB") as info:
        provider.chat({"model": "tiny-chat", "messages": [{"role": "user", "content": "Hi"}]},
                      on_text=lambda _: None, cancel=threading.Event())
    assert "0.0 GB is free" in info.value.message


def test_the_models_folder_is_hidden_from_the_backends_while_empty(tmp_path):
    rt = Runtime(Settings(data_dir=tmp_path, embedded_enabled=False, default_model="", ollama_autodetect=False,
                          models_dir_override=Path(tmp_path / "none"), database_url=database_url_for(tmp_path)))
    try:
        assert rt.router.catalog() == [] and rt.list_models() == []
    finally:
        rt.close()


def test_the_playground_picker_shows_size_and_context(tmp_path, models_dir, monkeypatch):
    import session
    from streamlit.testing.v1 import AppTest

    from components.sidebar import K

    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PLAYGROUND_BACKENDS", "PLAYGROUND_MODEL_ALIASES", "PLAYGROUND_DEFAULT_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path / "app"))
    monkeypatch.setenv("PLAYGROUND_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("PLAYGROUND_EMBEDDED_MODEL", "0")
    monkeypatch.setenv("PLAYGROUND_OLLAMA_AUTODETECT", "0")
    try:
        session.get_runtime().create_assistant(model="half-download", name="Local")
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        picker = at.selectbox(key=K + "model")
        assert "tiny-chat  ·  models-folder  ·  94 MB  ·  8k ctx" in picker.options
        assert "half-download  ·  models-folder  ·  unusable" in picker.options
        assert any("truncated" in c.value for c in at.caption)  # why the saved model cannot run
    finally:
        session.get_runtime().close()
        session._runtime_for.clear()


def test_a_file_llama_cpp_cannot_load_fails_with_a_clear_error(tmp_path):
    write_gguf(tmp_path / "header-only.gguf", llama_metadata())  # a whole header, but no real weights
    provider = LocalModelsProvider(tmp_path)
    with pytest.raises(ProviderError, match=r"Could not load the local model 'header-only' \(header-only.gguf\)"):
        provider.chat({"model": "header-only", "messages": [{"role": "user", "content": "Hi"}]},
                      on_text=lambda _: None, cancel=threading.Event())
