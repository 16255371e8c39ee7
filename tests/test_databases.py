"""The suite runs on both databases: each test once on SQLite and once on PostgreSQL, module servers started per database."""

from __future__ import annotations

import os

import pytest

from assistants.config import load_settings
from assistants.runtime import Runtime
from tests.conftest import database_url_for, make_settings

STARTED: list[str] = []


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory):
    """A module-scoped runtime that does not ask for `database`: it must still be started once per database."""
    runtime = Runtime(make_settings(tmp_path_factory.mktemp("shared")))
    STARTED.append("postgres" if runtime.settings.database_url else "sqlite")
    yield runtime
    runtime.close()


def test_a_module_scoped_runtime_is_on_the_test_s_database(shared_runtime, database):
    assert STARTED[-1] == database
    assert STARTED.count(database) == 1  # one per database, shared by the module's tests
    assert type(shared_runtime.store).__name__ == ("PostgresStore" if database == "postgres" else "Store")


def test_a_second_test_shares_it(shared_runtime, database):
    assert STARTED.count(database) == 1 and STARTED[-1] == database


def test_the_environment_names_the_test_s_database(tmp_path, monkeypatch, database):
    """What reads the environment (the app, server subprocesses) is on the test's database too."""
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    settings = load_settings(dotenv=False)
    if database == "sqlite":
        assert settings.database_url == ""
    else:
        assert settings.database_url == database_url_for(tmp_path) != ""
    runtime = Runtime(settings)
    try:
        assert runtime.store.count("threads") == 0
    finally:
        runtime.close()


def test_a_sqlite_store_on_postgres_fails_the_test(tmp_path, database):
    """A test on PostgreSQL that builds a SQLite store by mistake fails, saying how to build it instead."""
    settings = make_settings(tmp_path, database_url="")
    if database == "sqlite":
        Runtime(settings).close()
        return
    with pytest.raises(AssertionError, match=r"runs on PostgreSQL but opened a SQLite store .*make_settings"):
        Runtime(settings)


@pytest.mark.no_database
def test_a_no_database_test_cannot_open_a_store(tmp_path):
    assert "PLAYGROUND_DATABASE_URL" not in os.environ
    with pytest.raises(AssertionError, match=r"marked no_database but opened a sqlite store .*remove the marker"):
        Runtime(make_settings(tmp_path))


@pytest.mark.sqlite_only(reason="shows the marker: one [sqlite] run")
def test_sqlite_only_runs_once(database):
    assert database == "sqlite"


def test_each_side_ran(request, database):
    assert f"[{database}]" in request.node.nodeid
