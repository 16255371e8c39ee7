"""Fetch one GGUF file from the Hugging Face hub: resume, progress, cancel, disk check, sha256, atomic landing.

Everything hub-facing goes through huggingface_hub (HF_ENDPOINT and HF_TOKEN honoured at call time): model_info for
the file's size and LFS sha256, get_hf_file_metadata and http_get (which retries a dropped connection with a Range
request) for the bytes. The partial file never has the `.gguf` suffix in the models folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

PARTIAL_DIR = ".downloads"     # inside the models folder: same filesystem, so the final rename is atomic
DISK_RESERVE = 50 * 1000**2    # left free after a download, so the disk is never filled to the last byte
_HASH_CHUNK = 4 * 1024 * 1024
_SPEED_WINDOW = 5.0            # seconds of history behind the speed shown


class DownloadError(Exception):
    """A download that cannot start or finish, with a message for a person."""

    def __init__(self, message: str, *, keep_partial: bool = False) -> None:
        super().__init__(message)
        self.keep_partial = keep_partial  # the partial file stays for Resume


class Cancelled(Exception):
    """Raised inside a fetch when the user pressed Cancel."""


@dataclass
class FetchJob:
    """One file to fetch into a models folder, and where its progress goes."""

    repo: str
    filename: str
    revision: str
    model_id: str
    models_dir: Path
    endpoint: str | None                 # None: HF_ENDPOINT, or huggingface.co
    token: str | None                    # None: HF_TOKEN, or the token saved by `hf auth login`
    free_bytes: Callable[[], int]
    report: Callable[..., None]          # report(state=..., done_bytes=..., total_bytes=..., speed=...)
    cancel: threading.Event

    @property
    def part(self) -> Path:
        """The partial file (under .downloads/, never named *.gguf)."""
        return self.models_dir / PARTIAL_DIR / f"{self.model_id}.gguf.part"

    @property
    def meta(self) -> Path:
        """What the partial file is a part of: repo, file, commit, sha256, size."""
        return self.models_dir / PARTIAL_DIR / f"{self.model_id}.json"

    @property
    def target(self) -> Path:
        """Where the finished model lands."""
        return self.models_dir / f"{self.model_id}.gguf"

    def remove_partial(self) -> None:
        """Delete the partial file and its description."""
        for path in (self.part, self.meta):
            path.unlink(missing_ok=True)


def human_bytes(n: float | None) -> str:
    """1234567890 -> '1.23 GB' (decimal units, as the hub and disk tools show them)."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.2f} {unit}" if n < 10 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def fetch(job: FetchJob) -> Path:
    """Download, resume, verify and land one GGUF file; progress goes to job.report. Returns the model's path."""
    from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    endpoint = (job.endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    token = job.token or None
    info = HfApi(endpoint=endpoint).model_info(job.repo, revision=job.revision, files_metadata=True, token=token)
    sibling = next((s for s in info.siblings or [] if s.rfilename == job.filename), None)
    if sibling is None:
        ggufs = sorted(s.rfilename for s in info.siblings or [] if s.rfilename.lower().endswith(".gguf"))
        hint = f" Its GGUF files: {', '.join(ggufs[:8])}{' …' if len(ggufs) > 8 else ''}." if ggufs else \
            " It has no GGUF files at all."
        raise DownloadError(f"The repository {job.repo} has no file “{job.filename}”.{hint}")
    sha256 = (sibling.lfs.sha256 if sibling.lfs else None)
    size = (sibling.lfs.size if sibling.lfs else None) or sibling.size
    commit = info.sha or job.revision
    if job.cancel.is_set():
        raise Cancelled

    # Resume only a partial file of this very file (same sha256); anything else starts over.
    job.part.parent.mkdir(parents=True, exist_ok=True)
    part, meta = job.part, job.meta
    resume = 0
    try:
        old = json.loads(meta.read_text())
        if old.get("repo") == job.repo and old.get("filename") == job.filename and old.get("sha256") == sha256:
            resume = part.stat().st_size
    except (OSError, ValueError):
        pass
    if size is not None and resume > size:
        resume = 0
    if not resume:
        part.unlink(missing_ok=True)
    meta.write_text(json.dumps({"repo": job.repo, "filename": job.filename, "revision": job.revision,
                                "commit": commit, "sha256": sha256, "size": size}))

    if size is not None:
        needed, free = size - resume + DISK_RESERVE, job.free_bytes()
        if free < needed:
            if not resume:
                job.remove_partial()
            raise DownloadError(keep_partial=bool(resume), message=
                f"Not enough disk space for {job.model_id}: it needs {human_bytes(size - resume)} more "
                f"(plus {human_bytes(DISK_RESERVE)} kept free) and only {human_bytes(free)} is free in "
                f"{job.models_dir}. Free some space, or set PLAYGROUND_MODELS_DIR to a bigger disk.")

    # Pin the commit the metadata came from, so a resumed download fetches the same bytes.
    url = hf_hub_url(job.repo, job.filename, revision=commit, endpoint=endpoint)
    headers = build_hf_headers(token=token)
    file_meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    location = file_meta.location or url
    if urlparse(location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # a signed CDN address: the token stays with the hub
    size = size or file_meta.size
    if sha256 is None and file_meta.etag and len(file_meta.etag) == 64:
        sha256 = file_meta.etag  # an LFS file's ETag is its sha256
    job.report(state="downloading", total_bytes=size, done_bytes=resume)

    meter = _Meter(job, resume)
    with open(part, "r+b" if resume else "wb") as f:
        f.seek(resume)
        http_get(location, _Progress(f, meter), resume_size=resume, headers=headers, expected_size=size,
                 tqdm_class=_NoBar)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())

    job.report(state="verifying", done_bytes=0, speed=0.0)
    with open(part, "rb") as f:
        if f.read(4) != b"GGUF":
            job.remove_partial()
            raise DownloadError(f"{job.filename} is not a GGUF model file (it does not start with “GGUF”); "
                                "it was removed. Pick a .gguf file made for llama.cpp.")
    if sha256:
        got = _sha256(part, lambda n: job.report(done_bytes=n), job.cancel)
        if got != sha256:
            job.remove_partial()
            raise DownloadError(
                f"Checksum mismatch for {job.filename}: the hub says sha256 {sha256[:12]}…, the downloaded file "
                f"has {got[:12]}…. The file was removed; download it again.")
    target = job.target
    os.replace(part, target)  # atomic: the models folder sees all of the file or none of it
    meta.unlink(missing_ok=True)
    return target


class _Meter:
    """Bytes received, speed over the last seconds, and the cancel check, for one download."""

    def __init__(self, job: FetchJob, start: int) -> None:
        self.job = job
        self.done = start
        self.samples: deque[tuple[float, int]] = deque([(time.monotonic(), start)])

    def check(self) -> None:
        if self.job.cancel.is_set():
            raise Cancelled

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[0][0] > _SPEED_WINDOW:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        speed = (self.done - b0) / (now - t0) if now > t0 else 0.0
        self.job.report(done_bytes=self.done, speed=speed)

    def rewind(self, to: int) -> None:
        self.done = to
        self.samples.clear()
        self.samples.append((time.monotonic(), to))
        self.job.report(done_bytes=to)


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
                raise Cancelled
            digest.update(chunk)
            done += len(chunk)
            progress(done)
    return digest.hexdigest()


def check_names(repo: str, filename: str) -> None:
    """Refuse a repo or file name that cannot be a single GGUF model on the hub, before asking the hub."""
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


def explain(exc: BaseException, job: FetchJob, total: int | None) -> tuple[str, bool]:
    """A failure -> (a message for a person, whether the partial file is kept for Resume)."""
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        OfflineModeIsEnabled, RemoteEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    done = job.part.stat().st_size if job.part.exists() else 0
    where = f" after {human_bytes(done)}" + (f" of {human_bytes(total)}" if total else "")
    said = _hub_said(exc)
    if isinstance(exc, DownloadError):
        return str(exc), exc.keep_partial
    if isinstance(exc, GatedRepoError):
        return (f"{job.repo} is gated: accept its conditions on its Hugging Face page with your account, put "
                f"HF_TOKEN=<a token of that account> in .env (or the environment), then download again.{said}"), False
    if isinstance(exc, RepositoryNotFoundError):
        return (f"The Hugging Face hub has no repository “{job.repo}” that this Playground may read: check the "
                f"spelling, or, if it is private, set HF_TOKEN.{said}"), False
    if isinstance(exc, RevisionNotFoundError):
        return f"The repository {job.repo} has no branch, tag or commit “{job.revision}”.{said}", False
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"The repository {job.repo} has no file “{job.filename}”.{said}", False
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return f"The hub refused the token (401 Unauthorized): check HF_TOKEN.{said}", False
        if status == 403:
            return f"The hub refused access to {job.repo}/{job.filename} (403 Forbidden).{said}", False
        if status == 416:
            return ("The hub could not continue the partial download (416 Range Not Satisfiable); it was removed: "
                    f"download it again.{said}"), False
        if status and status >= 500:
            return f"The hub answered {status}{where}. Press Resume to try again.{said}", True
        return f"The hub answered {status} for {job.repo}/{job.filename}.{said}", False
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk filled up{where}. Free some space in {job.models_dir}, then press Resume: "
                "what was downloaded is kept. Or Discard it."), True
    if isinstance(exc, OfflineModeIsEnabled):
        return ("Downloads are switched off on this machine: HF_HUB_OFFLINE is set. Unset it and restart the "
                "Playground to download models."), True
    network = type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
    if network or isinstance(exc, (LocalEntryNotFoundError, ConnectionError, TimeoutError)):
        return (f"The connection to the Hugging Face hub was lost{where} ({_first_line(exc)}). Press Resume to "
                "continue from there once you are back online."), True
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return (f"The hub sent a file of the wrong size for {job.filename}; it was removed. Try again."), False
    return f"The download of {job.filename} failed{where}: {_first_line(exc)}", bool(done)


def _hub_said(exc: BaseException) -> str:
    message = getattr(exc, "server_message", None)
    return f" The hub said: “{message.strip()}”" if message and message.strip() else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__
