"""Uploaded files: metadata in the store, bytes in a shared folder or PostgreSQL (blobs.py), named by id, never by name."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from assistants.blobs import READ_BLOCK, BlobUpload, open_blobs, valid_id
from assistants.config import Settings
from assistants.errors import BadRequest, NotFound, not_found
from assistants.ids import new_id, now
from assistants.store import Store

PURPOSES = ("assistants", "vision", "assistants_output", "user_data")
MAX_FILENAME_CHARS = 255
MAX_LIST_LIMIT = 10_000
_UNSAFE_NAME_CHARS = re.compile(r"[\x00-\x1f\x7f]")


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


class Upload:
    """A new file arriving block by block: counted against the limit and stored as it comes, kept whole or not at all.

    `finish(purpose)` makes it a file; anything else (an error, `abort`, leaving the `with`) leaves nothing behind.
    """

    def __init__(self, service: FileService, filename: str, blob: BlobUpload, file_id: str):
        self.filename, self.file_id, self.size = filename, file_id, 0
        self._service, self._blob, self._limit = service, blob, service.max_bytes
        self.done = False

    def write(self, block: bytes | bytearray | memoryview) -> None:
        if isinstance(block, str):
            raise BadRequest("file must be opened in binary mode.", param="file")
        self.size += len(block)
        if self.size > self._limit:
            raise self._service._too_large(self.size, at_least=True)
        if block:
            self._blob.write(block)

    def finish(self, purpose: str) -> dict:
        """Store the file's row with its bytes (one commit) and return its File object."""
        check_purpose(purpose)
        obj = {"id": self.file_id, "object": "file", "bytes": self.size, "created_at": now(),
               "filename": display_name(self.filename), "purpose": purpose, "status": "processed", "expires_at": None,
               "status_details": None}
        self.done = True
        try:
            self._blob.commit(obj)
        except BaseException:
            self._blob.abort()  # whatever the commit got to (a renamed file, an open transaction) goes
            raise
        return public(obj)

    def abort(self) -> None:
        """Forget the bytes written so far (nothing after `finish`)."""
        if not self.done:
            self.done = True
            self._blob.abort()

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc) -> None:
        self.abort()


def check_purpose(purpose: Any) -> None:
    if purpose not in PURPOSES:
        raise BadRequest(f"purpose must be one of {', '.join(PURPOSES)} (got {purpose!r}).", param="purpose")


class FileService:
    """Upload, list, read and delete files; the bytes live where `open_blobs` says (a folder or PostgreSQL)."""

    def __init__(self, store: Store, settings: Settings | Callable[[], Settings]):
        self.store = store
        self._settings = settings if callable(settings) else (lambda: settings)
        self.blobs = open_blobs(self._settings(), store)
        # Called with a file id before its row goes, so vector stores and the index forget it.
        self.on_delete: list[Callable[[str], None]] = []

    @property
    def max_bytes(self) -> int:
        return int(self._settings().max_upload_mb) * 1024 * 1024

    # -- create ------------------------------------------------------------------------------
    def begin_upload(self, filename: str | None) -> Upload:
        """A new file to write block by block (the API server streams a multipart body straight into it)."""
        if filename is not None and not isinstance(filename, str):
            raise BadRequest("filename must be a string.", param="file")
        file_id = new_id("file-")
        return Upload(self, filename or "", self.blobs.begin(file_id), file_id)

    def create(self, filename: str, data: bytes | bytearray | memoryview | BinaryIO, purpose: str) -> dict:
        """Store an upload (bytes or a binary stream read up to the size limit) and return its File object."""
        check_purpose(purpose)
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) > self.max_bytes:
                raise self._too_large(len(data))
            view = memoryview(data).cast("B")
            blocks: Any = (view[i:i + READ_BLOCK] for i in range(0, len(view), READ_BLOCK))
        elif hasattr(data, "read"):
            blocks = iter(lambda: data.read(READ_BLOCK), b"")
        else:
            raise BadRequest("file must be bytes or a binary file object.", param="file")
        with self.begin_upload(filename) as upload:
            for block in blocks:
                upload.write(block)
            return upload.finish(purpose)

    def _too_large(self, size: int, at_least: bool = False) -> BadRequest:
        mb = self._settings().max_upload_mb
        got = f"more than {mb} MB" if at_least else f"{size / 1024 / 1024:.1f} MB ({size:,} bytes)"
        return BadRequest(f"File is too large: {got}. The upload limit is {mb} MB "
                          f"(PLAYGROUND_MAX_UPLOAD_MB).", param="file", code="file_too_large")

    # -- read --------------------------------------------------------------------------------
    def get(self, file_id: str) -> dict:
        # Only ids we could have minted are looked up (PostgreSQL refuses a NUL in a query: a 500, not a 404).
        obj = self.store.get("files", file_id) if valid_id(file_id) else None
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

    def chunks(self, file_id: str, meta: dict | None = None) -> Iterator[bytes]:
        """The file's bytes block by block (at most about 1 MiB in memory); NotFound at once if they are missing.
        `meta`: the file's record if the caller has just read it."""
        blocks = self._checked(meta or self.get(file_id))
        first = next(blocks, None)
        if first is None:
            return iter(())
        return itertools.chain((first,), blocks)

    def _checked(self, meta: dict) -> Iterator[bytes]:
        """The stored blocks, ending with NotFound if they stop short of the file's size."""
        file_id, size = meta["id"], meta.get("bytes") or 0
        try:
            blocks = self.blobs.chunks(file_id)
        except FileNotFoundError:
            raise self._missing(file_id) from None
        got = 0
        for block in blocks:
            got += len(block)
            yield block
        if got != size:
            raise self._missing(file_id, got)

    def _missing(self, file_id: str, got: int | None = None) -> NotFound:
        what = "is missing" if not got else f"stops after {got:,} bytes"
        return NotFound(f"The content of file '{file_id}' {what} in {self.blobs.where} (deleted meanwhile, or by "
                        "hand?). Upload the file again.", code="not_found")

    def content(self, file_id: str) -> bytes:
        """The whole file in memory: for bounded callers (images, code inputs); stream big ones with `chunks`."""
        return b"".join(self.chunks(file_id))

    @contextmanager
    def local_path(self, file_id: str) -> Iterator[Path]:
        """A path to the file's bytes for readers that need one: the file itself in a folder, or a private copy of
        the database's chunks, deleted when the `with` ends. Read it, never change it."""
        meta = self.get(file_id)
        with ExitStack() as stack:
            try:
                path = stack.enter_context(self.blobs.local_path(file_id, self._checked(meta)))
            except FileNotFoundError:
                raise self._missing(file_id) from None
            yield path

    # -- delete ------------------------------------------------------------------------------
    def delete(self, file_id: str) -> dict:
        """Delete a file; it leaves every vector store and the search index too (and its bytes with it)."""
        self.get(file_id)
        with self.store.write():
            for forget in self.on_delete:
                forget(file_id)
            self.store.delete("files", file_id)
        self.blobs.delete(file_id)
        return {"id": file_id, "object": "file", "deleted": True}
