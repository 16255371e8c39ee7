"""Earlier versions of a regenerated reply, kept in the metadata of the run that replaced them.

Regenerate deletes the old reply from the thread and starts a new run from the same point, so the thread stays
the conversation the model saw (what `client.beta.threads.messages.list` returns, what the next run reads). The
old reply's text goes into the new run's metadata: a JSON list of strings, the oldest first, cut in 512-character
pieces over `playground_v00`… (the API allows 16 keys of 512 characters; two stay free for the run's place in the
thread and the run it replaced). Text only: images an old version showed stay with its run, in the run log.
"""

from __future__ import annotations

import json

PREFIX = "playground_v"
REPLACES = "playground_replaces"  # run metadata: the run whose reply this run's reply replaced
KEYS = 14
PIECE = 512


def unpack(metadata: dict | None) -> list[str]:
    """The earlier versions stored in a run's metadata, the oldest first (none if there are none or they are torn)."""
    metadata = metadata or {}
    raw = "".join(metadata.get(f"{PREFIX}{i:02d}", "") for i in range(KEYS))
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [v for v in found if isinstance(v, str)] if isinstance(found, list) else []


def pack(versions: list[str]) -> dict[str, str]:
    """Run metadata holding `versions`: the newest kept whole where it fits, the oldest dropped first, then cut."""
    versions = list(versions)
    while versions:
        raw = json.dumps(versions, ensure_ascii=False)
        if len(raw) <= KEYS * PIECE:
            return {f"{PREFIX}{i // PIECE:02d}": raw[i:i + PIECE] for i in range(0, len(raw), PIECE)}
        if len(versions) > 1:
            versions.pop(0)
        else:  # one version longer than the room: its start, marked as cut
            room = KEYS * PIECE - len(json.dumps([""])) - 64
            versions = [versions[0][:room] + " … (cut: too long to keep)"]
            while len(json.dumps(versions, ensure_ascii=False)) > KEYS * PIECE:
                room -= 256
                versions = [versions[0][:room] + " … (cut: too long to keep)"]
    return {}
