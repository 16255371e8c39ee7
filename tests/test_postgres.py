"""What only the PostgreSQL store has to prove: commit-order events, NOTIFY, SKIP LOCKED, start-up errors, search."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from assistants.store import DatabaseUnavailable, Store
from assistants.store.interface import StoreInterface
from tests.pg_cluster import create_database

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.postgres_only(reason="what only the PostgreSQL store has (each test makes its own database)")


@pytest.fixture
def pg_url(pg_server) -> str:
    name = "u_" + uuid.uuid4().hex[:16]
    create_database(pg_server.url, name)
    return f"{pg_server.url}/{name}"


@pytest.fixture
def store(pg_url):
    from assistants.store.postgres import PostgresStore

    s = PostgresStore(pg_url)
    yield s
    s.close()


def _thread_and_run(store, run_id: str, **run) -> None:
    thread_id = "thread_" + run_id
    store.insert("threads", {"id": thread_id, "object": "thread", "created_at": 1})
    store.insert("runs", {"id": run_id, "object": "thread.run", "created_at": 1, "thread_id": thread_id,
                          "status": "queued", **run})


def test_the_postgres_store_implements_the_whole_interface():
    from assistants.store.postgres import PostgresStore

    names = {n for n in vars(StoreInterface) if not n.startswith("_")}
    assert {n for n in names if not callable(getattr(PostgresStore, n, None))} == set()
    assert all(callable(getattr(Store, n, None)) for n in names)


def test_migrations_are_named_idempotent_and_a_newer_schema_is_refused(store, pg_url):
    from assistants.store.pg_schema import MIGRATIONS, SchemaTooNew
    from assistants.store.postgres import PostgresStore

    PostgresStore(pg_url).close()  # a second instance starting: nothing left to apply
    with store.write() as c:
        names = [r[0] for r in c.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert names == sorted(m.__name__ for m in MIGRATIONS)
        c.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('m999_from_the_future', 0)")
    with pytest.raises(SchemaTooNew, match=r"m999_from_the_future.*upgrade this instance"):
        PostgresStore(pg_url)


def test_field_level_updates_compare_and_set_and_cascades(store):
    _thread_and_run(store, "run_a", metadata={"k": "v"})
    assert store.update_fields("runs", "run_a", {"status": "in_progress"}, status=["queued"]) == 1
    assert store.update_fields("runs", "run_a", {"status": "in_progress"}, status=["queued"]) == 0  # lost the race
    store.update_fields("runs", "run_a", {"metadata": {"k": "w"}})
    run = store.get("runs", "run_a")
    assert run["status"] == "in_progress" and run["metadata"] == {"k": "w"} and run["thread_id"] == "thread_run_a"
    store.insert("messages", {"id": "msg_1", "created_at": 1, "thread_id": "thread_run_a", "run_id": "run_a",
                              "status": "in_progress"})
    # A filter on a field without a column compares the JSON value.
    assert store.update_fields("messages", "msg_1", {"status": "completed"}, status="in_progress") == 1
    assert store.get("messages", "msg_1")["status"] == "completed"
    store.update_fields("messages", "msg_1", {"content": "a\x00b \\u0000"})  # jsonb cannot hold NUL: U+FFFD
    assert store.get("messages", "msg_1")["content"] == "a\ufffdb \\u0000"
    from assistants.store import IntegrityError

    with pytest.raises(IntegrityError):  # one active run per thread, as on SQLite
        store.insert("runs", {"id": "run_b", "created_at": 2, "thread_id": "thread_run_a", "status": "queued"})
    store.append_events([("run_a", "thread.run.created", "{}")], time.time())
    assert store.delete_thread("thread_run_a") == 1
    assert store.count("messages") == store.count("runs") == 0 and store.last_event_seq("run_a") == 0


def test_event_sequence_numbers_are_commit_order_for_a_tailing_reader(store):
    """Writers that append, then linger before COMMIT: a reader resuming by seq never skips a late commit."""
    _thread_and_run(store, "run_e")
    store.update_fields("runs", "run_e", {"status": "completed"})  # not active: more runs may join the thread
    written, seen, done = [], [], threading.Event()

    def writer(n: int) -> None:
        rng = random.Random(n)
        for i in range(25):
            with store.write():
                store.append_events([("run_e", "e", f'"{n}.{i}"')], time.time())
                time.sleep(rng.random() * 0.004)  # commit later than another writer's append
            written.append(f"{n}.{i}")

    def reader() -> None:
        after = 0
        while not done.is_set() or store.last_event_seq() > after:
            for seq, _, _, data in store.events_after(after, ["run_e"]):
                assert seq > after
                after = seq
                seen.append(data.strip('"'))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    tail = threading.Thread(target=reader)
    tail.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    tail.join(10)
    assert sorted(seen) == sorted(written) and len(seen) == 100


def test_a_write_about_one_thread_waits_only_for_writes_about_it_and_for_other_writes(store, pg_url):
    """write(thread_id) takes that thread's lock (and the writer lock shared), write() the writer lock: a run's
    writes never wait for another thread's, but a write about the same thread, or any other write, waits for them;
    a write that only appends events waits for none. Across instances too (a second store on the same database)."""
    from assistants.store.postgres import PostgresStore

    _thread_and_run(store, "run_l")
    other = PostgresStore(pg_url)
    holding, release, done = threading.Event(), threading.Event(), []

    def hold() -> None:
        with store.write("thread_a") as c:
            c.execute("UPDATE runs SET lease_until = 1 WHERE id = 'run_l'")
            holding.set()
            release.wait(10)

    def write(key: str | None, name: str) -> None:
        with other.write(key) as c:
            c.execute("SELECT 1")
        done.append(name)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        write("thread_b", "another thread")
        with other.write():
            other.append_events([("run_l", "e", '"x"')], time.time())
        assert time.monotonic() - started < 2
        waiting = [threading.Thread(target=write, args=("thread_a", "same thread")),
                   threading.Thread(target=write, args=(None, "any other"))]
        for t in waiting:
            t.start()
        time.sleep(0.5)
        assert done == ["another thread"]  # both still wait
    finally:
        release.set()
        holder.join(10)
    for t in waiting:
        t.join(10)
    assert sorted(done) == ["another thread", "any other", "same thread"]
    assert [e for _, _, e, _ in store.events_after(0, ["run_l"])] == ["e"]
    other.close()


def test_notify_wakes_a_subscriber_in_another_instance_at_once(store, pg_url):
    from assistants.runs.events import NOTIFIED_POLL_S, EventHub
    from assistants.store.postgres import PostgresStore

    other = PostgresStore(pg_url)
    try:
        _thread_and_run(store, "run_n")
        hub = EventHub(other)
        sub = hub.subscribe("run_n", after=0)
        time.sleep(0.3)  # the listener is connected
        lags = []
        for i in range(10):
            t0 = time.monotonic()
            EventHub(store).publish("run_n", "thread.message.delta", {"i": i})
            event, data = sub.queue.get(timeout=5)
            lags.append(time.monotonic() - t0)
            assert event == "thread.message.delta" and data == {"i": i}
        assert sorted(lags)[5] < NOTIFIED_POLL_S / 5, lags  # woken by NOTIFY, not by the safety-net poll
        hub.close()
    finally:
        other.close()


def test_notifications_about_runs_nobody_follows_here_do_not_make_the_tailer_read(store, pg_url):
    from assistants.runs.events import NOTIFIED_POLL_S, EventHub
    from assistants.store.postgres import PostgresStore

    other = PostgresStore(pg_url)
    try:
        _thread_and_run(store, "run_followed")
        _thread_and_run(store, "run_elsewhere")
        hub = EventHub(other)
        sub = hub.subscribe("run_followed", after=0)
        time.sleep(0.3)  # the listener is connected
        reads = []
        real = other.events_after
        other.events_after = lambda *a, **k: reads.append(1) or real(*a, **k)
        writer = EventHub(store)
        t0 = time.monotonic()
        for i in range(20):
            writer.publish("run_elsewhere", "thread.message.delta", {"i": i})
        quiet = time.monotonic() - t0
        assert len(reads) <= 1 + quiet / NOTIFIED_POLL_S, reads  # only the safety-net poll, not one per event
        writer.publish("run_followed", "thread.message.delta", {"i": 0})
        assert sub.queue.get(timeout=NOTIFIED_POLL_S / 2) == ("thread.message.delta", {"i": 0})  # woken at once
        hub.close()
    finally:
        other.close()


def test_lapsed_queued_runs_are_taken_over_once_across_instances(store, pg_url):
    from assistants.store.postgres import PostgresStore

    for i in range(40):
        _thread_and_run(store, f"run_q{i}", _owner="dead", _lease_until=1.0)
    others = [PostgresStore(pg_url) for _ in range(3)]
    taken: dict[str, list[str]] = {}
    barrier = threading.Barrier(3)

    def sweep(k: int) -> None:
        barrier.wait()
        got = []
        while batch := others[k].take_over_queued(f"owner{k}", time.time() + 60, time.time(), limit=4):
            got += batch
        taken[f"owner{k}"] = got

    threads = [threading.Thread(target=sweep, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in others:
        s.close()
    every = [r for got in taken.values() for r in got]
    assert sorted(every) == sorted(f"run_q{i}" for i in range(40))  # each run reserved exactly once
    assert {store.get("runs", r)["id"] for r in every} and store.lapsed_leases(time.time()) == []


def _serve(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_EMBEDDED_MODEL": "0",
           "PLAYGROUND_OLLAMA_AUTODETECT": "0", "PLAYGROUND_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "assistants.server", "--port", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_an_unreachable_database_stops_the_server_naming_the_url_without_its_password(tmp_path):
    with socket_free_port() as port:
        out = _serve(f"postgresql://alice:s3cret-pw@127.0.0.1:{port}/playground", tmp_path)
    assert out.returncode == 3, out.stderr
    assert f"postgresql://alice@127.0.0.1:{port}/playground" in out.stderr and "Connection refused" in out.stderr
    assert "s3cret-pw" not in out.stderr + out.stdout


def test_a_wrong_password_is_a_clear_error_and_never_printed(pg_server, tmp_path):
    url = pg_server.url.replace(pg_server.password, "Wr0ng-Passw0rd") + "/postgres"
    out = _serve(url, tmp_path)
    assert out.returncode == 3 and "password authentication failed" in out.stderr, out.stderr
    assert "Check the user and password" in out.stderr
    assert "Wr0ng-Passw0rd" not in out.stderr + out.stdout and pg_server.password not in out.stderr
    with pytest.raises(DatabaseUnavailable) as err:
        from assistants.store.postgres import PostgresStore

        PostgresStore(url)
    assert "Wr0ng-Passw0rd" not in str(err.value) and "Wr0ng-Passw0rd" not in repr(err.value)


class socket_free_port:
    """A loopback port nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def __exit__(self, *exc) -> None:
        return None


def test_file_search_on_postgres_stems_pairs_cjk_normalises_and_keeps_the_score_scale(store):
    chunks = ["The cats were running across the garden.", "東京は日本の首都です。", "An eﬃcient ﬁle format.",
              "Le café est très bon.", "Nothing relevant here at all."]
    store.index_chunks("vs_1", "file-1", "a.txt", chunks)
    assert store.chunk_usage_bytes("vs_1") == sum(len(c.encode()) for c in chunks)
    best = store.search_chunks(["vs_1"], "cat run")
    assert best[0].chunk_index == 0 and 0.45 < best[0].score < 0.55  # every term once: 0.5, like SQLite's BM25 scale
    assert store.search_chunks(["vs_1"], "日本の首都")[0].chunk_index == 1  # CJK pairs
    assert store.search_chunks(["vs_1"], "efficient file")[0].chunk_index == 2  # NFKC: the ligatures match
    assert store.search_chunks(["vs_1"], "cafe")[0].chunk_index == 3  # diacritics removed, as FTS5 does
    assert store.search_chunks(["vs_1"], "東")[0].chunk_index == 1  # a lone character is a prefix of the pairs
    half = store.search_chunks(["vs_1"], "cat zebra")
    assert half and 0.3 < half[0].score < 0.37  # one term of two matched once: 1/3
    assert store.search_chunks(["vs_1"], "cat zebra", score_threshold=0.4) == []
    assert store.search_chunks(["vs_1"], "\"cat' | !(& :*")[0].chunk_index == 0  # operators typed are plain text
    assert store.search_chunks(["vs_2"], "cat") == []
    store.delete_chunks("vs_1", "file-1")
    assert store.search_chunks(["vs_1"], "cat") == [] and store.chunk_usage_bytes("vs_1") == 0


def test_connections_killed_mid_run_end_the_run_clearly_and_the_pool_reconnects(pg_url, tmp_path):
    """Every backend of the database terminated while a reply streams (a failover, a restart)."""
    import psycopg

    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.conftest import make_settings, wait_run
    from tests.fakes.provider import ScriptedProvider

    provider = ScriptedProvider()
    rt = Runtime(make_settings(tmp_path, database_url=pg_url), router=ModelRouter([provider], default_model="fake-model"))
    try:
        assistant = rt.create_assistant(model="fake-model")
        thread = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
        provider.add({"chunks": [f"w{i} " for i in range(60)], "chunk_delay": 0.02})
        run = rt.create_run(thread["id"], assistant_id=assistant["id"])
        time.sleep(0.4)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            killed = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
        assert killed >= 1
        ended = wait_run(rt, thread["id"], run["id"], timeout=30)  # the next reads reconnect
        assert ended["status"] in ("completed", "failed"), ended
        if ended["status"] == "failed":
            assert ended["last_error"]["message"]
        # Nothing half-written: the reply is whole or marked incomplete, and the thread takes a new run.
        reply = [m for m in rt.list_messages(thread["id"])["data"] if m["role"] == "assistant"]
        assert all(m["status"] in ("completed", "incomplete") for m in reply)
        rt.create_message(thread["id"], role="user", content="again")
        again = rt.create_run(thread["id"], assistant_id=assistant["id"])
        assert wait_run(rt, thread["id"], again["id"])["status"] == "completed"
    finally:
        rt.close()


def test_the_pool_pings_a_connection_it_lends_only_when_the_server_has_spoken_on_it(pg_url):
    """A quiet connection is lent without a round trip; one whose backend was terminated is refused (and replaced)."""
    import select

    import psycopg

    from assistants.store.postgres import _check_if_spoken_to

    with psycopg.connect(pg_url, autocommit=True) as conn, psycopg.connect(pg_url, autocommit=True) as admin:
        conn.execute("SELECT 42")
        _check_if_spoken_to(conn)
        last = "SELECT query FROM pg_stat_activity WHERE pid = %s"
        assert admin.execute(last, (conn.info.backend_pid,)).fetchone()[0] == "SELECT 42"  # no ping was sent
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        assert select.select([conn.fileno()], [], [], 5)[0]  # the backend's goodbye arrives
        with pytest.raises(psycopg.OperationalError):
            _check_if_spoken_to(conn)
