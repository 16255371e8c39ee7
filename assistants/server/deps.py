"""Shared request dependencies: the runtime, auth, JSON bodies, pagination and parameter checks."""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from fastapi import Request

from assistants import jsonsafe
from assistants.errors import APIError, BadRequest, Unauthorized, Unsupported
from assistants.runtime import Runtime

MAX_JSON_BYTES = 8 * 1024 * 1024
# SDK pollers sleep this long between retrieves when the server says so (their default is 1 s).
POLL_AFTER_MS = "25"
POLL_HEADERS = {"openai-poll-after-ms": POLL_AFTER_MS}


class TooLarge(APIError, status=413, type="invalid_request_error"):
    """The request body passed a size limit; nothing of it was kept."""


def get_runtime(request: Request) -> Runtime:
    """The one Runtime this app serves."""
    return request.app.state.runtime


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (with or without IPv6 brackets)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def authorize(request: Request) -> None:
    """Bearer key check against settings.api_keys; with no keys there is nothing to check (see guard.py)."""
    keys = get_runtime(request).settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                           "(the SDK does this with api_key=...).", code="missing_api_key")
    if not any(hmac.compare_digest(token.encode(), k.encode()) for k in keys):
        shown = f"{token[:3]}...{token[-4:]}" if len(token) > 8 else "***"
        raise Unauthorized(f"Incorrect API key provided: {shown}. Use one of the keys in PLAYGROUND_API_KEYS.",
                           code="invalid_api_key")


async def json_body(request: Request) -> dict:
    """The request's JSON object (empty body -> {}); 413 when too large, 400 when malformed or not an object."""
    limit = getattr(request.app.state, "max_body_bytes", MAX_JSON_BYTES)
    raw = b"".join([chunk async for chunk in limited_body(request, limit, _too_large)])
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("The request body is not UTF-8 encoded JSON.", code="invalid_json") from None
    except RecursionError:  # the C parser's own depth guard, hit long before the server's stack is at risk
        raise BadRequest(f"The JSON body is nested far too deeply; at most {jsonsafe.MAX_DEPTH} levels are accepted.",
                         code="nesting_too_deep") from None
    except ValueError as exc:
        raise BadRequest(f"We could not parse the JSON body of your request ({exc}). The body must be a JSON object; "
                         "check quoting and commas.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object, not {type(body).__name__}.", code="invalid_json")
    # Python's parser takes NaN, Infinity and 1e999; stored, they would break every list that shows them.
    jsonsafe.check(body)
    return body


async def limited_body(request: Request, limit: int, too_large: Callable[[int, int], APIError]) -> AsyncIterator[bytes]:
    """The body's chunks, stopping with `too_large(size, limit)` once more than `limit` bytes arrive.

    A declared Content-Length over the limit is refused before reading; a missing or lying one is caught
    while reading, so a chunked upload never gets further than the limit.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        yield chunk


def _too_large(size: int, limit: int) -> TooLarge:
    return TooLarge(f"The request body is too large ({size} bytes or more); the limit is {limit} bytes. "
                    "Upload big content as a file instead.", code="request_too_large")


def page_params(request: Request) -> dict:
    """limit / order / after / before from the query string, as OpenAI's list endpoints take them."""
    q = request.query_params
    out: dict[str, Any] = {}
    if "limit" in q:
        try:
            out["limit"] = int(q["limit"])
        except ValueError:
            raise BadRequest(f"limit must be an integer between 1 and 100 (got {q['limit']!r}).", param="limit") from None
    for key in ("order", "after", "before"):
        if q.get(key):
            out[key] = q[key]
    return out


def includes(request: Request) -> list[str]:
    """`include[]=...` values (the SDK's bracket array format; plain `include=` also accepted)."""
    q = request.query_params
    return q.getlist("include[]") + q.getlist("include")


def only(body: dict, allowed: Iterable[str]) -> dict:
    """The body unchanged, or a 400 naming the first parameter OpenAI's endpoint does not take."""
    allowed = set(allowed)
    for key in body:
        if key not in allowed:
            raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
    return body


def modify_metadata(body: dict, get: Callable[..., dict], update: Callable[..., dict], *ids: str) -> dict:
    """A modify endpoint that takes only `metadata`: `update(*ids, metadata=...)`, or without it the object as it is."""
    only(body, ("metadata",))
    if "metadata" not in body:  # the runtime would read a missing metadata as "clear it"
        return get(*ids)
    return update(*ids, metadata=body["metadata"])


def service(rt: Runtime, name: str) -> Any:
    """`rt.files` / `rt.vector_stores`, or a 400 saying that feature is not installed."""
    svc = getattr(rt, name, None)
    if svc is None:
        label = {"files": "Files", "vector_stores": "Vector stores"}[name]
        raise Unsupported(f"{label} are not installed in this server (the runtime has no {name} service yet), "
                          f"so /v1/{name} is not available.", code="feature_not_installed")
    return svc


def call(fn: Callable, body: dict, openai_params: Iterable[str], *args: Any) -> Any:
    """Call a service method with the body as keywords: unknown to OpenAI -> 400, known but not taken -> 400 by name."""
    only(body, openai_params)
    accepted = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs = {}
    for key, value in body.items():
        if key not in accepted and not takes_any:
            if value is None:  # an explicit null asks for nothing, so there is nothing to refuse
                continue
            raise Unsupported(f"The parameter '{key}' is not supported by this server.", param=key,
                              code="unsupported_parameter")
        kwargs[key] = value
    return fn(*args, **kwargs)
