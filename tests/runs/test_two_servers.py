"""Two real API servers (`python -m assistants.server`) on one data dir, driven through the openai SDK."""

from __future__ import annotations

import time

import pytest

from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer
from tests.runs.instances import ApiServer, instance_env


@pytest.fixture
def servers(shared_dir):
    with FakeOpenAIServer() as model:
        env = instance_env(shared_dir, model.base_url, database_url_for(shared_dir), run_lease_seconds=2)
        procs = []
        try:
            for _ in range(2):
                procs.append(ApiServer(env))
            yield model, [p.client() for p in procs]
        finally:
            for p in procs:
                p.stop()


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
