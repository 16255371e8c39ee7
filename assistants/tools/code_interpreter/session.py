"""A session's worker process as the parent sees it, and the thread that starts workers."""

import os
import queue
import signal
import subprocess
import threading
import time
from concurrent.futures import Future

from .cgroup import SessionCgroup
from .worker import cap_text, capture_budget

MAX_NAME_BYTES = 200


def duration(seconds: float) -> str:
    """'30 minutes', '1 minute', '2 seconds'."""
    value, unit = (seconds / 60, "minute") if seconds >= 60 else (seconds, "second")
    return f"{value:g} {unit}{'' if value == 1 else 's'}"


def line(text: str) -> str:
    """text ending with a newline (or nothing), so a note can follow it."""
    return text if not text or text.endswith("\n") else text + "\n"


def read_capture(fd: int, max_chars: int) -> str:
    """What the current cell has printed so far, capped like a normal reply (the worker may be dead)."""
    size = os.fstat(fd).st_size
    budget = capture_budget(max_chars)
    raw = os.pread(fd, min(size, budget), 0)
    return cap_text(raw, size, max_chars, at_least=size >= budget)  # past the budget, the worker dropped some


def ended_reason(proc: subprocess.Popen) -> str:
    """Why a worker stopped talking, for the logs (it may still be alive with its pipe closed)."""
    try:
        return f"ended unexpectedly (exit code {proc.wait(timeout=0.5)})"
    except subprocess.TimeoutExpired:
        return "stopped answering"


def sanitize_name(name: str) -> str:
    """A safe file name for the work dir: basename only, no NUL, never '.'/'..', length-capped."""
    name = name.replace("\0", "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name in ("", ".", ".."):
        name = "file"
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > 20:
        stem, ext = name, ""
    while len((stem + ext).encode()) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + ext


class Spawner:
    """Starts workers from one long-lived thread of ours.

    bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires when the *thread* that forked
    bwrap exits; the engine's threads come and go, so forking from them would kill sessions.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        """subprocess.Popen, run on the spawner thread."""
        done: Future = Future()
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="code-interpreter-spawner", daemon=True)
                self._thread.start()
            self._queue.put((argv, kwargs, done))
        return done.result()

    def stop(self) -> None:
        """End the thread (its workers must be dead already: they would get SIGKILL)."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            argv, kwargs, done = item
            try:
                done.set_result(subprocess.Popen(argv, **kwargs))
            except BaseException as exc:  # handed to the caller, who re-raises it
                done.set_exception(exc)


class Session:
    """One worker process and what the parent knows about it."""

    def __init__(self, key: str):
        self.key = key
        self.lock = threading.Lock()  # calls for one key run one at a time
        self.proc: subprocess.Popen | None = None
        self.buffer = bytearray()
        self.sent: dict[str, str] = {}  # input name -> sha256 already in the live work dir
        self.ended: str | None = None  # why the last worker died; the next call says so
        self.restore: dict[str, bytes] = {}  # files the next fresh worker gets back in /mnt/data (see restart)
        self.capture: int | None = None  # our fd of the worker's output capture (a memfd)
        self.uid: int | None = None  # the host uid the live worker runs as (sandboxed, as root)
        self.last_used = time.monotonic()  # end of the last call, for the idle reaper
        self.notice = ""  # the sandbox's status for the current call's output (see ExecResult.notice)
        self.starting = False  # a worker is being started: it counts against the session cap already
        self.cgroup: SessionCgroup | None = None  # the live worker's budget, when the host gives us cgroups
        self.keep: set[int] = set()  # host pids of bwrap and the worker: what a call may leave running
        self.oom_seen = 0  # OOM kills in the group when the current call began
        self.peak_bytes: int | None = None  # the last ended group's peak memory, for tests and the curious
        self.memory_mb: int | None = None  # the live worker's memory budget (set when it starts)

    def kill(self) -> None:
        """SIGKILL the worker's process group: bwrap, whose death takes the whole sandbox with it."""
        proc = self.proc
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def discard(self, why: str | None, *, output_chars: int = 0) -> str:
        """Kill, reap and forget the worker; remember why for the next call.

        Returns what the current cell had printed, up to output_chars (0: nothing).
        """
        if self.proc is None:
            return ""
        self.kill()
        proc, self.proc = self.proc, None
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
        printed = ""
        if self.capture is not None:
            try:
                printed = read_capture(self.capture, output_chars) if output_chars else ""
            finally:
                os.close(self.capture)
                self.capture = None
        self.release_cgroup()
        self.uid = None
        self.keep = set()
        self.buffer.clear()
        self.sent.clear()
        self.ended = why
        return printed

    def release_cgroup(self) -> None:
        """Kill what is left in the session's group and remove it (its peak memory is kept)."""
        group, self.cgroup = self.cgroup, None
        if group is not None:
            group.remove()
            self.peak_bytes = group.final_peak
