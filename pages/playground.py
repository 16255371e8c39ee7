"""The Playground: configure an assistant, chat with it on a thread, and watch its runs as they happen."""

from __future__ import annotations

import streamlit as st

from assistants.config import EMBEDDED_MODEL_ID
from assistants.errors import APIError
from assistants.pricing import CODE_INTERPRETER_SESSION_USD, code_interpreter_sessions, model_price, usage_cost
from components import ACTIVE_STATUSES, run_log, sidebar, thread_view, tokens
from session import get_runtime

THREAD_HEIGHT = 520
THREAD_OFFSET = 380  # what sits above and below the message box in a 900 px window: 900 - 380 = THREAD_HEIGHT
LOG_HEIGHT = 720
RUNS_PER_LOG_PAGE = 5
MESSAGES_STEP = 30
IDLE_CHECK_S = 3  # how often an idle page looks for runs and messages started elsewhere
LIVE_STATUSES = ("queued", "in_progress", "cancelling")  # a run that moves on by itself
TERMINAL = ("completed", "failed", "cancelled", "incomplete", "expired")
IMAGE_TYPES = ("png", "jpg", "jpeg", "gif", "webp")
UPLOAD_TYPES = (*IMAGE_TYPES, "pdf", "txt", "md", "csv", "tsv", "json", "jsonl", "xml", "html", "docx", "pptx",
                "xlsx", "py", "js", "ts", "c", "cpp", "java", "go", "rb", "php", "sh", "tex", "zip")
FILE_SEARCH_TYPES = ("pdf", "txt", "md", "json", "html", "docx", "py", "js", "ts", "c", "cpp", "java",
                     "go", "rb", "php", "sh", "tex")
FS_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"

rt = get_runtime()
ss = st.session_state  # this page's keys (PLAYGROUND_DEFAULTS) are set by app.py


# -- reading the store ----------------------------------------------------------------------------------
def _all(list_fn, **kwargs) -> list[dict]:
    """Every item of one of the runtime's paged lists, newest first."""
    items, after = [], None
    while True:
        page = list_fn(limit=100, order="desc", after=after, **kwargs)
        items.extend(page["data"])
        if not page["has_more"]:
            return items
        after = page["last_id"]


def _latest_thread(assistant_id: str) -> str | None:
    """The newest thread the Playground opened for this assistant."""
    after = None
    while True:
        page = rt.list_threads(limit=100, order="desc", after=after)
        for thread in page["data"]:
            if (thread.get("metadata") or {}).get("assistant_id") == assistant_id:
                return thread["id"]
        if not page["has_more"]:
            return None
        after = page["last_id"]


def _messages(thread_id: str, count: int) -> tuple[list[dict], bool]:
    """The latest `count` messages, oldest first, and whether older ones exist."""
    items, after = [], None
    while True:
        page = rt.list_messages(thread_id, limit=min(100, count - len(items)), order="desc", after=after)
        items.extend(page["data"])
        if not page["has_more"] or len(items) >= count:
            return items[::-1], page["has_more"]
        after = page["last_id"]


def _fetch_steps(thread_id: str, run_id: str) -> list[dict]:
    return rt.list_run_steps(thread_id, run_id, order="asc", limit=100, include=[FS_CONTENT])["data"]


@st.cache_data(show_spinner=False, max_entries=1000)
def _finished_steps(data_dir: str, thread_id: str, run_id: str, status: str) -> list[dict]:
    """A finished run's steps never change: read them once."""
    return _fetch_steps(thread_id, run_id)


@st.cache_data(show_spinner=False, max_entries=200)
def _finished_calls(data_dir: str, run_id: str, status: str) -> list[dict]:
    """A finished run's model calls never change: read them once."""
    return rt.model_calls(run_id)


def _steps(run: dict) -> list[dict]:
    if run["status"] in TERMINAL:
        return _finished_steps(str(rt.settings.data_dir), run["thread_id"], run["id"], run["status"])
    return _fetch_steps(run["thread_id"], run["id"])


def _calls(run: dict) -> list[dict]:
    if run["status"] in TERMINAL:
        return _finished_calls(str(rt.settings.data_dir), run["id"], run["status"])
    return rt.model_calls(run["id"])


@st.cache_data(show_spinner=False, max_entries=500)
def _file(data_dir: str, file_id: str, with_data: bool) -> dict:
    """A stored file's name (and bytes, for images and downloads); files never change once written."""
    try:
        info = rt.files.get(file_id)
        data = rt.files.content(file_id) if with_data else None
    except Exception:  # a deleted or unreadable file shows as "not available", never as a crash
        return {"name": None, "data": None}
    return {"name": info.get("filename"), "data": data}


def _files_of(messages: list[dict]) -> dict:
    """Names and bytes of the files the visible messages show or cite."""
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
    return {fid: _file(str(rt.settings.data_dir), fid, data) for fid, data in wanted.items()}


def _run_details(run: dict) -> dict:
    """What the run log shows inside an open run: steps, model calls and the images they made."""
    steps, calls = _steps(run), _calls(run)
    files = {}
    if rt.files is not None:
        for step in steps:
            for call in step["step_details"].get("tool_calls") or []:
                for out in (call.get("code_interpreter") or {}).get("outputs") or []:
                    if out.get("type") == "image":
                        fid = out["image"]["file_id"]
                        files[fid] = _file(str(rt.settings.data_dir), fid, True)
    return {"steps": steps, "calls": calls, "files": files}


def _costs(runs: list[dict]) -> dict[str, float]:
    """Estimated USD per run: its tokens at list price, plus the Code Interpreter sessions it opened."""
    ci_calls = []
    for run in runs:
        if not any(t["type"] == "code_interpreter" for t in run.get("tools") or []):
            continue
        if not model_price(rt.router.aliases.get(run.get("model"), run.get("model"))).known:
            continue  # a local model: nothing is billed, the sandbox runs here too
        for step in _steps(run):
            calls = step["step_details"].get("tool_calls") or []
            if any(c["type"] == "code_interpreter" for c in calls):
                ci_calls.append((step["created_at"], run["id"]))
    opened = set(code_interpreter_sessions(ts for ts, _ in ci_calls))
    costs = {}
    for run in runs:
        model = rt.router.aliases.get(run.get("model"), run.get("model"))
        costs[run["id"]] = usage_cost(model, run.get("usage"))
    for ts, run_id in sorted(ci_calls):
        if ts in opened:
            opened.discard(ts)
            costs[run_id] += CODE_INTERPRETER_SESSION_USD
    return costs


# -- changing things (callbacks run before the page is drawn, so widgets can be reset safely) -------------
def _notice(kind: str, text: str) -> None:
    """A banner (st.info/success/warning/error) shown once above the thread."""
    ss["playground_notices"] = [*ss.get("playground_notices", []), (kind, text)]


def _explain(exc: APIError) -> None:
    """A runtime refusal as a banner that says what to do."""
    if exc.code == "run_active":
        _notice("info", "This thread is busy: a run is already in progress (perhaps in another tab). "
                        "Wait for it to finish, or cancel it.")
    elif exc.code == "model_not_found":  # the banner above already names the model and the backends down
        _notice("error", "Not run: the model is not available right now. Your message is kept in the thread: pick "
                         "an available model in the sidebar, save, and press **Run**.")
    else:
        _notice("error", exc.message)


def _open(assistant_id: str | None, thread_id: str | bool | None = True) -> None:
    """Show an assistant; thread_id=True opens its newest thread, None a fresh one."""
    ss["assistant_id"] = assistant_id
    ss["thread_id"] = (_latest_thread(assistant_id) if assistant_id else None) if thread_id is True else thread_id
    ss["playground_history"] = MESSAGES_STEP


def _default_model() -> str:
    """The configured default model if something serves it, else the first model that is served."""
    available = rt.router.available_models()
    preferred = rt.router.default_model
    if preferred in available or not available:
        return preferred or EMBEDDED_MODEL_ID
    return available[0]


def _on_pick() -> None:
    _open(ss["playground_pick"])


def _open_origin(assistant_id: str, thread_id: str | None) -> None:
    """Callback of a handed-off message: back to the assistant (and thread) it came from."""
    try:
        rt.get_thread(thread_id) if thread_id else None
    except APIError:
        thread_id = None  # that thread was deleted: open the assistant's newest instead
    _open(assistant_id, thread_id or True)


def _on_create() -> None:
    try:
        made = rt.create_assistant(model=_default_model(), name="New assistant",
                                   instructions="You are a helpful assistant.")
    except APIError as exc:
        _notice("error", f"Could not create the assistant: {exc.message}")
        return
    _open(made["id"], None)
    st.toast("Assistant created: name it and give it instructions in the sidebar.", icon=":material/add:")


def _on_clone() -> None:
    try:
        source = rt.get_assistant(ss["assistant_id"])
        body = {k: source[k] for k in ("model", "description", "instructions", "tools", "tool_resources",
                                       "metadata", "temperature", "top_p", "response_format") if k in source}
        made = rt.create_assistant(name=f"Copy of {sidebar.assistant_label(source)}"[:256], **body)
    except APIError as exc:
        _notice("error", f"Could not clone the assistant: {exc.message}")
        return
    _open(made["id"], None)
    st.toast(f"Cloned into “{made['name']}”.", icon=":material/content_copy:")


def _on_delete() -> None:
    doomed = ss["assistant_id"]
    try:
        name = sidebar.assistant_label(rt.get_assistant(doomed))
        rt.delete_assistant(doomed)
    except APIError as exc:
        _notice("error", f"Could not delete the assistant: {exc.message}")
        return
    ss["playground_drafts"].pop(doomed, None)
    rest = rt.list_assistants(limit=1, order="desc")["data"]
    _open(rest[0]["id"] if rest else None)
    st.toast(f"Deleted “{name}”. Its threads are still under Threads.", icon=":material/delete:")


def _resources() -> bool:
    return rt.files is not None or rt.vector_stores is not None


def _on_save() -> None:
    try:
        stored = rt.get_assistant(ss["assistant_id"])
    except APIError as exc:
        _notice("error", f"Not saved: {exc.message}")
        return
    body, errors = sidebar.build_body(sidebar.read_draft(), stored, resources=_resources())
    if errors:
        _notice("error", "Not saved: " + " ".join(errors))
        return
    try:
        saved = rt.update_assistant(stored["id"], **body)
    except APIError as exc:
        _notice("error", f"Not saved: {exc.message}")
        return
    ss["playground_drafts"].pop(saved["id"], None)
    fresh = sidebar.draft_from_assistant(saved)
    sidebar.load_draft(fresh)
    ss["playground_cfg_base"] = fresh
    st.toast("Saved.", icon=":material/check:")


def _on_refresh_models() -> None:
    rt.router.catalog(refresh=True)


def _on_cancel(thread_id: str, run_id: str) -> None:
    try:
        rt.cancel_run(thread_id, run_id)
    except APIError:
        pass  # it finished meanwhile: nothing to cancel


def _on_clear_thread() -> None:
    ss["thread_id"] = None  # the next message starts a new thread; the old one stays under Threads
    ss["playground_history"] = MESSAGES_STEP


def _on_more_messages() -> None:
    ss["playground_history"] = ss.get("playground_history", MESSAGES_STEP) + MESSAGES_STEP


def _store_uploads(key: str) -> list[str]:
    """Store the files of uploader `key`; returns their ids (a file that fails gets a banner, the rest go on)."""
    made = []
    for up in ss.get(key) or []:
        try:
            made.append(rt.files.create(up.name, up.getvalue(), "assistants")["id"])
        except APIError as exc:
            _notice("error", f"Could not upload {up.name}: {exc.message}")
    return made


def _on_upload_files() -> None:
    """Upload the Code Interpreter files picked in the sidebar and select them."""
    made = _store_uploads(sidebar.upload_key("playground_ci_upload"))
    ss[sidebar.K + "code_file_ids"] = [*ss.get(sidebar.K + "code_file_ids", []), *made][:20]
    if made:
        sidebar.clear_uploads()


def _on_upload_store() -> None:
    """Make a vector store of the uploaded files and select it for File Search."""
    made = _store_uploads(sidebar.upload_key("playground_fs_upload"))
    if made:
        try:
            store = rt.vector_stores.create(name=f"{ss.get(sidebar.K + 'name') or 'Assistant'} files", file_ids=made)
        except APIError as exc:
            _notice("error", f"Could not create the vector store: {exc.message}")
            return
        ss[sidebar.K + "vector_store_ids"] = [store["id"]]
        sidebar.clear_uploads()


def _failed_files(store_id: str) -> list[tuple[str, str]]:
    """(file name, why) for each file of a vector store that could not be indexed."""
    out = []
    try:
        for row in _all(rt.vector_stores.list_files, vs_id=store_id, filter="failed"):
            name = _file(str(rt.settings.data_dir), row["id"], False)["name"] or row["id"]
            why = (row.get("last_error") or {}).get("message") or "it could not be read."
            out.append((name, why.removeprefix(f"{name}: ")))  # the reason often starts with the name already
    except APIError:
        pass  # the store was deleted meanwhile: nothing to explain
    return out


def _watch_indexing(store_ids: list[str]) -> None:
    """While a chosen vector store is still indexing, look every second and redraw the page once it is done."""

    def body() -> None:
        for store_id in store_ids:
            try:
                if rt.vector_stores.get(store_id)["status"] == "in_progress":
                    return
            except APIError:
                pass
        st.rerun()

    st.fragment(body, run_every=1.0)()


def _sync_draft(current: dict) -> None:
    """Make the sidebar widgets hold this assistant's draft: unsaved edits if any, else what is stored."""
    fresh = sidebar.draft_from_assistant(current)
    if ss.get("playground_cfg_for") != current["id"] or not sidebar.draft_loaded():
        sidebar.load_draft(ss["playground_drafts"].get(current["id"]) or fresh)
        ss["playground_cfg_for"] = current["id"]
        ss["playground_cfg_base"] = fresh
        return
    base = ss.get("playground_cfg_base")
    if base != fresh:  # saved elsewhere meanwhile (Assistants page, the API, another tab)
        if sidebar.read_draft() == base:
            sidebar.load_draft(fresh)
        else:
            _notice("warning", "This assistant was changed elsewhere while you were editing it. "
                               "Saving will replace those changes with yours.")
        ss["playground_cfg_base"] = fresh


def _ensure_thread(assistant: dict) -> str:
    if ss.get("thread_id") is None:
        ss["thread_id"] = rt.create_thread(metadata={"assistant_id": assistant["id"]})["id"]
    return ss["thread_id"]


# -- sending and running ---------------------------------------------------------------------------------
def _start_run(thread_id: str, assistant: dict):
    last = rt.list_messages(thread_id, limit=1, order="desc")["data"]
    # Where this run sits in the conversation, exactly (timestamps are whole seconds).
    body: dict = {"assistant_id": assistant["id"],
                  "metadata": {thread_view.AFTER_KEY: last[0]["id"]} if last else None}
    if ss.get("playground_max_tokens"):
        body["max_completion_tokens"] = max(16, int(ss["playground_max_tokens"]))  # the API's minimum
    if (ss.get("playground_run_instructions") or "").strip():
        body["additional_instructions"] = ss["playground_run_instructions"]
    try:
        return rt.create_run(thread_id, stream=True, **body)
    except APIError as exc:
        _explain(exc)
        return None


def _upload_parts(files: list, assistant: dict) -> tuple[list, list]:
    """Chat attachments as image parts (pictures) and attachments (documents) of the message."""
    tool_types = {t["type"] for t in assistant.get("tools") or []}
    parts, attachments = [], []
    for up in files:
        ext = up.name.rsplit(".", 1)[-1].lower() if "." in up.name else ""
        if ext in IMAGE_TYPES:
            made = rt.files.create(up.name, up.getvalue(), "vision")
            parts.append({"type": "image_file", "image_file": {"file_id": made["id"]}})
            continue
        made = rt.files.create(up.name, up.getvalue(), "assistants")
        tools = [{"type": t} for t in ("file_search", "code_interpreter") if t in tool_types]
        if not tools:
            tools = [{"type": "file_search" if ext in FILE_SEARCH_TYPES else "code_interpreter"}]
        attachments.append({"file_id": made["id"], "tools": tools})
    return parts, attachments


def _send(text: str, files: list, assistant: dict, mode: str):
    """Store the user's message (always first), then start a run unless only adding; returns the subscription."""
    if not text.strip() and not files:
        return None  # an empty message sends nothing
    thread_id = _ensure_thread(assistant)
    try:
        parts, attachments = _upload_parts(files, assistant) if files else ([], [])
        content = [{"type": "text", "text": text}] if text.strip() else []
        rt.create_message(thread_id, role="user", content=content + parts if parts else text,
                          attachments=attachments or None)
    except APIError as exc:
        ss["playground_unsent"] = text
        _explain(exc)
        return None
    ss["playground_unsent"] = None
    if mode == "add":
        _notice("success", "Added to the thread. Press **Run** when you want an answer.")
        return None
    return _start_run(thread_id, assistant)


def _on_prompt() -> None:
    """Enter in the message box: store the message and start its run right away, before the page redraws,
    so the model is already working while the page renders; the redraw streams the reply."""
    prompt = ss.get("playground_prompt")
    if prompt is None:
        return
    text = prompt if isinstance(prompt, str) else (prompt.text or "")
    files = [] if isinstance(prompt, str) else list(prompt.files or [])
    try:
        assistant = rt.get_assistant(ss.get("assistant_id") or "")
    except APIError:
        ss["playground_unsent"] = text or None
        _notice("error", "This assistant was deleted meanwhile (perhaps in another tab): pick or create another, "
                         "then send your message again.")
        ss["playground_sent"] = False
        return
    # The subscription to the new run's events, or False when nothing runs (empty, added only, refused).
    ss["playground_sent"] = _send(text, files, assistant, ss.get("playground_send_mode") or "run") or False


def _handoff(message: dict, target_id: str, names: dict, assistant: dict) -> None:
    """Send an assistant's reply into another assistant's thread as a user message, and open that thread."""
    text = thread_view.plain_text(message)
    if not text:
        _notice("info", "That reply has no text to hand off.")
        return
    images = any(b["type"] != "text" for b in message.get("content") or [])
    try:
        thread_id = _latest_thread(target_id) or rt.create_thread(metadata={"assistant_id": target_id})["id"]
        rt.create_message(thread_id, role="user", content=text, metadata={
            thread_view.HANDOFF_FROM: assistant["id"], thread_view.HANDOFF_THREAD: message["thread_id"],
            "handoff_from_message": message["id"]})
    except APIError as exc:
        _explain(exc)
        return
    _open(target_id, thread_id)
    if ss.get("playground_send_mode", "run") == "run":
        ss["playground_autorun"] = thread_id
    _notice("success", f"Handed off to {names.get(target_id, 'the assistant')}: the reply is now a user message "
                       "in its thread" + (" (its text; the images stay in the original thread)." if images else "."))


def _watch_active(thread_id: str, run_id: str) -> None:
    """A run working elsewhere (another tab, or before a reload): poll it and redraw the page when it stops."""

    def body() -> None:
        try:
            run = rt.get_run(thread_id, run_id)
        except APIError:
            st.rerun()
        if run["status"] not in LIVE_STATUSES:
            st.rerun()
        replies = rt.list_messages(thread_id, run_id=run_id, limit=1, order="desc")["data"]
        thread_view.render_active_run(run, writing=bool(replies) and replies[0]["status"] == "in_progress")

    st.fragment(body, run_every=1.0)()


def _thread_mark(thread_id: str | None, runs: list[dict]) -> tuple:
    """What changes when anyone (another tab, the API) adds a message or starts or ends a run."""
    if not thread_id:
        return ()
    newest = rt.list_messages(thread_id, limit=1, order="desc")["data"]
    return (runs[0]["id"], runs[0]["status"]) if runs else (), newest[0]["id"] if newest else None


def _log_panel(thread_id: str | None, live: bool, mark: tuple) -> None:
    """The run log; redraws itself every 1.5 s while a run works, and looks for changes made elsewhere every 3 s."""

    def body() -> None:
        runs = _all(rt.list_runs, thread_id=thread_id) if thread_id else []
        if not live and thread_id and _thread_mark(thread_id, runs) != mark:
            st.rerun()  # another tab or the API changed this thread: redraw the whole page
        working = any(r["status"] in LIVE_STATUSES for r in runs)
        with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute"):
            st.markdown("#### Run log")
            if working:
                st.badge("Live", icon=":material/radio_button_checked:", color="red")
            elif runs:
                st.caption(f"{len(runs)} run{'s' if len(runs) != 1 else ''}", width="content")
        pages = max(1, -(-len(runs) // RUNS_PER_LOG_PAGE))
        page = 1
        with st.container(height=LOG_HEIGHT, border=False, key="playground_log_box"):
            shown_slot = st.container()
            if pages > 1:
                page = min(pages, st.pagination(pages, key="playground_log_page", width="stretch"))
            shown = runs[(page - 1) * RUNS_PER_LOG_PAGE: page * RUNS_PER_LOG_PAGE]
            costs = _costs(runs)  # all runs: a Code Interpreter session is charged to the run that opened it
            with shown_slot:
                run_log.render_run_log(shown, load=_run_details, cost=lambda r: costs.get(r["id"], 0.0))

    st.fragment(body, run_every=1.5 if live else (IDLE_CHECK_S if thread_id else None))()


# -- the page --------------------------------------------------------------------------------------------
assistants = _all(rt.list_assistants)
by_id = {a["id"]: a for a in assistants}
if ss.get("assistant_id") not in by_id:
    # First visit, or the assistant was deleted elsewhere: open the newest one (keeping a thread opened from Threads).
    _open(assistants[0]["id"] if assistants else None, ss.get("thread_id") or True)
current = by_id.get(ss.get("assistant_id"))
if ss.get("thread_id"):
    try:
        rt.get_thread(ss["thread_id"])
    except APIError:
        ss["thread_id"] = None  # deleted under Threads: start afresh rather than fail

with st.sidebar:
    if current is not None:
        ss["playground_pick"] = current["id"]
    sidebar.render_picker(assistants, current, on_pick=_on_pick, on_create=_on_create, on_clone=_on_clone,
                          on_delete=_on_delete)
    if current is not None:
        _sync_draft(current)
        catalog = rt.router.catalog()
        models = [(m, b.name) for b in catalog if b.ok for m in b.models]
        models += [(alias, f"alias of {target}") for alias, target in rt.router.aliases.items()]
        files = _all(rt.files.list, purpose="assistants") if rt.files is not None else None
        stores = _all(rt.vector_stores.list) if rt.vector_stores is not None else None
        config = sidebar.render_config(current, models=models, backends=catalog, files=files, stores=stores,
                                       on_save=_on_save, on_refresh=_on_refresh_models,
                                       on_upload_files=_on_upload_files, on_upload_store=_on_upload_store,
                                       failed_files=_failed_files)
        indexing = [s["id"] for s in stores or [] if s.get("status") == "in_progress"
                    and s["id"] in (ss.get(sidebar.K + "vector_store_ids") or [])]
        if indexing:
            _watch_indexing(indexing)
        if config["dirty"]:
            ss["playground_drafts"][current["id"]] = config["draft"]
        else:
            ss["playground_drafts"].pop(current["id"], None)

if current is None:
    st.title("Assistants Playground")
    st.markdown("Create an assistant, give it instructions and tools, and chat with it — all on this machine. "
                "The built-in model works without any key or network; add OpenAI or a local server under Settings.")
    st.button("Create your first assistant", type="primary", icon=":material/add:", on_click=_on_create,
              key="playground_first")
    for kind, text in ss.get("playground_notices", []):
        getattr(st, kind)(text)
    ss["playground_notices"] = []
    st.stop()

# Side by side while the main area is wide enough; stacked (thread first) when narrow: see app.py's CSS.
thread_col, log_col = st.container(key="playground_main").columns([3, 2], gap="medium")
with thread_col:
    head = st.container()
    banners = st.container()
    unsent = st.container()
    box_slot = st.empty()  # the message box, sized once the banners above it are known
    bar = st.container(horizontal=True, vertical_alignment="center", gap="small")
    typing = st.container()

thread_id = ss.get("thread_id")
runs = _all(rt.list_runs, thread_id=thread_id) if thread_id else []
active = runs[0] if runs and runs[0]["status"] in ACTIVE_STATUSES else None

# Inputs first (their containers are already placed), so the new message is in the thread when it is drawn.
# The message box is disabled only for a run this page has already shown: Streamlit drops what a disabled
# widget submits, so disabling it in the very run that discovers a new active run would lose the text.
with typing:
    accept = "multiple" if rt.files is not None else False
    if active is not None and active["status"] == "requires_action":
        hint = "Submit the function outputs above first (or cancel the run)"
    elif active is not None:
        hint = "Wait for the run to finish, or cancel it"
    else:
        hint = f"Message {sidebar.assistant_label(current)}…"
    st.chat_input(hint, key="playground_prompt", accept_file=accept, submit_mode="disable", on_submit=_on_prompt,
                           file_type=list(UPLOAD_TYPES) if accept else None,
                           max_upload_size=rt.settings.max_upload_mb if accept else None,
                           disabled=active is not None and active["id"] == ss.get("playground_busy_seen"))
resend = False
with unsent:
    if ss.get("playground_unsent"):
        st.warning("Your message was not sent; here it is, so nothing is lost (attach any files again):",
                   icon=":material/unpublished:")
        st.code(ss["playground_unsent"], language=None, wrap_lines=True)
        with st.container(horizontal=True):
            resend = st.button("Send again", key="playground_resend", icon=":material/send:")
            st.button("Dismiss", key="playground_dismiss", type="tertiary",
                      on_click=lambda: ss.update(playground_unsent=None))
with bar:
    mode = st.segmented_control("When you send", ["run", "add"], default="run", key="playground_send_mode",
                                format_func={"run": "Send & run", "add": "Add only"}.get, required=True,
                                label_visibility="collapsed", persist_state="session",
                                help="Add only: put the message in the thread without asking for an answer; "
                                     "press Run when ready.")
    run_clicked = st.button("Run", icon=":material/play_arrow:", key="playground_run",
                            disabled=active is not None or not thread_id,
                            help="Run the assistant on the thread as it is")
    with st.popover("Run options", icon=":material/tune:"):
        st.number_input("Max reply tokens", min_value=0, max_value=32_000, step=64, key="playground_max_tokens",
                        persist_state="session",
                        help="0 leaves it to the backend (the embedded model stops at 512 per reply); otherwise at least 16. "
                             "Applies to each run you start.")
        st.text_area("Extra instructions for this run", key="playground_run_instructions", height=90,
                     persist_state="session", placeholder="e.g. Provide a detailed analysis.",
                     help="Added to the assistant's instructions for runs started here.")
    if active is not None and active["status"] != "cancelling":
        st.button("Cancel run", icon=":material/stop_circle:", key="playground_cancel", on_click=_on_cancel,
                  args=(thread_id, active["id"]))

subscription = None
sent = ss.pop("playground_sent", None)  # what _on_prompt did with a message typed before this redraw
if sent is not None:
    subscription = sent or None  # a thread that was busy kept the text in playground_unsent, with a banner
elif resend and active is not None:
    _notice("info", "The thread is still busy: send it again when the run has finished.")
elif resend:
    subscription = _send(ss["playground_unsent"], [], current, "run")
elif run_clicked and active is None and thread_id:
    subscription = _start_run(thread_id, current)
elif ss.get("playground_autorun") and ss.get("playground_autorun") == thread_id and active is None:
    ss["playground_autorun"] = None
    subscription = _start_run(thread_id, current)
    run_clicked = True

if subscription is None and (sent is not None or run_clicked or resend):
    st.rerun()  # the message was stored (or refused): redraw so the toolbar and thread agree with the store
if subscription is not None:
    thread_id = ss.get("thread_id")
    runs = _all(rt.list_runs, thread_id=thread_id)
    active = runs[0] if runs and runs[0]["status"] in ACTIVE_STATUSES else None
elif active is not None and active["id"] != ss.get("playground_busy_seen"):
    ss["playground_busy_seen"] = active["id"]
    st.rerun()  # a run started elsewhere: redraw once with the message box disabled
if active is not None:
    ss["playground_busy_seen"] = active["id"]

with head:
    with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute"):
        if thread_id:
            st.code(thread_id, language=None, width="content")
        else:
            st.caption(":material/forum: New thread: it is created when you send the first message.")
        st.button("Clear thread", icon=":material/add_comment:", key="playground_clear", on_click=_on_clear_thread,
                  disabled=not thread_id or active is not None, type="tertiary",
                  help="Start a new, empty thread. This one stays under Threads.")
    costs = _costs(runs) if runs else {}
    total: dict = {}
    for r in runs:
        tokens.add_usage(total, r.get("usage"))
    last = runs[0] if runs and runs[0].get("usage") else None  # the newest run: it may still be working
    tokens.render_tokens(last and last["usage"], last and costs.get(last["id"]), total or None,
                         sum(costs.values()) if runs else None, working=bool(runs) and last is None)

with banners:
    saved_model = current["model"]
    served = {m for b in rt.router.catalog() if b.ok for m in b.models} | set(rt.router.aliases)
    if saved_model not in served:
        down = [f"**{b.name}**" for b in rt.router.catalog() if not b.ok]  # the sidebar says why each is down
        st.warning(f"This assistant's model **{saved_model}** is not served by any reachable backend"
                   + (f" (unreachable: {', '.join(down)})" if down else "") + ". Pick another model in the sidebar "
                   "and save, or fix the backend under Settings.", icon=":material/cloud_off:")
    shown_banners = len(ss.get("playground_notices", [])) + (saved_model not in served) \
        + 2 * bool(ss.get("playground_unsent"))
    for kind, text in ss.get("playground_notices", []):
        getattr(st, kind)(text)
    ss["playground_notices"] = []
# Banners shrink the message box so the message input stays on screen. The pixel height is for a 900 px tall
# window; the CSS makes it follow the window's height, so the message input stays on screen on a laptop too.
box = box_slot.container(height=max(280, THREAD_HEIGHT - 100 * shown_banners), border=True, key="playground_thread")
_h = f"max(280px,calc(100vh - {THREAD_OFFSET + 100 * shown_banners}px))"
st.html(f"<style>[data-testid='stLayoutWrapper']:has(> .st-key-playground_thread){{height:{_h} !important;"
        f"flex-basis:{_h} !important}}</style>")

with log_col:
    _log_panel(thread_id, live=active is not None and active["status"] in LIVE_STATUSES,
               mark=_thread_mark(thread_id, runs))

with box:
    if not thread_id:
        st.caption("Say hello to start a conversation. Attach files or images with the clip in the message box."
                   if accept else "Say hello to start a conversation.")
    else:
        messages, older = _messages(thread_id, ss.get("playground_history", MESSAGES_STEP))
        if older:
            st.button("Show earlier messages", icon=":material/expand_less:", key="playground_more",
                      on_click=_on_more_messages, type="tertiary", width="stretch")
        names = {a["id"]: sidebar.assistant_label(a) for a in assistants}
        targets = {a_id: name for a_id, name in names.items() if a_id != current["id"]}
        files = _files_of(messages)
        for kind, item in thread_view.timeline(messages, runs, older_hidden=older):
            if kind == "run":
                thread_view.render_run_outcome(item)
                continue
            author = names.get(item.get("assistant_id"), "Assistant") if item["role"] == "assistant" else "You"
            picked = thread_view.render_message(item, author=author, files=files, handoff=targets or None,
                                                key=f"playground_msg_{item['id']}", names=names, on_open=_open_origin)
            if picked:
                _handoff(item, picked, names, current)
                st.rerun()
        if subscription is None and active is not None and active["status"] == "requires_action":
            calls = active["required_action"]["submit_tool_outputs"]["tool_calls"]
            outputs = thread_view.render_function_calls(calls, key=f"playground_outputs_{active['id']}")
            if outputs is not None:
                try:
                    subscription = rt.submit_tool_outputs(thread_id, active["id"], stream=True, tool_outputs=[
                        {"tool_call_id": call_id, "output": output} for call_id, output in outputs.items()])
                except APIError as exc:
                    st.error(exc.message)
        if subscription is not None:
            thread_view.stream_run(subscription.events(timeout=0.5))
            st.rerun()  # draw the stored result: citations, images, tokens, the log
        elif active is not None and active["status"] in LIVE_STATUSES:
            _watch_active(thread_id, active["id"])
