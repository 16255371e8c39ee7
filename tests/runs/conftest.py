"""Two real processes on one data dir: a Runtime in a subprocess (process A) and this test's Runtime (process B)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.runs.proc import make_runtime

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2.0


class Proc:
    """Process A: a Runtime in a child process, driven by JSON lines.

    With `env`, the process builds its Runtime from that environment as the Playground does (`data_dir` unused).
    """

    def __init__(self, data_dir: Path | None, *, user: int | None = None, env: dict | None = None):
        args = ["--env"] if env is not None else [str(data_dir), str(LEASE_S)]
        env = {**(os.environ if env is None else env), "PYTHONPATH": str(ROOT)}
        preexec = None
        if user is not None:
            def preexec():  # a neighbour running as another uid (as another user or container would)
                os.setgid(user)
                os.setuid(user)
        self.p = subprocess.Popen([sys.executable, "-m", "tests.runs.proc", *args], cwd=ROOT, env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=preexec)
        self.ready = self.read()
        self.pending: list[dict] = []

    def read(self) -> dict:
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"process A ended (exit {self.p.poll()})")
        return json.loads(line)

    def ask(self, **cmd) -> dict:
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        while True:
            reply = self.read()
            if "tag" in reply:  # a stream's result arrived first: keep it for wait_tag
                self.pending.append(reply)
                continue
            return reply

    def wait_tag(self, tag: str) -> dict:
        while True:
            for reply in self.pending:
                if reply["tag"] == tag:
                    return reply
            self.pending.append(self.read())

    def close(self) -> None:
        if self.p.poll() is None:
            try:
                self.ask(op="exit")
            except (OSError, RuntimeError, ValueError):
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


@pytest.fixture
def shared_dir(db):
    """A data dir every uid can reach (pytest's own tmp dirs are private to root); on PostgreSQL, its database."""
    data = Path(tempfile.mkdtemp(prefix="runs-shared-", dir="/tmp"))
    os.chmod(data, 0o777)
    yield data
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def proc_a(shared_dir):
    b = make_runtime(str(shared_dir))  # migrate first, so A and B never race to create the schema
    b.close()
    a = Proc(shared_dir)
    yield a
    a.close()


@pytest.fixture
def rt_b(shared_dir, proc_a):
    rt = make_runtime(str(shared_dir), LEASE_S)
    yield rt
    rt.close()
