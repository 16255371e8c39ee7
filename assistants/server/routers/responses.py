"""/v1/responses: create (also streaming and background), retrieve, delete, cancel, input items."""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from assistants.errors import BadRequest
from assistants.responses import resume, service
from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, includes, json_body, page_params

router = APIRouter(prefix="/responses", tags=["responses"])


@router.post("")
def create_response(body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    result = service(rt).create(body)
    if isinstance(result, dict):
        return result
    return StreamingResponse(_frames(result), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _frames(events: Iterator[dict]) -> Iterator[bytes]:
    """SSE frames named by each event's type (Starlette runs this generator in its thread pool)."""
    try:
        for event in events:
            payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            yield f"event: {event['type']}\ndata: {payload}\n\n".encode()
    finally:
        close = getattr(events, "close", None)
        if close:
            close()


@router.get("/{response_id}")
def retrieve_response(response_id: str, request: Request, rt: Runtime = Depends(get_runtime)):
    """The response; with stream=true its events again, after sequence number `starting_after`."""
    q = request.query_params
    streamed = q.get("stream", "false").lower()
    if streamed not in ("true", "false", "1", "0"):
        raise BadRequest(f"stream must be true or false (got {q['stream']!r}).", param="stream")
    if streamed in ("false", "0"):
        return service(rt).get(response_id, includes(request))
    events = service(rt).events(response_id, includes(request), resume.starting_after(q.get("starting_after")))
    return StreamingResponse(_frames(events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.delete("/{response_id}")
def delete_response(response_id: str, rt: Runtime = Depends(get_runtime)):
    return service(rt).delete(response_id)


@router.post("/{response_id}/cancel")
def cancel_response(response_id: str, rt: Runtime = Depends(get_runtime)):
    return service(rt).cancel(response_id)


@router.get("/{response_id}/input_items")
def list_input_items(response_id: str, page: dict = Depends(page_params),
                     rt: Runtime = Depends(get_runtime)):
    return service(rt).input_items(response_id, **page)
