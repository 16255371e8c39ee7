"""Code Interpreter affinity: a thread's runs go to the instance holding its live session, if it takes them soon.

The instance that queues a run for such a thread leaves it for `grace_s`; the holder's sweeper adopts queued runs
of its threads at every tick while it has a free worker. When the grace is over and nobody adopted the run (the
holder is dead, busy, or gone), the instance that queued it runs it itself: a preference, never a wait for ever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from assistants.store import IntegrityError


def uses_code_interpreter(run: dict) -> bool:
    return any(tool.get("type") == "code_interpreter" for tool in run.get("tools") or ())


class Affinity:
    """This instance's side of the preference: what it leaves to others, what it adopts, its sessions' heartbeat."""

    def __init__(self, engine, grace_s: float):
        self.engine = engine
        self.store = engine.store
        # Longer than half a lease, the run's reservation could lapse and a third instance take it first.
        self.grace_s = max(0.0, min(grace_s, engine.status.lease_s / 2))
        self.live_sessions: Callable[[], list[str]] = list  # thread ids with a live session here (the code interpreter)
        # ends a live session here unless it was used since the time given (time.monotonic())
        self.end_session: Callable[[str, float], None] = lambda thread_id, unused_since: None
        self._deferred: dict[str, float] = {}  # run id -> when this instance runs it itself
        self._lock = threading.Lock()
        self._held: list[str] = []  # live sessions at the last heartbeat
        self._beat = 0.0

    def holder_elsewhere(self, thread_id: str) -> str | None:
        """The other live instance holding the thread's session, or None."""
        row = self.store.ci_session(thread_id)
        if row is None or row[0] == self.engine.owner or row[1] is None or row[1] < time.time():
            return None
        return row[0]

    def launch(self, run: dict) -> None:
        """Run a queued run of ours here now, or first give the holder of its thread's session a chance."""
        if self.grace_s and uses_code_interpreter(run) and self.holder_elsewhere(run["thread_id"]):
            with self._lock:
                self._deferred[run["id"]] = time.monotonic() + self.grace_s
            return
        self.engine.submit(run["id"], run)

    def tick(self) -> None:
        """From the sweeper: run what waited out its grace, adopt runs of our sessions, keep our sessions alive."""
        t = time.monotonic()
        with self._lock:
            due = [run_id for run_id, at in self._deferred.items() if at <= t]
            for run_id in due:
                del self._deferred[run_id]
        for run_id in due:  # if the holder adopted it meanwhile, our claim finds it is no longer ours
            self.engine.submit(run_id)
        live = self.live_sessions()
        if (live or self._held) and t - self._beat >= self.engine.status.lease_s / 4:
            self._beat = t
            held = self.store.renew_ci_sessions(self.engine.owner, live, self.engine.status.lease_until())
            for thread_id in set(live) - set(held):  # its thread was deleted, or another instance took it over
                self.end_session(thread_id, t)
            self._held = held
        free = self.engine.free_workers()
        if live and free > 0 and not self.engine.closed:
            for run_id in self.store.adopt_ci_runs(self.engine.owner, self.engine.status.lease_until(), time.time(),
                                                   free):
                self.engine.submit(run_id)

    def session_used(self, thread_id: str) -> None:
        """This instance has just run the thread's code: it holds the session now (a deleted thread is skipped)."""
        try:
            self.store.record_ci_session(thread_id, self.engine.owner, time.time(), self.engine.status.lease_until())
        except IntegrityError:
            pass

    def close(self) -> None:
        """At shutdown: our sessions die with us, so nobody should wait for us."""
        self.store.renew_ci_sessions(self.engine.owner, [], 0.0)
