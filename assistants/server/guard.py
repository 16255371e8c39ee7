"""What a web page in the user's browser may do to the API: nothing, unless it is the server's own page.

The SDK, curl and every other HTTP library send no `Origin` and no `Sec-Fetch-Site` and post JSON. A page on
another site can still make the browser send a "simple" request (a form, or `fetch` with a text/plain body) to
http://127.0.0.1:8000 without asking first; the answer is unreadable to it, but the side effect happens. So:

- a foreign `Origin` (anything but this server's own origin, `null` included) is refused with 403, for every
  method: no page elsewhere has a reason to call us, and there is no CORS, so it could not read a reply anyway;
- `Sec-Fetch-Site: cross-site` or `same-site` (another port on localhost) is refused the same way, which also
  covers loads that carry no Origin (images, scripts, frames, links followed from another site);
- a request body must be `application/json` (`multipart/form-data` only where files are uploaded): browsers
  cannot send those cross-site without a CORS preflight, which this server never grants;
- without API keys the server listens on loopback only, and only a loopback name (or the host it was started
  with) is accepted in `Host`: a DNS-rebinding page reaches 127.0.0.1 under its own name and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from assistants.server.deps import is_loopback
from assistants.server.errors import error_response

DEFAULT_PORTS = {"http": 80, "https": 443}
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that take multipart/form-data (file uploads); every other body is JSON.
UPLOAD_PATHS = {"/v1/files"}
UPLOAD_PATTERN = re.compile(r"/v1/containers/[^/]+/files")  # a container file's content (or JSON with file_id)


def _upload(path: str) -> bool:
    return path in UPLOAD_PATHS or UPLOAD_PATTERN.fullmatch(path) is not None


def split_host(value: str) -> tuple[str, int | None]:
    """`Host` header value -> (lower-case name without IPv6 brackets, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:  # a bare name, or an unbracketed IPv6 address (no port can be told apart)
        name, port = value, ""
    return name, int(port) if port.isdigit() else None


class BrowserGuard:
    """ASGI middleware applying the Host, Origin, Sec-Fetch-Site and Content-Type rules above."""

    def __init__(self, app: ASGIApp, *, keyed: Callable[[], bool], hosts: Iterable[str] = ()):
        self.app = app
        self.keyed = keyed
        self.hosts = {split_host(h)[0] for h in hosts if h}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope):
        """The error response for a request a browser page could have forged, or None to let it through."""
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host_header = headers.get("host", "")
        host, port = split_host(host_header) if host_header else ("localhost", None)
        if not self.keyed() and not (is_loopback(host) or host in self.hosts):
            return _forbidden(
                f"This server has no API keys configured (PLAYGROUND_API_KEYS), so it only answers requests addressed "
                f"to localhost, not to '{host_header}'. Use http://127.0.0.1:<port>/v1 as the base URL, or set API "
                "keys to serve other names.", "host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host, port):
            return _forbidden(
                f"Requests from web pages on other sites are refused (Origin: {origin[:200]}). The API is for "
                "programs (the openai SDK, curl) and sends no CORS headers; call it from your own code, not from a "
                "page in a browser.", "origin_not_allowed")
        site = headers.get("sec-fetch-site", "").lower()
        if site in ("cross-site", "same-site"):
            return _forbidden(
                f"Requests a browser makes on behalf of another site are refused (Sec-Fetch-Site: {site}). Call the "
                "API from your own code, or open its URL directly.", "cross_site_request")
        if scope["method"] in BODY_METHODS:
            return _content_type_problem(headers, _upload(scope["path"]) and scope["method"] == "POST")
        return None


def _same_origin(origin: str, host: str, port: int | None) -> bool:
    """Whether a browser's Origin header names this very server (same host and port as the request's Host)."""
    try:
        parts = urlsplit(origin.strip())
        origin_port = parts.port
    except ValueError:
        return False
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:  # "null", file://, chrome-extension://, junk
        return False
    origin_port = origin_port or DEFAULT_PORTS[parts.scheme]
    return parts.hostname.lower() == host and origin_port == (port or DEFAULT_PORTS[parts.scheme])


def _content_type_problem(headers: dict[str, str], upload: bool):
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not media:
        if headers.get("content-length", "0").strip() in ("", "0") and "transfer-encoding" not in headers:
            return None  # nothing to read (cancel, delete, curl -X POST)
        media = "(none)"
    if media == "application/json" or (upload and media == "multipart/form-data"):
        return None
    if upload:
        how = "multipart/form-data with the fields 'file' and 'purpose' (curl: -F file=@name -F purpose=assistants)"
    else:
        how = "application/json (curl: -H 'Content-Type: application/json')"
    return error_response(415, f"Unsupported Content-Type {media}: send the body as {how}.",
                          code="unsupported_content_type")


def _forbidden(message: str, code: str):
    return error_response(403, message, code=code)
