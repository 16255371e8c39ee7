"""Code Interpreter: real sandboxed sessions, and the bad input of issue 4 (no mocked sandbox)."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from assistants.tools.code_interpreter import CodeInterpreter, SandboxUnavailable
from assistants.tools.code_interpreter import interpreter as interpreter_module

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap is not installed (apt-get install bubblewrap)")
SANDBOX_UID = "65534"


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


def sandbox_pids() -> set[int]:
    """Host pids running as the sandbox uid."""
    found = set()
    for pid in host_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if uid_line.split()[1] == SANDBOX_UID:
            found.add(pid)
    return found


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
    ci.execute("loop", f"import subprocess\nchild = subprocess.Popen(['sleep', '{naptime}'])\nv = 1")
    # Popen returns once exec began; /proc shows the new cmdline a moment later
    assert wait_until(lambda: any(cmdline(pid) == ["sleep", naptime] for pid in sandbox_pids()))
    sleeper = next(pid for pid in sandbox_pids() if cmdline(pid) == ["sleep", naptime])
    worker = parent_pid(sleeper)
    assert "worker.py" in " ".join(cmdline(worker))
    start = time.monotonic()
    result = ci.execute("loop", "while True: pass", timeout_s=2)
    assert result.timed_out and result.error and "timed out" in result.error
    assert time.monotonic() - start < 4
    assert wait_until(lambda: not ({sleeper, worker} & sandbox_pids())), "stray sandbox process left"
    after = ci.execute("loop", "print('fresh'); print('v' in globals())")
    assert after.session_restarted and after.logs.endswith("fresh\nFalse\n")
    assert "earlier variables" in after.logs.splitlines()[0]


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
    finally:
        bare.close()
