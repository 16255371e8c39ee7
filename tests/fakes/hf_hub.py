"""A Hugging Face hub on loopback: what huggingface_hub's model_info, get_hf_file_metadata and http_get ask for.

- `GET /api/models/{repo}[/revision/{rev}]` -> the repo's info; with `?blobs=true` each sibling carries its size and
  LFS sha256 (what `HfApi.model_info(files_metadata=True)` reads).
- `HEAD|GET /{repo}/resolve/{rev}/{file}` -> the file, with `X-Repo-Commit`, `ETag`, `X-Linked-Etag`,
  `X-Linked-Size` and `Range` support (206 + `Content-Range`).
- Errors the way the hub sends them: `X-Error-Code` (RepoNotFound, GatedRepo, EntryNotFound, RevisionNotFound) and
  `X-Error-Message`.

Knobs for bad weather: `throttle` (bytes/s); `drop_after` (the next `drops` GETs send that many bytes and hang
up; with `then_offline` the network stays gone after that); `offline` (every file request is hung up on before an
answer); `corrupt` (serves other bytes than the sha256 says); `gated` (repos that need a token).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    """A file of a fake repo, served from a real file on disk."""

    path: Path
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        self.size = self.path.stat().st_size
        if not self.sha256:
            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
            self.sha256 = digest.hexdigest()


@dataclass
class FakeHub:
    """The fake hub's content and its weather; mutate the knobs between requests."""

    repos: dict[str, dict[str, HubFile]] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)
    token: str = "hf_test_token"   # accepted for gated repos
    throttle: int | None = None    # bytes per second for file bodies
    drop_after: int | None = None  # hang up after this many body bytes ...
    drops: int = 0                 # ... on this many GETs
    then_offline: bool = False     # after such a hang-up the network stays gone (sets `offline`)
    offline: bool = False
    corrupt: bool = False
    log: list[dict] = field(default_factory=list)
    url: str = ""

    def gets(self) -> list[dict]:
        """The file GETs received so far (with their Range header)."""
        return [r for r in self.log if r["method"] == "GET" and "/resolve/" in r["path"]]


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _error(self, status: int, code: str | None, message: str, commit: bool = False) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            if commit:
                self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, data: dict) -> None:
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._route()

        def do_GET(self) -> None:
            self._route()

        def _route(self) -> None:
            parsed = urlparse(self.path)
            path = unquote(parsed.path)
            hub.log.append({"method": self.command, "path": path, "range": self.headers.get("Range"),
                            "authorization": self.headers.get("Authorization")})
            if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path):
                return self._info(m.group(1), m.group(2) or "main", "true" in parse_qs(parsed.query).get("blobs", []))
            if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
                return self._file(m.group(1), m.group(2), m.group(3))
            self._error(404, None, "Not found")

        def _info(self, repo: str, revision: str, blobs: bool) -> None:
            if repo not in hub.repos:
                # The real hub answers 401 for a repo that does not exist (or that it will not show you).
                return self._error(401, "RepoNotFound", "Repository not found")
            if revision not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            siblings = []
            for name, f in sorted(hub.repos[repo].items()):
                sib: dict = {"rfilename": name}
                if blobs:
                    sib.update(size=f.size, blobId=f.sha256[:40],
                               lfs={"size": f.size, "sha256": f.sha256, "pointerSize": 134})
                siblings.append(sib)
            self._json({"id": repo, "modelId": repo, "sha": COMMIT, "private": False,
                        "gated": "auto" if repo in hub.gated else False, "siblings": siblings, "tags": ["gguf"]})

        def _file(self, repo: str, revision: str, name: str) -> None:
            if hub.offline:
                self.close_connection = True
                self.connection.shutdown(2)  # hang up before answering: the network is gone
                return
            if repo not in hub.repos:
                return self._error(401, "RepoNotFound", "Repository not found")
            if revision not in ("main", COMMIT):
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if repo in hub.gated and self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._error(401, "GatedRepo", f"Access to model {repo} is restricted. You must have access "
                                   "to it and be authenticated to access it. Please log in.", commit=True)
            f = hub.repos[repo].get(name)
            if f is None:
                return self._error(404, "EntryNotFound", f"{name} does not exist on \"{revision}\"", commit=True)
            start = 0
            if (rng := self.headers.get("Range")) and (m := re.fullmatch(r"bytes=(\d+)-", rng)):
                start = int(m.group(1))
                if start >= f.size:
                    return self._error(416, None, "Range Not Satisfiable")
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{f.sha256}"')
            self.send_header("X-Linked-Etag", f'"{f.sha256}"')
            self.send_header("X-Linked-Size", str(f.size))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(f.size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{f.size - 1}/{f.size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            self._body(f, start)

        def _body(self, f: HubFile, start: int) -> None:
            limit = None
            if hub.drop_after is not None and hub.drops > 0:
                hub.drops -= 1
                limit = hub.drop_after
            sent, t0 = 0, time.monotonic()
            with open(f.path, "rb") as src:
                src.seek(start)
                while chunk := src.read(64 * 1024):
                    if hub.corrupt:
                        chunk = bytes(b ^ 0x5A for b in chunk[:16]) + chunk[16:] if sent > 1024 else chunk
                    if limit is not None and sent + len(chunk) > limit:
                        chunk = chunk[: max(0, limit - sent)]
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client went away (Cancel)
                    sent += len(chunk)
                    if limit is not None and sent >= limit:
                        hub.offline = hub.offline or hub.then_offline
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)  # the connection drops half-way
                        return
                    if hub.throttle:
                        ahead = sent / hub.throttle - (time.monotonic() - t0)
                        if ahead > 0:
                            time.sleep(ahead)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # hang-ups are the point of some tests


class HubServer:
    """Serve a FakeHub on 127.0.0.1 in a background thread (a context manager)."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.httpd = _QuietServer(("127.0.0.1", 0), _handler(hub))
        hub.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fake-hf-hub")

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main() -> None:
    """`python -m tests.fakes.hf_hub PORT [THROTTLE]`: serve the embedded model as catalog repos (for trying the UI)."""
    import sys

    from assistants.model_catalog import CATALOG
    from assistants.providers.embedded import model_path

    f = HubFile(model_path())
    hub = FakeHub(repos={m.repo: {m.filename: f} for m in CATALOG},
                  throttle=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    httpd = _QuietServer(("127.0.0.1", int(sys.argv[1])), _handler(hub))
    print(f"fake hub on http://127.0.0.1:{sys.argv[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
