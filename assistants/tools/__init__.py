"""Tools as the model sees them (DESIGN principle 5) and dispatch of built-in tool calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

BUILTIN_DEFINITIONS = {
    "code_interpreter": {
        "type": "function",
        "function": {
            "name": "code_interpreter",
            "description": "Run Python code in a stateful sandbox (numpy, pandas, matplotlib available; files are in "
                           "/mnt/data). Print what you want to see; figures are returned as images.",
            "parameters": {"type": "object", "properties": {"code": {"type": "string", "description": "Python code to run"}},
                           "required": ["code"]},
        },
    },
    "file_search": {
        "type": "function",
        "function": {
            "name": "file_search",
            "description": "Search the files attached to this assistant and thread; returns the most relevant passages.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string", "description": "What to look for"}},
                           "required": ["query"]},
        },
    },
}


@dataclass
class ToolContext:
    """What a built-in tool may use while handling one call."""

    run: dict
    assistant: dict | None
    thread: dict | None
    cancel: threading.Event
    attachments: list[dict] = field(default_factory=list)  # message attachments of the thread, newest last
    memory_mb: int | None = None  # the code session's memory budget (a container's memory_limit); None: the server's


@dataclass
class BuiltinOutcome:
    """A built-in tool's answer: `output` goes back to the model, `details` into the run step."""

    output: str
    details: dict
    error: str | None = None
    annotations: list[dict] = field(default_factory=list)  # file_path / file_citation candidates for the reply
    image_file_ids: list[str] = field(default_factory=list)


Handler = Callable[[dict, ToolContext], BuiltinOutcome]


def empty_details(name: str, arguments: dict) -> dict:
    """Step details for a built-in call that produced nothing."""
    if name == "code_interpreter":
        return {"input": str(arguments.get("code", "")), "outputs": []}
    return {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}, "results": []}


class ToolBox:
    """Registered built-in handlers; a built-in without one answers honestly that it is not available."""

    def __init__(self):
        self.handlers: dict[str, Handler] = {}
        self.thread_hooks: list[Callable[[str], None]] = []  # what tools keep for a thread goes with it

    def thread_deleted(self, thread_id: str) -> None:
        """Tell the tools a thread was deleted (its sandbox session and output files go)."""
        for hook in self.thread_hooks:
            hook(thread_id)

    def register(self, name: str, handler: Handler) -> None:
        self.handlers[name] = handler

    def definition(self, name: str) -> dict:
        return BUILTIN_DEFINITIONS[name]

    def run_builtin(self, name: str, arguments: dict, ctx: ToolContext) -> BuiltinOutcome:
        handler = self.handlers.get(name)
        if handler is None:
            msg = f"error: the {name} tool is not available in this installation."
            return BuiltinOutcome(msg, empty_details(name, arguments), error=msg)
        return handler(arguments, ctx)
