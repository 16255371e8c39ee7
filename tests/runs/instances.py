"""API server processes (`python -m assistants.server`) sharing one database, for the multi-instance tests and benches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai

from tests.pg_cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def instance_env(data_dir: Path | str, model_url: str, database_url: str, **settings) -> dict:
    """The environment of one instance: its data dir, the fake model backend, the database ("" = SQLite) and
    `settings` as PLAYGROUND_<NAME> variables (e.g. run_workers=2)."""
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(data_dir), "PLAYGROUND_EMBEDDED_MODEL": "0",
           "PLAYGROUND_OLLAMA_AUTODETECT": "0", "PLAYGROUND_BACKENDS": f"fake={model_url}",
           "PLAYGROUND_DEFAULT_MODEL": "fake-model", "PYTHONPATH": str(ROOT), "PLAYGROUND_DATABASE_URL": database_url}
    env.pop("PLAYGROUND_API_KEYS", None)
    env.update({f"PLAYGROUND_{name.upper()}": str(value) for name, value in settings.items()})
    return env


class ApiServer:
    """One `python -m assistants.server` on a free loopback port; `client()` is an openai SDK client for it."""

    def __init__(self, env: dict, *, wait: bool = True):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.p = subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(self.port),
                                   "--log-level", "warning"], cwd=ROOT, env=env)
        self.pid = self.p.pid
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout_s: float = 60.0) -> ApiServer:
        """Until it answers (a server that exits or stays silent is stopped, with an error)."""
        probe = self.client()
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                probe.models.list()
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline or self.p.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the API server on port {self.port} did not start (exit {self.p.poll()})") from None
                time.sleep(0.1)
        return self

    def client(self, **options) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key="x", **{"max_retries": 0, **options})

    def kill(self) -> None:
        """SIGKILL: no shutdown, its leases simply stop being renewed."""
        os.kill(self.pid, signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
