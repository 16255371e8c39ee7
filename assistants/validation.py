"""Checks on request parameters; each failure is a BadRequest naming the field and what is allowed."""

from __future__ import annotations

import re
from typing import Any

from assistants import jsonsafe
from assistants.errors import BadRequest

BUILTIN_TOOLS = ("code_interpreter", "file_search")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # function and json_schema names, as OpenAI accepts them


def metadata(value: Any, param: str = "metadata") -> dict:
    """At most 16 string pairs; keys up to 64 characters, values up to 512."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{param} must be an object of string keys and values.", param=param)
    if len(value) > 16:
        raise BadRequest(f"{param} can have at most 16 keys (got {len(value)}).", param=param)
    for key, val in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise BadRequest(f"{param} keys must be strings of at most 64 characters ({str(key)[:70]!r}).", param=param)
        if not isinstance(val, str) or len(val) > 512:
            raise BadRequest(f"{param}['{key}'] must be a string of at most 512 characters.", param=param)
    return dict(value)


def number(value: Any, param: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{param} must be a number between {low:g} and {high:g} (got {value!r}).", param=param)
    return float(value)


def flag(value: Any, param: str, default: bool = False) -> bool:
    """A boolean parameter (absent or null -> `default`); 400 naming it for any other type."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{param} must be a boolean (got {value!r}).", param=param)
    return value


def positive_int(value: Any, param: str, minimum: int = 1) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadRequest(f"{param} must be an integer of at least {minimum} (got {value!r}).", param=param)
    return value


def string(value: Any, param: str, max_len: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise BadRequest(f"Missing required parameter: '{param}'.", param=param)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{param} must be a string.", param=param)
    if len(value) > max_len:
        raise BadRequest(f"{param} is too long: {len(value)} characters, at most {max_len}.", param=param)
    return value


def tools(value: Any, param: str = "tools") -> list[dict]:
    """Tools as OpenAI accepts them; a function may not take a built-in tool's name or repeat a name."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{param} must be an array of tool objects.", param=param)
    if len(value) > 128:
        raise BadRequest(f"{param} can hold at most 128 tools.", param=param)
    jsonsafe.check(value, param)  # schemas are stored as given: no NaN or Infinity may hide in them
    out, names = [], set()
    for i, tool in enumerate(value):
        where = f"{param}[{i}]"
        if not isinstance(tool, dict) or tool.get("type") not in ("code_interpreter", "file_search", "function"):
            raise BadRequest(f"{where}.type must be 'code_interpreter', 'file_search' or 'function'.", param=f"{where}.type")
        if tool["type"] == "code_interpreter":
            out.append({"type": "code_interpreter"})
            continue
        if tool["type"] == "file_search":
            fs = tool.get("file_search") or {}
            if not isinstance(fs, dict):
                raise BadRequest(f"{where}.file_search must be an object.", param=f"{where}.file_search")
            entry: dict = {"type": "file_search"}
            details: dict = {}
            if fs.get("max_num_results") is not None:
                n = fs["max_num_results"]
                if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 50:
                    raise BadRequest(f"{where}.file_search.max_num_results must be between 1 and 50.",
                                     param=f"{where}.file_search.max_num_results")
                details["max_num_results"] = n
            ranking = fs.get("ranking_options")
            if ranking is not None:
                threshold = number(ranking.get("score_threshold", 0.0), f"{where}.file_search.ranking_options.score_threshold", 0, 1)
                details["ranking_options"] = {"ranker": ranking.get("ranker", "auto"), "score_threshold": threshold}
            if details:
                entry["file_search"] = details
            out.append(entry)
            continue
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise BadRequest(f"{where}.function must be an object with a name.", param=f"{where}.function")
        name = fn.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise BadRequest(f"{where}.function.name must be 1-64 letters, digits, '_' or '-' (got {name!r}).",
                             param=f"{where}.function.name")
        if name in BUILTIN_TOOLS:
            raise BadRequest(f"A function cannot be named '{name}': that is a built-in tool's name.",
                             param=f"{where}.function.name")
        if name in names:
            raise BadRequest(f"Two functions are named '{name}'; function names must be unique.", param=f"{where}.function.name")
        names.add(name)
        params = fn.get("parameters")
        if params is not None and (not isinstance(params, dict) or params.get("type", "object") != "object"):
            raise BadRequest(f"{where}.function.parameters must be a JSON Schema object with type 'object'.",
                             param=f"{where}.function.parameters")
        clean = {"name": name, "description": fn.get("description"), "parameters": params or {"type": "object", "properties": {}}}
        if fn.get("strict") is not None:
            clean["strict"] = bool(fn["strict"])
        out.append({"type": "function", "function": clean})
    return out


def response_format(value: Any, param: str = "response_format") -> Any:
    if value is None or value == "auto":
        return "auto"
    jsonsafe.check(value, param)
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise BadRequest(f"{param} must be 'auto' or an object with type 'text', 'json_object' or 'json_schema'.", param=param)
    if value["type"] == "json_schema":
        js = value.get("json_schema")
        if not isinstance(js, dict) or not isinstance(js.get("name"), str) or not js["name"]:
            raise BadRequest(f"{param}.json_schema needs a 'name'.", param=f"{param}.json_schema.name")
        if js.get("schema") is not None and not isinstance(js["schema"], dict):
            raise BadRequest(f"{param}.json_schema.schema must be a JSON Schema object.", param=f"{param}.json_schema.schema")
        return {"type": "json_schema", "json_schema": {k: js[k] for k in ("name", "description", "schema", "strict") if k in js}}
    return {"type": value["type"]}


def tool_resources(value: Any, param: str = "tool_resources") -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{param} must be an object.", param=param)
    jsonsafe.check(value, param)  # inline vector_stores pass through to the vector-store service
    out: dict = {}
    ci = value.get("code_interpreter")
    if ci is not None:
        ids = ci.get("file_ids", []) if isinstance(ci, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 20:
            raise BadRequest(f"{param}.code_interpreter.file_ids must be a list of at most 20 file ids.",
                             param=f"{param}.code_interpreter.file_ids")
        out["code_interpreter"] = {"file_ids": ids}
    fs = value.get("file_search")
    if fs is not None:
        if not isinstance(fs, dict):
            raise BadRequest(f"{param}.file_search must be an object.", param=f"{param}.file_search")
        ids = fs.get("vector_store_ids", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 1:
            raise BadRequest(f"{param}.file_search.vector_store_ids must be a list of at most 1 vector store id.",
                             param=f"{param}.file_search.vector_store_ids")
        entry = {"vector_store_ids": ids}
        if fs.get("vector_stores") is not None:
            entry["vector_stores"] = fs["vector_stores"]
        out["file_search"] = entry
    return out


def tool_choice(value: Any, param: str = "tool_choice") -> Any:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return value
    if isinstance(value, dict) and value.get("type") in BUILTIN_TOOLS:
        return {"type": value["type"]}
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("function"), dict) \
            and isinstance(value["function"].get("name"), str):
        return {"type": "function", "function": {"name": value["function"]["name"]}}
    raise BadRequest(f"{param} must be 'none', 'auto', 'required' or name a tool.", param=param)


def truncation_strategy(value: Any, param: str = "truncation_strategy") -> dict:
    if value is None:
        return {"type": "auto", "last_messages": None}
    if not isinstance(value, dict) or value.get("type") not in ("auto", "last_messages"):
        raise BadRequest(f"{param}.type must be 'auto' or 'last_messages'.", param=f"{param}.type")
    last = value.get("last_messages")
    if value["type"] == "last_messages":
        positive_int(last, f"{param}.last_messages")
        if last is None:
            raise BadRequest(f"{param}.last_messages is required when type is 'last_messages'.", param=f"{param}.last_messages")
    return {"type": value["type"], "last_messages": last}
