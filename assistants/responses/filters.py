"""file_search `filters` for responses: the built-in search, kept to files whose attributes match.

The runtime's file_search handler takes no filters, so for a run whose response asked for them the handler runs
over a view of the runtime whose vector-store search drops the files that do not match.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from assistants.errors import BadRequest
from assistants.responses import run_records
from assistants.tools.file_search_tool import make_handler
from assistants.vector_stores import matches

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin")
WIDE = 50  # results fetched before filtering, so a filter still leaves max_num_results when it can


def check(flt: Any, param: str) -> dict:
    """A comparison or compound filter as OpenAI defines them; 400 naming the part that is wrong."""
    if not isinstance(flt, dict):
        raise BadRequest(f"{param} must be a comparison or compound filter object.", param=param)
    kind = flt.get("type")
    if kind in ("and", "or"):
        parts = flt.get("filters")
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"{param}.filters must be a non-empty list of filters.", param=f"{param}.filters")
        for i, part in enumerate(parts):
            check(part, f"{param}.filters[{i}]")
        return flt
    if kind not in COMPARISONS or not isinstance(flt.get("key"), str):
        raise BadRequest(f"{param} needs a key and a type: {', '.join(COMPARISONS)}, and or or.", param=param)
    value = flt.get("value")
    if kind in ("in", "nin") and not isinstance(value, list):
        raise BadRequest(f"{param}.value must be a list for '{kind}'.", param=f"{param}.value")
    if kind not in ("in", "nin") and not isinstance(value, (str, int, float, bool)):
        raise BadRequest(f"{param}.value must be a string, number or boolean.", param=f"{param}.value")
    return flt


def install(rt: Any) -> None:
    """Wrap the runtime's file_search handler once: filters, and a tool naming several vector stores."""
    original = rt.toolbox.handlers.get("file_search")
    if original is None or getattr(original, "responses_filters", False):
        return

    def handle(arguments: dict, ctx: Any):
        tool = run_records.tool_of(run_records.current(rt, ctx.run), "file_search") or {}
        ids = tool.get("vector_store_ids") or []
        if len(ids) > 1:  # a thread holds one vector store: the others reach the handler through its context
            resources = {**((ctx.thread or {}).get("tool_resources") or {}), "file_search": {"vector_store_ids": ids}}
            ctx = dataclasses.replace(ctx, thread={**(ctx.thread or {}), "tool_resources": resources})
        if tool.get("filters") is None:
            return original(arguments, ctx)
        return make_handler(_FilteredRuntime(rt, tool["filters"]))(arguments, ctx)

    handle.responses_filters = True
    rt.toolbox.register("file_search", handle)


class _FilteredRuntime:
    """The runtime as the file_search handler sees it, with a filtering vector-store search."""

    def __init__(self, rt: Any, flt: dict):
        self._rt = rt
        self.vector_stores = _FilteredStores(rt.vector_stores, flt)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)


class _FilteredStores:
    def __init__(self, inner: Any, flt: dict):
        self._inner = inner
        self._filter = flt

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def search_stores(self, vs_ids: list[str], query: str, *, max_num_results: int = 20, score_threshold: float = 0.0):
        found = self._inner.search_stores(vs_ids, query, max_num_results=max(WIDE, max_num_results),
                                          score_threshold=score_threshold)
        attributes: dict[tuple[str, str], dict] = {}
        kept = []
        for result in found:
            key = (result.vector_store_id, result.file_id)
            if key not in attributes:
                attributes[key] = self._inner.get_file(*key).get("attributes") or {}
            if matches(attributes[key], self._filter):
                kept.append(result)
        return kept[:max_num_results]
