"""The tool loop's step: record the model's tool calls, run the built-in tools, leave functions to the caller."""

from __future__ import annotations

import copy
import json
import logging
import threading

from assistants.ids import new_id, now
from assistants.providers.base import ChatResult
from assistants.runs.extras import builtin_calls_left
from assistants.runs.status import public
from assistants.tools import ToolContext

log = logging.getLogger(__name__)


class ToolRunner:
    """Mixed into the Engine: needs store, hub, status, toolbox, _new_step and check_cancel."""

    def _tool_calls(self, run: dict, result: ChatResult, cancel: threading.Event, steps: list[dict]) -> list[dict]:
        """Record the calls in a tool_calls step, run the built-ins, and return the function calls left for the user
        (`steps`: the run's steps as the round began; only a message step, which uses no tool, was added since)."""
        functions = {t["function"]["name"] for t in run.get("tools") or [] if t["type"] == "function"}
        builtins = {t["type"] for t in run.get("tools") or [] if t["type"] != "function"}
        entries, names, arguments, outputs, parsed = [], {}, {}, {}, {}
        seen = set()
        left = builtin_calls_left(run, steps)
        for call in result.tool_calls:
            if call.name in builtins and left is not None:
                if left <= 0:
                    continue  # past the run's max_tool_calls: ignored, as OpenAI does (the model no longer sees it)
                left -= 1
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
        self.store.update_fields("run_steps", step["id"], {"_names": names, "_arguments": arguments,
                                                           "_outputs": outputs, "usage": step["usage"]})
        ctx = None
        for entry in entries:
            if entry["id"] not in parsed:
                continue
            self.check_cancel(run, cancel)
            if ctx is None:
                ctx = ToolContext(run=public(run), assistant=self.store.get("assistants", run["assistant_id"]),
                                  thread=self.store.get("threads", run["thread_id"]),
                                  cancel=cancel,
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
            with self.store.write():
                self.store.update_fields("run_steps", step["id"], {
                    "step_details": step["step_details"], "_outputs": outputs,
                    "_annotations": step.get("_annotations", []), "_images": step.get("_images", [])})
                self.hub.publish(run["id"], "thread.run.step.delta", {
                    "id": step["id"], "object": "thread.run.step.delta",
                    "delta": {"step_details": {"type": "tool_calls",
                                               "tool_calls": [_entry_delta(entries.index(entry), entry)]}},
                })
        pending = [e for e in entries if e["type"] == "function" and e["id"] not in outputs]
        self.check_cancel(run, cancel)  # a cell interrupted by a cancel leaves its step cancelled, not completed
        if not pending:
            self.status.move_step(step, "completed", completed_at=now())
        return pending



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
