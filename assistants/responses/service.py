"""The Responses API over the runtime's public API: a response is a run (or the part of a run after function outputs)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from assistants.errors import APIError, BadRequest, NotFound
from assistants.ids import new_id
from assistants.responses import (container_sessions, conversations, filters, records, resume, run_records,
                                  truncation)
from assistants.responses.events import Translator
from assistants.responses.inputs import Item, Request, parse
from assistants.responses.output import (EVERYTHING, error_of, filenames, response_object, run_steps,
                                         search_queries, segment_output, session_thread, shaped, usage_of)
from assistants.responses.paging import page
from assistants.runs.extras import builtin_calls_made
from assistants.runtime import list_every

ASSISTANT_NAME = "Responses API"
ASSISTANT_TAG = {"playground": "responses-api"}
ENDED = ("completed", "failed", "cancelled", "incomplete", "expired")
INCOMPLETE_REASON = {"max_completion_tokens": "max_output_tokens", "max_tokens": "max_output_tokens",
                     "max_prompt_tokens": "max_output_tokens", "content_filter": "content_filter"}


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id", code="not_found")


class ResponsesService:
    """One per runtime: creates, reads, cancels and deletes responses; see README "The Responses API"."""

    def __init__(self, rt: Any):
        self.rt = rt
        self._assistant: str | None = None
        self._lock = threading.Lock()
        filters.install(rt)
        container_sessions.install(rt)

    # -- the assistant every response's run names -------------------------------------------------------
    def _assistant_id(self, model: str) -> str:
        """Runs need an assistant; responses share one, tagged in its metadata, whose own settings are never used."""
        with self._lock:
            if self._assistant is not None:
                try:
                    self.rt.get_assistant(self._assistant)
                    return self._assistant
                except NotFound:
                    self._assistant = None
            found = next((a for a in list_every(self.rt.list_assistants) if a.get("metadata") == ASSISTANT_TAG), None)
            if found is None:
                found = self.rt.create_assistant(
                    model=model, name=ASSISTANT_NAME, metadata=dict(ASSISTANT_TAG),
                    description="Runs made through /v1/responses name this assistant; each response sets its own "
                                "model, instructions and tools, so editing it changes nothing.")
            self._assistant = found["id"]
            return self._assistant

    # -- create -------------------------------------------------------------------------------------------
    def create(self, body: dict) -> dict | Iterator[dict]:
        """The response (stream=False), or its events (stream=True); background answers at once and runs on."""
        req = parse(body, self.rt)
        record, sub = self._start(req)
        finish = lambda: shaped(self.finalize(record["id"], record), req.include)  # noqa: E731
        start = response_object(record, "queued" if req.background else "in_progress", [], None)
        translator = Translator(start, session_thread(record), req.include, finish,
                                lambda: search_queries(self.rt, record["run_id"]), filenames(self.rt))
        if req.stream or req.background:
            # The run's events are translated on a thread of their own, so the response is settled (kept, or
            # dropped for store=false) when its run ends even if the client stops listening.
            inbox: queue.SimpleQueue = queue.SimpleQueue()

            def translate() -> None:
                for event in translator.run(sub):
                    if req.stream:  # background alone: nobody reads them (a resumed stream reads the log)
                        inbox.put(event)
                inbox.put(None)

            threading.Thread(target=translate, name=f"resp-{record['id']}", daemon=True).start()
            return iter(inbox.get, None) if req.stream else start
        for event in translator.run(sub):
            if event["type"] == "error":
                raise APIError(event["message"], code="server_error")
        return translator.final

    def _start(self, req: Request) -> tuple[dict, Any]:
        """Store the record and start (or continue) the run; nothing is stored when a check fails."""
        thread_id, waiting, conversation = self._target(req)
        record = {"id": new_id("resp"), "created_at": int(time.time()), "thread_id": thread_id, "run_id": "",
                  "step_offset": 0, "conversation_id": conversation, "store": req.store, "echo": req.echo,
                  "input_items": [], "final": None, "waiting_calls": [], "container": req.container,
                  "logprobs": req.extras.top_logprobs is not None}
        if waiting is not None:
            return self._continue(req, record, waiting)
        return self._new_run(req, record)

    def _target(self, req: Request) -> tuple[str | None, dict | None, str | None]:
        """(thread to use or None for a new one, the record whose run waits for these outputs, conversation id)."""
        if req.previous_response_id:
            prev = records.get(self.rt.store, req.previous_response_id)
            if prev is None or not prev.get("store", True):
                why = " (it was created with store=false)" if prev is not None else ""
                raise BadRequest(f"Previous response with id '{req.previous_response_id}' not found{why}.",
                                 param="previous_response_id", code="previous_response_not_found")
            latest = records.latest_on_thread(self.rt.store, prev["thread_id"])
            if latest and latest["id"] != prev["id"] and latest.get("store", True):
                req.fork_from = prev  # an earlier response: the new one branches off on a thread of its own
                return None, None, None
            return prev["thread_id"], self._waiting_or_recalled(prev, req), prev.get("conversation_id")
        if req.conversation:
            thread_id = conversations.thread_of(self.rt, req.conversation, "conversation")
            latest = records.latest_on_thread(self.rt.store, thread_id)
            return thread_id, self._waiting_or_recalled(latest, req), conversations.conversation_id(thread_id)
        for call_id in reversed(list(req.outputs)):  # a replayed history: its newest outputs answer a waiting run
            found = self._waiting(records.waiting_for(self.rt.store, call_id))
            if found is not None:
                return found["thread_id"], found, found.get("conversation_id")
        return None, None, None

    def _waiting_or_recalled(self, record: dict | None, req: Request) -> dict | None:
        """The record if its run waits for outputs; if that run gave up waiting (expired, cancelled), its calls
        are put before the outputs in the input, so they reach the model as text on a new run instead."""
        waiting = self._waiting(record)
        if waiting is not None or not record or not record.get("waiting_calls") or not req.outputs:
            return waiting
        calls = [o for o in (record.get("final") or {}).get("output") or []
                 if o["type"] == "function_call" and o["call_id"] in record["waiting_calls"]]
        req.items[:0] = [Item("function_call", dict(call)) for call in calls]
        return None

    def _waiting(self, record: dict | None) -> dict | None:
        """The record if its run still waits for function outputs."""
        if not record or not record.get("waiting_calls"):
            return None
        try:
            run = self.rt.get_run(record["thread_id"], record["run_id"])
        except APIError:
            return None
        return record if run["status"] == "requires_action" else None

    def _continue(self, req: Request, record: dict, waiting: dict) -> tuple[dict, Any]:
        """Function outputs for a response that ended with function calls: its run goes on."""
        pending = list(waiting["waiting_calls"])
        stateless = not req.previous_response_id and not req.conversation
        replayed = {i.echo["call_id"] for i in req.items if i.type == "function_call"}
        for call_id in pending:
            if call_id not in req.outputs:
                raise BadRequest(f"No tool output found for function call {call_id}.", param="input",
                                 code="missing_tool_output")
        for i, item in enumerate(req.items):
            if item.type == "function_call_output" and item.echo["call_id"] not in pending \
                    and not (stateless and item.echo["call_id"] in replayed):
                raise BadRequest(f"No tool call found for function call output with call_id "
                                 f"{item.echo['call_id']}.", param=f"input[{i}].call_id", code="invalid_value")
            if item.type == "message" and not stateless:
                raise BadRequest(f"Response '{waiting['id']}' is waiting for function call outputs; send only "
                                 "function_call_output items until it has them.", param=f"input[{i}]")
        steps = run_steps(self.rt, waiting["thread_id"], waiting["run_id"])
        record.update(thread_id=waiting["thread_id"], run_id=waiting["run_id"], step_offset=len(steps),
                      container=req.container if req.tools_given else waiting.get("container"),
                      input_items=[{**i.echo, "id": new_id("fco")} for i in req.items
                                   if i.type == "function_call_output" and i.echo["call_id"] in pending])
        if not req.tools_given:  # the rest of the run keeps the tools it had, and says so
            record["echo"] = {**record["echo"], "tools": (waiting.get("echo") or {}).get("tools") or []}
        outputs = [{"tool_call_id": c, "output": req.outputs[c]} for c in pending]
        sub = self._resume(req, record, waiting, outputs, builtin_calls_made(steps))
        if waiting.get("store", True):
            records.save(self.rt.store, {**waiting, "waiting_calls": []})
        else:  # store=false was kept only while its run waited for these outputs
            records.delete(self.rt.store, waiting["id"])
        records.save(self.rt.store, record)
        return record, sub

    def _resume(self, req: Request, record: dict, waiting: dict, outputs: list[dict], calls_made: int) -> Any:
        """Submit the outputs; this request's model, instructions, sampling and max_output_tokens (and tools, when
        it names them) replace the run's for the rest of it, as each OpenAI request stands on its own (undone if it is refused).

        The record is saved before the run goes on, so the tool handlers read this segment's settings.
        """
        thread_id, run_id = waiting["thread_id"], waiting["run_id"]
        before = self.rt.get_thread(thread_id).get("tool_resources") or {}
        extras = req.extras.fields()
        if extras["_max_tool_calls"] is not None:  # the limit counts this response's calls, not the run's earlier ones
            extras["_max_tool_calls"] += calls_made
        # max_output_tokens too: this response's tokens count, not those of the run's earlier segments.
        extras["_completion_tokens_before"] = self.rt.store.step_usage(run_id)["completion_tokens"]
        fields = run_records.settings_of(req.run, extras, req.tools_given)
        old = run_records.rebase(self.rt, run_id, fields)
        record["event_after"] = self.rt.store.last_event_seq(run_id)  # the run waits: this segment's events follow
        records.save(self.rt.store, record)
        try:
            if req.tools_given and req.resources and fields["tools"] != old.get("tools"):
                self.rt.update_thread(thread_id, tool_resources={**before, **req.resources})
            return self.rt.submit_tool_outputs(thread_id, run_id, tool_outputs=outputs, stream=True)
        except BaseException:
            records.delete(self.rt.store, record["id"])
            run_records.rebase(self.rt, run_id, old)
            self.rt.update_thread(thread_id, tool_resources=before)
            raise

    def _new_run(self, req: Request, record: dict) -> tuple[dict, Any]:
        messages = self._history(req.fork_from) + self._messages(req) if req.fork_from else self._messages(req)
        truncation.check(self.rt, req.echo["truncation"], req.model, req.run.get("instructions"),
                         req.run.get("max_completion_tokens"), record["thread_id"], messages)
        run_body = {k: v for k, v in req.run.items() if v is not None}
        assistant_id = req.assistant_id or self._assistant_id(req.model)
        thread_id = record["thread_id"]
        created = thread_id is None
        before = None
        if created:
            thread = self.rt.create_thread(messages=messages, tool_resources=req.resources or None)
            thread_id = thread["id"]
        elif req.resources:
            before = self.rt.get_thread(thread_id).get("tool_resources") or {}
            self.rt.update_thread(thread_id, tool_resources=req.resources)
        try:
            extra = {} if created else {"additional_messages": messages}
            sub = self.rt.create_run(thread_id, stream=True, assistant_id=assistant_id, extras=req.extras,
                                     **run_body, **extra)
        except BaseException:  # a refused run leaves the thread as it was
            if created:
                self.rt.delete_thread(thread_id)
            elif before is not None:
                self.rt.update_thread(thread_id, tool_resources=before)
            raise
        stored = [i.message is not None or i.type != "message" for i in req.items]  # which items became messages
        taken = iter(self._new_messages(thread_id, sum(stored)))
        echoes = []
        for item, has_message in zip(req.items, stored, strict=True):
            made = next(taken, None) if has_message else None
            item_id = made["id"] if made else new_id("msg")
            if item.type != "message":  # a replayed call keeps its own id; its text message is an implementation detail
                item_id = item.echo.get("id") or new_id("fco" if item.type.endswith("output") else "fc")
            echo = {**item.echo, "id": item_id}
            echoes.append(echo)
            if made and req.conversation and (item.type != "message" or item.echo["role"] not in ("user", "assistant")):
                records.save_item(self.rt.store, thread_id, made["id"], echo)  # the conversation lists it as sent
        record.update(thread_id=thread_id, run_id=sub.run_id, input_items=echoes, event_after=0)
        records.save(self.rt.store, record)
        return record, sub

    def _messages(self, req: Request) -> list[dict]:
        """Thread messages for the input; a function call and its output replayed without a waiting run become text."""
        calls = {i.echo["call_id"]: i.echo for i in req.items if i.type == "function_call"}
        out = []
        for i, item in enumerate(req.items):
            if item.type == "message":
                if item.message is not None:
                    out.append(item.message)
            elif item.type == "function_call":
                fc = item.echo
                out.append({"role": "assistant", "content": f"[called function {fc['name']}({fc['arguments']}), "
                                                            f"call id {fc['call_id']}]"})
            elif item.type != "function_call_output":  # a built-in tool call replayed: its text
                out.append(item.message)
            else:
                call_id = item.echo["call_id"]
                if call_id not in calls:
                    raise BadRequest(f"No tool call found for function call output with call_id {call_id}.",
                                     param=f"input[{i}].call_id", code="invalid_value")
                out.append({"role": "user", "content": f"[output of function call {call_id}]\n{item.echo['output'] or '(empty)'}"})
        return out

    def _history(self, prev: dict) -> list[dict]:
        """The messages of `prev`'s thread up to the end of `prev`, to start a branch from (as text and images)."""
        last = prev.get("last_message_id")
        if not last:
            raise BadRequest(f"Response '{prev['id']}' is not the latest of its conversation, and branching from it "
                             "is not possible (it predates branching support).", param="previous_response_id")
        out = []
        for msg in list_every(self.rt.list_messages, thread_id=prev["thread_id"])[::-1]:
            parts = []
            for block in msg.get("content") or []:
                if block["type"] == "text" and block["text"]["value"]:
                    parts.append({"type": "text", "text": block["text"]["value"]})
                elif block["type"] in ("image_url", "image_file") and msg["role"] == "user":
                    parts.append(block)
            if parts:
                out.append({"role": msg["role"], "content": parts})
            if msg["id"] == last:
                return out
        return out

    def _new_messages(self, thread_id: str, count: int) -> list[dict]:
        """The last `count` messages of the thread, oldest first (the run holds the thread, so they are this input)."""
        if not count:
            return []
        data = self.rt.list_messages(thread_id, limit=min(count, 100), order="desc")["data"]
        return [m for m in reversed(data) if m["role"] in ("user", "assistant")]

    # -- read back ----------------------------------------------------------------------------------------
    def _record(self, response_id: str) -> dict:
        record = records.get(self.rt.store, response_id)
        if record is None or not record.get("store", True):
            raise not_found(response_id)
        return record

    def finalize(self, response_id: str, record: dict | None = None) -> dict:
        """The response as its run stands; once over, kept as the record's final object (or dropped: store=false)."""
        record = record or records.get(self.rt.store, response_id)
        if record is None:
            raise not_found(response_id)
        if record.get("final"):
            return record["final"]
        try:
            run = self.rt.get_run(record["thread_id"], record["run_id"])
        except APIError:
            run = {"status": "failed", "last_error": {"code": "server_error", "message": "The run of this response is gone "
                                                      "(its conversation was deleted)."}}
        status = run["status"]
        if status in ("queued", "in_progress", "cancelling"):  # what it has made so far, nothing kept yet
            partial = segment_output(self.rt, record, EVERYTHING)[0] if record["run_id"] else []
            return response_object(record, "queued" if status == "queued" else "in_progress", partial, None)
        output, usage = segment_output(self.rt, record, EVERYTHING)
        waiting = [c["id"] for c in ((run.get("required_action") or {}).get("submit_tool_outputs") or {})
                   .get("tool_calls", [])] if status == "requires_action" else []
        reason = INCOMPLETE_REASON.get((run.get("incomplete_details") or {}).get("reason"), "max_output_tokens")
        final_status = {"requires_action": "completed", "expired": "failed"}.get(status, status)
        error = error_of(run) if final_status == "failed" else None
        if status == "expired":
            error = {"code": "server_error", "message": "The response expired while waiting."}
        final = response_object(record, final_status, output, usage or usage_of(0, 0), error=error,
                                incomplete=reason if final_status == "incomplete" else None,
                                completed_at=int(time.time()))
        newest = self.rt.list_messages(record["thread_id"], limit=1, order="desc")["data"]
        record.update(final=final, waiting_calls=waiting, last_message_id=newest[0]["id"] if newest else None)
        if record.get("store", True) or waiting:
            records.save(self.rt.store, record)  # store=false keeps a record only while its run waits for outputs
        else:
            self._forget(record)
        return final

    def _forget(self, record: dict) -> None:
        """store=false: nothing of the response stays, not even its thread unless it is a conversation."""
        records.delete(self.rt.store, record["id"])
        if not record.get("conversation_id"):
            try:
                self.rt.delete_thread(record["thread_id"])
            except APIError:
                pass

    def get(self, response_id: str, include: list[str] | None = None) -> dict:
        self._record(response_id)
        return shaped(self.finalize(response_id), include or [])

    def events(self, response_id: str, include: list[str], starting_after: int = -1) -> Iterator[dict]:
        """The response's stream again, from the event after `starting_after` (GET ...?stream=true)."""
        return resume.replay(self, self._record(response_id), include, starting_after)

    def delete(self, response_id: str) -> dict:
        record = self._record(response_id)
        if not record.get("final"):
            try:
                self.rt.cancel_run(record["thread_id"], record["run_id"])
            except APIError:
                pass
        records.delete(self.rt.store, response_id)
        return {"id": response_id, "object": "response", "deleted": True}

    def cancel(self, response_id: str) -> dict:
        record = self._record(response_id)
        current = self.finalize(response_id, record)
        if current["status"] not in ("queued", "in_progress"):
            raise BadRequest(f"Cannot cancel a response with status '{current['status']}'.", param="response_id")
        try:
            self.rt.cancel_run(record["thread_id"], record["run_id"])
        except BadRequest:
            pass  # it ended meanwhile: answer with how it ended
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            run = self.rt.get_run(record["thread_id"], record["run_id"])
            if run["status"] in ENDED or run["status"] == "requires_action":
                break
            time.sleep(0.02)
        return self.finalize(response_id)

    def input_items(self, response_id: str, *, limit: int = 20, order: str = "desc", after: str | None = None,
                    before: str | None = None) -> dict:
        items = list(self._record(response_id)["input_items"])
        return page(items, limit=limit, order=order, after=after, before=before)
