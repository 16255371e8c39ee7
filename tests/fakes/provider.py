"""A scripted model at the provider interface: each call pops the next scripted turn."""

from __future__ import annotations

import threading
import time
from collections import deque

from assistants.providers.base import Cancelled, ChatResult, ProviderError, ToolCall


class ScriptedProvider:
    """Turns are dicts: text, tool_calls [(name, arguments)], finish, error (ProviderError), delay, chunks.

    With an empty script it answers "echo: <last user message>" instantly.
    """

    def __init__(self, name: str = "fake", models: tuple[str, ...] = ("fake-model",), script: list[dict] | None = None):
        self.name = name
        self.models = list(models)
        self.script: deque = deque(script or [])
        self.requests: list[dict] = []
        self._lock = threading.Lock()

    def add(self, *turns: dict) -> ScriptedProvider:
        self.script.extend(turns)
        return self

    def list_models(self) -> list[str]:
        return list(self.models)

    def chat(self, request: dict, *, on_text, cancel: threading.Event) -> ChatResult:
        with self._lock:
            self.requests.append(request)
            turn = self.script.popleft() if self.script else None
        if turn is None:
            last = next((m["content"] for m in reversed(request["messages"]) if m["role"] == "user"), "")
            turn = {"text": f"echo: {last}"}
        delay = turn.get("delay", 0)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            if cancel.wait(min(0.01, max(0.0, deadline - time.monotonic()))):
                raise Cancelled()
        if turn.get("error"):
            err = turn["error"]
            raise err if isinstance(err, Exception) else ProviderError(str(err))
        pieces = turn.get("chunks") or ([turn["text"]] if turn.get("text") else [])
        text = "".join(pieces)
        for piece in pieces:
            if cancel.is_set():
                raise Cancelled()
            if turn.get("chunk_delay"):
                time.sleep(turn["chunk_delay"])
            on_text(piece)
        calls = [ToolCall(c[2] if len(c) > 2 else f"call_{i}_{len(self.requests)}", c[0], c[1])
                 for i, c in enumerate(turn.get("tool_calls", []))]
        finish = turn.get("finish") or ("tool_calls" if calls else "stop")
        usage = turn.get("usage", (10, max(1, len(text) // 4) if text else 5))
        return ChatResult(text, calls, finish, usage[0], usage[1],
                          {"choices": [{"message": {"content": text}, "finish_reason": finish}]})
