"""Compare: one prompt to two assistants (or two models / temperatures), each in a new thread, side by side."""

from __future__ import annotations

import time

import streamlit as st

from assistants import export
from assistants.errors import APIError
from assistants.pricing import usage_cost
from components.compare import (
    SIDES,
    TERMINAL_EVENTS,
    delta_text,
    interleave,
    pending_calls,
    side_header,
    side_settings,
    stats,
)
from components.safe_text import MarkdownSanitiser, plain, safe_markdown
from components.thread_view import plain_text
from session import get_runtime

rt = get_runtime()
state = st.session_state

st.title("Compare")
st.caption("Send one prompt to two assistants — or to one assistant with two models or temperatures — and watch both "
           "answers arrive side by side. Each side gets its own new thread, kept in Threads.")

assistants = export.all_assistants(rt)
if not assistants:
    st.info("There is nothing to compare yet: create an assistant first.", icon=":material/smart_toy:")
    if st.button("Go to Assistants", icon=":material/arrow_forward:"):
        st.switch_page("app_pages/assistants.py")
    st.stop()

models = rt.router.available_models()
columns = st.columns(2, border=True)
configs = []
for side, col in zip(SIDES, columns, strict=True):
    with col:
        configs.append(side_settings(side, assistants, models))

prompt = st.text_area("Prompt", key="compare_prompt", height=110, persist_state="session",
                      placeholder="Ask both sides the same thing, e.g. “Explain compound interest in two sentences.”")
state.setdefault("compare_max_tokens", 256)
row = st.container(horizontal=True, vertical_alignment="bottom")
with row:
    st.number_input("Max reply tokens", 16, 4096, step=16, key="compare_max_tokens", persist_state="session", width=180,
                    help="Caps each reply, so a rambling model can't keep the demo waiting.")
    send = st.button("Send to both", type="primary", icon=":material/send:", key="compare_send")
if all(rt.router.aliases.get(c["model"], c["model"]) == "smollm2-135m-instruct" for c in configs):
    st.caption("Both sides use the embedded model, which answers one request at a time: the second reply starts "
               "when the first ends. With two different servers both stream at once.")


def _launch(cfg: dict, text: str, max_tokens: int) -> dict:
    """A new thread holding the prompt and a streaming run on it; the error message if it can't start."""
    out = {**cfg, "thread_id": None, "run_id": None, "sub": None, "error": None, "sent": time.monotonic()}
    try:
        rt.router.resolve(cfg["model"])  # an unknown model fails here, before a thread is made for nothing
        # The Playground files threads under an assistant by metadata.assistant_id; do the same.
        thread = rt.create_thread(messages=[{"role": "user", "content": text}],
                                  metadata={"playground": "compare", "assistant_id": cfg["assistant_id"]})
        out["thread_id"] = thread["id"]
        body = {"assistant_id": cfg["assistant_id"], "temperature": cfg["temperature"], "max_completion_tokens": max_tokens}
        if cfg["model_override"]:
            body["model"] = cfg["model_override"]
        out["sub"] = rt.create_run(thread["id"], stream=True, **body)
        out["run_id"] = out["sub"].run_id
    except APIError as exc:
        out["error"] = exc.message
    return out


def _cost(run: dict) -> float:
    """Estimated USD of a run from the price table (0 for local models)."""
    return usage_cost(rt.router.aliases.get(run["model"], run["model"]), run.get("usage"))


def _stream(sides: list[dict]) -> None:
    """Show both replies as their tokens arrive; record first-token and total times."""
    cols = st.columns(2, border=True)
    text_slots, stat_slots, texts = [], [], [MarkdownSanitiser(), MarkdownSanitiser()]
    for side, col, s in zip(SIDES, cols, sides, strict=True):
        with col:
            side_header(side, s)
            with st.chat_message("assistant"):
                text_slots.append(st.empty())
            stat_slots.append(st.empty())
            if s["error"]:
                text_slots[-1].error(plain(s["error"]), icon=":material/error:")
            else:
                text_slots[-1].markdown(":gray[Waiting for the model…]")
    for i, event, data in interleave([s["sub"] for s in sides]):
        s = sides[i]
        if event == "thread.message.delta":
            if s.get("ttft_s") is None:
                s["ttft_s"] = time.monotonic() - s["sent"]
            text_slots[i].markdown(texts[i].feed(delta_text(data)) + " ▌")
        elif event in TERMINAL_EVENTS:
            s["wall_s"] = time.monotonic() - s["sent"]
            with stat_slots[i].container():
                stats(data.get("usage"), s.get("ttft_s"), s["wall_s"], data["status"], _cost(data))
    for s in sides:
        s.pop("sub", None)


if send:
    text = (prompt or "").strip()
    if not text:
        st.warning("Type a prompt first: nothing was sent.", icon=":material/edit:")
    else:
        sides = [_launch(cfg, text, int(state.get("compare_max_tokens") or 256)) for cfg in configs]
        st.markdown(f"**Prompt:** {plain(text)}")
        _stream(sides)
        state["compare_result"] = {"prompt": text, "sides": sides}
        st.rerun()  # the finished comparison is drawn from the store, with its buttons

last = state.get("compare_result")
if last and not send:
    st.markdown(f"**Prompt:** {plain(last['prompt'])}")
    cols = st.columns(2, border=True)
    for n, (side, col, s) in enumerate(zip(SIDES, cols, last["sides"], strict=True)):
        with col:
            side_header(side, s)
            if s["error"] or not s.get("run_id"):
                st.error(plain(s["error"] or "This side did not start."), icon=":material/error:")
                continue
            try:
                run = rt.get_run(s["thread_id"], s["run_id"])
                replies = rt.list_messages(s["thread_id"], run_id=s["run_id"], order="asc", limit=100)["data"]
            except APIError:
                st.info("This thread was deleted since.", icon=":material/delete:")
                continue
            with st.chat_message("assistant"):
                body = "\n\n".join(plain_text(m) for m in replies if m["role"] == "assistant").strip()
                if body:
                    st.markdown(safe_markdown(body))
                elif run["status"] == "incomplete":
                    st.markdown(":gray[No reply: the model used up Max reply tokens before it wrote any text "
                                "(it was starting a tool call). Raise Max reply tokens and send again.]")
                elif run["status"] not in ("requires_action", "failed"):
                    st.markdown(":gray[The model answered with no text.]")
                if run.get("last_error"):
                    st.error(plain(run["last_error"]["message"]), icon=":material/error:")
                pending_calls(run)
            stats(run.get("usage"), s.get("ttft_s"), s.get("wall_s"), run["status"], _cost(run))
            if st.button("Open in Playground", key=f"compare_open_{n}", icon=":material/play_arrow:"):
                state["assistant_id"] = s["assistant_id"]
                state["thread_id"] = s["thread_id"]
                st.switch_page("app_pages/playground.py")
