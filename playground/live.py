"""Fragments that watch the store for what changes on its own (indexing, runs working elsewhere) and redraw the page."""

from __future__ import annotations

import streamlit as st

from assistants.errors import APIError
from components import thread_view
from playground import LIVE_STATUSES
from session import get_runtime


def watch_indexing(store_ids: list[str]) -> None:
    """While a chosen vector store is still indexing, look every second and redraw the page once it is done."""

    def body() -> None:
        stores = get_runtime().vector_stores
        for store_id in store_ids:
            try:
                if stores.get(store_id)["status"] == "in_progress":
                    return
            except APIError:
                pass
        st.rerun()

    st.fragment(body, run_every=1.0)()


def watch_active(thread_id: str, run_id: str) -> None:
    """A run working elsewhere (another tab, or before a reload): poll it and redraw the page when it stops."""

    def body() -> None:
        rt = get_runtime()
        try:
            run = rt.get_run(thread_id, run_id)
        except APIError:
            st.rerun()
        if run["status"] not in LIVE_STATUSES:
            st.rerun()
        replies = rt.list_messages(thread_id, run_id=run_id, limit=1, order="desc")["data"]
        thread_view.render_active_run(run, writing=bool(replies) and replies[0]["status"] == "in_progress")

    st.fragment(body, run_every=1.0)()
