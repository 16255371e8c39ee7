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


# What a request carrying function outputs sets for the rest of its run (the private ones are RunExtras).
CONTINUED = ("model", "instructions", "temperature", "top_p", "response_format", "parallel_tool_calls",
             "max_completion_tokens")
# Set (to None when the request leaves them out) rather than kept, as each OpenAI request stands on its own.
RESET = ("instructions", "max_completion_tokens")


def settings_of(run_body: dict, extras: dict, tools_given: bool) -> dict:
    """The run fields a continuing request replaces: model, instructions, sampling, its max_output_tokens, extras,
    and tools if it names them."""
    fields = {k: run_body.get(k) for k in CONTINUED if run_body.get(k) is not None or k in RESET}
    fields["instructions"] = fields["instructions"] or ""
    fields["response_format"] = run_body.get("response_format") or "auto"  # no text.format: plain text again
    fields.update(extras)
    if tools_given:
        fields["tools"] = run_body["tools"]
    return fields


def rebase(rt: Any, run_id: str, fields: dict) -> dict:
    """Give a run waiting for function outputs new settings for the rest of it; returns the ones it had.

    A compare-and-set on the waiting status through the store (the runtime has no "change a waiting run"); a run
    that stopped waiting is left alone (submitting the outputs then says why).
    """
    run = rt.store.get("runs", run_id) or {}
    old = {k: run.get(k) for k in fields}
    rt.store.update_fields("runs", run_id, fields, status="requires_action")
    return old
