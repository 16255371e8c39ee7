"""Which message carries Regenerate, Edit and resend and the ‹ n / N › switcher, and which runs the thread shows.

Regenerate and Edit and resend take the thread's tail from that message out of the thread, whole, as a version of
the point before it (assistants/branches.py), and start again from that point; the switcher at that point flips
between the tails. The thread itself stays the conversation the model sees.

Replies regenerated before versions were stored kept their predecessors' text in the metadata of the run that
replaced them (`playground_v00`…, cut in 512-character pieces): those are still read and shown (`unpack`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from assistants import branches
from playground import actions
from session import get_runtime

PREFIX = "playground_v"
REPLACES = "playground_replaces"  # run metadata: the run whose reply this run's reply replaced (before versions)
KEYS = 14


def unpack(metadata: dict | None) -> list[str]:
    """Earlier versions kept in a run's metadata by older Playgrounds, the oldest first (none if none or torn)."""
    metadata = metadata or {}
    raw = "".join(metadata.get(f"{PREFIX}{i:02d}", "") for i in range(KEYS))
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [v for v in found if isinstance(v, str)] if isinstance(found, list) else []


@dataclass
class Controls:
    """The actions each message of the visible part of a thread offers (render_message's keyword arguments)."""

    thread_id: str
    messages: list[dict]  # the visible messages, oldest first
    runs: list[dict]
    older: bool  # older messages exist above the visible ones

    def __post_init__(self) -> None:
        self.found = branches.versions_of(get_runtime(), self.thread_id)
        self.by_run = {r["id"]: r for r in self.runs}
        self.position = {m["id"]: i for i, m in enumerate(self.messages)}
        self.lead: dict[str, str] = {}  # run id -> its first reply: the one that carries Regenerate
        for m in self.messages:
            if m["role"] == "assistant" and m.get("run_id"):
                self.lead.setdefault(m["run_id"], m["id"])

    @property
    def shown_runs(self) -> list[dict]:
        """The runs of the conversation as shown: not those of archived versions, nor replies replaced before
        versions were stored (the run log keeps them all)."""
        replaced = {(r.get("metadata") or {}).get(REPLACES) for r in self.runs}
        return [r for r in self.runs if r["id"] not in replaced and r["id"] not in self.found.archived_runs]

    def _switch(self, point: str, after: bool) -> tuple:
        current, total = self.found.points[point]
        return (actions.on_flip, (self.thread_id, point), current, total, after)

    def of(self, msg: dict) -> dict:
        """render_message's versions, regenerate, edit and switches for one message."""
        i = self.position[msg["id"]]
        out: dict = {"versions": None, "regenerate": None, "edit": None, "switches": []}
        point = self.messages[i - 1]["id"] if i else ("" if not self.older else None)
        if point in self.found.points:  # this message starts the tail shown at that point
            out["switches"].append(self._switch(point, after=False))
        if i == len(self.messages) - 1 and msg["id"] in self.found.points:  # what followed it is all archived
            out["switches"].append(self._switch(msg["id"], after=True))
        if msg["role"] == "user":
            out["edit"] = (actions.on_edit_resend, (self.thread_id, msg["id"]), len(self.messages) - 1 - i)
        elif not msg.get("run_id") or self.lead.get(msg["run_id"]) == msg["id"]:
            out["regenerate"] = (actions.on_regenerate, (self.thread_id, msg["id"]))
            out["versions"] = unpack((self.by_run.get(msg.get("run_id")) or {}).get("metadata")) or None
        return out

