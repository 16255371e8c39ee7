"""Two real API servers (`python -m assistants.server`) on one data dir, driven through the openai SDK."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import openai
import pytest

from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runs.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def servers(shared_dir):
    with FakeOpenAIServer() as model:
        env = {**os.environ, "PLAYGROUND_DATA_DIR": str(shared_dir), "PLAYGROUND_EMBEDDED_MODEL": "0",
               "PLAYGROUND_OLLAMA_AUTODETECT": "0", "PLAYGROUND_BACKENDS": f"fake={model.base_url}",
               "PLAYGROUND_DEFAULT_MODEL": "fake-model", "PLAYGROUND_RUN_LEASE_SECONDS": "2",
               "PYTHONPATH": str(ROOT)}
        env.pop("PLAYGROUND_API_KEYS", None)
        env["PLAYGROUND_DATABASE_URL"] = database_url_for(shared_dir)  # "" on SQLite
        procs, clients = [], []
        try:
            for _ in range(2):
                port = _free_port()
                procs.append(subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(port),
                                               "--log-level", "warning"], cwd=ROOT, env=env))
                clients.append(openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0))
                deadline = time.monotonic() + 30
                while True:
                    try:
                        clients[-1].models.list()
                        break
                    except openai.APIConnectionError:
                        assert time.monotonic() < deadline and procs[-1].poll() is None
                        time.sleep(0.1)
            yield model, clients
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_a_run_streaming_on_server_a_is_cancelled_through_server_b(servers):
    model, (a, b) = servers
    model.add({"text": "word " * 2000, "chunk_delay": 0.01})
    assistant = a.beta.assistants.create(model="fake-model")
    thread = a.beta.threads.create(messages=[{"role": "user", "content": "talk"}])
    run = a.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    deadline = time.monotonic() + 10
    while not b.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    assert b.beta.threads.runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    final = b.beta.threads.runs.poll(run.id, thread_id=thread.id, poll_interval_ms=20)
    assert final.status == "cancelled" and time.monotonic() - t0 < 1.5
    assert a.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "cancelled"
    b.beta.threads.messages.create(thread_id=thread.id, role="user", content="again")
    again = b.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20)
    assert again.status == "completed"
