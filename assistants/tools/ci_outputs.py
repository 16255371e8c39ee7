"""Files the code interpreter hands back: kept as the thread's, within its quota, and deleted with it."""

from __future__ import annotations

import logging
from typing import Any

from assistants.errors import APIError

log = logging.getLogger(__name__)

PURPOSE = "assistants_output"
THREAD_FIELD = "_thread_id"  # private (never in the API's File object): whose output the file is
WRITTEN_FIELD = "_written"  # private: a file the code wrote into /mnt/data (not a figure), restored with the thread


def thread_outputs(rt: Any, thread_id: str) -> list[dict]:
    """Stored output files of one thread (a scan of output files: the files table has no thread column)."""
    return [f for f in rt.store.all("files", purpose=PURPOSE) if f.get(THREAD_FIELD) == thread_id]


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


class OutputKeeper:
    """Files one call produced, stored for its thread while the thread's quota lasts."""

    def __init__(self, rt: Any, thread_id: str, quota_mb: int):
        self.rt, self.thread_id, self.quota = rt, thread_id, quota_mb * 1024 * 1024
        self.used: int | None = None  # bytes the thread keeps already, counted on the first file
        self.notes: list[str] = []  # what was not kept, and why

    def keep(self, name: str, data: bytes, *, written: bool = False) -> dict | None:
        """Store data as the thread's output file; None (and a note) when it does not fit or the thread is gone.

        `written`: the code wrote it into /mnt/data, so a fresh session of the thread gets it back there.
        """
        if self.used is None:
            if self.rt.store.get("threads", self.thread_id) is None:  # deleted while the code ran
                self.used = -1
            else:
                self.used = sum(f.get("bytes", 0) for f in thread_outputs(self.rt, self.thread_id))
        if self.used < 0:
            self.notes.append(f"[{name} was not kept: the thread was deleted]")
            return None
        if self.used + len(data) > self.quota:
            self.notes.append(f"[{name} ({_mb(len(data))}) was not kept: this thread's output files would pass their "
                              f"{_mb(self.quota)} quota ({_mb(self.used)} kept already; PLAYGROUND_CODE_OUTPUT_QUOTA_MB)]")
            return None
        try:
            meta = self.rt.files.create(name, data, PURPOSE)
        except APIError as exc:  # e.g. over the upload limit
            self.notes.append(f"[{name} was not kept: {exc}]")
            return None
        row = self.rt.store.get("files", meta["id"])
        if row is not None:  # tag it in the files service's own row, so it is counted and goes with the thread
            self.rt.store.put("files", {**row, THREAD_FIELD: self.thread_id, **({WRITTEN_FIELD: True} if written else {})})
        self.used += len(data)
        return meta


def delete_thread_outputs(rt: Any, thread_id: str) -> int:
    """Delete a deleted thread's output files; returns how many went."""
    if rt.files is None:
        return 0
    gone = 0
    for f in thread_outputs(rt, thread_id):
        try:
            rt.files.delete(f["id"])
            gone += 1
        except APIError:  # deleted meanwhile
            pass
    return gone
