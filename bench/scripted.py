"""The runtime the REST server benchmarks measure: the scripted zero-latency model, no embedded model."""

from __future__ import annotations

from pathlib import Path

from assistants.config import Settings
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.fakes.provider import ScriptedProvider


def scripted_runtime(data_dir: Path, database_url: str = "") -> Runtime:
    settings = Settings(data_dir=data_dir, embedded_enabled=False, default_model="fake-model", run_workers=8,
                        database_url=database_url)
    return Runtime(settings, router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
