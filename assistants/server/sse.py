"""Server-Sent Events over a run's event subscription, with OpenAI's event names and `data: [DONE]`."""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from assistants import jsonsafe
from assistants.runs.engine import indexed_outputs
from assistants.runs.events import DONE, Subscription
from assistants.runs.status import public

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
_STOP = object()


def encode(event: str, data: dict | None) -> bytes:
    """One SSE frame; JSON never holds a raw newline, so one `data:` line is enough."""
    payload = jsonsafe.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


class StepShaper:
    """One stream's run-step events as OpenAI streams them, so the SDK's AssistantEventHandler works.

    A tool_calls step starts with an empty `tool_calls` list; every call then arrives as step deltas carrying its
    `index`: first its id, type and name (the SDK calls on_tool_call_created), then its input or arguments, then
    its outputs (each an on_tool_call_delta). The SDK accumulates deltas onto the snapshot it took at
    `step.created`, so nothing may be sent twice. File-search chunk text only goes out when `include`d.
    """

    def __init__(self, with_content: bool):
        self.with_content = with_content
        self.steps: dict[str, dict] = {}  # tool_calls step id -> {"calls": [...], "announced": n}

    def frames(self, event: str, data: dict | None) -> list[tuple[str, dict | None]]:
        if not data:
            return [(event, data)]
        if event == "thread.run.requires_action":  # the function calls still unannounced go out first
            out = [f for step_id in list(self.steps) for f in self._announce_rest(step_id, None)]
            return [*out, (event, data)]
        if event == "thread.message.delta" and "_logprobs" in data:  # kept for the Responses stream only
            return [(event, public(data))]
        if not event.startswith("thread.run.step."):
            return [(event, data)]
        if event == "thread.run.step.delta":
            return self._delta(data)
        details = data.get("step_details") or {}
        if details.get("type") != "tool_calls":
            return [(event, data)]
        if event in ("thread.run.step.created", "thread.run.step.in_progress"):
            if event == "thread.run.step.created":
                # Events are shared by every stream of the run: never changed here, only copied.
                self.steps[data["id"]] = {"calls": list(details.get("tool_calls") or []), "announced": 0}
            out = [(event, {**data, "step_details": {**details, "tool_calls": []}})]
            state = self.steps.get(data["id"])
            if event == "thread.run.step.in_progress" and state and not state["announced"]:
                out += self._announce_next(data["id"])  # the first call is about to run: show what it runs
            return out
        # completed / failed / cancelled / expired: whatever was not streamed yet, then the full step.
        out = self._announce_rest(data["id"], details.get("tool_calls"))
        self.steps.pop(data["id"], None)
        return [*out, (event, self._without_content(data))]

    # -- deltas ----------------------------------------------------------------------------------
    def _delta(self, data: dict) -> list[tuple[str, dict | None]]:
        details = (data.get("delta") or {}).get("step_details") or {}
        state = self.steps.get(data["id"])
        if details.get("type") != "tool_calls" or state is None:
            return [("thread.run.step.delta", self._without_content(data))]
        out = []
        for entry in details.get("tool_calls") or []:
            index = entry.get("index", 0)
            while state["announced"] <= index and state["announced"] < len(state["calls"]):
                out += self._announce_next(data["id"])
            result = self._outputs(index, entry)
            if result:
                out.append(self._step_delta(data["id"], result))
            out += self._announce_next(data["id"])  # the next call runs now
        return out

    def _announce_next(self, step_id: str) -> list[tuple[str, dict]]:
        state = self.steps[step_id]
        index = state["announced"]
        if index >= len(state["calls"]):
            return []
        state["announced"] += 1
        return [self._step_delta(step_id, d) for d in self._opening(index, state["calls"][index])]

    def _announce_rest(self, step_id: str, final: list[dict] | None) -> list[tuple[str, dict]]:
        """Every call of the step not announced yet, with its outputs when `final` (the finished step) has them."""
        state = self.steps.get(step_id)
        if state is None:
            return []
        out = []
        while state["announced"] < len(state["calls"]):
            index = state["announced"]
            if final is not None and index < len(final):
                state["calls"][index] = final[index]
            out += self._announce_next(step_id)
            result = self._outputs(index, state["calls"][index]) if final is not None else None
            if result and state["calls"][index].get("type") != "function":
                out.append(self._step_delta(step_id, result))
        return out

    def _opening(self, index: int, call: dict) -> list[dict]:
        """A call's first deltas: id, type and name; then its code or arguments (and a function's known output)."""
        kind = call.get("type")
        head = {"index": index, "id": call.get("id"), "type": kind}
        if kind == "function":
            fn = call.get("function") or {}
            deltas = [{**head, "function": {"name": fn.get("name"), "arguments": "", "output": None}}]
            if fn.get("arguments"):
                deltas.append({"index": index, "type": kind, "function": {"arguments": fn["arguments"]}})
            if fn.get("output") is not None:
                deltas.append({"index": index, "type": kind, "function": {"output": fn["output"]}})
            return deltas
        if kind == "code_interpreter":
            code = (call.get("code_interpreter") or {}).get("input") or ""
            deltas = [{**head, "code_interpreter": {"input": "", "outputs": []}}]
            if code:
                deltas.append({"index": index, "type": kind, "code_interpreter": {"input": code}})
            return deltas
        return [{**head, kind: {}}]

    def _outputs(self, index: int, entry: dict) -> dict | None:
        """The delta with a built-in call's results, or None when it has none."""
        kind = entry.get("type")
        inner = entry.get(kind) or {}
        if kind == "code_interpreter":
            outputs = indexed_outputs(inner.get("outputs") or [])
            return {"index": index, "type": kind, "code_interpreter": {"outputs": outputs}} if outputs else None
        if kind == "file_search":
            results = [self._result(r) for r in inner.get("results") or []]
            return {"index": index, "type": kind,
                    "file_search": {"ranking_options": inner.get("ranking_options"), "results": results}}
        if kind == "function" and (inner.get("output") is not None):
            return {"index": index, "type": kind, "function": {"output": inner["output"]}}
        return None

    def _result(self, result: dict) -> dict:
        return result if self.with_content else {k: v for k, v in result.items() if k != "content"}

    @staticmethod
    def _step_delta(step_id: str, call: dict) -> tuple[str, dict]:
        return ("thread.run.step.delta", {"id": step_id, "object": "thread.run.step.delta",
                                          "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call]}}})

    def _without_content(self, data: dict) -> dict:
        """The step (or step delta) with file-search chunk text removed unless `include`d."""
        if self.with_content:
            return data
        details = data.get("step_details") or (data.get("delta") or {}).get("step_details") or {}
        calls = details.get("tool_calls") or []
        if not any(c.get("type") == "file_search" for c in calls):
            return data
        data = copy.deepcopy(data)
        details = data.get("step_details") or data["delta"]["step_details"]
        for call in details["tool_calls"]:
            if call.get("type") == "file_search":
                for result in (call.get("file_search") or {}).get("results") or []:
                    result.pop("content", None)
        return data


def event_stream(sub: Subscription, include: list[str] | None = None) -> StreamingResponse:
    """The response for `stream: true`: every event of the subscription, then `event: done`."""
    with_content = any(FILE_SEARCH_CONTENT in i for i in include or [])
    return StreamingResponse(_frames(sub, with_content), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _frames(sub: Subscription, with_content: bool) -> AsyncIterator[bytes]:
    """Bridge the blocking subscription to the event loop with one pump thread, so no pool thread waits on it."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    shaper = StepShaper(with_content)

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
                yield b"".join(encode(name, payload) for name, payload in shaper.frames(event, data))
                if event == "error":
                    yield b"event: done\ndata: [DONE]\n\n"
                    return
    finally:
        stop.set()
        if not sub.closed:
            sub.close()
            sub.queue.put((DONE, None))  # wake the pump if it is waiting, so its thread ends now
