"""Run the app with uvicorn in a background thread on a free port (tests, benchmarks, embedding in other apps)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class BackgroundServer:
    """`with BackgroundServer(app) as srv:` serves `app` at `srv.base_url` (ends in /v1) until the block ends."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0):
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets of that protocol, and
        # without it every keep-alive response (headers, then body) waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.base_url = f"http://{self.host}:{self.port}/v1"
        # A real HTTP/1.1 server (not an in-memory transport), so streaming and concurrency are what clients get.
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=30,
                                limit_concurrency=None, backlog=512,
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name="api-server", daemon=True)

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
