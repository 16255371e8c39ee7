"""Fragments that watch the store for what changes on its own (indexing, runs working elsewhere) and redraw the page."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import streamlit as st

from assistants.errors import APIError
from components import thread_view
from playground import LIVE_STATUSES
from session import get_runtime


REDRAWS_MIN_S = 0.1  # the reply on screen is redrawn at most this often...
REDRAW_CHARS_PER_S = 100_000  # ...and less often as it grows: about this many characters sent to the browser a second


def _text_parts(data: dict | None) -> list[dict] | None:
    parts = ((data or {}).get("delta") or {}).get("content") or []
    return parts if parts and all(p.get("type") == "text" for p in parts) else None


def coalesce(events: Iterable[tuple[str, dict | None]],
             clock: Callable[[], float] = time.monotonic) -> Iterator[tuple[str, dict | None]]:
    """The run's events with consecutive text deltas merged, so a reply is redrawn a few times a second.

    st.write_stream redraws the whole reply for every piece it gets: per token, a 50,000-character reply sends
    the browser hundreds of megabytes, which it falls minutes behind on (the page froze at ~19k characters and
    said "Running" long after the run ended). Merged, what is sent stays near REDRAW_CHARS_PER_S. The first piece
    goes out at once: holding it back for the first interval delayed the first token on screen by up to 0.1 s.
    """
    pending: dict | None = None
    written, last = 0, float("-inf")
    for event, data in events:
        parts = _text_parts(data) if event == "thread.message.delta" else None
        if parts is not None:
            value = "".join(p["text"].get("value") or "" for p in parts)
            written += len(value)
            if pending is not None and pending["id"] != data["id"]:
                yield "thread.message.delta", pending
                pending = None
            if pending is None:
                pending = {**data, "delta": {**data["delta"], "content": [
                    {"index": parts[0].get("index", 0), "type": "text", "text": {"value": value}}]}}
            else:
                pending["delta"]["content"][0]["text"]["value"] += value
            if clock() - last >= max(REDRAWS_MIN_S, written / REDRAW_CHARS_PER_S):
                yield "thread.message.delta", pending
                pending, last = None, clock()
            continue
        if pending is not None:  # anything else (a ping, a new step, the end) shows what was held back first
            yield "thread.message.delta", pending
            pending, last = None, clock()
        yield event, data
    if pending is not None:
        yield "thread.message.delta", pending


def then_draw(events: Iterable[tuple[str, dict | None]],
              draw: Callable[[], None]) -> Iterator[tuple[str, dict | None]]:
    """The events, calling `draw()` once the second piece of text is on its way (the first one has had the browser to
    itself: sent together, it waits for the browser to take in all of `draw`'s elements before it is painted), or at
    the second ping (a run quiet for a second: a slow model, a tool working), or at the end."""
    drawn, pings, texts = False, 0, 0
    for event, data in events:
        pings += event == "ping"
        texts += event == "thread.message.delta" and _text_parts(data) is not None
        if not drawn and (pings == 2 or texts == 2):
            drawn = True
            draw()
        yield event, data
    if not drawn:
        draw()


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
    """A run working elsewhere (the API server, another tab, or before a reload): its status now, then streamed live.

    The page's own run draws its status at once; the fragment's reruns (from half a second on) stream the run
    from the durable event log, token by token, whichever process executes it, and redraw the page when it stops.
    """
    rt = get_runtime()
    # Replies of this run the page has already drawn whole are not streamed again; the one being written is.
    drawn = {m["id"] for m in rt.list_messages(thread_id, run_id=run_id, limit=100)["data"]
             if m["status"] != "in_progress"}
    runs = {"n": 0}  # this call's fragment: 0 = inside the page's run, then its own reruns

    def body() -> None:
        runs["n"] += 1
        if runs["n"] > 1:
            _stream_from_log(rt, run_id, drawn)
            st.rerun()
        try:
            run = rt.get_run(thread_id, run_id)
        except APIError:
            st.rerun()
        if run["status"] not in LIVE_STATUSES:
            st.rerun()
        replies = rt.list_messages(thread_id, run_id=run_id, limit=1, order="desc")["data"]
        thread_view.render_active_run(run, writing=bool(replies) and replies[0]["status"] == "in_progress")

    st.fragment(body, run_every=0.5)()


def _stream_from_log(rt, run_id: str, drawn: set[str]) -> None:
    """Draw the run as it happens from its event log (from its start, skipping the replies already drawn)."""
    sub = rt.engine.hub.subscribe(run_id, after=0)

    def events():
        for event, data in sub.events(timeout=0.5):
            if not (event.startswith("thread.message.") and data and data.get("id") in drawn):
                yield event, data

    try:
        thread_view.stream_run(events())
    finally:
        sub.close()
