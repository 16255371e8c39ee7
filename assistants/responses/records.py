"""The tables the Responses API needs: `responses` (response id -> its thread, run segment, request echo and final
object) and `conversation_items` (conversation items that are not plain messages).

The store is being reworked into an interface, so this SQL lives here behind a few functions until it moves
there. The tables are created on first use (CREATE TABLE IF NOT EXISTS), not by a numbered migration.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, "
    "created_at INTEGER NOT NULL, thread_id TEXT NOT NULL, run_id TEXT NOT NULL, waiting_calls TEXT NOT NULL DEFAULT '', "
    "data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS responses_run ON responses(run_id)",
    "CREATE INDEX IF NOT EXISTS responses_thread ON responses(thread_id, seq)",
)
_ready: weakref.WeakSet = weakref.WeakSet()  # stores whose database has the table (weak: a new store may reuse an id)
_lock = threading.Lock()


def _conn(store: Any):
    if store not in _ready:
        with _lock, store.write() as c:
            for sql in _SCHEMA:
                c.execute(sql)
            _ready.add(store)
    return store


def save(store: Any, record: dict) -> dict:
    """Insert or replace a record (its `waiting_calls` are the function call ids its run still waits for)."""
    _conn(store)
    waiting = " ".join(record.get("waiting_calls") or [])
    with store.write() as c:
        c.execute("INSERT INTO responses (id, created_at, thread_id, run_id, waiting_calls, data) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(id) DO UPDATE SET thread_id = excluded.thread_id, run_id = excluded.run_id, "
                  "waiting_calls = excluded.waiting_calls, data = excluded.data",
                  (record["id"], int(record["created_at"]), record["thread_id"], record["run_id"], waiting,
                   json.dumps(record, separators=(",", ":"), ensure_ascii=False)))
    return record


def get(store: Any, response_id: str) -> dict | None:
    _conn(store)
    row = store.conn().execute("SELECT data FROM responses WHERE id = ?", (response_id,)).fetchone()
    return json.loads(row[0]) if row else None


def delete(store: Any, response_id: str) -> bool:
    _conn(store)
    with store.write() as c:
        return c.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0


def waiting_for(store: Any, call_id: str) -> dict | None:
    """The newest record whose run waits for the function call `call_id`."""
    _conn(store)
    row = store.conn().execute("SELECT data FROM responses WHERE instr(' ' || waiting_calls || ' ', ?) > 0 "
                               "ORDER BY seq DESC", (f" {call_id} ",)).fetchone()
    return json.loads(row[0]) if row else None


def latest_on_thread(store: Any, thread_id: str) -> dict | None:
    """The newest response made on a thread (a conversation's last response)."""
    _conn(store)
    row = store.conn().execute("SELECT data FROM responses WHERE thread_id = ? ORDER BY seq DESC LIMIT 1",
                               (thread_id,)).fetchone()
    return json.loads(row[0]) if row else None


def first_of_run(store: Any, run_id: str) -> dict | None:
    """The response that started a run (its request decided the run's tools)."""
    _conn(store)
    row = store.conn().execute("SELECT data FROM responses WHERE run_id = ? ORDER BY seq ASC LIMIT 1",
                               (run_id,)).fetchone()
    return json.loads(row[0]) if row else None


# -- conversation items that are not plain messages ----------------------------------------------------------
# A function call or output added to a conversation is stored as a thread message (so the model reads it, as
# text) plus its original item here, which is what the conversation lists for that message.
_ITEMS_SCHEMA = ("CREATE TABLE IF NOT EXISTS conversation_items (message_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, "
                 "item_id TEXT NOT NULL, data TEXT NOT NULL)",
                 "CREATE INDEX IF NOT EXISTS conversation_items_thread ON conversation_items(thread_id)")
_items_ready: weakref.WeakSet = weakref.WeakSet()


def _items(store: Any):
    if store not in _items_ready:
        with _lock, store.write() as c:
            for sql in _ITEMS_SCHEMA:
                c.execute(sql)
            _items_ready.add(store)
    return store


def save_item(store: Any, thread_id: str, message_id: str, item: dict) -> None:
    _items(store)
    with store.write() as c:
        c.execute("INSERT OR REPLACE INTO conversation_items (message_id, thread_id, item_id, data) VALUES (?, ?, ?, ?)",
                  (message_id, thread_id, item["id"], json.dumps(item, separators=(",", ":"), ensure_ascii=False)))


def items_of(store: Any, thread_id: str) -> dict[str, dict]:
    """message id -> the item it stands for, for one thread."""
    _items(store)
    rows = store.conn().execute("SELECT message_id, data FROM conversation_items WHERE thread_id = ?", (thread_id,))
    return {r[0]: json.loads(r[1]) for r in rows}


def delete_item(store: Any, message_id: str) -> None:
    _items(store)
    with store.write() as c:
        c.execute("DELETE FROM conversation_items WHERE message_id = ?", (message_id,))
