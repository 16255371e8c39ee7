"""`python -m assistants.server`: IPv6 loopback works, and every failure to listen says why with exit status 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from assistants.config import load_settings
from assistants.server.app import main
from assistants.server.listen import ListenError, bind_problem, listen
from tests.server.conftest import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def env(tmp_path, monkeypatch):
    """No keys, no backends, a fresh data dir: what a first `python -m assistants.server` sees."""
    values = {"PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_EMBEDDED_MODEL": "0", "PLAYGROUND_API_KEYS": "",
              "PLAYGROUND_BACKENDS": "", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **values}


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_loopback_serves(env, host):
    port = free_port(socket.AF_INET6, "::1")
    proc = subprocess.Popen([sys.executable, "-m", "assistants.server", "--host", host, "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        response = wait_until_serving(proc, f"http://[::1]:{port}/v1/assistants", 30)
        assert response.status_code == 200 and response.json()["object"] == "list"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"http://[::1]:{port}/v1" in err.decode()


def test_a_port_in_use_is_exit_1_saying_so(env, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"Cannot listen on 127.0.0.1:{port}: the port is already in use" in err and "--port" in err


def test_an_unknown_host_is_exit_1_saying_so_not_a_keys_lecture(env, capsys):
    assert main(["--host", "no-such-host.invalid", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "Cannot listen on 'no-such-host.invalid'" in err and "--host 127.0.0.1" in err
    assert "API keys" not in err


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_a_usage_error(env, capsys, port):
    with pytest.raises(SystemExit) as exit_:
        main(["--port", port])
    assert exit_.value.code == 2 and "is not a port" in capsys.readouterr().err


def test_an_address_this_machine_does_not_have(env):
    with pytest.raises(ListenError, match=r"this machine has no address 192\.0\.2\.1"):
        listen("192.0.2.1", 0)


def test_still_refuses_beyond_loopback_without_keys_with_exit_2(env, capsys):
    settings = load_settings(dotenv=False)
    assert bind_problem("[::1]", settings) is None and bind_problem("localhost", settings) is None
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "Refusing to listen on 0.0.0.0 without API keys" in capsys.readouterr().err


def test_listen_binds_what_it_was_given():
    sock = listen("localhost", 0)  # a name with IPv4 and IPv6 addresses gets IPv4
    try:
        assert sock.family == socket.AF_INET and sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()
