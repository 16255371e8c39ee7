"""The store's summary queries for the Threads page and the Playground (one query each, not a walk over objects)."""

from __future__ import annotations

from assistants.store import chunk_index

# json_valid guards every json_extract: a row written with NaN or Infinity (before the API refused them) is not
# JSON to SQLite, and one such row would otherwise fail the whole page. Such a row's fields read as NULL.
_SUMMARY_SQL = """
WITH page AS (SELECT seq, id, created_at, json_extract(iif(json_valid(data), data, NULL), '$.metadata.assistant_id')
                     AS meta_assistant, json_extract(iif(json_valid(data), data, NULL), '$._conversation') AS made_conv
              FROM threads
              WHERE COALESCE(json_extract(iif(json_valid(data), data, NULL), '$.metadata.playground'), '') != 'container'
              ORDER BY seq DESC LIMIT :limit),
msg AS (
    SELECT thread_id, COUNT(*) AS n, MAX(created_at) AS last_at FROM messages
    WHERE thread_id IN (SELECT id FROM page) GROUP BY thread_id),
run AS (
    SELECT thread_id, COUNT(*) AS n,
           SUM(COALESCE(json_extract(data, '$.usage.prompt_tokens'), 0)) AS prompt,
           SUM(COALESCE(json_extract(data, '$.usage.completion_tokens'), 0)) AS completion,
           SUM(COALESCE(json_extract(data, '$.usage.total_tokens'), 0)) AS total,
           MAX(MAX(created_at), COALESCE(MAX(json_extract(data, '$.completed_at')), 0),
               COALESCE(MAX(json_extract(data, '$.failed_at')), 0),
               COALESCE(MAX(json_extract(data, '$.cancelled_at')), 0)) AS last_at
    FROM (SELECT thread_id, created_at, iif(json_valid(data), data, NULL) AS data FROM runs)
    WHERE thread_id IN (SELECT id FROM page) GROUP BY thread_id)
SELECT p.id, p.created_at,
       COALESCE(msg.n, 0), COALESCE(run.n, 0),
       COALESCE(run.prompt, 0), COALESCE(run.completion, 0), COALESCE(run.total, 0),
       MAX(p.created_at, COALESCE(msg.last_at, 0), COALESCE(run.last_at, 0)),
       COALESCE(last.assistant_id, p.meta_assistant), a.id IS NOT NULL, json_extract(iif(json_valid(a.data), a.data, NULL), '$.name'),
       (SELECT json_extract(iif(json_valid(m.data), m.data, NULL), '$.content[0].text.value') FROM messages m
         WHERE m.thread_id = p.id ORDER BY m.seq LIMIT 1),
       COALESCE(p.made_conv, 0) != 0 OR EXISTS (SELECT 1 FROM responses r WHERE r.thread_id = p.id)
         OR EXISTS (SELECT 1 FROM conversation_items ci WHERE ci.thread_id = p.id)
FROM page p
LEFT JOIN msg ON msg.thread_id = p.id
LEFT JOIN run ON run.thread_id = p.id
LEFT JOIN (SELECT r.thread_id, r.assistant_id FROM runs r
           WHERE r.seq = (SELECT MAX(seq) FROM runs r2 WHERE r2.thread_id = r.thread_id)
             AND r.thread_id IN (SELECT id FROM page)) last ON last.thread_id = p.id
LEFT JOIN assistants a ON a.id = COALESCE(last.assistant_id, p.meta_assistant)
ORDER BY p.seq DESC
"""

# The list beside the chat: threads opened for an assistant, ordered by their latest message. json_valid guards as
# above.
_ASSISTANT_THREADS_SQL = """
SELECT t.id, t.created_at, json_extract(iif(json_valid(t.data), t.data, NULL), '$.metadata.title'),
       (SELECT json_extract(iif(json_valid(m.data), m.data, NULL), '$.content[0].text.value') FROM messages m
         WHERE m.thread_id = t.id ORDER BY m.seq LIMIT 1),
       COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.thread_id = t.id), 0) AS last_seq
FROM threads t WHERE json_extract(iif(json_valid(t.data), t.data, NULL), '$.metadata.assistant_id') = ?
ORDER BY last_seq DESC, t.seq DESC LIMIT ?
"""

# conversation: the thread was made by conversations.create (its private `_conversation`) or used through the
# Responses API (a response made on it, or a conversation item).
SUMMARY_COLUMNS = ("id", "created_at", "messages", "runs", "prompt_tokens", "completion_tokens", "total_tokens",
                   "last_activity", "assistant_id", "assistant_exists", "assistant_name", "first_message",
                   "conversation")


class ReportQueries:
    """Mixed into Store: summaries, and the file-search chunk index."""

    def index_chunks(self, vector_store_id: str, file_id: str, filename: str, chunks: list[str],
                     embeddings: list[list[float]] | None = None) -> int:
        """Store a file's chunks in a vector store, replacing earlier ones (inside the caller's write)."""
        with self.write() as c:
            return chunk_index.index_chunks(c, vector_store_id, file_id, filename, chunks, embeddings)

    def delete_chunks(self, vector_store_id: str, file_id: str | None = None) -> None:
        """Remove a file's chunks from a vector store, or all of the store's."""
        with self.write() as c:
            chunk_index.delete_chunks(c, vector_store_id, file_id)

    def chunk_usage_bytes(self, vector_store_id: str) -> int:
        return chunk_index.usage_bytes(self.conn(), vector_store_id)

    def search_chunks(self, vector_store_ids: list[str], query: str, **options) -> list:
        """Best chunks of the stores for a query (see chunk_index.search for the scores)."""
        return chunk_index.search(self.conn(), vector_store_ids, query, **options)

    def thread_summaries(self, limit: int = 1000) -> list[dict]:
        """The newest `limit` threads with counts, token totals, last activity, assistant and whether it is a
        Responses API conversation. Container threads (containers.create's, responses/containers.py) are left out.

        The assistant is the one of the thread's latest run, else the one the Playground opened it for (metadata).
        """
        rows = self.conn().execute(_SUMMARY_SQL, {"limit": limit}).fetchall()
        return [{**dict(zip(SUMMARY_COLUMNS, row, strict=True)), "conversation": bool(row[-1])} for row in rows]

    def assistant_threads(self, assistant_id: str, limit: int = 100) -> list[dict]:
        """An assistant's threads, the one with the latest message first: id, created_at, title, first_message."""
        rows = self.conn().execute(_ASSISTANT_THREADS_SQL, (assistant_id, limit)).fetchall()
        return [{"id": tid, "created_at": created, "title": title, "first_message": first}
                for tid, created, title, first, _seq in rows]

    def latest_thread(self, assistant_id: str) -> str | None:
        """The newest thread whose `metadata.assistant_id` is this assistant."""
        row = self.conn().execute("SELECT id FROM threads WHERE json_extract(iif(json_valid(data), data, NULL), "
                                  "'$.metadata.assistant_id') = ? ORDER BY seq DESC LIMIT 1", (assistant_id,)).fetchone()
        return row[0] if row else None
