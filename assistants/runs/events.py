"""Fan-out of a run's streaming events to any number of subscribers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

DONE = "done"


class Subscription:
    """Events of one run, in order, ending with ("done", None) when the run stops or pauses."""

    def __init__(self, hub: EventHub, run_id: str):
        self.hub = hub
        self.run_id = run_id
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
    """Per-run subscriber lists; publishing never blocks the run."""

    def __init__(self):
        self._subs: dict[str, list[Subscription]] = {}
        self._lock = threading.Lock()

    def subscribe(self, run_id: str) -> Subscription:
        sub = Subscription(self, run_id)
        with self._lock:
            self._subs.setdefault(run_id, []).append(sub)
        return sub

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))

    def publish(self, run_id: str, event: str, data: dict | None) -> None:
        subs = self._subs.get(run_id)
        if not subs:
            return
        for sub in list(subs):
            sub.queue.put((event, data))

    def finish(self, run_id: str) -> None:
        """Send `done` to every subscriber of the run and forget them."""
        with self._lock:
            subs = self._subs.pop(run_id, [])
        for sub in subs:
            sub.queue.put((DONE, None))

    def _drop(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.run_id)
            if subs and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._subs[sub.run_id]
