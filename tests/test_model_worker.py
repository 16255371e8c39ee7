"""Local models run in a supervised worker process: crashes fail one run with a clear error, the app keeps serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.providers.base import Cancelled
from assistants.providers.embedded import EmbeddedProvider
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import database_url_for, wait_run

ROOT = Path(__file__).resolve().parents[1]
COUNT = [{"role": "user", "content": "Count from one to one hundred, in words."}]


def _runtime(tmp_path: Path, provider: EmbeddedProvider) -> Runtime:
    settings = Settings(data_dir=tmp_path, embedded_enabled=False, default_model=EMBEDDED_MODEL_ID, ollama_autodetect=False,
                        database_url=database_url_for(tmp_path))
    return Runtime(settings, router=ModelRouter([provider]))


def _reply_run(rt: Runtime, assistant_id: str, max_tokens: int = 16) -> dict:
    t = rt.create_thread(messages=[{"role": "user", "content": "Say hello."}])
    run = rt.create_run(t["id"], assistant_id=assistant_id, max_completion_tokens=max_tokens, temperature=0)
    return wait_run(rt, t["id"], run["id"], timeout=120)


def test_worker_killed_mid_generation_fails_the_run_and_the_next_run_works(tmp_path):
    provider = EmbeddedProvider()
    rt = _runtime(tmp_path, provider)
    try:
        a = rt.create_assistant(model=EMBEDDED_MODEL_ID, temperature=0)
        t = rt.create_thread(messages=COUNT)
        killed = []
        for event, _data in rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=300, stream=True):
            if event == "thread.message.delta" and not killed:
                killed.append(provider.worker().pid)
                os.kill(killed[0], signal.SIGKILL)
        run = rt.list_runs(t["id"])["data"][0]
        assert run["status"] == "failed"
        message = run["last_error"]["message"]
        assert "local model process was killed (SIGKILL)" in message and "fresh model process" in message
        assert "out-of-memory" in message  # what a SIGKILL usually means, so the user knows what to try
        # The app's process is still here and serving: the next run starts a fresh worker and completes.
        again = _reply_run(rt, a["id"])
        assert again["status"] in ("completed", "incomplete"), again["last_error"]
        assert provider.worker().pid not in (None, killed[0])
    finally:
        rt.close()


def test_worker_dying_of_sigill_at_start_is_a_clear_error_and_the_next_run_works(tmp_path):
    marker = tmp_path / "crashed-once"
    provider = EmbeddedProvider(worker_command=[sys.executable, str(ROOT / "tests/fakes/crashing_worker.py"), str(marker)])
    rt = _runtime(tmp_path, provider)
    try:
        a = rt.create_assistant(model=EMBEDDED_MODEL_ID, temperature=0)
        run = _reply_run(rt, a["id"])
        assert marker.exists() and run["status"] == "failed"
        message = run["last_error"]["message"]
        assert "local model process crashed (SIGILL) while loading 'smollm2-135m-instruct'" in message
        assert "portable build flags from the README" in message and "pick another model" in message
        again = _reply_run(rt, a["id"])  # the fake crashes only once, then runs the real worker
        assert again["status"] in ("completed", "incomplete"), again["last_error"]
    finally:
        rt.close()


def test_cancel_stops_the_worker_quickly_and_it_keeps_serving():
    provider = EmbeddedProvider()
    provider.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0},
                  on_text=lambda _: None, cancel=threading.Event())  # warm: the worker is running
    pid = provider.worker().pid
    cancel, first = threading.Event(), threading.Event()
    timing = {}

    def on_text(_piece):
        first.set()

    def cancel_soon():
        first.wait(60)
        timing["cancelled_at"] = time.monotonic()
        cancel.set()

    threading.Thread(target=cancel_soon, daemon=True).start()
    with pytest.raises(Cancelled):
        provider.chat({"messages": COUNT, "max_tokens": 400, "temperature": 0}, on_text=on_text, cancel=cancel)
    assert time.monotonic() - timing["cancelled_at"] < 0.5
    assert provider.worker().pid == pid  # stopped between two tokens, not killed: no restart cost for the next run
    result = provider.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0},
                           on_text=lambda _: None, cancel=threading.Event())
    assert result.completion_tokens > 0


def test_the_worker_loads_the_model_with_the_amx_safe_setting():
    provider = EmbeddedProvider()
    provider.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0},
                  on_text=lambda _: None, cancel=threading.Event())
    info = provider.worker().info
    # A build with AMX kernels (native, on an AMX CPU) crashes on the first token unless extra buffer types are off.
    assert not info["amx_compiled"] or info["use_extra_bufts"] is False
    assert info["pid"] != os.getpid() and info["chat_template"]


def test_llama_cpp_is_never_imported_in_the_apps_process(tmp_path):
    script = (
        "import sys, threading\n"
        "from assistants.providers.embedded import EmbeddedProvider\n"
        "r = EmbeddedProvider().chat({'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 3, 'temperature': 0},"
        " on_text=lambda _: None, cancel=threading.Event())\n"
        "assert r.completion_tokens > 0\n"
        "print('llama_cpp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_cancel_while_a_long_prompt_is_read_returns_quickly():
    provider = EmbeddedProvider()
    provider.worker().start()
    cancel = threading.Event()
    long_prompt = [{"role": "user", "content": "Summarise this. " + "The quick brown fox jumps over the lazy dog. " * 300}]
    cancelled_at = []
    threading.Timer(0.2, lambda: (cancelled_at.append(time.monotonic()), cancel.set())).start()
    with pytest.raises(Cancelled):
        provider.chat({"messages": long_prompt, "max_tokens": 64, "temperature": 0}, on_text=lambda _: None, cancel=cancel)
    assert time.monotonic() - cancelled_at[0] < 0.8
    # Reading the prompt cannot be interrupted between tokens: the worker is stopped instead, within the grace.
    result = provider.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "temperature": 0},
                           on_text=lambda _: None, cancel=threading.Event())
    assert result.completion_tokens > 0
