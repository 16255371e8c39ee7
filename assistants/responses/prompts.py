"""Reusable prompts: `prompt: {"id": "asst_…", "variables": {...}}` uses a Playground assistant as the prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from assistants.errors import BadRequest, NotFound

VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass
class Prompt:
    """The assistant a response runs as, its instructions with the variables filled in, and the echo."""

    assistant: dict
    instructions: str | None
    echo: dict


def resolve(value: Any, rt: Any) -> Prompt | None:
    """The prompt parameter checked; its id must name an assistant of this server."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        raise BadRequest("prompt must be an object with the id of an assistant (asst_…).", param="prompt.id")
    try:
        assistant = rt.get_assistant(value["id"])
    except NotFound:
        raise BadRequest(f"Prompt '{value['id']}' not found: a prompt here is an assistant id (asst_…).",
                         param="prompt.id", code="not_found") from None
    variables = value.get("variables") or {}
    if not isinstance(variables, dict):
        raise BadRequest("prompt.variables must be an object.", param="prompt.variables")
    texts = {}
    for name, val in variables.items():
        if isinstance(val, dict) and val.get("type") == "input_text" and isinstance(val.get("text"), str):
            val = val["text"]
        if not isinstance(val, str):
            raise BadRequest(f"prompt.variables.{name} must be a string or an input_text part.",
                             param=f"prompt.variables.{name}")
        texts[name] = val
    template = assistant.get("instructions")
    filled = VARIABLE.sub(lambda m: texts.get(m.group(1), m.group(0)), template) if template else template
    echo = {"id": assistant["id"], "variables": variables or None, "version": value.get("version")}
    return Prompt(assistant, filled, echo)


def echo_tools(assistant: dict) -> list[dict]:
    """An assistant's tools as a response lists them, with the resources they use."""
    resources = assistant.get("tool_resources") or {}
    out = []
    for tool in assistant.get("tools") or []:
        if tool["type"] == "function":
            fn = tool["function"]
            out.append({"type": "function", "name": fn["name"], "description": fn.get("description"),
                        "parameters": fn.get("parameters"), "strict": bool(fn.get("strict", False))})
        elif tool["type"] == "file_search":
            ids = (resources.get("file_search") or {}).get("vector_store_ids") or []
            out.append({"type": "file_search", "vector_store_ids": list(ids), **(tool.get("file_search") or {})})
        else:
            ids = (resources.get("code_interpreter") or {}).get("file_ids") or []
            out.append({"type": "code_interpreter", "container": {"type": "auto", "file_ids": list(ids)}})
    return out
