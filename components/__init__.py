"""Rendering functions for the pages: data in, the user's action out; they never call the runtime."""

from __future__ import annotations

import json

# The Playground page's own st.session_state keys (UI flags, ids and unsaved drafts), set once per
# browser session by app.py. Widget keys of the page are created by the widgets themselves.
PLAYGROUND_DEFAULTS: dict = {
    "playground_drafts": {},        # assistant id -> unsaved config draft, so no edit is lost on switching
    "playground_notices": [],       # (kind, text) banners to show once above the thread
    "playground_unsent": None,      # a message that could not be sent, kept so the user can send it again
    "playground_autorun": None,     # thread id to start a run on at the next render (after a hand-off)
    "playground_history": 30,       # how many of the latest messages the thread pane shows
    "playground_busy_seen": None,   # id of the active run the page last drew (the message box is disabled for it)
}

ACTIVE_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")

# Run status -> (material icon, words for people).
RUN_STATUS = {
    "queued": (":material/schedule:", "Queued"),
    "in_progress": (":material/progress_activity:", "Running"),
    "requires_action": (":material/pending_actions:", "Waiting for function outputs"),
    "cancelling": (":material/hourglass_top:", "Cancelling"),
    "cancelled": (":material/block:", "Cancelled"),
    "failed": (":material/error:", "Failed"),
    "completed": (":material/check_circle:", "Completed"),
    "incomplete": (":material/warning:", "Stopped early"),
    "expired": (":material/timer_off:", "Expired"),
}


def run_ended_at(run: dict) -> int | None:
    """When a run stopped, whichever way it stopped."""
    return run.get("completed_at") or run.get("failed_at") or run.get("cancelled_at")


def fmt_duration(seconds: float | None) -> str:
    """1.6 s, 42 s, 3 min 5 s."""
    if seconds is None:
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def fmt_tokens(n: int | None) -> str:
    """12,345 (or — when unknown)."""
    return "—" if n is None else f"{n:,}"


# Socket errors as the operating system words them, and as people would.
_OS_ERRORS = {
    "[Errno 111] Connection refused": "connection refused: nothing is listening on that port",
    "[Errno 113] No route to host": "no route to that host",
    "[Errno 101] Network is unreachable": "the network is unreachable",
    "[Errno -2] Name or service not known": "no such host name",
    "[Errno -3] Temporary failure in name resolution": "the host name could not be looked up (no network?)",
    "[Errno -5] No address associated with hostname": "no such host name",
}


def plain_error(message: str) -> str:
    """An error message with the operating system's socket jargon put in words."""
    for raw, words in _OS_ERRORS.items():
        message = message.replace(raw, words)
    return message


def pretty_json(raw: str) -> str:
    """JSON text (tool-call arguments) indented for reading; anything else as it is."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return raw or ""
