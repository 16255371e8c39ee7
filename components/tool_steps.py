"""Tool calls as people read them: inline in the thread (one line each, expandable) and in full in the run log."""

from __future__ import annotations

import json

import streamlit as st

from components import pretty_json
from components.safe_text import code_text, plain
from components.thread_view import show_image

RESULT_PREVIEW_CHARS = 600


def tool_arguments(calls: list[dict]) -> dict[str, str]:
    """Tool-call id -> the arguments the model sent, read from the raw responses."""
    found: dict[str, str] = {}
    for call in calls:
        for choice in (call.get("response") or {}).get("choices") or []:
            for tc in (choice.get("message") or {}).get("tool_calls") or []:
                if isinstance(tc, dict) and tc.get("id"):
                    found[tc["id"]] = (tc.get("function") or {}).get("arguments", "")
    return found


def _query(raw: str) -> str:
    """The query of a file_search call's arguments ({"query": "..."}), or the arguments as they came."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return raw or ""
    return value["query"] if isinstance(value, dict) and isinstance(value.get("query"), str) else pretty_json(raw)


def tool_call(call: dict, args: dict[str, str], files: dict, heading: bool = True) -> None:
    """One tool call in full: a function's arguments and output, the code and what it printed or drew, the search."""
    kind = call["type"]
    if kind == "function":
        fn = call["function"]
        if heading:
            st.markdown(f":material/function: **{code_text(fn['name'])}** :gray[function]")
        else:
            st.caption("Arguments")
        st.code(pretty_json(fn.get("arguments", "")), language="json")
        if fn.get("output") is None:
            st.caption("Waiting for its output.")
        else:
            st.caption("Output")
            st.code(fn["output"], language=None, wrap_lines=True)
    elif kind == "code_interpreter":
        ci = call["code_interpreter"]
        if heading:
            st.markdown(":material/terminal: **Code Interpreter**")
        st.code(ci.get("input") or "", language="python", wrap_lines=True)
        for out in ci.get("outputs") or []:
            if out.get("type") == "logs":
                st.code(out.get("logs") or "", language=None, wrap_lines=True)
            elif out.get("type") == "image":
                show_image(out["image"]["file_id"], files)
    elif kind == "file_search":
        fs = call["file_search"]
        query = _query(args.get(call["id"], ""))
        # Written by the model: shown as text (code), never as markdown.
        if heading or query:
            st.markdown((":material/search: **File Search** · " if heading else "") + (f"query: {code_text(query)}" if query else ""))
        results = fs.get("results") or []
        if not results:
            st.caption("No passages retrieved.")
        for r in results:
            st.markdown(f":material/description: **{plain(r.get('file_name') or r.get('file_id') or '')}** "
                        f":gray[score {float(r.get('score') or 0):.3f}]")
            text = " ".join(c.get("text", "") for c in r.get("content") or [] if isinstance(c, dict)).strip()
            if text:
                # The chunk as it was retrieved, as plain text: a file's "# Heading" must not become a headline here.
                st.code(text[:RESULT_PREVIEW_CHARS] + ("…" if len(text) > RESULT_PREVIEW_CHARS else ""),
                        language=None, wrap_lines=True)




def tool_label(call: dict, failed: bool = False) -> tuple[str, str]:
    """(icon, one line) naming what a tool call did, as OpenAI's Playground said it: "Ran code", "Searched files"."""
    kind = call["type"]
    if kind == "code_interpreter":
        icon, words = ":material/terminal:", "Ran code"
    elif kind == "file_search":
        found = len(call["file_search"].get("results") or [])
        icon, words = ":material/search:", f"Searched files · {found} passage{'s' if found != 1 else ''}"
    else:
        fn = call.get("function") or {}
        icon, words = ":material/function:", f"Called {code_text(fn.get('name') or 'a function')}"
        if fn.get("output") is None:
            words += " · no output given"
    return icon, words + (" · failed" if failed else "")


def render_tool_steps(steps: list[dict], args: dict[str, str], files: dict) -> None:
    """A run's tool steps inside the conversation: each call one collapsed line, opened for its input and output."""
    with st.chat_message("assistant"):
        for step in steps:
            for call in step["step_details"].get("tool_calls") or []:
                icon, label = tool_label(call, failed=step["status"] == "failed")
                with st.expander(label, icon=icon):
                    tool_call(call, args, files, heading=False)
