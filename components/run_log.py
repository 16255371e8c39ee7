"""The run log: every run of the thread with its status, model, time and usage; steps, tool calls and raw model I/O."""

from __future__ import annotations

import json
from collections.abc import Callable

import streamlit as st

from assistants.pricing import format_usd
from components import RUN_STATUS, fmt_duration, fmt_tokens, plain_error, run_ended_at
from components.safe_text import plain
from components.thread_view import fmt_clock
from components.tool_steps import tool_arguments, tool_call

RAW_PREVIEW_CHARS = 20_000  # a long thread's request is large; the page stays responsive


def _seconds(run: dict) -> str:
    end, start = run_ended_at(run), run.get("started_at")
    if end and start:  # whole seconds: the store keeps timestamps at that precision
        return "<1 s" if end - start < 1 else (f"{end - start} s" if end - start < 60 else fmt_duration(end - start))
    return ""


def run_label(run: dict) -> str:
    """One line per run: status · model · duration · tokens."""
    _icon, words = RUN_STATUS.get(run["status"], ("", run["status"]))
    tokens = (run.get("usage") or {}).get("total_tokens")
    parts = [words, plain(run.get("model") or "?")] + [t for t in (_seconds(run),) if t]
    if tokens is not None:
        parts.append(f"{fmt_tokens(tokens)} tok")
    return " · ".join(parts)


def _raw(obj) -> str:
    text = json.dumps(obj, indent=2, ensure_ascii=False)
    if len(text) > RAW_PREVIEW_CHARS:
        text = text[:RAW_PREVIEW_CHARS] + f"\n… ({len(text) - RAW_PREVIEW_CHARS:,} more characters)"
    return text


def _details(run: dict, details: dict, cost: float) -> None:
    usage = run.get("usage") or {}
    calls = details.get("calls") or []
    model_ms = sum(c.get("duration_ms") or 0 for c in calls)
    st.caption(f"`{run['id']}` · started {fmt_clock(run.get('started_at') or run['created_at'])}"
               f" · temperature {run.get('temperature')} · top_p {run.get('top_p')}")
    if usage:
        st.markdown(f"**{fmt_tokens(usage.get('total_tokens'))}** tokens "
                    f":gray[({fmt_tokens(usage.get('prompt_tokens'))} prompt · "
                    f"{fmt_tokens(usage.get('completion_tokens'))} completion)] · **{format_usd(cost)}**"
                    + (f" · model time {fmt_duration(model_ms / 1000)}" if model_ms else ""))
    if run.get("last_error"):
        st.error(plain(plain_error(run["last_error"].get("message") or "The run failed.")), icon=":material/error:")
    if run["status"] == "incomplete":
        st.warning(f"Stopped early: {plain((run.get('incomplete_details') or {}).get('reason', 'limit reached'))}.",
                   icon=":material/warning:")
    if run["status"] == "requires_action":
        st.info("Waiting for function outputs: answer them in the thread.", icon=":material/pending_actions:")
    steps = details.get("steps") or []
    args = tool_arguments(calls)
    for n, step in enumerate(steps, 1):
        sd = step["step_details"]
        state = "" if step["status"] == "completed" else f" :gray[({step['status'].replace('_', ' ')})]"
        if sd["type"] == "message_creation":
            st.markdown(f"**{n}.** :material/chat: Wrote a reply{state}")
        else:
            st.markdown(f"**{n}.** :material/build: Called tools{state}")
            for call in sd.get("tool_calls") or []:
                with st.container(border=True):
                    tool_call(call, args, details.get("files") or {})
        if step.get("last_error"):
            st.caption(f":material/error: {plain(step['last_error'].get('message') or '')}")
    if not steps and run["status"] not in ("queued", "in_progress"):
        st.caption("No steps: the run ended before the model answered.")
    if calls:
        st.caption(":material/data_object: Raw model calls: the request sent and the response received")
    for i, call in enumerate(calls, 1):
        took = fmt_duration((call.get("duration_ms") or 0) / 1000)
        label = f"Model call {i} · {took}" + (" · failed" if call.get("error") else "")
        box = st.expander(label, icon=":material/data_object:", key=f"playground_call_{call['id']}", on_change="rerun")
        if box.open:  # the raw request holds the whole conversation: only build it when asked for
            with box:
                st.caption("Request sent to the model")
                st.code(_raw(call.get("request")), language="json", height=260, wrap_lines=True)
                if call.get("error"):
                    st.caption("Error")
                    st.code(call["error"], language=None, wrap_lines=True)
                else:
                    st.caption("Response received")
                    st.code(_raw(call.get("response")), language="json", height=260, wrap_lines=True)


def render_run_log(runs: list[dict], *, load: Callable[[dict], dict], cost: Callable[[dict], float],
                   open_run: str | None = None) -> None:
    """Runs newest first as expanders, `open_run` opened; a run's details are loaded only while its expander is open."""
    if not runs:
        st.caption("Runs of this thread appear here: status, model, time, tokens, each step and tool call, "
                   "and the raw request and response of every model call.")
        return
    for run in runs:
        icon, _words = RUN_STATUS.get(run["status"], (":material/help:", ""))
        box = st.expander(run_label(run), icon=icon, expanded=run["id"] == open_run,
                          key=f"playground_log_{run['id']}", on_change="rerun")
        if box.open:  # details (steps, model calls) are read only for the runs someone opened
            with box:
                _details(run, load(run), cost(run))
