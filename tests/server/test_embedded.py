"""The real embedded model behind the server: the seed's client code, unchanged, with gpt-4o-mini as an alias."""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path

import pytest

from assistants.config import EMBEDDED_MODEL_ID
from tests.server.conftest import running_api

SEED = Path(__file__).with_name("seed_client.py")


class SeedRunEnded(AssertionError):
    """The seed's run ended without completing; its `while run.status != "completed"` loop would never exit."""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    # Three tool rounds at most: SmolLM2 tends to call the code interpreter again and again.
    with running_api(tmp_path_factory.mktemp("embedded"), embedded_enabled=True, api_keys=(), max_tool_rounds=3,
                     aliases={"gpt-4o-mini": EMBEDDED_MODEL_ID}) as running:
        yield running


def test_small_run_with_the_embedded_model(client):
    assistant = client.beta.assistants.create(model=EMBEDDED_MODEL_ID, instructions="Answer in one short sentence.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "What colour is the sky?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id,
                                                   max_completion_tokens=16, temperature=0)
    assert run.status in ("completed", "incomplete"), run.last_error
    assert 0 < run.usage.completion_tokens <= 16 and run.usage.prompt_tokens > 0
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.run_id == run.id and reply.content[0].text.value.strip()


def test_models_list_gives_the_local_models_size_and_context(client):
    model = next(m for m in client.models.list() if m.id == EMBEDDED_MODEL_ID)
    assert model.owned_by == "embedded"
    assert model.model_extra["size_bytes"] > 50_000_000 and model.model_extra["context_length"] == 8192


# The tiny model tends to repeat its code_interpreter call; the engine then asks it to answer (tool_choice
# "none"), so the seed's poll-until-completed loop ends. A run that ends otherwise fails the test.
def test_seed_client_code_runs_unchanged(api, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "no-keys-configured")
    real_sleep, started = time.sleep, time.monotonic()

    def quick_sleep(seconds: float) -> None:
        # The seed polls every 5 s until "completed": poll faster, and stop where it would spin forever.
        run = sys._getframe(1).f_globals.get("run")
        if run is not None and run.status in ("failed", "cancelled", "expired", "incomplete"):
            raise SeedRunEnded(f"the seed's run ended {run.status}: {run.last_error or run.incomplete_details}")
        assert time.monotonic() - started < 120, "the seed's run did not finish in 120 s"
        real_sleep(min(seconds, 0.1))

    monkeypatch.setattr(time, "sleep", quick_sleep)
    namespace = runpy.run_path(str(SEED))
    out = capsys.readouterr().out
    assert namespace["run"].status == "completed"
    assert "You have $10,000 to invest" in out
    assert "AssistantDeleted(" in out and namespace["response"].deleted
    assert namespace["response"].id == namespace["assistant"].id  # the newest assistant is the seed's
    replies = [m for m in namespace["messages"].data if m.role == "assistant"]
    assert replies and replies[0].content[0].text.value.strip()
