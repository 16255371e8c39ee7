"""Run steps and messages as Responses output items, and the response object itself."""

from __future__ import annotations

import json
from typing import Any

from assistants.errors import APIError

# ResponseError.code accepts these; anything else a run reports is a server_error to the client.
ERROR_CODES = {"server_error", "rate_limit_exceeded", "invalid_prompt", "invalid_image", "invalid_image_format",
               "invalid_base64_image", "invalid_image_url", "image_too_large", "image_too_small",
               "image_parse_error", "image_content_policy_violation", "invalid_image_mode", "image_file_too_large",
               "unsupported_image_media_type", "empty_image_file", "failed_to_download_image", "image_file_not_found"}
RESULTS = "file_search_call.results"
CI_OUTPUTS = "code_interpreter_call.outputs"
FS_INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
LOGPROBS = "message.output_text.logprobs"
EVERYTHING = [RESULTS, CI_OUTPUTS, LOGPROBS]


def container_id(thread_id: str) -> str:
    """The Code Interpreter session of a thread, named as a container."""
    return "cntr_" + thread_id.split("_", 1)[-1]


def session_thread(record: dict) -> str:
    """The thread whose Code Interpreter session a response used: its named container's, else its own."""
    named = record.get("container")
    return "thread_" + named.removeprefix("cntr_") if named else record["thread_id"]


def message_item(msg: dict, filename=None, session: str | None = None) -> dict:
    """An assistant thread message as an output `message` item (text parts only; figures are in the code call).

    `session` is the thread whose container holds the files the code wrote (default: the message's thread).
    """
    parts = []
    for block in msg.get("content") or []:
        if block["type"] == "text":
            text = block["text"]["value"]
            parts.append({"type": "output_text", "text": text, "logprobs": [],
                          "annotations": [_annotation(a, filename, session or msg.get("thread_id", ""))
                                          for a in block["text"].get("annotations") or []]})
    if not parts:
        parts.append({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
    status = msg.get("status") if msg.get("status") in ("in_progress", "completed", "incomplete") else "completed"
    return {"id": msg["id"], "type": "message", "role": "assistant", "status": status, "content": parts}


def _annotation(a: dict, filename, thread_id: str) -> dict:
    """A Message annotation as a Responses one; a file the code wrote is cited in its container (the thread)."""
    if a["type"] == "file_citation":
        file_id = a["file_citation"]["file_id"]
        return {"type": "file_citation", "file_id": file_id, "filename": filename(file_id) if filename else file_id,
                "index": a.get("end_index", 0)}
    file_id = a["file_path"]["file_id"]
    return {"type": "container_file_citation", "container_id": container_id(thread_id), "file_id": file_id,
            "filename": filename(file_id) if filename else file_id, "start_index": a.get("start_index", 0),
            "end_index": a.get("end_index", 0)}


def filenames(rt: Any):
    """A cached file id -> file name lookup (the id itself when the file is gone)."""
    names: dict[str, str] = {}

    def filename(file_id: str) -> str:
        if file_id not in names:
            try:
                names[file_id] = rt.files.get(file_id)["filename"]
            except (APIError, AttributeError):
                names[file_id] = file_id
        return names[file_id]

    return filename


def shaped(response: dict, include: list[str]) -> dict:
    """The response with tool results only where `include` asks for them (the stored copy keeps everything)."""
    out = []
    for item in response["output"]:
        if item["type"] == "file_search_call" and RESULTS not in include:
            item = {**item, "results": None}
        elif item["type"] == "code_interpreter_call" and CI_OUTPUTS not in include:
            item = {**item, "outputs": None}
        elif item["type"] == "message" and LOGPROBS not in include:
            item = {**item, "content": [{**p, "logprobs": []} if p.get("logprobs") else p for p in item["content"]]}
        out.append(item)
    return {**response, "output": out}


def search_queries(rt: Any, run_id: str) -> dict[str, list[str]]:
    """file_search call id -> the queries the model sent, read from the run's model-call log."""
    out: dict[str, list[str]] = {}
    for record in rt.model_calls(run_id):
        for choice in (record.get("response") or {}).get("choices") or []:
            for call in (choice.get("message") or {}).get("tool_calls") or []:
                if call["function"]["name"] == "file_search":
                    try:
                        query = json.loads(call["function"]["arguments"]).get("query")
                    except (ValueError, AttributeError):
                        query = None
                    queries = query if isinstance(query, list) else [query]
                    out[call["id"]] = [q for q in queries if isinstance(q, str)]
    return out


def call_items(step: dict, thread_id: str, include: list[str], queries: dict | None = None) -> list[dict]:
    """A tool_calls step's calls as output items; a function call the engine already answered (a bad name) is left out.

    Only a step still open (in_progress) can hold calls waiting for the caller; its built-in calls have run by then.
    """
    waiting = step["status"] == "in_progress"
    status = {"in_progress": "completed", "completed": "completed", "failed": "failed"}.get(step["status"], "incomplete")
    items = []
    for call in step["step_details"]["tool_calls"]:
        kind = call["type"]
        if kind == "function":
            fn = call["function"]
            if not waiting or fn.get("output") is not None:
                continue  # only calls waiting for the caller; the engine answered the others itself (bad name, bad JSON)
            items.append({"type": "function_call", "id": "fc_" + call["id"], "call_id": call["id"], "name": fn["name"],
                          "arguments": fn.get("arguments") or "", "status": "completed"})
        elif kind == "file_search":
            fs = call.get("file_search") or {}
            results = None
            if RESULTS in include:
                results = [{"file_id": r.get("file_id"), "filename": r.get("file_name"), "score": r.get("score"),
                            "text": "".join(c.get("text", "") for c in r.get("content") or []), "attributes": {}}
                           for r in fs.get("results") or []]
            items.append({"type": "file_search_call", "id": "fs_" + call["id"], "queries": (queries or {}).get(call["id"], []),
                          "status": status, "results": results})
        elif kind == "code_interpreter":
            ci = call.get("code_interpreter") or {}
            outputs = []
            for out in ci.get("outputs") or []:
                if out.get("type") == "logs":
                    outputs.append({"type": "logs", "logs": out.get("logs", "")})
                elif out.get("type") == "image":
                    outputs.append({"type": "image", "url": f"/v1/files/{out['image']['file_id']}/content"})
            items.append({"type": "code_interpreter_call", "id": "ci_" + call["id"], "code": ci.get("input") or "",
                          "container_id": container_id(thread_id), "status": status,
                          "outputs": outputs if CI_OUTPUTS in include else None})
    return items


def segment_output(rt: Any, record: dict, include: list[str]) -> tuple[list[dict], dict]:
    """The output items and token usage of the run steps that belong to this response."""
    thread_id, run_id = record["thread_id"], record["run_id"]
    session = session_thread(record)
    steps = run_steps(rt, thread_id, run_id)[record.get("step_offset", 0):]
    filename = filenames(rt)
    items, prompt, completion = [], 0, 0
    searched = any(c["type"] == "file_search" for s in steps if s["type"] == "tool_calls"
                   for c in s["step_details"]["tool_calls"])
    queries = search_queries(rt, run_id) if searched else {}
    for step in steps:
        usage = step.get("usage") or {}
        prompt += usage.get("prompt_tokens", 0)
        completion += usage.get("completion_tokens", 0)
        details = step["step_details"]
        if details["type"] == "message_creation":
            try:
                msg = rt.get_message(thread_id, details["message_creation"]["message_id"])
            except APIError:
                continue
            item = message_item(msg, filename, session)
            if record.get("logprobs") and LOGPROBS in include:  # kept on the step by the engine (runs/engine.py)
                stored = (rt.store.get("run_steps", step["id"]) or {}).get("_logprobs") or []
                item["content"][-1]["logprobs"] = stored
            items.append(item)
        else:
            items.extend(call_items(step, session, include, queries))
    return items, usage_of(prompt, completion)


def run_steps(rt: Any, thread_id: str, run_id: str) -> list[dict]:
    """Every step of a run, oldest first (file-search chunk text included)."""
    steps, after = [], None
    while True:
        page = rt.list_run_steps(thread_id, run_id, include=[FS_INCLUDE], limit=100, order="asc", after=after)
        steps.extend(page["data"])
        if not page["has_more"]:
            return steps
        after = page["last_id"]


def usage_of(prompt: int, completion: int) -> dict:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion}


def error_of(run: dict) -> dict | None:
    err = run.get("last_error")
    if not err:
        return None
    code = err.get("code") if err.get("code") in ERROR_CODES else "server_error"
    return {"code": code, "message": err.get("message") or "The response failed."}


def response_object(record: dict, status: str, output: list[dict], usage: dict | None, *, error: dict | None = None,
                     incomplete: str | None = None, completed_at: int | None = None) -> dict:
    """The wire Response: the request's echo, then what happened."""
    echo = record["echo"]
    conv = record.get("conversation_id")
    return {
        "id": record["id"], "object": "response", "created_at": record["created_at"], "status": status,
        "background": echo.get("background", False), "completed_at": completed_at if status == "completed" else None,
        "conversation": {"id": conv} if conv else None, "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": echo.get("instructions"), "max_output_tokens": echo.get("max_output_tokens"),
        "metadata": echo.get("metadata") or {}, "model": echo["model"], "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"), "temperature": echo.get("temperature"),
        "text": echo.get("text"), "tool_choice": echo.get("tool_choice", "auto"), "tools": echo.get("tools") or [],
        "top_p": echo.get("top_p"), "truncation": echo.get("truncation", "disabled"), "usage": usage,
        # Sent by OpenAI's API and required by the Open Responses spec (openai-python leaves some undeclared).
        "presence_penalty": 0.0, "frequency_penalty": 0.0, "store": record.get("store", True),
        "top_logprobs": echo.get("top_logprobs", 0), "max_tool_calls": echo.get("max_tool_calls"),
        "service_tier": echo.get("service_tier") or "default",
        **{k: echo.get(k) for k in ("user", "prompt_cache_key", "safety_identifier", "reasoning")},
        **({"prompt": echo["prompt"]} if "prompt" in echo else {}),
    }
