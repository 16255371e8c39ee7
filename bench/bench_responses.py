"""Responses API benchmarks through the real openai SDK against a zero-latency scripted model."""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from openai import OpenAI

from assistants.runtime import Runtime
from assistants.server import create_app
from assistants.server.background import BackgroundServer
from bench.scripted import scripted_runtime

WARMUP = 3


def responses_overhead(rt: Runtime, client: OpenAI, repeats: int) -> dict:
    """Median `client.responses.create` round trip minus the same generation in-process (thread + streamed run)."""
    assistant = rt.create_assistant(model="fake-model")
    inproc, api = [], []
    for i in range(repeats + WARMUP):
        t0 = time.perf_counter()
        thread = rt.create_thread(messages=[{"role": "user", "content": f"question {i}"}])
        for _event in rt.create_run(thread["id"], assistant_id=assistant["id"], stream=True):
            pass
        inproc.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        response = client.responses.create(model="fake-model", input=f"question {i}")
        api.append(time.perf_counter() - t0)
        assert response.status == "completed", response.error
    inproc_ms = statistics.median(inproc[WARMUP:]) * 1000
    api_ms = statistics.median(api[WARMUP:]) * 1000
    return {"responses_overhead_ms": round(api_ms - inproc_ms, 2), "responses_create_ms": round(api_ms, 2),
            "responses_inprocess_ms": round(inproc_ms, 2)}


def responses_first_event(client: OpenAI, repeats: int) -> dict:
    """Median time from sending a `stream=True` create to the SDK yielding its first event (response.created)."""
    firsts, totals = [], []
    for i in range(repeats + WARMUP):
        t0 = time.perf_counter()
        first = None
        for event in client.responses.create(model="fake-model", input=f"stream {i}", stream=True):
            if first is None:
                first = time.perf_counter() - t0
                assert event.type == "response.created"
        totals.append(time.perf_counter() - t0)
        firsts.append(first)
    return {"responses_first_event_ms": round(statistics.median(firsts[WARMUP:]) * 1000, 2),
            "responses_stream_ms": round(statistics.median(totals[WARMUP:]) * 1000, 2)}


def bench(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        rt = scripted_runtime(Path(tmp))
        try:
            with BackgroundServer(create_app(rt)) as server:
                client = OpenAI(base_url=server.base_url, api_key="bench", max_retries=0)
                out = responses_overhead(rt, client, 20 if quick else 100)
                out.update(responses_first_event(client, 20 if quick else 100))
        finally:
            rt.close()
    return out


if __name__ == "__main__":
    print(json.dumps(bench(quick="--quick" in sys.argv[1:])))
