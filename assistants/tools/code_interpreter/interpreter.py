"""Stateful Python sessions, one sandboxed worker per session key, driven over pipes."""

import hashlib
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .budget import Budgets, adopt, end_strays, oom_since_call, out_of_memory
from .cgroup import Budget, join_command
from .channel import POLL_SLICE_S, Cancelled, SessionEnded, TimedOut, read_message, write

from .sandbox import (
    PROBE_UID,
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    SANDBOX_WORKDIR,
    bwrap_command,
    data_fds,
    find_bwrap,
    high_fd,
    identity_files,
    sandbox_env,
    uids_in_use,
    worker_program,
)
from .session import Session, Spawner, duration, line, sanitize_name

log = logging.getLogger(__name__)

MAX_RETURNED_FILES = 50
MAX_IMAGES = 20
UNSANDBOXED_NOTE = "Warning: the sandbox is off (allow_unsandboxed is set): this code ran without isolation.\n"
ENDED_NOTE = "Note: the previous Python session {why}; this is a fresh session, so earlier variables and files are gone.\n"
RESTORED_NOTE = ("Note: the previous Python session {why}; this is a fresh session, so earlier variables are gone; "
                 "the thread's files were restored into /mnt/data: {names}.\n")
EVICTED = "was shut down to make room for another one (at most {n} sessions run at once)"
BUDGET_NOTE = "Note: {why}.\n"
BUSY_NOTE = "Every one of the {n} Python sessions stayed busy for {timeout:g} s, so this code did not run.\n"
INSTALL_HINT = (
    "install it with `apt-get install bubblewrap`, or opt out of the sandbox with allow_unsandboxed "
    "(the app's PLAYGROUND_ALLOW_UNSANDBOXED_CODE=1)"
)


class SandboxUnavailable(Exception):
    """Code cannot run: no working sandbox and no explicit opt-out."""


@dataclass
class ExecResult:
    """What one execute() call produced, as a notebook user would see it."""

    logs: str
    images: list[bytes] = field(default_factory=list)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    timed_out: bool = False
    session_restarted: bool = False
    error: str | None = None
    out_of_memory: bool = False  # the kernel's OOM killer hit the session's cgroup: it was restarted
    notice: str = ""  # the sandbox's own status for the tool's output, e.g. that this session has no cgroup


class CodeInterpreter:
    """Runs model-written Python in per-session sandboxed workers (DESIGN.md principle 6).

    The work dir (/mnt/data, also the cwd) lives as long as its worker: it is a size- and
    inode-limited tmpfs inside the sandbox, so a timeout, cancel, crash, idle shutdown or
    reset() wipes it along with the variables (pass the thread's files on every call:
    unchanged ones are not re-sent). Files a cell writes are returned by that call, so they
    outlive the session wherever the caller stores them. `root` only holds work dirs when the
    sandbox is off. The worker sets its own rlimits before it reads any code, so the same limits
    apply with or without bubblewrap. As root, each worker runs as its own host uid.

    With `idle_timeout_s`, a daemon thread shuts down sessions unused that long (the next call
    starts a fresh one and says so); close() stops it.

    Budgets are per session where the host gives us cgroups (under `cgroup_root`, normally
    /sys/fs/cgroup): memory_mb (the work dir's tmpfs pages included), max_processes and cpus for
    the whole session, whatever it forks. A call that leaves processes running has them killed
    when it returns; at most `max_sessions` workers live at once, the least recently used one
    shut down first. Without a cgroup, memory_mb and max_processes are per-process rlimits.
    """

    def __init__(
        self,
        root: Path,
        *,
        timeout_s: float = 30.0,
        memory_mb: int = 1024,
        max_processes: int = 64,
        max_file_mb: int = 100,
        max_open_files: int = 256,
        disk_quota_mb: int = 500,
        max_files: int = 2000,
        max_output_chars: int = 20000,
        allow_unsandboxed: bool = False,
        idle_timeout_s: float | None = None,
        max_sessions: int | None = None,
        cpus: float | None = 1.0,
        cgroup_root: Path | str | None = None,
    ):
        self.root = Path(root)
        self.timeout_s = timeout_s
        self.memory_mb, self.max_processes, self.max_file_mb = memory_mb, max_processes, max_file_mb
        self.max_open_files, self.disk_quota_mb, self.max_files = max_open_files, disk_quota_mb, max_files
        self.max_output_chars = max_output_chars
        self.allow_unsandboxed = allow_unsandboxed
        self.idle_timeout_s = idle_timeout_s if idle_timeout_s and idle_timeout_s > 0 else None
        self.max_sessions = max_sessions if max_sessions and max_sessions > 0 else None
        self.budgets = Budgets(Budget(memory_mb, max_processes, cpus), cgroup_root)
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._probe: tuple[bool, str] | None = None
        self._spawner = Spawner()
        self._reaper: tuple[threading.Thread, threading.Event] | None = None

    # -- availability -------------------------------------------------------------------

    def available(self) -> tuple[bool, str]:
        """(ok, status): whether execute() can run code and how it is budgeted, or what to do about it."""
        sandbox_ok, reason = self._sandbox_status()
        if sandbox_ok:
            return True, f"{reason}; {self.budgets.status()[1]}"
        if self.allow_unsandboxed:
            return True, f"{reason}; running code WITHOUT a sandbox because allow_unsandboxed is set; {self.budgets.status()[1]}"
        return False, reason

    def _sandbox_status(self) -> tuple[bool, str]:
        """Whether bubblewrap can really start a sandbox here (probed once per instance)."""
        with self._lock:
            if self._probe is None:
                self._probe = self._run_probe()
            return self._probe

    def _run_probe(self) -> tuple[bool, str]:
        """Start a throwaway sandbox that runs `python -c pass`."""
        bwrap = find_bwrap()
        if bwrap is None:
            return False, f"bubblewrap is not installed: {INSTALL_HINT}"
        if os.geteuid() == 0 and shutil.which("setpriv") is None and not os.path.exists("/usr/bin/setpriv"):
            return False, "setpriv (util-linux) is missing: it drops sandboxed code to an unprivileged uid"
        uid = PROBE_UID if os.geteuid() == 0 else None
        data = data_fds(identity_files(uid)) if uid is not None else []
        try:
            argv = bwrap_command(bwrap, [sys.executable, "-I", "-c", "pass"], disk_quota_mb=self.disk_quota_mb,
                                 max_files=self.max_files, uid=uid, data=data)
            done = subprocess.run(argv, check=False, capture_output=True, timeout=30, stdin=subprocess.DEVNULL,
                                  pass_fds=[fd for fd, _ in data])
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"bubblewrap cannot start a sandbox here: {exc}"
        finally:
            for fd, _ in data:
                os.close(fd)
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip()[-500:]
            return False, f"bubblewrap cannot start a sandbox here ({detail}): {INSTALL_HINT}"
        return True, "sandboxed with bubblewrap"

    # -- public API ---------------------------------------------------------------------

    def execute(
        self,
        session_key: str,
        code: str,
        *,
        files: dict[str, bytes] | None = None,
        timeout_s: float | None = None,
        cancel: threading.Event | None = None,
        memory_mb: int | None = None,
    ) -> ExecResult:
        """Run one cell in the key's session; files land in /mnt/data first.

        `memory_mb` budgets a session that starts with this call (default: the interpreter's memory_mb); a live
        session keeps the budget it started with.
        """
        sandboxed, reason = self._sandbox_status()
        if not sandboxed and not self.allow_unsandboxed:
            raise SandboxUnavailable(reason)
        if cancel is not None and cancel.is_set():  # nothing started yet: leave the session alone
            return ExecResult("Execution was cancelled.\n", error="cancelled")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        session = self._session(session_key)
        with session.lock:
            if session.proc is None:
                session.memory_mb = memory_mb or self.memory_mb
            try:
                result = self._execute(session, sandboxed, code, files or {}, timeout, deadline, cancel)
            finally:
                session.last_used = time.monotonic()  # before the lock goes: the reaper reads it then
            result.notice, session.notice = session.notice, ""
            return result

    def _execute(self, session: Session, sandboxed: bool, code: str, files: dict[str, bytes],
                 timeout: float, deadline: float, cancel) -> ExecResult:
        """execute() under the session's lock."""
        prefix = "" if sandboxed else UNSANDBOXED_NOTE
        restarted = False
        if session.proc is not None and self._idle(session):  # the reaper may not have run yet
            self._retire(session)
        try:
            if session.proc is None:
                restore, session.restore = session.restore, {}
                files = {**restore, **files}  # the inputs as given now win, as they do on every call
                if session.ended:
                    names = ", ".join(sorted(sanitize_name(n) for n in files))
                    note = RESTORED_NOTE if restore else ENDED_NOTE
                    prefix += note.format(why=session.ended, names=names)
                    restarted, session.ended = True, None
                if not self._make_room(session, deadline, cancel):
                    busy = BUSY_NOTE.format(n=self.max_sessions, timeout=timeout)
                    return ExecResult(prefix + busy, error="no free Python session")
                try:
                    unbudgeted = self._start(session, sandboxed, deadline, cancel)
                finally:
                    session.starting = False
                if unbudgeted:  # said once per session, next to its output (not in it: the logs stay the code's)
                    session.notice = BUDGET_NOTE.format(why=unbudgeted)
                self._ensure_reaper()
            reply, blobs = self._call(session, code, files, deadline, cancel)
        except TimedOut:
            printed = session.discard("timed out", output_chars=self.max_output_chars)
            note = f"Execution timed out after {timeout:g} s and was stopped; the next call starts a fresh session.\n"
            return ExecResult(prefix + line(printed) + note, timed_out=True, session_restarted=restarted,
                              error=f"timed out after {timeout:g} s")
        except Cancelled:
            session.discard("was cancelled")
            return ExecResult(prefix + "Execution was cancelled.\n", session_restarted=restarted, error="cancelled")
        except SessionEnded as exc:
            if oom_since_call(session):  # the worker itself was the OOM killer's pick
                return self._out_of_memory(session, prefix, restarted)
            printed = session.discard(str(exc), output_chars=self.max_output_chars)
            return ExecResult(
                f"{prefix}{line(printed)}The Python session {exc}; the next call starts a fresh one.\n",
                session_restarted=restarted,
                error=f"session {exc}",
            )
        n_images = reply["images"]
        names = reply["files"]
        for name in names + reply["missing"]:
            session.sent.pop(name, None)  # changed, deleted or not written: send it again next time
        result = ExecResult(
            logs=prefix + reply["logs"],
            images=blobs[:n_images],
            files=list(zip(names, blobs[n_images:], strict=True)),
            session_restarted=restarted,
            error=reply["error"],
        )
        if oom_since_call(session):  # a child was killed, and its memory budget is what the session hit
            return self._out_of_memory(session, result.logs, restarted, result)
        end_strays(session)
        return result

    def _out_of_memory(self, session: Session, logs: str, restarted: bool, result: ExecResult | None = None) -> ExecResult:
        """End a session whose cgroup ran out of memory: the whole session restarts, and the output says so."""
        why = out_of_memory(session.memory_mb or self.memory_mb)
        printed = session.discard(why, output_chars=0 if result else self.max_output_chars)
        note = f"The session {why}; the Python session was restarted, so the next call starts without its variables and files.\n"
        result = result or ExecResult("", session_restarted=restarted)
        result.logs = line(logs + printed) + note
        result.error, result.out_of_memory = f"session {why}", True
        return result

    def restart(self, session_key: str, why: str, restore: dict[str, bytes] | None = None) -> None:
        """End the key's session (if any): its next call starts fresh with `restore` in /mnt/data, and says why."""
        session = self._session(session_key)
        session.kill()
        with session.lock:
            self._wipe(session, why)
            session.ended, session.restore = why, dict(restore or {})

    def live_keys(self) -> list[str]:
        """Keys whose worker is running (or starting) now."""
        with self._lock:
            return [key for key, s in self._sessions.items() if s.proc is not None or s.starting]

    def retire(self, session_key: str, unused_since: float) -> None:
        """End and forget the key's session if it has not been used since `unused_since` (time.monotonic()).

        A session in a call, or used or restarted since then (the key's code runs here again), is left alone.
        """
        with self._lock:
            session = self._sessions.get(session_key)
        if session is None or not session.lock.acquire(blocking=False):
            return
        try:
            if session.proc is None or session.last_used > unused_since:
                return
            with self._lock:
                if self._sessions.get(session_key) is session:
                    del self._sessions[session_key]
            self._wipe(session, None)
        finally:
            session.lock.release()

    def reset(self, session_key: str) -> None:
        """Kill the key's worker and drop its state; its work dir goes with it."""
        with self._lock:
            session = self._sessions.pop(session_key, None)
        if session is not None:
            self._end(session)

    def close(self) -> None:
        """Stop the idle reaper and kill every session (at shutdown)."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            reaper, self._reaper = self._reaper, None
        if reaper is not None:
            thread, stop = reaper
            stop.set()
            thread.join()
        for session in sessions:
            self._end(session)
        self._spawner.stop()
        self.budgets.close()

    # -- internals ----------------------------------------------------------------------

    def _session(self, key: str) -> Session:
        with self._lock:
            if key not in self._sessions:
                self._sessions[key] = Session(key)
            return self._sessions[key]

    def _make_room(self, session: Session, deadline: float, cancel) -> bool:
        """Hold a place for the session's new worker, shutting down the least recently used idle one when all are taken.

        Sessions in a call are never shut down: when every place is busy, wait for one to finish
        (False when none did before the deadline).
        """
        if self.max_sessions is None:
            return True
        while True:
            with self._lock:
                live = [s for s in self._sessions.values() if s is not session and (s.proc is not None or s.starting)]
                if len(live) < self.max_sessions:
                    session.starting = True
                    return True
            for victim in sorted(live, key=lambda s: s.last_used):
                if victim.lock.acquire(blocking=False):
                    try:
                        if victim.proc is not None:
                            self._wipe(victim, EVICTED.format(n=self.max_sessions))
                    finally:
                        victim.lock.release()
                    break
            else:
                if cancel is not None and cancel.is_set():
                    raise Cancelled
                if time.monotonic() >= deadline:
                    return False
                time.sleep(POLL_SLICE_S)

    def _end(self, session: Session) -> None:
        """Kill first (so an in-flight call returns at once), then reap under the session lock."""
        session.kill()
        with session.lock:
            self._wipe(session, None)

    def _wipe(self, session: Session, why: str | None) -> None:
        """Forget the session's worker (its lock held) and its work dir (which exists only with the sandbox off)."""
        session.discard(why)
        shutil.rmtree(self._bare_dir(session.key), ignore_errors=True)

    # -- idle sessions ------------------------------------------------------------------

    def _idle(self, session: Session) -> bool:
        return self.idle_timeout_s is not None and time.monotonic() - session.last_used >= self.idle_timeout_s

    def _retire(self, session: Session) -> None:
        """Shut down an idle session (its lock held); the next call starts afresh and says why."""
        self._wipe(session, f"was shut down after {duration(self.idle_timeout_s)} without use")

    def _ensure_reaper(self) -> None:
        """Start the idle reaper with the first session (when there is an idle timeout)."""
        if self.idle_timeout_s is None:
            return
        with self._lock:
            if self._reaper is None:
                stop = threading.Event()
                thread = threading.Thread(target=self._reap, args=(stop,), name="code-interpreter-reaper", daemon=True)
                self._reaper = (thread, stop)
                thread.start()

    def _reap(self, stop: threading.Event) -> None:
        """Shut down sessions idle for idle_timeout_s; sleep until the next one could be due.

        A session used after this pass looked is due no earlier than a full timeout from now,
        so waking at the earliest known due time, or a timeout from now, misses nothing.
        """
        idle = self.idle_timeout_s
        while True:
            wake = time.monotonic() + idle
            with self._lock:
                sessions = list(self._sessions.values())
            for session in sessions:
                if session.proc is None:
                    continue
                due = session.last_used + idle
                if due > time.monotonic():
                    wake = min(wake, due)
                elif session.lock.acquire(blocking=False):  # busy: its call ends with a new last_used
                    try:
                        if session.proc is not None and self._idle(session):
                            self._retire(session)
                    except Exception:  # keep reaping the others; a call on this one retries
                        log.exception("could not shut down idle code session %s", session.key)
                    finally:
                        session.lock.release()
            if stop.wait(max(wake - time.monotonic(), 0.01)):
                return

    # -- workers --------------------------------------------------------------------------

    def _claim_uid(self, session: Session) -> int:
        """A host uid for the session's worker: from its key's hash, skipping any in use here or on the host."""
        running = uids_in_use(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_SPAN)
        start = int.from_bytes(hashlib.sha256(session.key.encode()).digest()[:8], "big")
        with self._lock:
            taken = running | {s.uid for s in self._sessions.values() if s.uid is not None}
            for i in range(SANDBOX_UID_SPAN):
                uid = SANDBOX_UID_BASE + (start + i) % SANDBOX_UID_SPAN
                if uid not in taken:
                    session.uid = uid
                    return uid
        raise SandboxUnavailable("every sandbox uid is in use")

    def _bare_dir(self, key: str) -> Path:
        return self.root / hashlib.sha256(key.encode()).hexdigest()[:32]

    def _config(self, workdir: str, sandboxed: bool, capture_fd: int, session: Session) -> str:
        limits = {
            # per process as well: one huge allocation is a MemoryError the cell can catch, not an OOM kill
            "memory_mb": session.memory_mb or self.memory_mb,
            # unsandboxed, RLIMIT_NPROC would count every process of the host user; a cgroup's pids.max
            # counts the session's processes only
            "max_processes": self.max_processes if sandboxed and session.cgroup is None else None,
            "max_file_mb": self.max_file_mb,
            "max_open_files": self.max_open_files,
        }
        return json.dumps(
            {
                "workdir": workdir,
                "capture_fd": capture_fd,
                "limits": limits,
                "max_output_chars": self.max_output_chars,
                "max_returned_files": MAX_RETURNED_FILES,
                "max_images": MAX_IMAGES,
                "max_returned_bytes": self.max_file_mb * 1024 * 1024,
                # in its own pid namespace, the worker may kill(-1) what a cell left running
                "end_strays": sandboxed,
            }
        )

    def _start(self, session: Session, sandboxed: bool, deadline: float, cancel) -> str | None:
        """Launch a worker in its own cgroup and wait for its ready message; returns why it has no cgroup, if so.

        The worker's output capture is a memfd made here and passed down, so after a timeout or
        crash the parent can still read what the cell printed. A small shell joins the session's
        cgroup and then becomes bwrap, so every process of the session is born inside it.
        """
        capture = high_fd(os.memfd_create("cell-output"))  # close-on-exec here; passed on purpose
        data: list[tuple[int, str]] = []
        session.cgroup, unbudgeted = self.budgets.create(session.memory_mb)
        try:
            if sandboxed:
                uid = self._claim_uid(session) if os.geteuid() == 0 else None
                data = data_fds(identity_files(uid)) if uid is not None else []
                program = worker_program(self._config(SANDBOX_WORKDIR, True, capture, session), sandboxed=True)
                argv = bwrap_command(find_bwrap(), program, disk_quota_mb=self.disk_quota_mb,
                                     max_files=self.max_files, uid=uid, data=data)
                env, cwd = None, "/"
            else:
                base = self._bare_dir(session.key)
                shutil.rmtree(base, ignore_errors=True)  # a fresh worker starts with an empty work dir
                (base / "data").mkdir(parents=True)
                (base / "home").mkdir()
                argv = worker_program(self._config(str(base / "data"), False, capture, session), sandboxed=False)
                env, cwd = sandbox_env(str(base / "data"), str(base / "home")), str(base / "data")
            if session.cgroup is not None:
                argv = join_command(session.cgroup.procs_files, argv)
            session.proc = self._spawner.popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env if env is not None else {},
                cwd=cwd,
                start_new_session=True,
                pass_fds=[capture, *(fd for fd, _ in data)],
            )
        except BaseException:
            os.close(capture)
            session.uid = None
            session.release_cgroup()
            raise
        finally:
            for fd, _ in data:
                os.close(fd)
        session.capture = capture
        os.set_blocking(session.proc.stdin.fileno(), False)
        try:
            read_message(session, deadline, cancel, self.max_file_mb * 1024 * 1024)
        except SessionEnded:
            session.kill()
            session.proc.wait()
            detail = session.proc.stderr.read().decode(errors="replace").strip()[-500:]
            session.discard(None)
            raise SandboxUnavailable(f"the code sandbox failed to start: {detail or 'no error output'}") from None
        adopt(session)
        return unbudgeted

    def _call(self, session: Session, code: str, files: dict[str, bytes], deadline: float, cancel):
        """Send one cell with the inputs the worker does not have yet; read the reply."""
        names, blobs = [], []
        for raw_name, data in files.items():
            name, digest = sanitize_name(raw_name), hashlib.sha256(data).hexdigest()
            if session.sent.get(name) != digest:
                names.append(name)
                blobs.append(data)
                session.sent[name] = digest
        header = json.dumps({"code": code, "files": names, "blobs": [len(b) for b in blobs]}).encode()
        parts = [struct.pack(">I", len(header)), header]
        for blob in blobs:
            parts += [struct.pack(">Q", len(blob)), blob]
        write(session, b"".join(parts), deadline, cancel)
        reply, blobs = read_message(session, deadline, cancel, self.max_file_mb * 1024 * 1024)
        if len(blobs) != reply.get("images", 0) + len(reply.get("files", ())):
            raise SessionEnded("broke the worker protocol")
        return reply, blobs
