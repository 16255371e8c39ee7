"""A response's events again (`GET /v1/responses/{id}?stream=true&starting_after=N`), rebuilt from its run's event log.

The translation is deterministic, so translating the same run events again gives the same events with the same
sequence numbers, in any process: a finished run's events are read from the log, a running one is followed live.
Events the log has pruned (old ended runs) are gone; then only the opening and the final event are sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from assistants.errors import APIError, BadRequest
from assistants.responses.events import Translator
from assistants.responses.output import filenames, response_object, search_queries, session_thread, shaped

OVER = ("completed", "failed", "cancelled", "incomplete", "expired", "requires_action")


def starting_after(value: str | None) -> int:
    """The query's starting_after: a sequence number (events after it are sent); 400 when it is not one."""
    if value is None or value == "":
        return -1
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise BadRequest(f"starting_after must be a non-negative integer (got {value!r}).", param="starting_after")
    return number


def _logged(rt: Any, run_id: str, after: int) -> Iterator[tuple[str, dict | None]]:
    """The run's logged events after sequence number `after`, without waiting for more."""
    while True:
        rows = rt.store.events_after(after, [run_id])
        for _seq, _run, event, data in rows:
            yield event, json.loads(data)
        if len(rows) < 2000:
            return
        after = rows[-1][0]


def replay(svc: Any, record: dict, include: list[str], after: int) -> Iterator[dict]:
    """The response's events with a sequence number above `after`, live until it ends."""
    rt = svc.rt
    status = "queued" if record["echo"].get("background") else "in_progress"
    start = response_object(record, status, [], None)
    translator = Translator(start, session_thread(record), include,
                            lambda: shaped(svc.finalize(record["id"]), include),
                            lambda: search_queries(rt, record["run_id"]), filenames(rt))
    offset = record.get("event_after", 0)
    try:
        over = record.get("final") is not None or rt.get_run(record["thread_id"], record["run_id"])["status"] in OVER
    except APIError:
        over = True
    sub = None if over else rt.engine.hub.subscribe(record["run_id"], after=offset)
    try:
        for event in translator.run(_logged(rt, record["run_id"], offset) if sub is None else sub):
            if event["sequence_number"] > after:
                yield event
    finally:
        if sub is not None:
            sub.close()
