"""The FastAPI app (thin): settings check, runtime lifecycle, error handlers and the /v1 routers."""

from __future__ import annotations

import argparse
import socket
import sys
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from assistants.config import Settings, load_settings
from assistants.runtime import Runtime
from assistants.server import errors
from assistants.server.deps import MAX_JSON_BYTES, authorize, is_loopback
from assistants.server.routers import assistants, files, messages, models, runs, steps, threads, vector_stores
from assistants.server.routers import containers, conversations, responses

# Every runtime call blocks, so it runs in the thread pool; a poller may hold a thread for a while.
THREAD_POOL_SIZE = 128


def create_app(runtime: Runtime | None = None, *, max_body_bytes: int = MAX_JSON_BYTES) -> FastAPI:
    """The app; without `runtime` it builds one from the environment at start-up and closes it at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREAD_POOL_SIZE
        owned = app.state.runtime is None
        if owned:
            app.state.runtime = Runtime(load_settings())
        try:
            yield
        finally:
            if owned:
                app.state.runtime.close()
                app.state.runtime = None

    app = FastAPI(title="Assistants Playground API", version="2", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.runtime = runtime
    app.state.max_body_bytes = max_body_bytes
    errors.install(app)
    guarded = [Depends(authorize)]
    # runs first: its POST /threads/runs must win over the threads router's POST /threads/{thread_id}.
    for module in (runs, assistants, threads, messages, steps, files, vector_stores, models):
        app.include_router(module.router, prefix="/v1", dependencies=guarded)
    app.include_router(responses.router, prefix="/v1", dependencies=guarded)
    app.include_router(conversations.router, prefix="/v1", dependencies=guarded)
    app.include_router(containers.router, prefix="/v1", dependencies=guarded)
    return app


def bind_problem(host: str, settings: Settings) -> str | None:
    """Why the server must not listen on `host` (no API keys and not loopback), or None."""
    if settings.api_keys or _only_loopback(host):
        return None
    return (f"Refusing to listen on {host} without API keys: anyone who can reach that address could use your "
            "models, files and code sandbox. Set PLAYGROUND_API_KEYS=key1,key2 (clients send one as their api_key), "
            "or listen on 127.0.0.1.")


def _only_loopback(host: str) -> bool:
    if is_loopback(host):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(is_loopback(a) for a in addresses)


def main(argv: list[str] | None = None) -> int:
    """`python -m assistants.server [--host 127.0.0.1] [--port 8000]`."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m assistants.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    args = parser.parse_args(argv)
    settings = load_settings()
    problem = bind_problem(args.host, settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    runtime = Runtime(settings)
    try:
        print(f"Assistants API on http://{args.host}:{args.port}/v1 (data in {settings.data_dir}); "
              f"{'API keys required' if settings.api_keys else 'no API keys: loopback only'}.", file=sys.stderr)
        # Open event streams must not keep Ctrl+C waiting for their runs to end.
        uvicorn.run(create_app(runtime), host=args.host, port=args.port, log_level=args.log_level,
                    timeout_graceful_shutdown=5)
    finally:
        runtime.close()
    return 0
