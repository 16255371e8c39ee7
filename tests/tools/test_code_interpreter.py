"""Code Interpreter: real sandboxed sessions, and the bad input of issue 4 (no mocked sandbox)."""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from assistants.tools.code_interpreter import CodeInterpreter, SandboxUnavailable
from assistants.tools.code_interpreter import interpreter as interpreter_module
from assistants.tools.code_interpreter.sandbox import SANDBOX_UID_BASE, SANDBOX_UID_SPAN

pytestmark = [pytest.mark.no_database,
              pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed (apt-get install bubblewrap)")]
AS_ROOT = os.geteuid() == 0
SANDBOX_UIDS = range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + SANDBOX_UID_SPAN) if AS_ROOT else range(os.getuid(), os.getuid() + 1)


@pytest.fixture(scope="module")
def ci(tmp_path_factory):
    interp = CodeInterpreter(tmp_path_factory.mktemp("ci"), timeout_s=20)
    yield interp
    interp.close()


@pytest.fixture
def small_ci(tmp_path):
    """Tight disk limits, so quota tests are quick."""
    interp = CodeInterpreter(tmp_path, disk_quota_mb=40, max_file_mb=16, max_files=300, timeout_s=20)
    yield interp
    interp.close()


def host_pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def real_uid(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def sandbox_pids(uid: int | None = None) -> set[int]:
    """Host pids running as a sandbox uid (as root: one per session), or as the given one."""
    return {pid for pid in host_pids() if (real_uid(pid) in SANDBOX_UIDS if uid is None else real_uid(pid) == uid)}


def session_uid(ci, key: str) -> int:
    """The host uid the key's session runs as (the sandbox has no user namespace as root)."""
    return int(ci.execute(key, "import os\nprint(os.getuid())").logs)


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def parent_pid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


def wait_until(predicate, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_state_persists_and_last_expression_is_shown(ci):
    assert ci.execute("state", "x = 41").logs == ""
    result = ci.execute("state", "x + 1")
    assert result.logs == "42\n" and result.error is None and not result.session_restarted


def test_reset_drops_the_session(ci):
    ci.execute("reset", "w = 1\nopen('f.txt', 'w').write('x')")
    ci.reset("reset")
    result = ci.execute("reset", "import os\nprint('w' in globals(), os.listdir('.'))")
    assert result.logs == "False []\n" and not result.session_restarted


def test_session_outlives_the_thread_that_started_it(ci):
    starter = threading.Thread(target=ci.execute, args=("thread", "z = 3"))
    starter.start()
    starter.join()
    time.sleep(0.3)  # bwrap --die-with-parent must not fire when that thread ends
    assert ci.execute("thread", "z").logs == "3\n"


def test_sessions_are_isolated_and_run_concurrently(ci):
    results = {}

    def run(key):
        code = f"import time\nsecret = {key!r}\nopen('mine.txt', 'w').write(secret)\ntime.sleep(1)"
        ci.execute(key, code)
        results[key] = ci.execute(key, "import os\nprint(secret, sorted(os.listdir('.')))").logs

    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(key,)) for key in ("iso-a", "iso-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 1.9  # the two 1 s cells overlapped
    assert results == {"iso-a": "iso-a ['mine.txt']\n", "iso-b": "iso-b ['mine.txt']\n"}
    assert "NameError" in ci.execute("iso-c", "secret").logs


def test_exception_shows_traceback_and_session_survives(ci):
    ci.execute("exc", "y = 7")
    result = ci.execute("exc", "def f():\n    return 1 / 0\nf()")
    assert result.error == "ZeroDivisionError: division by zero"
    assert "Traceback" in result.logs and "return 1 / 0" in result.logs
    assert "worker.py" not in result.logs  # worker frames trimmed
    assert ci.execute("exc", "y").logs == "7\n"


def test_matplotlib_figure_becomes_png(ci):
    result = ci.execute("plot", "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    assert result.error is None, result.logs
    assert len(result.images) == 1 and result.images[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert ci.execute("plot", "print('no figure')").images == []  # figures were closed


def test_input_files_visible_and_written_files_returned(ci):
    files = {"../../data.csv": b"a,b\n1,2\n3,4\n"}  # the name is reduced to its basename
    code = "import os\nprint(open('/mnt/data/data.csv').read().count(','))\nopen('out.txt', 'w').write('made')"
    result = ci.execute("files", code, files=files)
    assert result.logs == "3\n4\n" and result.error is None
    assert result.files == [("out.txt", b"made")]  # the unchanged input is not returned


def test_infinite_loop_times_out_kills_group_and_restarts(ci):
    naptime = f"{300 + time.time() % 1:.6f}"  # a unique `sleep` argument finds this session's processes
    ci.execute("loop", "v = 1")
    code = f"import subprocess\nchild = subprocess.Popen(['sleep', '{naptime}'])\nwhile True: pass"
    results = []
    start = time.monotonic()
    caller = threading.Thread(target=lambda: results.append(ci.execute("loop", code, timeout_s=2)))
    caller.start()
    # Popen returns once exec began; /proc shows the new cmdline a moment later
    assert wait_until(lambda: any(cmdline(pid) == ["sleep", naptime] for pid in sandbox_pids()))
    sleeper = next(pid for pid in sandbox_pids() if cmdline(pid) == ["sleep", naptime])
    worker = parent_pid(sleeper)
    assert "worker.py" in " ".join(cmdline(worker))
    caller.join()
    (result,) = results
    assert result.timed_out and result.error and "timed out" in result.error
    assert time.monotonic() - start < 4
    assert wait_until(lambda: not ({sleeper, worker} & sandbox_pids())), "stray sandbox process left"
    after = ci.execute("loop", "print('fresh'); print('v' in globals())")
    assert after.session_restarted and after.logs.endswith("fresh\nFalse\n")
    assert "earlier variables" in after.logs.splitlines()[0]


def test_timeout_returns_what_was_printed_before_it(ci):
    code = ("import subprocess, time\nfor i in range(3):\n    print('step', i)\n"
            "subprocess.run(['echo', 'from a child'])\nprint('no newline', end='')\ntime.sleep(60)")
    result = ci.execute("partial", code, timeout_s=1.5)
    assert result.timed_out and result.error == "timed out after 1.5 s"
    assert result.logs == ("step 0\nstep 1\nstep 2\nfrom a child\nno newline\n"
                           "Execution timed out after 1.5 s and was stopped; the next call starts a fresh session.\n")
    after = ci.execute("partial", "print('next')")
    assert after.session_restarted and "step" not in after.logs and after.logs.endswith("next\n")


def test_output_kept_from_a_timed_out_call_is_capped(ci):
    result = ci.execute("partial-cap", "print('x' * 50_000)\nwhile True: pass", timeout_s=1.5)
    assert result.timed_out and len(result.logs) < 20_200
    assert "x" * 20_000 + "\n[output truncated: 30001 more characters]\nExecution timed out" in result.logs
    flood = ci.execute("partial-cap", "while True:\n    print('y' * 1000)", timeout_s=1.5)  # never stops printing
    assert flood.timed_out and len(flood.logs) < 20_400
    assert "\n[output truncated: at least " in flood.logs and flood.logs.endswith("starts a fresh session.\n")


def test_a_crash_returns_what_was_printed_before_it(ci):
    result = ci.execute("crash", "import os\nprint('before the crash')\nos._exit(3)")
    assert result.logs == "before the crash\nThe Python session ended unexpectedly (exit code 3); the next call starts a fresh one.\n"
    assert result.error == "session ended unexpectedly (exit code 3)"


def test_idle_session_is_shut_down_and_the_next_call_says_so(tmp_path):
    interp = CodeInterpreter(tmp_path, idle_timeout_s=1, timeout_s=20)
    try:
        busy = interp.execute("idle", "import time\ntime.sleep(2.5)\nprint('done')")  # in use, not idle
        assert busy.logs == "done\n" and not interp.execute("idle", "pass").session_restarted
        interp.execute("idle", "v = 1")
        sandbox = interp._sessions["idle"].proc
        # the reaper ends the sandbox by itself, with no call to notice
        assert wait_until(lambda: sandbox.poll() is not None, 5)
        result = interp.execute("idle", "print('v' in globals())")
        assert result.session_restarted and result.logs.endswith("False\n")
        assert result.logs.splitlines()[0] == (
            "Note: the previous Python session was shut down after 1 second without use; "
            "this is a fresh session, so earlier variables and files are gone.")
        reaper = interp._reaper[0]
        assert reaper.is_alive() and reaper.daemon
    finally:
        interp.close()
    assert not reaper.is_alive()


def test_no_reaper_without_an_idle_timeout(ci):
    ci.execute("no-reaper", "pass")
    assert ci._reaper is None


@pytest.mark.skipif(not AS_ROOT, reason="distinct uids need root (setpriv); unprivileged, bwrap maps the user's own uid")
def test_sessions_run_as_distinct_uids_that_cannot_reach_each_other(ci):
    uid_a, uid_b = session_uid(ci, "uid-a"), session_uid(ci, "uid-b")
    assert uid_a != uid_b and uid_a in SANDBOX_UIDS and uid_b in SANDBOX_UIDS
    assert ci.execute("uid-a", "import getpass\ngetpass.getuser()").logs == "'sandbox'\n"  # /etc/passwd knows it
    ci.execute("uid-b", "open('secret.txt', 'w').write('b-secret')")
    (worker_b,) = sandbox_pids(uid_b)
    assert "worker.py" in " ".join(cmdline(worker_b))
    probe = f"kill -0 {worker_b} && echo signalled; cat /proc/{worker_b}/root/mnt/data/secret.txt"

    def escaped_as(uid: int) -> subprocess.CompletedProcess:
        """A process of that uid outside every namespace: what a sandbox escape would leave."""
        setpriv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "/bin/sh", "-c", probe]
        return subprocess.run(setpriv, capture_output=True, text=True, timeout=10, cwd="/")

    from_a = escaped_as(uid_a)
    assert "signalled" not in from_a.stdout and "b-secret" not in from_a.stdout
    assert "not permitted" in from_a.stderr and "Permission denied" in from_a.stderr
    same_uid = escaped_as(uid_b)  # the control: what one shared uid would allow
    assert same_uid.stdout == "signalled\nb-secret"


@pytest.mark.skipif(not AS_ROOT, reason="distinct uids need root (setpriv); unprivileged, bwrap maps the user's own uid")
def test_a_fork_bomb_does_not_starve_other_sessions(ci):
    uid = session_uid(ci, "starve-a")
    ci.execute("starve-b", "import subprocess")
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    results = []
    bomber = threading.Thread(target=lambda: results.append(ci.execute("starve-a", bomb, timeout_s=4)))
    bomber.start()
    try:
        assert wait_until(lambda: len(sandbox_pids(uid)) >= 60, 3)  # at its process limit (64)
        # the limit counts per session (its cgroup, or RLIMIT_NPROC per uid): shared, this fork would fail with EAGAIN
        assert ci.execute("starve-b", "subprocess.run(['true']).returncode").logs == "0\n"
    finally:
        bomber.join()
    assert results[0].timed_out


def test_fork_bomb_is_contained(ci):
    ci.execute("bomb", "pass")  # the session's worker is running before the count
    count, sandboxed = len(host_pids()), len(sandbox_pids())
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = ci.execute("bomb", bomb, timeout_s=3)
    assert result.timed_out
    assert wait_until(lambda: len(sandbox_pids()) < sandboxed), "fork bomb left processes behind"
    assert len(host_pids()) <= count + 10
    assert ci.execute("bomb", "print('ok')").logs.endswith("ok\n")


def test_huge_allocation_is_memory_error_and_session_lives(ci):
    ci.execute("mem", "kept = 'still here'")
    result = ci.execute("mem", "bytearray(4 * 1024**3)")
    assert "MemoryError" in result.logs and result.error.startswith("MemoryError")
    assert ci.execute("mem", "kept").logs == "'still here'\n"


def test_writes_outside_work_dir_fail(ci, tmp_path):
    for target in ("/etc/ci-escape", "/usr/ci-escape", "../../ci-escape", "/ci-escape"):
        result = ci.execute("escape", f"open({target!r}, 'w').write('x')")
        assert result.error and ("PermissionError" in result.error or "Read-only" in result.error), result.logs
    assert not any(os.path.exists(p) for p in ("/etc/ci-escape", "/usr/ci-escape", "/ci-escape", "/mnt/ci-escape"))


def test_no_network_even_to_host_loopback(ci):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = ci.execute("net", f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
        assert result.error and ("ConnectionRefused" in result.error or "OSError" in result.error), result.logs
        with pytest.raises(TimeoutError):
            server.accept()


def test_environment_has_no_secrets(ci, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-not-leak")
    result = ci.execute("env", "import os\nprint(dict(os.environ))")
    assert "OPENAI_API_KEY" not in result.logs and "sk-test" not in result.logs
    assert "MPLBACKEND" in result.logs


def test_many_small_files_hit_the_quota(small_ci):
    free = shutil.disk_usage("/").free
    result = small_ci.execute("many", "for i in range(10_000):\n    open(f'f{i}.txt', 'w').write('x')")
    assert result.error and "No space left on device" in result.error
    assert len(result.files) <= 50  # returned files are capped too
    assert free - shutil.disk_usage("/").free < 100 * 1024**2


def test_huge_file_hits_the_limit(small_ci):
    free = shutil.disk_usage("/").free
    big = "with open('big.bin', 'wb') as f:\n    for _ in range(2048):\n        f.write(bytes(1024**2))"
    result = small_ci.execute("huge", big)
    assert result.error and "File too large" in result.error  # RLIMIT_FSIZE
    several = "for n in range(10):\n    with open(f'part{n}', 'wb') as f:\n        f.write(bytes(15 * 1024**2))"
    result = small_ci.execute("huge", several)
    assert result.error and "No space left on device" in result.error  # the tmpfs quota
    assert free - shutil.disk_usage("/").free < 100 * 1024**2
    assert small_ci.execute("huge", "print('alive')").logs == "alive\n"


def test_output_is_capped_with_a_note(ci):
    result = ci.execute("cap", "print('x' * 50_000)")
    assert len(result.logs) < 20_100
    assert result.logs.endswith("[output truncated: 30001 more characters]\n")


def test_cancel_stops_the_call(ci):
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    start = time.monotonic()
    result = ci.execute("cancel", "import time\ntime.sleep(30)", cancel=cancel)
    assert result.error == "cancelled" and time.monotonic() - start < 3
    assert ci.execute("cancel", "print(1)").session_restarted


def test_missing_bubblewrap_refuses_unless_opted_out(tmp_path, monkeypatch):
    monkeypatch.setattr(interpreter_module, "find_bwrap", lambda: None)
    refusing = CodeInterpreter(tmp_path / "refuse")
    assert refusing.available()[0] is False
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        refusing.execute("k", "print(1)")
    bare = CodeInterpreter(tmp_path / "bare", allow_unsandboxed=True)
    try:
        result = bare.execute("k", "print(1 + 1)")
        assert result.logs.startswith("Warning: the sandbox is off") and result.logs.endswith("2\n")
        late = bare.execute("k", "print('half way')\nwhile True: pass", timeout_s=1)
        assert late.timed_out and "half way\nExecution timed out" in late.logs
    finally:
        bare.close()
