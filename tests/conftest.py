"""Shared fixtures: a runtime over a temporary data dir with a scripted or embedded model."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from assistants.config import Settings
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.fakes.provider import ScriptedProvider


def make_settings(data_dir: Path, **overrides) -> Settings:
    base = dict(data_dir=Path(data_dir), embedded_enabled=False, default_model="fake-model", run_workers=4)
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def rt(tmp_path, provider):
    runtime = Runtime(make_settings(tmp_path), router=ModelRouter([provider], default_model="fake-model"))
    yield runtime
    runtime.close()


def wait_run(rt: Runtime, thread_id: str, run_id: str, timeout: float = 30.0) -> dict:
    """Poll until the run leaves queued/in_progress/cancelling."""
    deadline = time.monotonic() + timeout
    while True:
        run = rt.get_run(thread_id, run_id)
        if run["status"] not in ("queued", "in_progress", "cancelling"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run still {run['status']} after {timeout}s")
        time.sleep(0.01)
