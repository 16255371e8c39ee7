"""Two processes on one database: cancel issued on B for a run streaming on A; event lag from A's commit to B."""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.runs.conftest import Proc
from tests.runs.proc import make_runtime


def _first_delta(rt, run_id: str) -> None:
    sub = rt.engine.hub.subscribe(run_id, after=0)
    try:
        while sub.queue.get(timeout=10)[0] != "thread.message.delta":
            pass
    finally:
        sub.close()


def cross_process_cancel_ms(a: Proc, rt, repeats: int) -> dict:
    """Cancel on B until B reads `cancelled`, the run executing on A mid-stream."""
    times = []
    for _ in range(repeats):
        got = a.ask(op="run", content="slow:3000:0.01", assistant_id=a.ready["assistant_id"])
        _first_delta(rt, got["run_id"])
        t0 = time.perf_counter()
        rt.cancel_run(got["thread_id"], got["run_id"])
        while rt.get_run(got["thread_id"], got["run_id"])["status"] != "cancelled":
            time.sleep(0.002)
        times.append((time.perf_counter() - t0) * 1000)
    return {"cross_process_cancel_ms": round(statistics.median(times), 1),
            "cross_process_cancel_max_ms": round(max(times), 1)}


def cross_process_stream_lag_ms(a: Proc, rt, repeats: int) -> dict:
    """Median delay from an event's commit on A (its log timestamp) to its arrival at a subscriber on B."""
    lags = []
    for _ in range(repeats):
        got = a.ask(op="run", content="slow:100:0.01", assistant_id=a.ready["assistant_id"])
        sub = rt.engine.hub.subscribe(got["run_id"], after=0)
        arrivals = []
        for event, _ in sub.events(timeout=10):
            if event != "done":
                arrivals.append(time.time())
        committed = [r[0] for r in rt.store.conn().execute(
            "SELECT created_at FROM run_events WHERE run_id = ? ORDER BY seq", (got["run_id"],))]
        # The first events were written before the subscription existed: only the live part counts.
        lags.extend((arr - com) * 1000 for arr, com in list(zip(arrivals, committed, strict=True))[10:])
    return {"cross_process_stream_lag_ms": round(statistics.median(lags), 1)}


def bench(quick: bool) -> dict:
    data = Path(tempfile.mkdtemp(prefix="bench-mp-"))
    try:
        make_runtime(str(data)).close()
        a = Proc(data)
        rt = make_runtime(str(data))
        try:
            out = cross_process_cancel_ms(a, rt, 5 if quick else 15)
            out.update(cross_process_stream_lag_ms(a, rt, 3 if quick else 10))
        finally:
            rt.close()
            a.close()
        return out
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    print(bench("--quick" in sys.argv))
