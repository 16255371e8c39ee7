"""What every model backend offers the run engine: streaming chat with tools, and a model list."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol


@dataclass
class ToolCall:
    """One tool call the model asked for; `arguments` is the raw JSON text it produced."""

    id: str
    name: str
    arguments: str


@dataclass
class ChatResult:
    """A finished model call."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw: dict = field(default_factory=dict)


def raw_response(backend: str, text: str, calls: list[ToolCall], finish: str, usage: dict | None, **extra) -> dict:
    """A finished call as a Chat Completions response body, for `ChatResult.raw`; `extra` keys follow `backend`."""
    return {
        "backend": backend,
        **extra,
        "choices": [{
            "message": {
                "role": "assistant",
                "content": text or None,
                "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                               for c in calls] or None,
            },
            "finish_reason": finish,
        }],
        "usage": usage,
    }


class ProviderError(Exception):
    """A model call failed; `message` says what happened and what to do, `code` is OpenAI's last_error code."""

    def __init__(self, message: str, code: str = "server_error"):
        super().__init__(message)
        self.message = message
        self.code = code


class Cancelled(Exception):
    """The run was cancelled while the model was generating."""


# A streamed piece of text; a provider that was asked for log probabilities may pass the piece's tokens' second.
OnText = Callable[..., None]


class Provider(Protocol):
    """A chat backend. `request` is a Chat Completions request body (model, messages, tools, ...)."""

    name: str

    def list_models(self) -> list[str]: ...

    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult: ...
