"""The list of an assistant's threads beside the chat: search, open, New thread, rename and delete."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from components.safe_text import plain  # a widget label is markdown too: an image in a title would load

K = "playground_threads_"  # prefix of the list's widget keys


def matches(threads: list[dict], query: str) -> list[dict]:
    """The threads whose title contains every word of the query (any case)."""
    words = query.lower().split()
    return [t for t in threads if all(w in t["title"].lower() for w in words)]


def render_thread_menu(thread_id: str, title: str, *, on_rename: Callable, on_delete: Callable, busy: bool) -> None:
    """The open thread's Rename and Delete, in a small menu."""
    with st.popover("", icon=":material/more_horiz:", help="Rename or delete this thread", key=K + "edit",
                    type="tertiary"):
        field = K + "title_" + thread_id
        st.session_state.setdefault(field, title)
        st.text_input("Title", key=field, max_chars=200)
        st.button("Rename", key=K + "rename", icon=":material/edit:", on_click=on_rename, args=(thread_id, field))
        st.divider()
        st.caption("Deleting removes its messages and runs. This cannot be undone.")
        st.button("Delete thread", key=K + "delete", icon=":material/delete_forever:", type="secondary",
                  on_click=on_delete, args=(thread_id,), disabled=busy)


def render_thread_list(threads: list[dict], current: str | None, *, on_open: Callable, on_new: Callable,
                       busy: bool = False, height: int = 520) -> None:
    """Latest first, the open thread outlined, with search and New thread. `busy`: a run works, stay on its thread."""
    st.button("New thread", icon=":material/add_comment:", key=K + "new", on_click=on_new, width="stretch",
              disabled=busy or current is None, help="Start a new, empty thread; this one stays in the list.")
    query = st.text_input("Search threads", key=K + "search", placeholder="Search threads", type="search",
                          label_visibility="collapsed", icon=":material/search:")
    shown = matches(threads, query or "")
    with st.container(height=height, border=False, key=K + "box", gap=None):
        if current is None and threads:  # where you are: a thread that starts with your next message
            st.button("Untitled, not started", key=K + "current", type="secondary", width="stretch",
                      icon=":material/edit_square:")
        if not threads:
            st.caption("Your conversations with this assistant appear here.")
        elif not shown:
            st.caption(f"No thread matches “{plain(query)}”.")
        for thread in shown:
            mine = thread["id"] == current  # the open one: outlined, the others plain
            st.button(plain(thread["title"]), key=K + ("current" if mine else "open_" + thread["id"]), width="stretch",
                      type="secondary" if mine else "tertiary", on_click=None if mine else on_open,
                      args=None if mine else (thread["id"],), disabled=busy and not mine)

