"""The Playground: configure an assistant, chat with it on a thread, and watch its runs as they happen."""

from __future__ import annotations

import streamlit as st

from components import ACTIVE_STATUSES, get_code_view, message_actions, run_log, sidebar, thread_list, thread_view, tokens, tool_steps
from components.safe_text import code_text
from playground import LIVE_STATUSES, MESSAGES_STEP, actions, data, versions
from playground.live import coalesce, then_draw, watch_active, watch_indexing
from session import get_runtime

THREAD_HEIGHT = 520
THREAD_OFFSET = 380  # what sits above and below the message box in a 900 px window: 900 - 380 = THREAD_HEIGHT
LOG_HEIGHT = 720
RUNS_PER_LOG_PAGE = 5
IDLE_CHECK_S = 3  # how often an idle page looks for runs and messages started elsewhere

rt = get_runtime()  # this page runs afresh on every rerun: the runtime of the current data dir
ss = st.session_state  # this page's keys (PLAYGROUND_DEFAULTS) are set by app.py


def _log_panel(thread_id: str | None, live: bool, mark: tuple, fresh: bool = False) -> None:
    """The run log; redraws itself every 1.5 s while a run works, and looks for changes made elsewhere every 3 s.

    `fresh`: this page run goes on to stream a reply, so it ends late: whatever the previous page run drew and
    this one does not draw again stays on screen, greyed, until then, such as the open details of the run before.
    An empty element first moves every entry one place down, so the old open entry is replaced by an element,
    which has no children to leave behind. (Clearing an st.empty and refilling it does not work: Streamlit
    sends only the last of two deltas for one place.)
    """

    def body() -> None:
        runs = data.runs_of(thread_id)
        if not live and thread_id and data.thread_mark(thread_id, runs) != mark:
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
            if fresh:
                shown_slot.empty()
            if pages > 1:
                page = min(pages, st.pagination(pages, key="playground_log_page", width="stretch"))
            shown = runs[(page - 1) * RUNS_PER_LOG_PAGE: page * RUNS_PER_LOG_PAGE]
            costs = data.costs(runs)  # all runs: a Code Interpreter session is charged to the run that opened it
            with shown_slot:  # the newest run open (the one being watched); the older ones closed until clicked
                run_log.render_run_log(shown, load=data.run_details, cost=lambda r: costs.get(r["id"], 0.0),
                                       open_run=runs[0]["id"] if runs else None)

    st.fragment(body, run_every=1.5 if live else (IDLE_CHECK_S if thread_id else None))()


@st.dialog("Get code", width="large")
def _get_code(assistant: dict, thread_id: str | None, runs: list[dict]) -> None:
    """The Python that makes this assistant, thread and last run again through the API server."""
    messages = data.messages(thread_id, 1000)[0] if thread_id else []
    get_code_view.render_get_code(assistant, messages, runs[0] if runs else None, thread_id)


def _watch_elsewhere(thread_id: str, mark: tuple) -> None:
    """With the log hidden: still redraw the page when another tab or the API changes this thread."""

    def body() -> None:
        if data.thread_mark(thread_id, data.runs_of(thread_id)) != mark:
            st.rerun()

    st.fragment(body, run_every=IDLE_CHECK_S)()


def _draw_sidebar(assistants: list[dict], current: dict | None) -> None:
    """The assistant picker and, for the open assistant, every setting with Save."""
    with st.sidebar:
        sidebar.render_picker(assistants, current, on_pick=actions.on_pick, on_create=actions.on_create,
                              on_clone=actions.on_clone, on_delete=actions.on_delete)
        if current is None:
            return
        choices = data.sidebar_choices()
        config = sidebar.render_config(current, **choices, on_save=actions.on_save,
                                       on_refresh=actions.on_refresh_models, on_upload_files=actions.on_upload_files,
                                       on_upload_store=actions.on_upload_store, failed_files=data.failed_files)
        indexing = [s["id"] for s in choices["stores"] or [] if s.get("status") == "in_progress"
                    and s["id"] in (ss.get(sidebar.K + "vector_store_ids") or [])]
        if indexing:
            watch_indexing(indexing)
        actions.keep_draft(current, config)


def _draw_inputs(current: dict, thread_id: str | None, active: dict | None) -> tuple[bool, bool]:
    """The message box, the unsent-message banner and the toolbar; returns (Send again clicked, Run clicked).

    The message box is disabled only for a run this page has already shown: Streamlit drops what a disabled
    widget submits, so disabling it in the very run that discovers a new active run would lose the text.
    """
    with typing:
        accept = "multiple" if rt.files is not None else False
        if active is not None and active["status"] == "requires_action":
            hint = "Submit the function outputs above first (or cancel the run)"
        elif active is not None:
            hint = "Wait for the run to finish, or cancel it"
        else:
            hint = f"Message {sidebar.assistant_label(current)}…"
        st.chat_input(hint, key="playground_prompt", accept_file=accept, submit_mode="disable",
                      on_submit=actions.on_prompt, file_type=list(actions.UPLOAD_TYPES) if accept else None,
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
        st.segmented_control("When you send", ["run", "add"], default="run", key="playground_send_mode",
                             format_func={"run": "Ask", "add": "Add"}.get, required=True,
                             label_visibility="collapsed", persist_state="session",
                             help="Ask: send the message and get the assistant's answer. Add: put the message in "
                                  "the thread without an answer yet; press Run when you want one.")
        run_clicked = st.button("Run", icon=":material/play_arrow:", key="playground_run",
                                disabled=active is not None or not thread_id,
                                help="Run the assistant on the thread as it is")
        with st.popover("Run options", icon=":material/tune:"):
            st.number_input("Max reply tokens (0 = the model's default)", min_value=0, max_value=32_000,
                            step=64, key="playground_max_tokens", persist_state="session",
                            help="A token is about ¾ of a word. Leave it at 0 to let the model decide; the embedded "
                                 "model stops at 512 per reply. Any other value is at least 16. Applies to each run "
                                 "you start.")
            st.text_area("Extra instructions for this run", key="playground_run_instructions", height=90,
                         persist_state="session", placeholder="e.g. Provide a detailed analysis.",
                         help="Added to the assistant's instructions for runs started here.")
        st.toggle("Logs", key="playground_logs", persist_state="session",
                  help="Show the run log beside the thread: every run, its steps, tool calls and raw model calls")
        if active is not None and active["status"] != "cancelling":
            st.button("Cancel run", icon=":material/stop_circle:", key="playground_cancel", on_click=actions.on_cancel,
                      args=(thread_id, active["id"]))
    return resend, run_clicked


def _runs_and_active(thread_id: str | None) -> tuple[list[dict], dict | None]:
    """The thread's runs, newest first, and the one still working on it (if any)."""
    runs = data.runs_of(thread_id)
    return runs, (runs[0] if runs and runs[0]["status"] in ACTIVE_STATUSES else None)


def _draw_head(current: dict, thread_id: str | None, runs: list[dict], threads: list[dict], busy: bool) -> None:
    """The thread's title with its Rename/Delete menu, Get code, and the tokens and cost so far."""
    with head:
        with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute",
                          gap="small"):
            title = next((t["title"] for t in threads if t["id"] == thread_id), None) if thread_id else None
            st.markdown(f"**{thread_list.plain(title)}**" if title else ":gray[New thread: it is created when you "
                        "send the first message.]", width="stretch",
                        help=f"Thread id: `{thread_id}`" if thread_id else None)
            if title:
                thread_list.render_thread_menu(thread_id, title, on_rename=actions.on_rename_thread,
                                               on_delete=actions.on_delete_thread, busy=busy)
            if st.button("Get code", icon=":material/code:", key="playground_get_code", type="tertiary",
                         help="Python (openai SDK) that makes this assistant, thread and run again on the API server"):
                _get_code(current, thread_id, runs)
        tokens.render_tokens(**data.usage_summary(runs))


# -- the page --------------------------------------------------------------------------------------------
assistants, current = actions.open_current()
if current is not None:
    ss["playground_pick"] = current["id"]
    actions.sync_draft(current)  # before anything is drawn: a "changed elsewhere" notice goes into this redraw

if current is None:
    _draw_sidebar(assistants, current)
    st.title("Assistants Playground")
    st.markdown("Create an assistant, give it instructions and tools, and chat with it — all on this machine. "
                "The built-in model works without any key or network; add OpenAI or a local server under Settings.")
    st.button("Create your first assistant", type="primary", icon=":material/add:", on_click=actions.on_create,
              key="playground_first")
    for kind, text in ss.get("playground_notices", []):
        getattr(st, kind)(text)
    ss["playground_notices"] = []
    st.stop()

# Threads | conversation | run log (with Logs on) side by side while the main area is wide enough; stacked when
# narrow (see app.py's CSS), the conversation first (the CSS below).
#
# Every part has its place declared here, and is drawn into it when its turn comes, so nothing moves. When this
# redraw streams a reply the browser gets the conversation first and the rest (the sidebar's dozens of widgets, the
# thread list, the toolbar, the run log) only once the reply's first words are on screen (draw_rest below).
show_log = bool(ss.get("playground_logs"))
list_col, thread_col, *log_cols = st.container(key="playground_main").columns([1.1, 3, 2] if show_log else [1, 3],
                                                                           gap="medium")
# Thread titles read left to right like a list, not centred like buttons; on a phone the list goes under the thread.
st.html("<style>@container (max-width:519px){.st-key-playground_main [data-testid='stColumn']:has(.st-key-playground_"
        "threads_box){order:2}} .st-key-playground_threads_box button{justify-content:flex-start;text-align:left;"
        "padding:0.25rem 0.75rem} .st-key-playground_threads_box button *{text-align:left;justify-content:flex-start}"
        "</style>")
with thread_col:
    head = st.container(key="playground_head")
    banners = st.container()
    unsent = st.container()
    box_slot = st.empty()  # the message box, sized once the banners above it are known
    bar = st.container(horizontal=True, vertical_alignment="center", gap="small", key="playground_bar")
    typing = st.container(key="playground_typing")

thread_id = ss.get("thread_id")
subscription = None
sent = ss.pop("playground_sent", None)  # what actions.on_prompt did with a message typed before this redraw
runs, active = _runs_and_active(thread_id)
if sent:
    # Stored and its run started before this redraw (on_prompt, Regenerate, Edit and resend): the reply streams
    # below, and the message box and toolbar are drawn once it has begun.
    subscription = sent
else:
    # Inputs first (their places are already declared), so a message sent by them is in the thread when it is drawn.
    resend, run_clicked = _draw_inputs(current, thread_id, active)
    if resend and active is not None:
        actions.notice("info", "The thread is still busy: send it again when the run has finished.")
    elif resend:
        subscription = actions.send(ss["playground_unsent"], [], current, "run")
    elif run_clicked and active is None and thread_id:
        subscription = actions.start_run(thread_id, current)
    if subscription is None and (sent is not None or run_clicked or resend):
        st.rerun()  # the message was stored (or refused): redraw so the toolbar and thread agree with the store
    if subscription is not None:
        thread_id = ss.get("thread_id")
        runs, active = _runs_and_active(thread_id)
    elif active is not None and active["id"] != ss.get("playground_busy_seen"):
        ss["playground_busy_seen"] = active["id"]
        st.rerun()  # a run started elsewhere: redraw once with the message box disabled
if active is not None:
    ss["playground_busy_seen"] = active["id"]

with banners:
    down = data.unreachable(current["model"])
    if down is not None:
        st.warning(f"This assistant's model {code_text(current['model'])} is not served by any reachable backend"
                   + (f" (unreachable: {', '.join(code_text(b) for b in down)})" if down else "")
                   + ". Pick another model in the sidebar and save, or fix the backend under Settings.",
                   icon=":material/cloud_off:")
    shown_banners = len(ss.get("playground_notices", [])) + (down is not None) \
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

live = active is not None and active["status"] in LIVE_STATUSES
if not log_cols and not live and subscription is None and thread_id:
    _watch_elsewhere(thread_id, data.thread_mark(thread_id, runs))


def draw_rest() -> None:
    """Everything but the conversation, each part into its place (see above)."""
    streaming = subscription is not None
    threads = data.threads_of(current["id"])
    if sent:
        _draw_inputs(current, thread_id, active)  # nothing in them was clicked: this redraw follows a sent message
    _draw_head(current, thread_id, runs, threads, busy=active is not None or streaming)
    with list_col:
        thread_list.render_thread_list(threads, thread_id, on_open=actions.on_open_thread,
                                       on_new=actions.on_clear_thread, busy=active is not None or streaming)
    if log_cols:
        with log_cols[0]:
            _log_panel(thread_id, live=live or streaming, mark=data.thread_mark(thread_id, runs), fresh=streaming)
    _draw_sidebar(assistants, current)

with box:
    if not thread_id:
        st.caption("Say hello to start a conversation. Attach files or images with the clip in the message box."
                   if rt.files is not None else "Say hello to start a conversation.")
    else:
        messages, older = data.messages(thread_id, ss.get("playground_history", MESSAGES_STEP))
        if older:
            st.button("Show earlier messages", icon=":material/expand_less:", key="playground_more",
                      on_click=actions.on_more_messages, type="tertiary", width="stretch")
        names = {a["id"]: sidebar.assistant_label(a) for a in assistants}
        targets = {a_id: name for a_id, name in names.items() if a_id != current["id"]}
        files = data.files_of(messages)
        busy = active is not None or subscription is not None
        # Regenerate, Edit and resend, ‹ n / N › per message; the runs of archived versions leave the conversation.
        controls = versions.Controls(thread_id, messages, runs, older=older)
        shown_runs = controls.shown_runs
        used = data.thread_steps(shown_runs, messages[0]["created_at"] if older and messages else None)
        message_actions.setup()
        for kind, item in thread_view.timeline(messages, shown_runs, older_hidden=older, steps=used["steps"]):
            if kind == "message" and item.get("status") == "in_progress" and (
                    subscription is not None or (live and item.get("run_id") == active["id"])):
                # The reply being written is drawn by the stream below (a run this page started) or by watch_active
                # (a run working elsewhere), with its words so far: here it would be an empty "writing…" bubble,
                # and the stored reply would later land beside the streamed one instead of in its place.
                continue
            if kind == "run":
                thread_view.render_run_outcome(item)
                continue
            if kind == "tools":
                tool_steps.render_tool_steps(item, used["args"], used["files"])
                continue
            author = names.get(item.get("assistant_id"), "Assistant") if item["role"] == "assistant" else "You"
            picked = thread_view.render_message(
                item, author=author, files=files, handoff=targets or None, key=f"playground_msg_{item['id']}",
                names=names, on_open=actions.open_origin, busy=busy, **controls.of(item))
            if picked:
                actions.handoff(item, picked, names, current)
                st.rerun()
        if subscription is None and active is not None and active["status"] == "requires_action":
            calls = active["required_action"]["submit_tool_outputs"]["tool_calls"]
            outputs = thread_view.render_function_calls(calls, key=f"playground_outputs_{active['id']}")
            if outputs is not None:
                subscription = actions.submit_outputs(thread_id, active["id"], outputs)
        if subscription is not None:
            # The rest of the page is drawn once the reply's first words are on screen (or the run waits or ends).
            thread_view.stream_run(then_draw(coalesce(subscription.events(timeout=0.5)), draw_rest))
            st.rerun()  # draw the stored result: citations, images, tokens, the log
        elif active is not None and active["status"] in LIVE_STATUSES:
            watch_active(thread_id, active["id"])
if subscription is None:
    draw_rest()
