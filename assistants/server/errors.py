"""Every error answered in OpenAI's shape `{"error": {message, type, param, code}}` with the status the SDK maps."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from assistants.errors import APIError
from assistants.server.responses import JSONResponse

log = logging.getLogger(__name__)


def error_response(status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict | None = None) -> JSONResponse:
    """A JSON error body exactly as OpenAI sends it."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error(_request: Request, exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes OpenAI's 400, naming the field."""
    first = (exc.errors() or [{}])[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}." if param else str(first.get("msg", "Invalid request."))
    return error_response(400, message, param=param, code="invalid_value")


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Unknown routes and wrong methods, in the same error shape."""
    if exc.status_code == 404:
        message = (f"Unknown request URL: {request.method} {request.url.path}. This server implements the Assistants "
                   "API (assistants, threads, messages, runs, run steps, files, vector stores, models) under /v1.")
        return error_response(404, message, code="unknown_url")
    if exc.status_code == 405:
        return error_response(405, f"Method {request.method} is not allowed on {request.url.path}.",
                              code="method_not_allowed", headers=getattr(exc, "headers", None))
    return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input: logged, answered as a 500 the SDK should not blindly retry."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, f"The server had an error while processing your request ({type(exc).__name__}). "
                               "This is a bug in Assistants Playground; the server log has the details.",
                          type_="server_error", code="server_error", headers={"x-should-retry": "false"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(APIError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
