"""`code_interpreter` with `container: "cntr_…"`: the run's code goes to that container's session and files."""

from __future__ import annotations

import dataclasses
from typing import Any

from assistants.errors import APIError
from assistants.responses import containers, run_records
from assistants.tools import BuiltinOutcome, empty_details


def auto_memory_mb(record: dict | None) -> int | None:
    """The memory_limit of a `{"type": "auto", "memory_limit": ...}` container, as the session's MB budget."""
    container = (run_records.tool_of(record, "code_interpreter") or {}).get("container")
    return containers.MEMORY_LIMITS.get(container.get("memory_limit") or "") if isinstance(container, dict) else None


def install(rt: Any) -> None:
    """Wrap the runtime's code_interpreter handler once; runs that name no container go straight to it."""
    original = rt.toolbox.handlers.get("code_interpreter")
    if original is None or getattr(original, "responses_containers", False):
        return

    def handle(arguments: dict, ctx: Any):
        record = run_records.current(rt, ctx.run)
        cntr = (record or {}).get("container")
        if cntr is None:
            return original(arguments, dataclasses.replace(ctx, memory_mb=auto_memory_mb(record)))
        try:
            thread = containers.live_thread_of(rt, cntr)
        except APIError as exc:
            msg = f"error: {exc.message}" if exc.code == "container_expired" else \
                f"error: container {cntr} no longer exists (it was deleted)."
            return BuiltinOutcome(msg, empty_details("code_interpreter", arguments), error=msg)
        containers.touch(rt, thread)
        # The handler keys the session, its input files and its output files by ctx.thread: the container's.
        return original(arguments, dataclasses.replace(ctx, thread=thread, memory_mb=containers.memory_mb(thread)))

    handle.responses_containers = True
    rt.toolbox.register("code_interpreter", handle)

