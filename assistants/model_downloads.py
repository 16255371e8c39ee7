"""Background downloads of GGUF models into the models folder: one manager per process, seen by every tab.

The models folder is the contract with the model list: a finished download appears there as a complete
`<model id>.gguf` in one rename; a partial one lives under `.downloads/` with a `.part` suffix, so nothing that
cannot load is ever listed. Fetching one file (huggingface_hub, resume, sha256) is `assistants/hub_fetch.py`; this
module runs fetches on threads, keeps their state, and lists and deletes what is downloaded.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process per models folder there
    fcntl = None  # type: ignore[assignment]

from assistants.hub_fetch import (PARTIAL_DIR, Cancelled, DownloadError, FetchJob, check_names, explain, fetch,
                                  human_bytes)
from assistants.model_catalog import model_id_for
from assistants.providers import local
from assistants.providers.worker_client import ModelInUse, workers_stopped

ACTIVE = ("checking", "downloading", "verifying")


@dataclass
class Download:
    """What one download is doing, as shown on the Models page (a copy: never mutated by the caller)."""

    model_id: str
    repo: str
    filename: str
    revision: str = "main"
    state: str = "checking"       # checking | downloading | verifying | done | failed | cancelled
    done_bytes: int = 0
    total_bytes: int | None = None
    speed: float = 0.0            # bytes per second over the last few seconds
    error: str | None = None
    resumable: bool = False       # a failed download whose partial file is kept: Resume continues it
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        """Still working (checking, downloading or verifying)."""
        return self.state in ACTIVE

    @property
    def fraction(self) -> float:
        """How far along, 0..1 (0 while the size is unknown)."""
        return min(1.0, self.done_bytes / self.total_bytes) if self.total_bytes else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Time left at the current speed, or None when it cannot be told."""
        if self.state != "downloading" or not self.total_bytes or self.speed <= 0:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.speed)


@dataclass(frozen=True)
class InstalledModel:
    """A `.gguf` file in the models folder, with what its header says (read by the models folder's own scan)."""

    model_id: str
    path: Path
    size_bytes: int
    modified: float
    context_length: int | None = None
    memory_bytes: int = 0         # what loading it needs, estimated (weights + KV cache + buffers)
    usable: bool = True
    error: str = ""               # why it cannot be used (truncated, corrupt, too big for this machine)


def _disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


class DownloadManager:
    """Every download of one models folder: started, watched, cancelled and deleted from any browser tab."""

    def __init__(self, models_dir: Path, *, free_bytes: Callable[[Path], int] = _disk_free,
                 endpoint: str | None = None, token: str | None = None) -> None:
        self.models_dir = Path(models_dir)
        self._free_bytes = free_bytes    # injectable: tests simulate a nearly full disk
        self._endpoint = endpoint        # None: HF_ENDPOINT (or huggingface.co), read at each download
        self._token = token              # None: HF_TOKEN or the token saved by `hf auth login`
        self._lock = threading.Lock()
        self._downloads: dict[str, Download] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._version = 0                # bumped when a download starts, ends or goes: pages redraw on a change
        self._load_paused()

    # ---- what is there -------------------------------------------------------------------------------------

    @property
    def partial_dir(self) -> Path:
        """Where unfinished downloads live (never scanned for models)."""
        return self.models_dir / PARTIAL_DIR

    def downloads(self) -> list[Download]:
        """Every download this process knows of, newest first (copies)."""
        with self._lock:
            items = [replace(d) for d in self._downloads.values()]
        return sorted(items, key=lambda d: d.started_at, reverse=True)

    def get(self, model_id: str) -> Download | None:
        """One download by model id (a copy), or None."""
        with self._lock:
            d = self._downloads.get(model_id)
            return replace(d) if d else None

    @property
    def version(self) -> int:
        """Changes whenever a download starts, changes state or is forgotten, or a model is deleted."""
        return self._version

    def any_active(self) -> bool:
        """Whether a download is working right now (the page refreshes itself while one is)."""
        with self._lock:
            return any(d.active for d in self._downloads.values())

    def installed(self) -> list[InstalledModel]:
        """The `.gguf` files in the models folder, by name, each with its context length and whether it can run."""
        if not self.models_dir.is_dir():
            return []
        found = []
        for path in sorted(self.models_dir.glob("*.gguf"), key=lambda p: p.name.lower()):
            try:
                st = path.stat()
                info = local.inspect(path)  # the model list's own reading (cached per file version): the two agree
            except OSError:
                continue  # deleted meanwhile
            if path.is_file():
                found.append(InstalledModel(path.stem, path, st.st_size, st.st_mtime, info.context_length,
                                            info.memory_bytes, info.usable, info.error))
        return found

    def free_bytes(self) -> int:
        """Free space where models are stored."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        return self._free_bytes(self.models_dir)

    # ---- actions -------------------------------------------------------------------------------------------

    def start(self, repo: str, filename: str, revision: str = "main") -> Download:
        """Start (or resume) downloading `filename` from the hub repo `repo`; returns at once."""
        repo, filename, revision = repo.strip().strip("/"), filename.strip().lstrip("/"), (revision or "main").strip()
        check_names(repo, filename)
        model_id = model_id_for(filename)
        if (self.models_dir / f"{model_id}.gguf").exists():
            raise DownloadError(f"{model_id} is already in the models folder. Delete it first to download it again.")
        with self._lock:
            current = self._downloads.get(model_id)
            if current and current.active:
                raise DownloadError(f"{model_id} is already downloading.")
            done = current.done_bytes if current and current.resumable and current.repo == repo else 0
            self._downloads[model_id] = Download(model_id, repo, filename, revision, done_bytes=done,
                                                 total_bytes=current.total_bytes if done else None)
            self._cancel[model_id] = cancel = threading.Event()
            thread = threading.Thread(target=self._run, args=(model_id, cancel), daemon=True,
                                      name=f"download-{model_id}")
            self._threads[model_id] = thread
            self._version += 1
        thread.start()
        return self.get(model_id)  # type: ignore[return-value]

    def cancel(self, model_id: str) -> None:
        """Stop a download and remove what it fetched so far."""
        with self._lock:
            event = self._cancel.get(model_id)
            d = self._downloads.get(model_id)
            if event is not None and d is not None and d.active:
                event.set()
                return
        self.discard(model_id)

    def discard(self, model_id: str) -> None:
        """Forget a finished, failed or cancelled download and remove its partial file."""
        d = self.get(model_id)
        if d is not None and d.active:
            raise DownloadError(f"{model_id} is still downloading: cancel it first.")
        thread = self._threads.get(model_id)
        if thread is not None:
            thread.join(5)  # it has reported its end; let it let go of the partial file's lock
        with self._lock:
            self._downloads.pop(model_id, None)
            self._cancel.pop(model_id, None)
            self._version += 1
        if not self._busy_elsewhere(model_id):  # another process's partial file is not ours to remove
            self._remove_partial(model_id)

    def delete(self, model_id: str) -> None:
        """Delete a model from the models folder, stopping its worker process first if one runs in this process."""
        if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
            raise DownloadError(f"“{model_id}” is not a model in the models folder.")
        d = self.get(model_id)
        if d is not None and d.active:
            raise DownloadError(f"{model_id} is still downloading: cancel it instead.")
        path = self.models_dir / f"{model_id}.gguf"
        if not path.is_file():
            raise DownloadError(f"{model_id} is not in the models folder any more.")
        try:
            # The worker goes first (its memory with it; and Windows cannot delete a file a process maps), and none
            # starts again on this file until it is gone.
            with workers_stopped(path):
                path.unlink()
        except FileNotFoundError:
            raise DownloadError(f"{model_id} is not in the models folder any more.") from None
        except ModelInUse as exc:
            raise DownloadError(f"{exc.message} Nothing was deleted.") from None
        with self._lock:
            if model_id in self._downloads and not self._downloads[model_id].active:
                self._downloads.pop(model_id)
            self._version += 1

    def wait(self, model_id: str, timeout: float | None = None) -> Download | None:
        """Block until the download's thread ends (tests and scripts); returns its final state."""
        thread = self._threads.get(model_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(model_id)

    # ---- the download thread -------------------------------------------------------------------------------

    def _update(self, model_id: str, **changes) -> None:
        with self._lock:
            d = self._downloads.get(model_id)
            if d is not None:
                if changes.get("state", d.state) != d.state:
                    self._version += 1
                for key, value in changes.items():
                    setattr(d, key, value)

    def _part(self, model_id: str) -> Path:
        return self.partial_dir / f"{model_id}.gguf.part"

    def _meta(self, model_id: str) -> Path:
        return self.partial_dir / f"{model_id}.json"

    def _remove_partial(self, model_id: str) -> None:
        for path in (self._part(model_id), self._meta(model_id)):
            path.unlink(missing_ok=True)

    def _load_paused(self) -> None:
        """Partial downloads left by an earlier run of the app show up as failed-but-resumable."""
        if not self.partial_dir.is_dir():
            return
        for meta in self.partial_dir.glob("*.json"):
            if self._busy_elsewhere(meta.stem):
                continue  # another process is downloading it right now
            try:
                info = json.loads(meta.read_text())
                model_id = meta.stem
                done = self._part(model_id).stat().st_size
            except (OSError, ValueError):
                continue
            self._downloads[model_id] = Download(
                model_id, info["repo"], info["filename"], info.get("revision", "main"), state="failed",
                done_bytes=done, total_bytes=info.get("size"), resumable=True, started_at=meta.stat().st_mtime,
                error=f"Interrupted after {human_bytes(done)}: the Playground stopped while it was downloading.")

    def _hold(self, model_id: str):
        """Lock the model's partial file against other processes sharing this folder (None: one holds it)."""
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        f = open(self.partial_dir / f"{model_id}.lock", "a+")
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                return None
        return f

    def _busy_elsewhere(self, model_id: str) -> bool:
        if not (self.partial_dir / f"{model_id}.lock").exists():
            return False
        held = self._hold(model_id)
        if held is not None:
            held.close()
        return held is None

    def _run(self, model_id: str, cancel: threading.Event) -> None:
        d = self.get(model_id)
        assert d is not None
        lock = self._hold(model_id)
        if lock is None:
            self._update(model_id, state="failed", resumable=False, finished_at=time.time(), error=(
                f"{model_id} is being downloaded by another Playground process that shares this models folder."))
            return
        try:
            self._run_locked(d, cancel)
        finally:
            if not self._part(model_id).exists():
                # Nothing left to protect: remove the lock file too (while holding it), so the folder ends clean.
                (self.partial_dir / f"{model_id}.lock").unlink(missing_ok=True)
            lock.close()

    def _run_locked(self, d: Download, cancel: threading.Event) -> None:
        model_id = d.model_id
        job = FetchJob(d.repo, d.filename, d.revision, model_id, self.models_dir, self._endpoint, self._token,
                       self.free_bytes, lambda **changes: self._update(model_id, **changes), cancel)
        try:
            target = fetch(job)
            size = target.stat().st_size
            self._update(model_id, state="done", done_bytes=size, total_bytes=size, finished_at=time.time(),
                         error=None, resumable=False)
        except Cancelled:
            self._remove_partial(model_id)
            self._update(model_id, state="cancelled", error=None, resumable=False, speed=0.0,
                         finished_at=time.time())
        except Exception as exc:  # every failure becomes a message on the page
            message, keep = explain(exc, job, self.get(model_id).total_bytes)
            if not keep:
                self._remove_partial(model_id)
            done = self._part(model_id).stat().st_size if keep and self._part(model_id).exists() else 0
            self._update(model_id, state="failed", error=message, resumable=keep, done_bytes=done, speed=0.0,
                         finished_at=time.time())
