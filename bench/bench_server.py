"""REST server benchmarks through the real openai SDK against a zero-latency scripted model."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import OpenAI

from assistants.runtime import Runtime
from assistants.server import create_app
from assistants.server.background import BackgroundServer
from bench.scripted import scripted_runtime

CLIENTS = 20


def _sdk(base_url: str) -> OpenAI:
    return OpenAI(base_url=base_url, api_key="bench", max_retries=0)


def sdk_overhead(rt: Runtime, client: OpenAI, repeats: int) -> dict:
    """Median SDK round (message + create_and_poll) minus the in-process equivalent (wait via the event hub)."""
    assistant = rt.create_assistant(model="fake-model")
    inproc, api = [], []
    for i in range(repeats + 3):  # the first rounds warm connections and caches
        thread = rt.create_thread()
        t0 = time.perf_counter()
        rt.create_message(thread["id"], role="user", content=f"question {i}")
        for _event in rt.create_run(thread["id"], assistant_id=assistant["id"], stream=True):
            pass
        inproc.append(time.perf_counter() - t0)

        thread = rt.create_thread()
        t0 = time.perf_counter()
        client.beta.threads.messages.create(thread_id=thread["id"], role="user", content=f"question {i}")
        run = client.beta.threads.runs.create_and_poll(thread_id=thread["id"], assistant_id=assistant["id"])
        api.append(time.perf_counter() - t0)
        assert run.status == "completed", run.last_error
    inproc_ms = statistics.median(inproc[3:]) * 1000
    api_ms = statistics.median(api[3:]) * 1000
    return {"sdk_overhead_ms": round(api_ms - inproc_ms, 2), "sdk_run_ms": round(api_ms, 2),
            "inprocess_run_ms": round(inproc_ms, 2)}


def sse_first_event(rt: Runtime, client: OpenAI, repeats: int) -> dict:
    """Median time from sending a `stream: true` run request to the SDK yielding its first event."""
    assistant = rt.create_assistant(model="fake-model")
    firsts, totals = [], []
    for _ in range(repeats + 3):
        thread = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
        t0 = time.perf_counter()
        with client.beta.threads.runs.stream(thread_id=thread["id"], assistant_id=assistant["id"]) as stream:
            first = None
            for event in stream:
                if first is None:
                    first = time.perf_counter() - t0
                    assert event.event == "thread.run.created"
        totals.append(time.perf_counter() - t0)
        firsts.append(first)
    return {"sse_first_event_ms": round(statistics.median(firsts[3:]) * 1000, 2),
            "sse_run_ms": round(statistics.median(totals[3:]) * 1000, 2)}


def runs_per_s(base_urls: list[str], clients: int, runs_each: int, poll_ms: int | None = None) -> float:
    """Complete runs/s of `clients` SDK clients in parallel (spread over the servers), each creating a message and
    polling a run on its own thread, `runs_each` times (polling as the server's openai-poll-after-ms says, or
    every `poll_ms`)."""
    setup = _sdk(base_urls[0])
    assistant = setup.beta.assistants.create(model="fake-model")
    threads = [setup.beta.threads.create().id for _ in range(clients)]
    sdks = [_sdk(base_urls[k % len(base_urls)]) for k in range(clients)]
    for client in sdks:  # open the connections before the clock starts
        client.models.list()
    failures: list[str] = []
    start = threading.Barrier(clients + 1)

    def work(client: OpenAI, thread_id: str) -> None:
        start.wait()
        for i in range(runs_each):
            client.beta.threads.messages.create(thread_id=thread_id, role="user", content=f"go {i}")
            run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant.id,
                                                           **({"poll_interval_ms": poll_ms} if poll_ms else {}))
            if run.status != "completed":
                failures.append(run.status)

    workers = [threading.Thread(target=work, args=(c, t)) for c, t in zip(sdks, threads, strict=True)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    assert not failures, failures
    return clients * runs_each / elapsed


def api_runs_per_s(base_url: str, runs_each: int) -> dict:
    """Complete runs/s: 20 SDK clients in parallel on one server."""
    return {"api_runs_per_s": round(runs_per_s([base_url], CLIENTS, runs_each), 1)}


def bench(quick: bool) -> dict:
    """All three server numbers (plus the raw timings they come from)."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK flags every Assistants call
    with tempfile.TemporaryDirectory() as tmp:
        rt = scripted_runtime(Path(tmp))
        try:
            with BackgroundServer(create_app(rt)) as server:
                client = _sdk(server.base_url)
                out = sdk_overhead(rt, client, 20 if quick else 100)
                out.update(sse_first_event(rt, client, 20 if quick else 100))
                out.update(api_runs_per_s(server.base_url, 3 if quick else 10))
        finally:
            rt.close()
    return out


if __name__ == "__main__":
    print(json.dumps(bench(quick="--quick" in sys.argv[1:])))
