"""The pipes to a session's worker: length-prefixed messages, read and written within a deadline."""

import json
import os
import select
import struct
import time

from .session import Session, ended_reason

MAX_HEADER_BYTES = 16 * 1024 * 1024
POLL_SLICE_S = 0.05  # how often a waiting call looks at its cancel event


class TimedOut(Exception):
    """The call's deadline passed."""


class Cancelled(Exception):
    """The caller's cancel event was set."""


class SessionEnded(Exception):
    """The worker is gone or unusable; the message says why, for the next call's note."""


def read_message(session: Session, deadline: float, cancel, max_blob: int) -> tuple[dict, list[bytes]]:
    """One header and its binary frames from the worker; frames over max_blob break the protocol."""
    (size,) = struct.unpack(">I", _read_exact(session, 4, deadline, cancel))
    if size > MAX_HEADER_BYTES:
        raise SessionEnded("broke the worker protocol")
    try:
        header = json.loads(_read_exact(session, size, deadline, cancel))
    except ValueError:
        raise SessionEnded("broke the worker protocol") from None
    limit = max_blob + MAX_HEADER_BYTES
    blobs = []
    for _ in header.get("blobs", ()):
        (n,) = struct.unpack(">Q", _read_exact(session, 8, deadline, cancel))
        if n > limit:
            raise SessionEnded("broke the worker protocol")
        blobs.append(_read_exact(session, n, deadline, cancel))
    return header, blobs


def _wait(fd: int, event: int, deadline: float, cancel) -> None:
    """Block until fd is ready; TimedOut past the deadline, Cancelled when cancel is set."""
    poller = select.poll()
    poller.register(fd, event)
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimedOut
        if poller.poll(1000 * (min(left, POLL_SLICE_S) if cancel is not None else left)):
            return


def _read_exact(session: Session, n: int, deadline: float, cancel) -> bytes:
    """n bytes from the worker's pipe (buffered on the session)."""
    fd = session.proc.stdout.fileno()
    while len(session.buffer) < n:
        _wait(fd, select.POLLIN, deadline, cancel)
        chunk = os.read(fd, min(max(n - len(session.buffer), 1 << 16), 1 << 24))
        if not chunk:
            raise SessionEnded(ended_reason(session.proc))
        session.buffer += chunk
    data = bytes(session.buffer[:n])
    del session.buffer[:n]
    return data


def write(session: Session, data: bytes, deadline: float, cancel) -> None:
    """All of data to the worker's pipe, within the deadline."""
    fd, view = session.proc.stdin.fileno(), memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline, cancel)
        try:
            view = view[os.write(fd, view[: 1 << 20]) :]
        except BlockingIOError:
            continue
        except BrokenPipeError:
            raise SessionEnded(ended_reason(session.proc)) from None
