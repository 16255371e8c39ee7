"""PostgreSQL's named queries: the run event log (with LISTEN/NOTIFY), leases, active runs, summaries, chunk index."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from assistants.store import pg_search
from assistants.store.migrations import ACTIVE_RUN_STATUSES
from assistants.store.reports import SUMMARY_COLUMNS

log = logging.getLogger(__name__)

ENDED = ["completed", "failed", "cancelled", "incomplete", "expired"]
WORKING = ["queued", "in_progress", "cancelling"]
CHANNEL = "playground_run_events"

_SUMMARY_SQL = """
WITH page AS (SELECT seq, id, created_at, data->'metadata'->>'assistant_id' AS meta_assistant,
                     COALESCE((data->>'_conversation')::boolean, FALSE) AS made_conv
              FROM threads WHERE COALESCE(data->'metadata'->>'playground', '') <> 'container'
              ORDER BY seq DESC LIMIT %(limit)s),
msg AS (
    SELECT thread_id, COUNT(*) AS n, MAX(created_at) AS last_at FROM messages
    WHERE thread_id IN (SELECT id FROM page) GROUP BY thread_id),
run AS (
    SELECT thread_id, COUNT(*) AS n,
           SUM(COALESCE((data->'usage'->>'prompt_tokens')::bigint, 0)) AS prompt,
           SUM(COALESCE((data->'usage'->>'completion_tokens')::bigint, 0)) AS completion,
           SUM(COALESCE((data->'usage'->>'total_tokens')::bigint, 0)) AS total,
           GREATEST(MAX(created_at), COALESCE(MAX((data->>'completed_at')::float8), 0),
                    COALESCE(MAX((data->>'failed_at')::float8), 0),
                    COALESCE(MAX((data->>'cancelled_at')::float8), 0)) AS last_at
    FROM runs WHERE thread_id IN (SELECT id FROM page) GROUP BY thread_id)
SELECT p.id, p.created_at,
       COALESCE(msg.n, 0)::int, COALESCE(run.n, 0)::int,
       COALESCE(run.prompt, 0)::bigint, COALESCE(run.completion, 0)::bigint, COALESCE(run.total, 0)::bigint,
       GREATEST(p.created_at, COALESCE(msg.last_at, 0), COALESCE(run.last_at, 0))::bigint,
       COALESCE(last.assistant_id, p.meta_assistant), a.id IS NOT NULL, a.data->>'name',
       (SELECT m.data->'content'->0->'text'->>'value' FROM messages m WHERE m.thread_id = p.id ORDER BY m.seq LIMIT 1),
       p.made_conv OR EXISTS (SELECT 1 FROM responses r WHERE r.thread_id = p.id)
         OR EXISTS (SELECT 1 FROM conversation_items ci WHERE ci.thread_id = p.id)
FROM page p
LEFT JOIN msg ON msg.thread_id = p.id
LEFT JOIN run ON run.thread_id = p.id
LEFT JOIN LATERAL (SELECT r.assistant_id FROM runs r WHERE r.thread_id = p.id ORDER BY r.seq DESC LIMIT 1) last
       ON TRUE
LEFT JOIN assistants a ON a.id = COALESCE(last.assistant_id, p.meta_assistant)
ORDER BY p.seq DESC
"""


# The events lock first (no row, so no sequence number, exists before it is held), then the rows in the order given
# (seq follows it), then one notification per run: a data-modifying WITH always runs.
APPEND_SQL = """
WITH added AS (
    INSERT INTO run_events (run_id, event, data, created_at)
    SELECT r, e, d, c FROM (SELECT pg_advisory_xact_lock(%s)) AS locked,
        unnest(%s::text[], %s::text[], %s::text[], %s::float8[]) WITH ORDINALITY AS t(r, e, d, c, n)
    ORDER BY n
    RETURNING run_id, seq)
SELECT pg_notify(%s, run_id || ' ' || MAX(seq)) FROM added GROUP BY run_id
"""


# A run's steps' token sums (prompt, completion); and the same as a JSONB `usage` object (update_fields' STEP_USAGE).
STEP_SUMS_SQL = ("SELECT COALESCE(SUM((data->'usage'->>'prompt_tokens')::bigint), 0)::bigint AS p, "
                 "COALESCE(SUM((data->'usage'->>'completion_tokens')::bigint), 0)::bigint AS c "
                 "FROM run_steps WHERE run_id = %s")
STEP_USAGE_SQL = (f"(SELECT jsonb_build_object('prompt_tokens', p, 'completion_tokens', c, 'total_tokens', p + c) "
                  f"FROM ({STEP_SUMS_SQL}) AS sums)")


class Listener:
    """One LISTEN connection per store: a notification on a channel calls the callbacks registered for it with its
    payload (the run events' channel: the run it is about; None after (re)listening: anything may have been missed)."""

    def __init__(self, url: str):
        self.url = url
        self.callbacks: dict[str, list[Callable[[str | None], None]]] = {}
        self._listening: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pg-listen", daemon=True)
        self._thread.start()

    def add(self, channel: str, callback: Callable[[str | None], None]) -> None:
        """Call `callback` on every notification on `channel` (and after a reconnection: one may have been missed)."""
        self.callbacks.setdefault(channel, []).append(callback)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                    self._listening = set()
                    self._listen(conn)  # wakes each channel: what was committed while we were not listening is read now
                    while not self._stop.is_set():
                        # A short timeout: a channel added meanwhile (and stop) is taken up within 0.2 s.
                        for note in conn.notifies(timeout=0.2, stop_after=1):
                            self._wake(note.channel, note.payload or None)
                        self._listen(conn)
            except psycopg.Error:
                log.debug("the LISTEN connection failed; reconnecting", exc_info=True)
                self._stop.wait(1.0)  # the tailer still polls meanwhile, only slower

    def _listen(self, conn) -> None:
        """LISTEN on the channels registered since the last look (a callback added later wakes once it is)."""
        for channel in [c for c in list(self.callbacks) if c not in self._listening]:
            conn.execute(f"LISTEN {channel}")
            self._listening.add(channel)
            self._wake(channel, None)

    def _wake(self, channel: str, payload: str | None) -> None:
        for callback in list(self.callbacks.get(channel, ())):
            callback(payload)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


class PgRunQueries:
    """Mixed into PostgresStore: what the status machine, the sweeper, the event log and the pages ask."""

    # -- the run event log -------------------------------------------------------------------
    def append_events(self, rows: list[tuple[str, str, str]], created_at: float) -> None:
        """Append (run_id, event, data JSON) rows to the current write: written at its COMMIT, in one round trip with
        it, under the events lock (see postgres.py); NOTIFY (delivered at COMMIT) says where."""
        with self.write() as tx:
            tx.append_events(rows, created_at)

    def on_events(self, callback: Callable[[str | None, int | None], None]) -> bool:
        """Call `callback(run_id, seq)` whenever any instance commits events of that run, up to number `seq` (None,
        None: of any run); True: notifications replace fast polling."""

        def notified(payload: str | None) -> None:
            run_id, _, seq = (payload or "").partition(" ")  # "<run id> <its newest event's number>"
            callback(run_id or None, int(seq) if seq.isdigit() else None)

        self.listener().add(CHANNEL, notified)
        return True

    def events_after(self, seq: int, run_ids: list[str], limit: int = 2000) -> list[tuple[int, str, str, str]]:
        return self._rows("SELECT seq, run_id, event, data FROM run_events WHERE run_id = ANY(%s) AND seq > %s "
                          "ORDER BY seq LIMIT %s", (list(run_ids), seq, limit))

    def run_with_seq(self, run_id: str, thread_id: str) -> tuple[dict | None, int]:
        rows = self._rows("SELECT data, (SELECT MAX(seq) FROM run_events WHERE run_id = %s) FROM runs "
                          "WHERE id = %s AND thread_id = %s", (run_id, run_id, thread_id))
        return (rows[0][0], rows[0][1] or 0) if rows else (None, 0)

    def last_event_seq(self, run_id: str | None = None) -> int:
        if run_id is None:
            row = self._rows("SELECT MAX(seq) FROM run_events")[0]
        else:
            row = self._rows("SELECT MAX(seq) FROM run_events WHERE run_id = %s", (run_id,))[0]
        return row[0] or 0

    def prune_events(self, before: float) -> int:
        return self._exec("DELETE FROM run_events WHERE created_at < %s AND run_id IN "
                          "(SELECT id FROM runs WHERE status = ANY(%s))", (before, ENDED))

    # -- leases ------------------------------------------------------------------------------
    def renew_leases(self, owner: str, run_ids: list[str], until: float) -> None:
        if run_ids:
            self._exec("UPDATE runs SET lease_until = %s WHERE owner = %s AND id = ANY(%s) AND status = ANY(%s)",
                       (until, owner, list(run_ids), WORKING))

    def renew_json_leases(self, table: str, owner: str, until: float) -> None:
        self._exec(f"UPDATE {table} SET data = jsonb_set(data, '{{_lease_until}}', to_jsonb(%s::float8)) "
                   "WHERE status = 'in_progress' AND data->>'_owner' = %s", (until, owner))

    def lapsed_leases(self, at: float) -> list[tuple[str, str]]:
        return [tuple(r) for r in self._rows(
            "SELECT id, status FROM runs WHERE status = ANY(%s) AND (lease_until IS NULL OR lease_until < %s)",
            (WORKING, at))]

    def take_over_queued(self, owner: str, until: float, at: float, limit: int = 16) -> list[str]:
        """Reserve queued runs whose reserving process stopped renewing; instances skip each other's picks.

        One statement outside the writer lock: SKIP LOCKED never waits, so sweepers of several instances
        split the lapsed runs between them instead of queueing on the same rows.
        """
        with self._pool.connection() as c:
            return [r[0] for r in c.execute(
                "UPDATE runs SET owner = %s, lease_until = %s WHERE id IN (SELECT id FROM runs WHERE status = 'queued' "
                "AND (lease_until IS NULL OR lease_until < %s) ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) "
                "RETURNING id", (owner, until, at, limit)).fetchall()]

    def due_to_expire(self, at: int) -> list[str]:
        return [r[0] for r in self._rows("SELECT id FROM runs WHERE status IN ('queued', 'requires_action') "
                                         "AND (data->>'expires_at')::float8 < %s", (at,))]

    def run_statuses(self, run_ids: list[str]) -> dict[str, str]:
        if not run_ids:
            return {}
        return dict(self._rows("SELECT id, status FROM runs WHERE id = ANY(%s)", (list(run_ids),)))

    # -- Code Interpreter sessions: which instance holds a thread's ----------------------------
    def record_ci_session(self, thread_id: str, instance_id: str, at: float, alive_until: float) -> None:
        self._exec("INSERT INTO ci_sessions (thread_id, instance_id, last_used_at, alive_until) VALUES (%s, %s, %s, %s) "
                   "ON CONFLICT (thread_id) DO UPDATE SET instance_id = excluded.instance_id, "
                   "last_used_at = excluded.last_used_at, alive_until = excluded.alive_until",
                   (thread_id, instance_id, at, alive_until))

    def ci_session(self, thread_id: str) -> tuple[str, float | None] | None:
        rows = self._rows("SELECT instance_id, alive_until FROM ci_sessions WHERE thread_id = %s", (thread_id,))
        return tuple(rows[0]) if rows else None

    def renew_ci_sessions(self, instance_id: str, live: list[str], until: float) -> list[str]:
        rows = self._write_rows("UPDATE ci_sessions SET alive_until = CASE WHEN thread_id = ANY(%s::text[]) THEN %s "
                                "ELSE NULL END WHERE instance_id = %s AND (alive_until IS NOT NULL "
                                "OR thread_id = ANY(%s::text[])) RETURNING thread_id, alive_until",
                                (list(live), until, instance_id, list(live)))
        return [thread_id for thread_id, alive in rows if alive is not None]

    def adopt_ci_runs(self, instance_id: str, until: float, at: float, limit: int) -> list[str]:
        """One statement outside the writer lock, as take_over_queued: a run another instance claims is skipped."""
        with self._pool.connection() as c:
            return [r[0] for r in c.execute(  # oldest first: RETURNING has no order of its own
                "WITH taken AS (UPDATE runs SET owner = %s, lease_until = %s WHERE id IN (SELECT r.id FROM ci_sessions s "
                "JOIN runs r ON r.thread_id = s.thread_id WHERE s.instance_id = %s AND s.alive_until >= %s "
                "AND r.status = 'queued' AND r.owner IS DISTINCT FROM %s ORDER BY r.seq LIMIT %s "
                "FOR UPDATE OF r SKIP LOCKED) AND status = 'queued' AND owner IS DISTINCT FROM %s RETURNING id, seq) "
                "SELECT id FROM taken ORDER BY seq",
                (instance_id, until, instance_id, at, instance_id, limit, instance_id)).fetchall()]

    # -- runs and threads --------------------------------------------------------------------
    def thread_with_active_run(self, thread_id: str) -> tuple[dict | None, dict | None]:
        rows = self._rows("SELECT data, (SELECT data FROM runs WHERE thread_id = %s AND status = ANY(%s) LIMIT 1) "
                          "FROM threads WHERE id = %s", (thread_id, list(ACTIVE_RUN_STATUSES), thread_id))
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def active_run(self, thread_id: str) -> dict | None:
        rows = self._rows("SELECT data FROM runs WHERE thread_id = %s AND status = ANY(%s)",
                          (thread_id, list(ACTIVE_RUN_STATUSES)))
        return rows[0][0] if rows else None

    def step_usage(self, run_id: str) -> dict:
        prompt, completion = self._rows(STEP_SUMS_SQL, (run_id,))[0]
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def delete_thread(self, thread_id: str) -> int:
        return self._exec("DELETE FROM threads WHERE id = %s", (thread_id,))

    # -- reports -----------------------------------------------------------------------------
    def thread_summaries(self, limit: int = 1000) -> list[dict]:
        rows = self._rows(_SUMMARY_SQL, {"limit": limit})
        return [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in rows]

    def assistant_threads(self, assistant_id: str, limit: int = 100) -> list[dict]:
        """An assistant's threads, the one with the latest message first: id, created_at, title, first_message."""
        rows = self._rows(
            "SELECT t.id, t.created_at, t.data->'metadata'->>'title', "
            "(SELECT m.data->'content'->0->'text'->>'value' FROM messages m WHERE m.thread_id = t.id "
            " ORDER BY m.seq LIMIT 1), "
            "COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.thread_id = t.id), 0) AS last_seq "
            "FROM threads t WHERE t.data->'metadata'->>'assistant_id' = %s ORDER BY last_seq DESC, t.seq DESC LIMIT %s",
            (assistant_id, limit))
        return [{"id": tid, "created_at": created, "title": title, "first_message": first}
                for tid, created, title, first, _seq in rows]

    def latest_thread(self, assistant_id: str) -> str | None:
        rows = self._rows("SELECT id FROM threads WHERE data->'metadata'->>'assistant_id' = %s ORDER BY seq DESC "
                          "LIMIT 1", (assistant_id,))
        return rows[0][0] if rows else None

    # -- the file-search chunk index ---------------------------------------------------------
    def index_chunks(self, vector_store_id: str, file_id: str, filename: str, chunks: list[str],
                     embeddings: list[list[float]] | None = None) -> int:
        with self.write() as c:
            return pg_search.index_chunks(c, vector_store_id, file_id, filename, chunks, embeddings)

    def delete_chunks(self, vector_store_id: str, file_id: str | None = None) -> None:
        with self.write() as c:
            pg_search.delete_chunks(c, vector_store_id, file_id)

    def chunk_usage_bytes(self, vector_store_id: str) -> int:
        return int(self._rows("SELECT COALESCE(SUM(bytes), 0) FROM fs_chunks WHERE vector_store_id = %s",
                              (vector_store_id,))[0][0])

    def search_chunks(self, vector_store_ids: list[str], query: str, **options) -> list:
        with self._pool.connection() as c:
            return pg_search.search(c, vector_store_ids, query, **options)
