"""The file_search built-in: searches the run's vector stores and hands the model numbered, citable passages."""

from __future__ import annotations

import re
from typing import Any

from assistants.errors import NotFound
from assistants.tools import BuiltinOutcome, Handler, ToolContext

DEFAULT_MAX_RESULTS = 20
OUTPUT_CHAR_BUDGET = 40_000  # keeps one search from swallowing a small model's whole context
RANKERS = ("auto", "default_2024_08_21")


def marker(index: int, name: str) -> str:
    """The source marker for result `index`; 】 and newlines in a name would break it, so they go."""
    clean = re.sub(r"[】\n\r]", " ", name).strip() or "file"
    return f"【{index}†{clean}】"


def vector_store_ids(run: dict, assistant: dict | None, thread: dict | None) -> list[str]:
    """Vector stores the run may search: the run's own tool_resources, the assistant's and the thread's."""
    ids: list[str] = []
    for owner in (run, assistant, thread):
        for key in ("tool_resources", "_tool_resources"):
            resources = (owner or {}).get(key) or {}
            ids.extend((resources.get("file_search") or {}).get("vector_store_ids") or [])
    return list(dict.fromkeys(i for i in ids if isinstance(i, str)))


def search_config(run: dict) -> tuple[int, dict]:
    """max_num_results and ranking_options from the run's file_search tool, with OpenAI's defaults."""
    tool = next((t for t in run.get("tools") or [] if t.get("type") == "file_search"), {})
    cfg = tool.get("file_search") or {}
    n = cfg.get("max_num_results") or DEFAULT_MAX_RESULTS
    ranking = cfg.get("ranking_options") or {}
    ranker = ranking.get("ranker") if ranking.get("ranker") in RANKERS else "auto"
    threshold = float(ranking.get("score_threshold") or 0.0)
    return int(n), {"ranker": ranker, "score_threshold": threshold}


def _first_index(rt: Any, run_id: str) -> int:
    """Markers continue across the searches of one run, so 【3†…】 means one passage only."""
    used = [a.get("index", -1) for step in rt.store.all("run_steps", run_id=run_id)
            for a in step.get("_annotations") or [] if a.get("type") == "file_citation"]
    return max(used, default=-1) + 1


def make_handler(rt: Any) -> Handler:
    """The file_search handler over the runtime's vector stores."""

    def handle(arguments: dict, ctx: ToolContext) -> BuiltinOutcome:
        max_results, ranking = search_config(ctx.run)
        details: dict = {"ranking_options": ranking, "results": []}
        query = arguments.get("query")
        if isinstance(query, list):
            query = " ".join(q for q in query if isinstance(q, str))
        if not isinstance(query, str) or not query.strip():
            msg = 'error: file_search needs a non-empty "query" string.'
            return BuiltinOutcome(msg, details, error=msg)
        stored_run = rt.store.get("runs", ctx.run["id"]) or ctx.run  # ctx.run lacks the private _tool_resources
        ids = vector_store_ids(stored_run, ctx.assistant, ctx.thread)
        usable, notes = [], []
        for vs_id in ids:
            try:
                vs = rt.vector_stores.get(vs_id)
            except NotFound:  # deleted since it was attached: nothing to search there
                notes.append(f"Vector store {vs_id} no longer exists.")
                continue
            if vs["status"] == "expired":
                notes.append(f"Vector store {vs_id} ({vs['name'] or 'unnamed'}) has expired and was not searched.")
                continue
            usable.append(vs_id)
            pending = vs["file_counts"]["in_progress"]
            if pending:
                notes.append(f"{pending} file(s) in {vs['name'] or vs_id} are still being indexed and were not searched.")
        if not usable:
            text = "No files are attached to this assistant or thread, so there is nothing to search."
            return BuiltinOutcome("\n".join([text, *notes]), details)
        results = rt.vector_stores.search_stores(usable, query, max_num_results=max_results,
                                                 score_threshold=ranking["score_threshold"])
        first = _first_index(rt, ctx.run["id"])
        parts, annotations = [], []
        budget = OUTPUT_CHAR_BUDGET
        shown = 0
        for i, r in enumerate(results):
            details["results"].append({"file_id": r.file_id, "file_name": r.filename, "score": r.score,
                                       "content": [{"type": "text", "text": r.text}]})
            tag = marker(first + i, r.filename)
            # The shape assistants.runs.annotate reads: the marker's number, the name and the quote.
            annotations.append({"type": "file_citation", "index": first + i, "marker": tag, "file_id": r.file_id,
                                "filename": r.filename, "quote": r.text})
            block = f"{tag} (score {r.score:.2f})\n{r.text}"
            if len(block) > budget:
                continue
            budget -= len(block)
            shown += 1
            parts.append(block)
        if not results:
            head = f'No passage in the attached files matches "{query}". Try other words.'
        else:
            example = marker(first, results[0].filename)
            head = (f'{len(results)} passage(s) from the attached files for "{query}", best first. '
                    f"Cite a passage by writing its marker, e.g. {example}, after the sentence it supports.")
        if shown < len(results):
            notes.append(f"{len(results) - shown} more passage(s) were left out to keep this answer short.")
        output = "\n\n".join([head, *parts, *notes])
        return BuiltinOutcome(output, details, annotations=annotations)

    return handle
