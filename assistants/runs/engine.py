"""Executes runs in a worker pool: the round loop, the streamed model call and the reply it writes."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from assistants.config import Settings
from assistants.errors import APIError
from assistants.ids import new_id, now
from assistants.messages import text_block
from assistants.providers.base import Cancelled, ChatResult, ProviderError
from assistants.providers.router import ModelRouter
from assistants.runs.affinity import Affinity
from assistants.runs.annotate import annotate
from assistants.runs.events import DELTA_FLUSH_S, EventHub
from assistants.runs.extras import builtin_calls_left
from assistants.runs.prompt import PromptBuilder
from assistants.runs.status import TERMINAL, StatusMachine, public
from assistants.runs.tool_calls import ToolRunner, indexed_outputs
from assistants.store import IntegrityError, Store
from assistants.tools import ToolBox

__all__ = ["TERMINAL", "Engine", "indexed_outputs", "public"]

log = logging.getLogger(__name__)

def process_owner() -> str:
    """A name for this process that no other process (here or on another host) will ever have."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class _RunStopped(Exception):
    """The run was cancelled (or otherwise ended) underneath the worker."""


class _Lost(Exception):
    """A status change lost its compare-and-set: the transaction is rolled back."""


class Engine(ToolRunner):
    """Owns the worker pool and this process's working set; status changes go through the status machine."""

    def __init__(self, store: Store, router: ModelRouter, toolbox: ToolBox, *, workers: int = 8,
                 max_tool_rounds: int = 10, run_expires_s: int = 600, lease_s: float = Settings.run_lease_s,
                 affinity_s: float = Settings.code_affinity_s):
        self.store = store
        self.router = router
        self.toolbox = toolbox
        self.hub = EventHub(store)
        self.max_tool_rounds = max_tool_rounds
        self.run_expires_s = run_expires_s
        self.owner = process_owner()
        self.status = StatusMachine(store, self.hub, self.owner, lease_s)
        self.prompts = PromptBuilder(store)
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        # The working set: runs this process has queued or is executing, each with its cancel signal.
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.closed = False
        self.affinity = Affinity(self, affinity_s)

    @property
    def image_loader(self):
        return self.prompts.image_loader

    @image_loader.setter
    def image_loader(self, loader) -> None:
        self.prompts.image_loader = loader

    # -- scheduling ---------------------------------------------------------------------------
    def submit(self, run_id: str, queued: dict | None = None) -> None:
        """Execute a queued run on a worker (`queued`: the run as this process just queued it, which spares the
        worker reading it again)."""
        event = threading.Event()
        with self._lock:
            self._cancels[run_id] = event
        try:
            self.pool.submit(self._execute_safely, run_id, event, queued)
        except RuntimeError:  # shutting down: the run stays queued and another process's sweeper takes it
            with self._lock:
                self._cancels.pop(run_id, None)

    def launch(self, run: dict) -> None:
        """Run a run this process queued: here, or first on the instance holding its thread's code session."""
        self.affinity.launch(run)

    def free_workers(self) -> int:
        with self._lock:
            return self.workers - len(self._cancels)

    def working(self) -> list[str]:
        with self._lock:
            return list(self._cancels)

    def signal_cancel(self, run_id: str) -> None:
        with self._lock:
            event = self._cancels.get(run_id)
        if event is not None:
            event.set()

    def shutdown(self) -> None:
        self.closed = True
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.hub.close()

    def _execute_safely(self, run_id: str, cancel: threading.Event, queued: dict | None = None) -> None:
        try:
            self._execute(run_id, cancel, queued)
        except _RunStopped:
            pass
        except Exception as exc:  # never leave a run hanging because of a bug
            if self.store.run_statuses([run_id]).get(run_id) is None:
                return  # its thread was deleted meanwhile: nothing is left to end
            log.exception("run %s crashed", run_id)
            try:
                self.status.fail(run_id, "server_error", f"Internal error while executing the run: {type(exc).__name__}: {exc}")
            except Exception:  # e.g. the database is locked: the lease lapses and a sweeper ends the run
                log.exception("could not fail run %s; its lease will expire", run_id)
        finally:
            with self._lock:
                if self._cancels.get(run_id) is cancel:
                    del self._cancels[run_id]
            try:
                self.hub.finish(run_id)
            except Exception:
                log.debug("could not flush the last deltas of %s", run_id, exc_info=True)

    # -- state changes ------------------------------------------------------------------------
    def publish(self, run_id: str, event: str, obj: dict) -> None:
        self.hub.publish(run_id, event, public(obj))

    def _stopped(self, run_id: str):
        """A status change was refused: finish a pending cancel, then stop the worker."""
        if self.store.run_statuses([run_id]).get(run_id) == "cancelling":
            self.status.finish_cancel(run_id)
        raise _RunStopped()

    def _end(self, run: dict, to: str, before=None, **fields) -> dict:
        """Move our run to `to`; `before` runs in the same transaction, so its events precede the run's."""
        try:
            with self.store.write(run["thread_id"]):  # the run, its steps and messages: a write about its thread
                moved = self.status.move(run["id"], to, mine=True, event=False, **fields)
                if moved is None:
                    raise _Lost()
                if before is not None:
                    before()
                self.publish(run["id"], f"thread.run.{to}", moved)
        except _Lost:
            self._stopped(run["id"])
        run.update(moved)
        return moved

    def check_cancel(self, run: dict, cancel: threading.Event) -> None:
        if cancel.is_set():
            self.status.finish_cancel(run["id"])
            raise _RunStopped()

    def _fail(self, run: dict, code: str, message: str) -> None:
        if self.status.fail(run["id"], code, message) is None:
            self._stopped(run["id"])

    # -- the run ------------------------------------------------------------------------------
    def _execute(self, run_id: str, cancel: threading.Event, queued: dict | None = None) -> None:
        run = self.status.claim(run_id, queued)
        if run is None:
            return  # cancelled or expired while queued, or another worker has it
        try:
            provider, model = self.router.resolve(run["model"])
        except APIError as exc:
            self._fail(run, "invalid_prompt", exc.message)
            return
        # The run's steps, read once per round (the prompt, the budget, the figures the reply will carry): only
        # the worker executing a run adds steps to it, after its model call. A run this process queued and nobody
        # started yet has none.
        steps: list[dict] | None = [] if queued is not None and not queued.get("started_at") else None
        tool_choice = run.get("tool_choice") or "auto"
        if tool_choice != "auto":
            steps = self.store.all("run_steps", run_id=run["id"]) if steps is None else steps
            if any(s["type"] == "tool_calls" for s in steps):
                tool_choice = "auto"  # resumed after tool outputs: the forced call already happened
        seen_calls: set[str] = set()
        for round_no in range(self.max_tool_rounds):
            self.check_cancel(run, cancel)
            if round_no == self.max_tool_rounds - 1:
                tool_choice = "none"  # the last round must answer, not call another tool
            if steps is None:
                steps = self.store.all("run_steps", run_id=run["id"])
            messages = self.prompts.chat_messages(run, getattr(provider, "context_window", None), steps)
            if messages is None:
                self._incomplete(run, "max_prompt_tokens")
                return
            budget = run.get("max_completion_tokens")
            # A Responses continuation's own max_output_tokens counts from where it took over (responses/service.py).
            used = (sum((s.get("usage") or {}).get("completion_tokens") or 0 for s in steps)
                    - (run.get("_completion_tokens_before") or 0) if budget is not None else 0)
            if budget is not None and used >= budget:
                self._incomplete(run, "max_completion_tokens")
                return
            builtins = builtin_calls_left(run, steps) != 0  # max_tool_calls spent: offer functions only
            request = self.prompts.build_request(run, model, messages, tool_choice,
                                                 None if budget is None else budget - used, builtins=builtins)
            result, _message, _step = self._call_model(run, provider, request, cancel, steps)
            if result.tool_calls and not (budget is not None and result.finish_reason == "length"):
                pending = self._tool_calls(run, result, cancel, steps)
                if pending:
                    calls = [{"id": c["id"], "type": "function",
                              "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                             for c in pending]
                    self._end(run, "requires_action", required_action={
                        "type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}})
                    return
                tool_choice = "auto"  # a forced tool is forced once, or the loop would never end
                calls = {f"{c.name}:{c.arguments}" for c in result.tool_calls}
                if calls <= seen_calls:
                    tool_choice = "none"  # the model repeats itself (small models loop): ask it to answer now
                seen_calls |= calls
                steps = None  # this round added steps: read them again
                continue
            if result.finish_reason == "length":
                self._incomplete(run, "max_completion_tokens" if budget is not None else "max_tokens")
                return
            self._end(run, "completed", completed_at=now(), expires_at=None, required_action=None)
            return
        self._fail(run, "server_error", f"The run stopped after {self.max_tool_rounds} rounds of tool calls without a final "
                                        "answer. Simplify the request or raise PLAYGROUND_MAX_TOOL_ROUNDS.")

    def resume(self, run_id: str) -> None:
        """Continue a run whose tool outputs were submitted (it is `queued` again)."""
        self.submit(run_id)

    def _incomplete(self, run: dict, reason: str) -> None:
        """End the run `incomplete`; a reply cut by the token limit is marked incomplete too."""

        def close_parts() -> None:
            if reason != "max_prompt_tokens":
                replies = self.store.all("messages", run_id=run["id"])
                if replies:
                    self.store.update_fields("messages", replies[-1]["id"], {
                        "status": "incomplete", "incomplete_at": now(), "completed_at": None,
                        "incomplete_details": {"reason": "max_tokens"}})
            self.status.close_open_parts(run["id"], "cancelled")

        # The Run object has no incomplete_at: completed_at says when it stopped, so its duration can be shown.
        self._end(run, "incomplete", close_parts, expires_at=None, completed_at=now(),
                  incomplete_details={"reason": reason})

    # -- the model call -----------------------------------------------------------------------
    def _new_step(self, run: dict, details: dict) -> dict:
        step = self._step(run, details)
        with self.store.write(run["thread_id"]):
            self.store.insert("run_steps", step)
            self._announce_step(run, step)
        return step

    @staticmethod
    def _step(run: dict, details: dict) -> dict:
        return {
            "id": new_id("step"), "object": "thread.run.step", "created_at": now(), "run_id": run["id"],
            "assistant_id": run["assistant_id"], "thread_id": run["thread_id"], "type": details["type"],
            "status": "in_progress", "cancelled_at": None, "completed_at": None, "expired_at": None,
            "failed_at": None, "last_error": None, "step_details": details, "usage": None, "metadata": {},
        }

    def _announce_step(self, run: dict, step: dict) -> None:
        self.publish(run["id"], "thread.run.step.created", step)
        self.publish(run["id"], "thread.run.step.in_progress", step)

    def _call_model(self, run: dict, provider, request: dict, cancel: threading.Event,
                    steps: list[dict]) -> tuple[ChatResult, dict | None, dict | None]:
        """Stream one model call (`steps`: the run's steps as the round began); creates the message (and its step)
        at the first token."""
        state: dict = {"message": None, "step": None, "parts": [], "abandoned": False}
        lock = threading.Lock()
        run_id = run["id"]

        def on_text(piece: str, logprobs: list[dict] | None = None) -> None:
            with lock:
                if state["abandoned"]:
                    raise Cancelled()
                if state["message"] is None:
                    # The reply's message, its step and its first text: one commit.
                    with self.store.write(run["thread_id"]):
                        self._first_text(run, state, steps, piece, logprobs)
                    return
                state["parts"].append(piece)
                self._publish_text(run_id, state, piece, logprobs)

        started = time.monotonic()
        outcome: dict = {}
        done = threading.Event()

        def call() -> None:
            try:
                outcome["result"] = provider.chat(request, on_text=on_text, cancel=cancel)
            except BaseException as exc:  # handed to the run's thread below
                outcome["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=call, name=f"model-{run_id}", daemon=True)
        worker.start()
        # The run's thread writes the streamed deltas in batches (one commit per DELTA_FLUSH_S, not per token)
        # and watches the cancel signal, which the sweeper sets for a cancel made in any process.
        while not done.wait(DELTA_FLUSH_S):
            self.hub.flush_deltas(run_id, DELTA_FLUSH_S)
            if cancel.is_set():
                with lock:
                    state["abandoned"] = True
                self.hub.flush_deltas(run_id)
                self._log_call(run, request, None, "cancelled while the model was generating", started)
                self._keep_partial(run, state)
                self.check_cancel(run, cancel)
        with lock:
            state["abandoned"] = True
        if "error" in outcome:
            self.hub.flush_deltas(run_id)
            self._keep_partial(run, state)
            exc = outcome["error"]
            if isinstance(exc, Cancelled):
                cancel.set()
                self.check_cancel(run, cancel)
                raise _RunStopped()
            message = exc.message if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
            code = exc.code if isinstance(exc, ProviderError) else "server_error"
            self._log_call(run, request, None, message, started)
            self._fail(run, code, message)
            raise _RunStopped()
        result: ChatResult = outcome["result"]
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                 "total_tokens": result.prompt_tokens + result.completion_tokens}
        message, step = state["message"], state["step"]
        # A reply cut by the token limit ends `incomplete` (the run then ends incomplete too).
        cut = result.finish_reason == "length" and not result.tool_calls
        ending = ({"status": "incomplete", "incomplete_details": {"reason": "max_tokens"}} if cut
                  else {"status": "completed"})
        try:
            with self.store.write(run["thread_id"]):  # the call's log record and the reply's end: one commit
                self._log_call(run, request, result.raw, None, started)
                if message is None and (result.text or not result.tool_calls):
                    # Text that was not streamed, or an empty answer: it still gets its message, so the thread
                    # shows the run ended.
                    message, step = self._start_message(run)
                    state["parts"] = [result.text] if result.text else []
                if message is not None:
                    ts = now()
                    fields = {"content": self._reply_content(run, "".join(state["parts"]), state.get("unshown")),
                              **ending, "completed_at": None if cut else ts, "incomplete_at": ts if cut else None}
                    logprobs = ((result.raw.get("choices") or [{}])[0].get("logprobs") or {}).get("content")
                    message = self.status.end_reply(message, fields, step, completed_at=ts,
                                                    usage=None if result.tool_calls else usage,
                                                    **({"_logprobs": logprobs} if logprobs is not None else {}))
        except IntegrityError:  # the run was deleted with its thread meanwhile (the log record's insert)
            raise _RunStopped() from None
        if result.tool_calls:
            result.raw["_usage"] = usage
        return result, message, step

    def _first_text(self, run: dict, state: dict, steps: list[dict], piece: str, logprobs: list[dict] | None) -> None:
        """The reply's first piece of text: its message and step, the tools' figures, then the text, sent at once
        (the first token is what a person waits for: it is not held for the batch)."""
        state["message"], state["step"] = self._start_message(run)
        # The reply starts with the figures the tools made (see _reply_content): stream them first, so the text's
        # content index is the one it has in the finished message.
        # The steps read as the round began are the ones the finished reply carries (the tools run after the call).
        state["unshown"] = self._unshown_tool_steps(steps)
        images = self._pending_images(state["unshown"])
        state["text_index"] = len(images)
        if images:
            self.hub.publish_delta(run["id"], "thread.message.delta", {
                "id": state["message"]["id"], "object": "thread.message.delta",
                "delta": {"content": [{"index": i, "type": "image_file", "image_file": {"file_id": f, "detail": "auto"}}
                                      for i, f in enumerate(images)]},
            })
        state["parts"].append(piece)
        self._publish_text(run["id"], state, piece, logprobs)
        self.hub.flush_deltas(run["id"])

    def _publish_text(self, run_id: str, state: dict, piece: str, logprobs: list[dict] | None) -> None:
        self.hub.publish_delta(run_id, "thread.message.delta", {
            "id": state["message"]["id"], "object": "thread.message.delta",
            "delta": {"content": [{"index": state["text_index"], "type": "text",
                                   "text": {"value": piece, "annotations": []}}]},
            # The piece's tokens, for the Responses stream's deltas; streams of runs leave it out (sse.py).
            **({"_logprobs": logprobs} if logprobs is not None else {}),
        })

    def _keep_partial(self, run: dict, state: dict) -> None:
        """What was streamed before a cancel or a failure stays in the reply (which then ends incomplete)."""
        message = state["message"]
        if message is not None and state["parts"]:
            content = self._reply_content(run, "".join(state["parts"]))
            self.store.update_fields("messages", message["id"], {"content": content}, status="in_progress")

    @staticmethod
    def _unshown_tool_steps(steps: list[dict]) -> list[dict]:
        """Of the run's steps, the tool steps whose figures or citations no reply has carried yet."""
        return [step for step in steps
                if step["type"] == "tool_calls" and not step.get("_consumed")
                and (step.get("_images") or step.get("_annotations"))]

    @staticmethod
    def _pending_images(unshown: list[dict]) -> list[str]:
        """Figures no reply has shown yet (what _reply_content will put first), of these unshown tool steps."""
        return [f for step in unshown for f in step.get("_images", [])]

    def _reply_content(self, run: dict, text: str, unshown: list[dict] | None = None) -> list[dict]:
        """The reply's content: figures the tools made since the last reply (`unshown`: the tool steps read when the
        reply started streaming), then the annotated text."""
        images, candidates = [], []
        if unshown is None:
            # the run's own steps: only its worker marks them consumed
            unshown = self._unshown_tool_steps(self.store.all("run_steps", run_id=run["id"]))
        if unshown:
            with self.store.write(run["thread_id"]):
                for step in unshown:
                    images.extend(step.get("_images", []))
                    candidates.extend(step.get("_annotations", []))
                    self.store.update_fields("run_steps", step["id"], {"_consumed": True})
        blocks = [{"type": "image_file", "image_file": {"file_id": f, "detail": "auto"}} for f in images]
        if text or not blocks:
            blocks.append(text_block(text, annotate(text, candidates)))
        return blocks

    def _start_message(self, run: dict) -> tuple[dict, dict]:
        message = {
            "id": new_id("msg"), "object": "thread.message", "created_at": now(), "thread_id": run["thread_id"],
            "role": "assistant", "content": [], "assistant_id": run["assistant_id"], "run_id": run["id"],
            "attachments": [], "metadata": {}, "status": "in_progress", "completed_at": None,
            "incomplete_at": None, "incomplete_details": None,
        }
        step = self._step(run, {"type": "message_creation", "message_creation": {"message_id": message["id"]}})
        with self.store.write(run["thread_id"]):
            self.store.insert_all([("messages", message), ("run_steps", step)])
            self._announce_step(run, step)
            self.publish(run["id"], "thread.message.created", message)
            self.publish(run["id"], "thread.message.in_progress", message)
        return message, step

    def _log_call(self, run: dict, request: dict, response: dict | None, error: str | None, started: float) -> None:
        record = {
            "id": new_id("mc"), "object": "model_call", "created_at": now(), "run_id": run["id"],
            "request": request, "response": {k: v for k, v in (response or {}).items() if not k.startswith("_")} or None,
            "error": error, "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        try:
            self.store.insert("model_calls", record, run["thread_id"])  # a write about the run's thread
        except IntegrityError:  # the run was deleted with its thread meanwhile
            raise _RunStopped() from None
