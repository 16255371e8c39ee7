"""Reading the store for the Playground: lists, messages, run steps and model calls, files, costs."""

from __future__ import annotations

import streamlit as st

from assistants import export
from assistants.config import EMBEDDED_MODEL_ID
from assistants.errors import APIError
from assistants.pricing import CODE_INTERPRETER_SESSION_USD, code_interpreter_sessions, model_price, usage_cost
from assistants.runtime import list_every
from components import tokens
from components.tool_steps import tool_arguments
from session import get_runtime

TERMINAL = ("completed", "failed", "cancelled", "incomplete", "expired")
FS_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def runs_of(thread_id: str | None) -> list[dict]:
    """Every run of the thread, newest first (none without a thread)."""
    return list_every(get_runtime().list_runs, thread_id=thread_id) if thread_id else []


def latest_thread(assistant_id: str) -> str | None:
    """The newest thread the Playground opened for this assistant."""
    return export.latest_thread(get_runtime().store, assistant_id)


def messages(thread_id: str, count: int) -> tuple[list[dict], bool]:
    """The latest `count` messages, oldest first, and whether older ones exist."""
    rt, items, after = get_runtime(), [], None
    while True:
        page = rt.list_messages(thread_id, limit=min(100, count - len(items)), order="desc", after=after)
        items.extend(page["data"])
        if not page["has_more"] or len(items) >= count:
            return items[::-1], page["has_more"]
        after = page["last_id"]


def thread_mark(thread_id: str | None, runs: list[dict]) -> tuple:
    """What changes when anyone (another tab, the API) adds a message or starts or ends a run."""
    if not thread_id:
        return ()
    newest = get_runtime().list_messages(thread_id, limit=1, order="desc")["data"]
    return (runs[0]["id"], runs[0]["status"]) if runs else (), newest[0]["id"] if newest else None


def _fetch_steps(rt, thread_id: str, run_id: str) -> list[dict]:
    return rt.list_run_steps(thread_id, run_id, order="asc", limit=100, include=[FS_CONTENT])["data"]


# The cached readers take the data dir as their first argument: it is part of the cache key, so a
# process that serves several data dirs (the tests do) never mixes their objects up.
@st.cache_data(show_spinner=False, max_entries=1000)
def _finished_steps(data_dir: str, thread_id: str, run_id: str, status: str) -> list[dict]:
    """A finished run's steps never change: read them once."""
    return _fetch_steps(get_runtime(), thread_id, run_id)


@st.cache_data(show_spinner=False, max_entries=200)
def _finished_calls(data_dir: str, run_id: str, status: str) -> list[dict]:
    """A finished run's model calls never change: read them once."""
    return get_runtime().model_calls(run_id)


@st.cache_data(show_spinner=False, max_entries=500)
def _file(data_dir: str, file_id: str, with_data: bool) -> dict:
    """A stored file's name (and bytes, for images and downloads); files never change once written."""
    rt = get_runtime()
    try:
        info = rt.files.get(file_id)
        data = rt.files.content(file_id) if with_data else None
    except Exception:  # a deleted or unreadable file shows as "not available", never as a crash
        return {"name": None, "data": None}
    return {"name": info.get("filename"), "data": data}


def _steps(rt, run: dict) -> list[dict]:
    if run["status"] in TERMINAL:
        return _finished_steps(str(rt.settings.data_dir), run["thread_id"], run["id"], run["status"])
    return _fetch_steps(rt, run["thread_id"], run["id"])


def _calls(rt, run: dict) -> list[dict]:
    if run["status"] in TERMINAL:
        return _finished_calls(str(rt.settings.data_dir), run["id"], run["status"])
    return rt.model_calls(run["id"])


def files_of(messages: list[dict]) -> dict:
    """Names and bytes of the files the visible messages show or cite."""
    rt = get_runtime()
    if rt.files is None:
        return {}
    wanted: dict[str, bool] = {}
    for msg in messages:
        for block in msg.get("content") or []:
            if block["type"] == "image_file":
                wanted[block["image_file"]["file_id"]] = True
            elif block["type"] == "text":
                for ann in block["text"].get("annotations") or []:
                    if ann.get("type") == "file_path":
                        wanted[ann["file_path"]["file_id"]] = True
                    elif ann.get("type") == "file_citation":
                        wanted.setdefault(ann["file_citation"]["file_id"], False)
        for att in msg.get("attachments") or []:
            wanted.setdefault(att["file_id"], False)
    data_dir = str(rt.settings.data_dir)
    return {fid: _file(data_dir, fid, data) for fid, data in wanted.items()}


def run_details(run: dict) -> dict:
    """What the run log shows inside an open run: steps, model calls and the images they made."""
    rt = get_runtime()
    steps, calls = _steps(rt, run), _calls(rt, run)
    files = {}
    if rt.files is not None:
        for step in steps:
            for call in step["step_details"].get("tool_calls") or []:
                for out in (call.get("code_interpreter") or {}).get("outputs") or []:
                    if out.get("type") == "image":
                        fid = out["image"]["file_id"]
                        files[fid] = _file(str(rt.settings.data_dir), fid, True)
    return {"steps": steps, "calls": calls, "files": files}


def thread_steps(runs: list[dict], since: int | None) -> dict:
    """What the thread shows of its runs' tool use: {"steps": run id -> steps, "args": call id -> arguments, "files"}.

    Only runs made at or after `since` (the oldest message shown), and the model's raw calls only for runs that
    searched files: a call holds the whole conversation, and the query is only in there.
    """
    rt, steps, args, files = get_runtime(), {}, {}, {}
    data_dir = str(rt.settings.data_dir)
    for run in runs:
        if since is not None and run["created_at"] < since:
            continue
        mine = _steps(rt, run)
        steps[run["id"]] = mine
        calls = [c for s in mine for c in s["step_details"].get("tool_calls") or []]
        if any(c["type"] == "file_search" for c in calls):
            args.update(tool_arguments(_calls(rt, run)))
        if rt.files is not None:
            for call in calls:
                for out in (call.get("code_interpreter") or {}).get("outputs") or []:
                    if out.get("type") == "image":
                        files[out["image"]["file_id"]] = _file(data_dir, out["image"]["file_id"], True)
    return {"steps": steps, "args": args, "files": files}


def costs(runs: list[dict]) -> dict[str, float]:
    """Estimated USD per run: its tokens at list price, plus the Code Interpreter sessions it opened."""
    rt = get_runtime()
    ci_calls = []
    for run in runs:
        if not any(t["type"] == "code_interpreter" for t in run.get("tools") or []):
            continue
        if not model_price(rt.router.aliases.get(run.get("model"), run.get("model"))).known:
            continue  # a local model: nothing is billed, the sandbox runs here too
        for step in _steps(rt, run):
            calls = step["step_details"].get("tool_calls") or []
            if any(c["type"] == "code_interpreter" for c in calls):
                ci_calls.append((step["created_at"], run["id"]))
    opened = set(code_interpreter_sessions(ts for ts, _ in ci_calls))
    out = {}
    for run in runs:
        model = rt.router.aliases.get(run.get("model"), run.get("model"))
        out[run["id"]] = usage_cost(model, run.get("usage"))
    for ts, run_id in sorted(ci_calls):
        if ts in opened:
            opened.discard(ts)
            out[run_id] += CODE_INTERPRETER_SESSION_USD
    return out


def usage_summary(runs: list[dict]) -> dict:
    """The arguments of tokens.render_tokens: the newest run's usage and cost, and the thread's totals."""
    run_costs = costs(runs) if runs else {}
    total: dict = {}
    for r in runs:
        tokens.add_usage(total, r.get("usage"))
    last = runs[0] if runs and runs[0].get("usage") else None  # the newest run: it may still be working
    return {"last": last and last["usage"], "last_cost": last and run_costs.get(last["id"]), "thread": total or None,
            "thread_cost": sum(run_costs.values()) if runs else None, "working": bool(runs) and last is None}


def default_model() -> str:
    """The configured default model if something serves it, else the first model that is served."""
    router = get_runtime().router
    available = router.available_models()
    preferred = router.default_model
    if preferred in available or not available:
        return preferred or EMBEDDED_MODEL_ID
    return available[0]


def is_embedded(model: str | None) -> bool:
    """Whether `model` runs on the embedded model (by its name or an alias of it)."""
    return get_runtime().router.aliases.get(model, model) == EMBEDDED_MODEL_ID


def sidebar_choices() -> dict:
    """What the config sidebar offers: models (with where each comes from), backends, files, vector stores."""
    rt = get_runtime()
    catalog = rt.router.catalog()
    models = [(m, b.name) for b in catalog if b.ok for m in b.models]
    models += [(alias, f"alias of {target}") for alias, target in rt.router.aliases.items()]
    return {"models": models, "backends": catalog,
            "files": list_every(rt.files.list, purpose="assistants") if rt.files is not None else None,
            "stores": list_every(rt.vector_stores.list) if rt.vector_stores is not None else None}


def unreachable(model: str) -> list[str] | None:
    """The backends that are down if no reachable backend serves `model`, else None."""
    router = get_runtime().router
    served = {m for b in router.catalog() if b.ok for m in b.models} | set(router.aliases)
    if model in served:
        return None
    return [b.name for b in router.catalog() if not b.ok]  # the sidebar says why each is down


def failed_files(store_id: str) -> list[tuple[str, str]]:
    """(file name, why) for each file of a vector store that could not be indexed."""
    rt = get_runtime()
    out = []
    try:
        for row in list_every(rt.vector_stores.list_files, vs_id=store_id, filter="failed"):
            name = _file(str(rt.settings.data_dir), row["id"], False)["name"] or row["id"]
            why = (row.get("last_error") or {}).get("message") or "it could not be read."
            out.append((name, why.removeprefix(f"{name}: ")))  # the reason often starts with the name already
    except APIError:
        pass  # the store was deleted meanwhile: nothing to explain
    return out


THREADS_LISTED = 100  # newest threads in the list beside the chat; the Threads page lists them all


def thread_title(title: str | None, first_message: str | None) -> str:
    """A thread's name: its title, else the start of its first message, else "New thread"."""
    text = " ".join((title or first_message or "").split())
    return (text[:60] + "…" if len(text) > 60 else text) or "New thread"


def threads_of(assistant_id: str) -> list[dict]:
    """The assistant's threads, the latest message first: {"id", "title", "created_at"}."""
    rt = get_runtime()
    return [{"id": row["id"], "created_at": row["created_at"], "title": thread_title(row["title"], row["first_message"])}
            for row in rt.store.assistant_threads(assistant_id, THREADS_LISTED)]
