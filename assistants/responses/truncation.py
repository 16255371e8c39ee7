"""`truncation`: "disabled" refuses an input that does not fit the model's context window; "auto" lets the engine
drop the oldest items to fit (what it does for every run), refusing only what cannot fit even then.

The window is known for the embedded model and local GGUF models (their provider's `context_window`); for a remote
backend it is not, and that backend's own error fails the response instead.
"""

from __future__ import annotations

from typing import Any

from assistants.errors import BadRequest
from assistants.messages import message_text
from assistants.runs.prompt import estimate_tokens
from assistants.runtime import list_every

REPLY_RESERVE = 512  # what the engine keeps free for the reply when max_output_tokens is not set
SLACK = 64


def context_window(rt: Any, model: str) -> int | None:
    provider, _ = rt.router.resolve(model)
    return getattr(provider, "context_window", None)


def _as_chat(message: dict) -> dict:
    """A new input message ({"role", "content": blocks}) in the shape estimate_tokens reads."""
    content = message["content"]
    if isinstance(content, str):
        return {"role": message["role"], "content": content}
    parts = [{"type": "text", "text": b["text"]} for b in content if b["type"] == "text"]
    parts += [{"type": "image_url"} for b in content if b["type"] in ("image_url", "image_file")]
    return {"role": message["role"], "content": parts}


def _history(rt: Any, thread_id: str) -> list[dict]:
    return [{"role": m["role"], "content": message_text(m)}
            for m in list_every(rt.list_messages, thread_id=thread_id)[::-1]]


def check(rt: Any, mode: str, model: str, instructions: str | None, max_output: int | None,
          thread_id: str | None, messages: list[dict]) -> None:
    """400 context_length_exceeded when the input cannot fit as `mode` asks; nothing has been stored yet."""
    window = context_window(rt, model)
    if not window:
        return
    room = window - (max_output or REPLY_RESERVE) - SLACK
    head = [{"role": "system", "content": instructions}] if instructions else []
    new = [_as_chat(m) for m in messages]
    if mode == "auto":  # the oldest items may go, but not the newest one
        needed = estimate_tokens(head + new[-1:])
    else:
        needed = estimate_tokens(head + (_history(rt, thread_id) if thread_id else []) + new)
    if needed > room:
        hint = "" if mode == "auto" else " Shorten it, or set truncation to 'auto' to drop the oldest items."
        raise BadRequest(f"Your input exceeds the context window of this model: about {needed} tokens, and "
                         f"{max(room, 0)} fit with the reply's {max_output or REPLY_RESERVE}.{hint}",
                         param="input", code="context_length_exceeded")
