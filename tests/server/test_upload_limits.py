"""Uploads are counted as they arrive: a chunked or lying upload stops at the limit with a 413, leaving nothing."""

from __future__ import annotations

import os
import select
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.file_bytes import stored
from tests.server.conftest import running_api

LIMIT_MB = 1
BOUNDARY = "limit-test-boundary"
PREAMBLE = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("uploads"), max_upload_mb=LIMIT_MB) as running:
        yield running


def head(api, extra: str) -> bytes:
    url = urlsplit(api.base_url)
    return (f"POST /v1/files HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {api.key}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n").encode()


def connect(api) -> socket.socket:
    url = urlsplit(api.base_url)
    return socket.create_connection((url.hostname, url.port), timeout=10)


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            break
        data += block
    header, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        block = sock.recv(65536)
        if not block:
            break
        body += block
    return int(header.split()[1]), body


def leftovers(api) -> tuple[list[str], int]:
    """What holds file bytes (the files folder, or PostgreSQL's chunks), and this process's open deleted temp files."""
    names = stored(api.rt)
    spooled = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(tempfile.gettempdir()) and "(deleted)" in target:
            spooled += 1
    return names, spooled


def test_a_chunked_upload_without_length_stops_at_the_limit(api):
    before = leftovers(api)
    sock = connect(api)
    sock.sendall(head(api, "Transfer-Encoding: chunked\r\n"))
    block = b"x" * (256 * 1024)
    frame = b"%x\r\n" % len(block) + block + b"\r\n"
    sent = 0
    pending = b"%x\r\n" % len(PREAMBLE) + PREAMBLE + b"\r\n"
    start = time.monotonic()
    while sent < 1024**3 and time.monotonic() - start < 60:  # would be a 1 GB upload
        readable, writable, _ = select.select([sock], [sock], [], 1)
        if readable:  # the server answered while we were still sending
            break
        if writable:  # (when it is not, the server has stopped reading: wait for its answer)
            try:
                done = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += done
            pending = pending[done:] or frame  # a partial send finishes its frame first, keeping the chunks whole
    status, body = read_response(sock)
    sock.close()
    assert status == 413, body
    assert b"upload limit is 1 MB" in body and b"Nothing was stored" in body and b'"param":"file"' in body
    assert sent < 64 * 1024 * 1024, f"the server read {sent} bytes of a 1 MB-limited upload"
    time.sleep(0.2)
    assert leftovers(api) == before


def test_a_declared_length_over_the_limit_is_refused_before_reading(api):
    sock = connect(api)
    sock.sendall(head(api, f"Content-Length: {10 * 1024**3}\r\n") + PREAMBLE)  # claims 10 GB, sends 200 bytes
    start = time.monotonic()
    status, body = read_response(sock)
    sock.close()
    assert status == 413 and time.monotonic() - start < 5
    assert b"10,737,418,240 bytes or more" in body


def test_a_length_that_lies_low_reads_only_what_it_declared(api):
    before = leftovers(api)
    sock = connect(api)
    payload = PREAMBLE + b"x" * (3 * 1024 * 1024) + CLOSING
    sock.sendall(head(api, "Content-Length: 300\r\n"))
    try:
        sock.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, body = read_response(sock)
    sock.close()
    # The form ends early (our 400 names multipart), or the bytes past the declared length reached the HTTP parser
    # first as a malformed next request (uvicorn's httptools parser answers 400 for it and closes): refused either way.
    assert status == 400 and (b"multipart" in body.lower() or body == b"Invalid HTTP request received."), body
    time.sleep(0.2)
    assert leftovers(api) == before


def test_a_file_just_over_the_limit_inside_the_form_slack_is_413_too(api):
    client = api.client()
    with pytest.raises(Exception) as err:
        client.files.create(file=("edge.bin", b"x" * (LIMIT_MB * 1024 * 1024 + 1)), purpose="assistants")
    assert err.value.status_code == 413 and err.value.body["code"] == "file_too_large"


def test_the_server_still_takes_uploads_after_all_that(api):
    client = api.client()
    made = client.files.create(file=("ok.txt", b"x" * (LIMIT_MB * 1024 * 1024)), purpose="assistants")
    assert made.bytes == LIMIT_MB * 1024 * 1024
    assert client.files.content(made.id).read() == b"x" * made.bytes
