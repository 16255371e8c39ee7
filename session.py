"""The Playground's process-wide runtime and its per-browser-session state defaults."""

from __future__ import annotations

import streamlit as st

from assistants.config import load_settings
from assistants.runtime import Runtime
from assistants.store import DatabaseUnavailable
from components import login

# st.session_state keys shared by every page (ids and UI flags only; everything else lives in the store).
DEFAULTS = {
    "assistant_id": None,   # the assistant open in the Playground
    "thread_id": None,      # the thread open in the Playground
}


@st.cache_resource(show_spinner="Starting the runtime…")
def _runtime_for(data_dir: str) -> Runtime:
    try:
        return Runtime(load_settings())
    except DatabaseUnavailable as exc:  # not cached: the next rerun tries again once the database is back
        st.error(str(exc))
        st.stop()


def get_runtime() -> Runtime:
    """The one Runtime of this process for the configured data dir (never mutated per user)."""
    settings = load_settings()  # once per call: it reads .env (and a settings.json not yet imported into the database)
    if not login.passed():
        # Defence in depth: app.py gates every page, and this gate stands in front of everything a page can read
        # too, should a page ever run without app.py (as files in a pages/ folder would after a restart).
        if not login.allowed(settings.playground_password):
            st.stop()
    return _runtime_for(str(settings.data_dir))


def init_state() -> None:
    """Set every shared session key to its default once per browser session."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
