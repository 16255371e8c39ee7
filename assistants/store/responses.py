"""The store's Responses API queries: response records and conversation items (tables made by m008_responses)."""

from __future__ import annotations

import json


def _dumps(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _loaded(row) -> dict | None:
    return json.loads(row[0]) if row else None


class ResponseQueries:
    """Mixed into Store: a response is a segment of a run on a thread; its record goes with the thread."""

    # -- response records ----------------------------------------------------------------------
    def save_response(self, record: dict) -> None:
        """Insert or replace a response record (raises IntegrityError when its thread is gone)."""
        waiting = " ".join(record.get("waiting_calls") or [])
        with self.write() as c:
            c.execute("INSERT INTO responses (id, created_at, thread_id, run_id, waiting_calls, data) "
                      "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET thread_id = excluded.thread_id, "
                      "run_id = excluded.run_id, waiting_calls = excluded.waiting_calls, data = excluded.data",
                      (record["id"], int(record["created_at"]), record["thread_id"], record["run_id"], waiting,
                       _dumps(record)))

    def get_response(self, response_id: str) -> dict | None:
        return _loaded(self.conn().execute("SELECT data FROM responses WHERE id = ?", (response_id,)).fetchone())

    def delete_response(self, response_id: str) -> bool:
        with self.write() as c:
            return c.execute("DELETE FROM responses WHERE id = ?", (response_id,)).rowcount > 0

    def response_waiting_for(self, call_id: str) -> dict | None:
        """The newest record whose run waits for the function call `call_id`."""
        return _loaded(self.conn().execute(
            "SELECT data FROM responses WHERE instr(' ' || waiting_calls || ' ', ?) > 0 ORDER BY seq DESC LIMIT 1",
            (f" {call_id} ",)).fetchone())

    def latest_response(self, thread_id: str) -> dict | None:
        """The newest response made on a thread (a conversation's last response)."""
        return _loaded(self.conn().execute(
            "SELECT data FROM responses WHERE thread_id = ? ORDER BY seq DESC LIMIT 1", (thread_id,)).fetchone())

    def first_response_of_run(self, run_id: str) -> dict | None:
        """The response that started a run."""
        return _loaded(self.conn().execute(
            "SELECT data FROM responses WHERE run_id = ? ORDER BY seq ASC LIMIT 1", (run_id,)).fetchone())

    # -- conversation items that stand for a thread message ------------------------------------
    def save_conversation_item(self, thread_id: str, message_id: str, item: dict) -> None:
        """The item a thread message stands for (raises IntegrityError when the message is gone)."""
        with self.write() as c:
            c.execute("INSERT OR REPLACE INTO conversation_items (message_id, thread_id, item_id, data) "
                      "VALUES (?, ?, ?, ?)", (message_id, thread_id, item["id"], _dumps(item)))

    def conversation_items(self, thread_id: str) -> dict[str, dict]:
        """message id -> the item it stands for, for one thread."""
        rows = self.conn().execute("SELECT message_id, data FROM conversation_items WHERE thread_id = ?", (thread_id,))
        return {r[0]: json.loads(r[1]) for r in rows}

    def delete_conversation_item(self, message_id: str) -> None:
        with self.write() as c:
            c.execute("DELETE FROM conversation_items WHERE message_id = ?", (message_id,))
