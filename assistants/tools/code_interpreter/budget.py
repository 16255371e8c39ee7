"""Per-session budgets for the interpreter: a cgroup per worker where the host allows, per-process limits otherwise."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
from pathlib import Path

from .cgroup import CGROUP_MOUNT, Budget, CgroupError, CgroupHost, SessionCgroup
from .session import Session

log = logging.getLogger(__name__)


def out_of_memory(memory_mb: int) -> str:
    """Why a session ended when the kernel's OOM killer stepped in (for 'the Python session {why}')."""
    return f"ran out of its {memory_mb} MB memory budget"


class Budgets:
    """The interpreter's cgroup host, set up on first use: session groups, or the reason there are none."""

    def __init__(self, budget: Budget, root: Path | str | None = None):
        self.budget = budget
        self.root = CGROUP_MOUNT if root is None else Path(root)
        self._host: CgroupHost | None = None
        self._status: str | None = None
        self._lock = threading.Lock()

    def status(self) -> tuple[bool, str]:
        """(ok, description): whether sessions get a cgroup, and what budgets them."""
        with self._lock:
            if self._status is None:
                host = CgroupHost(self.root)
                try:
                    kind = host.setup()
                except (CgroupError, OSError) as exc:
                    self._status = f"no per-session cgroup ({exc}), so memory and process limits apply per process"
                else:
                    self._host = host
                    b = self.budget
                    cpu = f", {b.cpus:g} CPU" if b.cpus and host.cpu else ""
                    self._status = (f"each session budgeted by a {kind} group: {b.memory_mb} MB memory (its files "
                                    f"included), {b.max_processes} processes{cpu}")
            return self._host is not None, self._status

    def create(self, memory_mb: int | None = None) -> tuple[SessionCgroup | None, str | None]:
        """A group for a new worker (its own memory budget when given), or (None, why not)."""
        ok, status = self.status()
        if not ok:
            return None, status
        budget = dataclasses.replace(self.budget, memory_mb=memory_mb) if memory_mb else self.budget
        try:
            return self._host.create(budget), None
        except CgroupError as exc:
            log.warning("code session without a cgroup: %s", exc)
            return None, f"no per-session cgroup for this session ({exc}), so memory and process limits apply per process"

    def close(self) -> None:
        """Remove our parent group(s) (sessions are gone by then)."""
        with self._lock:
            host, self._host, self._status = self._host, None, None
        if host is not None:
            host.close()


def adopt(session: Session) -> None:
    """Right after the worker said it is ready: what runs now (bwrap, the worker) may outlive every call."""
    if session.cgroup is not None:
        session.keep = session.cgroup.pids()
        session.oom_seen = session.cgroup.oom_kills()
    elif session.uid is not None:  # as root, the session's uid is its own: every process of it is the session's
        session.keep = _pids_of_uid(session.uid)


def oom_since_call(session: Session) -> bool:
    """Whether the OOM killer ended a process of the session during the current call."""
    return session.cgroup is not None and session.cgroup.oom_kills() > session.oom_seen


def end_strays(session: Session) -> None:
    """Kill what the call left running (background processes, forks), keeping bwrap and the worker."""
    if session.cgroup is not None:
        left = session.cgroup.kill(session.keep)
        if left:
            log.warning("code session %s: %d process(es) survived the kill", session.key, len(left))
    elif session.uid is not None:
        for _ in range(20):  # again while a fork loop makes new ones
            strays = _pids_of_uid(session.uid) - session.keep
            if not strays:
                return
            for pid in strays:
                _kill_if_uid(pid, session.uid)


def _pids_of_uid(uid: int) -> set[int]:
    """Host pids running as uid, really, effectively, saved or for files (a /proc scan: only without a cgroup)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and uid in _uids_of(int(entry)):
            found.add(int(entry))
    return found


def _uids_of(pid: int) -> set[int]:
    """The real, effective, saved and filesystem uids of a process (empty when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            line = next((raw for raw in fh if raw.startswith(b"Uid:")), b"")
    except OSError:
        return set()
    return set(map(int, line.split()[1:]))


def _kill_if_uid(pid: int, uid: int) -> None:
    """SIGKILL pid if, pinned by a pidfd, it still runs as uid (a reused pid is never hit)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if uid in _uids_of(pid):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)

