"""Assistants Playground: the router. Page config, session defaults, and the pages."""

from __future__ import annotations

import streamlit as st

from components import PLAYGROUND_DEFAULTS
from session import init_state

# 340 px: the assistant config sidebar fits an assistant id and the New/Clone/Delete row on one line.
st.set_page_config(page_title="Assistants Playground", page_icon=":material/smart_toy:", layout="wide",
                   initial_sidebar_state=340)
# Streamlit's default page padding (8 rem on top under the navigation bar) would push the Playground's
# message box below the fold on a laptop screen; this is the only CSS the app adds.
st.html("<style>[data-testid='stMainBlockContainer']{padding:4.75rem 3rem 2rem 3rem}</style>")
init_state()
for key, value in PLAYGROUND_DEFAULTS.items():
    # Copy mutable defaults: each browser session gets its own dict/list.
    st.session_state.setdefault(key, type(value)(value) if isinstance(value, (dict, list)) else value)

pages = [
    st.Page("pages/playground.py", title="Playground", icon=":material/forum:", default=True),
    st.Page("pages/assistants.py", title="Assistants", icon=":material/smart_toy:"),
    st.Page("pages/threads.py", title="Threads", icon=":material/chat:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages, position="top").run()
