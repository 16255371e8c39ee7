"""Assistants and threads out to JSON/Markdown and assistants back in, plus the Threads page's summary query."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from assistants import jsonsafe
from assistants import validation as v
from assistants.errors import APIError, BadRequest
from assistants.ids import now
from assistants.messages import message_text
from assistants.runtime import list_every

EXPORT_OBJECT = "assistants_playground.export"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ASSISTANTS = 500

# What makes an assistant an assistant; ids and dates belong to the store it came from.
PORTABLE_FIELDS = ("name", "description", "instructions", "model", "tools", "tool_resources", "metadata",
                   "temperature", "top_p", "response_format", "reasoning_effort")
# Fields a stored/OpenAI assistant object carries that an import ignores rather than refuses.
IGNORED_FIELDS = ("id", "object", "created_at")


class ImportProblem(ValueError):
    """An import file that cannot be imported; the message says what to fix."""


# -- assistants out ---------------------------------------------------------------------------
def all_assistants(rt) -> list[dict]:
    """Every assistant, newest first (walks the 100-per-page listing)."""
    return list_every(rt.list_assistants)


def portable(assistant: dict) -> dict:
    """The assistant's configuration with its original id kept for reference."""
    out = {"id": assistant.get("id")}
    out.update({k: assistant[k] for k in PORTABLE_FIELDS if k in assistant})
    return out


def export_assistants(assistants: list[dict]) -> str:
    """One or many assistants as a JSON document that `parse_import` reads back."""
    doc = {"object": EXPORT_OBJECT, "version": EXPORT_VERSION, "kind": "assistants", "exported_at": now(),
           "assistants": [portable(a) for a in assistants]}
    return jsonsafe.dumps(doc, indent=2, ensure_ascii=False)


def export_filename(assistants: list[dict]) -> str:
    """A file name that says what is inside."""
    if len(assistants) == 1:
        name = _slug(assistants[0].get("name") or assistants[0].get("id") or "assistant")
        return f"assistant-{name}.json"
    return f"assistants-{len(assistants)}-{datetime.now(UTC):%Y%m%d}.json"


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return slug[:60] or "assistant"


# -- assistants in ----------------------------------------------------------------------------
def parse_import(raw: bytes | str) -> list[dict]:
    """Create-bodies for every assistant in an export (ours, an OpenAI object, a list or a list page), or ImportProblem."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_IMPORT_BYTES:
            raise ImportProblem(f"The file is {len(raw) / 1e6:.1f} MB; an assistants export is at most "
                                f"{MAX_IMPORT_BYTES // 1_000_000} MB. Is this the right file?")
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportProblem("The file is not text (UTF-8). Choose a .json file exported from the "
                                "Assistants page.") from None
    if not raw.strip():
        raise ImportProblem("The file is empty.")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImportProblem(f"The file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    items = _items(doc)
    if not items:
        raise ImportProblem("The file holds no assistants.")
    if len(items) > MAX_IMPORT_ASSISTANTS:
        raise ImportProblem(f"The file holds {len(items)} assistants; import at most {MAX_IMPORT_ASSISTANTS} at a time.")
    return [_validated(item, i, len(items)) for i, item in enumerate(items)]


def _items(doc: Any) -> list:
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise ImportProblem("The file must hold a JSON object or a list of assistants.")
    if doc.get("object") == EXPORT_OBJECT:
        if doc.get("kind", "assistants") != "assistants":
            raise ImportProblem(f"This is a {doc.get('kind')} export, not an assistants export.")
        if not isinstance(doc.get("version"), int) or doc["version"] > EXPORT_VERSION:
            raise ImportProblem(f"This export has version {doc.get('version')!r}; this Playground reads version "
                                f"{EXPORT_VERSION} or older. Update the Playground to import it.")
        if not isinstance(doc.get("assistants"), list):
            raise ImportProblem("The export has no 'assistants' list.")
        return doc["assistants"]
    if doc.get("object") == "list" and isinstance(doc.get("data"), list):
        return doc["data"]
    if doc.get("object") in (None, "assistant") and "model" in doc:
        return [doc]
    raise ImportProblem("This is not an assistants export: expected the file from 'Export', an assistant object "
                        "or a list of them.")


def _validated(item: Any, index: int, total: int) -> dict:
    label = f"Assistant {index + 1} of {total}"
    if not isinstance(item, dict):
        raise ImportProblem(f"{label} is not an object.")
    if isinstance(item.get("name"), str) and item["name"]:
        label += f" ('{item['name'][:60]}')"
    unknown = sorted(k for k in item if k not in PORTABLE_FIELDS and k not in IGNORED_FIELDS)
    if unknown:
        raise ImportProblem(f"{label} has fields this Playground does not know: {', '.join(unknown)}. "
                            "Remove them and import again.")
    try:
        body: dict = {"model": v.string(item.get("model"), "model", 256, required=True)}
        if not body["model"].strip():
            raise BadRequest("model must not be empty.", param="model")
        for key, size in (("name", 256), ("description", 512), ("instructions", 256_000)):
            if item.get(key) is not None:
                body[key] = v.string(item[key], key, size)
        body["tools"] = v.tools(item.get("tools"))
        body["tool_resources"] = v.tool_resources(item.get("tool_resources")) or {}
        body["metadata"] = v.metadata(item.get("metadata"))
        for key, high in (("temperature", 2), ("top_p", 1)):
            if item.get(key) is not None:
                body[key] = v.number(item[key], key, 0, high)
        body["response_format"] = v.response_format(item.get("response_format"))
        if item.get("reasoning_effort") is not None:
            body["reasoning_effort"] = v.string(item["reasoning_effort"], "reasoning_effort", 16)
    except APIError as exc:
        raise ImportProblem(f"{label}: {exc.message}") from None
    return body


def missing_resources(bodies: list[dict], exists) -> list[str]:
    """Drop tool_resources ids that `exists(kind, id)` does not know and say so (files don't travel in exports)."""
    notes = []
    for body in bodies:
        resources = body.get("tool_resources") or {}
        for tool, key, kind in (("code_interpreter", "file_ids", "files"),
                                ("file_search", "vector_store_ids", "vector_stores")):
            ids = (resources.get(tool) or {}).get(key)
            if not ids:
                continue
            kept = [i for i in ids if exists(kind, i)]
            for gone in (i for i in ids if i not in kept):
                notes.append(f"'{body.get('name') or 'Untitled'}': {kind.replace('_', ' ')[:-1]} {gone} is not in this "
                             "Playground, so it was left out; attach files again in the Playground.")
            resources[tool][key] = kept
    return notes


def import_assistants(rt, raw: bytes | str) -> tuple[list[dict], list[str]]:
    """Create every assistant in the file in one transaction -> (created, notes); ImportProblem creates nothing."""
    bodies = parse_import(raw)
    notes = missing_resources(bodies, lambda kind, i: rt.store.get(kind, i) is not None)
    created: list[dict] = []
    try:
        with rt.store.write():  # all or nothing: a failure rolls every insert back
            for body in bodies:
                created.append(rt.create_assistant(**body))
    except APIError as exc:
        raise ImportProblem(f"Nothing was imported: {exc.message}") from None
    return created, notes


def clone_body(assistant: dict) -> dict:
    """Create-arguments for a copy named '<name> (copy)'."""
    body = {k: assistant[k] for k in PORTABLE_FIELDS if k in assistant and assistant[k] is not None}
    body["name"] = f"{assistant.get('name') or 'Untitled'} (copy)"[:256]
    return body


# -- threads out ------------------------------------------------------------------------------
def load_thread(rt, thread_id: str) -> dict:
    """The thread with every message (oldest first) and run (oldest first)."""
    thread = rt.get_thread(thread_id)
    messages = rt.store.all("messages", thread_id=thread_id)
    runs = [{k: val for k, val in r.items() if not k.startswith("_")} for r in rt.store.all("runs", thread_id=thread_id)]
    return {"thread": thread, "messages": messages, "runs": runs}


def thread_json(bundle: dict) -> str:
    """A thread bundle as a JSON document."""
    doc = {"object": EXPORT_OBJECT, "version": EXPORT_VERSION, "kind": "thread", "exported_at": now(), **bundle}
    return jsonsafe.dumps(doc, indent=2, ensure_ascii=False)


def thread_markdown(bundle: dict, assistant_names: dict[str, str] | None = None) -> str:
    """A thread bundle as a readable Markdown transcript."""
    names = assistant_names or {}
    thread, messages, runs = bundle["thread"], bundle["messages"], bundle["runs"]
    usage = sum_usage(runs)
    lines = [f"# Thread {thread['id']}", "",
             f"- Created: {_when(thread.get('created_at'))}",
             f"- Messages: {len(messages)}",
             f"- Runs: {len(runs)}",
             (f"- Tokens: {usage['total_tokens']} (prompt {usage['prompt_tokens']}, "
              f"completion {usage['completion_tokens']})"), ""]
    for msg in messages:
        if msg["role"] == "user":
            who = "User"
        else:
            aid = msg.get("assistant_id")
            who = names.get(aid) or aid or "Assistant"
        lines += [f"## {who}", f"*{_when(msg.get('created_at'))}*", "", message_text(msg).strip() or "*(empty)*", ""]
    failed = [r for r in runs if r.get("last_error")]
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- {r['id']} ({r['status']}): {r['last_error'].get('message', '')}" for r in failed]
        lines.append("")
    return "\n".join(lines)


def sum_usage(runs: list[dict]) -> dict:
    """Prompt, completion and total tokens over runs (active runs count 0 until they end)."""
    total = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for run in runs:
        for key in total:
            total[key] += (run.get("usage") or {}).get(key) or 0
    return total


def _when(ts: int | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- the Threads page's summary -------------------------------------------------------------------
def thread_summaries(store, limit: int = 1000) -> list[dict]:
    """The newest `limit` threads with counts, token totals, last activity and assistant (one store query)."""
    return store.thread_summaries(limit)


def latest_thread(store, assistant_id: str) -> str | None:
    """The newest thread the Playground opened for this assistant (its `metadata.assistant_id`)."""
    return store.latest_thread(assistant_id)


def thread_count(store) -> int:
    """How many threads exist (to say when the summary is cut at its limit)."""
    return store.count("threads")
