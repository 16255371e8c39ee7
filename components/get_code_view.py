"""The Get code dialog's body: the script for the Assistants API, and the Responses API versions beside it."""

from __future__ import annotations

import streamlit as st

from playground import get_code

K = "playground_get_code_"  # prefix of the dialog's widget keys
PROMPT, SPELLED = "This assistant as a prompt", "Everything spelled out"


def render_get_code(assistant: dict, messages: list[dict], run: dict | None, thread_id: str | None) -> None:
    """Tabs "Assistants API" | "Responses API"; `messages` oldest first, `run` the thread's latest."""
    old, new = st.tabs(["Assistants API", "Responses API"], key=K + "tabs")
    with old:
        st.caption("Python for the `openai` package: it creates this assistant, a thread with this conversation and "
                   "runs it again on this machine's API server (`python -m assistants.server`). Change `base_url` if "
                   "the server runs elsewhere. Copy it with the button in the corner.")
        st.code(get_code.generate(assistant, messages, run), language="python", height=420)
    with new:
        style = st.radio("Style", [PROMPT, SPELLED], horizontal=True, key=K + "style", label_visibility="collapsed")
        if style == PROMPT:
            st.caption("`client.responses.create` with this assistant as a reusable prompt of this server (`prompt` "
                       "is its id)" + (" and this thread as the conversation, so the reply lands here too." if thread_id
                                       else ".") + " Works against this server only.")
            code = get_code.generate_responses_prompt(assistant, messages, thread_id)
        else:
            st.caption("`client.responses.create` with the model, instructions, tools and this conversation written "
                       "out: it runs against this server or any other Responses API server.")
            code = get_code.generate_responses(assistant, messages, run)
        st.code(code, language="python", height=420)
