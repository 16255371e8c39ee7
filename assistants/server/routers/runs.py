"""Runs: create (also streaming), create thread and run, list, retrieve, modify, cancel, submit tool outputs."""

from __future__ import annotations

import queue
import time

from fastapi import APIRouter, Depends, Request, Response

from assistants import validation as v
from assistants.errors import BadRequest
from assistants.runs.events import DONE
from assistants.runtime import RUN_FIELDS, Runtime
from assistants.server.deps import POLL_HEADERS, get_runtime, includes, json_body, modify_metadata, only, page_params
from assistants.server.sse import event_stream

router = APIRouter(tags=["runs"])

ACTIVE = ("queued", "in_progress", "cancelling")
# Run events after which a poller has something new to see.
SETTLED = {f"thread.run.{s}" for s in ("requires_action", "completed", "failed", "cancelled", "expired", "incomplete")}
# How long a poll helper's retrieve may wait for the run to settle before answering with its current state.
LONG_POLL_S = 2.0
# The run's events say when to read it again (whichever process executes it); this is only the safety net.
RECHECK_S = 0.5
THREAD_AND_RUN_FIELDS = (RUN_FIELDS - {"additional_instructions", "additional_messages"}) | {"thread", "tool_resources"}


# Registered before the threads router's /threads/{thread_id}, which would otherwise take "runs" as an id.
@router.post("/threads/runs")
def create_thread_and_run(request: Request, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    only(body, THREAD_AND_RUN_FIELDS)
    stream = v.flag(body.get("stream"), "stream")
    body.pop("stream", None)
    thread = body.pop("thread", None)
    if thread is not None and not isinstance(thread, dict):
        raise BadRequest("thread must be an object with messages, tool_resources and metadata.", param="thread")
    result = rt.create_thread_and_run(thread=thread, stream=stream, **body)
    return event_stream(result, _include(request, body)) if stream else result


@router.post("/threads/{thread_id}/runs")
def create_run(thread_id: str, request: Request, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    only(body, RUN_FIELDS)
    stream = v.flag(body.get("stream"), "stream")
    body.pop("stream", None)
    result = rt.create_run(thread_id, stream=stream, **body)
    return event_stream(result, _include(request, body)) if stream else result


def _include(request: Request, body: dict) -> list[str]:
    """`include[]` from the query (where the SDK puts it) or the body."""
    extra = body.get("include")
    return includes(request) + (extra if isinstance(extra, list) else [])


@router.get("/threads/{thread_id}/runs")
def list_runs(thread_id: str, page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return rt.list_runs(thread_id, **page)


@router.get("/threads/{thread_id}/runs/{run_id}")
def retrieve_run(thread_id: str, run_id: str, request: Request, response: Response, rt: Runtime = Depends(get_runtime)):
    response.headers.update(POLL_HEADERS)
    if request.headers.get("x-stainless-poll-helper") == "true":
        return _wait_until_settled(rt, thread_id, run_id)
    return rt.get_run(thread_id, run_id)


def _wait_until_settled(rt: Runtime, thread_id: str, run_id: str) -> dict:
    """For SDK pollers: answer as soon as the run settles (bounded), instead of making them sleep and ask again."""
    # The run's events come through the event log from whichever process executes it (this one or another).
    run, sub = rt.watch_run(thread_id, run_id, ACTIVE)
    if sub is None:
        return run
    try:
        deadline = time.monotonic() + LONG_POLL_S
        while run["status"] in ACTIVE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                event, data = sub.queue.get(timeout=min(remaining, RECHECK_S))
            except queue.Empty:
                event, data = None, None
            if event in SETTLED and isinstance(data, dict) and data.get("id") == run_id:
                run = data  # the run as that change committed it: what a read would return now
            elif event is None or event in SETTLED or event == DONE:
                run = rt.get_run(thread_id, run_id)
        return run
    finally:
        sub.close()


@router.post("/threads/{thread_id}/runs/{run_id}")
def modify_run(thread_id: str, run_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return modify_metadata(body, rt.get_run, rt.update_run, thread_id, run_id)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
def cancel_run(thread_id: str, run_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.cancel_run(thread_id, run_id)


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
def submit_tool_outputs(thread_id: str, run_id: str, request: Request, body: dict = Depends(json_body),
                        rt: Runtime = Depends(get_runtime)):
    only(body, ("tool_outputs", "stream"))
    stream = v.flag(body.get("stream"), "stream")
    if "tool_outputs" not in body:
        raise BadRequest("Missing required parameter: 'tool_outputs'.", param="tool_outputs")
    result = rt.submit_tool_outputs(thread_id, run_id, tool_outputs=body["tool_outputs"], stream=stream)
    return event_stream(result, includes(request)) if stream else result
