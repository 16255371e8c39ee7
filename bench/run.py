"""Run every benchmark: `python bench/run.py [--quick]`; a table for people, then one JSON line."""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# key -> (goal, "max" if lower is better else "min")
GOALS = {
    "engine_overhead_ratio": (1.05, "max"), "engine_runs_per_s": (100, "min"), "store_list_ms": (5, "max"),
    "code_exec_warm_ms": (50, "max"), "code_session_cold_ms": (1500, "max"), "file_search_query_ms": (20, "max"),
    "ingest_mb_per_s": (1, "min"), "sdk_overhead_ms": (20, "max"), "sse_first_event_ms": (20, "max"),
    "api_runs_per_s": (50, "min"), "ui_rerun_ms": (300, "max"), "ui_first_token_ratio": (1.3, "max"),
    "responses_overhead_ms": (20, "max"), "responses_first_event_ms": (20, "max"),
    "local_model_overhead_ratio": (1.10, "max"), "model_worker_restart_ms": (2000, "max"),
    "cross_process_cancel_ms": (1000, "max"), "cross_process_cancel_max_ms": (2000, "max"),
    "cross_process_stream_lag_ms": (50, "max"), "pg_api_runs_per_s": (50, "min"), "multi_instance_scaling": (2.5, "min"),
    "pg_store_list_ms": (5, "max"),
}
MODULES = ["bench_engine", "bench_local_models", "bench_multiprocess", "bench_code", "bench_search", "bench_server",
           "bench_responses", "bench_postgres", "bench_ui", "bench_browser"]


def main() -> None:
    quick = "--quick" in sys.argv
    results: dict = {}
    for name in MODULES:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            results.update(module.bench(quick))
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            results[f"{name}_error"] = f"{type(exc).__name__}: {exc}"
        print(f"# {name}: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    print(f"{'metric':<26}{'value':>12}  {'goal':>10}  met")
    for key, value in results.items():
        goal = GOALS.get(key)
        if goal is None or not isinstance(value, (int, float)):
            print(f"{key:<26}{value!s:>12}")
            continue
        met = value <= goal[0] if goal[1] == "max" else value >= goal[0]
        sign = "<=" if goal[1] == "max" else ">="
        print(f"{key:<26}{value:>12}  {sign}{goal[0]:>8}  {'yes' if met else 'NO'}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
