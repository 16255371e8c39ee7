"""The store on SQLite and PostgreSQL: CRUD, pagination, migrations, concurrent writers, crash recovery, integrity."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from assistants.errors import BadRequest, NotFound
from assistants.ids import new_id
from assistants.store import Store, open_store
from assistants.store.migrations import MIGRATIONS, applied_version, migrate

from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]


def test_assistant_crud_and_metadata_limits(rt):
    a = rt.create_assistant(model="fake-model", name="Bot", metadata={"team": "x"})
    assert a["id"].startswith("asst_") and a["object"] == "assistant" and a["tools"] == [] and a["temperature"] == 1.0
    assert rt.get_assistant(a["id"]) == a
    b = rt.update_assistant(a["id"], name="Bot 2", temperature=0.5)
    assert b["name"] == "Bot 2" and b["temperature"] == 0.5 and b["metadata"] == {"team": "x"}
    with pytest.raises(BadRequest, match="16 keys"):
        rt.update_assistant(a["id"], metadata={f"k{i}": "v" for i in range(17)})
    with pytest.raises(BadRequest, match="64"):
        rt.create_assistant(model="m", metadata={"k" * 65: "v"})
    with pytest.raises(BadRequest, match="512"):
        rt.create_assistant(model="m", metadata={"k": "v" * 513})
    with pytest.raises(BadRequest, match="temperature"):
        rt.create_assistant(model="m", temperature=3)
    with pytest.raises(BadRequest, match="Unrecognized"):
        rt.create_assistant(model="m", colour="red")
    assert rt.delete_assistant(a["id"])["deleted"] is True
    with pytest.raises(NotFound):
        rt.get_assistant(a["id"])


def test_pagination_like_openai(rt):
    ids = [rt.create_assistant(model="m", name=str(i))["id"] for i in range(7)]
    page = rt.list_assistants(limit=3)
    assert [x["id"] for x in page["data"]] == ids[::-1][:3] and page["has_more"] is True
    assert page["first_id"] == ids[6] and page["last_id"] == ids[4]
    page2 = rt.list_assistants(limit=3, after=page["last_id"])
    assert [x["id"] for x in page2["data"]] == [ids[3], ids[2], ids[1]]
    last = rt.list_assistants(limit=3, after=page2["last_id"])
    assert [x["id"] for x in last["data"]] == [ids[0]] and last["has_more"] is False
    asc = rt.list_assistants(order="asc", limit=2, after=ids[1])
    assert [x["id"] for x in asc["data"]] == [ids[2], ids[3]]
    before = rt.list_assistants(order="asc", limit=2, before=ids[4])
    assert [x["id"] for x in before["data"]] == [ids[2], ids[3]] and before["has_more"] is True
    assert rt.list_assistants()["data"][0]["id"] == ids[-1] and len(rt.list_assistants()["data"]) == 7
    for bad in (0, 101, "5"):
        with pytest.raises(BadRequest, match="limit"):
            rt.list_assistants(limit=bad)
    with pytest.raises(BadRequest, match="order"):
        rt.list_assistants(order="up")
    with pytest.raises(BadRequest, match="cursor"):
        rt.list_assistants(after="asst_nope")
    empty = rt.list_threads()
    assert empty == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


def test_thread_delete_cascades_and_assistant_delete_keeps_threads(rt):
    from tests.conftest import wait_run

    a = rt.create_assistant(model="fake-model")
    t = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
    run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
    rt.delete_assistant(a["id"])
    assert len(rt.list_messages(t["id"])["data"]) == 2 and rt.get_run(t["id"], run["id"])["status"] == "completed"
    rt.delete_thread(t["id"])
    for table in ("messages", "runs", "run_steps"):
        assert rt.store.count(table, thread_id=t["id"]) == 0
    assert rt.store.count("model_calls", run_id=run["id"]) == 0
    with pytest.raises(NotFound):
        rt.list_messages(t["id"])


def test_messages_validate_and_list_by_run(rt):
    t = rt.create_thread()
    with pytest.raises(BadRequest, match="empty"):
        rt.create_message(t["id"], role="user", content="   ")
    with pytest.raises(BadRequest, match="role"):
        rt.create_message(t["id"], role="system", content="x")
    m = rt.create_message(t["id"], role="user", content=[{"type": "text", "text": "a"},
                                                          {"type": "image_url", "image_url": {"url": "https://x/y.png"}}])
    assert m["content"][1]["image_url"]["detail"] == "auto"
    assert rt.update_message(t["id"], m["id"], metadata={"a": "b"})["metadata"] == {"a": "b"}
    assert rt.update_message(t["id"], m["id"])["metadata"] == {"a": "b"}  # no metadata given: kept
    with pytest.raises(BadRequest, match="thread must be an object"):
        rt.create_thread_and_run(assistant_id="asst_x", thread=["not", "an", "object"])
    assert rt.list_messages(t["id"], run_id="run_none")["data"] == []
    assert rt.delete_message(t["id"], m["id"])["deleted"]


@pytest.mark.sqlite_only(reason="SQLite's migrations of an older file (PostgreSQL's: test_postgres)")
def test_migrating_an_older_database_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, upto=1) == 1
    conn.execute("INSERT INTO assistants (id, created_at, data) VALUES ('asst_old', 1, '{\"id\": \"asst_old\"}')")
    conn.close()
    store = Store(path)
    assert applied_version(store.conn()) == len(MIGRATIONS)
    assert store.get("assistants", "asst_old") == {"id": "asst_old"}
    names = {r[0] for r in store.conn().execute("SELECT name FROM sqlite_master")}
    assert {"files", "vector_stores", "model_calls"} <= names
    assert Store(path).conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _write_many(data_dir: str, tag: str, n: int) -> None:
    store = open_store(make_settings(data_dir))
    for i in range(n):
        store.insert("assistants", {"id": new_id("asst"), "created_at": i, "tag": tag})
    store.close()


def test_concurrent_writers_threads_and_processes(tmp_path):
    path = str(tmp_path)
    open_store(make_settings(path)).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, f"p{i}", 150)) for i in range(2)]
    [p.start() for p in procs]
    errors = []

    def worker(i):
        try:
            _write_many(path, f"t{i}", 100)
        except Exception as exc:  # collected: any 'database is locked' fails the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    [p.join(60) for p in procs]
    assert not errors and all(p.exitcode == 0 for p in procs)
    store = open_store(make_settings(path))
    assert store.count("assistants") == 8 * 100 + 2 * 150
    if hasattr(store, "conn"):  # SQLite's own check
        assert store.conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


CRASHER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.conftest import make_settings
    from tests.fakes.provider import ScriptedProvider
    rt = Runtime(make_settings({data!r}, run_lease_s=1.5),
                 router=ModelRouter([ScriptedProvider(script=[{{"text": "x", "delay": 60}}])]))
    a = rt.create_assistant(model="fake-model")
    t = rt.create_thread(messages=[{{"role": "user", "content": "survive me"}}])
    run = rt.create_run(t["id"], assistant_id=a["id"])
    while rt.get_run(t["id"], run["id"])["status"] != "in_progress":
        time.sleep(0.01)
    print(t["id"], run["id"], flush=True)
    time.sleep(120)
""")


def test_run_of_a_killed_process_ends_failed_once_its_lease_lapses(tmp_path):
    from assistants.runtime import Runtime
    from tests.conftest import make_settings
    from tests.fakes.provider import ScriptedProvider
    from assistants.providers.router import ModelRouter

    script = CRASHER.format(root=str(ROOT), data=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        thread_id, run_id = proc.stdout.readline().split()
        # A live owner's run is left alone by another process starting up.
        other = Runtime(make_settings(tmp_path), router=ModelRouter([ScriptedProvider()]))
        assert other.swept == 0 and other.get_run(thread_id, run_id)["status"] == "in_progress"
        other.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    time.sleep(1.6)  # the dead process's lease runs out
    rt = Runtime(make_settings(tmp_path), router=ModelRouter([ScriptedProvider()]))
    try:
        assert rt.swept == 1
        run = rt.get_run(thread_id, run_id)
        assert run["status"] == "failed" and "restarted or killed" in run["last_error"]["message"]
        assert rt.list_messages(thread_id)["data"][0]["content"][0]["text"]["value"] == "survive me"
        if hasattr(rt.store, "conn"):  # SQLite's own check
            assert rt.store.conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rt.create_message(thread_id, role="user", content="the thread is usable again")
    finally:
        rt.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.sqlite_only(reason="SQLite's connection per thread, reclaimed (PostgreSQL's pool is shared by all threads)")
def test_a_thousand_threads_leave_the_descriptor_count_flat(tmp_path):
    store = Store(tmp_path / "fd.db")
    store.insert("assistants", {"id": "asst_fd", "created_at": 1})

    def touch(i: int) -> None:
        assert store.get("assistants", "asst_fd") is not None
        if i % 10 == 0:
            store.insert("assistants", {"id": f"asst_fd{i}", "created_at": i})

    for i in range(20):  # warm up: the pool's idle connections exist before counting
        t = threading.Thread(target=touch, args=(i + 1,))
        t.start()
        t.join()
    before = _open_fds()
    for batch in range(100):  # 1,000 short-lived threads, 10 at a time (like Streamlit reruns and fragments)
        threads = [threading.Thread(target=touch, args=(batch * 10 + k + 1000,)) for k in range(10)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    store.reclaim_connections()
    assert _open_fds() <= before + 3 * 4  # at most the pool's idle connections (db, WAL, shm each)
    assert store.open_connections() <= 4 + 1
    store.close()
