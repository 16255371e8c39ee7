"""The Playground page's logic: reading the store (data), changing it (actions), and watching it (live).

Nothing here keeps the runtime or the session state at import time: these modules outlive one data dir
(the tests run the page over many), so every function asks `session.get_runtime()` and `st.session_state`.
"""

from __future__ import annotations

MESSAGES_STEP = 30  # messages the thread shows at first, and how many more "Show earlier messages" adds
LIVE_STATUSES = ("queued", "in_progress", "cancelling")  # a run that moves on by itself
