"""JSON every client can parse: NaN, Infinity and runaway nesting refused on the way in, never sent out."""

from __future__ import annotations

import json
import math
from typing import Any

from assistants.errors import BadRequest

# Deeper than any schema or filter people write; shallow enough that no recursive encoder (FastAPI's,
# pydantic's, the SDK's) runs out of stack on what we store.
MAX_DEPTH = 64


def check(value: Any, param: str = "") -> None:
    """A BadRequest naming a non-finite number, or where nesting passes MAX_DEPTH; None when fine."""
    if isinstance(value, float):
        _refuse_number(value, param)
    if not isinstance(value, (dict, list)):
        return
    # Paths are linked (parent, key) pairs, spelled out only for the error: most bodies have none.
    stack: list[tuple[Any, tuple | None, int]] = [(value, None, 0)]
    while stack:
        item, node, depth = stack.pop()
        if depth >= MAX_DEPTH:
            where = _spell(param, node)
            raise BadRequest(
                f"'{where or 'body'}' is nested more than {MAX_DEPTH} levels deep. Flatten the object: no parameter "
                "of this API needs that many levels.", param=where or None, code="nesting_too_deep")
        for key, child in (item.items() if isinstance(item, dict) else enumerate(item)):
            if type(child) is float:
                if not math.isfinite(child):
                    _refuse_number(child, _spell(param, (node, key)))
            elif isinstance(child, (dict, list)):
                stack.append((child, (node, key), depth + 1))


def _refuse_number(number: float, where: str) -> None:
    if math.isfinite(number):
        return
    literal = "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
    raise BadRequest(
        f"Invalid value for '{where or 'body'}': {literal} is not a JSON number (numbers too large for a double, "
        "such as 1e999, read as Infinity). Send a finite number, or null.", param=where or None, code="invalid_number")


def _spell(param: str, node: tuple | None) -> str:
    """`tools[0].function.parameters` from the linked path."""
    keys = []
    while node is not None:
        node, key = node
        keys.append(key)
    out = param
    for key in reversed(keys):
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def finite(value: Any) -> Any:
    """A copy with every NaN or ±Infinity replaced by None (lists and tuples become lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, (dict, list, tuple)):
        return value
    root: Any = {} if isinstance(value, dict) else []
    stack = [(value, root)]
    while stack:  # iterative: what is already stored may be nested deeper than the recursion limit allows
        src, dst = stack.pop()
        for key, item in (src.items() if isinstance(src, dict) else enumerate(src)):
            if isinstance(item, float) and not math.isfinite(item):
                item = None
            elif isinstance(item, (dict, list, tuple)):
                copy: Any = {} if isinstance(item, dict) else []
                stack.append((item, copy))
                item = copy
            if isinstance(dst, dict):
                dst[key] = item
            else:
                dst.append(item)
    return root


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that writes NaN and ±Infinity as null instead of tokens most JSON parsers reject."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError as exc:
        if "Out of range float" not in str(exc):  # a circular reference is a bug to see, not to paper over
            raise
        return json.dumps(finite(value), allow_nan=False, **kwargs)
