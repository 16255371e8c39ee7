"""Shared fixtures: a runtime over a temporary data dir with a scripted or embedded model, on SQLite or PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from assistants.config import Settings
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.fakes.provider import ScriptedProvider


# Set (to the throwaway cluster's URL, no database) while a test runs on PostgreSQL; inherited by its subprocesses.
PG_ENV = "PLAYGROUND_TEST_PG_SERVER"


def database_url_for(data_dir: Path | str) -> str:
    """The PostgreSQL database of a data dir while a test runs on PostgreSQL ("" on SQLite), created on first use.

    Named after the data dir, so a subprocess given the same dir (the multi-process tests) opens the same database.
    """
    server = os.environ.get(PG_ENV)
    if not server:
        return ""
    name = "t_" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:20]
    from tests.pg_cluster import create_database

    create_database(server, name)
    return f"{server}/{name}"


def make_settings(data_dir: Path, **overrides) -> Settings:
    base = dict(data_dir=Path(data_dir), embedded_enabled=False, default_model="fake-model", run_workers=4,
                database_url=database_url_for(data_dir))
    base.update(overrides)
    return Settings(**base)


def pytest_addoption(parser):
    parser.addoption("--db", choices=("default", "sqlite", "postgres", "both"), default="default",
                     help="default: tests taking `db` run on both databases in modules marked `both_databases`, "
                          "on SQLite elsewhere; postgres: every runtime any test builds uses PostgreSQL")


def pytest_configure(config):
    config.addinivalue_line("markers", "both_databases: run this module's `db` tests on SQLite and on PostgreSQL")


def pytest_generate_tests(metafunc):
    for name in ("db", "module_db"):
        if name not in metafunc.fixturenames:
            continue
        choice = metafunc.config.getoption("--db")
        if choice == "default":
            choice = "both" if metafunc.definition.get_closest_marker("both_databases") else "sqlite"
        metafunc.parametrize(name, ["sqlite", "postgres"] if choice == "both" else [choice], indirect=True)


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL cluster for the whole session (skipped only when PostgreSQL is not installed)."""
    from tests.pg_cluster import Cluster, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql")
    cluster = Cluster(bin_dir).start()
    yield cluster
    cluster.stop()


def _use_database(request, kind: str):
    """Point make_settings at PostgreSQL while the fixture lives (subprocesses inherit it), or leave SQLite."""
    if kind == "sqlite":
        yield "sqlite"
        return
    server = request.getfixturevalue("pg_server")
    old = os.environ.get(PG_ENV)
    os.environ[PG_ENV] = server.url
    try:
        yield "postgres"
    finally:
        if old is None:
            os.environ.pop(PG_ENV, None)
        else:
            os.environ[PG_ENV] = old


@pytest.fixture(scope="session", autouse=True)
def _postgres_everywhere(request):
    """`--db=postgres`: every runtime a test builds (make_settings, the servers) uses PostgreSQL, not only `db` tests."""
    if request.config.getoption("--db") != "postgres":
        yield
        return
    yield from _use_database(request, "postgres")


@pytest.fixture
def db(request):
    """"sqlite" or "postgres" for one test: on PostgreSQL, make_settings gives every data dir its own database."""
    yield from _use_database(request, request.param)


@pytest.fixture(scope="module")
def module_db(request):
    """`db` for module-scoped fixtures (a server shared by a module's tests)."""
    yield from _use_database(request, request.param)


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def rt(tmp_path, provider, db):
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
