"""Uploaded files: bytes under the data dir (named by id, never by filename), metadata in the store."""

from __future__ import annotations

import os
import re
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from assistants.config import Settings
from assistants.errors import BadRequest, NotFound, not_found
from assistants.ids import new_id, now
from assistants.store import Store

PURPOSES = ("assistants", "vision", "assistants_output", "user_data")
MAX_FILENAME_CHARS = 255
MAX_LIST_LIMIT = 10_000
_READ_BLOCK = 1 << 20
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_ID = re.compile(r"^file-[A-Za-z0-9]{1,64}$")


def display_name(filename: Any) -> str:
    """The uploaded name made safe to show: last path component, no control characters, bounded length."""
    name = str(filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # a Windows path counts as a path too
    name = unicodedata.normalize("NFC", _UNSAFE_NAME_CHARS.sub("", name)).strip()
    if name in ("", ".", ".."):
        return "file"
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        # Keep the extension: it decides how the file is parsed for search.
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


def public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class FileService:
    """Upload, list, read and delete files; the bytes live in `<data_dir>/files/<file id>`."""

    def __init__(self, store: Store, settings: Settings | Callable[[], Settings]):
        self.store = store
        self._settings = settings if callable(settings) else (lambda: settings)
        self.root = (self._settings().data_dir / "files").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        # Called with a file id before its row goes, so vector stores and the index forget it.
        self.on_delete: list[Callable[[str], None]] = []
        self._lock = threading.Lock()

    @property
    def max_bytes(self) -> int:
        return int(self._settings().max_upload_mb) * 1024 * 1024

    def _blob(self, file_id: str) -> Path:
        """Where a file's bytes live; only ids we minted (letters and digits) ever reach the filesystem."""
        if not _ID.match(file_id):
            raise not_found("file", file_id)
        return self.root / file_id

    # -- create ------------------------------------------------------------------------------
    def create(self, filename: str, data: bytes | bytearray | memoryview | BinaryIO, purpose: str) -> dict:
        """Store an upload (bytes or a binary stream read up to the size limit) and return its File object."""
        if purpose not in PURPOSES:
            raise BadRequest(f"purpose must be one of {', '.join(PURPOSES)} (got {purpose!r}).", param="purpose")
        if filename is not None and not isinstance(filename, str):
            raise BadRequest("filename must be a string.", param="file")
        limit = self.max_bytes
        file_id = new_id("file-")
        target = self._blob(file_id)
        partial = self.root / f".{file_id}.part"
        try:
            size = self._write(partial, data, limit)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        obj = {"id": file_id, "object": "file", "bytes": size, "created_at": now(), "filename": display_name(filename),
               "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}
        try:
            self.store.insert("files", obj)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return public(obj)

    def _write(self, path: Path, data: Any, limit: int) -> int:
        """Write the upload, refusing it as soon as it passes the limit; returns its size."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) > limit:
                raise self._too_large(len(data))
            with open(path, "xb") as fh:
                fh.write(data)
            os.chmod(path, 0o600)
            return len(data)
        if not hasattr(data, "read"):
            raise BadRequest("file must be bytes or a binary file object.", param="file")
        size = 0
        with open(path, "xb") as fh:
            os.chmod(path, 0o600)
            while True:
                block = data.read(_READ_BLOCK)
                if not block:
                    break
                if isinstance(block, str):
                    raise BadRequest("file must be opened in binary mode.", param="file")
                size += len(block)
                if size > limit:
                    raise self._too_large(size, at_least=True)
                fh.write(block)
        return size

    def _too_large(self, size: int, at_least: bool = False) -> BadRequest:
        mb = self._settings().max_upload_mb
        got = f"more than {mb} MB" if at_least else f"{size / 1024 / 1024:.1f} MB ({size:,} bytes)"
        return BadRequest(f"File is too large: {got}. The upload limit is {mb} MB "
                          f"(PLAYGROUND_MAX_UPLOAD_MB).", param="file", code="file_too_large")

    # -- read --------------------------------------------------------------------------------
    def get(self, file_id: str) -> dict:
        obj = self.store.get("files", file_id) if isinstance(file_id, str) else None
        if obj is None:
            raise not_found("file", str(file_id))
        return public(obj)

    def list(self, purpose: str | None = None, limit: int = MAX_LIST_LIMIT, order: str = "desc",
             after: str | None = None) -> dict:
        """A page of files, newest first by default; `limit` goes up to 10,000 as OpenAI's does."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise BadRequest(f"limit must be an integer between 1 and {MAX_LIST_LIMIT}.", param="limit")
        data: list[dict] = []
        cursor = after
        has_more = False
        while len(data) < limit:  # the store pages by at most 100
            page = self.store.page("files", limit=min(100, limit - len(data)), order=order, after=cursor,
                                   purpose=purpose or None)
            data.extend(public(f) for f in page["data"])
            has_more = page["has_more"]
            if not has_more or not page["data"]:
                break
            cursor = page["last_id"]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    def path(self, file_id: str) -> Path:
        """The file's bytes on disk (inside the data dir)."""
        self.get(file_id)
        path = self._blob(file_id)
        if not path.is_file():
            raise NotFound(f"The content of file '{file_id}' is missing from {self.root} (deleted by hand?).",
                           code="not_found")
        return path

    def content(self, file_id: str) -> bytes:
        return self.path(file_id).read_bytes()

    # -- delete ------------------------------------------------------------------------------
    def delete(self, file_id: str) -> dict:
        """Delete a file; it leaves every vector store and the search index too."""
        self.get(file_id)
        with self.store.write():
            for forget in self.on_delete:
                forget(file_id)
            self.store.delete("files", file_id)
        self._blob(file_id).unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}
