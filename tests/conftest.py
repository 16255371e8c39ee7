"""Shared fixtures: a runtime over a temporary data dir with a scripted or embedded model, on SQLite or PostgreSQL."""

from __future__ import annotations

import functools
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
URL_ENV = "PLAYGROUND_DATABASE_URL"  # what load_settings reads: the app, the server and their subprocesses
DATABASES = ("sqlite", "postgres")


def database_url_for(data_dir: Path | str) -> str:
    """The PostgreSQL database of a data dir while a test runs on PostgreSQL ("" on SQLite), created on first use.

    Named after the data dir, so a subprocess given the same dir (the multi-process tests) opens the same database.
    """
    server = os.environ.get(PG_ENV)
    if not server:
        return ""
    name = "t_" + hashlib.sha1(str(Path(data_dir).resolve()).encode()).hexdigest()[:20]
    from tests.pg_cluster import TEMPLATE, create_database

    create_database(server, name, template=TEMPLATE)  # the migrations are already applied in the template
    return f"{server}/{name}"


def make_settings(data_dir: Path, **overrides) -> Settings:
    base = dict(data_dir=Path(data_dir), embedded_enabled=False, default_model="fake-model", run_workers=4,
                database_url=database_url_for(data_dir))
    base.update(overrides)
    return Settings(**base)


def pytest_addoption(parser):
    parser.addoption("--db", choices=("both", *DATABASES), default="both",
                     help="both (default): every test that touches the database runs once on SQLite and once on "
                          "PostgreSQL (ids [sqlite]/[postgres]); sqlite or postgres: that side only")


def pytest_configure(config):
    config.addinivalue_line("markers", "no_database: the test never opens a store (it runs once; opening one fails it)")
    config.addinivalue_line("markers", "sqlite_only(reason): the test checks something only SQLite has (say what)")
    config.addinivalue_line("markers", "postgres_only(reason): the test checks something only PostgreSQL has")
    config.addinivalue_line("markers", "both_databases: the default; in a no_database module, a test that does open one")
    _guard_stores()


MARKERS = ("no_database", "sqlite_only", "postgres_only", "both_databases")


def _database_marker(definition):
    """The closest of MARKERS (a test's own beats its class's, which beats its module's), or None."""
    for node in reversed(definition.listchain()):
        found = [m for m in node.own_markers if m.name in MARKERS]
        if len(found) > 1:
            raise pytest.UsageError(f"{node.nodeid}: marked {' and '.join(m.name for m in found)}: choose one")
        if found:
            return found[0]
    return None


def _sides(definition, choice: str) -> list:
    """The `database` params of one test: both, or the side its marker or --db allows (a skip if none)."""
    marker = _database_marker(definition)
    sides = list(DATABASES)
    if marker is not None and marker.name != "both_databases":
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        if not reason:
            raise pytest.UsageError(f"{definition.nodeid}: {marker.name} needs a reason (what only that database has)")
        sides = [marker.name.removesuffix("_only")]
    if choice != "both":
        if choice not in sides:
            return [pytest.param(sides[0], marks=pytest.mark.skip(reason=f"{sides[0]} only; --db={choice}"))]
        sides = [choice]
    return sides


def pytest_generate_tests(metafunc):
    """Every test runs once per database (module-scoped, so a module's shared servers start once per database)."""
    marker = _database_marker(metafunc.definition)
    if marker is not None and marker.name == "no_database":
        return
    metafunc.parametrize("database", _sides(metafunc.definition, metafunc.config.getoption("--db")), indirect=True)


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


# -- which database the running test is on, and the check that nothing opens another --------------------------------
_ON: list[str | None] = [None]  # "sqlite", "postgres", "none" (a no_database test), None (outside any test module)


def _store_problem(opening: str, where: str, on: str | None = None) -> str:
    on = on or _ON[0]
    if on == opening:
        return ""
    if on is None:
        return (f"a {opening} store ({where}) was opened outside a test module's database: a session- or "
                "package-scoped fixture? Build stores in module- or function-scoped fixtures (they run per database)")
    if on == "none":
        return (f"this test is marked no_database but opened a {opening} store ({where}): remove the marker, "
                "and it runs on SQLite and on PostgreSQL")
    if opening == "sqlite":
        return (f"this test runs on PostgreSQL but opened a SQLite store ({where}): build its settings with "
                "tests.conftest.make_settings(data_dir) (or database_url=database_url_for(data_dir)), or mark it "
                "sqlite_only(reason=...) if it checks something only SQLite has")
    return ("this test runs on SQLite but opened a PostgreSQL store: mark it postgres_only(reason=...) "
            "if it checks something only PostgreSQL has")


def _guard_stores() -> None:
    """Opening a store the running test is not on fails the test (what no_database and [postgres] promise)."""
    from assistants.store import Store
    from assistants.store.postgres import PostgresStore, redact

    for cls, kind in ((Store, "sqlite"), (PostgresStore, "postgres")):
        original = cls.__init__
        if getattr(original, "guarded", False):
            continue

        def guarded(self, *args, _original=original, _kind=kind, **kwargs):
            where = args[0] if args else kwargs.get("path", kwargs.get("url", ""))
            problem = _store_problem(_kind, redact(str(where)))
            if problem:
                raise AssertionError(problem)
            _original(self, *args, **kwargs)

        guarded.guarded = True
        cls.__init__ = guarded


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Module- and class-scoped fixtures end with their module's `database`, so the next database starts them anew.

    pytest tears a fixture down when a fixture it *asks for* changes; a module's `api` server should not have to ask
    for `database` to be started once per database.
    """
    result = yield
    if fixturedef.argname == "database":
        request.config.stash[_DATABASE_DEF] = fixturedef
    elif fixturedef.scope in ("module", "class"):
        database = request.config.stash.get(_DATABASE_DEF, None)
        if database is not None and database.cached_result is not None:
            database.addfinalizer(functools.partial(fixturedef.finish, request=request))
    return result


_DATABASE_DEF = pytest.StashKey()


@pytest.fixture(scope="module", autouse=True)
def database(request, tmp_path_factory):
    """The database this module's tests run on now: "sqlite", "postgres", or "none" (marked no_database).

    On PostgreSQL, make_settings(data_dir) gives each data dir its own database (copied from a migrated template),
    and PLAYGROUND_DATABASE_URL names one for whatever reads the environment (the app, server subprocesses); every
    database of the module is dropped when its PostgreSQL tests end.
    """
    kind = getattr(request, "param", "none")
    saved = {name: os.environ.get(name) for name in (PG_ENV, URL_ENV)}
    for name in saved:
        os.environ.pop(name, None)
    server = None
    if kind == "postgres":
        server = request.getfixturevalue("pg_server")
        os.environ[PG_ENV] = server.url
        os.environ[URL_ENV] = database_url_for(tmp_path_factory.mktemp("module-db"))
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())  # tmp_path and mktemp dirs are made right under it
    _ON[0] = kind
    try:
        yield kind
    finally:
        _ON[0] = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if server is not None:
            server.drop_databases()
    if kind != "sqlite":
        created = sorted(str(db) for new in set(base.iterdir()) - before for db in new.rglob("playground.db"))
        assert not created, (f"tests on {kind} (a subprocess?) created SQLite databases: {created}; "
                             f"{_store_problem('sqlite', 'playground.db', kind)}")


@pytest.fixture(autouse=True)
def _database_of_the_test(request, database):
    """On PostgreSQL, PLAYGROUND_DATABASE_URL follows the test's tmp_path, like make_settings(tmp_path) does."""
    if database != "postgres" or "tmp_path" not in request.fixturenames:
        yield
        return
    old = os.environ[URL_ENV]
    os.environ[URL_ENV] = database_url_for(request.getfixturevalue("tmp_path"))
    try:
        yield
    finally:
        os.environ[URL_ENV] = old


@pytest.fixture
def db(database):
    """"sqlite" or "postgres": the database of the running test (for tests that want to say which)."""
    return database


@pytest.fixture(scope="module")
def module_db(database):
    """`db` for module-scoped fixtures."""
    return database


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
