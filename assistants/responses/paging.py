"""One list page over items kept in order, answering like OpenAI's list endpoints."""

from __future__ import annotations

from assistants.errors import BadRequest


def page(items: list[dict], *, limit: int = 20, order: str = "desc", after: str | None = None,
         before: str | None = None) -> dict:
    """A list page over items held in creation order, answering like OpenAI's list endpoints."""
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        raise BadRequest("limit must be an integer between 1 and 100.", param="limit")
    if order not in ("asc", "desc"):
        raise BadRequest("order must be 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else items[::-1]
    ids = [i["id"] for i in ordered]
    for cursor, name in ((after, "after"), (before, "before")):
        if cursor and cursor not in ids:
            raise BadRequest(f"The '{name}' cursor '{cursor}' is not an item of this list.", param=name)
    if after:
        ordered = ordered[ids.index(after) + 1:]
    if before:
        ordered = ordered[:[i["id"] for i in ordered].index(before)]
    data = ordered[:limit]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": len(ordered) > limit}

