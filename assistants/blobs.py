"""Where uploaded files' bytes live: a folder every instance shares, or PostgreSQL (chunks; store/pg_blobs.py).

Chosen at start (`open_blobs`): PLAYGROUND_FILES_DIR when set, else `<data dir>/files` on SQLite, else PostgreSQL.
Both backends take bytes block by block and give them back block by block, so no file sits whole in memory.
Only ids we minted (letters and digits) ever become names on disk.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

READ_BLOCK = 1 << 20
STALE_PART_S = 3600  # a temp file nobody wrote to for this long is an upload whose process died on another machine
_ID = re.compile(r"^file-[A-Za-z0-9]{1,64}$")
# Temp files are tagged with the host and pid writing them, so a later start can tell a dead writer's leftovers.
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64] or "host"
_TAGGED = re.compile(r"^\.?file-[A-Za-z0-9]{1,64}\.([A-Za-z0-9-]{1,64})\.(\d{1,10})(?:\.[A-Za-z0-9_]{1,32})?\.(?:part|tmp)$")


def valid_id(file_id: Any) -> bool:
    """Whether this is an id we could have minted (and so a safe name on disk)."""
    return isinstance(file_id, str) and bool(_ID.match(file_id))


class BlobUpload(Protocol):
    """A new file's bytes on their way in: `write` blocks, then `commit(row)` (bytes and row at once) or `abort`."""

    def write(self, data: bytes | memoryview) -> None: ...
    def commit(self, row: dict) -> None: ...
    def abort(self) -> None: ...


class Blobs(Protocol):
    """A file-bytes backend."""

    where: str  # for messages: where the bytes are

    def begin(self, file_id: str) -> BlobUpload: ...
    def chunks(self, file_id: str) -> Iterator[bytes]: ...
    def local_path(self, file_id: str, blocks: Iterator[bytes]) -> Any: ...
    def delete(self, file_id: str) -> None: ...


def open_blobs(settings, store) -> Blobs:
    """The backend the settings name (see the module docstring)."""
    folder = settings.blob_dir
    if folder is not None:
        return FolderBlobs(Path(folder), store)
    return DatabaseBlobs(store, settings.data_dir / "tmp")


def _tag() -> str:
    return f"{_HOST}.{os.getpid()}"


def _private_dir(path: Path) -> Path:
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def sweep_leftovers(folder: Path, stale_s: float = STALE_PART_S) -> int:
    """Delete temp files of writers that died: this host's dead pids at once, any host's after `stale_s` untouched."""
    gone = 0
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _TAGGED.match(entry.name)
        if match is None:
            continue
        host, pid = match.group(1), int(match.group(2))
        try:
            dead = (host == _HOST and not _alive(pid)) or now - entry.stat().st_mtime > stale_s
            if dead:
                os.unlink(entry.path)
                gone += 1
        except OSError:  # taken by another instance's sweep meanwhile
            pass
    return gone


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read_blocks(fh) -> Iterator[bytes]:
    with fh:
        while block := fh.read(READ_BLOCK):
            yield block


class FolderUpload:
    """Bytes written to a tagged temp file in the folder, renamed to the file's id on commit (atomic)."""

    def __init__(self, blobs: FolderBlobs, file_id: str):
        self._blobs, self.file_id = blobs, file_id
        self._part = blobs.root / f".{file_id}.{_tag()}.part"
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, "wb")

    def write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)

    def commit(self, row: dict) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())  # the bytes are on disk before the name says they are there
        self._fh.close()
        target = self._blobs.path(self.file_id)
        os.replace(self._part, target)
        try:
            self._blobs.store.insert("files", row)
        except BaseException:
            target.unlink(missing_ok=True)
            raise

    def abort(self) -> None:
        self._fh.close()
        self._part.unlink(missing_ok=True)


class FolderBlobs:
    """`<folder>/<file id>`: a folder on this machine, or one every instance mounts (PLAYGROUND_FILES_DIR)."""

    def __init__(self, root: Path, store):
        try:
            self.root = _private_dir(root)
            probe = self.root / f".file-probe.{_tag()}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"the files folder {root} (PLAYGROUND_FILES_DIR, default <data dir>/files) cannot be "
                             f"written: {exc.strerror or exc}. Create it, mount it, or fix its permissions.") from None
        self.store = store
        self.where = str(self.root)
        sweep_leftovers(self.root)

    def path(self, file_id: str) -> Path:
        if not valid_id(file_id):
            raise ValueError(f"not a file id: {file_id!r}")
        return self.root / file_id

    def begin(self, file_id: str) -> FolderUpload:
        return FolderUpload(self, file_id)

    def chunks(self, file_id: str) -> Iterator[bytes]:
        """The bytes block by block; the file is opened now (FileNotFoundError now, not mid-stream)."""
        return _read_blocks(open(self.path(file_id), "rb"))

    @contextmanager
    def local_path(self, file_id: str, blocks: Iterator[bytes]) -> Iterator[Path]:
        """The file itself (`blocks` unused: the bytes are already in a file)."""
        path = self.path(file_id)
        if not path.is_file():
            raise FileNotFoundError(path)
        yield path

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)


class DatabaseBlobs:
    """Chunks in PostgreSQL's `file_blobs`; a reader that needs a path gets a private copy that lasts its `with`."""

    where = "the database"

    def __init__(self, store, scratch: Path):
        self.store = store
        self.scratch = scratch
        if scratch.exists():
            sweep_leftovers(scratch)

    def begin(self, file_id: str) -> BlobUpload:
        return self.store.begin_blob(file_id)

    def chunks(self, file_id: str) -> Iterator[bytes]:
        return self.store.blob_chunks(file_id)

    @contextmanager
    def local_path(self, file_id: str, blocks: Iterator[bytes]) -> Iterator[Path]:
        """`blocks` (the file's bytes) copied into a 0600 file under `<data dir>/tmp`, deleted when the `with` ends."""
        fd, name = tempfile.mkstemp(prefix=f"{file_id}.{_tag()}.", suffix=".tmp", dir=_private_dir(self.scratch))
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                for block in blocks:
                    fh.write(block)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def delete(self, file_id: str) -> None:
        """Nothing to do: the chunks went with the file's row (ON DELETE CASCADE, same transaction)."""
