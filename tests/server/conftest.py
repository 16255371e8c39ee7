"""The REST server on a free port over a runtime whose model is the scripted OpenAI-compatible fake server."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx2
import pytest
from openai import OpenAI

from assistants.config import Backend, Settings
from assistants.runtime import Runtime
from assistants.server import create_app
from assistants.server.background import BackgroundServer
from tests.conftest import database_url_for
from tests.fakes.openai_server import FakeOpenAIServer

API_KEY = "sk-test-key-0123456789"


def free_port(family=socket.AF_INET, host="127.0.0.1") -> int:
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def route_of(routes, method: str, path: str):
    """The row of a contract table (method, path pattern after /v1, ...) that a request's method and URL path match."""
    path = path.split("/v1", 1)[1]
    for route in routes:
        if route[0] == method and re.fullmatch(route[1], path):
            return route
    raise AssertionError(f"no contract for {method} {path}")


def wait_until_serving(proc: subprocess.Popen, url: str, seconds: float) -> httpx2.Response:
    """GET url until the server started as proc answers; fails with its stderr if it exits, or after seconds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx2.get(url, timeout=1)
        except httpx2.TransportError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


@dataclass
class Api:
    """A running server: its runtime, the fake model backend and a way to make SDK clients."""

    rt: Runtime
    fake: FakeOpenAIServer
    base_url: str
    key: str = API_KEY

    def client(self, **kwargs) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("api_key", self.key)
        return OpenAI(base_url=self.base_url, timeout=30, **kwargs)


@contextmanager
def running_api(data_dir: Path, **overrides) -> Iterator[Api]:
    """Fake model server + runtime + uvicorn, torn down in reverse."""
    with FakeOpenAIServer() as fake:
        settings = Settings(data_dir=data_dir, backends=(Backend("fake", fake.base_url),), embedded_enabled=False,
                            aliases={"gpt-4o-mini": "fake-model"}, api_keys=(API_KEY,),
                            database_url=database_url_for(data_dir))  # "" unless the test runs on PostgreSQL
        rt = Runtime(replace(settings, **overrides))
        try:
            with BackgroundServer(create_app(rt)) as server:
                yield Api(rt, fake, server.base_url, (rt.settings.api_keys or ("unused",))[0])
        finally:
            rt.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory, module_db) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("data")) as running:
        yield running


@pytest.fixture(scope="module")
def client(api: Api) -> OpenAI:
    return api.client()


@pytest.fixture
def fake(api: Api) -> Iterator[FakeOpenAIServer]:
    """The model backend with an empty script before and after the test."""
    api.fake.script.clear()
    yield api.fake
    api.fake.script.clear()
