"""Command lines that start a session worker: under bubblewrap, or bare when the sandbox is off."""

import os
import shutil
import site
import sys
from pathlib import Path

SANDBOX_UID = 65534  # "nobody": a real unprivileged host uid, so RLIMIT_NPROC counts and binds
SANDBOX_WORKDIR = "/mnt/data"
SANDBOX_WORKER = "/opt/code_interpreter/worker.py"
WORKER_SOURCE = Path(__file__).with_name("worker.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "alternatives", "fonts")
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


def bwrap_command(bwrap: str, program: list[str], *, disk_quota_mb: int, max_files: int) -> list[str]:
    """bubblewrap argv for one worker: no network, read-only system, only /mnt/data and scratch writable."""
    as_root = os.geteuid() == 0
    if as_root:
        # No user namespace: as root it would map the sandbox to host root, which RLIMIT_NPROC
        # ignores. So unshare everything else and drop to nobody with setpriv inside.
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
    etc = [f"/etc/{name}" for name in ETC_FILES if os.path.lexists(f"/etc/{name}")]
    binds = [(p, p) for p in etc + _python_dirs()] + [(str(WORKER_SOURCE), SANDBOX_WORKER)]
    args += _ro_binds(binds)
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
    mount_opts = f"size={quota},nr_inodes={max_files},mode=0755,uid={SANDBOX_UID},gid={SANDBOX_UID}"
    setpriv = [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={SANDBOX_UID}",
        f"--regid={SANDBOX_UID}",
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
