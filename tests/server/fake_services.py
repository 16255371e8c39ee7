"""Stand-ins for `rt.files` / `rt.vector_stores` (the interface in notes/services-interface.md) until the real ones land.

They keep objects in the runtime's store, so tool_resources checks see them, and index "in the background"
(a short timer), so the SDK's pollers really poll.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from assistants.errors import BadRequest, not_found
from assistants.ids import new_id, now

PURPOSES = ("assistants", "vision", "assistants_output", "user_data")
INDEX_DELAY_S = 0.03


class FakeFileService:
    """Files on disk under the data dir, named by id (never by the uploaded filename)."""

    def __init__(self, rt):
        self.rt = rt
        self.root = Path(rt.settings.data_dir) / "fake-files"
        self.root.mkdir(parents=True, exist_ok=True)

    def create(self, filename: str, data: bytes, purpose: str) -> dict:
        if purpose not in PURPOSES:
            raise BadRequest(f"purpose must be one of {', '.join(PURPOSES)}.", param="purpose")
        if len(data) > self.rt.settings.max_upload_mb * 1024 * 1024:
            raise BadRequest(f"File is larger than {self.rt.settings.max_upload_mb} MB.", param="file")
        obj = {"id": new_id("file-"), "object": "file", "bytes": len(data), "created_at": now(), "filename": filename,
               "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}
        (self.root / obj["id"]).write_bytes(data)
        return self.rt.store.insert("files", obj)

    def get(self, file_id: str) -> dict:
        obj = self.rt.store.get("files", file_id)
        if obj is None:
            raise not_found("file", file_id)
        return obj

    def list(self, purpose=None, limit=10000, order="desc", after=None) -> dict:
        if not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise BadRequest("limit must be between 1 and 10000.", param="limit")
        return self.rt.store.page("files", limit=min(limit, 100), order=order, after=after, purpose=purpose)

    def content(self, file_id: str) -> bytes:
        return self.path(file_id).read_bytes()

    def path(self, file_id: str) -> Path:
        self.get(file_id)
        return self.root / file_id

    def delete(self, file_id: str) -> dict:
        self.get(file_id)
        self.rt.store.delete("files", file_id)
        (self.root / file_id).unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}


class FakeVectorStoreService:
    """Vector stores whose "index" is the raw text; search is a case-insensitive word match."""

    def __init__(self, rt):
        self.rt = rt
        self.lock = threading.Lock()
        self.timers: list[threading.Timer] = []

    # -- stores --------------------------------------------------------------------------------
    def create(self, name=None, file_ids=None, expires_after=None, chunking_strategy=None, metadata=None) -> dict:
        vs = {"id": new_id("vs"), "object": "vector_store", "created_at": now(), "name": name or "",
              "usage_bytes": 0, "file_counts": _counts([]), "status": "completed", "last_active_at": now(),
              "metadata": metadata or {}, "expires_after": expires_after, "expires_at": None}
        self.rt.store.insert("vector_stores", vs)
        for file_id in file_ids or []:
            self.add_file(vs["id"], file_id, chunking_strategy)
        return self.get(vs["id"])

    def get(self, vs_id: str) -> dict:
        vs = self.rt.store.get("vector_stores", vs_id)
        if vs is None:
            raise not_found("vector store", vs_id)
        files = self.rt.store.all("vector_store_files", vector_store_id=vs_id)
        vs["file_counts"] = _counts(files)
        vs["status"] = "in_progress" if vs["file_counts"]["in_progress"] else "completed"
        vs["usage_bytes"] = sum(f["usage_bytes"] for f in files)
        return vs

    def update(self, vs_id: str, name=None, expires_after=None, metadata=None) -> dict:
        vs = self.get(vs_id)
        if name is not None:
            vs["name"] = name
        if metadata is not None:
            vs["metadata"] = metadata
        if expires_after is not None:
            vs["expires_after"] = expires_after
        return self.rt.store.put("vector_stores", vs)

    def delete(self, vs_id: str) -> dict:
        self.get(vs_id)
        self.rt.store.delete("vector_store_files", vector_store_id=vs_id)
        self.rt.store.delete("vector_stores", vs_id)
        return {"id": vs_id, "object": "vector_store.deleted", "deleted": True}

    def list(self, limit=20, order="desc", after=None, before=None) -> dict:
        page = self.rt.store.page("vector_stores", limit=limit, order=order, after=after, before=before)
        page["data"] = [self.get(v["id"]) for v in page["data"]]
        return page

    def search(self, vs_id, query, max_num_results=10, ranking_options=None, filters=None, rewrite_query=False) -> dict:
        self.get(vs_id)
        words = [w.lower() for w in (query if isinstance(query, str) else " ".join(query)).split()]
        hits = []
        for vf in self.rt.store.all("vector_store_files", vector_store_id=vs_id, status="completed"):
            text = self.rt.files.content(vf["id"]).decode("utf-8", "replace")
            score = sum(text.lower().count(w) for w in words)
            if score:
                hits.append({"file_id": vf["id"], "filename": self.rt.files.get(vf["id"])["filename"],
                             "score": float(score), "attributes": vf.get("attributes") or {},
                             "content": [{"type": "text", "text": text[:400]}]})
        hits.sort(key=lambda h: -h["score"])
        return {"object": "vector_store.search_results.page", "search_query": [query], "data": hits[:max_num_results],
                "has_more": False, "next_page": None}

    # -- files ---------------------------------------------------------------------------------
    def add_file(self, vs_id, file_id, chunking_strategy=None, attributes=None, batch_id=None) -> dict:
        self.get(vs_id)
        size = self.rt.files.get(file_id)["bytes"]
        vf = {"id": file_id, "object": "vector_store.file", "created_at": now(), "vector_store_id": vs_id,
              "status": "in_progress", "usage_bytes": size, "last_error": None, "attributes": attributes or {},
              "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 800,
                                                                   "chunk_overlap_tokens": 400}},
              "_batch_id": batch_id}
        self.rt.store.insert("vector_store_files", vf)
        timer = threading.Timer(INDEX_DELAY_S, self._finish, (vs_id, file_id))
        timer.daemon = True
        timer.start()
        self.timers.append(timer)
        return _public(vf)

    def _finish(self, vs_id: str, file_id: str) -> None:
        with self.lock:
            vf = self.rt.store.get("vector_store_files", file_id, vector_store_id=vs_id)
            if vf and vf["status"] == "in_progress":
                vf["status"] = "completed"
                self.rt.store.put("vector_store_files", vf, vector_store_id=vs_id)

    def get_file(self, vs_id, file_id) -> dict:
        vf = self.rt.store.get("vector_store_files", file_id, vector_store_id=vs_id)
        if vf is None:
            raise not_found("vector store file", file_id)
        return _public(vf)

    def list_files(self, vs_id, filter=None, limit=20, order="desc", after=None, before=None) -> dict:
        self.get(vs_id)
        page = self.rt.store.page("vector_store_files", limit=limit, order=order, after=after, before=before,
                                  vector_store_id=vs_id, status=filter)
        page["data"] = [_public(v) for v in page["data"]]
        return page

    def delete_file(self, vs_id, file_id) -> dict:
        self.get_file(vs_id, file_id)
        self.rt.store.delete("vector_store_files", file_id, vector_store_id=vs_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    # -- batches -------------------------------------------------------------------------------
    def create_batch(self, vs_id, file_ids, chunking_strategy=None, attributes=None) -> dict:
        self.get(vs_id)
        for file_id in file_ids:
            self.rt.files.get(file_id)
        batch = {"id": new_id("vsfb"), "object": "vector_store.files_batch", "created_at": now(),
                 "vector_store_id": vs_id, "status": "in_progress", "file_counts": _counts([])}
        self.rt.store.insert("file_batches", batch)
        for file_id in file_ids:
            self.add_file(vs_id, file_id, chunking_strategy, attributes, batch_id=batch["id"])
        return self.get_batch(vs_id, batch["id"])

    def get_batch(self, vs_id, batch_id) -> dict:
        batch = self.rt.store.get("file_batches", batch_id, vector_store_id=vs_id)
        if batch is None:
            raise not_found("file batch", batch_id)
        counts = _counts(self.rt.store.all("vector_store_files", batch_id=batch_id))
        batch["file_counts"] = counts
        if batch["status"] == "in_progress" and not counts["in_progress"]:
            batch["status"] = "completed"
        return batch

    def cancel_batch(self, vs_id, batch_id) -> dict:
        batch = self.get_batch(vs_id, batch_id)
        with self.lock:
            for vf in self.rt.store.all("vector_store_files", batch_id=batch_id, status="in_progress"):
                vf["status"] = "cancelled"
                self.rt.store.put("vector_store_files", vf, vector_store_id=vs_id)
            if batch["status"] == "in_progress":
                batch["status"] = "cancelled"
                self.rt.store.put("file_batches", batch)
        return self.get_batch(vs_id, batch_id)

    def list_batch_files(self, vs_id, batch_id, filter=None, limit=20, order="desc", after=None, before=None) -> dict:
        self.get_batch(vs_id, batch_id)
        page = self.rt.store.page("vector_store_files", limit=limit, order=order, after=after, before=before,
                                  batch_id=batch_id, status=filter)
        page["data"] = [_public(v) for v in page["data"]]
        return page

    def wait_idle(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        for timer in list(self.timers):
            timer.join(max(0.0, deadline - time.monotonic()))
        return all(not t.is_alive() for t in self.timers)


def _public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _counts(files: list[dict]) -> dict:
    counts = {s: sum(1 for f in files if f["status"] == s) for s in ("in_progress", "completed", "failed", "cancelled")}
    return {**counts, "total": len(files)}


def install(rt) -> bool:
    """Attach the fakes when the runtime has no real services; True if it did."""
    if rt.files is not None and rt.vector_stores is not None:
        return False
    rt.files = FakeFileService(rt)
    rt.vector_stores = FakeVectorStoreService(rt)
    return True
