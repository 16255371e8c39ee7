"""A run's events translated into the Responses stream (response.created ... response.completed), numbered."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator

from assistants.responses.output import LOGPROBS, call_items, message_item
from assistants.runs.events import DONE

log = logging.getLogger(__name__)

# Run events after which the response is over (a run waiting for function outputs ends its response too).
FINAL = {"thread.run.requires_action", "thread.run.completed", "thread.run.incomplete", "thread.run.failed",
         "thread.run.cancelled", "thread.run.expired"}
CLOSING = {"completed": "response.completed", "incomplete": "response.incomplete"}


class Translator:
    """Turns one response's run events into Responses events; `finish` builds the final response from the store.

    `thread_id` is the thread whose Code Interpreter session (container) the response uses.
    """

    def __init__(self, start: dict, thread_id: str, include: list[str], finish: Callable[[], dict],
                 queries: Callable[[], dict] = dict, filename: Callable[[str], str] | None = None):
        self.start = start
        self.filename = filename
        self.queries = queries
        self.thread_id = thread_id
        self.include = include
        self.finish = finish
        self.seq = 0
        self.next_index = 0
        self.open: dict[str, tuple[int, dict]] = {}  # item key (message id / call id) -> (output_index, item)
        self.started = False
        self.final: dict | None = None
        self.logprobs: dict[str, list[dict]] = {}  # message id -> the logprobs its deltas carried

    def _event(self, kind: str, **fields) -> dict:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return event

    def _add(self, key: str, item: dict) -> tuple[int, dict]:
        index = self.next_index
        self.next_index += 1
        self.open[key] = (index, item)
        return index, self._event("response.output_item.added", output_index=index, item=copy.deepcopy(item))

    def opening(self) -> list[dict]:
        """response.created (queued for a background response), then in_progress, before the run's first event."""
        self.started = True
        out = [self._event("response.created", response=self.start)]
        if self.start["status"] == "queued":
            out.append(self._event("response.queued", response=self.start))
        return [*out, self._event("response.in_progress", response={**self.start, "status": "in_progress"})]

    def run(self, events: Iterator[tuple[str, dict | None]]) -> Iterator[dict]:
        """Every Responses event for the run's events, ending with the response's final event (or `error`)."""
        try:
            yield from self._run(events)
        except Exception as exc:  # a bug here must end the stream with an error event, not cut it
            log.exception("responses stream failed")
            yield self._event("error", code="server_error", param=None,
                              message=f"The response stream failed: {type(exc).__name__}: {exc}")

    def _run(self, events: Iterator[tuple[str, dict | None]]) -> Iterator[dict]:
        if not self.started:
            yield from self.opening()
        for name, data in events:
            if name == "ping":
                continue
            if name == DONE:
                break
            if name == "error":
                err = (data or {}).get("error") or {}
                yield self._event("error", code=err.get("code"), message=err.get("message", "error"), param=err.get("param"))
                continue
            yield from self.feed(name, data or {})
            if name in FINAL:
                break
        yield from self.closing()

    def feed(self, name: str, data: dict) -> list[dict]:
        if name == "thread.message.created":
            index, added = self._add(data["id"], message_item(data))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            return [added, self._event("response.content_part.added", item_id=data["id"], output_index=index,
                                       content_index=0, part=part)]
        if name == "thread.message.delta":
            return self._text_delta(data)
        if name in ("thread.message.completed", "thread.message.incomplete"):
            return self._message_done(data)
        if name == "thread.run.step.created" and data["step_details"]["type"] == "tool_calls":
            step = {**data, "status": "in_progress"}
            searched = any(c["type"] == "file_search" for c in data["step_details"]["tool_calls"])
            items = call_items(step, self.thread_id, self.include, self.queries() if searched else None)
            return [e for item in items for e in self._call_started(item)]
        if name == "thread.run.step.delta":
            calls = ((data.get("delta") or {}).get("step_details") or {}).get("tool_calls") or []
            return [e for call in calls for e in self._builtin_done(call)]
        if name == "thread.run.step.completed" and data["step_details"]["type"] == "tool_calls":
            return [e for call in data["step_details"]["tool_calls"] for e in self._builtin_done(call)]
        return []

    def _text_delta(self, data: dict) -> list[dict]:
        entry = self.open.get(data["id"])
        if entry is None:
            return []
        out = []
        logprobs = data.get("_logprobs") if LOGPROBS in self.include else None  # the piece's tokens (engine)
        for part in (data.get("delta") or {}).get("content") or []:
            if part.get("type") == "text" and part["text"].get("value"):
                out.append(self._event("response.output_text.delta", item_id=data["id"], output_index=entry[0],
                                       content_index=0, delta=part["text"]["value"], logprobs=logprobs or []))
                if logprobs:
                    self.logprobs.setdefault(data["id"], []).extend(logprobs)
                    logprobs = None
        return out

    def _message_done(self, data: dict) -> list[dict]:
        entry = self.open.pop(data["id"], None)
        if entry is None:
            return []
        index, item = entry[0], message_item(data, self.filename, self.thread_id)
        part = item["content"][0]
        part["logprobs"] = self.logprobs.pop(data["id"], [])
        return [self._event("response.output_text.done", item_id=data["id"], output_index=index, content_index=0,
                            text=part["text"], logprobs=part["logprobs"]),
                self._event("response.content_part.done", item_id=data["id"], output_index=index, content_index=0,
                            part=part),
                self._event("response.output_item.done", output_index=index, item=item)]

    def _call_started(self, item: dict) -> list[dict]:
        kind = item["type"]
        if kind == "function_call":
            index, added = self._add(item["call_id"], {**item, "arguments": "", "status": "in_progress"})
            self.open.pop(item["call_id"])
            ids = {"item_id": item["id"], "output_index": index}
            return [added, self._event("response.function_call_arguments.delta", delta=item["arguments"], **ids),
                    self._event("response.function_call_arguments.done", arguments=item["arguments"], **ids),
                    self._event("response.output_item.done", output_index=index, item=item)]
        key = item["id"].split("_", 1)[1]
        if kind == "file_search_call":
            index, added = self._add(key, {**item, "status": "in_progress", "results": None})
            ids = {"item_id": item["id"], "output_index": index}
            return [added, self._event("response.file_search_call.in_progress", **ids),
                    self._event("response.file_search_call.searching", **ids)]
        index, added = self._add(key, {**item, "status": "in_progress", "outputs": None})
        ids = {"item_id": item["id"], "output_index": index}
        return [added, self._event("response.code_interpreter_call.in_progress", **ids),
                self._event("response.code_interpreter_call_code.delta", delta=item["code"], **ids),
                self._event("response.code_interpreter_call_code.done", code=item["code"], **ids),
                self._event("response.code_interpreter_call.interpreting", **ids)]

    def _builtin_done(self, call: dict) -> list[dict]:
        entry = self.open.get(call.get("id") or "")
        if entry is None or call.get("type") not in ("file_search", "code_interpreter"):
            return []
        del self.open[call["id"]]
        index = entry[0]
        step = {"status": "completed", "step_details": {"tool_calls": [call]}}
        item = call_items(step, self.thread_id, self.include)[0]
        if item["type"] == "file_search_call":
            item["queries"] = entry[1]["queries"]
        ids = {"item_id": item["id"], "output_index": index}
        kind = "file_search_call" if call["type"] == "file_search" else "code_interpreter_call"
        return [self._event(f"response.{kind}.completed", **ids),
                self._event("response.output_item.done", output_index=index, item=item)]

    def closing(self) -> list[dict]:
        """The final event, from the response as the store has it now."""
        self.final = self.finish()
        status = self.final["status"]
        return [self._event(CLOSING.get(status, "response.failed"), response=self.final)]
