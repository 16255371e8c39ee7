"""Server-Sent Events over a run's event subscription, with OpenAI's event names and `data: [DONE]`."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from assistants.runs.events import DONE, Subscription

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
_STOP = object()


def encode(event: str, data: dict | None) -> bytes:
    """One SSE frame; JSON never holds a raw newline, so one `data:` line is enough."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def shape_step(event: str, obj: dict, with_content: bool) -> dict:
    """A step event as OpenAI sends it: chunk text only when `include`d; created/in_progress as they were then."""
    # The engine publishes the step dict and then fills its tool calls' results/outputs in place, so a late
    # serialisation would show them early and the SDK would apply the following delta twice.
    details = obj.get("step_details") or (obj.get("delta") or {}).get("step_details") or {}
    calls = details.get("tool_calls") or []
    fresh = event in ("thread.run.step.created", "thread.run.step.in_progress")
    if not any(c.get("type") == "file_search" or (fresh and c.get("type") == "code_interpreter") for c in calls):
        return obj
    # Shared with the engine's later updates and with other subscribers: work on a copy.
    obj = json.loads(json.dumps(obj))
    details = obj.get("step_details") or obj["delta"]["step_details"]
    for call in details["tool_calls"]:
        inner = call.get(call.get("type")) or {}
        if fresh and call.get("type") == "file_search":
            inner["results"] = []
        elif fresh and call.get("type") == "code_interpreter":
            inner["outputs"] = []
        elif call.get("type") == "file_search" and not with_content:
            for result in inner.get("results") or []:
                result.pop("content", None)
    return obj


def event_stream(sub: Subscription, include: list[str] | None = None) -> StreamingResponse:
    """The response for `stream: true`: every event of the subscription, then `event: done`."""
    with_content = any(FILE_SEARCH_CONTENT in i for i in include or [])
    return StreamingResponse(_frames(sub, with_content), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _frame(event: str, data: dict | None, with_content: bool) -> bytes:
    """One event, serialised; retried if the engine thread changed the dict meanwhile (it settles at once)."""
    for _ in range(2):
        try:
            return _shaped(event, data, with_content)
        except RuntimeError:  # "dictionary changed size during iteration"
            continue
    return _shaped(event, data, with_content)


def _shaped(event: str, data: dict | None, with_content: bool) -> bytes:
    if event.startswith("thread.run.step.") and data:
        data = shape_step(event, data, with_content)
    return encode(event, data)


async def _frames(sub: Subscription, with_content: bool) -> AsyncIterator[bytes]:
    """Bridge the blocking subscription to the event loop with one pump thread, so no pool thread waits on it."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:  # the loop is gone: the client left and the server is stopping
            stop.set()

    def pump() -> None:
        try:
            for item in sub.events(timeout=KEEPALIVE_S):
                if stop.is_set():
                    return
                hand_over(item)
        except Exception as exc:  # reported to the client as an `error` event rather than a cut stream
            log.exception("event stream of run %s failed", sub.run_id)
            hand_over(("error", {"error": {"message": f"The event stream failed: {type(exc).__name__}: {exc}",
                                           "type": "server_error", "param": None, "code": "server_error"}}))
        hand_over((_STOP, None))

    threading.Thread(target=pump, name=f"sse-{sub.run_id}", daemon=True).start()
    try:
        while True:
            event, data = await inbox.get()
            if event is _STOP:
                return
            if event == "ping":
                yield b": keep-alive\n\n"
            elif event == DONE:
                yield b"event: done\ndata: [DONE]\n\n"
                return
            else:
                yield _frame(event, data, with_content)
                if event == "error":
                    yield b"event: done\ndata: [DONE]\n\n"
                    return
    finally:
        stop.set()
        if not sub.closed:
            sub.close()
            sub.queue.put((DONE, None))  # wake the pump if it is waiting, so its thread ends now
