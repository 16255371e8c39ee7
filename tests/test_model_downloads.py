"""Model downloads against a fake Hugging Face hub on loopback that hands out the real SmolLM2 GGUF file."""

from __future__ import annotations

import errno
import hashlib
import json
import subprocess
import sys
import time

import pytest

from assistants import hub_fetch
from assistants.model_catalog import CATALOG, fits, model_id_for, suggest
from assistants.model_downloads import DownloadError, DownloadManager, human_bytes
from assistants.providers.embedded import model_path
from tests.fakes.hf_hub import COMMIT, FakeHub, HubFile, HubServer

pytestmark = pytest.mark.no_database  # downloads need no store; the two tests that run the model do

REPO, FILE = CATALOG[0].repo, CATALOG[0].filename      # a catalog entry, served with SmolLM2's bytes
MODEL_ID = model_id_for(FILE)
GATED = "meta-llama/Gated-Instruct-GGUF"


@pytest.fixture(scope="module")
def gguf() -> HubFile:
    return HubFile(model_path())


@pytest.fixture
def hub(gguf, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# a model card\n")
    fake = FakeHub(repos={REPO: {FILE: gguf, "README.md": HubFile(readme)}, GATED: {"gated-q4_k_m.gguf": gguf}},
                   gated={GATED})
    with HubServer(fake) as served:
        yield served


@pytest.fixture
def manager(hub, tmp_path):
    return DownloadManager(tmp_path / "models", endpoint=hub.url)


def finish(manager: DownloadManager, model_id: str = MODEL_ID, timeout: float = 60):
    d = manager.wait(model_id, timeout)
    assert d is not None and not d.active, d
    return d


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(manager: DownloadManager) -> list[str]:
    return sorted(p.name for p in manager.partial_dir.glob("*")) if manager.partial_dir.exists() else []


def test_full_download_lands_whole_in_the_models_folder(manager, hub, gguf):
    hub.throttle = 60_000_000  # ~1.6 s, long enough to look inside while it runs
    manager.start(REPO, FILE)
    seen_partial = False
    while (d := manager.get(MODEL_ID)).active:
        # While it downloads, the models folder has no .gguf: the model list never sees half a file.
        assert not list(manager.models_dir.glob("*.gguf"))
        seen_partial |= any(p.suffix == ".part" for p in manager.partial_dir.glob("*"))
        time.sleep(0.05)
    assert d.state == "done" and d.error is None, d.error
    assert seen_partial
    target = manager.models_dir / f"{MODEL_ID}.gguf"
    assert sha256(target) == gguf.sha256 and target.stat().st_size == gguf.size
    assert [m.model_id for m in manager.installed()] == [MODEL_ID]
    assert leftovers(manager) == []
    # model_info with files metadata, then HEAD and GET pinned to the commit the metadata came from.
    assert hub.log[0]["path"] == f"/api/models/{REPO}/revision/main"
    assert [(r["method"], r["path"]) for r in hub.log[1:]] == [
        ("HEAD", f"/{REPO}/resolve/{COMMIT}/{FILE}"), ("GET", f"/{REPO}/resolve/{COMMIT}/{FILE}")]


def test_resumes_when_the_connection_drops_half_way(manager, hub, gguf):
    hub.drop_after, hub.drops = gguf.size // 2, 1
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "done", d.error
    ranges = [r["range"] for r in hub.gets()]
    # It asks for the rest from the last byte written (bytes still in the client's buffer are fetched again).
    assert len(ranges) == 2 and ranges[0] is None and 0 < int(ranges[1][6:-1]) <= gguf.size // 2
    assert sha256(manager.models_dir / f"{MODEL_ID}.gguf") == gguf.sha256


def test_network_gone_keeps_the_partial_file_and_resume_continues_it(manager, hub, gguf, tmp_path):
    hub.drop_after, hub.drops, hub.then_offline = gguf.size // 3, 1, True
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "failed" and d.resumable
    assert "connection to the Hugging Face hub was lost after" in d.error and "Resume" in d.error
    assert not list(manager.models_dir.glob("*.gguf"))
    kept = (manager.partial_dir / f"{MODEL_ID}.gguf.part").stat().st_size
    assert 0 < kept <= gguf.size // 3 and d.done_bytes == kept

    # A restarted Playground finds the partial download and offers to resume it.
    again = DownloadManager(manager.models_dir, endpoint=hub.url)
    paused = again.get(MODEL_ID)
    assert paused.state == "failed" and paused.resumable and paused.done_bytes == kept

    hub.offline = False
    again.start(REPO, FILE)
    d = finish(again)
    assert d.state == "done", d.error
    assert hub.gets()[-1]["range"] == f"bytes={kept}-"
    assert sha256(again.models_dir / f"{MODEL_ID}.gguf") == gguf.sha256
    assert leftovers(again) == []


def test_disk_full_mid_download_keeps_what_was_fetched(manager, hub, gguf, monkeypatch):
    real_write = hub_fetch._Progress.write

    def write(self, chunk):
        if self._f.tell() + len(chunk) > gguf.size // 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, chunk)

    monkeypatch.setattr(hub_fetch._Progress, "write", write)
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "failed" and d.resumable and "disk filled up" in d.error and "Resume" in d.error
    assert 0 < d.done_bytes <= gguf.size // 2
    assert not list(manager.models_dir.glob("*.gguf"))

    monkeypatch.setattr(hub_fetch._Progress, "write", real_write)
    manager.start(REPO, FILE)
    assert finish(manager).state == "done"
    assert hub.gets()[-1]["range"] == f"bytes={d.done_bytes}-"
    assert sha256(manager.models_dir / f"{MODEL_ID}.gguf") == gguf.sha256


def test_checksum_mismatch_is_refused_and_the_file_removed(manager, hub, gguf):
    hub.corrupt = True
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "failed" and not d.resumable
    assert "Checksum mismatch" in d.error and gguf.sha256[:12] in d.error and "removed" in d.error
    assert not list(manager.models_dir.glob("*.gguf")) and leftovers(manager) == []


def test_cancel_stops_and_removes_the_partial_file(manager, hub):
    hub.throttle = 8_000_000  # 12 s for the whole file
    manager.start(REPO, FILE)
    deadline = time.monotonic() + 20
    while manager.get(MODEL_ID).done_bytes == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    d = manager.get(MODEL_ID)
    assert d.state == "downloading" and d.speed > 0 and d.eta_seconds > 0 and 0 < d.fraction < 1
    manager.cancel(MODEL_ID)
    d = finish(manager, timeout=20)
    assert d.state == "cancelled"
    assert not list(manager.models_dir.glob("*.gguf")) and leftovers(manager) == []


def test_not_enough_disk_space_is_refused_before_downloading(hub, gguf, tmp_path):
    manager = DownloadManager(tmp_path / "models", endpoint=hub.url, free_bytes=lambda path: 10_000_000)
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "failed" and not d.resumable
    assert f"needs {human_bytes(gguf.size)} more" in d.error and "only 10.0 MB is free" in d.error
    assert hub.gets() == [] and leftovers(manager) == [] and not list(manager.models_dir.glob("*.gguf"))


def test_missing_repo_file_or_revision_in_plain_words(manager, hub):
    manager.start("nobody/No-Such-Model-GGUF", "model-q4_k_m.gguf")
    d = finish(manager, "model-q4_k_m")
    assert d.state == "failed"
    assert "no repository “nobody/No-Such-Model-GGUF”" in d.error and "Repository not found" in d.error

    manager.start(REPO, "qwen2.5-1.5b-instruct-q8_0.gguf")
    d = finish(manager, "qwen2.5-1.5b-instruct-q8_0")
    assert d.state == "failed"
    assert f"has no file “qwen2.5-1.5b-instruct-q8_0.gguf”. Its GGUF files: {FILE}." in d.error

    manager.start(REPO, FILE, revision="v9")
    d = finish(manager)
    assert d.state == "failed" and "no branch, tag or commit “v9”" in d.error
    assert leftovers(manager) == [] and manager.installed() == []


def test_gated_repo_needs_hf_token_and_hf_endpoint_is_honoured(hub, gguf, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # no endpoint given: the environment decides
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no saved login token either
    manager = DownloadManager(tmp_path / "models")
    manager.start(GATED, "gated-q4_k_m.gguf")
    d = finish(manager, "gated-q4_k_m")
    assert d.state == "failed" and "is gated" in d.error and "HF_TOKEN" in d.error
    assert "Access to model" in d.error  # the hub's own words

    monkeypatch.setenv("HF_TOKEN", hub.token)
    manager.start(GATED, "gated-q4_k_m.gguf")
    d = finish(manager, "gated-q4_k_m")
    assert d.state == "done", d.error
    assert hub.gets()[-1]["authorization"] == f"Bearer {hub.token}"


def test_hf_hub_offline_says_so(manager, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    manager.start(REPO, FILE)
    d = finish(manager)
    assert d.state == "failed" and "HF_HUB_OFFLINE is set" in d.error and hub.log == []


def test_bad_names_are_refused_before_asking_the_hub(manager, hub):
    for repo, filename, words in [
        ("not a repo", FILE, "owner/name"),
        (REPO, "model.safetensors", "not a GGUF file name"),
        (REPO, "../../etc/passwd.gguf", "not a GGUF file name"),
        (REPO, "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "split into several files"),
    ]:
        with pytest.raises(DownloadError, match=words):
            manager.start(repo, filename)
    assert hub.log == []
    with pytest.raises(DownloadError):
        manager.delete("../secrets")


def test_delete_and_download_again(manager, hub):
    manager.start(REPO, FILE)
    assert finish(manager).state == "done"
    with pytest.raises(DownloadError, match="already in the models folder"):
        manager.start(REPO, FILE)
    manager.delete(MODEL_ID)
    assert manager.installed() == [] and manager.get(MODEL_ID) is None
    with pytest.raises(DownloadError, match="not in the models folder"):
        manager.delete(MODEL_ID)


def test_one_download_at_a_time_per_model(manager, hub):
    hub.throttle = 20_000_000
    manager.start(REPO, FILE)
    with pytest.raises(DownloadError, match="already downloading"):
        manager.start(REPO, FILE)
    assert manager.any_active()
    manager.cancel(MODEL_ID)
    finish(manager, timeout=20)
    assert not manager.any_active()


def test_two_processes_sharing_the_folder_never_write_the_same_partial_file(manager, hub, tmp_path):
    hub.throttle = 20_000_000
    manager.start(REPO, FILE)
    deadline = time.monotonic() + 20
    while manager.get(MODEL_ID).done_bytes == 0:  # its partial file is being written
        assert time.monotonic() < deadline
        time.sleep(0.05)
    other = DownloadManager(manager.models_dir, endpoint=hub.url)  # as another Playground process would
    other.start(REPO, FILE)
    d = finish(other)
    assert d.state == "failed" and "another Playground process" in d.error
    other.discard(MODEL_ID)  # forgets its own failed attempt, leaves the other process's file alone
    assert other.get(MODEL_ID) is None and manager.get(MODEL_ID).active
    assert (manager.partial_dir / f"{MODEL_ID}.gguf.part").exists()
    manager.cancel(MODEL_ID)
    assert finish(manager).state == "cancelled"


def test_the_downloaded_file_is_a_gguf_llama_cpp_loads(manager, hub):
    manager.start(REPO, FILE)
    assert finish(manager).state == "done"
    path = manager.models_dir / f"{MODEL_ID}.gguf"
    # In a child process: native code that fails must not take pytest down with it.
    code = ("import sys, json; from llama_cpp import Llama\n"
            "m = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)\n"
            "print(json.dumps({'tokens': len(m.tokenize(b'Hello there')), 'ctx': m.n_ctx()}))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["tokens"] > 0 and info["ctx"] == 256


def test_catalog_entries_and_ram_hints():
    assert len(CATALOG) >= 4 and len({m.model_id for m in CATALOG}) == len(CATALOG)
    for m in CATALOG:
        assert m.filename.endswith(".gguf") and "q4_k_m" in m.filename.lower() and m.repo.count("/") == 1
        assert m.size_bytes < m.ram_bytes and m.licence and m.good_at
    assert {m.repo for m in CATALOG} >= {"Qwen/Qwen2.5-1.5B-Instruct-GGUF", "Qwen/Qwen2.5-3B-Instruct-GGUF"}
    gib = 2**30  # machines are sold by GiB and show the OS a little less
    assert suggest(2 * gib) is None
    assert suggest(int(3.8 * gib)).name == "Qwen2.5 1.5B Instruct"
    assert suggest(int(7.7 * gib)).name == "Qwen2.5 3B Instruct"
    assert suggest(int(15.5 * gib)).name == "Qwen2.5 7B Instruct"
    assert fits(CATALOG[0], None) is None and fits(CATALOG[0], 16 * gib) and not fits(CATALOG[-1], 8 * gib)


@pytest.mark.both_databases
def test_downloaded_model_answers_a_chat_and_a_forced_tool_call(hub, tmp_path):
    from assistants.config import Settings
    from assistants.runtime import Runtime
    from tests.conftest import database_url_for, wait_run

    settings = Settings(data_dir=tmp_path / "data", embedded_enabled=True, database_url=database_url_for(tmp_path / "data"))
    manager = DownloadManager(settings.models_dir, endpoint=hub.url)
    manager.start(REPO, FILE)
    assert finish(manager).state == "done"
    rt = Runtime(settings)  # a fresh runtime: the downloaded model must be there without any registration
    try:
        fn = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"city": {"type": "string"}},
                                                              "required": ["city"]}}}
        a = rt.create_assistant(model=MODEL_ID, tools=[fn], temperature=0)
        t = rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], tool_choice="none",
                                                  max_completion_tokens=16)["id"], timeout=120)
        assert run["status"] in ("completed", "incomplete"), run.get("last_error")
        assert run["model"] == MODEL_ID
        reply = rt.list_messages(t["id"])["data"][0]
        assert reply["role"] == "assistant" and reply["content"][0]["text"]["value"].strip()

        t = rt.create_thread(messages=[{"role": "user", "content": "What is the weather in Paris?"}])
        run = rt.create_run(t["id"], assistant_id=a["id"],
                            tool_choice={"type": "function", "function": {"name": "get_weather"}})
        run = wait_run(rt, t["id"], run["id"], timeout=120)
        assert run["status"] == "requires_action", run.get("last_error")
        call = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather"
        assert isinstance(json.loads(call["function"]["arguments"]).get("city"), str)
    finally:
        rt.close()


def test_installed_models_say_their_context_and_whether_they_can_run(tmp_path):
    from tests.fakes.gguf_writer import llama_metadata, write_gguf

    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "smol.gguf").symlink_to(model_path())
    write_gguf(folder / "half.gguf", llama_metadata(), {"w": 100_000}, cut=5000)
    write_gguf(folder / "huge.gguf", llama_metadata(context=131072, layers=4000, embd=16384, heads=128))
    half, huge, smol = DownloadManager(folder).installed()
    assert (smol.model_id, smol.usable, smol.error, smol.context_length) == ("smol", True, "", 8192)
    assert 0 < smol.memory_bytes < 2**30
    assert not half.usable and "truncated" in half.error
    assert not huge.usable and "it needs about" in huge.error and "GB" in huge.error


def _workers(path) -> list:
    from assistants.providers.worker_client import live_workers

    return [w for w in live_workers() if w.path.resolve() == path.resolve()]


def _gone(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.both_databases
def test_deleting_a_model_stops_its_worker_process_first(tmp_path):
    import shutil

    from assistants.config import Settings
    from assistants.errors import BadRequest
    from assistants.runtime import Runtime
    from tests.conftest import database_url_for, wait_run

    settings = Settings(data_dir=tmp_path / "data", embedded_enabled=False, ollama_autodetect=False,
                        database_url=database_url_for(tmp_path / "data"))
    settings.models_dir.mkdir(parents=True)
    path = settings.models_dir / "smol-copy.gguf"
    shutil.copyfile(model_path(), path)
    rt = Runtime(settings)
    try:
        a = rt.create_assistant(model="smol-copy", temperature=0)
        t = rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16)["id"],
                       timeout=120)
        assert run["status"] in ("completed", "incomplete"), run.get("last_error")
        [worker] = _workers(path)  # the run left its model's worker running, as it should
        pid = worker.pid
        manager = DownloadManager(settings.models_dir)

        # A worker answering a run is not killed mid-answer: the delete is refused and nothing changes.
        with worker._lock:  # as a chat holds it
            with pytest.raises(DownloadError, match=r"answering a run right now.*Nothing was deleted"):
                manager.delete("smol-copy")
        assert path.exists() and not _gone(pid)

        manager.delete("smol-copy")
        assert _gone(pid) and _workers(path) == [] and not path.exists()
        assert "smol-copy" not in {m["id"] for m in rt.list_models(refresh=True)}
        with pytest.raises(BadRequest, match="'smol-copy' is not served"):  # and no run starts its worker again
            rt.create_run(t["id"], assistant_id=a["id"])
        assert _workers(path) == []

        # Deleted by another process (the Playground while this is the API server): the next look at the folder
        # stops the worker, which would otherwise hold the deleted model's memory until this process ends.
        shutil.copyfile(model_path(), path)
        rt.list_models(refresh=True)
        run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16)["id"],
                       timeout=120)
        assert run["status"] in ("completed", "incomplete"), run.get("last_error")
        [worker] = _workers(path)
        pid = worker.pid
        path.unlink()
        assert "smol-copy" not in {m["id"] for m in rt.list_models(refresh=True)}
        assert _gone(pid)
    finally:
        rt.close()
