"""Run settings that only the in-process callers set (the Responses API), never a request body of the runs route."""

from __future__ import annotations

from dataclasses import dataclass

from assistants.errors import BadRequest

BUILTIN_CALLS = ("code_interpreter", "file_search")


@dataclass(frozen=True)
class RunExtras:
    """`max_tool_calls`: built-in tool calls the whole run may make (later ones are ignored, as OpenAI does);
    `top_logprobs`: None for no log probabilities, else how many alternatives per token (0-20)."""

    max_tool_calls: int | None = None
    top_logprobs: int | None = None

    def fields(self) -> dict:
        """The run's private fields (a leading underscore keeps them off the wire)."""
        return {"_max_tool_calls": self.max_tool_calls, "_top_logprobs": self.top_logprobs}


def checked(value: object) -> RunExtras | None:
    """Only a RunExtras made in-process is accepted; a JSON body naming `extras` is an unknown parameter."""
    if value is not None and not isinstance(value, RunExtras):
        raise BadRequest("Unrecognized request argument supplied: extras", param="extras", code="unknown_parameter")
    return value


def builtin_calls_made(steps: list[dict]) -> int:
    """How many built-in tool calls a run's steps hold (what max_tool_calls counts)."""
    return sum(1 for s in steps if s["type"] == "tool_calls"
               for c in s["step_details"]["tool_calls"] if c["type"] in BUILTIN_CALLS)


def builtin_calls_left(run: dict, steps: list[dict]) -> int | None:
    """Built-in calls the run may still make; None when it has no limit."""
    limit = run.get("_max_tool_calls")
    return None if limit is None else max(0, limit - builtin_calls_made(steps))
