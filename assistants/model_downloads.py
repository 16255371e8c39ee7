"""Download GGUF models from the Hugging Face hub into the models folder, in the background, one manager per process.

The models folder is the contract with the model list: a finished download appears there as a complete
`<model id>.gguf` in one rename; a partial one lives under `.downloads/` with a `.part` suffix, so nothing that
cannot load is ever listed. Downloads go through huggingface_hub (HF_ENDPOINT and HF_TOKEN honoured at call time),
resume from the partial file, and are checked against the sha256 the hub reports before they land.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one process per models folder there
    fcntl = None  # type: ignore[assignment]

from assistants.model_catalog import model_id_for

PARTIAL_DIR = ".downloads"     # inside the models folder: same filesystem, so the final rename is atomic
DISK_RESERVE = 50 * 1000**2    # left free after a download, so the disk is never filled to the last byte
_HASH_CHUNK = 4 * 1024 * 1024
_SPEED_WINDOW = 5.0            # seconds of history behind the speed shown

ACTIVE = ("checking", "downloading", "verifying")


class DownloadError(Exception):
    """A download that cannot start or finish, with a message for a person."""

    def __init__(self, message: str, *, keep_partial: bool = False) -> None:
        super().__init__(message)
        self.keep_partial = keep_partial  # the partial file stays for Resume


class _Cancelled(Exception):
    """Raised inside the download thread when the user pressed Cancel."""


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
    """A `.gguf` file in the models folder."""

    model_id: str
    path: Path
    size_bytes: int
    modified: float


def human_bytes(n: float | None) -> str:
    """1234567890 -> '1.23 GB' (decimal units, as the hub and disk tools show them)."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.2f} {unit}" if n < 10 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


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
        """The complete `.gguf` files in the models folder, by name."""
        if not self.models_dir.is_dir():
            return []
        found = []
        for path in sorted(self.models_dir.glob("*.gguf"), key=lambda p: p.name.lower()):
            try:
                st = path.stat()
            except OSError:
                continue  # deleted meanwhile
            if path.is_file():
                found.append(InstalledModel(path.stem, path, st.st_size, st.st_mtime))
        return found

    def free_bytes(self) -> int:
        """Free space where models are stored."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        return self._free_bytes(self.models_dir)

    # ---- actions -------------------------------------------------------------------------------------------

    def start(self, repo: str, filename: str, revision: str = "main") -> Download:
        """Start (or resume) downloading `filename` from the hub repo `repo`; returns at once."""
        repo, filename, revision = repo.strip().strip("/"), filename.strip().lstrip("/"), (revision or "main").strip()
        _check_names(repo, filename)
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
        if self._busy_elsewhere(model_id):
            raise DownloadError(f"{model_id} is being downloaded by another Playground process.")
        with self._lock:
            self._downloads.pop(model_id, None)
            self._cancel.pop(model_id, None)
            self._version += 1
        self._remove_partial(model_id)

    def delete(self, model_id: str) -> None:
        """Delete a downloaded model from the models folder."""
        if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
            raise DownloadError(f"“{model_id}” is not a model in the models folder.")
        d = self.get(model_id)
        if d is not None and d.active:
            raise DownloadError(f"{model_id} is still downloading: cancel it instead.")
        path = self.models_dir / f"{model_id}.gguf"
        try:
            path.unlink()
        except FileNotFoundError:
            raise DownloadError(f"{model_id} is not in the models folder any more.") from None
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
        try:
            self._download(d, cancel)
        except _Cancelled:
            self._remove_partial(model_id)
            self._update(model_id, state="cancelled", error=None, resumable=False, speed=0.0,
                         finished_at=time.time())
        except Exception as exc:  # every failure becomes a message on the page
            message, keep = _explain(exc, d, self)
            if not keep:
                self._remove_partial(model_id)
            done = self._part(model_id).stat().st_size if keep and self._part(model_id).exists() else 0
            self._update(model_id, state="failed", error=message, resumable=keep, done_bytes=done, speed=0.0,
                         finished_at=time.time())

    def _download(self, d: Download, cancel: threading.Event) -> None:
        from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        endpoint = (self._endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        token = self._token or None
        info = HfApi(endpoint=endpoint).model_info(d.repo, revision=d.revision, files_metadata=True, token=token)
        sibling = next((s for s in info.siblings or [] if s.rfilename == d.filename), None)
        if sibling is None:
            ggufs = sorted(s.rfilename for s in info.siblings or [] if s.rfilename.lower().endswith(".gguf"))
            hint = f" Its GGUF files: {', '.join(ggufs[:8])}{' …' if len(ggufs) > 8 else ''}." if ggufs else \
                " It has no GGUF files at all."
            raise DownloadError(f"The repository {d.repo} has no file “{d.filename}”.{hint}")
        sha256 = (sibling.lfs.sha256 if sibling.lfs else None)
        size = (sibling.lfs.size if sibling.lfs else None) or sibling.size
        commit = info.sha or d.revision
        if cancel.is_set():
            raise _Cancelled

        # Resume only a partial file of this very file (same sha256); anything else starts over.
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        part, meta = self._part(d.model_id), self._meta(d.model_id)
        resume = 0
        try:
            old = json.loads(meta.read_text())
            if old.get("repo") == d.repo and old.get("filename") == d.filename and old.get("sha256") == sha256:
                resume = part.stat().st_size
        except (OSError, ValueError):
            pass
        if size is not None and resume > size:
            resume = 0
        if not resume:
            part.unlink(missing_ok=True)
        meta.write_text(json.dumps({"repo": d.repo, "filename": d.filename, "revision": d.revision,
                                    "commit": commit, "sha256": sha256, "size": size}))

        if size is not None:
            needed, free = size - resume + DISK_RESERVE, self.free_bytes()
            if free < needed:
                if not resume:
                    self._remove_partial(d.model_id)
                raise DownloadError(keep_partial=bool(resume), message=
                    f"Not enough disk space for {d.model_id}: it needs {human_bytes(size - resume)} more "
                    f"(plus {human_bytes(DISK_RESERVE)} kept free) and only {human_bytes(free)} is free in "
                    f"{self.models_dir}. Free some space, or set PLAYGROUND_MODELS_DIR to a bigger disk.")

        # Pin the commit the metadata came from, so a resumed download fetches the same bytes.
        url = hf_hub_url(d.repo, d.filename, revision=commit, endpoint=endpoint)
        headers = build_hf_headers(token=token)
        file_meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
        location = file_meta.location or url
        if urlparse(location).netloc != urlparse(url).netloc:
            headers.pop("authorization", None)  # a signed CDN address: the token stays with the hub
        size = size or file_meta.size
        if sha256 is None and file_meta.etag and len(file_meta.etag) == 64:
            sha256 = file_meta.etag  # an LFS file's ETag is its sha256
        self._update(d.model_id, state="downloading", total_bytes=size, done_bytes=resume)

        meter = _Meter(self, d.model_id, cancel, resume)
        with open(part, "r+b" if resume else "wb") as f:
            f.seek(resume)
            http_get(location, _Progress(f, meter), resume_size=resume, headers=headers, expected_size=size,
                     tqdm_class=_NoBar)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())

        self._update(d.model_id, state="verifying", done_bytes=0, speed=0.0)
        with open(part, "rb") as f:
            if f.read(4) != b"GGUF":
                self._remove_partial(d.model_id)
                raise DownloadError(f"{d.filename} is not a GGUF model file (it does not start with “GGUF”); "
                                    "it was removed. Pick a .gguf file made for llama.cpp.")
        if sha256:
            got = _sha256(part, lambda n: self._update(d.model_id, done_bytes=n), cancel)
            if got != sha256:
                self._remove_partial(d.model_id)
                raise DownloadError(
                    f"Checksum mismatch for {d.filename}: the hub says sha256 {sha256[:12]}…, the downloaded file "
                    f"has {got[:12]}…. The file was removed; download it again.")
        target = self.models_dir / f"{d.model_id}.gguf"
        os.replace(part, target)  # atomic: the models folder sees all of the file or none of it
        meta.unlink(missing_ok=True)
        self._update(d.model_id, state="done", done_bytes=target.stat().st_size, total_bytes=target.stat().st_size,
                     finished_at=time.time(), error=None, resumable=False)


class _Meter:
    """Bytes received, speed over the last seconds, and the cancel check, for one download."""

    def __init__(self, manager: DownloadManager, model_id: str, cancel: threading.Event, start: int) -> None:
        self.manager, self.model_id, self.cancel = manager, model_id, cancel
        self.done = start
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), start)])

    def check(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[0][0] > _SPEED_WINDOW:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        speed = (self.done - b0) / (now - t0) if now > t0 else 0.0
        self.manager._update(self.model_id, done_bytes=self.done, speed=speed)

    def rewind(self, to: int) -> None:
        self.done = to
        self.samples.clear()
        self.samples.append((time.monotonic(), to))
        self.manager._update(self.model_id, done_bytes=to)


class _Progress:
    """The partial file as huggingface_hub's http_get sees it: every write counted, Cancel honoured."""

    def __init__(self, f, meter: _Meter) -> None:
        self._f, self._meter = f, meter

    def write(self, chunk: bytes) -> int:
        self._meter.check()  # a cancel lands before the chunk does
        n = self._f.write(chunk)
        self._meter.add(len(chunk))
        return n

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        # The server ignored our Range header and sends the whole file again: start the count over.
        result = self._f.truncate(size)
        self._meter.rewind(self._f.tell())
        return result


class _NoBar:
    """A progress bar that draws nothing: the Models page shows progress, not the app's terminal."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def update(self, n: float | None = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _sha256(path: Path, progress: Callable[[int], None], cancel: threading.Event) -> str:
    digest, done = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            if cancel.is_set():
                raise _Cancelled
            digest.update(chunk)
            done += len(chunk)
            progress(done)
    return digest.hexdigest()


def _check_names(repo: str, filename: str) -> None:
    parts = repo.split("/")
    if len(parts) != 2 or not all(parts) or any(c.isspace() for c in repo) or ".." in repo:
        raise DownloadError(f"“{repo}” is not a Hugging Face repository: write it as owner/name, "
                            "e.g. Qwen/Qwen2.5-3B-Instruct-GGUF.")
    if not filename.lower().endswith(".gguf") or ".." in filename.split("/") or "\\" in filename:
        raise DownloadError(f"“{filename}” is not a GGUF file name: pick a file ending in .gguf from the repository.")
    base = filename.rsplit("/", 1)[-1]
    if base.startswith(".") or len(base) <= 5:
        raise DownloadError(f"“{filename}” is not a usable model file name.")
    if re.search(r"-\d{5}-of-\d{5}\.gguf$", base, re.I):
        raise DownloadError(f"{base} is one part of a model split into several files. Pick a quantization that is "
                            "a single .gguf file (most repos have one, e.g. Q4_K_M).")


def _explain(exc: BaseException, d: Download, manager: DownloadManager) -> tuple[str, bool]:
    """A failure -> (a message for a person, whether the partial file is kept for Resume)."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    done = manager._part(d.model_id).stat().st_size if manager._part(d.model_id).exists() else 0
    where = f" after {human_bytes(done)}" + (f" of {human_bytes(d.total_bytes)}" if d.total_bytes else "")
    said = _hub_said(exc)
    if isinstance(exc, DownloadError):
        return str(exc), exc.keep_partial
    if isinstance(exc, GatedRepoError):
        return (f"{d.repo} is gated: accept its conditions on its Hugging Face page with your account, then set "
                f"HF_TOKEN to a token of that account and restart the Playground.{said}"), False
    if isinstance(exc, RepositoryNotFoundError):
        return (f"The Hugging Face hub has no repository “{d.repo}” that this Playground may read: check the "
                f"spelling, or, if it is private, set HF_TOKEN.{said}"), False
    if isinstance(exc, RevisionNotFoundError):
        return f"The repository {d.repo} has no branch, tag or commit “{d.revision}”.{said}", False
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"The repository {d.repo} has no file “{d.filename}”.{said}", False
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return f"The hub refused the token (401 Unauthorized): check HF_TOKEN.{said}", False
        if status == 403:
            return f"The hub refused access to {d.repo}/{d.filename} (403 Forbidden).{said}", False
        if status == 416 or (status and status >= 500):
            return f"The hub answered {status}{where}. Press Resume to try again.{said}", True
        return f"The hub answered {status} for {d.repo}/{d.filename}.{said}", False
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk filled up{where}. Free some space in {manager.models_dir}, then press Resume: "
                "what was downloaded is kept. Or Discard it."), True
    network = type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
    if network or isinstance(exc, (LocalEntryNotFoundError, ConnectionError, TimeoutError)):
        return (f"The connection to the Hugging Face hub was lost{where} ({_first_line(exc)}). Press Resume to "
                "continue from there once you are back online."), True
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return (f"The hub sent a file of the wrong size for {d.filename}; it was removed. Try again."), False
    return f"The download of {d.filename} failed{where}: {_first_line(exc)}", bool(done)


def _hub_said(exc: BaseException) -> str:
    message = getattr(exc, "server_message", None)
    return f" The hub said: “{message.strip()}”" if message and message.strip() else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__
