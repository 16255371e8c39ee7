"""Local model benchmarks: a run through the worker process vs direct llama-cpp-python, and a crashed worker's restart."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.providers.embedded import model_path
from assistants.providers.worker_client import worker_env
from assistants.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [{"role": "system", "content": "You are a helpful assistant."},
          {"role": "user", "content": "Name three colours of the rainbow."}]
MAX_TOKENS = 32

# Direct llama-cpp-python in a child process (native code stays out of this one), loaded as the worker loads it,
# timing one streamed generation of PROMPT per line it reads.
DIRECT = r"""
import json, sys, time
from assistants.providers.model_worker import load
llama, _ = load(sys.argv[1], int(sys.argv[2]), 0)
messages, max_tokens = json.loads(sys.argv[3]), int(sys.argv[4])
print("ready", flush=True)
for _ in sys.stdin:
    t0 = time.perf_counter()
    for _chunk in llama.create_chat_completion(messages=messages, temperature=0, top_p=1.0, max_tokens=max_tokens,
                                               seed=0, stream=True):
        pass
    print(time.perf_counter() - t0, flush=True)
"""


def _runtime(tmp: str) -> Runtime:
    return Runtime(Settings(data_dir=Path(tmp), embedded_enabled=True, ollama_autodetect=False))


def local_model_overhead_ratio(repeats: int) -> dict:
    """Median run on the embedded model through the engine and worker / median direct generation, interleaved."""
    n_ctx = Settings(data_dir=Path(".")).embedded_context
    direct_proc = subprocess.Popen([sys.executable, "-c", DIRECT, str(model_path()), str(n_ctx), json.dumps(PROMPT),
                                    str(MAX_TOKENS)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                   env=worker_env())  # the worker's settings (OpenMP wait policy): the same engine
    assert direct_proc.stdout.readline().strip() == "ready"
    with tempfile.TemporaryDirectory() as tmp:
        rt = _runtime(tmp)
        a = rt.create_assistant(model=EMBEDDED_MODEL_ID, instructions=PROMPT[0]["content"], temperature=0)

        def engine_run() -> float:
            t0 = time.perf_counter()
            t = rt.create_thread(messages=[PROMPT[1]])
            for _event in rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=MAX_TOKENS, stream=True):
                pass
            return time.perf_counter() - t0

        def direct_run() -> float:
            direct_proc.stdin.write("go\n")
            direct_proc.stdin.flush()
            return float(direct_proc.stdout.readline())

        engine_run(), direct_run()  # warm both: worker started, model pages in memory
        direct, engine = [], []
        for i in range(repeats):  # interleaved, in alternating order, so load on the machine hits both alike
            pair = (direct_run, engine_run) if i % 2 == 0 else (engine_run, direct_run)
            for fn in pair:
                (direct if fn is direct_run else engine).append(fn())
        rt.close()
    direct_proc.stdin.close()
    direct_proc.wait()
    return {"local_model_overhead_ratio": round(statistics.median(engine) / statistics.median(direct), 3),
            # best / best: the boundary's own cost, less swayed by whatever else the two cores are doing
            "local_model_overhead_ratio_best": round(min(engine) / min(direct), 3),
            "local_model_run_ms": round(statistics.median(engine) * 1000, 1),
            "direct_llama_subprocess_ms": round(statistics.median(direct) * 1000, 1)}


def model_worker_restart_ms(repeats: int) -> dict:
    """From SIGKILL of the embedded model's worker to the next run's first streamed token (median)."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        rt = _runtime(tmp)
        provider, _ = rt.router.resolve(EMBEDDED_MODEL_ID)
        a = rt.create_assistant(model=EMBEDDED_MODEL_ID, instructions=PROMPT[0]["content"], temperature=0)

        def first_token(t0: float) -> float:
            """Seconds from t0 to the run's first token; the run is then read to its end."""
            first = None
            t = rt.create_thread(messages=[PROMPT[1]])
            for event, _data in rt.create_run(t["id"], assistant_id=a["id"], max_completion_tokens=16, stream=True):
                if event == "thread.message.delta" and first is None:
                    first = time.perf_counter() - t0
            return first

        first_token(time.perf_counter())
        for _ in range(repeats):
            pid = provider.worker().pid
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            times.append(first_token(t0))
        rt.close()
    return {"model_worker_restart_ms": round(statistics.median(times) * 1000, 1)}


def bench(quick: bool) -> dict:
    out = {}
    out.update(local_model_overhead_ratio(5 if quick else 15))
    out.update(model_worker_restart_ms(3 if quick else 7))
    return out


if __name__ == "__main__":
    print(bench("--quick" in sys.argv))
