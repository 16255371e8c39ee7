"""Threads: every conversation with its assistant, size and tokens; open, export or delete it."""

from __future__ import annotations

import streamlit as st

from assistants import export
from assistants.errors import APIError
from assistants.responses.conversations import conversation_id
from components.safe_text import code_text, plain
from components.tables import confirm_delete, threads_frame, threads_table
from session import get_runtime

LIMIT = 1000  # newest threads listed; older ones stay in the store and in the API

rt = get_runtime()
state = st.session_state
state.setdefault("threads_table_n", 0)   # bumped to clear the table's row selection
state.setdefault("threads_confirm", None)  # ids waiting for "Yes, delete"

summaries = export.thread_summaries(rt.store, LIMIT)
total = export.thread_count(rt.store) if len(summaries) == LIMIT else len(summaries)

st.title("Threads")
st.caption("Every conversation kept in this Playground, newest first: threads, and the conversations made through "
           "the Responses API (labelled *Responses conversation*).")

flash = state.pop("threads_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

m1, m2, m3, m4 = st.columns(4)
m1.metric("Threads", f"{total:,}", border=True)
m2.metric("Messages", f"{sum(s['messages'] for s in summaries):,}", border=True)
m3.metric("Runs", f"{sum(s['runs'] for s in summaries):,}", border=True)
m4.metric("Tokens", f"{sum(s['total_tokens'] for s in summaries):,}", border=True)

query = st.text_input("Search threads", key="threads_search", type="search", live=True,
                      placeholder="Search by first message, assistant or thread id",
                      label_visibility="collapsed", persist_state="session")
df = threads_frame(summaries, query or "")
# Between the search box and the table, so the table's hover toolbar never covers the box.
shown = f"Showing the newest {len(summaries):,} of {total:,} threads. " if total > len(summaries) else ""
if summaries:
    st.caption(shown + (f"{len(df):,} match. " if query else "") + "Select rows to open, export or delete them.")
selected: list[str] = []
if not summaries:
    st.info("No threads yet. Start a conversation in the Playground and it will be listed here.",
            icon=":material/forum:")
elif df.empty:
    st.info(f"No thread matches {code_text(query)}.", icon=":material/search_off:")
else:
    selected = threads_table(df, key=f"threads_table_{state['threads_table_n']}")

by_id = {s["id"]: s for s in summaries}
if selected:
    one = by_id.get(selected[0]) if len(selected) == 1 else None
    with st.container(border=True):
        if one:
            preview = " ".join((one.get("first_message") or "(no messages yet)").split())
            count = one["messages"]
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.markdown(f"**{plain(preview[:80] + ('…' if len(preview) > 80 else ''))}** · {count} message"
                            f"{'s' if count != 1 else ''} · {one['total_tokens']:,} tokens", width="content")
                st.code(one["id"], language=None, width="content")
                if one.get("conversation"):  # the same thread, as the Responses API names it
                    st.code(conversation_id(one["id"]), language=None, width="content")
        else:
            st.markdown(f"**{len(selected)} threads** selected")
        bar = st.container(horizontal=True, gap="small")
        if bar.button("Open in Playground", type="primary", icon=":material/play_arrow:", disabled=one is None,
                      key="threads_open", help=None if one else "Select a single thread to open it."):
            state["thread_id"] = one["id"]
            if one.get("assistant_id") and one.get("assistant_exists"):
                state["assistant_id"] = one["assistant_id"]
            st.switch_page("app_pages/playground.py")
        if one:
            thread_id = one["id"]

            def _names() -> dict[str, str]:
                return {a["id"]: a.get("name") or "Assistant" for a in export.all_assistants(rt)}

            # Built on click (in Streamlit's download thread), so a big thread costs nothing until asked for.
            bar.download_button("Export JSON", data=lambda: export.thread_json(export.load_thread(rt, thread_id)),
                                file_name=f"{thread_id}.json", mime="application/json", icon=":material/data_object:",
                                on_click="ignore", key="threads_export_json")
            bar.download_button("Export Markdown",
                                data=lambda: export.thread_markdown(export.load_thread(rt, thread_id), _names()),
                                file_name=f"{thread_id}.md", mime="text/markdown", icon=":material/description:",
                                on_click="ignore", key="threads_export_md")
        else:
            bar.button("Export JSON", icon=":material/data_object:", disabled=True, key="threads_export_json_off",
                       help="Select a single thread to export it.")
            bar.button("Export Markdown", icon=":material/description:", disabled=True, key="threads_export_md_off",
                       help="Select a single thread to export it.")
        if bar.button("Delete", icon=":material/delete:", key="threads_delete"):
            state["threads_confirm"] = list(selected)

pending = [i for i in (state["threads_confirm"] or []) if i in by_id]
if pending:
    if len(pending) > 1:
        what = f"{len(pending)} threads with all their messages and runs"
    else:
        preview = " ".join((by_id[pending[0]].get("first_message") or "").split())
        what = f"the thread {code_text(preview[:60] + ('…' if len(preview) > 60 else ''))}" if preview else "this empty thread"
        what += " with all its messages and runs"
    answer = confirm_delete(what, key="threads_confirm")
    if answer is not None:
        state["threads_confirm"] = None
        if answer:
            failed = []
            for thread_id in pending:
                try:
                    rt.delete_thread(thread_id)
                except APIError as exc:
                    failed.append(plain(exc.message))
                if state.get("thread_id") == thread_id:
                    state["thread_id"] = None
            state["threads_flash"] = f"Deleted {what}." + (" " + " ".join(failed) if failed else "")
            state["threads_table_n"] += 1
        st.rerun()
