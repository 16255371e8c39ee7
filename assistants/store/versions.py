"""Archived conversation tails ("versions"): what Regenerate and Edit and resend take out of a thread.

A version is a thread's tail after one point (a message id; "" for the thread's start): its messages whole, each
with its place (`seq`, so a restored message sits where it was and keeps its id), and the conversation items that
stand for them. The messages table holds only the current tail, so a thread stays what the model sees and what
`messages.list` returns, and the thread list and summaries never count an archived message. At each point the
tails are numbered 1, 2, … in the order they were made; the current one has the number no archived row has.

Each operation is one write transaction, and both stores let one writer in at a time (SQLite's `BEGIN IMMEDIATE`,
PostgreSQL's writer lock), so two tabs flipping at once run one after the other: the second sees the first's
result, and no tail is lost. Both stores share this code; `_vrows`, `_vjson`, `_vload` and `OVERRIDE_SEQ` are
their dialects (SQL is written with `?`, which PostgreSQL's `_vrows` turns into `%s`).
"""

from __future__ import annotations


class VersionQueries:
    """Mixed into both stores: archive the tail after a point, swap it with an archived one, list the versions."""

    OVERRIDE_SEQ = ""  # PostgreSQL's identity column needs OVERRIDING SYSTEM VALUE to take a given seq

    def tail_point(self, thread_id: str, message_id: str) -> str | None:
        """The id of the message before `message_id` in its thread ("" when it is the first); None when not there."""
        here = self._vrows("SELECT seq FROM messages WHERE id = ? AND thread_id = ?", (message_id, thread_id))
        if not here:
            return None
        before = self._vrows("SELECT id FROM messages WHERE thread_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
                             (thread_id, here[0][0]))
        return before[0][0] if before else ""

    def _point_seq(self, thread_id: str, point: str) -> int | None:
        if not point:
            return 0
        rows = self._vrows("SELECT seq FROM messages WHERE id = ? AND thread_id = ?", (point, thread_id))
        return rows[0][0] if rows else None

    def _current_number(self, thread_id: str, point: str) -> int:
        """The current tail's number at a point: the one in 1…N+1 that no archived version has."""
        taken = {r[0] for r in self._vrows("SELECT number FROM message_versions WHERE thread_id = ? AND point = ?",
                                           (thread_id, point))}
        return next(n for n in range(1, len(taken) + 2) if n not in taken)

    def archive_tail(self, thread_id: str, point: str, run_ids: list[str] | tuple = (), created_at: int = 0) -> int | None:
        """Move the messages after `point` (all of them for "") out of the thread into a version; its number, or None
        when `point` is not in the thread. `run_ids`: runs that belong to this tail besides its messages' own."""
        with self.write():
            after = self._point_seq(thread_id, point)
            if after is None:
                return None
            rows = self._vrows("SELECT seq, data FROM messages WHERE thread_id = ? AND seq > ? ORDER BY seq",
                               (thread_id, after))
            messages = [{"seq": seq, "message": self._vload(data)} for seq, data in rows]
            ids = [m["message"]["id"] for m in messages]
            items = {}
            if ids:
                marks = ", ".join("?" * len(ids))
                items = {mid: {"item_id": item_id, "data": self._vload(data)} for mid, item_id, data in self._vrows(
                    f"SELECT message_id, item_id, data FROM conversation_items WHERE message_id IN ({marks})", ids)}
            runs = list(dict.fromkeys([*(m["message"].get("run_id") for m in messages if m["message"].get("run_id")),
                                       *run_ids]))
            number = self._current_number(thread_id, point)
            self._vrows("DELETE FROM messages WHERE thread_id = ? AND seq > ?", (thread_id, after))
            self._vrows("INSERT INTO message_versions (thread_id, point, number, created_at, run_ids, data) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (thread_id, point, number, int(created_at), self._vjson(runs),
                                                     self._vjson({"messages": messages, "items": items})))
            return number

    def restore_version(self, thread_id: str, point: str, number: int, run_ids: list[str] | tuple = (),
                        created_at: int = 0) -> bool:
        """Swap the current tail after `point` with archived version `number` (the current one is archived); False
        when that version is not archived (it is the one shown, perhaps flipped to by another tab) or `point` is gone."""
        with self.write():
            rows = self._vrows("SELECT data FROM message_versions WHERE thread_id = ? AND point = ? AND number = ?",
                               (thread_id, point, number))
            if not rows or self.archive_tail(thread_id, point, run_ids, created_at) is None:
                return False
            self._vrows("DELETE FROM message_versions WHERE thread_id = ? AND point = ? AND number = ?",
                        (thread_id, point, number))
            kept = self._vload(rows[0][0])
            for entry in kept["messages"]:
                msg = entry["message"]
                self._vrows(f"INSERT INTO messages (seq, id, created_at, data, thread_id, run_id) {self.OVERRIDE_SEQ} "
                            "VALUES (?, ?, ?, ?, ?, ?)", (entry["seq"], msg["id"], msg.get("created_at") or 0,
                                                         self._vjson(msg), thread_id, msg.get("run_id")))
            for message_id, item in kept["items"].items():
                self._vrows("INSERT INTO conversation_items (message_id, thread_id, item_id, data) VALUES (?, ?, ?, ?)",
                            (message_id, thread_id, item["item_id"], self._vjson(item["data"])))
            return True

    def message_versions(self, thread_id: str) -> list[dict]:
        """The thread's archived versions (not their messages): point, number, run_ids, created_at."""
        rows = self._vrows("SELECT point, number, run_ids, created_at FROM message_versions WHERE thread_id = ? "
                           "ORDER BY point, number", (thread_id,))
        return [{"point": p, "number": n, "run_ids": self._vload(r), "created_at": at} for p, n, r, at in rows]

    def archived_tail(self, thread_id: str, point: str, number: int) -> list[dict] | None:
        """The messages of one archived version, in their order (None when it is not archived)."""
        rows = self._vrows("SELECT data FROM message_versions WHERE thread_id = ? AND point = ? AND number = ?",
                           (thread_id, point, number))
        return [e["message"] for e in self._vload(rows[0][0])["messages"]] if rows else None
