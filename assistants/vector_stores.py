"""Vector stores, their files and file batches, indexed in the background into the file-search index."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai

from assistants import validation as v
from assistants.config import Settings
from assistants.errors import BadRequest, NotFound, not_found
from assistants.files import FileService, public
from assistants.ids import new_id, now
from assistants.runs.engine import process_owner
from assistants.store import Store
from assistants.tools.file_search import (
    PARSE_TIMEOUT_S,
    ParseError,
    SearchResult,
    chunk_text,
    extract_text,
    validate_chunking,
)

log = logging.getLogger(__name__)

AUTO_CHUNKING = {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
FILE_STATUSES = ("in_progress", "completed", "failed", "cancelled")
MAX_FILES_PER_REQUEST = 2000
MAX_SEARCH_RESULTS = 50
INDEX_WORKERS = 2
TOUCH_EVERY_S = 60  # last_active_at moves at most once a minute, so searching is not a write each time
THREAD_STORE_DAYS = 7  # OpenAI's policy for the vector store a thread gets from its attachments
_UNSET: Any = object()

NO_KEY = "sk-no-key-configured"  # as the chat provider: never let the SDK fall back to OPENAI_API_KEY


# -- request checks ----------------------------------------------------------------------------
def check_chunking(value: Any, param: str = "chunking_strategy") -> dict:
    """`auto` (800/400) or `static` with valid sizes, as the stored `{"type": "static", "static": {...}}`."""
    if value is None:
        return {"type": "static", "static": dict(AUTO_CHUNKING)}
    if not isinstance(value, dict) or value.get("type") not in ("auto", "static"):
        raise BadRequest(f"{param}.type must be 'auto' or 'static'.", param=f"{param}.type")
    if value["type"] == "auto":
        return {"type": "static", "static": dict(AUTO_CHUNKING)}
    static = value.get("static")
    if not isinstance(static, dict):
        raise BadRequest(f"{param}.static must be an object with max_chunk_size_tokens and chunk_overlap_tokens.",
                         param=f"{param}.static")
    sizes = {}
    for key in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
        n = static.get(key)
        if isinstance(n, bool) or not isinstance(n, int):
            raise BadRequest(f"{param}.static.{key} must be an integer (got {n!r}).", param=f"{param}.static.{key}")
        sizes[key] = n
    try:
        validate_chunking(sizes["max_chunk_size_tokens"], sizes["chunk_overlap_tokens"])
    except ValueError as exc:
        raise BadRequest(f"{param}.static: {exc}.", param=f"{param}.static") from None
    return {"type": "static", "static": sizes}


def check_expires_after(value: Any, param: str = "expires_after") -> dict | None:
    if value is None:
        return None
    days = value.get("days") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("anchor") != "last_active_at":
        raise BadRequest(f"{param}.anchor must be 'last_active_at'.", param=f"{param}.anchor")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 365:
        raise BadRequest(f"{param}.days must be an integer between 1 and 365 (got {days!r}).", param=f"{param}.days")
    return {"anchor": "last_active_at", "days": days}


def check_attributes(value: Any, param: str = "attributes") -> dict | None:
    """At most 16 keys of up to 64 characters; values strings (up to 512), numbers or booleans."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16:
        raise BadRequest(f"{param} must be an object with at most 16 keys.", param=param)
    for key, val in value.items():
        if not isinstance(key, str) or len(key) > 64:
            raise BadRequest(f"{param} keys must be strings of at most 64 characters.", param=param)
        if (isinstance(val, str) and len(val) > 512) or not isinstance(val, (str, int, float, bool)):
            raise BadRequest(f"{param}['{key}'] must be a string of at most 512 characters, a number or a boolean.",
                             param=param)
    return dict(value)


def _file_ids(value: Any, param: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BadRequest(f"{param} must be a list of file ids.", param=param)
    if len(value) > MAX_FILES_PER_REQUEST:
        raise BadRequest(f"{param} can hold at most {MAX_FILES_PER_REQUEST} files (got {len(value)}).", param=param)
    return list(dict.fromkeys(value))


def _status_filter(value: Any) -> str | None:
    if value is None or value in FILE_STATUSES:
        return value
    raise BadRequest(f"filter must be one of {', '.join(FILE_STATUSES)} (got {value!r}).", param="filter")


def matches(attrs: dict, flt: dict) -> bool:
    """Whether a file's attributes pass a search filter (comparison or compound, as OpenAI's)."""
    kind = flt.get("type")
    if kind in ("and", "or"):
        parts = [matches(attrs, f) for f in flt.get("filters") or []]
        return all(parts) if kind == "and" else any(parts)
    if "key" not in flt:
        return False
    have, want = attrs.get(flt["key"]), flt.get("value")
    try:
        if kind == "eq":
            return have == want
        if kind == "ne":
            return have != want
        if kind == "in":
            return have in want
        if kind == "nin":
            return have not in want
        if have is None:
            return False
        return {"gt": have > want, "gte": have >= want, "lt": have < want, "lte": have <= want}[kind]
    except (TypeError, KeyError):
        return False


def _check_filter(flt: Any, param: str = "filters") -> None:
    if not isinstance(flt, dict):
        raise BadRequest(f"{param} must be a comparison or compound filter object.", param=param)
    kind = flt.get("type")
    if kind in ("and", "or"):
        if not isinstance(flt.get("filters"), list):
            raise BadRequest(f"{param}.filters must be a list of filters.", param=f"{param}.filters")
        for i, f in enumerate(flt["filters"]):
            _check_filter(f, f"{param}.filters[{i}]")
        return
    if kind not in ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin") or not isinstance(flt.get("key"), str):
        raise BadRequest(f"{param} must have a key and a type of eq, ne, gt, gte, lt, lte, in, nin, and or or.",
                         param=param)
    if kind in ("in", "nin") and not isinstance(flt.get("value"), list):
        raise BadRequest(f"{param}.value must be a list for '{kind}'.", param=f"{param}.value")


# -- embeddings -------------------------------------------------------------------------------
class EmbeddingError(Exception):
    """No configured backend produced embeddings; the message says why."""


class Embedder:
    """Embeddings of `settings.embedding_model` from the first backend that serves /v1/embeddings."""

    BATCH = 64
    RETRY_AFTER_S = 30.0  # after a failure, skip embeddings for a while instead of waiting on a dead server each time

    def __init__(self, settings: Callable[[], Settings], *, http_client=None):
        self._settings = settings
        self._http_client = http_client
        self._clients: dict[tuple, openai.OpenAI] = {}
        self._working: str | None = None
        self._down_until = 0.0
        self._down_reason = ""
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        return (self._settings().embedding_model or "").strip()

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    def _client(self, backend) -> openai.OpenAI:
        key = (backend.name, backend.base_url, backend.api_key)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                timeout = min(self._settings().model_timeout_s, 30.0)
                client = openai.OpenAI(api_key=backend.api_key or NO_KEY, base_url=backend.base_url, timeout=timeout,
                                       max_retries=0, http_client=self._http_client)
                self._clients[key] = client
            return client

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text; raises EmbeddingError when no backend can embed (the caller falls back)."""
        model = self.model
        if not model:
            raise EmbeddingError("no embedding model configured (PLAYGROUND_EMBEDDING_MODEL)")
        if time.monotonic() < self._down_until:
            raise EmbeddingError(self._down_reason)
        backends = self._settings().all_backends()
        if not backends:
            raise EmbeddingError("no OpenAI-compatible backend is configured to serve embeddings")
        backends.sort(key=lambda b: b.name != self._working)  # the one that worked last time first
        reasons = []
        for backend in backends:
            try:
                vectors = self._embed_with(backend, model, texts)
            except (openai.OpenAIError, ValueError, TypeError, KeyError) as exc:
                reasons.append(f"{backend.name}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            self._working = backend.name
            return vectors
        reason = f"embedding model '{model}' unavailable (" + "; ".join(reasons) + ")"
        self._down_until = time.monotonic() + self.RETRY_AFTER_S
        self._down_reason = reason
        raise EmbeddingError(reason)

    def _embed_with(self, backend, model: str, texts: list[str]) -> list[list[float]]:
        client = self._client(backend)
        out: list[list[float]] = []
        for start in range(0, len(texts), self.BATCH):
            batch = texts[start:start + self.BATCH]
            response = client.embeddings.create(model=model, input=batch)
            data = sorted(response.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise ValueError(f"asked for {len(batch)} embeddings, got {len(data)}")
            out.extend(list(map(float, d.embedding)) for d in data)
        if len({len(e) for e in out}) > 1:
            raise ValueError("embeddings of different lengths in one file")
        return out


def _error_code(reason: str) -> str:
    """OpenAI's last_error code for a parse failure: the type is not readable, or this file is broken."""
    low = reason.lower()
    return "unsupported_file" if low.startswith("unsupported") or "binary" in low else "invalid_file"


class VectorStoreService:
    """Vector stores in OpenAI's wire shape; files are parsed, chunked and indexed by a small worker pool."""

    def __init__(self, store: Store, files: FileService, settings: Settings | Callable[[], Settings], *,
                 workers: int = INDEX_WORKERS, embedder: Embedder | None = None,
                 parse_timeout_s: float = PARSE_TIMEOUT_S, lease_s: float | None = None):
        self.store = store
        self.files = files
        # Wall-clock limit for reading one PDF or DOCX (in a child process): a file that takes
        # longer fails with that reason and frees its worker for the rest of the batch.
        self.parse_timeout_s = parse_timeout_s
        settings_fn = settings if callable(settings) else (lambda: settings)
        # How long this process's claim on a file being indexed lasts unless renewed (the runs' lease setting).
        self.lease_s = settings_fn().run_lease_s if lease_s is None else lease_s
        self.embedder = embedder or Embedder(settings_fn)
        self.owner = process_owner()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vs-index")
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._renewer: threading.Thread | None = None
        files.on_delete.append(self.forget_file)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> int:
        """Take over files left `in_progress` by a process that died (or a service that closed); return how many."""
        taken = self._take_over()
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_loop, name="vs-lease", daemon=True)
            self._renewer.start()
        return taken

    def _take_over(self) -> int:
        """Queue here the files whose indexing lease ran out (the process indexing them stopped)."""
        jobs = []
        at = time.time()
        with self.store.write():
            for row in self.store.all("vector_store_files", status="in_progress"):
                if row.get("_owner") and (row.get("_lease_until") or 0) >= at:
                    continue  # a live lease, ours or a neighbour's (whatever its uid or container)
                jobs.append(self._claim(row))
                self.store.put("vector_store_files", row, vector_store_id=row["vector_store_id"])
        self._queue(jobs)
        return len(jobs)

    def _renew_loop(self) -> None:
        """Renew this process's indexing leases; take over files whose lease lapsed elsewhere."""
        while not self._closed:
            time.sleep(self.lease_s / 4)
            if self._closed:
                return
            try:
                self.store.renew_json_leases("vector_store_files", self.owner, time.time() + self.lease_s)
                self._take_over()
            except Exception:  # a locked or closed database: try at the next round
                log.debug("indexing lease renewal failed", exc_info=True)

    def close(self) -> None:
        """Stop the workers (the file being indexed finishes); queued files are released for the next start."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        try:
            with self.store.write():
                for row in self.store.all("vector_store_files", status="in_progress"):
                    if row.get("_owner") == self.owner:
                        row["_owner"] = None
                        self.store.put("vector_store_files", row, vector_store_id=row["vector_store_id"])
        except Exception:  # closing must not fail because the database is already gone
            log.debug("could not release queued vector store files", exc_info=True)
        with self._idle:
            self._pending = 0
            self._idle.notify_all()

    def wait_idle(self, timeout: float = 30) -> bool:
        """Block until no file is queued or being indexed in this process; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    # -- vector stores -----------------------------------------------------------------------
    def _get(self, vs_id: Any) -> dict:
        obj = self.store.get("vector_stores", vs_id) if isinstance(vs_id, str) else None
        if obj is None:
            raise not_found("vector store", str(vs_id))
        return obj

    @staticmethod
    def _view(obj: dict) -> dict:
        out = public(obj)
        if out.get("expires_at") and out["expires_at"] <= now():
            out["status"] = "expired"
        return out

    def create(self, name: str | None = None, file_ids: list[str] | None = None, expires_after: dict | None = None,
               chunking_strategy: dict | None = None, metadata: dict | None = None,
               description: str | None = None) -> dict:
        """A new vector store; its files start indexing in the background."""
        name = v.string(name, "name", 256) or ""
        ids = _file_ids(file_ids, "file_ids")
        chunking = check_chunking(chunking_strategy)
        expiry = check_expires_after(expires_after)
        md = v.metadata(metadata)
        ts = now()
        obj = {"id": new_id("vs"), "object": "vector_store", "created_at": ts, "name": name,
               "usage_bytes": 0, "file_counts": _counts({}), "status": "completed", "last_active_at": ts,
               "metadata": md, "expires_after": expiry, "expires_at": _expiry_time(expiry, ts)}
        if description is not None:
            obj["description"] = v.string(description, "description", 512)
        self._require_files(ids, "file_ids")
        with self.store.write():
            self.store.insert("vector_stores", obj)
            jobs = [self._attach(obj["id"], fid, chunking, None, None) for fid in ids]
            obj = self._refresh(obj["id"])
        self._queue(jobs)
        return self._view(obj)

    def get(self, vs_id: str) -> dict:
        return self._view(self._get(vs_id))

    def update(self, vs_id: str, name: str | None = _UNSET, expires_after: dict | None = _UNSET,
               metadata: dict | None = _UNSET) -> dict:
        """Change name, expiry policy (None removes it) or metadata (None clears it); omitted fields stay."""
        changes: dict = {}
        if name is not _UNSET and name is not None:
            changes["name"] = v.string(name, "name", 256)
        if metadata is not _UNSET:
            changes["metadata"] = v.metadata(metadata)
        if expires_after is not _UNSET:
            changes["expires_after"] = check_expires_after(expires_after)
        with self.store.write():
            obj = self._get(vs_id)
            obj.update(changes)
            if "expires_after" in changes:
                # A new policy counts from now, so an expired store can be brought back.
                obj["last_active_at"] = now()
                obj["expires_at"] = _expiry_time(obj["expires_after"], obj["last_active_at"])
            self.store.put("vector_stores", obj)
        return self._view(obj)

    def delete(self, vs_id: str) -> dict:
        """Delete the store, its file links, batches and index; the files themselves stay."""
        with self.store.write():
            self._get(vs_id)
            self.store.delete_chunks(vs_id)
            self.store.delete("vector_store_files", vector_store_id=vs_id)
            self.store.delete("file_batches", vector_store_id=vs_id)
            self.store.delete("vector_stores", vs_id)
        return {"id": vs_id, "object": "vector_store.deleted", "deleted": True}

    def list(self, limit: int = 20, order: str = "desc", after: str | None = None, before: str | None = None) -> dict:
        page = self.store.page("vector_stores", limit=limit, order=order, after=after, before=before)
        page["data"] = [self._view(o) for o in page["data"]]
        return page

    # -- searching ---------------------------------------------------------------------------
    def search(self, vs_id: str, query: str | list[str], max_num_results: int = 10, ranking_options: dict | None = None,
               filters: dict | None = None, rewrite_query: bool = False) -> dict:
        """Search one store (rewrite_query is accepted and ignored: the query is used as given)."""
        queries = [query] if isinstance(query, str) else query
        if not isinstance(queries, list) or not queries or not all(isinstance(q, str) for q in queries) \
                or not " ".join(queries).strip():
            raise BadRequest("query must be a non-empty string or list of strings.", param="query")
        if isinstance(max_num_results, bool) or not isinstance(max_num_results, int) \
                or not 1 <= max_num_results <= MAX_SEARCH_RESULTS:
            raise BadRequest(f"max_num_results must be an integer between 1 and {MAX_SEARCH_RESULTS}.",
                             param="max_num_results")
        threshold = 0.0
        if ranking_options is not None:
            if not isinstance(ranking_options, dict):
                raise BadRequest("ranking_options must be an object.", param="ranking_options")
            if ranking_options.get("ranker", "auto") not in ("auto", "none", "default-2024-11-15"):
                raise BadRequest("ranking_options.ranker must be 'auto', 'none' or 'default-2024-11-15'.",
                                 param="ranking_options.ranker")
            threshold = v.number(ranking_options.get("score_threshold"), "ranking_options.score_threshold", 0, 1) or 0.0
        if filters is not None:
            _check_filter(filters)
        obj = self.get(vs_id)
        if obj["status"] == "expired":
            raise BadRequest(f"Vector store '{vs_id}' expired; set a new expires_after on it to use it again.",
                             param="vector_store_id", code="vector_store_expired")
        text = " ".join(queries)
        found = self.search_stores([vs_id], text, max_num_results=MAX_SEARCH_RESULTS if filters else max_num_results,
                                   score_threshold=threshold)
        attrs = self._attributes(vs_id, {r.file_id for r in found})
        if filters is not None:
            found = [r for r in found if matches(attrs.get(r.file_id) or {}, filters)][:max_num_results]
        data = [{"file_id": r.file_id, "filename": r.filename, "score": r.score, "attributes": attrs.get(r.file_id) or {},
                 "content": [{"type": "text", "text": r.text}]} for r in found]
        return {"object": "vector_store.search_results.page", "search_query": queries, "data": data,
                "has_more": False, "next_page": None}

    def search_stores(self, vs_ids: list[str], query: str, *, max_num_results: int = 20,
                      score_threshold: float = 0.0) -> list[SearchResult]:
        """Best chunks across stores (keyword ranking, fused with embeddings when configured); marks them active."""
        vector = None
        if self.embedder.enabled:
            try:
                vector = self.embedder.embed([query])[0]
            except EmbeddingError as exc:
                log.warning("file search falls back to keyword ranking: %s", exc)
        results = self.store.search_chunks(vs_ids, query, max_num_results=max_num_results,
                         score_threshold=score_threshold, query_embedding=vector)
        self.touch(vs_ids)
        return results

    def touch(self, vs_ids: list[str]) -> None:
        """Record use (last_active_at, and so expires_at) at most once a minute per store."""
        ts = now()
        stale = [o for o in (self.store.get("vector_stores", i) for i in vs_ids)
                 if o is not None and ts - (o.get("last_active_at") or 0) >= TOUCH_EVERY_S]
        if not stale:
            return
        with self.store.write():
            for vs_id in (o["id"] for o in stale):
                obj = self.store.get("vector_stores", vs_id)
                if obj is None or (obj.get("expires_at") and obj["expires_at"] <= ts):
                    continue  # an expired store stays expired until its policy is changed
                obj["last_active_at"] = ts
                obj["expires_at"] = _expiry_time(obj.get("expires_after"), ts)
                self.store.put("vector_stores", obj)

    def _attributes(self, vs_id: str, file_ids: set[str]) -> dict[str, dict | None]:
        out = {}
        for fid in file_ids:
            row = self.store.get("vector_store_files", fid, vector_store_id=vs_id)
            out[fid] = row.get("attributes") if row else None
        return out

    # -- files of a store --------------------------------------------------------------------
    def add_file(self, vs_id: str, file_id: str, chunking_strategy: dict | None = None,
                 attributes: dict | None = None) -> dict:
        """Add a file (indexed in the background); adding one already there with the same settings is a no-op."""
        chunking = check_chunking(chunking_strategy)
        attrs = check_attributes(attributes)
        self._get(vs_id)
        self._require_files([file_id], "file_id")
        with self.store.write():
            current = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
            if current and current["status"] in ("in_progress", "completed") and attrs is None \
                    and current.get("chunking_strategy") == chunking:
                return public(current)
            job = self._attach(vs_id, file_id, chunking, attrs, None)
            self._refresh(vs_id)
        self._queue([job])
        return self.get_file(vs_id, file_id)

    def get_file(self, vs_id: str, file_id: str) -> dict:
        self._get(vs_id)
        row = self.store.get("vector_store_files", file_id, vector_store_id=vs_id) if isinstance(file_id, str) else None
        if row is None:
            raise NotFound(f"No file '{file_id}' in vector store '{vs_id}'.", param="file_id", code="not_found")
        return public(row)

    def update_file(self, vs_id: str, file_id: str, attributes: dict | None = None) -> dict:
        """Replace a store file's attributes (used by search filters)."""
        attrs = check_attributes(attributes)
        with self.store.write():
            self.get_file(vs_id, file_id)
            row = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
            row["attributes"] = attrs or {}
            self.store.put("vector_store_files", row, vector_store_id=vs_id)
        return public(row)

    def list_files(self, vs_id: str, filter: str | None = None, limit: int = 20, order: str = "desc",
                   after: str | None = None, before: str | None = None) -> dict:
        self._get(vs_id)
        page = self.store.page("vector_store_files", limit=limit, order=order, after=after, before=before,
                               vector_store_id=vs_id, status=_status_filter(filter))
        page["data"] = [public(r) for r in page["data"]]
        return page

    def delete_file(self, vs_id: str, file_id: str) -> dict:
        """Take a file out of a store and its index (the file itself stays)."""
        with self.store.write():
            self.get_file(vs_id, file_id)
            self._remove(vs_id, file_id)
        return {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}

    def forget_file(self, file_id: str) -> None:
        """A file is being deleted: remove it from every store and the index (joins the caller's transaction)."""
        with self.store.write():
            for row in self.store.all("vector_store_files", id=file_id):
                self._remove(row["vector_store_id"], file_id)

    def _remove(self, vs_id: str, file_id: str) -> None:
        row = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
        self.store.delete_chunks(vs_id, file_id)
        self.store.delete("vector_store_files", file_id, vector_store_id=vs_id)
        self._refresh(vs_id)
        if row and row.get("_batch_id"):
            self._refresh_batch(vs_id, row["_batch_id"])

    # -- batches -----------------------------------------------------------------------------
    def create_batch(self, vs_id: str, file_ids: list[str] | None = None, chunking_strategy: dict | None = None,
                     attributes: dict | None = None, files: list[dict] | None = None) -> dict:
        """Add many files at once; `files` ([{file_id, attributes, chunking_strategy}]) sets them per file."""
        if file_ids is not None and files is not None:
            raise BadRequest("Give file_ids or files, not both.", param="files")
        specs: list[tuple[str, dict, dict | None]] = []
        if files is not None:
            if not isinstance(files, list) or len(files) > MAX_FILES_PER_REQUEST:
                raise BadRequest(f"files must be a list of at most {MAX_FILES_PER_REQUEST} objects.", param="files")
            for i, item in enumerate(files):
                if not isinstance(item, dict) or not isinstance(item.get("file_id"), str):
                    raise BadRequest(f"files[{i}].file_id must be a file id.", param=f"files[{i}].file_id")
                specs.append((item["file_id"], check_chunking(item.get("chunking_strategy"), f"files[{i}].chunking_strategy"),
                              check_attributes(item.get("attributes"), f"files[{i}].attributes")))
        else:
            chunking = check_chunking(chunking_strategy)
            attrs = check_attributes(attributes)
            specs = [(fid, chunking, attrs) for fid in _file_ids(file_ids, "file_ids")]
        if not specs:
            raise BadRequest("A batch needs at least one file in file_ids or files.", param="file_ids")
        self._get(vs_id)
        self._require_files([s[0] for s in specs], "file_ids")
        batch = {"id": new_id("vsfb"), "object": "vector_store.files_batch", "created_at": now(),
                 "vector_store_id": vs_id, "status": "in_progress", "file_counts": _counts({})}
        with self.store.write():
            self.store.insert("file_batches", batch)
            jobs = [self._attach(vs_id, fid, chunking, attrs, batch["id"]) for fid, chunking, attrs in specs]
            self._refresh(vs_id)
            batch = self._refresh_batch(vs_id, batch["id"])
        self._queue(jobs)
        return public(batch)

    def get_batch(self, vs_id: str, batch_id: str) -> dict:
        batch = self.store.get("file_batches", batch_id, vector_store_id=vs_id) if isinstance(batch_id, str) else None
        if batch is None:
            self._get(vs_id)
            raise NotFound(f"No file batch '{batch_id}' in vector store '{vs_id}'.", param="batch_id", code="not_found")
        return public(batch)

    def cancel_batch(self, vs_id: str, batch_id: str) -> dict:
        """Stop a batch: its files not yet indexed end `cancelled` (a file mid-indexing is discarded)."""
        with self.store.write():
            batch = self.get_batch(vs_id, batch_id)
            if batch["status"] != "in_progress":
                raise BadRequest(f"Cannot cancel a file batch with status '{batch['status']}'.", param="batch_id")
            ts = now()
            for row in self.store.all("vector_store_files", vector_store_id=vs_id, batch_id=batch_id,
                                      status="in_progress"):
                row.update(status="cancelled", _job=None)
                row["last_error"] = None
                self.store.put("vector_store_files", row, vector_store_id=vs_id)
                self.store.delete_chunks(vs_id, row["id"])
            batch.update(status="cancelled", cancelled_at=ts)
            self.store.put("file_batches", batch, vector_store_id=vs_id)
            self._refresh(vs_id)
            batch = self._refresh_batch(vs_id, batch_id)
        return public(batch)

    def list_batch_files(self, vs_id: str, batch_id: str, filter: str | None = None, limit: int = 20,
                         order: str = "desc", after: str | None = None, before: str | None = None) -> dict:
        self.get_batch(vs_id, batch_id)
        page = self.store.page("vector_store_files", limit=limit, order=order, after=after, before=before,
                               vector_store_id=vs_id, batch_id=batch_id, status=_status_filter(filter))
        page["data"] = [public(r) for r in page["data"]]
        return page

    # -- message attachments -----------------------------------------------------------------
    def attach_message(self, thread: dict, message: dict) -> None:
        """A message's file_search attachments go into the thread's vector store, created (7-day expiry) if needed."""
        file_ids = [a["file_id"] for a in message.get("attachments") or []
                    if any(t.get("type") == "file_search" for t in a.get("tools") or [])]
        file_ids = [f for f in dict.fromkeys(file_ids) if self.store.get("files", f) is not None]
        if not file_ids:
            return
        chunking = check_chunking(None)
        with self.store.write():
            current = self.store.get("threads", thread["id"])
            if current is None:
                return
            resources = current.get("tool_resources") or {}
            fs = resources.get("file_search") or {}
            existing = [i for i in fs.get("vector_store_ids", []) if self.store.get("vector_stores", i) is not None]
            if existing:
                vs_id = existing[0]
            else:
                ts = now()
                expiry = {"anchor": "last_active_at", "days": THREAD_STORE_DAYS}
                vs_id = new_id("vs")
                self.store.insert("vector_stores", {
                    "id": vs_id, "object": "vector_store", "created_at": ts, "name": f"Files attached to {thread['id']}",
                    "usage_bytes": 0, "file_counts": _counts({}), "status": "completed", "last_active_at": ts,
                    "metadata": {"thread_id": thread["id"]}, "expires_after": expiry,
                    "expires_at": _expiry_time(expiry, ts)})
                fs["vector_store_ids"] = [vs_id]
                resources["file_search"] = fs
                current["tool_resources"] = resources
                self.store.put("threads", current)
            jobs = []
            for fid in file_ids:
                row = self.store.get("vector_store_files", fid, vector_store_id=vs_id)
                if row is None or row["status"] in ("failed", "cancelled"):
                    jobs.append(self._attach(vs_id, fid, chunking, None, None))
            self._refresh(vs_id)
        self._queue(jobs)

    # -- bookkeeping -------------------------------------------------------------------------
    def _require_files(self, file_ids: list[str], param: str) -> None:
        missing = [f for f in file_ids if self.store.get("files", f) is None]
        if missing:
            raise BadRequest(f"No such file: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. "
                             "Upload it first (purpose 'assistants').", param=param)

    def _attach(self, vs_id: str, file_id: str, chunking: dict, attrs: dict | None, batch_id: str | None) -> tuple:
        """Link a file to a store as `in_progress` (inside the caller's transaction); returns the job to queue."""
        old = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
        row = {"id": file_id, "object": "vector_store.file", "created_at": now(), "vector_store_id": vs_id,
               "status": "in_progress", "last_error": None, "usage_bytes": 0, "chunking_strategy": chunking,
               "attributes": attrs or {}, "_batch_id": batch_id}
        if old is not None:
            row["created_at"] = old["created_at"]
            if attrs is None:
                row["attributes"] = old.get("attributes") or {}
        job = self._claim(row)
        if old is None:
            self.store.insert("vector_store_files", row)
        else:
            self.store.put("vector_store_files", row, vector_store_id=vs_id)
            if old.get("_batch_id") and old["_batch_id"] != batch_id:
                self._refresh_batch(vs_id, old["_batch_id"])
        return job

    def _claim(self, row: dict) -> tuple[str, str, str]:
        """Mark a row as this process's work with a fresh job token (an older job for it then discards its result)."""
        row["_owner"] = self.owner
        row["_lease_until"] = time.time() + self.lease_s
        row["_job"] = new_id("job")
        return row["vector_store_id"], row["id"], row["_job"]

    def _refresh(self, vs_id: str) -> dict | None:
        """Recompute a store's file_counts, usage_bytes and status (inside the caller's transaction)."""
        obj = self.store.get("vector_stores", vs_id)
        if obj is None:
            return None
        counts = {s: self.store.count("vector_store_files", vector_store_id=vs_id, status=s) for s in FILE_STATUSES}
        obj.update(file_counts=_counts(counts), usage_bytes=self.store.chunk_usage_bytes(vs_id),
                   status="in_progress" if counts["in_progress"] else "completed")
        self.store.put("vector_stores", obj)
        return obj

    def _refresh_batch(self, vs_id: str, batch_id: str) -> dict | None:
        batch = self.store.get("file_batches", batch_id, vector_store_id=vs_id)
        if batch is None:
            return None
        counts = {s: self.store.count("vector_store_files", vector_store_id=vs_id, batch_id=batch_id, status=s)
                  for s in FILE_STATUSES}
        batch["file_counts"] = _counts(counts)
        if batch["status"] != "cancelled":
            batch["status"] = "in_progress" if counts["in_progress"] else "completed"
        self.store.put("file_batches", batch, vector_store_id=vs_id)
        return batch

    # -- the workers -------------------------------------------------------------------------
    def _queue(self, jobs: list[tuple[str, str, str]]) -> None:
        if not jobs or self._closed:
            return  # a closed service leaves them in_progress for the next start to take over
        with self._idle:
            self._pending += len(jobs)
        for job in jobs:
            try:
                self._pool.submit(self._index_safely, *job)
            except RuntimeError:  # closed meanwhile
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _index_safely(self, vs_id: str, file_id: str, job: str) -> None:
        try:
            self._index(vs_id, file_id, job)
        except Exception as exc:  # one broken file must never stop the others
            log.exception("indexing %s into %s failed", file_id, vs_id)
            try:
                self._finish(vs_id, file_id, job, error=("server_error", f"Indexing failed: {type(exc).__name__}: {exc}"))
            except Exception:
                log.exception("could not record the failure of %s", file_id)
        finally:
            with self._idle:
                self._pending = max(0, self._pending - 1)
                self._idle.notify_all()

    def _index(self, vs_id: str, file_id: str, job: str) -> None:
        """Parse, chunk, embed (optional) and store one file's chunks; parse errors fail only this file."""
        row = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
        if self._closed or row is None or row["status"] != "in_progress" or row.get("_job") != job:
            return
        meta = self.store.get("files", file_id)
        if meta is None:
            self._finish(vs_id, file_id, job, error=("invalid_file", f"File {file_id} was deleted."))
            return
        name = meta["filename"]
        try:
            with self.files.local_path(file_id) as path:  # a private copy when the bytes are in PostgreSQL
                data = path.read_bytes()
        except (NotFound, OSError) as exc:
            message = exc.message if isinstance(exc, NotFound) else str(exc)
            self._finish(vs_id, file_id, job, error=("invalid_file", f"{name}: cannot read its content ({message})"))
            return
        try:
            text = extract_text(name, data, timeout_s=self.parse_timeout_s)
        except ParseError as exc:
            self._finish(vs_id, file_id, job, error=(_error_code(str(exc)), f"{name}: {exc}"))
            return
        sizes = (row.get("chunking_strategy") or {}).get("static") or AUTO_CHUNKING
        chunks = chunk_text(text, sizes["max_chunk_size_tokens"], sizes["chunk_overlap_tokens"])
        if not chunks:
            self._finish(vs_id, file_id, job, error=("invalid_file", f"{name}: no text found"))
            return
        embeddings, note = self._embed(chunks)
        usage = sum(len(c.encode()) for c in chunks) + sum(4 * len(e) for e in embeddings or [])
        self._finish(vs_id, file_id, job, chunks=chunks, embeddings=embeddings, usage=usage, name=name, note=note)

    def _embed(self, chunks: list[str]) -> tuple[list[list[float]] | None, str | None]:
        """Chunk embeddings when configured; a failing backend leaves the file keyword-searchable only."""
        if not self.embedder.enabled:
            return None, None
        try:
            return self.embedder.embed(chunks), None
        except EmbeddingError as exc:
            log.warning("indexing without embeddings: %s", exc)
            return None, f"indexed for keyword search only: {exc}"

    def _finish(self, vs_id: str, file_id: str, job: str, *, error: tuple[str, str] | None = None,
                chunks: list[str] | None = None, embeddings=None, usage: int = 0, name: str = "",
                note: str | None = None) -> None:
        """Record a file's outcome, unless it was cancelled, removed or re-queued meanwhile."""
        with self.store.write():
            row = self.store.get("vector_store_files", file_id, vector_store_id=vs_id)
            if row is None or row["status"] != "in_progress" or row.get("_job") != job:
                return
            if error is None and self.store.get("files", file_id) is None:
                error = ("invalid_file", "The file was deleted while it was being indexed.")
            if error is None:
                self.store.index_chunks(vs_id, file_id, name, chunks, embeddings)
                row.update(status="completed", usage_bytes=usage, last_error=None)
            else:
                self.store.delete_chunks(vs_id, file_id)
                row.update(status="failed", usage_bytes=0, last_error={"code": error[0], "message": error[1]})
            row["_note"] = note
            row["_job"] = None
            self.store.put("vector_store_files", row, vector_store_id=vs_id)
            self._refresh(vs_id)
            if row.get("_batch_id"):
                self._refresh_batch(vs_id, row["_batch_id"])


# -- small helpers -----------------------------------------------------------------------------
def _expiry_time(policy: dict | None, anchor: int) -> int | None:
    return anchor + policy["days"] * 86_400 if policy else None


def _counts(counts: dict) -> dict:
    out = {s: int(counts.get(s, 0)) for s in FILE_STATUSES}
    out["total"] = sum(out.values())
    return out
