"""A cgroup per session: the kernel budgets memory (tmpfs pages included), processes and CPU for a whole session.

cgroup v2 where the host has it (one unified tree), v1 otherwise (the memory, pids and cpu
hierarchies, each its own tree). Session groups sit under a parent group of ours, made next to
this process's own cgroup, so whatever limit the host put on the app still bounds them all.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_MOUNT = Path("/sys/fs/cgroup")
V1_REQUIRED = ("memory", "pids")
V1_OPTIONAL = ("cpu",)
CPU_PERIOD_US = 100_000
# bubblewrap's two processes run inside the session's group too (the launcher shell becomes the first)
PIDS_OVERHEAD = 4
EMPTY_WAIT_S = 5.0
_PARENT_NAME = re.compile(r"^(?P<tag>.+)-(?P<pid>\d+)-\d+$")
# Joins the cgroup(s) named by the first arguments, then becomes the command: nothing the command
# starts can be born outside the session's group.
JOIN_SCRIPT = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1" || exit 125; shift; n=$((n - 1)); done; exec "$@"'
_counter = itertools.count(1)


class CgroupError(Exception):
    """No cgroup can be made here; the message says why."""


@dataclass(frozen=True)
class Budget:
    """What one session may use in all: memory (MB), processes (threads count) and CPU cores."""

    memory_mb: int
    max_processes: int
    cpus: float | None = None


def join_command(procs_files: list[Path], argv: list[str]) -> list[str]:
    """argv run by a shell that first writes its own pid into each cgroup.procs file."""
    return ["/bin/sh", "-c", JOIN_SCRIPT, "cgroup-join", str(len(procs_files)), *map(str, procs_files), *argv]


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under '' its v2 path (/proc/self/cgroup)."""
    out = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def _base(mount: Path, own: str | None) -> Path:
    """Our own cgroup under mount when it is visible there (no cgroup namespace hides it), else the mount."""
    if own and own != "/":
        candidate = mount / own.lstrip("/")
        if candidate.is_dir():
            return candidate
    return mount


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pids(procs: Path) -> set[int]:
    """The pids in a cgroup.procs file (empty when the group is gone)."""
    try:
        return {int(p) for p in procs.read_text().split()}
    except (OSError, ValueError):
        return set()


def kill_pids(pids: set[int], member_of: str) -> None:
    """SIGKILL each pid that, once pinned by a pidfd, still belongs to the group (so a reused pid is never hit)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # gone already
            continue
        try:
            if member_of in Path(f"/proc/{pid}/cgroup").read_text():
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)


class SessionCgroup:
    """One session's group: `procs_files` to join before exec, then its processes, OOM kills and peak memory."""

    def __init__(self, dirs: list[Path], main: Path, version: int):
        self.dirs, self.main, self.version = dirs, main, version
        self.procs_files = [d / "cgroup.procs" for d in dirs]
        self.member_of = f"/{main.parent.name}/{main.name}\n"  # how /proc/<pid>/cgroup names it
        self.final_peak: int | None = None

    def pids(self) -> set[int]:
        """Processes in the group now (one that exited is gone from it at once, even before it is reaped)."""
        return read_pids(self.main / "cgroup.procs")

    def oom_kills(self) -> int:
        """How many processes the OOM killer ended in this group so far."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            for line in (self.main / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def peak_bytes(self) -> int | None:
        """The most memory the group ever held (v1 memory.max_usage_in_bytes, v2 memory.peak)."""
        if self.final_peak is not None:
            return self.final_peak
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int((self.main / name).read_text())
        except (OSError, ValueError):
            return None

    def kill(self, keep: set[int] = frozenset(), *, passes: int = 50) -> set[int]:
        """SIGKILL every process but `keep`, again while new ones appear (a fork loop); returns those left."""
        for _ in range(passes):
            strays = self.pids() - keep
            if not strays:
                return set()
            kill_pids(strays, self.member_of)
            time.sleep(0.002)  # let SIGKILL land before looking again
        return self.pids() - keep

    def remove(self) -> bool:
        """Kill everything in the group, wait until it is empty, remove it; False if it could not be removed."""
        self.final_peak = self.peak_bytes()
        if self.version == 2 and (self.main / "cgroup.kill").exists():
            try:
                _write(self.main / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + EMPTY_WAIT_S
        while self.kill(passes=1) and time.monotonic() < deadline:
            time.sleep(0.01)
        removed = True
        for d in reversed(self.dirs):
            for _ in range(100):  # a process just killed may still be leaving the group
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.01)
            removed = removed and not d.exists()
        if not removed:
            log.warning("could not remove the code session cgroup %s", self.main)
        return removed


class CgroupHost:
    """Makes session groups under a parent group of ours; setup() raises CgroupError where that cannot work."""

    def __init__(self, root: Path | str = CGROUP_MOUNT, tag: str = "code-interpreter"):
        self.root, self.tag = Path(root), tag
        self.version: int | None = None
        self.parents: dict[str, Path] = {}  # controller ('' for v2) -> our parent group
        self.cpu = False
        self._names = itertools.count(1)

    def setup(self) -> str:
        """Detect v2 or v1, make our parent group(s); returns a description such as 'cgroup v1 (memory, pids, cpu)'."""
        if not self.root.is_dir():
            raise CgroupError(f"no cgroup filesystem is mounted at {self.root}")
        name = f"{self.tag}-{os.getpid()}-{next(_counter)}"
        if (self.root / "cgroup.controllers").exists():
            self._setup_v2(name)
        elif (self.root / "memory" / "cgroup.procs").exists():
            self._setup_v1(name)
        else:
            raise CgroupError(f"{self.root} holds neither a cgroup v2 tree nor the v1 memory controller")
        controllers = "memory, pids, cpu" if self.cpu else "memory, pids (no cpu controller)"
        return f"cgroup v{self.version} ({controllers})"

    def _mkdir_parent(self, base: Path, name: str) -> Path:
        _sweep_stale(base, self.tag)
        parent = base / name
        try:
            make_group(parent)
        except OSError as exc:
            raise CgroupError(f"cannot create a cgroup in {base}: {exc.strerror or exc}") from None
        return parent

    def _setup_v1(self, name: str) -> None:
        own = _own_paths()
        for controller in V1_REQUIRED + V1_OPTIONAL:
            mount = self.root / controller
            if not (mount / "cgroup.procs").exists():
                if controller in V1_REQUIRED:
                    self.close()
                    raise CgroupError(f"the cgroup v1 {controller} controller is not mounted at {mount}")
                continue
            try:
                self.parents[controller] = self._mkdir_parent(_base(mount, own.get(controller)), name)
            except CgroupError:
                self.close()
                raise
        self.version, self.cpu = 1, "cpu" in self.parents

    def _setup_v2(self, name: str) -> None:
        base = _base(self.root, _own_paths().get(""))
        available = set((base / "cgroup.controllers").read_text().split())
        missing = [c for c in ("memory", "pids") if c not in available]
        if missing:
            raise CgroupError(f"the {' and '.join(missing)} controller(s) are not delegated to {base}")
        wanted = ["memory", "pids"] + (["cpu"] if "cpu" in available else [])
        _enable(base, wanted, namespace_root=base == self.root)
        parent = self._mkdir_parent(base, name)
        try:
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        except OSError as exc:
            parent.rmdir()
            raise CgroupError(f"cannot enable {', '.join(wanted)} in {parent}: {exc.strerror or exc}") from None
        self.parents[""] = parent
        self.version, self.cpu = 2, "cpu" in wanted

    def create(self, budget: Budget) -> SessionCgroup:
        """A new session group with the budget's limits; CgroupError if the kernel refuses."""
        name = f"s{next(self._names)}"
        dirs = []
        try:
            for parent in self.parents.values():
                make_group(parent / name)
                dirs.append(parent / name)
            group = SessionCgroup(dirs, dirs[0] if self.version == 2 else self.parents["memory"] / name, self.version)
            self._limit(group, budget)
        except (OSError, CgroupError) as exc:
            for d in dirs:
                d.rmdir()
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise CgroupError(f"cannot set up a session cgroup: {detail}") from None
        return group

    def _limit(self, group: SessionCgroup, budget: Budget) -> None:
        memory = str(budget.memory_mb * 1024 * 1024)
        pids = str(budget.max_processes + PIDS_OVERHEAD)
        quota = int(budget.cpus * CPU_PERIOD_US) if budget.cpus and budget.cpus > 0 else None
        if self.version == 2:
            d = group.main
            _write(d / "memory.max", memory)
            _optional(d / "memory.swap.max", "0")  # swap would stretch the budget
            _optional(d / "memory.oom.group", "1")  # an OOM kill takes the whole session, not one process
            _write(d / "pids.max", pids)
            if quota and self.cpu:
                _write(d / "cpu.max", f"{max(quota, 1000)} {CPU_PERIOD_US}")
            return
        name = group.main.name
        _write(self.parents["memory"] / name / "memory.limit_in_bytes", memory)
        _optional(self.parents["memory"] / name / "memory.memsw.limit_in_bytes", memory)  # no swap either
        _write(self.parents["pids"] / name / "pids.max", pids)
        if quota and self.cpu:
            _write(self.parents["cpu"] / name / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(self.parents["cpu"] / name / "cpu.cfs_quota_us", str(max(quota, 1000)))

    def close(self) -> None:
        """Remove our parent group(s); session groups must be removed first (a leftover one is swept too)."""
        for parent in self.parents.values():
            _remove_tree(parent)
        self.parents.clear()


def make_group(path: Path) -> None:
    """mkdir a cgroup; CgroupError unless the kernel filled it with control files (a plain directory is none)."""
    path.mkdir()
    if not (path / "cgroup.procs").exists():
        path.rmdir()
        raise CgroupError(f"{path.parent} is not a cgroup filesystem")


def _optional(path: Path, value: str) -> None:
    """Write a control file the kernel may lack (no swap accounting, an older kernel)."""
    try:
        _write(path, value)
    except OSError:
        pass


def _enable(base: Path, controllers: list[str], *, namespace_root: bool = False) -> None:
    """Make controllers available to base's children (v2).

    A v2 group with processes of its own cannot hand controllers down. When this process is the
    only one in its group (a delegated service), or the group is the root of a container's
    cgroup namespace, its processes move into a leaf group first, as a container's init does.
    """
    enabled = set((base / "cgroup.subtree_control").read_text().split())
    todo = [c for c in controllers if c not in enabled]
    if not todo:
        return
    line = " ".join(f"+{c}" for c in todo)
    try:
        _write(base / "cgroup.subtree_control", line)
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise CgroupError(f"cannot enable {', '.join(todo)} in {base}: {exc.strerror or exc}") from None
    residents = read_pids(base / "cgroup.procs")
    if residents != {os.getpid()} and not namespace_root:
        raise CgroupError(f"cannot enable {', '.join(todo)} in {base}: other processes live in it; run the app in a "
                          "cgroup of its own (systemd: Delegate=yes)")
    leaf = base / "app"
    try:
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))
        for pid in residents - {os.getpid()}:
            _optional(leaf / "cgroup.procs", str(pid))  # one that exited meanwhile is no matter
        _write(base / "cgroup.subtree_control", line)
    except OSError as exc:
        raise CgroupError(f"cannot enable {', '.join(todo)} in {base}: {exc.strerror or exc}") from None


def _remove_tree(parent: Path) -> None:
    """Kill what is left in a parent group's children and remove them, then the parent."""
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if child.is_dir():
            SessionCgroup([child], child, 2 if (child / "cgroup.events").exists() else 1).remove()
    try:
        parent.rmdir()
    except OSError as exc:
        log.warning("could not remove the code interpreter's cgroup %s: %s", parent, exc)


def _sweep_stale(base: Path, tag: str) -> None:
    """Remove parent groups an earlier app process left behind (it died without close())."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        match = _PARENT_NAME.match(entry.name)
        if match and match["tag"] == tag and entry.is_dir() and not _pid_alive(int(match["pid"])):
            _remove_tree(entry)
