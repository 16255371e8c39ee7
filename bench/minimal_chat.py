"""The simplest Streamlit chat over the embedded model: the baseline of `ui_first_token_ratio` (bench_browser.py).

`st.chat_input` + `st.write_stream` over the same model worker the Playground uses, the same instructions and
reply cap, nothing else: `streamlit run bench/minimal_chat.py`.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistants.config import EMBEDDED_MODEL_ID
from assistants.providers.embedded import EmbeddedProvider

INSTRUCTIONS = "You are a friendly assistant. Answer in one short sentence."  # bench_browser's assistant's
MAX_TOKENS = 32


@st.cache_resource
def provider() -> EmbeddedProvider:
    """One model worker for the process, as the Playground has."""
    return EmbeddedProvider()


def reply(prompt: str):
    """The model's text as it is generated (the worker calls back from its reader thread)."""
    pieces: queue.Queue = queue.Queue()
    request = {"model": EMBEDDED_MODEL_ID, "max_tokens": MAX_TOKENS, "temperature": 0.0,
               "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": prompt}]}

    def work() -> None:
        try:
            provider().chat(request, on_text=pieces.put, cancel=threading.Event())
        finally:
            pieces.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (piece := pieces.get()) is not None:
        yield piece


history = st.session_state.setdefault("history", [])
for role, text in history:
    st.chat_message(role).write(text)
if prompt := st.chat_input("Message"):
    st.chat_message("user").write(prompt)
    with st.chat_message("assistant"):
        answer = st.write_stream(reply(prompt))
    history += [("user", prompt), ("assistant", answer)]
