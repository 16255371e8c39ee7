"""Runtime benchmarks: engine overhead vs a direct model call, runs/s with a zero-latency model, list latency."""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.ids import new_id
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.fakes.provider import ScriptedProvider

PROMPT = [{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "Name three colours of the rainbow."}]


def _wait(rt: Runtime, thread_id: str, run_id: str) -> dict:
    while True:
        run = rt.get_run(thread_id, run_id)
        if run["status"] not in ("queued", "in_progress"):
            return run
        time.sleep(0.0005)


def engine_overhead_ratio(repeats: int) -> dict:
    """Median complete run through the engine / median direct provider.chat of the same messages (same model worker).

    The model runs in its worker process either way, so this is the engine's own cost; the process boundary's is
    `local_model_overhead_ratio` in bench_local_models.py.
    """
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(Settings(data_dir=Path(tmp), embedded_enabled=True, ollama_autodetect=False))
        provider, _ = rt.router.resolve(EMBEDDED_MODEL_ID)
        a = rt.create_assistant(model=EMBEDDED_MODEL_ID, instructions=PROMPT[0]["content"], temperature=0)
        request = {"model": EMBEDDED_MODEL_ID, "messages": PROMPT, "temperature": 0, "top_p": 1.0, "max_tokens": 32}

        def direct_call() -> float:
            t0 = time.perf_counter()
            provider.chat(request, on_text=lambda _piece: None, cancel=threading.Event())
            return time.perf_counter() - t0

        def engine_run() -> float:
            t0 = time.perf_counter()
            t = rt.create_thread(messages=[PROMPT[1]])
            for _event in rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=32, stream=True):
                pass
            return time.perf_counter() - t0

        direct_call()  # starts the worker
        direct, engine = [], []
        for _ in range(repeats):
            direct.append(direct_call())
            engine.append(engine_run())
        rt.close()
    return {"engine_overhead_ratio": round(statistics.median(engine) / statistics.median(direct), 3),
            "engine_run_ms": round(statistics.median(engine) * 1000, 1),
            "direct_worker_ms": round(statistics.median(direct) * 1000, 1)}


def engine_runs_per_s(total: int, clients: int = 8) -> dict:
    """Complete runs per second against a zero-latency scripted provider (the engine's own cost)."""
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(Settings(data_dir=Path(tmp), embedded_enabled=False, run_workers=8),
                     router=ModelRouter([ScriptedProvider()]))
        a = rt.create_assistant(model="fake-model")
        threads = [rt.create_thread()["id"] for _ in range(clients)]

        def client(thread_id: str, n: int) -> None:
            for i in range(n):
                rt.create_message(thread_id, role="user", content=f"hello {i}")
                run = rt.create_run(thread_id, assistant_id=a["id"])
                assert _wait(rt, thread_id, run["id"])["status"] == "completed"

        per = total // clients
        t0 = time.perf_counter()
        workers = [threading.Thread(target=client, args=(tid, per)) for tid in threads]
        [w.start() for w in workers]
        [w.join() for w in workers]
        elapsed = time.perf_counter() - t0
        rt.close()
    return {"engine_runs_per_s": round(per * clients / elapsed, 1)}


def store_list_ms(messages: int = 10_000, repeats: int = 200, database_url: str = "") -> float:
    """Median time (ms) to list the newest 20 messages of a 10,000-message thread (on SQLite, or this PostgreSQL)."""
    with tempfile.TemporaryDirectory() as tmp:
        rt = Runtime(Settings(data_dir=Path(tmp), embedded_enabled=False, database_url=database_url),
                     router=ModelRouter([ScriptedProvider()]))
        t = rt.create_thread()
        with rt.store.write():
            for i in range(messages):
                rt.store.insert("messages", {"id": new_id("msg"), "object": "thread.message", "created_at": i,
                                             "thread_id": t["id"], "role": "user", "run_id": None,
                                             "content": [{"type": "text", "text": {"value": f"message {i} " * 8,
                                                                                   "annotations": []}}]})
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            page = rt.list_messages(t["id"], limit=20)
            times.append(time.perf_counter() - t0)
        assert len(page["data"]) == 20 and page["has_more"]
        rt.close()
    return round(statistics.median(times) * 1000, 3)


def bench(quick: bool) -> dict:
    out = {}
    out.update(engine_overhead_ratio(5 if quick else 15))
    out.update(engine_runs_per_s(200 if quick else 800))
    out["store_list_ms"] = store_list_ms(repeats=100 if quick else 500)
    return out


if __name__ == "__main__":
    print(bench("--quick" in sys.argv))
