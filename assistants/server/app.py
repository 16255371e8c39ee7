"""The FastAPI app (thin): settings check, runtime lifecycle, error handlers, the browser guard and the /v1 routers."""

from __future__ import annotations

import argparse
import sys
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI

from assistants.config import load_settings
from assistants.runtime import Runtime
from assistants.server import errors
from assistants.server.deps import MAX_JSON_BYTES, authorize
from assistants.server.guard import BrowserGuard
from assistants.server.listen import ListenError, bare_host, bind_problem, listen, url_host
from assistants.server.responses import JSONResponse
from assistants.server.routers import assistants, files, messages, models, runs, steps, threads, vector_stores
from assistants.server.routers import containers, conversations, responses
from assistants.store import DatabaseUnavailable

__all__ = ["bind_problem", "create_app", "main"]

# Every runtime call blocks, so it runs in the thread pool; a poller may hold a thread for a while.
THREAD_POOL_SIZE = 128
EXIT_REFUSED = 2  # the configuration is not safe to serve (as argparse's usage errors)
EXIT_CANNOT_LISTEN = 1
EXIT_NO_DATABASE = 3  # PLAYGROUND_DATABASE_URL unreachable, refused us, or migrated by a newer version


def create_app(runtime: Runtime | None = None, *, max_body_bytes: int = MAX_JSON_BYTES,
               host: str | None = None) -> FastAPI:
    """The app; without `runtime` it builds one from the environment at start-up and closes it at shutdown.

    `host` is the name the server was started with: without API keys, it is accepted in `Host` besides loopback names.
    """
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
                  openapi_url=None, default_response_class=JSONResponse)
    app.state.runtime = runtime
    app.state.max_body_bytes = max_body_bytes
    errors.install(app)
    app.add_middleware(BrowserGuard, keyed=lambda: bool(app.state.runtime.settings.api_keys), hosts=[host or ""])
    guarded = [Depends(authorize)]
    # runs first: its POST /threads/runs must win over the threads router's POST /threads/{thread_id}.
    for module in (runs, assistants, threads, messages, steps, files, vector_stores, models):
        app.include_router(module.router, prefix="/v1", dependencies=guarded)
    app.include_router(responses.router, prefix="/v1", dependencies=guarded)
    app.include_router(conversations.router, prefix="/v1", dependencies=guarded)
    app.include_router(containers.router, prefix="/v1", dependencies=guarded)
    return app


def main(argv: list[str] | None = None) -> int:
    """`python -m assistants.server [--host 127.0.0.1] [--port 8000]`."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m assistants.server", description=main.__doc__, epilog=(
        "Exit status: 0 after a clean stop, 1 when it cannot listen (port in use, no such address), "
        "2 for bad arguments or when it refuses to listen beyond loopback without PLAYGROUND_API_KEYS, "
        "3 when the database (PLAYGROUND_DATABASE_URL) cannot be used."))
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; ::1 for IPv6)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    args = parser.parse_args(argv)
    host = bare_host(args.host)
    settings = load_settings()
    problem = bind_problem(host, settings)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_REFUSED
    try:
        sock = listen(host, args.port)
    except ListenError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CANNOT_LISTEN
    try:
        runtime = Runtime(settings)
    except (DatabaseUnavailable, ValueError) as exc:  # the message names the database without its password
        sock.close()
        print(f"cannot start: {exc}", file=sys.stderr)
        return EXIT_NO_DATABASE
    try:
        port = sock.getsockname()[1]
        print(f"Assistants API on http://{url_host(host)}:{port}/v1 (data in {settings.data_dir}); "
              f"{'API keys required' if settings.api_keys else 'no API keys: loopback only'}.", file=sys.stderr)
        # Open event streams must not keep Ctrl+C waiting for their runs to end.
        config = uvicorn.Config(create_app(runtime, host=host), log_level=args.log_level, timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        runtime.close()
    return 0


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: use a number between 1 and 65535 (0 picks a free one)")
    return int(value)
