"""Code Interpreter speed: warm `print(1+1)` and a new session's first call (its cgroup included), engine side."""

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as `python bench/bench_code.py`
    sys.path.insert(0, str(ROOT))


def _timed_ms(fn) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench(quick: bool) -> dict:
    """Median ms of warm `print(1+1)` calls and of first calls in new sessions (sandbox start included)."""
    # imported here, after the sys.path fix above
    from assistants.tools.code_interpreter import CodeInterpreter

    with tempfile.TemporaryDirectory() as tmp:
        ci = CodeInterpreter(Path(tmp))
        try:
            ok, reason = ci.available()  # the one-off sandbox probe is not part of a session's start
            if not ok:
                return {"code_exec_warm_ms": None, "code_session_cold_ms": None, "code_skipped": reason}
            budget = "cgroup per session" if ci.budgets.status()[0] else "per-process limits"
            cold = []
            for i in range(3 if quick else 7):
                key = f"bench-cold-{i}"
                cold.append(_timed_ms(lambda key=key: ci.execute(key, "print(1+1)")))
                ci.reset(key)
            ci.execute("bench-warm", "print(1+1)")
            warm = [_timed_ms(lambda: ci.execute("bench-warm", "print(1+1)")) for _ in range(20 if quick else 200)]
        finally:
            ci.close()
    return {
        "code_exec_warm_ms": round(statistics.median(warm), 2),
        "code_session_cold_ms": round(statistics.median(cold), 1),
        "code_budget": budget,  # what the figures include: a cgroup per session, or the fallback
    }


if __name__ == "__main__":
    print(bench(quick="--quick" in sys.argv))
