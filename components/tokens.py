"""Token counts and estimated cost, for the last run and the whole thread, shown at the top of the thread."""

from __future__ import annotations

import streamlit as st

from assistants.pricing import format_usd
from components import fmt_tokens

COST_HELP = ("Estimated from OpenAI's list prices per million tokens for OpenAI models, plus $0.03 per "
             "Code Interpreter session they open, as OpenAI charged. Local models (like the embedded one) cost $0, "
             "Code Interpreter included. File Search storage ($0.10 per GB a day past the first free GB) is billed "
             "per vector store, not per run, so it is not included here.")


def _line(title: str, usage: dict | None, cost: float | None, pending: str = "no runs yet") -> str:
    if not usage or not usage.get("total_tokens"):  # "0 tokens · 0 prompt · 0 completion · $0" says nothing
        return f":gray[{title}] &nbsp; :gray[{pending}]"
    return (f":gray[{title}] &nbsp; **{fmt_tokens(usage.get('total_tokens'))}** tokens :gray[·] "
            f"{fmt_tokens(usage.get('prompt_tokens'))} prompt :gray[·] "
            f"{fmt_tokens(usage.get('completion_tokens'))} completion :gray[·] **{format_usd(cost or 0.0)}**")


def render_tokens(last: dict | None, last_cost: float | None, thread: dict | None, thread_cost: float | None,
                  *, working: bool = False) -> None:
    """The last run's usage and cost, and the thread's totals, one line each; `working`: a run has no usage yet."""
    pending = "counted when the run ends" if working else "no runs yet"
    st.markdown(_line("Last run", last, last_cost, pending) + "  \n" + _line("Thread", thread, thread_cost, pending),
                help=COST_HELP)


def add_usage(total: dict, usage: dict | None) -> dict:
    """`total` plus one run's usage (prompt, completion, total tokens)."""
    if usage:
        for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
            total[k] = total.get(k, 0) + int(usage.get(k) or 0)
    return total
