"""Changing things from the Playground: open, create, clone, delete and save assistants, upload, send and run.

The on_* functions are widget callbacks: they run before the page is drawn, so they may reset widgets safely.
They report in banners above the thread (notice), not toasts: a toast covered the run log's heading.
"""

from __future__ import annotations

import streamlit as st

from assistants import branches
from assistants.errors import APIError, NotFound
from assistants.runtime import list_every
from components import sidebar, thread_view
from components.safe_text import code_text, plain
from playground import MESSAGES_STEP, data
from session import get_runtime

IMAGE_TYPES = ("png", "jpg", "jpeg", "gif", "webp")
UPLOAD_TYPES = (*IMAGE_TYPES, "pdf", "txt", "md", "csv", "tsv", "json", "jsonl", "xml", "html", "docx", "pptx",
                "xlsx", "py", "js", "ts", "c", "cpp", "java", "go", "rb", "php", "sh", "tex", "zip")
# The embedded model is tiny: at temperature 1 it rambles and loops until the 512-token cap ("cut short"). New
# assistants on it start focused, and its replies stop at EMBEDDED_REPLY_CAP unless Run options say otherwise.
EMBEDDED_DEFAULTS = {"temperature": 0.2, "top_p": 0.9}
EMBEDDED_REPLY_CAP = 256
FILE_SEARCH_TYPES = ("pdf", "txt", "md", "json", "html", "docx", "py", "js", "ts", "c", "cpp", "java",
                     "go", "rb", "php", "sh", "tex")


# -- banners and which assistant and thread are open ---------------------------------------------------
def notice(kind: str, text: str) -> None:
    """A banner (st.info/success/warning/error) shown once above the thread."""
    st.session_state["playground_notices"] = [*st.session_state.get("playground_notices", []), (kind, text)]


def _explain(exc: APIError) -> None:
    """A runtime refusal as a banner that says what to do."""
    if exc.code == "run_active":
        notice("info", "This thread is busy: a run is already in progress (perhaps in another tab). "
                       "Wait for it to finish, or cancel it.")
    elif exc.code == "model_not_found":  # the banner above already names the model and the backends down
        notice("error", "Not run: the model is not available right now. Your message is kept in the thread: pick "
                        "an available model in the sidebar, save, and press **Run**.")
    else:
        notice("error", plain(exc.message))  # messages may quote names and ids the user typed


def open_assistant(assistant_id: str | None, thread_id: str | bool | None = True) -> None:
    """Show an assistant; thread_id=True opens its newest thread, None a fresh one."""
    ss = st.session_state
    ss["assistant_id"] = assistant_id
    ss["thread_id"] = (data.latest_thread(assistant_id) if assistant_id else None) if thread_id is True else thread_id
    ss["playground_history"] = MESSAGES_STEP


def open_current() -> tuple[list[dict], dict | None]:
    """Every assistant, and the one to show (opening the newest when none is open); forgets a deleted thread."""
    rt, ss = get_runtime(), st.session_state
    assistants = list_every(rt.list_assistants)
    by_id = {a["id"]: a for a in assistants}
    if ss.get("assistant_id") not in by_id:
        # First visit, or the assistant was deleted elsewhere: open the newest one (keeping a thread opened from Threads).
        open_assistant(assistants[0]["id"] if assistants else None, ss.get("thread_id") or True)
    if ss.get("thread_id"):
        try:
            rt.get_thread(ss["thread_id"])
        except APIError:
            ss["thread_id"] = None  # deleted under Threads: start afresh rather than fail
    return assistants, by_id.get(ss.get("assistant_id"))


def on_pick() -> None:
    """The assistant picker changed: open the picked assistant's newest thread."""
    open_assistant(st.session_state["playground_pick"])


def open_origin(assistant_id: str, thread_id: str | None) -> None:
    """Callback of a handed-off message: back to the assistant (and thread) it came from."""
    try:
        get_runtime().get_thread(thread_id) if thread_id else None
    except APIError:
        thread_id = None  # that thread was deleted: open the assistant's newest instead
    open_assistant(assistant_id, thread_id or True)


def on_clear_thread() -> None:
    """Start a new thread with the next message."""
    st.session_state["thread_id"] = None  # the old thread stays under Threads
    st.session_state["playground_history"] = MESSAGES_STEP


def on_open_thread(thread_id: str) -> None:
    """A thread picked in the list beside the chat."""
    st.session_state["thread_id"] = thread_id
    st.session_state["playground_history"] = MESSAGES_STEP


def on_rename_thread(thread_id: str, key: str) -> None:
    """Store the title typed into widget `key` in the thread's metadata (the rest of its metadata kept)."""
    rt = get_runtime()
    title = " ".join((st.session_state.get(key) or "").split())[:200]
    try:
        metadata = dict(rt.get_thread(thread_id).get("metadata") or {})
        if title:
            metadata["title"] = title
        else:
            metadata.pop("title", None)  # an empty title: named by its first message again
        rt.update_thread(thread_id, metadata=metadata)
    except APIError as exc:
        notice("error", "Could not rename the thread: " + plain(exc.message))


def on_delete_thread(thread_id: str) -> None:
    """Delete a thread with its messages and runs; the open one is replaced by a new, empty thread."""
    try:
        get_runtime().delete_thread(thread_id)
    except APIError as exc:
        notice("error", "Could not delete the thread: " + plain(exc.message))
        return
    if st.session_state.get("thread_id") == thread_id:
        on_clear_thread()
    notice("success", "Thread deleted.")


def on_more_messages() -> None:
    """Show MESSAGES_STEP more of the older messages."""
    st.session_state["playground_history"] = st.session_state.get("playground_history", MESSAGES_STEP) + MESSAGES_STEP


# -- the assistant's configuration ---------------------------------------------------------------------
def on_create() -> None:
    """A new assistant on the default model, opened on a fresh thread."""
    model = data.default_model()
    tuned = EMBEDDED_DEFAULTS if data.is_embedded(model) else {}
    try:
        made = get_runtime().create_assistant(model=model, name="New assistant",
                                              instructions="You are a helpful assistant. Answer briefly.", **tuned)
    except APIError as exc:
        notice("error", "Could not create the assistant: " + plain(exc.message))
        return
    open_assistant(made["id"], None)
    notice("success", "Assistant created: name it and give it instructions in the sidebar.")


def on_clone() -> None:
    """A copy of the open assistant as stored (unsaved edits are not copied)."""
    rt = get_runtime()
    try:
        source = rt.get_assistant(st.session_state["assistant_id"])
        body = {k: source[k] for k in ("model", "description", "instructions", "tools", "tool_resources",
                                       "metadata", "temperature", "top_p", "response_format") if k in source}
        made = rt.create_assistant(name=f"Copy of {sidebar.assistant_label(source)}"[:256], **body)
    except APIError as exc:
        notice("error", "Could not clone the assistant: " + plain(exc.message))
        return
    open_assistant(made["id"], None)
    notice("success", f"Cloned into {code_text(made['name'])}.")


def on_delete() -> None:
    """Delete the open assistant (its threads stay) and open the newest one left."""
    rt, ss = get_runtime(), st.session_state
    doomed = ss["assistant_id"]
    try:
        name = sidebar.assistant_label(rt.get_assistant(doomed))
        rt.delete_assistant(doomed)
    except APIError as exc:
        notice("error", "Could not delete the assistant: " + plain(exc.message))
        return
    ss["playground_drafts"].pop(doomed, None)
    rest = rt.list_assistants(limit=1, order="desc")["data"]
    open_assistant(rest[0]["id"] if rest else None)
    notice("success", f"Deleted {code_text(name)}. Its threads are still under Threads.")


def on_save() -> None:
    """Save the sidebar's draft into the open assistant, or say in a banner why not."""
    rt, ss = get_runtime(), st.session_state
    try:
        stored = rt.get_assistant(ss["assistant_id"])
    except APIError as exc:
        notice("error", "Not saved: " + plain(exc.message))
        return
    resources = rt.files is not None or rt.vector_stores is not None
    body, errors = sidebar.build_body(sidebar.read_draft(), stored, resources=resources)
    if errors:
        notice("error", "Not saved: " + plain(" ".join(errors)))
        return
    try:
        saved = rt.update_assistant(stored["id"], **body)
    except APIError as exc:
        notice("error", "Not saved: " + plain(exc.message))
        return
    ss["playground_drafts"].pop(saved["id"], None)
    fresh = sidebar.draft_from_assistant(saved)
    sidebar.load_draft(fresh)
    ss["playground_cfg_base"] = fresh  # the badge now says Saved: no toast over the page's headings


def on_refresh_models() -> None:
    """Ask every backend for its models again."""
    get_runtime().router.catalog(refresh=True)


def sync_draft(current: dict) -> None:
    """Make the sidebar widgets hold this assistant's draft: unsaved edits if any, else what is stored."""
    ss = st.session_state
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
            notice("warning", "This assistant was changed elsewhere while you were editing it. "
                              "Saving will replace those changes with yours.")
        ss["playground_cfg_base"] = fresh


def keep_draft(current: dict, config: dict) -> None:
    """Remember unsaved edits per assistant, so switching assistants and back brings them back."""
    drafts = st.session_state["playground_drafts"]
    if config["dirty"]:
        drafts[current["id"]] = config["draft"]
    else:
        drafts.pop(current["id"], None)


# -- uploads from the sidebar --------------------------------------------------------------------------
def _store_uploads(key: str) -> list[str]:
    """Store the files of uploader `key`; returns their ids (a file that fails gets a banner, the rest go on)."""
    files, made = get_runtime().files, []
    for up in st.session_state.get(key) or []:
        try:
            made.append(files.create(up.name, up.getvalue(), "assistants")["id"])
        except APIError as exc:
            notice("error", f"Could not upload {code_text(up.name)}: " + plain(exc.message))
    return made


def on_upload_files() -> None:
    """Upload the Code Interpreter files picked in the sidebar and select them."""
    ss = st.session_state
    made = _store_uploads(sidebar.upload_key("playground_ci_upload"))
    ss[sidebar.K + "code_file_ids"] = [*ss.get(sidebar.K + "code_file_ids", []), *made][:20]
    if made:
        sidebar.clear_uploads()


def on_upload_store() -> None:
    """Make a vector store of the uploaded files and select it for File Search."""
    ss = st.session_state
    made = _store_uploads(sidebar.upload_key("playground_fs_upload"))
    if made:
        try:
            store = get_runtime().vector_stores.create(name=f"{ss.get(sidebar.K + 'name') or 'Assistant'} files",
                                                       file_ids=made)
        except APIError as exc:
            notice("error", "Could not create the vector store: " + plain(exc.message))
            return
        ss[sidebar.K + "vector_store_ids"] = [store["id"]]
        sidebar.clear_uploads()


# -- sending and running -------------------------------------------------------------------------------
def on_cancel(thread_id: str, run_id: str) -> None:
    """Ask the run to stop."""
    try:
        get_runtime().cancel_run(thread_id, run_id)
    except APIError:
        pass  # it finished meanwhile: nothing to cancel


def _ensure_thread(assistant: dict, first_message: str = "") -> str:
    """The open thread, created if there is none yet: tagged with the assistant, titled by its first message."""
    ss = st.session_state
    if ss.get("thread_id") is None:
        metadata = {"assistant_id": assistant["id"]}
        if first_message.strip():
            metadata["title"] = data.thread_title(first_message, None)
        ss["thread_id"] = get_runtime().create_thread(metadata=metadata)["id"]
    return ss["thread_id"]


def start_run(thread_id: str, assistant: dict, metadata: dict | None = None):
    """Run the assistant on the thread with this page's run options; returns the subscription, or None."""
    rt, ss = get_runtime(), st.session_state
    last = rt.list_messages(thread_id, limit=1, order="desc")["data"]
    # Where this run sits in the conversation, exactly (timestamps are whole seconds).
    place = {thread_view.AFTER_KEY: last[0]["id"]} if last else {}
    body: dict = {"assistant_id": assistant["id"], "metadata": {**place, **(metadata or {})} or None}
    if ss.get("playground_max_tokens"):
        body["max_completion_tokens"] = max(16, int(ss["playground_max_tokens"]))  # the API's minimum
    elif data.is_embedded(assistant.get("model")):
        body["max_completion_tokens"] = EMBEDDED_REPLY_CAP
    if (ss.get("playground_run_instructions") or "").strip():
        body["additional_instructions"] = ss["playground_run_instructions"]
    try:
        return rt.create_run(thread_id, stream=True, **body)
    except APIError as exc:
        _explain(exc)
        return None


def _upload_parts(files: list, assistant: dict) -> tuple[list, list]:
    """Chat attachments as image parts (pictures) and attachments (documents) of the message."""
    store = get_runtime().files
    tool_types = {t["type"] for t in assistant.get("tools") or []}
    parts, attachments = [], []
    for up in files:
        ext = up.name.rsplit(".", 1)[-1].lower() if "." in up.name else ""
        if ext in IMAGE_TYPES:
            made = store.create(up.name, up.getvalue(), "vision")
            parts.append({"type": "image_file", "image_file": {"file_id": made["id"]}})
            continue
        made = store.create(up.name, up.getvalue(), "assistants")
        tools = [{"type": t} for t in ("file_search", "code_interpreter") if t in tool_types]
        if not tools:
            tools = [{"type": "file_search" if ext in FILE_SEARCH_TYPES else "code_interpreter"}]
        attachments.append({"file_id": made["id"], "tools": tools})
    return parts, attachments


def send(text: str, files: list, assistant: dict, mode: str):
    """Store the user's message (always first), then start a run unless only adding; returns the subscription."""
    if not text.strip() and not files:
        return None  # an empty message sends nothing
    thread_id = _ensure_thread(assistant, text)
    try:
        parts, attachments = _upload_parts(files, assistant) if files else ([], [])
        content = [{"type": "text", "text": text}] if text.strip() else []
        get_runtime().create_message(thread_id, role="user", content=content + parts if parts else text,
                                     attachments=attachments or None)
    except APIError as exc:
        st.session_state["playground_unsent"] = text
        _explain(exc)
        return None
    st.session_state["playground_unsent"] = None
    if mode == "add":
        notice("success", "Added to the thread. Press **Run** when you want an answer.")
        return None
    return start_run(thread_id, assistant)


def on_prompt() -> None:
    """Enter in the message box: store the message and start its run right away, before the page redraws,
    so the model is already working while the page renders; the redraw streams the reply."""
    ss = st.session_state
    prompt = ss.get("playground_prompt")
    if prompt is None:
        return
    text = prompt if isinstance(prompt, str) else (prompt.text or "")
    files = [] if isinstance(prompt, str) else list(prompt.files or [])
    try:
        assistant = get_runtime().get_assistant(ss.get("assistant_id") or "")
    except APIError:
        ss["playground_unsent"] = text or None
        notice("error", "This assistant was deleted meanwhile (perhaps in another tab): pick or create another, "
                        "then send your message again.")
        ss["playground_sent"] = False
        return
    # The subscription to the new run's events, or False when nothing runs (empty, added only, refused).
    ss["playground_sent"] = send(text, files, assistant, ss.get("playground_send_mode") or "run") or False


def submit_outputs(thread_id: str, run_id: str, outputs: dict[str, str]):
    """Send the function outputs typed in; returns the subscription to the rest of the run, or None (the error is shown)."""
    try:
        return get_runtime().submit_tool_outputs(thread_id, run_id, stream=True, tool_outputs=[
            {"tool_call_id": call_id, "output": output} for call_id, output in outputs.items()])
    except APIError as exc:
        st.error(plain(exc.message))  # right where the outputs were typed in
        return None


def handoff(message: dict, target_id: str, names: dict, assistant: dict) -> None:
    """Send an assistant's reply into another assistant's thread as a user message, and open that thread."""
    rt, ss = get_runtime(), st.session_state
    text = thread_view.plain_text(message)
    if not text:
        notice("info", "That reply has no text to hand off.")
        return
    images = any(b["type"] != "text" for b in message.get("content") or [])
    try:
        thread_id = data.latest_thread(target_id) or rt.create_thread(
            metadata={"assistant_id": target_id, "title": data.thread_title(text, None)})["id"]
        rt.create_message(thread_id, role="user", content=text, metadata={
            thread_view.HANDOFF_FROM: assistant["id"], thread_view.HANDOFF_THREAD: message["thread_id"],
            "handoff_from_message": message["id"]})
    except APIError as exc:
        _explain(exc)
        return
    open_assistant(target_id, thread_id)
    if ss.get("playground_send_mode", "run") == "run":
        # Started here and watched by the next, complete redraw (Cancel shown, message box disabled), rather than
        # streamed by a redraw that also swaps the sidebar to another assistant: that one left the old sidebar's
        # elements greyed on screen for as long as the reply streamed.
        try:
            target = rt.get_assistant(target_id)
        except APIError as exc:
            _explain(exc)
            return
        subscription = start_run(thread_id, target)
        if subscription is not None:
            subscription.close()  # nobody streams it: the page polls it like a run started in another tab
            ss["playground_busy_seen"] = subscription.run_id
    notice("success", f"Handed off to {code_text(names.get(target_id, 'the assistant'))}: the reply is now a user message "
                      "in its thread" + (" (its text; the images stay in the original thread)." if images else "."))


# -- regenerate a reply, edit and resend a message -------------------------------------------------------
def _assistant_or_notice():
    """The open assistant, or None with a banner when it was deleted meanwhile."""
    try:
        return get_runtime().get_assistant(st.session_state.get("assistant_id") or "")
    except APIError:
        notice("error", "This assistant was deleted meanwhile (perhaps in another tab): pick or create another.")
        return None


def _oldest_first(thread_id: str) -> list[dict]:
    return list_every(get_runtime().list_messages, thread_id=thread_id)[::-1]


def _branch_runs(thread_id: str, every: list[dict], start: int) -> list[str]:
    """The runs that belong to the tail from `every[start]` on besides its replies' own: those this page started
    from the point before it or from a message of the tail (a run that failed without a reply), not archived yet."""
    rt = get_runtime()
    anchors = {m["id"] for m in every[max(0, start - 1):]}
    archived = branches.versions_of(rt, thread_id).archived_runs
    return [r["id"] for r in data.runs_of(thread_id)
            if (r.get("metadata") or {}).get(thread_view.AFTER_KEY) in anchors and r["id"] not in archived]


def _archive_from(thread_id: str, message_id: str) -> tuple[str, int, dict]:
    """Take message `message_id` and what follows out of the thread, kept as a version: (point, number, message)."""
    every = _oldest_first(thread_id)
    at = next((i for i, m in enumerate(every) if m["id"] == message_id), None)
    if at is None:
        raise NotFound("That message is no longer in the thread (perhaps changed in another tab).")
    point, number = branches.archive_from(get_runtime(), thread_id, message_id, _branch_runs(thread_id, every, at))
    return point, number, every[at]


def on_regenerate(thread_id: str, message_id: str) -> None:
    """A new reply from the same point: this reply and everything after it leave the thread, kept as a version."""
    assistant = _assistant_or_notice()
    if assistant is None:
        return
    try:
        _archive_from(thread_id, message_id)
    except APIError as exc:
        _explain(exc)
        return
    st.session_state["playground_sent"] = start_run(thread_id, assistant) or False


def on_edit_resend(thread_id: str, message_id: str, field: str) -> None:
    """Send the edited text in place of a message of yours (its images and attachments go again): the message and
    everything after it leave the thread, kept as a version to flip back to, and the answer starts from there."""
    rt, ss = get_runtime(), st.session_state
    text = ss.get(field) or ""
    assistant = _assistant_or_notice()
    if assistant is None:
        return
    if not text.strip():
        notice("info", "An empty message cannot be sent: type something, or close the box to keep the message.")
        return
    try:
        point, number, original = _archive_from(thread_id, message_id)
    except APIError as exc:
        _explain(exc)
        return
    kept = [b for b in original.get("content") or [] if b["type"] != "text"]
    try:
        rt.create_message(thread_id, role="user", content=[{"type": "text", "text": text}, *kept],
                          attachments=original.get("attachments") or None)
    except APIError as exc:
        branches.flip(rt, thread_id, point, number)  # put the conversation back as it was
        _explain(exc)
        return
    ss.pop(field, None)
    ss["playground_sent"] = start_run(thread_id, assistant) or False


def on_flip(thread_id: str, point: str, number: int) -> None:
    """‹ › at a point: show version `number` of what follows it; the one shown now is kept as a version."""
    rt = get_runtime()
    try:
        every = _oldest_first(thread_id)
        start = next((i + 1 for i, m in enumerate(every) if m["id"] == point), 0 if not point else None)
        if start is None:
            notice("info", "That part of the conversation is no longer shown (perhaps changed in another tab).")
            return
        if not branches.flip(rt, thread_id, point, number, _branch_runs(thread_id, every, start)):
            notice("info", "That version is already shown (perhaps switched in another tab).")
    except APIError as exc:
        _explain(exc)
