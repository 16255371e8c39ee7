"""The conversation pane: messages, the reply streaming in, pending function calls and the hand-off menu."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

import streamlit as st

from components import RUN_STATUS, message_actions, plain_error, pretty_json
from components.safe_text import MarkdownSanitiser, code_text, plain, safe_markdown, shown_url

__all__ = ["safe_markdown"]  # pages import it from here
IMAGE_NAMES = (".png", ".jpg", ".jpeg", ".gif", ".webp")

# What the run's status label says while it works.
_WORKING = {
    "queued": "Queued…",
    "in_progress": "Thinking…",
    "requires_action": "Waiting for your function outputs",
    "cancelling": "Cancelling…",
}


def with_citations(block: dict) -> tuple[str, list[dict]]:
    """A text block's value with its annotations replaced by [1], [2]…, and those annotations in order."""
    text = block["text"]["value"]
    notes = sorted((a for a in block["text"].get("annotations") or [] if a.get("type") in ("file_citation", "file_path")),
                   key=lambda a: a.get("start_index", 0))
    pieces, cursor, found = [], 0, []
    for ann in notes:
        start, end = ann.get("start_index"), ann.get("end_index")
        if not isinstance(start, int) or not isinstance(end, int) or start < cursor or end > len(text):
            continue
        found.append(ann)
        pieces.append(text[cursor:start])
        pieces.append(f" [{len(found)}]")
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces), found


def plain_text(msg: dict) -> str:
    """A message's words only, for passing on (hand-off, Compare): no citation markers, no image placeholders."""
    parts = []
    for block in msg.get("content") or []:
        if block["type"] != "text":
            continue
        text, notes = block["text"]["value"], block["text"].get("annotations") or []
        for ann in sorted(notes, key=lambda a: a.get("start_index", 0), reverse=True):
            start, end = ann.get("start_index"), ann.get("end_index")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text):
                text = text[:start].rstrip(" ") + text[end:]
        parts.append(text.strip())
    return "\n\n".join(p for p in parts if p)


AFTER_KEY = "playground_after_message"  # run metadata: the last message when the Playground started the run
HANDOFF_FROM = "handoff_from_assistant"  # message metadata of a hand-off: who wrote it, and in which thread
HANDOFF_THREAD = "handoff_from_thread"
ENDINGS = ("failed", "cancelled", "expired", "incomplete")


def _tool_groups(steps: dict[str, list[dict]], index: dict[str, int]) -> tuple[dict[str, list], dict[str, list]]:
    """A run's finished tool steps grouped by the reply they led to: (message id -> steps, run id -> steps after the
    last reply). A step still in progress (a function call waiting for its output) is shown by its own form."""
    before, trailing = {}, {}
    for run_id, run_steps in steps.items():
        pending: list[dict] = []
        for step in run_steps:
            sd = step["step_details"]
            if sd["type"] == "message_creation":
                if pending and sd["message_creation"]["message_id"] in index:
                    before[sd["message_creation"]["message_id"]], pending = pending, []
            elif step["status"] != "in_progress" and sd.get("tool_calls"):
                pending.append(step)
        if pending:
            trailing[run_id] = pending
    return before, trailing


def timeline(messages: list[dict], runs: list[dict], *, older_hidden: bool,
             steps: dict[str, list[dict]] | None = None) -> list[tuple[str, object]]:
    """Messages in order, with each run's tool steps before the reply they led to and each run that ended badly
    placed where it happened: ("message", msg) | ("tools", [step, ...]) | ("run", run)."""
    index = {m["id"]: i for i, m in enumerate(messages)}
    before, trailing = _tool_groups(steps or {}, index)
    after: dict[int, list[tuple[str, object]]] = {}
    for run in sorted(runs, key=lambda r: r["created_at"]):
        ended = run["status"] in ENDINGS and not (
            run["status"] == "incomplete" and any(m.get("run_id") == run["id"] for m in messages))  # it says so itself
        if not ended and run["id"] not in trailing:
            continue
        anchor = (run.get("metadata") or {}).get(AFTER_KEY)
        if anchor in index:
            i = index[anchor]
        elif anchor or (older_hidden and run["created_at"] < (messages[0]["created_at"] if messages else 0)):
            continue  # it happened before the visible part of the thread
        else:  # a run started elsewhere (API, another page): place it by time, whole seconds
            i = max((j for j, m in enumerate(messages) if m["created_at"] <= run["created_at"]), default=-1)
        while i + 1 < len(messages) and messages[i + 1].get("run_id") == run["id"]:
            i += 1  # after the run's own (partial) replies
        if run["id"] in trailing:
            after.setdefault(i, []).append(("tools", trailing[run["id"]]))
        if ended:
            after.setdefault(i, []).append(("run", run))
    items: list[tuple[str, object]] = list(after.get(-1, []))
    for i, msg in enumerate(messages):
        if msg["id"] in before:
            items.append(("tools", before[msg["id"]]))
        items.append(("message", msg))
        items.extend(after.get(i, []))
    return items


def fmt_clock(ts: int | None) -> str:
    """The local time of day (with the date when it is not today)."""
    if not ts:
        return ""
    moment = datetime.fromtimestamp(ts)
    return moment.strftime("%H:%M" if moment.date() == datetime.now().date() else "%d %b %H:%M")


def show_image(file_id: str, files: dict) -> None:
    """A stored image (a figure the code made, an uploaded picture), or a note that it is gone."""
    data = (files.get(file_id) or {}).get("data")
    if data is not None:
        st.image(data, width="content")
    else:
        st.caption(f":material/image: Image {file_id} is not available.")


def _render_text(block: dict, files: dict, key: str, role: str = "assistant") -> None:
    text, notes = with_citations(block)
    if text.strip():
        # A person's message is shown as written (their "- milk" is not a bullet); a reply is markdown, made safe.
        st.markdown(plain(text) if role == "user" else safe_markdown(text))
    for n, ann in enumerate(notes, 1):
        if ann["type"] == "file_citation":
            file_id = ann["file_citation"].get("file_id", "")
            name = (files.get(file_id) or {}).get("name") or file_id
            quote = ann["file_citation"].get("quote")
            st.caption(plain(f"[{n}] {name}" + (f" — “{quote}”" if quote else "")))
        else:
            file_id = ann["file_path"].get("file_id", "")
            info = files.get(file_id) or {}
            name = info.get("name") or ann.get("text", "").rsplit("/", 1)[-1] or file_id
            if info.get("data") is not None:
                if name.lower().endswith(IMAGE_NAMES):
                    st.image(info["data"], width="content")  # our own file: drawn from its stored bytes
                st.download_button(plain(f"[{n}] {name}"), info["data"], file_name=name, icon=":material/download:",
                                   key=f"{key}_dl{n}", type="tertiary", on_click="ignore")
            else:
                st.caption(f":material/attach_file: {plain(f'[{n}] {name}')} (file not available)")


def render_message(msg: dict, *, author: str, files: dict, handoff: dict[str, str] | None, key: str,
                   names: dict[str, str] | None = None, on_open: Callable | None = None,
                   versions: list[str] | None = None, regenerate: tuple | None = None, edit: tuple | None = None,
                   switches: list[tuple] | None = None, busy: bool = False) -> str | None:
    """Draw one message; returns the assistant id picked in its hand-off menu, if any.

    `versions`: the text of earlier versions kept by older Playgrounds, `regenerate`: (callback, args) when this reply
    may be asked again, `edit`: (callback, args, messages after it) for a message of yours, `switches`: ‹ n / N ›
    over the versions that start with this message (after=False) or follow it (after=True), each (on_flip, args,
    current, total, after); `busy`: a run works, so they are shown disabled.
    """
    picked = None
    versions = versions or []
    shown = min(st.session_state.get(f"{key}_ver", len(versions)), len(versions))
    origin = (msg.get("metadata") or {}).get(HANDOFF_FROM)
    with st.chat_message(msg["role"]):
        if origin and on_open is not None:
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.caption(f":material/forward: Handed off from **{plain((names or {}).get(origin, 'another assistant'))}**",
                           width="content")
                if origin in (names or {}):
                    st.button("Open its thread", key=f"{key}_origin", type="tertiary", on_click=on_open,
                              args=(origin, (msg.get("metadata") or {}).get(HANDOFF_THREAD)))
        if shown < len(versions):  # an earlier version: its text, kept in the metadata of the run that replaced it
            st.markdown(safe_markdown(versions[shown]))
            st.caption(":material/history: An earlier version: no longer in the thread, the model does not see it.")
        for i, block in enumerate(msg.get("content") or [] if shown == len(versions) else []):
            if block["type"] == "text":
                _render_text(block, files, f"{key}_{i}", msg["role"])
            elif block["type"] == "image_file":
                show_image(block["image_file"]["file_id"], files)
            elif block["type"] == "image_url":
                # Loading it would tell its server that this thread is open: a link the user may click instead.
                st.markdown(f":material/image: Image not loaded: {shown_url(block['image_url'].get('url') or '')}")
        for att in msg.get("attachments") or []:
            name = (files.get(att["file_id"]) or {}).get("name") or att["file_id"]
            st.caption(f":material/attach_file: {plain(name)}")
        if msg.get("status") == "in_progress":
            st.caption(":material/edit: writing…")
        elif msg.get("status") == "incomplete":
            said = any(b["type"] != "text" or b["text"]["value"].strip() for b in msg.get("content") or [])
            st.caption(":material/content_cut: This reply was cut short." if said else
                       ":material/content_cut: The model reached its token limit before it wrote a reply (it was "
                       "still writing a tool call). Raise Max reply tokens in Run options, or ask for something shorter.")
        if msg["role"] == "assistant":
            with st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center", gap=None):
                st.caption(f"{plain(author)} · {fmt_clock(msg.get('created_at'))}")
                with st.container(horizontal=True, vertical_alignment="center", gap="small", width="content"):
                    text = versions[shown] if shown < len(versions) else plain_text(msg)
                    if text:
                        message_actions.copy_button(text)
                    if regenerate:
                        message_actions.regenerate_button(f"{key}_regen", *regenerate, busy=busy)
                    if versions:
                        message_actions.version_pager(len(versions), f"{key}_ver")
                    for n, switch in enumerate(s for s in switches or [] if not s[-1]):
                        message_actions.version_switch(f"{key}_switch{n}", switch, busy)
                    if handoff:
                        picked = st.menu_button("Hand off", list(handoff), format_func=lambda a: f"Send to {handoff[a]}",
                                                key=f"{key}_handoff", type="tertiary", icon=":material/forward:",
                                                help="Send this reply as a user message into another assistant's thread")
        elif edit:
            with st.container(horizontal=True, horizontal_alignment="right", vertical_alignment="center", gap=None,
                              key=f"{key}_editrow"):
                for n, switch in enumerate(s for s in switches or [] if not s[-1]):
                    message_actions.version_switch(f"{key}_switch{n}", switch, busy)
                on_send, args, later = edit
                message_actions.edit_button(plain_text(msg), f"{key}_edit", on_send, args, later, busy)
        for switch in (s for s in switches or [] if s[-1]):
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.caption(":material/history: What followed this message is kept as versions:", width="content")
                message_actions.version_switch(f"{key}_after", switch, busy)
    return picked


def render_run_outcome(run: dict) -> None:
    """How a run that did not simply complete ended, in plain words, inside the conversation."""
    status = run["status"]
    with st.chat_message("assistant"):
        if status == "failed":
            err = run.get("last_error") or {}
            st.error(f"**The run failed.** {plain(plain_error(err.get('message') or 'No reason was recorded.'))}",
                     icon=":material/error:")
        elif status == "cancelled":
            st.caption(":material/block: Run cancelled.")
        elif status == "expired":
            st.warning("**The run expired**: function outputs were not submitted in time. Run the thread again.",
                       icon=":material/timer_off:")
        elif status == "incomplete":
            reason = (run.get("incomplete_details") or {}).get("reason", "")
            why = "the reply reached its token limit" if "completion" in reason or reason == "max_tokens" \
                else "the conversation no longer fits the prompt-token limit"
            st.warning(f"**The reply stopped early**: {why}.", icon=":material/warning:")


def render_function_calls(calls: list[dict], key: str) -> dict[str, str] | None:
    """Each pending function call with an output box; the outputs (call id -> text) once submitted."""
    with st.chat_message("assistant"):
        many = len(calls) > 1
        st.markdown(f"**The assistant wants to call {'these functions' if many else 'a function'}.** "
                    "Run it yourself, paste what it returned, then submit to continue the run.")
        names = [call["function"]["name"] for call in calls]
        with st.form(key, border=False):
            for n, call in enumerate(calls, 1):
                fn = call["function"]
                args = pretty_json(fn["arguments"] or "{}")
                # The same function called twice (Paris, then Rome): number the calls so each output has its place.
                which = f" (call {n} of {len(calls)})" if names.count(fn["name"]) > 1 else ""
                st.markdown(f":material/function: **{code_text(fn['name'])}**{which}")
                st.code(args, language="json", wrap_lines=True)
                st.text_area(f"Output of {plain(fn['name'])}{which}", key=f"playground_out_{call['id']}", height=90,
                             placeholder='What the function returned, e.g. {"temperature": 22}')
            submitted = st.form_submit_button("Submit outputs", type="primary", icon=":material/send:",
                                              key=f"{key}_submit")
    if not submitted:
        return None
    return {call["id"]: st.session_state.get(f"playground_out_{call['id']}") or "" for call in calls}


def render_active_run(run: dict, *, writing: bool = False) -> None:
    """A run working somewhere else (another tab, or before a reload): its live status."""
    elapsed = max(0, int(time.time()) - (run.get("started_at") or run["created_at"]))
    label = "Writing…" if writing and run["status"] == "in_progress" else _WORKING.get(run["status"], "Working…")
    with st.chat_message("assistant"):
        st.status(f"{label} {elapsed} s", state="running")


def stream_run(events: Iterable[tuple[str, dict | None]]) -> dict | None:
    """Draw a run as it happens (status, then the reply token by token); returns the last run object seen.

    The status box is made only when there is something to say in it: a tool at work, or a second with no text
    (a ping). `st.status` pauses 50 ms when it is made, so a reply that starts at once streams without that wait.
    """
    seen: dict = {"run": None, "text": False, "label": "Queued…"}
    started = time.monotonic()
    with st.chat_message("assistant"):
        slot = st.empty()  # the status box's place, above the reply
        reply = st.empty()
        reply.markdown("▍")
        sanitiser = MarkdownSanitiser()
        box: list = []

        def status():
            if not box:
                with slot.container():
                    box.append(st.status(seen["label"], state="running"))
            return box[0]

        def pieces() -> Iterator[str]:
            for event, data in events:
                if event == "ping":
                    # A status update is also Streamlit's chance to notice a click (Cancel) meanwhile.
                    status().update(label=f"{seen['label']} {time.monotonic() - started:.0f} s")
                elif event.startswith("thread.run.") and not event.startswith("thread.run.step") and data:
                    seen["run"] = data
                    seen["label"] = _WORKING.get(data["status"], seen["label"])
                    if box:
                        box[0].update(label=seen["label"])
                elif event == "thread.run.step.created" and data and data.get("type") == "tool_calls":
                    seen["label"] = "Using tools…"
                    status().update(label=seen["label"])
                elif event == "thread.run.step.delta" and data:
                    for call in data["delta"]["step_details"].get("tool_calls") or []:
                        status().write(f":material/build: {call.get('type', 'tool').replace('_', ' ')} ran")
                elif event == "thread.message.created" and seen["text"]:
                    yield "\n\n"
                elif event == "thread.message.delta" and data:
                    for part in data["delta"].get("content") or []:
                        if part.get("type") == "text" and part["text"].get("value"):
                            if not seen["text"]:
                                seen["label"] = "Writing…"
                                if box:
                                    box[0].update(label=seen["label"])
                            seen["text"] = True
                            yield part["text"]["value"]

        # Not st.write_stream: it appends pieces as they come, and a piece can complete an image or a link that the
        # sanitiser must see whole. Each update draws the whole reply so far, made safe (what write_stream sends too).
        for piece in pieces():
            reply.markdown(sanitiser.feed(piece) + "▍")
        if seen["text"]:
            reply.markdown(sanitiser.feed(""))
        else:
            reply.empty()
        run = seen["run"] or {}
        _icon, words = RUN_STATUS.get(run.get("status", ""), ("", "Finished"))
        if box or run.get("status") != "completed":  # a plain quick reply needs no box; anything else says how it ended
            status().update(label=f"{words} · {time.monotonic() - started:.1f} s",
                            state="error" if run.get("status") == "failed" else "complete")
    return seen["run"]
