"""The Responses API's queries on PostgreSQL: response records and conversation items (tables made by m005)."""

from __future__ import annotations

from psycopg.types.json import Jsonb


def _loaded(rows: list[tuple]) -> dict | None:
    return rows[0][0] if rows else None


class PgResponseQueries:
    """Mixed into PostgresStore: the same nine queries as SQLite's ResponseQueries, in PostgreSQL's dialect."""

    # -- response records ----------------------------------------------------------------------
    def save_response(self, record: dict) -> None:
        """Insert or replace a response record (raises IntegrityError when its thread is gone)."""
        self._exec("INSERT INTO responses (id, created_at, thread_id, run_id, waiting_calls, data) "
                   "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, "
                   "run_id = excluded.run_id, waiting_calls = excluded.waiting_calls, data = excluded.data",
                   (record["id"], int(record["created_at"]), record["thread_id"], record["run_id"],
                    list(record.get("waiting_calls") or []), _jsonb(record)))

    def get_response(self, response_id: str) -> dict | None:
        return _loaded(self._rows("SELECT data FROM responses WHERE id = %s", (response_id,)))

    def delete_response(self, response_id: str) -> bool:
        return self._exec("DELETE FROM responses WHERE id = %s", (response_id,)) > 0

    def response_waiting_for(self, call_id: str) -> dict | None:
        """The newest record whose run waits for the function call `call_id`."""
        return _loaded(self._rows("SELECT data FROM responses WHERE %s = ANY(waiting_calls) ORDER BY seq DESC LIMIT 1",
                                  (call_id,)))

    def latest_response(self, thread_id: str) -> dict | None:
        """The newest response made on a thread (a conversation's last response)."""
        return _loaded(self._rows("SELECT data FROM responses WHERE thread_id = %s ORDER BY seq DESC LIMIT 1",
                                  (thread_id,)))

    def first_response_of_run(self, run_id: str) -> dict | None:
        """The response that started a run."""
        return _loaded(self._rows("SELECT data FROM responses WHERE run_id = %s ORDER BY seq ASC LIMIT 1", (run_id,)))

    # -- conversation items that stand for a thread message ------------------------------------
    def save_conversation_item(self, thread_id: str, message_id: str, item: dict) -> None:
        """The item a thread message stands for (raises IntegrityError when the message is gone)."""
        self._exec("INSERT INTO conversation_items (message_id, thread_id, item_id, data) VALUES (%s, %s, %s, %s) "
                   "ON CONFLICT (message_id) DO UPDATE SET thread_id = excluded.thread_id, item_id = excluded.item_id, "
                   "data = excluded.data", (message_id, thread_id, item["id"], _jsonb(item)))

    def conversation_items(self, thread_id: str) -> dict[str, dict]:
        """message id -> the item it stands for, for one thread."""
        return dict(self._rows("SELECT message_id, data FROM conversation_items WHERE thread_id = %s", (thread_id,)))

    def delete_conversation_item(self, message_id: str) -> None:
        self._exec("DELETE FROM conversation_items WHERE message_id = %s", (message_id,))



def _jsonb(obj: dict) -> Jsonb:
    """The object stores' JSONB adapter (NUL becomes U+FFFD); imported late: postgres.py imports this module."""
    from assistants.store.postgres import _jsonb as adapt

    return adapt(obj)
