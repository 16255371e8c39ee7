"""The Assistants and Threads tables: rows in, the selected ids out."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

TOOL_LABELS = {"code_interpreter": "Code Interpreter", "file_search": "File Search"}


def tools_label(tools: list[dict]) -> str:
    """'Code Interpreter, File Search, 2 functions (a, b)' for a tools list."""
    parts = [TOOL_LABELS[t["type"]] for t in tools if t["type"] in TOOL_LABELS]
    functions = [t["function"]["name"] for t in tools if t["type"] == "function"]
    if functions:
        shown = ", ".join(functions[:3]) + (", …" if len(functions) > 3 else "")
        parts.append(f"{len(functions)} function{'s' if len(functions) > 1 else ''} ({shown})")
    return ", ".join(parts) or "—"


def _dt(ts: int | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts else None


def _matches(df: pd.DataFrame, query: str, columns: list[str]) -> pd.Series:
    """Rows where every word of `query` appears in one of `columns` (case-insensitive)."""
    haystack = df[columns].astype(str).agg(" ".join, axis=1).str.lower()
    mask = pd.Series(True, index=df.index)
    for word in query.lower().split():
        mask &= haystack.str.contains(word, regex=False)
    return mask


def assistants_frame(assistants: list[dict], query: str = "") -> pd.DataFrame:
    """One row per assistant (filtered by `query`), the id kept as the last column."""
    df = pd.DataFrame({
        "Name": [a.get("name") or "Untitled" for a in assistants],
        "Model": [a.get("model") for a in assistants],
        "Tools": [tools_label(a.get("tools") or []) for a in assistants],
        "Temperature": [a.get("temperature") for a in assistants],
        "Created": [_dt(a.get("created_at")) for a in assistants],
        "Instructions": [(a.get("instructions") or "").strip().replace("\n", " ")[:200] for a in assistants],
        "ID": [a["id"] for a in assistants],
    })
    if query.strip() and not df.empty:
        df = df[_matches(df, query, ["Name", "Model", "Tools", "Instructions", "ID"])]
    return df.reset_index(drop=True)


RESPONSES_KIND = "Responses conversation"  # the Threads page's label for a thread used through the Responses API


def threads_frame(summaries: list[dict], query: str = "") -> pd.DataFrame:
    """One row per thread summary (filtered by `query`), the id kept as the last column."""
    df = pd.DataFrame({
        "Conversation": [_preview(s.get("first_message")) for s in summaries],
        "Type": [RESPONSES_KIND if s.get("conversation") else "Thread" for s in summaries],
        "Assistant": [_assistant(s) for s in summaries],
        "Messages": [s["messages"] for s in summaries],
        "Tokens": [s["total_tokens"] for s in summaries],
        "Last activity": [_dt(s["last_activity"]) for s in summaries],
        "Created": [_dt(s["created_at"]) for s in summaries],
        "ID": [s["id"] for s in summaries],
        "assistant_id": [s.get("assistant_id") for s in summaries],
    })
    if query.strip() and not df.empty:
        df = df[_matches(df, query, ["Conversation", "Type", "Assistant", "ID"])]
    return df.reset_index(drop=True)


def _preview(text: str | None) -> str:
    if not text:
        return "(no messages yet)"
    text = " ".join(text.split())
    return text if len(text) <= 90 else text[:89] + "…"


def _assistant(summary: dict) -> str:
    if not summary.get("assistant_id"):
        return "—"  # no run yet, so no assistant has answered in it
    if not summary.get("assistant_exists"):
        return "(deleted assistant)"
    return summary.get("assistant_name") or "Untitled"


def selectable_table(df: pd.DataFrame, *, key: str, column_config: dict, hidden: tuple[str, ...] = ()) -> list[int]:
    """Render `df` with multi-row selection; returns the selected row positions."""
    event = st.dataframe(
        df, key=key, on_select="rerun", selection_mode="multi-row", hide_index=True, width="stretch",
        column_order=[c for c in df.columns if c not in hidden], column_config=column_config,
        height=min(35 * (max(len(df), 1) + 1) + 2, 460),  # header and rows exactly: no sliver of a blank row under them
    )
    rows = event.selection.rows if event is not None else []
    return [r for r in rows if r < len(df)]


# Column widths add up to what a 1024 px window has (the ids, too long to fit, are searchable and shown with a copy
# button under the table when a row is selected), so no table scrolls sideways on a laptop.
def assistants_table(df: pd.DataFrame, key: str) -> list[str]:
    """The assistants table; returns the ids of the selected rows."""
    config = {
        "Name": st.column_config.TextColumn(width=170),
        "Model": st.column_config.TextColumn(width=180),
        "Tools": st.column_config.TextColumn(width=200),
        "Temperature": st.column_config.NumberColumn("Temp.", format="%.1f", width=60),
        "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", width=130),
        "Instructions": st.column_config.TextColumn(width="large"),
    }
    return [df["ID"].iloc[r] for r in selectable_table(df, key=key, column_config=config, hidden=("ID",))]


def threads_table(df: pd.DataFrame, key: str) -> list[str]:
    """The threads table; returns the ids of the selected rows."""
    config = {
        "Conversation": st.column_config.TextColumn(width=340),
        "Type": st.column_config.TextColumn(width=170, help="Responses conversation: made or continued through "
                                            "/v1/responses or /v1/conversations (its id works as conv_… too)"),
        "Assistant": st.column_config.TextColumn(width=170),
        "Messages": st.column_config.NumberColumn(width=85),
        "Tokens": st.column_config.NumberColumn(format="localized", width=80),
        "Last activity": st.column_config.DatetimeColumn(format="distance", width=130),
        "Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm", width=130),
    }
    rows = selectable_table(df, key=key, column_config=config, hidden=("assistant_id", "ID"))
    return [df["ID"].iloc[r] for r in rows]


def confirm_delete(what: str, *, key: str, note: str = "") -> bool | None:
    """An inline 'are you sure' box: True = delete, False = cancel, None = not answered yet."""
    with st.container(border=True):
        st.warning(f"Delete {what}? This cannot be undone." + (f" {note}" if note else ""), icon=":material/warning:")
        row = st.container(horizontal=True, gap="small")
        if row.button("Yes, delete", type="primary", key=f"{key}_yes", icon=":material/delete:"):
            return True
        if row.button("Cancel", key=f"{key}_no"):
            return False
    return None
