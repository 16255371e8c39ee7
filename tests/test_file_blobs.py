"""File bytes every instance can reach: a file uploaded through one instance is read, searched, run and downloaded
through another (PostgreSQL chunks, or a folder they share); uploads are streamed in and out, whole or not at all."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import openai
import pytest

from assistants import blobs
from assistants.config import load_settings
from assistants.errors import BadRequest, NotFound
from assistants.files import FileService
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from assistants.server import create_app
from assistants.server.background import BackgroundServer
from assistants.store import open_store
from tests.conftest import make_settings, wait_run
from tests.fakes.provider import ScriptedProvider
from tests.file_bytes import stored

pytestmark = pytest.mark.both_databases

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
BOUNDARY = "blob-test-boundary"


def runtime(settings, provider: ScriptedProvider | None = None) -> Runtime:
    return Runtime(settings, router=ModelRouter([provider or ScriptedProvider()], default_model="fake-model"))


def shared_settings(tmp_path: Path, db: str, **overrides):
    """Settings of instance A and B on one database: on PostgreSQL with their own data dirs; SQLite can only be
    shared through one data dir, so there they share it."""
    a = make_settings(tmp_path / "a", **overrides)
    return a, replace(a, data_dir=tmp_path / "b" if db == "postgres" else a.data_dir)


def files_rows(rt) -> int:
    return rt.store.count("files")


class Pattern(io.RawIOBase):
    """`size` bytes of a repeating non-trivial pattern, produced as they are read (never all in memory)."""

    def __init__(self, size: int):
        self.left = size
        self.block = hashlib.sha256(b"seed").digest() * (MiB // 32)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(self.left, MiB if n is None or n < 0 else n)
        self.left -= n
        return self.block[:n]


def pattern_sha(size: int) -> str:
    digest, src = hashlib.sha256(), Pattern(size)
    while block := src.read(MiB):
        digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def pair(tmp_path, db):
    provider = ScriptedProvider()
    a_settings, b_settings = shared_settings(tmp_path, db, code_timeout_s=20)
    a = runtime(a_settings)
    b = runtime(b_settings, provider)
    yield a, b, provider
    b.close()
    a.close()


def test_a_file_uploaded_on_instance_a_is_read_searched_run_and_downloaded_on_instance_b(pair, db):
    a, b, provider = pair
    text = b"The lighthouse keeper logs every ship at dawn.\n" * 40
    f = a.files.create("log.txt", io.BytesIO(text), "assistants")
    image = a.files.create("dot.png", PNG, "vision")
    if db == "postgres":  # in the database, not in A's data dir: B has a data dir of its own
        assert a.settings.blob_dir is None and not (a.settings.data_dir / "files").exists()
        assert stored(a) == sorted([f["id"], image["id"]])
    assert b.files.get(f["id"]) == f and b.files.content(f["id"]) == text
    with b.files.local_path(f["id"]) as path:  # what the search parser reads
        assert path.read_bytes() == text
        copy = path
    if db == "postgres":
        assert not copy.exists()  # the private copy went with the `with`
        assert copy.parent == (b.settings.data_dir / "tmp").resolve() and oct(copy.parent.stat().st_mode)[-3:] == "700"
    # File Search: B indexes and searches the file A took.
    vs = b.vector_stores.create(name="ships", file_ids=[f["id"]])
    assert b.vector_stores.wait_idle(30)
    assert b.vector_stores.get(vs["id"])["file_counts"]["completed"] == 1
    hits = b.vector_stores.search(vs["id"], "lighthouse keeper")["data"]
    assert hits and hits[0]["file_id"] == f["id"]
    # Vision: an image A took reaches B's model as a data URL.
    assert b._image_data_url(image["id"]).startswith("data:image/png;base64,")
    # Download through B's API server with the SDK.
    with BackgroundServer(create_app(b)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        assert client.files.content(f["id"]).read() == text
        assert client.files.retrieve(image["id"]).filename == "dot.png"
    # Code Interpreter on B copies A's file into /mnt/data.
    if shutil.which("bwrap") is None:
        return
    code = "print(open('/mnt/data/log.txt').read().count('lighthouse'))"
    provider.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]}, {"text": "40 ships."})
    asst = b.create_assistant(model="fake-model", tools=[{"type": "code_interpreter"}],
                              tool_resources={"code_interpreter": {"file_ids": [f["id"]]}})
    thread = b.create_thread(messages=[{"role": "user", "content": "count"}])
    run = wait_run(b, thread["id"], b.create_run(thread["id"], assistant_id=asst["id"])["id"], timeout=60)
    assert run["status"] == "completed", run.get("last_error")
    steps = b.list_run_steps(thread["id"], run["id"], order="asc")["data"]
    logs = json.dumps([s["step_details"] for s in steps if s["type"] == "tool_calls"])
    assert "40\\n" in logs


def test_delete_on_one_instance_takes_the_bytes_for_every_instance(pair):
    a, b, _ = pair
    f = a.files.create("gone.txt", b"soon gone", "assistants")
    assert b.files.delete(f["id"])["deleted"]
    assert f["id"] not in stored(a)
    with pytest.raises(NotFound):
        a.files.content(f["id"])


def test_a_failed_or_oversized_upload_leaves_no_row_and_no_bytes(tmp_path, db):
    rt = runtime(make_settings(tmp_path / "d", max_upload_mb=2))
    try:
        with pytest.raises(BadRequest, match="upload limit is 2 MB"):
            rt.files.create("big.bin", Pattern(5 * MiB), "assistants")

        class Breaks(Pattern):
            def read(self, n=-1):
                if self.left < 2 * MiB:
                    raise OSError("the client went away")
                return super().read(n)

        with pytest.raises(OSError, match="went away"):
            rt.files.create("half.bin", Breaks(3 * MiB), "assistants")
        with pytest.raises(BadRequest, match="purpose"):  # checked before a byte is stored
            rt.files.create("x.bin", Pattern(MiB), "nonsense")
        with rt.files.begin_upload("dropped.bin") as upload:  # written, then neither finished nor kept
            upload.write(b"x" * (MiB + 5))
        assert files_rows(rt) == 0 and stored(rt) == []
        ok = rt.files.create("ok.bin", Pattern(2 * MiB), "assistants")
        assert stored(rt) == [ok["id"]] and hashlib.sha256(rt.files.content(ok["id"])).hexdigest() == pattern_sha(2 * MiB)
        if rt.settings.database_url:  # 1 MiB chunks
            import psycopg

            with psycopg.connect(rt.settings.database_url) as conn:
                sizes = [r[0] for r in conn.execute("SELECT length(data) FROM file_blobs ORDER BY seq")]
            assert sizes == [MiB, MiB]
    finally:
        rt.close()


def test_a_commit_that_fails_leaves_nothing_and_frees_what_it_held(tmp_path, db, monkeypatch):
    """The row's insert fails at the very end (the database went away): no bytes stay, no connection stays lent."""
    rt = runtime(make_settings(tmp_path / "d"))
    try:
        def refuse(*args, **kwargs):
            raise RuntimeError("the database went away")

        if rt.settings.blob_dir is None:
            monkeypatch.setattr(rt.store, "_insert_sql", refuse)
        else:
            monkeypatch.setattr(rt.store, "insert", refuse)
        start = time.monotonic()
        for i in range(6):  # more than the PostgreSQL upload pool holds: a leaked connection would make one wait
            with pytest.raises(RuntimeError, match="went away"):
                rt.files.create(f"f{i}.bin", Pattern(MiB + i), "assistants")
        assert time.monotonic() - start < 30
        monkeypatch.undo()
        assert files_rows(rt) == 0 and stored(rt) == []
        ok = rt.files.create("ok.bin", b"fine", "assistants")
        assert stored(rt) == [ok["id"]] and rt.files.content(ok["id"]) == b"fine"
    finally:
        rt.close()


@pytest.mark.parametrize("name", ["../../x.txt", "/etc/passwd", "a\"b;c\r\n.txt", "ünïcödé ✓.txt", "..", "x" * 400])
def test_attacker_style_names_and_ids_through_the_api(tmp_path, db, name):
    rt = runtime(make_settings(tmp_path / "d"))
    try:
        with BackgroundServer(create_app(rt)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
            made = client.files.create(file=(name, b"payload"), purpose="assistants")
            assert stored(rt) == [made.id] and "/" not in made.filename and "\n" not in made.filename
            response = httpx2.get(f"{server.base_url}/files/{made.id}/content")
            assert response.content == b"payload" and response.headers["content-length"] == "7"
            disposition = response.headers["content-disposition"]
            assert disposition.startswith("attachment; filename") and "\n" not in disposition and "\r" not in disposition
            for bad in ("file-..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd", "file-x%00", "file-" + "a" * 300,
                        "file-%2e%2e", "%00"):
                answer = httpx2.get(f"{server.base_url}/files/{bad}/content")
                assert answer.status_code == 404, (bad, answer.text)
                assert answer.json()["error"]["code"] in ("not_found", "unknown_url")
            assert {p.name for p in tmp_path.iterdir()} <= {"d"}  # nothing landed beside the data dir
    finally:
        rt.close()


def _multipart(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for field, filename, data in parts:
        extra = f'; filename="{filename}"' if filename is not None else ""
        out += f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"{extra}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def test_malformed_forms_are_refused_and_leave_nothing(tmp_path, db):
    rt = runtime(make_settings(tmp_path / "d"))
    try:
        with BackgroundServer(create_app(rt)) as server:
            def post(body: bytes) -> httpx2.Response:
                return httpx2.post(f"{server.base_url}/files", content=body,
                                   headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"})
            cases = {
                "Maximum number of files is 1": [("purpose", None, b"assistants"), ("file", "a.txt", b"a"),
                                                 ("file", "b.txt", b"b")],
                "Unrecognized request argument supplied: upload": [("purpose", None, b"assistants"),
                                                                   ("upload", "a.txt", b"a")],
                "purpose must be one of": [("file", "a.txt", b"a" * MiB * 2), ("purpose", None, b"fine-tune")],
                "Missing required parameter: 'file'": [("purpose", None, b"assistants"), ("file", None, b"text")],
                "Part exceeded maximum size": [("purpose", None, b"x" * (100 * 1024)), ("file", "a.txt", b"a")],
            }
            for message, parts in cases.items():
                answer = post(_multipart(parts))
                assert answer.status_code == 400 and message in answer.json()["error"]["message"], answer.text
            cut = _multipart([("purpose", None, b"assistants"), ("file", "a.txt", b"a" * MiB)])[:-30]
            answer = post(cut)
            assert answer.status_code == 400 and "closing boundary" in answer.json()["error"]["message"]
            answer = httpx2.post(f"{server.base_url}/files", content=b"x", headers={"content-type": "multipart/form-data"})
            assert answer.status_code == 400 and "boundary" in answer.json()["error"]["message"]
            assert files_rows(rt) == 0 and stored(rt) == []
            good = post(_multipart([("file", "late-purpose.txt", b"fine"), ("purpose", None, b"assistants")]))
            assert good.status_code == 200 and rt.files.content(good.json()["id"]) == b"fine"
    finally:
        rt.close()


def test_the_shared_folder_serves_two_data_dirs(tmp_path, db):
    """PLAYGROUND_FILES_DIR: the bytes go to the folder both instances mount, never into the database."""
    shared = tmp_path / "shared-files"
    env = {"PLAYGROUND_FILES_DIR": str(shared), "PLAYGROUND_EMBEDDED_MODEL": "0"}
    a_base, b_base = shared_settings(tmp_path, db)
    a_settings = replace(load_settings({**env, "PLAYGROUND_DATA_DIR": str(a_base.data_dir)}, dotenv=False),
                         database_url=a_base.database_url, default_model="fake-model")
    b_settings = replace(a_settings, data_dir=b_base.data_dir)
    assert a_settings.blob_dir == shared.resolve()
    a, b = runtime(a_settings), runtime(b_settings)
    try:
        f = a.files.create("notes.md", Pattern(3 * MiB + 7), "assistants")
        assert sorted(os.listdir(shared)) == [f["id"]] and oct(shared.stat().st_mode)[-3:] == "700"
        assert not (a.settings.data_dir / "files").exists()
        if db == "postgres":
            import psycopg

            with psycopg.connect(a.settings.database_url) as conn:
                assert conn.execute("SELECT COUNT(*) FROM file_blobs").fetchone()[0] == 0
        with b.files.local_path(f["id"]) as path:  # the folder's file itself, no copy
            assert path == shared.resolve() / f["id"]
        assert hashlib.sha256(b"".join(b.files.chunks(f["id"]))).hexdigest() == pattern_sha(3 * MiB + 7)
        # A temp file of a writer that died on this host goes at the next start; a live writer's stays.
        (shared / f".{f['id'][:-1]}Z.{blobs._HOST}.999999999.part").write_bytes(b"left by a dead upload")
        live = shared / f".file-live.{blobs._HOST}.{os.getpid()}.part"
        live.write_bytes(b"still arriving")
        runtime(b_settings).close()
        assert sorted(os.listdir(shared)) == sorted([f["id"], live.name])
        b.files.delete(f["id"])
        assert not (shared / f["id"]).exists()
    finally:
        b.close()
        a.close()


def test_a_files_folder_that_cannot_be_written_stops_the_start_with_a_reason(tmp_path, db):
    (tmp_path / "not-a-folder").write_text("a file where the folder should be")
    settings = replace(make_settings(tmp_path / "d"), files_dir=tmp_path / "not-a-folder" / "files")
    store = open_store(settings)
    try:  # (the server prints this as "cannot start: …" and exits non-zero, as for an unusable database)
        with pytest.raises(ValueError, match=r"not-a-folder/files \(PLAYGROUND_FILES_DIR.* cannot be written: Not a dir"):
            FileService(store, settings)
    finally:
        store.close()


def test_a_file_deleted_while_it_streams_ends_the_stream_with_an_error(tmp_path, db):
    rt = runtime(make_settings(tmp_path / "d"))
    try:
        f = rt.files.create("big.bin", Pattern(4 * MiB), "assistants")
        blocks = rt.files.chunks(f["id"])
        got = len(next(blocks))
        rt.files.delete(f["id"])
        if rt.settings.blob_dir is None:  # PostgreSQL: the chunks went with the row; the reader is told
            with pytest.raises(NotFound, match="stops after 1,048,576 bytes"):
                for block in blocks:
                    got += len(block)
        else:  # a folder's open file keeps its bytes until closed (POSIX): that reader still gets them all
            assert got + sum(len(b) for b in blocks) == 4 * MiB
            assert f["id"] not in stored(rt)
    finally:
        rt.close()


# -- a 100 MB file, streamed in and out ---------------------------------------------------------------------------
BIG = 100 * MiB
MEMORY_LIMIT = 24 * MiB  # what any step may hold at once while moving 100 MB


def _measure(step):
    tracemalloc.start()
    try:
        result = step()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _upload_raw(base_url: str, size: int) -> dict:
    """POST /v1/files with a `size`-byte file written to the socket a block at a time; the server's JSON answer."""
    url = urlsplit(base_url)
    head = _multipart([("purpose", None, b"assistants")])[: -len(f"--{BOUNDARY}--\r\n")]
    head += f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n".encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    with socket.create_connection((url.hostname, url.port), timeout=120) as sock:
        sock.sendall((f"POST /v1/files HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(head) + size + len(tail)}"
                      f"\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode() + head)
        src = Pattern(size)
        while block := src.read(MiB):
            sock.sendall(block)
        sock.sendall(tail)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            block = sock.recv(65536)
            if not block:
                break
            data += block
    status = int(data.split()[1])
    assert status == 200, data
    return json.loads(data.partition(b"\r\n\r\n")[2])


def _download_sha(base_url: str, file_id: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with httpx2.stream("GET", f"{base_url}/files/{file_id}/content", timeout=120) as response:
        assert response.status_code == 200
        for block in response.iter_bytes():
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def test_a_100_mb_file_never_sits_whole_in_memory(tmp_path, db):
    rt = runtime(make_settings(tmp_path / "d", max_upload_mb=100))
    want = pattern_sha(BIG)
    try:
        # Through FileService: in, out block by block, and as a local path.
        made, peak = _measure(lambda: rt.files.create("big.bin", Pattern(BIG), "assistants"))
        assert made["bytes"] == BIG and peak < MEMORY_LIMIT, f"upload peak {peak / MiB:.1f} MiB"

        def read_back():
            digest = hashlib.sha256()
            for block in rt.files.chunks(made["id"]):
                digest.update(block)
            return digest.hexdigest()

        sha, peak = _measure(read_back)
        assert sha == want and peak < MEMORY_LIMIT, f"read peak {peak / MiB:.1f} MiB"

        def via_path():
            with rt.files.local_path(made["id"]) as path:
                return path.stat().st_size

        size, peak = _measure(via_path)
        assert size == BIG and peak < MEMORY_LIMIT, f"local path peak {peak / MiB:.1f} MiB"
        rt.files.delete(made["id"])
        # Through the API server (in this process, so its memory is measured too).
        with BackgroundServer(create_app(rt)) as server:
            answer, peak = _measure(lambda: _upload_raw(server.base_url, BIG))
            assert answer["bytes"] == BIG and peak < MEMORY_LIMIT, f"API upload peak {peak / MiB:.1f} MiB"
            (sha, size), peak = _measure(lambda: _download_sha(server.base_url, answer["id"]))
            assert (sha, size) == (want, BIG) and peak < MEMORY_LIMIT, f"API download peak {peak / MiB:.1f} MiB"
        assert stored(rt) == [answer["id"]]
    finally:
        rt.close()


# -- two real server processes ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(data_dir: Path, database_url: str) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(data_dir), "PLAYGROUND_EMBEDDED_MODEL": "0",
           "PLAYGROUND_OLLAMA_AUTODETECT": "0", "PLAYGROUND_DEFAULT_MODEL": "fake-model",
           "PLAYGROUND_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    for key in ("PLAYGROUND_API_KEYS", "PLAYGROUND_FILES_DIR"):
        env.pop(key, None)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx2.get(f"{base}/models", timeout=1)
            return proc, base
        except httpx2.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
            time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _uploads_in_progress(database_url: str) -> int:
    """Transactions of this database left open (an upload streaming its chunks)."""
    import psycopg

    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url) as conn:
        return conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND state = 'idle in transaction'",
                            (name,)).fetchone()[0]


def test_two_server_processes_share_uploads_and_a_killed_upload_leaves_nothing(tmp_path, db):
    a_settings, b_settings = shared_settings(tmp_path, db)
    a_proc, a_url = _start_server(a_settings.data_dir, a_settings.database_url)
    b_proc, b_url = _start_server(b_settings.data_dir, b_settings.database_url)
    try:
        a_client = openai.OpenAI(base_url=a_url, api_key="x", max_retries=0, timeout=60)
        b_client = openai.OpenAI(base_url=b_url, api_key="x", max_retries=0, timeout=60)
        source = tmp_path / "report.csv"
        source.write_bytes(b"ship,arrived\n" + b"Aurora,dawn\n" * 200_000)  # 2.4 MB, more than two chunks
        with open(source, "rb") as fh:
            made = a_client.files.create(file=fh, purpose="assistants")
        assert made.bytes == source.stat().st_size and made.filename == "report.csv"
        assert b_client.files.retrieve(made.id).bytes == made.bytes
        assert b_client.files.content(made.id).read() == source.read_bytes()

        # Start an upload to A and kill A while the bytes arrive.
        url = urlsplit(a_url)
        sock = socket.create_connection((url.hostname, url.port), timeout=30)
        head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nassistants\r\n"
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n\r\n").encode()
        sock.sendall((f"POST /v1/files HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {60 * MiB}\r\n"
                      f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n").encode() + head)
        for _ in range(6):
            sock.sendall(b"z" * MiB)

        def partial_upload() -> bool:
            if b_settings.database_url:
                return _uploads_in_progress(a_settings.database_url) > 0
            return any(n.endswith(".part") for n in os.listdir(a_settings.blob_dir))

        deadline = time.monotonic() + 20
        while not partial_upload():
            assert time.monotonic() < deadline, "the upload never started writing"
            time.sleep(0.05)
        a_proc.send_signal(signal.SIGKILL)
        a_proc.wait(10)
        sock.close()
        deadline = time.monotonic() + 20
        while b_settings.database_url and _uploads_in_progress(a_settings.database_url):
            assert time.monotonic() < deadline, "the killed upload's transaction stayed open"
            time.sleep(0.05)
        # Nothing of it is a file; B serves on. (A folder's temp file of the dead process goes at the next start.)
        assert [f.id for f in b_client.files.list().data] == [made.id]
        checker = runtime(b_settings)
        try:
            assert stored(checker) == [made.id]
        finally:
            checker.close()
        again = b_client.files.create(file=("after.txt", b"still taking uploads"), purpose="assistants")
        assert b_client.files.content(again.id).read() == b"still taking uploads"
    finally:
        _stop(a_proc)
        _stop(b_proc)
