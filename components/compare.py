"""The Compare page's pieces: each side's settings, its streamed reply and its numbers."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import streamlit as st

from assistants.pricing import format_usd
from components.safe_text import code_text, plain

TERMINAL_EVENTS = ("thread.run.completed", "thread.run.failed", "thread.run.incomplete", "thread.run.cancelled",
                   "thread.run.expired", "thread.run.requires_action")
SIDES = ("A", "B")


def interleave(subs: list, idle_s: float = 0.005) -> Iterator[tuple[int, str, dict | None]]:
    """(side, event, data) from several run subscriptions as they arrive, until every one is done."""
    live = [i for i, s in enumerate(subs) if s is not None]
    try:
        while live:
            got = False
            for i in list(live):
                # Drain what is ready without blocking, so a busy side never waits on a quiet one.
                while True:
                    try:
                        event, data = subs[i].queue.get_nowait()
                    except queue.Empty:
                        break
                    got = True
                    yield i, event, data
                    if event == "done":
                        live.remove(i)
                        break
            if not got:
                time.sleep(idle_s)
    finally:
        for s in subs:
            if s is not None:
                s.close()


def delta_text(data: dict) -> str:
    """The text carried by a thread.message.delta event."""
    return "".join(part.get("text", {}).get("value", "") for part in data["delta"].get("content", [])
                   if part.get("type") == "text")


def side_settings(side: str, assistants: list[dict], models: list[str]) -> dict:
    """One side's assistant, model and temperature; returns {assistant_id, model, temperature}."""
    state = st.session_state
    by_id = {a["id"]: a for a in assistants}
    key = f"compare_{side}_assistant"
    if state.get(key) not in by_id:  # deleted since last time, or first visit
        default = assistants[min(SIDES.index(side), len(assistants) - 1)]
        state[key] = default["id"]
        state[f"compare_{side}_temperature"] = float(default.get("temperature", 1.0))
        state[f"compare_{side}_model"] = ""
    if state.get(f"compare_{side}_model") not in ("", *models):
        state[f"compare_{side}_model"] = ""

    def _follow_assistant() -> None:
        chosen = by_id[state[key]]
        state[f"compare_{side}_temperature"] = float(chosen.get("temperature", 1.0))
        state[f"compare_{side}_model"] = ""

    st.markdown(f"##### {side}")
    st.selectbox("Assistant", list(by_id), key=key, on_change=_follow_assistant, persist_state="session",
                 format_func=lambda i: f"{by_id[i].get('name') or 'Untitled'} · {by_id[i]['model']}")
    assistant = by_id[state[key]]
    st.selectbox("Model", ["", *models], key=f"compare_{side}_model", persist_state="session",
                 format_func=lambda m: m or f"{assistant['model']} (the assistant's model)")
    st.slider("Temperature", 0.0, 2.0, step=0.1, key=f"compare_{side}_temperature", persist_state="session")
    return {"assistant_id": assistant["id"], "name": assistant.get("name") or "Untitled",
            "model": state[f"compare_{side}_model"] or assistant["model"],
            "model_override": state[f"compare_{side}_model"] or None,
            "temperature": state[f"compare_{side}_temperature"]}


def side_header(side: str, cfg: dict) -> None:
    """Which assistant, model and temperature answered on this side."""
    st.markdown(f"**{side} · {plain(cfg['name'])}**")
    st.caption(f"{code_text(cfg['model'])} · temperature {cfg['temperature']:.1f}")


def stats(usage: dict | None, ttft_s: float | None, wall_s: float | None, status: str, cost: float | None = None) -> None:
    """Token counts and timings of one side: three metrics and a line of detail."""
    usage = usage or {}
    prompt, completion = usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0
    c1, c2, c3 = st.columns(3)
    c1.metric("Tokens", f"{usage['total_tokens']:,}" if usage else "—")
    c2.metric("First token", f"{ttft_s:.2f} s" if ttft_s is not None else "—",
              help="From pressing Send to the first word of the reply.")
    c3.metric("Total time", f"{wall_s:.2f} s" if wall_s is not None else "—")
    detail = [f"prompt {prompt:,} + completion {completion:,} tokens"] if usage else []
    if wall_s and ttft_s is not None and wall_s > ttft_s and completion:
        detail.append(f"{completion / (wall_s - ttft_s):.0f} tokens/s")
    if usage and cost is not None:
        detail.append(f"estimated cost {format_usd(cost)}")
    if detail:
        st.caption(" · ".join(detail))
    if status and status != "completed":
        label = {"incomplete": "Stopped at the token limit", "requires_action": "Waiting for a function result",
                 "failed": "Failed", "cancelled": "Cancelled", "expired": "Expired"}.get(status, status)
        st.badge(label, color="orange" if status in ("incomplete", "requires_action") else "red")


def pending_calls(run: dict) -> None:
    """What a run that stopped for function results asked for."""
    calls = ((run.get("required_action") or {}).get("submit_tool_outputs") or {}).get("tool_calls") or []
    for call in calls:
        st.info(f"Called {code_text(call['function']['name'])} with {code_text(call['function']['arguments'][:200])}. "
                "Open it in the Playground to send the function's result.", icon=":material/function:")
