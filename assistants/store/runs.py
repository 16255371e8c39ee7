"""The store's run queries: leases, the run event log, active runs. The only SQL about runs outside migrations."""

from __future__ import annotations

import json

from assistants.store.migrations import ACTIVE_RUN_STATUSES

ENDED = ("completed", "failed", "cancelled", "incomplete", "expired")


# A run's steps' token sums (prompt, completion); and the same as the run's `usage` object (update_fields' STEP_USAGE).
STEP_SUMS_SQL = ("SELECT COALESCE(SUM(json_extract(data, '$.usage.prompt_tokens')), 0) AS p, "
                 "COALESCE(SUM(json_extract(data, '$.usage.completion_tokens')), 0) AS c FROM run_steps WHERE run_id = ?")
STEP_USAGE_SQL = (f"json((SELECT json_object('prompt_tokens', p, 'completion_tokens', c, 'total_tokens', p + c) "
                  f"FROM ({STEP_SUMS_SQL})))")


class RunQueries:
    """Mixed into Store: what the status machine, the sweeper and the event log ask of the database."""

    # -- the run event log -------------------------------------------------------------------
    def append_events(self, rows: list[tuple[str, str, str]], created_at: float) -> None:
        """Append (run_id, event, data JSON) rows; call inside the write that made the state they describe."""
        with self.write() as c:
            c.executemany("INSERT INTO run_events (run_id, event, data, created_at) VALUES (?, ?, ?, ?)",
                          [(*r, created_at) for r in rows])

    def events_after(self, seq: int, run_ids: list[str], limit: int = 2000) -> list[tuple[int, str, str, str]]:
        """Events of these runs with a sequence number above `seq`, oldest first: (seq, run_id, event, data)."""
        marks = ",".join("?" * len(run_ids))
        return self.conn().execute(
            f"SELECT seq, run_id, event, data FROM run_events WHERE run_id IN ({marks}) AND seq > ? ORDER BY seq LIMIT ?",
            (*run_ids, seq, limit)).fetchall()

    def run_with_seq(self, run_id: str, thread_id: str) -> tuple[dict | None, int]:
        """The run and its newest event's sequence number, read in one statement: events after that number are the
        changes made since (None, 0: no such run in that thread)."""
        row = self.conn().execute("SELECT data, (SELECT MAX(seq) FROM run_events WHERE run_id = ?) FROM runs "
                                  "WHERE id = ? AND thread_id = ?", (run_id, run_id, thread_id)).fetchone()
        return (json.loads(row[0]), row[1] or 0) if row else (None, 0)

    def last_event_seq(self, run_id: str | None = None) -> int:
        """The newest event's sequence number (of one run, or of the whole log)."""
        if run_id is None:
            row = self.conn().execute("SELECT MAX(seq) FROM run_events").fetchone()
        else:
            row = self.conn().execute("SELECT MAX(seq) FROM run_events WHERE run_id = ?", (run_id,)).fetchone()
        return row[0] or 0

    def prune_events(self, before: float) -> int:
        """Forget the events of ended runs older than `before` (epoch seconds)."""
        marks = ",".join("?" * len(ENDED))
        with self.write() as c:
            return c.execute(f"DELETE FROM run_events WHERE created_at < ? AND run_id IN "
                             f"(SELECT id FROM runs WHERE status IN ({marks}))", (before, *ENDED)).rowcount

    # -- leases ------------------------------------------------------------------------------
    def renew_leases(self, owner: str, run_ids: list[str], until: float) -> None:
        """Extend this owner's leases on the runs it is working on."""
        if not run_ids:
            return
        marks = ",".join("?" * len(run_ids))
        with self.write() as c:
            c.execute(f"UPDATE runs SET lease_until = ? WHERE owner = ? AND id IN ({marks}) "
                      f"AND status IN ('queued', 'in_progress', 'cancelling')", (until, owner, *run_ids))

    def renew_json_leases(self, table: str, owner: str, until: float) -> None:
        """Extend the leases an owner holds on in-progress rows whose lease lives in the object (indexing jobs)."""
        with self.write() as c:
            c.execute(f"UPDATE {table} SET data = json_set(data, '$._lease_until', ?) WHERE status = 'in_progress' "
                      "AND json_extract(data, '$._owner') = ?", (until, owner))

    def lapsed_leases(self, at: float) -> list[tuple[str, str]]:
        """(id, status) of runs being worked on whose lease ran out before `at` (none: left by a release before leases)."""
        return self.conn().execute(
            "SELECT id, status FROM runs WHERE status IN ('queued', 'in_progress', 'cancelling') "
            "AND (lease_until IS NULL OR lease_until < ?)", (at,)).fetchall()

    def take_over_queued(self, owner: str, until: float, at: float, limit: int = 16) -> list[str]:
        """Reserve queued runs whose reserving process stopped renewing their lease; their ids."""
        with self.write() as c:
            return [r[0] for r in c.execute(
                "UPDATE runs SET owner = ?, lease_until = ? WHERE id IN (SELECT id FROM runs WHERE status = 'queued' "
                "AND (lease_until IS NULL OR lease_until < ?) ORDER BY seq LIMIT ?) RETURNING id",
                (owner, until, at, limit)).fetchall()]

    def due_to_expire(self, at: int) -> list[str]:
        """Ids of queued or waiting runs past their `expires_at`."""
        return [r[0] for r in self.conn().execute(
            "SELECT id FROM runs WHERE status IN ('queued', 'requires_action') "
            "AND json_extract(data, '$.expires_at') < ?", (at,))]

    def run_statuses(self, run_ids: list[str]) -> dict[str, str]:
        """Current status by id; a deleted run is absent."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        return dict(self.conn().execute(f"SELECT id, status FROM runs WHERE id IN ({marks})", run_ids).fetchall())

    # -- Code Interpreter sessions: which instance holds a thread's ----------------------------
    def record_ci_session(self, thread_id: str, instance_id: str, at: float, alive_until: float) -> None:
        """This instance now holds the thread's session (IntegrityError if the thread is gone)."""
        with self.write() as c:
            c.execute("INSERT INTO ci_sessions (thread_id, instance_id, last_used_at, alive_until) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT (thread_id) DO UPDATE SET instance_id = excluded.instance_id, "
                      "last_used_at = excluded.last_used_at, alive_until = excluded.alive_until",
                      (thread_id, instance_id, at, alive_until))

    def ci_session(self, thread_id: str) -> tuple[str, float | None] | None:
        """(instance id, alive until) of the last instance that ran the thread's code; None if none has."""
        row = self.conn().execute("SELECT instance_id, alive_until FROM ci_sessions WHERE thread_id = ?",
                                  (thread_id,)).fetchone()
        return tuple(row) if row else None

    def renew_ci_sessions(self, instance_id: str, live: list[str], until: float) -> list[str]:
        """Keep this instance's live sessions alive until `until` (its others are marked not alive); the live ones
        still recorded as this instance's (not deleted with their thread, nor taken over by another instance)."""
        marks = ",".join("?" * len(live))
        live_cond = f"thread_id IN ({marks})" if live else "0"
        with self.write() as c:
            rows = c.execute(f"UPDATE ci_sessions SET alive_until = CASE WHEN {live_cond} THEN ? ELSE NULL END "
                             f"WHERE instance_id = ? AND (alive_until IS NOT NULL OR {live_cond}) "
                             "RETURNING thread_id, alive_until", (*live, until, instance_id, *live)).fetchall()
        return [thread_id for thread_id, alive in rows if alive is not None]

    def adopt_ci_runs(self, instance_id: str, until: float, at: float, limit: int) -> list[str]:
        """Reserve queued runs held by others whose thread's live session is this instance's; their ids."""
        found = [r[0] for r in self.conn().execute(
            "SELECT r.id FROM ci_sessions s JOIN runs r ON r.thread_id = s.thread_id AND r.status = 'queued' "
            "WHERE s.instance_id = ? AND s.alive_until >= ? AND (r.owner IS NULL OR r.owner != ?) ORDER BY r.seq LIMIT ?",
            (instance_id, at, instance_id, limit))]
        if not found:  # the usual answer, without taking the writer lock
            return []
        marks = ",".join("?" * len(found))
        with self.write() as c:
            taken = {r[0] for r in c.execute(
                f"UPDATE runs SET owner = ?, lease_until = ? WHERE id IN ({marks}) AND status = 'queued' "
                "AND (owner IS NULL OR owner != ?) RETURNING id", (instance_id, until, *found, instance_id)).fetchall()}
        return [run_id for run_id in found if run_id in taken]  # oldest first: RETURNING has no order of its own

    # -- runs and threads --------------------------------------------------------------------
    def thread_with_active_run(self, thread_id: str) -> tuple[dict | None, dict | None]:
        """The thread and its active run, in one statement ((None, None): no such thread)."""
        marks = ",".join("?" * len(ACTIVE_RUN_STATUSES))
        row = self.conn().execute(f"SELECT data, (SELECT data FROM runs WHERE thread_id = ? AND status IN ({marks}) "
                                  "LIMIT 1) FROM threads WHERE id = ?",
                                  (thread_id, *ACTIVE_RUN_STATUSES, thread_id)).fetchone()
        if row is None:
            return None, None
        return json.loads(row[0]), (json.loads(row[1]) if row[1] else None)

    def active_run(self, thread_id: str) -> dict | None:
        marks = ",".join("?" * len(ACTIVE_RUN_STATUSES))
        row = self.conn().execute(f"SELECT data FROM runs WHERE thread_id = ? AND status IN ({marks})",
                                  (thread_id, *ACTIVE_RUN_STATUSES)).fetchone()
        return json.loads(row[0]) if row else None

    def step_usage(self, run_id: str) -> dict:
        """A run's usage: the sum of its steps' usage, so the two can never disagree."""
        prompt, completion = self.conn().execute(STEP_SUMS_SQL, (run_id,)).fetchone()
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def delete_thread(self, thread_id: str) -> int:
        """Delete a thread; its messages, runs, steps, model calls and events go with it (ON DELETE CASCADE)."""
        with self.write() as c:
            return c.execute("DELETE FROM threads WHERE id = ?", (thread_id,)).rowcount
