"""Executes runs in a worker pool: model calls, steps, the tool loop, statuses and streaming events."""

from __future__ import annotations

import copy
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from assistants.errors import APIError
from assistants.ids import new_id, now
from assistants.messages import message_text, text_block
from assistants.providers.base import Cancelled, ChatResult, ProviderError
from assistants.providers.router import ModelRouter
from assistants.runs.annotate import annotate
from assistants.runs.events import EventHub
from assistants.store import Store
from assistants.tools import BUILTIN_DEFINITIONS, ToolBox, ToolContext

log = logging.getLogger(__name__)

TERMINAL = ("completed", "failed", "cancelled", "incomplete", "expired")


def public(obj: dict | None) -> dict | None:
    """The wire object: engine-private keys (leading underscore) removed."""
    if obj is None:
        return None
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def process_owner() -> str:
    """This process as `pid:start-time`, so a later process can tell whether the owner still lives."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "?"


def owner_alive(owner: str | None) -> bool:
    if not owner or ":" not in owner:
        return False
    pid, start = owner.split(":", 1)
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return _start_time(int(pid)) == start


def estimate_tokens(messages: list[dict]) -> int:
    """A cheap prompt-size estimate (about 4 characters a token) used for truncation."""
    total = 0
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content) + " " * 3000 * sum(p["type"] == "image_url" for p in content)
        total += 4 + len(content) // 4
        for call in m.get("tool_calls") or []:
            total += len(call["function"]["arguments"]) // 4 + 8
    return total


class _RunStopped(Exception):
    """The run was cancelled (or otherwise ended) underneath the worker."""


class Engine:
    """Owns the worker pool, the cancel signals and the event hub of this process."""

    def __init__(self, store: Store, router: ModelRouter, toolbox: ToolBox, *, workers: int = 8,
                 max_tool_rounds: int = 10, run_expires_s: int = 600):
        self.store = store
        self.router = router
        self.toolbox = toolbox
        self.hub = EventHub()
        self.max_tool_rounds = max_tool_rounds
        self.run_expires_s = run_expires_s
        self.owner = process_owner()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run")
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.image_loader = None  # file id -> data URL; set when the files service is installed

    # -- scheduling ---------------------------------------------------------------------------
    def submit(self, run_id: str) -> None:
        with self._lock:
            self._cancels[run_id] = threading.Event()
        self.pool.submit(self._execute_safely, run_id)

    def signal_cancel(self, run_id: str) -> None:
        with self._lock:
            event = self._cancels.get(run_id)
        if event is not None:
            event.set()

    def shutdown(self) -> None:
        with self._lock:
            for event in self._cancels.values():
                event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _execute_safely(self, run_id: str) -> None:
        try:
            self._execute(run_id)
        except _RunStopped:
            pass
        except Exception as exc:  # never leave a run hanging because of a bug
            log.exception("run %s crashed", run_id)
            run = self.store.get("runs", run_id)
            if run and run["status"] not in TERMINAL:
                try:
                    self._fail(run, "server_error", f"Internal error while executing the run: {type(exc).__name__}: {exc}")
                except _RunStopped:
                    pass
        finally:
            with self._lock:
                self._cancels.pop(run_id, None)
            self.hub.finish(run_id)

    # -- state changes ------------------------------------------------------------------------
    def publish(self, run_id: str, event: str, obj: dict) -> None:
        # Subscribers get their own copy: the engine keeps mutating its dicts after publishing.
        self.hub.publish(run_id, event, copy.deepcopy(public(obj)))

    def update_run(self, run: dict, event: str | None = None, **changes) -> dict:
        """Write run changes; if someone asked to cancel meanwhile, end it `cancelled` and stop the worker."""
        with self.store.write():
            current = self.store.get("runs", run["id"])
            if current is None:
                raise _RunStopped()
            if current["status"] == "cancelling" and changes.get("status") not in ("cancelled", "failed", "expired"):
                self._finish_cancel(current)
                raise _RunStopped()
            if current["status"] in TERMINAL:
                raise _RunStopped()
            current.update(changes)
            self.store.put("runs", current)
        if event:
            self.publish(current["id"], event, current)
        return current

    def _finish_cancel(self, run: dict) -> bool:
        run.update(status="cancelled", cancelled_at=now(), expires_at=None, required_action=None,
                   usage=self._usage(run["id"]))
        self.store.put("runs", run)
        self._close_open_parts(run["id"], "cancelled")
        self.publish(run["id"], "thread.run.cancelled", run)
        return True

    def check_cancel(self, run: dict) -> None:
        event = self._cancels.get(run["id"])
        if event is not None and event.is_set():
            with self.store.write():
                current = self.store.get("runs", run["id"])
                if current and current["status"] not in TERMINAL:
                    self._finish_cancel(current)
            raise _RunStopped()

    def _fail(self, run: dict, code: str, message: str) -> None:
        self._close_open_parts(run["id"], "failed", {"code": code, "message": message})
        self.update_run(run, "thread.run.failed", status="failed", failed_at=now(), expires_at=None,
                        last_error={"code": code, "message": message}, usage=self._usage(run["id"]))

    def _close_open_parts(self, run_id: str, how: str, error: dict | None = None) -> None:
        """Steps and messages still in progress end with the run (failed/cancelled/incomplete)."""
        ts = now()
        for step in self.store.all("run_steps", run_id=run_id):
            if step["status"] == "in_progress":
                step["status"] = {"failed": "failed", "cancelled": "cancelled"}.get(how, "cancelled")
                step[f"{step['status']}_at"] = ts
                if error and step["status"] == "failed":
                    step["last_error"] = {"code": "server_error" if error["code"] != "rate_limit_exceeded" else error["code"],
                                          "message": error["message"]}
                self.store.put("run_steps", step)
                self.publish(run_id, f"thread.run.step.{step['status']}", step)
        for msg in self.store.all("messages", run_id=run_id):
            if msg["status"] == "in_progress":
                msg.update(status="incomplete", incomplete_at=ts,
                           incomplete_details={"reason": "run_failed" if how == "failed" else "run_cancelled"})
                self.store.put("messages", msg)
                self.publish(run_id, "thread.message.incomplete", msg)

    def _usage(self, run_id: str) -> dict:
        prompt = completion = 0
        for step in self.store.all("run_steps", run_id=run_id):
            if step.get("usage"):
                prompt += step["usage"]["prompt_tokens"]
                completion += step["usage"]["completion_tokens"]
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    # -- the run ------------------------------------------------------------------------------
    def _execute(self, run_id: str) -> None:
        run = self.store.get("runs", run_id)
        if run is None or run["status"] != "queued":
            if run is not None and run["status"] == "cancelling":
                with self.store.write():
                    self._finish_cancel(run)
            return
        run = self.update_run(run, "thread.run.in_progress", status="in_progress",
                              started_at=run.get("started_at") or now())
        try:
            provider, model = self.router.resolve(run["model"])
        except APIError as exc:
            self._fail(run, "invalid_prompt", exc.message)
            return
        tool_choice = run.get("tool_choice") or "auto"
        if any(s["type"] == "tool_calls" for s in self.store.all("run_steps", run_id=run["id"])):
            tool_choice = "auto"  # resumed after tool outputs: the forced call already happened
        seen_calls: set[str] = set()
        for round_no in range(self.max_tool_rounds):
            self.check_cancel(run)
            if round_no == self.max_tool_rounds - 1:
                tool_choice = "none"  # the last round must answer, not call another tool
            messages = self.chat_messages(run, getattr(provider, "context_window", None))
            if messages is None:
                self._incomplete(run, "max_prompt_tokens")
                return
            used = self._usage(run["id"])["completion_tokens"]
            budget = run.get("max_completion_tokens")
            if budget is not None and used >= budget:
                self._incomplete(run, "max_completion_tokens")
                return
            request = self.build_request(run, model, messages, tool_choice, None if budget is None else budget - used)
            result, _message, step = self._call_model(run, provider, request)
            if result.tool_calls and not (budget is not None and result.finish_reason == "length"):
                pending = self._tool_calls(run, result, step)
                if pending:
                    calls = [{"id": c["id"], "type": "function",
                              "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                             for c in pending]
                    self.update_run(run, "thread.run.requires_action", status="requires_action",
                                    required_action={"type": "submit_tool_outputs",
                                                     "submit_tool_outputs": {"tool_calls": calls}})
                    return
                tool_choice = "auto"  # a forced tool is forced once, or the loop would never end
                calls = {f"{c.name}:{c.arguments}" for c in result.tool_calls}
                if calls <= seen_calls:
                    tool_choice = "none"  # the model repeats itself (small models loop): ask it to answer now
                seen_calls |= calls
                continue
            if result.finish_reason == "length":
                self._incomplete(run, "max_completion_tokens" if budget is not None else "max_tokens")
                return
            self.update_run(run, "thread.run.completed", status="completed", completed_at=now(), expires_at=None,
                            required_action=None, usage=self._usage(run["id"]))
            return
        self._fail(run, "server_error", f"The run stopped after {self.max_tool_rounds} rounds of tool calls without a final "
                                        "answer. Simplify the request or raise PLAYGROUND_MAX_TOOL_ROUNDS.")

    def resume(self, run_id: str) -> None:
        """Continue a run whose tool outputs were submitted (it is `queued` again)."""
        self.submit(run_id)

    def _incomplete(self, run: dict, reason: str) -> None:
        """End the run `incomplete`; a reply cut by the token limit is marked incomplete too."""
        if reason != "max_prompt_tokens":
            replies = self.store.all("messages", run_id=run["id"])
            if replies:
                last = replies[-1]
                last.update(status="incomplete", incomplete_at=now(), completed_at=None,
                            incomplete_details={"reason": "max_tokens"})
                self.store.put("messages", last)
        self._close_open_parts(run["id"], "cancelled")
        # The Run object has no incomplete_at: completed_at says when it stopped, so its duration can be shown.
        self.update_run(run, "thread.run.incomplete", status="incomplete", expires_at=None, completed_at=now(),
                        incomplete_details={"reason": reason}, usage=self._usage(run["id"]))

    # -- building the model request ----------------------------------------------------------
    def build_request(self, run: dict, model: str, messages: list[dict], tool_choice, max_tokens: int | None) -> dict:
        tools = []
        for tool in run.get("tools") or []:
            if tool["type"] == "function":
                fn = {k: v for k, v in tool["function"].items() if v is not None and k != "strict"}
                tools.append({"type": "function", "function": fn})
            else:
                tools.append(BUILTIN_DEFINITIONS[tool["type"]])
        request: dict = {"model": model, "messages": messages}
        if tools:
            request["tools"] = tools
            if isinstance(tool_choice, dict) and tool_choice.get("type") in BUILTIN_DEFINITIONS:
                tool_choice = {"type": "function", "function": {"name": tool_choice["type"]}}
            request["tool_choice"] = tool_choice
            if run.get("parallel_tool_calls") is False:
                request["parallel_tool_calls"] = False
        for key in ("temperature", "top_p"):
            if run.get(key) is not None:
                request[key] = run[key]
        fmt = run.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") != "text":
            request["response_format"] = fmt
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        return request

    def chat_messages(self, run: dict, context_window: int | None = None) -> list[dict] | None:
        """System + thread history + this run's tool rounds, truncated as the run asks; None if it cannot fit."""
        system = run.get("instructions") or ""
        if run.get("_additional_instructions"):
            system = f"{system}\n\n{run['_additional_instructions']}".strip()
        history = []
        for msg in self.store.all("messages", thread_id=run["thread_id"]):
            if msg.get("run_id") == run["id"] and msg["role"] == "assistant":
                continue
            text = message_text(msg)
            if msg["role"] == "user" and msg.get("attachments"):
                names = ", ".join(self._file_name(a["file_id"]) for a in msg["attachments"])
                text += f"\n[attached files: {names}]"
            history.append({"role": msg["role"], "content": self._with_images(msg, text)})
        strategy = run.get("truncation_strategy") or {"type": "auto"}
        if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
            history = history[-strategy["last_messages"]:]
        tail = self._run_turns(run["id"])
        head = [{"role": "system", "content": system}] if system else []
        limit = run.get("max_prompt_tokens")
        if context_window:
            room = context_window - (run.get("max_completion_tokens") or 512) - 64
            limit = min(limit, room) if limit else room
        if limit:
            while history and estimate_tokens(head + history + tail) > limit:
                if len(history) == 1:
                    break
                history.pop(0)
            if estimate_tokens(head + history + tail) > limit and run.get("max_prompt_tokens"):
                return None
        return head + history + tail

    def _file_name(self, file_id: str) -> str:
        meta = self.store.get("files", file_id)
        return f"{meta['filename']} ({file_id})" if meta else file_id

    def _with_images(self, msg: dict, text: str):
        """Image parts become Chat Completions image_url parts (data URLs for uploaded files)."""
        images = [b for b in msg.get("content", []) if b["type"] in ("image_file", "image_url")]
        if not images or msg["role"] != "user":
            return text
        parts: list[dict] = [{"type": "text", "text": text}]
        for block in images:
            if block["type"] == "image_url":
                parts.append({"type": "image_url", "image_url": {"url": block["image_url"]["url"],
                                                                 "detail": block["image_url"].get("detail", "auto")}})
            elif self.image_loader is not None:
                url = self.image_loader(block["image_file"]["file_id"])
                if url:
                    parts.append({"type": "image_url", "image_url": {"url": url, "detail": block["image_file"].get("detail", "auto")}})
        return parts if len(parts) > 1 else text

    def _run_turns(self, run_id: str) -> list[dict]:
        turns: list[dict] = []
        for step in self.store.all("run_steps", run_id=run_id):
            details = step["step_details"]
            if details["type"] == "message_creation":
                msg = self.store.get("messages", details["message_creation"]["message_id"])
                if msg and message_text(msg):
                    turns.append({"role": "assistant", "content": message_text(msg)})
            elif details["type"] == "tool_calls":
                outputs = step.get("_outputs", {})
                calls = [c for c in details["tool_calls"] if c["id"] in outputs]
                if not calls:
                    continue
                turns.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": step["_names"][c["id"]],
                                                                     "arguments": step["_arguments"][c["id"]]}}
                    for c in calls]})
                for c in calls:
                    turns.append({"role": "tool", "tool_call_id": c["id"], "name": step["_names"][c["id"]],
                                  "content": outputs[c["id"]]})
        return turns

    # -- the model call -----------------------------------------------------------------------
    def _new_step(self, run: dict, details: dict) -> dict:
        step = {
            "id": new_id("step"), "object": "thread.run.step", "created_at": now(), "run_id": run["id"],
            "assistant_id": run["assistant_id"], "thread_id": run["thread_id"], "type": details["type"],
            "status": "in_progress", "cancelled_at": None, "completed_at": None, "expired_at": None,
            "failed_at": None, "last_error": None, "step_details": details, "usage": None, "metadata": {},
        }
        self.store.insert("run_steps", step)
        self.publish(run["id"], "thread.run.step.created", step)
        self.publish(run["id"], "thread.run.step.in_progress", step)
        return step

    def _call_model(self, run: dict, provider, request: dict) -> tuple[ChatResult, dict | None, dict | None]:
        """Stream one model call; creates the message (and its step) at the first token."""
        state: dict = {"message": None, "step": None, "parts": [], "abandoned": False}
        lock = threading.Lock()

        def on_text(piece: str) -> None:
            with lock:
                if state["abandoned"]:
                    raise Cancelled()
                if state["message"] is None:
                    state["message"], state["step"] = self._start_message(run)
                    # The reply starts with the figures the tools made (see _reply_content): stream them first,
                    # so the text's content index is the one it has in the finished message.
                    images = self._pending_images(run)
                    state["text_index"] = len(images)
                    if images:
                        self.hub.publish(run["id"], "thread.message.delta", {
                            "id": state["message"]["id"], "object": "thread.message.delta",
                            "delta": {"content": [{"index": i, "type": "image_file",
                                                   "image_file": {"file_id": f, "detail": "auto"}}
                                                  for i, f in enumerate(images)]},
                        })
                state["parts"].append(piece)
                self.hub.publish(run["id"], "thread.message.delta", {
                    "id": state["message"]["id"], "object": "thread.message.delta",
                    "delta": {"content": [{"index": state["text_index"], "type": "text",
                                           "text": {"value": piece, "annotations": []}}]},
                })

        started = time.monotonic()
        outcome: dict = {}
        done = threading.Event()
        cancel = self._cancels.get(run["id"]) or threading.Event()

        def call() -> None:
            try:
                outcome["result"] = provider.chat(request, on_text=on_text, cancel=cancel)
            except BaseException as exc:  # handed to the run's thread below
                outcome["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=call, name=f"model-{run['id']}", daemon=True)
        worker.start()
        last_db_check = time.monotonic()
        while not done.wait(0.05):
            if cancel.is_set() or (time.monotonic() - last_db_check > 0.5 and self._cancel_requested(run)):
                cancel.set()
                with lock:
                    state["abandoned"] = True
                self._log_call(run, request, None, "cancelled while the model was generating", started)
                self._keep_partial(run, state)
                self.check_cancel(run)
            last_db_check = time.monotonic() if time.monotonic() - last_db_check > 0.5 else last_db_check
        with lock:
            state["abandoned"] = True
        if "error" in outcome:
            self._keep_partial(run, state)
            exc = outcome["error"]
            if isinstance(exc, Cancelled):
                cancel.set()
                self.check_cancel(run)
                raise _RunStopped()
            message = exc.message if isinstance(exc, ProviderError) else f"{type(exc).__name__}: {exc}"
            code = exc.code if isinstance(exc, ProviderError) else "server_error"
            self._log_call(run, request, None, message, started)
            self._fail(run, code, message)
            raise _RunStopped()
        result: ChatResult = outcome["result"]
        self._log_call(run, request, result.raw, None, started)
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
                 "total_tokens": result.prompt_tokens + result.completion_tokens}
        message, step = state["message"], state["step"]
        # A reply cut by the token limit ends `incomplete` (the run then ends incomplete too).
        cut = result.finish_reason == "length" and not result.tool_calls
        ending = ({"status": "incomplete", "incomplete_details": {"reason": "max_tokens"}} if cut
                  else {"status": "completed"})
        if message is None and (result.text or not result.tool_calls):
            # Text that was not streamed, or an empty answer: it still gets its message, so the thread
            # shows the run ended.
            message, step = self._start_message(run)
            state["parts"] = [result.text] if result.text else []
        if message is not None:
            text = "".join(state["parts"])
            ts = now()
            message.update(content=self._reply_content(run, text), **ending,
                           completed_at=None if cut else ts, incomplete_at=ts if cut else None)
            step.update(status="completed", completed_at=ts, usage=None if result.tool_calls else usage)
            with self.store.write():
                self.store.put("messages", message)
                self.store.put("run_steps", step)
            self.publish(run["id"], f"thread.message.{ending['status']}", message)
            self.publish(run["id"], "thread.run.step.completed", step)
        if result.tool_calls:
            result.raw["_usage"] = usage
        return result, message, step

    def _keep_partial(self, run: dict, state: dict) -> None:
        """What was streamed before a cancel or a failure stays in the reply (which then ends incomplete)."""
        message = state["message"]
        if message is not None and state["parts"] and message["status"] == "in_progress":
            message["content"] = self._reply_content(run, "".join(state["parts"]))
            self.store.put("messages", message)

    def _unshown_tool_steps(self, run: dict) -> list[dict]:
        """This run's tool steps whose figures or citations no reply has carried yet."""
        return [step for step in self.store.all("run_steps", run_id=run["id"])
                if step["type"] == "tool_calls" and not step.get("_consumed")
                and (step.get("_images") or step.get("_annotations"))]

    def _pending_images(self, run: dict) -> list[str]:
        """Figures no reply has shown yet (what _reply_content will put first)."""
        return [f for step in self._unshown_tool_steps(run) for f in step.get("_images", [])]

    def _reply_content(self, run: dict, text: str) -> list[dict]:
        """The reply's content: figures the tools made since the last reply, then the annotated text."""
        images, candidates = [], []
        with self.store.write():
            for step in self._unshown_tool_steps(run):
                images.extend(step.get("_images", []))
                candidates.extend(step.get("_annotations", []))
                step["_consumed"] = True
                self.store.put("run_steps", step)
        blocks = [{"type": "image_file", "image_file": {"file_id": f, "detail": "auto"}} for f in images]
        if text or not blocks:
            blocks.append(text_block(text, annotate(text, candidates)))
        return blocks

    def _cancel_requested(self, run: dict) -> bool:
        row = self.store.conn().execute("SELECT status FROM runs WHERE id = ?", (run["id"],)).fetchone()
        return row is None or row[0] == "cancelling"

    def _start_message(self, run: dict) -> tuple[dict, dict]:
        message = {
            "id": new_id("msg"), "object": "thread.message", "created_at": now(), "thread_id": run["thread_id"],
            "role": "assistant", "content": [], "assistant_id": run["assistant_id"], "run_id": run["id"],
            "attachments": [], "metadata": {}, "status": "in_progress", "completed_at": None,
            "incomplete_at": None, "incomplete_details": None,
        }
        self.store.insert("messages", message)
        step = self._new_step(run, {"type": "message_creation", "message_creation": {"message_id": message["id"]}})
        self.publish(run["id"], "thread.message.created", message)
        self.publish(run["id"], "thread.message.in_progress", message)
        return message, step

    def _log_call(self, run: dict, request: dict, response: dict | None, error: str | None, started: float) -> None:
        record = {
            "id": new_id("mc"), "object": "model_call", "created_at": now(), "run_id": run["id"],
            "request": request, "response": {k: v for k, v in (response or {}).items() if not k.startswith("_")} or None,
            "error": error, "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        self.store.insert("model_calls", record)

    # -- tool calls ---------------------------------------------------------------------------
    def _tool_calls(self, run: dict, result: ChatResult, _message_step: dict | None) -> list[dict]:
        """Record the calls in a tool_calls step, run the built-ins, and return the function calls left for the user."""
        functions = {t["function"]["name"] for t in run.get("tools") or [] if t["type"] == "function"}
        builtins = {t["type"] for t in run.get("tools") or [] if t["type"] != "function"}
        entries, names, arguments, outputs, parsed = [], {}, {}, {}, {}
        seen = set()
        for call in result.tool_calls:
            call_id = call.id if call.id and call.id not in seen else new_id("call")
            seen.add(call_id)
            names[call_id], arguments[call_id] = call.name, call.arguments
            args, problem = _parse_arguments(call.arguments)
            if call.name in builtins and problem is None:
                parsed[call_id] = args
                if call.name == "code_interpreter":
                    entries.append({"id": call_id, "type": "code_interpreter",
                                    "code_interpreter": {"input": str(args.get("code", "")), "outputs": []}})
                else:
                    entries.append({"id": call_id, "type": "file_search",
                                    "file_search": {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}, "results": []}})
                continue
            if call.name not in functions and call.name not in builtins:
                problem = (f"error: there is no function named '{call.name}'. Available: "
                           + ", ".join(sorted(functions | builtins)) + ".")
            entry = {"id": call_id, "type": "function",
                     "function": {"name": call.name, "arguments": call.arguments, "output": None}}
            if problem is not None:
                entry["function"]["output"] = problem
                outputs[call_id] = problem
            entries.append(entry)
        step = self._new_step(run, {"type": "tool_calls", "tool_calls": entries})
        step.update(_names=names, _arguments=arguments, _outputs=outputs, usage=result.raw.pop("_usage", None))
        self.store.put("run_steps", step)
        ctx = None
        for entry in entries:
            if entry["id"] not in parsed:
                continue
            self.check_cancel(run)
            if ctx is None:
                ctx = ToolContext(run=public(run), assistant=self.store.get("assistants", run["assistant_id"]),
                                  thread=self.store.get("threads", run["thread_id"]),
                                  cancel=self._cancels.get(run["id"]) or threading.Event(),
                                  attachments=[a for m in self.store.all("messages", thread_id=run["thread_id"])
                                               for a in (m.get("attachments") or [])])
            try:
                outcome = self.toolbox.run_builtin(entry["type"], parsed[entry["id"]], ctx)
            except Exception as exc:  # a tool failure is reported to the model, not a crash
                log.exception("tool %s failed", entry["type"])
                from assistants.tools import BuiltinOutcome, empty_details

                msg = f"error: the {entry['type']} tool failed: {type(exc).__name__}: {exc}"
                outcome = BuiltinOutcome(msg, empty_details(entry["type"], parsed[entry["id"]]), error=msg)
            entry[entry["type"]] = outcome.details
            outputs[entry["id"]] = outcome.output
            if outcome.annotations or outcome.image_file_ids:
                step.setdefault("_annotations", []).extend(outcome.annotations)
                step.setdefault("_images", []).extend(outcome.image_file_ids)
            step["_outputs"] = outputs
            self.store.put("run_steps", step)
            self.publish(run["id"], "thread.run.step.delta", {
                "id": step["id"], "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [_entry_delta(entries.index(entry), entry)]}},
            })
        pending = [e for e in entries if e["type"] == "function" and e["id"] not in outputs]
        if not pending:
            step.update(status="completed", completed_at=now())
            self.store.put("run_steps", step)
            self.publish(run["id"], "thread.run.step.completed", step)
        return pending

    def submit_outputs(self, run: dict, outputs: dict[str, str]) -> dict:
        """Attach the user's function outputs to the waiting step and queue the run again."""
        with self.store.write():
            steps = [s for s in self.store.all("run_steps", run_id=run["id"])
                     if s["type"] == "tool_calls" and s["status"] == "in_progress"]
            for step in steps:
                for entry in step["step_details"]["tool_calls"]:
                    if entry["id"] in outputs and entry["type"] == "function":
                        entry["function"]["output"] = outputs[entry["id"]]
                        step["_outputs"][entry["id"]] = outputs[entry["id"]]
                step.update(status="completed", completed_at=now())
                self.store.put("run_steps", step)
            run = self.store.get("runs", run["id"])
            run.update(status="queued", required_action=None)
            self.store.put("runs", run)
        for step in steps:
            self.publish(run["id"], "thread.run.step.completed", step)
        self.publish(run["id"], "thread.run.queued", run)
        self.submit(run["id"])
        return run


def indexed_outputs(outputs: list[dict]) -> list[dict]:
    """Code interpreter outputs as a step delta carries them: each with its own `index`."""
    return [{**{k: v for k, v in out.items() if k != "index"}, "index": i} for i, out in enumerate(outputs)]


def _entry_delta(index: int, entry: dict) -> dict:
    """A tool call as a step-delta entry."""
    delta = {"index": index, **copy.deepcopy(entry)}
    code = delta.get("code_interpreter")
    if isinstance(code, dict) and code.get("outputs"):
        code["outputs"] = indexed_outputs(code["outputs"])
    return delta


def _parse_arguments(raw: str) -> tuple[dict, str | None]:
    """Arguments as an object, or the error text the model gets back instead."""
    if not raw or not raw.strip():
        return {}, "error: the tool call had empty arguments; send a JSON object."
    try:
        value = json.loads(raw, strict=False)  # a raw newline inside a string is forgiven
    except ValueError as exc:
        return {}, f"error: the arguments are not valid JSON ({exc}); send a JSON object."
    if not isinstance(value, dict):
        return {}, f"error: the arguments must be a JSON object, not {type(value).__name__}."
    return value, None
