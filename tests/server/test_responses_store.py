"""The Responses API's records live in the store: a named migration, foreign keys to the thread, an old database upgraded."""

from __future__ import annotations

import json
import sqlite3

import openai
import pytest

from assistants.responses import records
from assistants.store import IntegrityError, Store, open_store
from assistants.store.migrations import MIGRATIONS, applied_version, m008_responses, migrate
from tests.conftest import make_settings

# The tables exactly as records.py made them on first use before m008 (copied, not imported).
OLD_TABLES = (
    "CREATE TABLE IF NOT EXISTS responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
    "created_at INTEGER NOT NULL, thread_id TEXT NOT NULL, run_id TEXT NOT NULL, waiting_calls TEXT NOT NULL DEFAULT '', "
    "data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS responses_run ON responses(run_id)",
    "CREATE INDEX IF NOT EXISTS responses_thread ON responses(thread_id, seq)",
    "CREATE TABLE IF NOT EXISTS conversation_items (message_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
    "item_id TEXT NOT NULL, data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS conversation_items_thread ON conversation_items(thread_id)",
)


def _record(rid: str, thread_id: str, run_id: str | None, waiting: list[str] | None = None) -> dict:
    return {"id": rid, "created_at": 100, "thread_id": thread_id, "run_id": run_id, "store": True,
            "waiting_calls": waiting or [], "final": None}


def old_database(path) -> None:
    """A database as the previous release left it: migrations 1-7, the Responses tables made on first use."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, upto=7) == 7
    for tid in ("thread_a", "thread_b"):
        conn.execute("INSERT INTO threads (id, created_at, data) VALUES (?, 1, ?)", (tid, json.dumps({"id": tid})))
    conn.execute("INSERT INTO messages (id, created_at, data, thread_id) VALUES ('msg_a', 1, '{\"id\": \"msg_a\"}', "
                 "'thread_a')")
    for sql in OLD_TABLES:
        conn.execute(sql)
    rows = [_record("resp_1", "thread_a", "run_1"), _record("resp_2", "thread_a", "run_2", ["call_x", "call_y"]),
            _record("resp_3", "thread_b", "run_3"), _record("resp_orphan", "thread_gone", "run_9")]
    for r in rows:
        conn.execute("INSERT INTO responses (id, created_at, thread_id, run_id, waiting_calls, data) "
                     "VALUES (?, ?, ?, ?, ?, ?)", (r["id"], r["created_at"], r["thread_id"], r["run_id"],
                                                   " ".join(r["waiting_calls"]), json.dumps(r)))
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{}"}
    conn.execute("INSERT INTO conversation_items VALUES ('msg_a', 'thread_a', 'fc_1', ?)", (json.dumps(item),))
    conn.execute("INSERT INTO conversation_items VALUES ('msg_gone', 'thread_a', 'fc_2', ?)", (json.dumps(item),))
    conn.close()


def _foreign_keys(conn, table: str) -> set[tuple[str, str, str]]:
    return {(r[3], r[2], r[6]) for r in conn.execute(f"PRAGMA foreign_key_list({table})")}


@pytest.mark.sqlite_only(reason="upgrades an older SQLite file (its tables before m008)")
def test_an_old_database_is_upgraded_keeping_its_records(tmp_path):
    path = tmp_path / "old.db"
    old_database(path)
    store = Store(path)  # opening it applies m008: the old tables are rebuilt with foreign keys
    conn = store.conn()
    assert applied_version(conn) == len(MIGRATIONS)
    assert "m008_responses" in {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}
    assert _foreign_keys(conn, "responses") == {("thread_id", "threads", "CASCADE")}
    assert _foreign_keys(conn, "conversation_items") == {("message_id", "messages", "CASCADE"),
                                                         ("thread_id", "threads", "CASCADE")}
    assert {r[1] for r in conn.execute("PRAGMA index_list(responses)")} >= {"responses_run", "responses_thread"}
    # Rows kept (their order too); the orphans of a thread or message deleted earlier are left behind.
    assert [r[0] for r in conn.execute("SELECT id FROM responses ORDER BY seq")] == ["resp_1", "resp_2", "resp_3"]
    assert records.get(store, "resp_orphan") is None
    assert records.get(store, "resp_1") == _record("resp_1", "thread_a", "run_1")
    assert records.waiting_for(store, "call_y")["id"] == "resp_2"
    assert records.latest_on_thread(store, "thread_a")["id"] == "resp_2"
    assert records.first_of_run(store, "run_3")["id"] == "resp_3"
    assert list(records.items_of(store, "thread_a")) == ["msg_a"]
    # New records get sequence numbers after the old ones.
    records.save(store, _record("resp_4", "thread_a", "run_4"))
    assert records.latest_on_thread(store, "thread_a")["id"] == "resp_4"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Deleting a thread (a conversation) deletes its records and items.
    store.delete_thread("thread_a")
    assert records.get(store, "resp_1") is None and records.get(store, "resp_4") is None
    assert records.items_of(store, "thread_a") == {}
    assert records.get(store, "resp_3") is not None
    store.close()


@pytest.mark.sqlite_only(reason="SQLite's m008 run again over its own tables")
def test_the_migration_is_idempotent(tmp_path):
    store = Store(tmp_path / "new.db")
    store.insert("threads", {"id": "thread_a", "created_at": 1})
    records.save(store, _record("resp_1", "thread_a", "run_1"))
    conn = store.conn()
    before = conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name IN ('responses', 'conversation_items') "
                          "ORDER BY name").fetchall()
    with store.write() as c:
        m008_responses(c)  # the tables are already current: nothing is rebuilt, nothing lost
        for sql in OLD_TABLES:  # and an older process's first-use CREATE ... IF NOT EXISTS changes nothing
            c.execute(sql)
    after = conn.execute("SELECT sql FROM sqlite_master WHERE tbl_name IN ('responses', 'conversation_items') "
                         "ORDER BY name").fetchall()
    assert after == before
    assert records.get(store, "resp_1")["thread_id"] == "thread_a"
    store.close()


def test_a_record_or_item_for_a_deleted_thread_is_not_kept(tmp_path):
    store = open_store(make_settings(tmp_path))
    records.save(store, _record("resp_1", "thread_gone", "run_1"))
    records.save_item(store, "thread_gone", "msg_gone", {"id": "fc_1"})
    assert records.get(store, "resp_1") is None and records.items_of(store, "thread_gone") == {}
    store.insert("threads", {"id": "thread_a", "created_at": 1})
    with pytest.raises(IntegrityError):  # any other constraint still surfaces
        records.save(store, _record("resp_2", "thread_a", None))
    store.close()


def test_deleting_a_conversation_or_an_item_removes_what_the_responses_api_kept(api, client, fake):
    conv = client.conversations.create()
    fake.add({"text": "first"})
    r = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="hello")
    made = client.conversations.items.create(conv.id, items=[
        {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_a", "output": "42"}])
    thread_id = "thread_" + conv.id.removeprefix("conv_")
    assert len(records.items_of(api.rt.store, thread_id)) == 2
    client.conversations.items.delete(made.data[0].id, conversation_id=conv.id)
    assert [i["id"] for i in records.items_of(api.rt.store, thread_id).values()] == [made.data[1].id]
    assert client.responses.retrieve(r.id).output_text == "first"

    client.conversations.delete(conv.id)
    assert records.get(api.rt.store, r.id) is None and records.items_of(api.rt.store, thread_id) == {}
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
