"""The run event log: events written with the state they describe, read back by any process in order."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Iterator

from assistants.store import Store

log = logging.getLogger(__name__)

DONE = "done"
# After these a stream ends: the run stopped or waits for the caller.
ENDING = frozenset(f"thread.run.{s}" for s in ("requires_action", "completed", "failed", "cancelled", "expired",
                                                "incomplete"))
ENDED = frozenset(("completed", "failed", "cancelled", "expired", "incomplete"))
POLL_S = 0.01  # how often the tailer reads the log while someone listens (events of other processes)
NOTIFIED_POLL_S = 0.5  # with LISTEN/NOTIFY (PostgreSQL) a notification wakes the tailer; this is the safety net
GONE_CHECK_S = 1.0  # how often the tailer checks that the runs it follows still exist
DELTA_FLUSH_S = 0.02  # text deltas are written in batches at most this old


def _dumps(data) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class Subscription:
    """Events of one run, in order, ending with ("done", None) when the run stops or pauses."""

    def __init__(self, hub: EventHub, run_id: str, after: int):
        self.hub = hub
        self.run_id = run_id
        self.after = after  # the resume point: the sequence number of the last event received
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.closed = False

    def __iter__(self) -> Iterator[tuple[str, dict | None]]:
        return self.events()

    def events(self, timeout: float | None = None) -> Iterator[tuple[str, dict | None]]:
        """Yield (event, data) until done; `timeout` (s) bounds each wait and yields ("ping", None)."""
        try:
            while True:
                try:
                    event, data = self.queue.get(timeout=timeout)
                except queue.Empty:
                    yield "ping", None
                    continue
                yield event, data
                if event == DONE:
                    return
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.hub._drop(self)


class EventHub:
    """Appends run events to the store's log and feeds subscribers from it.

    Subscribers read only the log, so they see an event once its state is committed, in commit order,
    whichever process wrote it. A commit in this process wakes the tailer at once (the fast path);
    other processes' events arrive within POLL_S, or at once where the store notifies (PostgreSQL's NOTIFY).
    """

    def __init__(self, store: Store):
        self.store = store
        self._subs: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tailer: threading.Thread | None = None
        self._closed = False
        self._deltas: dict[str, list[tuple[str, str, str]]] = {}
        self._delta_since: dict[str, float] = {}
        self._delta_lock = threading.Lock()
        self._poll_s: float | None = None  # decided when the first subscriber comes: notified or polling

    # -- writing -----------------------------------------------------------------------------
    def publish(self, run_id: str, event: str, data: dict | None) -> None:
        """Append an event; inside a write it commits (and is delivered) with that write's state."""
        rows = [*self._take_deltas(run_id), (run_id, event, _dumps(data))]
        with self.store.write():
            self.store.append_events(rows, time.time())
            self.store.after_commit(self._wake.set)

    def publish_delta(self, run_id: str, event: str, data: dict) -> None:
        """A streamed delta: buffered and written with the next event or flush, so tokens cost no commit each."""
        with self._delta_lock:
            self._deltas.setdefault(run_id, []).append((run_id, event, _dumps(data)))
            self._delta_since.setdefault(run_id, time.monotonic())

    def flush_deltas(self, run_id: str, older_than: float = 0.0) -> None:
        """Write the run's buffered deltas if the oldest is at least `older_than` seconds old."""
        since = self._delta_since.get(run_id)
        if since is None or time.monotonic() - since < older_than:
            return
        rows = self._take_deltas(run_id)
        if rows:
            with self.store.write():
                self.store.append_events(rows, time.time())
                self.store.after_commit(self._wake.set)

    def _take_deltas(self, run_id: str) -> list[tuple[str, str, str]]:
        with self._delta_lock:
            self._delta_since.pop(run_id, None)
            return self._deltas.pop(run_id, [])

    def finish(self, run_id: str) -> None:
        """Deltas left in the buffer are written (a stream ends on the run's own final event)."""
        self.flush_deltas(run_id)

    # -- reading -----------------------------------------------------------------------------
    def subscribe(self, run_id: str, after: int | None = None) -> Subscription:
        """Follow a run from the event after sequence number `after` (None: from now on; 0: from its start)."""
        if after is None:
            after = self.store.last_event_seq(run_id)
            if self.store.run_statuses([run_id]).get(run_id, "completed") in ENDED:
                sub = Subscription(self, run_id, after)  # from now on, an ended run has nothing more to say
                sub.queue.put((DONE, None))
                return sub
        sub = Subscription(self, run_id, after)
        with self._lock:
            if self._poll_s is None:
                self._poll_s = NOTIFIED_POLL_S if self.store.on_events(self._notified) else POLL_S
            self._subs.setdefault(run_id, []).append(sub)
            if self._tailer is None or not self._tailer.is_alive():
                self._tailer = threading.Thread(target=self._tail, name="run-events", daemon=True)
                self._tailer.start()
        self._wake.set()
        return sub

    def _notified(self, run_id: str | None, seq: int | None = None) -> None:
        """Some process committed events of `run_id` (up to number `seq`): read the log only if a run followed here
        is concerned and has not been read that far.

        Every instance hears every notification: waking on all of them made each instance read the log once per
        event of every instance's runs. This process's own commits wake the tailer at once, and their notification
        then finds the events delivered.
        """
        if run_id is None:
            self._wake.set()
            return
        subs = self._subs.get(run_id)
        if subs and (seq is None or any(sub.after < seq for sub in list(subs))):
            self._wake.set()

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _drop(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.run_id)
            if subs and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs[sub.run_id]

    def _tail(self) -> None:
        last_gone_check = time.monotonic()
        while not self._closed:
            self._wake.wait(self._poll_s or POLL_S)
            self._wake.clear()
            with self._lock:
                subs = {rid: list(s) for rid, s in self._subs.items()}
            if not subs:
                with self._lock:
                    if not self._subs:
                        self._tailer = None
                        return
                continue
            try:
                self._deliver(subs)
                if time.monotonic() - last_gone_check > GONE_CHECK_S:
                    last_gone_check = time.monotonic()
                    self._end_vanished(subs)
            except Exception:  # a locked or closed database must not kill the tailer: try again
                log.debug("reading the run event log failed", exc_info=True)
                time.sleep(POLL_S)

    def _deliver(self, subs: dict[str, list[Subscription]]) -> None:
        start = min(s.after for group in subs.values() for s in group)
        while True:
            rows = self.store.events_after(start, list(subs))
            for seq, run_id, event, data in rows:
                for sub in subs.get(run_id, ()):
                    if seq <= sub.after or sub.closed:
                        continue
                    sub.after = seq
                    sub.queue.put((event, json.loads(data)))
                    if event in ENDING:
                        sub.queue.put((DONE, None))
                        sub.close()
            if len(rows) < 2000:
                return
            start = rows[-1][0]

    def _end_vanished(self, subs: dict[str, list[Subscription]]) -> None:
        """A run deleted with its thread sends no final event: its subscribers are told done."""
        present = self.store.run_statuses(list(subs))
        for run_id, group in subs.items():
            if run_id not in present:
                for sub in group:
                    sub.queue.put((DONE, None))
                    sub.close()
