"""The list of an assistant's threads beside the chat: search, open, New thread, rename and delete."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

K = "playground_threads_"  # prefix of the list's widget keys


def matches(threads: list[dict], query: str) -> list[dict]:
    """The threads whose title contains every word of the query (any case)."""
    words = query.lower().split()
    return [t for t in threads if all(w in t["title"].lower() for w in words)]


def render_thread_list(threads: list[dict], current: str | None, *, on_open: Callable, on_new: Callable,
                       on_rename: Callable, on_delete: Callable, busy: bool = False, height: int = 520) -> None:
    """Newest first; the open thread is marked and has Rename and Delete. `busy`: a run works, stay on its thread."""
    st.button("New thread", icon=":material/add_comment:", key=K + "new", on_click=on_new, width="stretch",
              disabled=busy or current is None, help="Start a new, empty thread; this one stays in the list.")
    query = st.text_input("Search threads", key=K + "search", placeholder="Search threads", type="search",
                          label_visibility="collapsed", icon=":material/search:")
    shown = matches(threads, query or "")
    with st.container(height=height, border=False, key=K + "box", gap="small"):
        if current is None:
            st.caption(":material/edit_square: New thread")
        if not threads:
            st.caption("Your conversations with this assistant appear here.")
        elif not shown:
            st.caption(f"No thread matches “{query}”.")
        for thread in shown:
            if thread["id"] != current:
                st.button(thread["title"], key=K + "open_" + thread["id"], type="tertiary", width="stretch",
                          on_click=on_open, args=(thread["id"],), disabled=busy)
                continue
            with st.container(horizontal=True, vertical_alignment="center", gap=None, key=K + "current"):
                st.markdown(f"**{plain(thread['title'])}**", width="stretch")
                with st.popover("", icon=":material/more_horiz:", type="tertiary", help="Rename or delete"):
                    field = K + "title_" + thread["id"]
                    st.session_state.setdefault(field, thread["title"])
                    st.text_input("Title", key=field, max_chars=200)
                    st.button("Rename", key=K + "rename", icon=":material/edit:", on_click=on_rename,
                              args=(thread["id"], field))
                    st.divider()
                    st.caption("Deleting removes its messages and runs. This cannot be undone.")
                    st.button("Delete thread", key=K + "delete", icon=":material/delete_forever:", type="secondary",
                              on_click=on_delete, args=(thread["id"],), disabled=busy)


def plain(text: str) -> str:
    """A title as literal text in Markdown (no emphasis, links or LaTeX from what someone typed)."""
    return "".join("\\" + ch if ch in "\\`*_{}[]()#+-.!|$<>~" else ch for ch in text)
