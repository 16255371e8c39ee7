"""Command lines that start a session worker: under bubblewrap, or bare when the sandbox is off."""

import fcntl
import os
import shutil
import site
import sys
from pathlib import Path

# As root, each session runs as its own unprivileged host uid from this range (no passwd entry on
# the host): RLIMIT_NPROC then counts per session, and a process that escaped its namespaces
# could still neither signal another session's processes nor reach its files via /proc/<pid>/root.
# The range ends below 524288, where systemd puts container uid ranges.
SANDBOX_UID_BASE = 200_000
SANDBOX_UID_SPAN = 300_000
PROBE_UID = SANDBOX_UID_BASE + SANDBOX_UID_SPAN  # the start-up probe's, outside the session range
SANDBOX_WORKDIR = "/mnt/data"
SANDBOX_WORKER = "/opt/code_interpreter/worker.py"
WORKER_SOURCE = Path(__file__).with_name("worker.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives", "fonts")
IDENTITY_FILES = ("passwd", "group")  # the host's when unprivileged; as root, made up (identity_files)
SCRATCH_MB = 64  # /tmp and /dev/shm each: room for temp files, bounded like the work dir


def find_bwrap() -> str | None:
    """Path of the bubblewrap binary, if installed."""
    return shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else None)


def sandbox_env(workdir: str, tmp: str) -> dict[str, str]:
    """The whole environment of the worker: nothing inherited, so no API key can leak in."""
    return {
        "PATH": f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin",
        "HOME": tmp,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": f"{tmp}/matplotlib",
        # BLAS spawns a thread per core, and threads count against RLIMIT_NPROC
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PWD": workdir,
    }


def _python_dirs() -> list[str]:
    """Host dirs the interpreter needs (prefixes, site-packages), at their own paths, outside /usr."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *site.getsitepackages()}
    candidates.add(os.path.dirname(os.path.dirname(sys.executable)))
    paths = set()
    for path in candidates:
        if os.path.isdir(path):
            paths.update({os.path.abspath(path), os.path.realpath(path)})  # a venv may be a symlink
    paths = {p for p in paths if not any(p == d or p.startswith(d + "/") for d in SYSTEM_DIRS)}
    ordered = sorted(paths)
    return [p for p in ordered if not any(p.startswith(q + "/") for q in ordered if q != p)]


def _ro_binds(pairs: list[tuple[str, str]]) -> list[str]:
    """Read-only binds with 0755 parents (bwrap copies host modes, and /root is 0700)."""
    args, made = [], set()
    for src, dest in pairs:
        parts = Path(dest).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in made:
                made.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", src, dest]
    return args


def identity_files(uid: int) -> dict[str, bytes]:
    """/etc/passwd and /etc/group for a sandbox running as uid: root, the session's user and nobody.

    So `getpass.getuser()`, `whoami` and `pwd.getpwuid(os.getuid())` work, and the host's
    accounts stay out of sight.
    """
    passwd = (
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{uid}:code interpreter:/tmp:/usr/sbin/nologin\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    )
    group = f"root:x:0:\nsandbox:x:{uid}:\nnogroup:x:65534:\n"
    return {"/etc/passwd": passwd.encode(), "/etc/group": group.encode()}


def uids_in_use(low: int, high: int) -> set[int]:
    """Uids in [low, high) that some host process runs as (real, effective, saved or filesystem)."""
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status", "rb") as fh:
                line = next((raw for raw in fh if raw.startswith(b"Uid:")), b"")
        except OSError:  # gone meanwhile
            continue
        found.update(uid for uid in map(int, line.split()[1:]) if low <= uid < high)
    return found


def high_fd(fd: int) -> int:
    """fd itself, or a close-on-exec copy of it at 3 or above (passed fds must not clash with stdio)."""
    if fd >= 3:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    finally:
        os.close(fd)


def data_fds(files: dict[str, bytes]) -> list[tuple[int, str]]:
    """A pipe per file, filled and closed for writing, for bubblewrap's --ro-bind-data (fd, dest)."""
    out = []
    try:
        for dest, data in files.items():
            read, write = os.pipe()  # a few hundred bytes: fits the pipe buffer, so no reader is needed yet
            try:
                os.write(write, data)
            finally:
                os.close(write)
            out.append((high_fd(read), dest))
    except BaseException:
        for fd, _ in out:
            os.close(fd)
        raise
    return out


def bwrap_command(
    bwrap: str,
    program: list[str],
    *,
    disk_quota_mb: int,
    max_files: int,
    uid: int | None = None,
    data: list[tuple[int, str]] = (),
) -> list[str]:
    """bubblewrap argv for one worker: no network, read-only system, only /mnt/data and scratch writable.

    As root, `uid` is the unprivileged host uid the code runs as, and `data` holds the (fd, dest)
    pairs of identity_files(uid) (see data_fds); the caller passes those fds to the child.
    """
    as_root = os.geteuid() == 0
    if as_root and uid is None:
        raise ValueError("as root, the sandbox needs an unprivileged uid to run the code as")
    if as_root:
        # No user namespace: as root it would map the sandbox to host root, which RLIMIT_NPROC
        # ignores. So unshare everything else and drop to the session's uid with setpriv inside.
        args = [bwrap, "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        args = [bwrap, "--unshare-all"]  # unprivileged: the user namespace is what lets bwrap work
    args += ["--die-with-parent", "--new-session"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    args += ["--proc", "/proc", "--dev", "/dev"]
    scratch = str(SCRATCH_MB * 1024 * 1024)
    args += ["--perms", "1777", "--size", scratch, "--tmpfs", "/tmp"]
    args += ["--perms", "1777", "--size", scratch, "--tmpfs", "/dev/shm"]
    host_etc = ETC_FILES if as_root else ETC_FILES + IDENTITY_FILES
    etc = [f"/etc/{name}" for name in host_etc if os.path.lexists(f"/etc/{name}")]
    binds = [(p, p) for p in etc + _python_dirs()] + [(str(WORKER_SOURCE), SANDBOX_WORKER)]
    args += _ro_binds(binds)
    if data:
        args += ["--perms", "0755", "--dir", "/etc"]
    for fd, dest in data:
        args += ["--perms", "0644", "--ro-bind-data", str(fd), dest]
    quota = disk_quota_mb * 1024 * 1024
    if as_root:
        args += ["--dir", SANDBOX_WORKDIR]  # mounted below by root, with an inode cap bwrap lacks
    else:
        args += ["--perms", "0755", "--size", str(quota), "--tmpfs", SANDBOX_WORKDIR]
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/", "--clearenv"]
    for key, value in sandbox_env(SANDBOX_WORKDIR, "/tmp").items():
        args += ["--setenv", key, value]
    if not as_root:
        return [*args, "--", *program]
    # 0700: the session's uid is the only one that needs its work dir
    mount_opts = f"size={quota},nr_inodes={max_files},mode=0700,uid={uid},gid={uid}"
    setpriv = [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]
    mount = shutil.which("mount") or "/usr/bin/mount"
    script = f'{mount} -t tmpfs -o {mount_opts} code-interpreter {SANDBOX_WORKDIR} && exec "$@"'
    return [*args, "--", "/bin/sh", "-c", script, "sh", *setpriv, *program]


def worker_program(config_json: str, *, sandboxed: bool) -> list[str]:
    """The worker's argv, inside the sandbox or (explicit opt-out) bare, with rlimits only."""
    return [sys.executable, "-I", "-B", SANDBOX_WORKER if sandboxed else str(WORKER_SOURCE), config_json]
