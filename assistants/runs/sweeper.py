"""One sweeper per process: renews its leases, passes cancels to its workers, ends what dead processes left."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from assistants.ids import now

log = logging.getLogger(__name__)

TICK_S = 0.2  # how often cancels made in other processes are looked for (a cancel lands within ~TICK_S)
SWEEP_S = 1.0  # how often lapsed leases and expiries are looked for
PRUNE_S = 60.0
EVENT_RETENTION_S = 3600.0  # events of ended runs are kept this long (a late stream can still replay them)

LAPSED = ("The process running this run stopped before it finished (the app or server was restarted or killed, "
          "or it stopped renewing its lease for {lease:g} s). Your messages are kept: start the run again.")


class Sweeper:
    """Periodic housekeeping for runs in the shared database; never touches a live lease."""

    def __init__(self, engine, *, on_tick: Callable[[], None] | None = None):
        self.engine = engine
        self.store = engine.store
        self.status = engine.status
        self.on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = {"renew": 0.0, "sweep": 0.0, "prune": 0.0}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="run-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # a locked database or a closing store: the next tick tries again
                log.debug("sweeper tick failed", exc_info=True)

    def tick(self) -> None:
        t = time.monotonic()
        working = self.engine.working()
        if working:
            # A run that is no longer queued or in progress for us (cancelled from anywhere, deleted with its
            # thread, ended by another sweeper) stops now: its worker, model call and code cell are interrupted.
            statuses = self.store.run_statuses(working)
            for run_id in working:
                if statuses.get(run_id) not in ("queued", "in_progress"):
                    self.engine.signal_cancel(run_id)
            if t - self._last["renew"] >= self.status.lease_s / 4:
                self._last["renew"] = t
                self.store.renew_leases(self.engine.owner, working, self.status.lease_until())
        try:
            self.engine.affinity.tick()
        except Exception:  # e.g. a locked database: the leases and the sweep below must still happen
            log.debug("code session affinity tick failed", exc_info=True)
        if t - self._last["sweep"] >= SWEEP_S:
            self._last["sweep"] = t
            self.sweep()
        if t - self._last["prune"] >= PRUNE_S:
            self._last["prune"] = t
            self.store.prune_events(time.time() - EVENT_RETENTION_S)
            self.store.reclaim_connections()
        if self.on_tick is not None:
            self.on_tick()

    def sweep(self) -> int:
        """End runs whose lease ran out and runs past `expires_at`; take over queued runs nobody holds."""
        ended = 0
        at = time.time()
        mine = set(self.engine.working())
        lapsed = self.store.lapsed_leases(at)
        for run_id, status in lapsed:
            if run_id in mine:
                continue  # ours and alive: the renewal is due, not a death
            if status == "in_progress":
                message = LAPSED.format(lease=self.status.lease_s)
                ended += self.status.fail(run_id, "server_error", message, mine=False, lease_before=at) is not None
            elif status == "cancelling":
                ended += self.status.finish_cancel(run_id) is not None
        if not self.engine.closed and any(status == "queued" for _, status in lapsed):
            # Queued by a process that died before starting them: run them here. One statement reserves them
            # (on PostgreSQL with SKIP LOCKED, so several instances' sweepers split them instead of colliding).
            for run_id in self.store.take_over_queued(self.engine.owner, self.status.lease_until(), at):
                if run_id not in mine:
                    self.engine.submit(run_id)
        for run_id in self.store.due_to_expire(now()):
            ended += self.status.expire(run_id) is not None
        return ended
