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
    """A BadRequest naming the first non-finite number, or where nesting passes MAX_DEPTH; None when fine."""
    stack = [(value, param, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            literal = "NaN" if math.isnan(item) else ("Infinity" if item > 0 else "-Infinity")
            raise BadRequest(
                f"Invalid value for '{where or 'body'}': {literal} is not a JSON number (numbers too large for a "
                "double, such as 1e999, read as Infinity). Send a finite number, or null.",
                param=where or None, code="invalid_number")
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_DEPTH:
            raise BadRequest(
                f"'{where or 'body'}' is nested more than {MAX_DEPTH} levels deep. Flatten the object: no parameter "
                "of this API needs that many levels.", param=where or None, code="nesting_too_deep")
        children = [(f"{where}.{k}" if where else str(k), v) for k, v in item.items()] if isinstance(item, dict) \
            else [(f"{where}[{i}]", v) for i, v in enumerate(item)]
        # Reversed so the first offender in document order is the one reported.
        stack.extend((v, path, depth + 1) for path, v in reversed(children))


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
