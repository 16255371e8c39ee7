"""Which response record decides a run's tool settings (filters, vector stores, container): its newest one.

The request that carries function outputs may change the tools, so the record of the run's latest segment counts.
While a run is active it holds its thread, so the thread's newest record is that segment's when it names the run.
(A store query "newest record of a run" would say this directly: records has first_of_run only.)
"""

from __future__ import annotations

from typing import Any

from assistants.responses import records


def current(rt: Any, run: dict) -> dict | None:
    """The record of the run's newest segment, else the one that started it."""
    latest = records.latest_on_thread(rt.store, run["thread_id"])
    if latest is not None and latest["run_id"] == run["id"]:
        return latest
    return records.first_of_run(rt.store, run["id"])


def tool_of(record: dict | None, kind: str) -> dict | None:
    """The record's echoed tool of one type (file_search, code_interpreter), if it has one."""
    return next((t for t in ((record or {}).get("echo") or {}).get("tools") or [] if t.get("type") == kind), None)


def retool(rt: Any, run_id: str, tools: list[dict]) -> bool:
    """Give a run waiting for function outputs new tools for the rest of it; False if it stopped waiting.

    A compare-and-set on the waiting status through the store (the runtime has no "change a waiting run's tools").
    """
    return rt.store.update_fields("runs", run_id, {"tools": tools}, status="requires_action") > 0
