"""Per-session budgets (issue 10, item 4): real bubblewrap sandboxes in real cgroups on this machine.

Sizes are small on purpose (a 256 MB session, 100 MB children): they prove the point without
taking the shared machine's memory.
"""

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from assistants.tools.code_interpreter import CodeInterpreter
from assistants.tools.code_interpreter import cgroup as cgroup_module
from assistants.tools.code_interpreter.cgroup import PIDS_OVERHEAD, Budget, CgroupHost

AS_ROOT = os.geteuid() == 0
MB = 1024 * 1024
pytestmark = [pytest.mark.no_database,
              pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed (apt-get install bubblewrap)")]


def cgroups_here() -> bool:
    """Whether this host lets us make cgroups (root with v1 memory/pids or v2 delegated)."""
    host = CgroupHost()
    try:
        host.setup()
    except Exception:
        return False
    host.close()
    return True


needs_cgroups = pytest.mark.skipif(not cgroups_here(), reason="needs a writable cgroup hierarchy (root)")


@pytest.fixture
def small(tmp_path):
    """A 256 MB, 16-process session budget."""
    interp = CodeInterpreter(tmp_path, memory_mb=256, max_processes=16, timeout_s=30)
    yield interp
    interp.close()


def group_of(ci: CodeInterpreter, key: str):
    return ci._sessions[key].cgroup


def control(group, controller: str, name: str) -> str:
    """A control file of the session's group (v1: in that controller's tree)."""
    if group.version == 2:
        return (group.main / name).read_text()
    (d,) = [d for d in group.dirs if f"/{controller}/" in str(d) or d.parts[-3] == controller]
    return (d / name).read_text()


def cmdlines() -> list[list[str]]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                out.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1])
            except OSError:
                pass
    return out


@needs_cgroups
def test_the_status_names_the_cgroup_budget(small):
    ok, status = small.available()
    assert ok and "each session budgeted by a cgroup v" in status and "256 MB memory" in status
    small.execute("status", "pass")
    group = group_of(small, "status")
    assert int(control(group, "pids", "pids.max")) == 16 + PIDS_OVERHEAD
    if group.version == 1:
        assert int(control(group, "memory", "memory.limit_in_bytes")) == 256 * MB
        assert int(control(group, "cpu", "cpu.cfs_quota_us")) == int(control(group, "cpu", "cpu.cfs_period_us"))
    else:
        assert int(control(group, "memory", "memory.max")) == 256 * MB


@needs_cgroups
def test_the_cpu_budget_throttles_the_whole_session(tmp_path):
    interp = CodeInterpreter(tmp_path, cpus=0.05, timeout_s=30)
    try:
        interp.execute("cpu", "import os, time")
        group = group_of(interp, "cpu")
        spin = ("end = time.monotonic() + 1\nif os.fork() == 0:\n    while time.monotonic() < end:\n        pass\n"
                "    os._exit(0)\nwhile time.monotonic() < end:\n    pass")
        interp.execute("cpu", spin)
        stat = dict(line.split()[:2] for line in control(group, "cpu", "cpu.stat").splitlines())
        assert int(stat["nr_throttled"]) > 0  # two busy processes, 5% of a core between them
    finally:
        interp.close()


@needs_cgroups
def test_forked_children_share_one_memory_budget(small):
    # each child alone is far under the per-process limit (RLIMIT_AS 256 MB): only the session's budget stops them
    code = ("import os, time\nkids = []\nfor i in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
            "        block = b'x' * (100 << 20)\n        time.sleep(1)\n        os._exit(0)\n    kids.append(pid)\n"
            "for pid in kids:\n    os.waitpid(pid, 0)\nprint('children done')")
    small.execute("hog", "kept = 1")
    result = small.execute("hog", code)
    assert result.out_of_memory and result.error == "session ran out of its 256 MB memory budget"
    assert result.logs.endswith("The session ran out of its 256 MB memory budget; the Python session was restarted, "
                                "so the next call starts without its variables and files.\n")
    session = small._sessions["hog"]
    assert session.cgroup is None and session.peak_bytes is not None
    # 600 MB asked for, the session held up to its budget and never more: the kernel kept it there
    assert 200 * MB < session.peak_bytes <= 256 * MB
    after = small.execute("hog", "print('kept' in globals())")
    assert after.session_restarted and after.logs.endswith("False\n")
    assert after.logs.startswith("Note: the previous Python session ran out of its 256 MB memory budget; this is a fresh")


@needs_cgroups
def test_filling_the_work_dir_counts_against_the_memory_budget(tmp_path):
    interp = CodeInterpreter(tmp_path, memory_mb=256, disk_quota_mb=500, max_file_mb=64, timeout_s=30)
    try:
        # idle: a 120 MB file in /mnt/data stays charged to the session while nothing runs
        interp.execute("tmpfs", "open('half.bin', 'wb').write(b'x' * (120 << 20))")
        group = group_of(interp, "tmpfs")
        usage = "memory.current" if group.version == 2 else "memory.usage_in_bytes"
        assert int(control(group, "memory", usage)) >= 120 * MB
        fill = "for n in range(8):\n    with open(f'part{n}', 'wb') as f:\n        f.write(b'y' * (50 << 20))"
        result = interp.execute("tmpfs", fill)  # 520 MB of files: within the disk quota, over the memory budget
        assert result.out_of_memory, result.logs
        assert 200 * MB < interp._sessions["tmpfs"].peak_bytes <= 256 * MB
        assert interp.execute("tmpfs", "import os\nprint(os.listdir('.'))").logs.endswith("[]\n")  # a fresh work dir
    finally:
        interp.close()


@needs_cgroups
def test_a_fork_bomb_stops_at_the_sessions_process_limit(small):
    code = ("import os, time\nmade = refused = 0\nfor _ in range(100):\n    try:\n        pid = os.fork()\n"
            "    except OSError:\n        refused += 1\n        continue\n    if pid == 0:\n        time.sleep(60)\n"
            "        os._exit(0)\n    made += 1\nprint(made, refused)")
    small.execute("forks", "import resource\nprint(resource.getrlimit(resource.RLIMIT_NPROC))")
    group = group_of(small, "forks")
    result = small.execute("forks", code)
    made, refused = map(int, result.logs.split())
    assert refused > 0 and made <= 16 + PIDS_OVERHEAD
    assert int(control(group, "pids", "pids.events").split()[-1]) > 0  # the cgroup refused them, not an rlimit
    assert group.pids() == small._sessions["forks"].keep  # and they died when the call returned


@needs_cgroups
def test_what_a_call_leaves_running_is_killed_and_variables_stay(small):
    naptime = f"{300 + time.time() % 1:.6f}"  # a unique `sleep` argument finds this session's processes
    code = (f"import os, subprocess\nchild = subprocess.Popen(['sleep', '{naptime}'])\nx = 42\n"
            "if os.fork() == 0:\n    while True:\n        pass\n"
            "os.kill = lambda *args: None  # the worker's own cleanup uses os.kill: the parent must not rely on it")
    result = small.execute("bg", code)
    assert result.error is None, result.logs
    session = small._sessions["bg"]
    assert session.cgroup.pids() == session.keep and len(session.keep) == 3  # bwrap, its pid-1 and the worker
    assert ["sleep", naptime] not in cmdlines()
    after = small.execute("bg", "print(x)")
    assert after.logs == "42\n" and not after.session_restarted


def test_a_background_process_is_killed_without_a_cgroup_too(tmp_path):
    interp = CodeInterpreter(tmp_path, cgroup_root=tmp_path / "no-cgroups", timeout_s=30)
    try:
        naptime = f"{300 + time.time() % 1:.6f}"
        interp.execute("bg", f"import subprocess\nchild = subprocess.Popen(['sleep', '{naptime}'])\nx = 1")
        assert ["sleep", naptime] not in cmdlines()
        assert interp.execute("bg", "print(x)").logs == "1\n"
    finally:
        interp.close()


def test_the_least_recently_used_session_makes_room(tmp_path):
    interp = CodeInterpreter(tmp_path, max_sessions=2, timeout_s=30)
    try:
        interp.execute("a", "v = 'a'")
        interp.execute("b", "v = 'b'")
        interp.execute("a", "pass")  # a is now the more recently used
        interp.execute("c", "v = 'c'")
        live = [k for k, s in interp._sessions.items() if s.proc is not None]
        assert sorted(live) == ["a", "c"]
        assert interp.execute("a", "print(v)").logs == "a\n"
        result = interp.execute("b", "print('v' in globals())")
        assert result.session_restarted and result.logs == (
            "Note: the previous Python session was shut down to make room for another one (at most 2 sessions run "
            "at once); this is a fresh session, so earlier variables and files are gone.\nFalse\n")
        assert sum(s.proc is not None for s in interp._sessions.values()) == 2
    finally:
        interp.close()


def test_a_session_in_a_call_is_never_shut_down_to_make_room(tmp_path):
    interp = CodeInterpreter(tmp_path, max_sessions=1, timeout_s=30)
    try:
        interp.execute("busy", "import time")
        results = []
        caller = threading.Thread(target=lambda: results.append(interp.execute("busy", "time.sleep(2)\nprint('slept')")))
        caller.start()
        time.sleep(0.3)
        waiting = interp.execute("other", "print(1)", timeout_s=0.5)
        assert waiting.error == "no free Python session" and waiting.logs == (
            "Every one of the 1 Python sessions stayed busy for 0.5 s, so this code did not run.\n")
        caller.join()
        assert results[0].logs == "slept\n"
        assert interp.execute("other", "print(2)").logs == "2\n"  # now the idle one makes room
    finally:
        interp.close()


def test_no_cgroup_is_said_in_the_status_and_per_process_limits_stay(tmp_path):
    interp = CodeInterpreter(tmp_path / "work", cgroup_root=tmp_path / "not-mounted", max_processes=32, timeout_s=30)
    try:
        ok, status = interp.available()
        assert ok and f"no per-session cgroup (no cgroup filesystem is mounted at {tmp_path / 'not-mounted'})" in status
        result = interp.execute("k", "import resource\nprint(resource.getrlimit(resource.RLIMIT_NPROC))")
        assert result.logs == "(32, 32)\n" and result.notice == (
            f"Note: no per-session cgroup (no cgroup filesystem is mounted at {tmp_path / 'not-mounted'}),"
            " so memory and process limits apply per process.\n")
        assert interp.execute("k", "print(1)").notice == ""  # said once per session
    finally:
        interp.close()


def test_a_plain_directory_is_not_taken_for_a_cgroup_tree(tmp_path):
    for name in ("memory", "pids", "cpu"):
        (tmp_path / "fake" / name).mkdir(parents=True)
        (tmp_path / "fake" / name / "cgroup.procs").write_text("")
    interp = CodeInterpreter(tmp_path / "work", cgroup_root=tmp_path / "fake")
    try:
        assert f"no per-session cgroup ({tmp_path / 'fake' / 'memory'} is not a cgroup filesystem)" in interp.available()[1]
        assert list((tmp_path / "fake" / "memory").iterdir()) == [tmp_path / "fake" / "memory" / "cgroup.procs"]
    finally:
        interp.close()


@pytest.mark.skipif(not AS_ROOT, reason="mounting a read-only tree needs root")
def test_a_read_only_cgroup_root_falls_back(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "ro-cgroups", str(root)], check=True)
    try:
        for name in ("memory", "pids"):
            (root / name).mkdir()
            (root / name / "cgroup.procs").write_text("")
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        interp = CodeInterpreter(tmp_path / "work", cgroup_root=root, timeout_s=30)
        try:
            status = interp.available()[1]
            assert f"no per-session cgroup (cannot create a cgroup in {root / 'memory'}: Read-only file system)" in status
            assert interp.execute("k", "print(2)").notice.endswith("per process.\n")
        finally:
            interp.close()
    finally:
        subprocess.run(["umount", str(root)], check=True)


V2_FILES = ("cgroup.procs", "cgroup.controllers", "cgroup.subtree_control", "memory.max", "memory.swap.max",
            "memory.oom.group", "memory.events", "memory.peak", "pids.max", "cpu.max")


def test_a_v2_tree_gets_the_same_budget(tmp_path, monkeypatch):
    """This machine runs v1; a directory tree that behaves like cgroupfs on mkdir checks what v2 is told."""
    def fake_mkdir(path: Path) -> None:
        path.mkdir()
        for name in V2_FILES:
            (path / name).write_text("")

    monkeypatch.setattr(cgroup_module, "make_group", fake_mkdir)
    root = tmp_path / "v2"
    root.mkdir()
    for name in V2_FILES:
        (root / name).write_text("")
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    host = CgroupHost(root)
    assert host.setup() == "cgroup v2 (memory, pids, cpu)"
    (parent,) = host.parents.values()
    assert (root / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    group = host.create(Budget(memory_mb=256, max_processes=16, cpus=0.5))
    assert group.procs_files == [parent / "s1" / "cgroup.procs"]
    limits = {name: (group.main / name).read_text() for name in
              ("memory.max", "memory.swap.max", "memory.oom.group", "pids.max", "cpu.max")}
    assert limits == {"memory.max": str(256 * MB), "memory.swap.max": "0", "memory.oom.group": "1",
                      "pids.max": str(16 + PIDS_OVERHEAD), "cpu.max": "50000 100000"}
    (group.main / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n")
    (group.main / "memory.peak").write_text(str(200 * MB))
    assert group.oom_kills() == 1 and group.peak_bytes() == 200 * MB


@pytest.mark.skipif(not Path("/sys/fs/cgroup/unified/cgroup.controllers").exists(), reason="no hybrid v2 mount here")
def test_a_v2_tree_without_the_memory_controller_falls_back():
    """The hybrid layout's unified tree is real cgroup v2, but the memory controller belongs to v1."""
    root = Path("/sys/fs/cgroup/unified")
    if "memory" in (root / "cgroup.controllers").read_text().split():
        pytest.skip("memory is delegated to the unified tree here")
    interp = CodeInterpreter(Path("/nonexistent-unused"), cgroup_root=root)
    try:
        assert f"no per-session cgroup (the memory and pids controller(s) are not delegated to {root})" in interp.budgets.status()[1]
    finally:
        interp.close()
