"""File Search parsing is time-bound: PDF and DOCX are read in a child process that is killed when slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from assistants.tools.file_search import parse
from assistants.tools.file_search.parse import ParseError, extract_text
from tests.tools.documents import docx_with


PARIS = b"The capital of France is Paris. It sits on the Seine and is famous for the Eiffel Tower."


def pdf(text: str = "x", *, repeat: int = 1, pages: int = 1) -> bytes:
    """A valid PDF whose pages all draw one compressed content stream showing `text` `repeat` times."""
    content = b"BT /F1 12 Tf 72 720 Td " + b"(%s) Tj " % text.encode() * repeat + b"ET"
    packed = zlib.compress(content, 9)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *[page] * pages,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def slow_pdf() -> bytes:
    """A 3 KB PDF of 20 pages, each drawing the same 100,000 text operators.

    pypdf parses the content stream again for every page at several microseconds an
    operator: reading it takes over ten seconds (about 16 s where this was written).
    """
    return pdf(repeat=100_000, pages=20)


def make_pdf(text: str) -> bytes:
    return pdf(text)


def upload(rt, name: str, data: bytes) -> str:
    return rt.files.create(name, data, "assistants")["id"]


def chunk_count(rt, vs_id: str, file_id: str) -> int:
    sql = "SELECT COUNT(*) FROM fs_chunks WHERE vector_store_id = ? AND file_id = ?"
    if not hasattr(rt.store, "conn"):  # PostgreSQL
        return rt.store._rows(sql.replace("?", "%s"), (vs_id, file_id))[0][0]
    return rt.store.conn().execute(sql, (vs_id, file_id)).fetchone()[0]


@pytest.fixture
def children(monkeypatch):
    """Every reader process started, to check that none is left running."""
    started: list[subprocess.Popen] = []
    real = subprocess.Popen

    def recording(*args, **kwargs):
        child = real(*args, **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(parse.subprocess, "Popen", recording)
    return started


def test_the_slow_pdf_is_a_valid_pdf_only_bigger():
    # The same construction, smaller: it reads fine, in the child and in this process.
    assert extract_text("small.pdf", pdf(repeat=1000)) == "x" * 1000
    assert extract_text("two.pdf", pdf(repeat=10, pages=2), timeout_s=None) == "x" * 10 + "\n\n" + "x" * 10


def test_a_pdf_that_takes_too_long_to_read_is_stopped_at_the_limit(children):
    start = time.monotonic()
    with pytest.raises(ParseError, match=r"^took longer than 0\.5 s to read \(a PDF"):
        extract_text("slow.pdf", slow_pdf(), timeout_s=0.5)
    assert time.monotonic() - start < 5
    (child,) = children
    assert child.returncode is not None  # killed and reaped, not left running


def test_pdf_and_docx_are_read_in_a_child_process(children):
    assert "revenue" in extract_text("report.pdf", make_pdf("Quarterly revenue grew"))
    assert extract_text("memo.docx", docx_with("Offsite in Lisbon")) == "Offsite in Lisbon"
    assert extract_text("notes.txt", b"plain text stays in this process") == "plain text stays in this process"
    assert len(children) == 2 and all(child.returncode == 0 for child in children)
    with pytest.raises(ParseError, match="corrupt PDF"):  # the child's ParseError comes back as it is
        extract_text("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog")
    with pytest.raises(ParseError, match="no text found in DOCX"):
        extract_text("blank.docx", docx_with(""))


@pytest.mark.parametrize("name, data", [("stuck.pdf", make_pdf("text")), ("stuck.docx", docx_with("text"))], ids=["pdf", "docx"])
def test_a_reader_that_hangs_is_killed(monkeypatch, children, name, data):
    monkeypatch.setattr(parse, "_CHILD_CODE", "import time; time.sleep(60)")
    start = time.monotonic()
    with pytest.raises(ParseError, match=r"took longer than 0\.3 s to read"):
        extract_text(name, data, timeout_s=0.3)
    assert time.monotonic() - start < 5 and children[0].returncode is not None


@pytest.mark.parametrize(
    "code, message",
    [
        ("import sys; sys.stderr.write('Traceback\\nMemoryError\\n'); sys.exit(1)", r"the PDF reader exited with code 1 \(MemoryError\)"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", r"the PDF reader was killed by signal 9"),
        ("print('garbage')", r"the PDF reader exited with code 0"),
    ],
    ids=["error", "signal", "garbage"],
)
def test_a_reader_that_crashes_fails_the_file_with_a_reason(monkeypatch, code, message):
    monkeypatch.setattr(parse, "_CHILD_CODE", code)
    with pytest.raises(ParseError, match=message):
        extract_text("report.pdf", make_pdf("text"))


def test_a_reader_that_needs_too_much_memory_fails_the_file_with_a_reason(monkeypatch):
    monkeypatch.setattr(parse, "PARSE_MEMORY_MB", 256)
    # The real child, whose reader then tries to hold 1 GiB (as a hostile file can make pypdf do).
    original = parse._CHILD_CODE
    hog = "module.extract_text = lambda *a, **k: bytearray(1 << 30)\n"
    greedy = parse._CHILD_CODE.replace("module._child_main(", hog + "module._child_main(")
    assert greedy != parse._CHILD_CODE
    monkeypatch.setattr(parse, "_CHILD_CODE", greedy)
    with pytest.raises(ParseError, match="needs more than 256 MB of memory"):
        extract_text("report.pdf", make_pdf("text"))
    monkeypatch.setattr(parse, "_CHILD_CODE", original)
    assert "revenue" in extract_text("report.pdf", make_pdf("Quarterly revenue grew"), timeout_s=30)  # real reading fits


def test_the_callers_max_chars_applies_in_the_child():
    with pytest.raises(ParseError, match="text too long"):
        extract_text("small.pdf", pdf(repeat=1000), max_chars=500)
    assert extract_text("small.pdf", pdf(repeat=1000), max_chars=2000) == "x" * 1000


def test_a_file_too_slow_to_read_fails_and_the_rest_of_the_batch_goes_on(rt):
    rt.vector_stores.parse_timeout_s = 1.0
    ids = {
        "slow.pdf": upload(rt, "slow.pdf", slow_pdf()),
        "paris.txt": upload(rt, "paris.txt", PARIS),
        "report.pdf": upload(rt, "report.pdf", make_pdf("Quarterly revenue grew by twelve percent")),
        "memo.docx": upload(rt, "memo.docx", docx_with("The offsite is planned for October in Lisbon.")),
    }
    vs = rt.vector_stores.create(name="with a slow file")
    start = time.monotonic()
    batch = rt.vector_stores.create_batch(vs["id"], file_ids=list(ids.values()))
    assert rt.vector_stores.wait_idle(60)
    assert time.monotonic() - start < 10  # unbounded, slow.pdf alone takes over ten seconds
    batch = rt.vector_stores.get_batch(vs["id"], batch["id"])
    assert batch["status"] == "completed"
    assert batch["file_counts"] == {"in_progress": 0, "completed": 3, "failed": 1, "cancelled": 0, "total": 4}
    slow = rt.vector_stores.get_file(vs["id"], ids["slow.pdf"])
    assert slow["status"] == "failed" and slow["last_error"]["code"] == "invalid_file"
    assert slow["last_error"]["message"].startswith("slow.pdf: took longer than 1 s to read")
    assert chunk_count(rt, vs["id"], ids["slow.pdf"]) == 0
    for query, name in (("Paris Seine", "paris.txt"), ("revenue twelve", "report.pdf"), ("offsite Lisbon", "memo.docx")):
        hits = rt.vector_stores.search(vs["id"], query)["data"]
        assert hits and hits[0]["filename"] == name, (query, hits)


def test_csv_dialect_sniffing_stays_fast_on_pathological_text():
    # csv.Sniffer's quote regexes are quadratic here: 12 s over a 64 KiB sample, 0.2 s over 8 KiB.
    data = b',"' * 32_768
    start = time.monotonic()
    assert extract_text("quotes.csv", data)
    assert time.monotonic() - start < 2
    assert extract_text("semi.csv", b"name;city\nAda;London\nLin;Paris\n") == "name, city\nname: Ada, city: London\nname: Lin, city: Paris"


# A process that reads slow.pdf through the real reader child, then waits; the test SIGKILLs it mid-read.
_PARENT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("parse", sys.argv[1])
parse = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parse)
if sys.argv[3] == "polling":  # as on a system without prctl: the child must notice by itself
    parse._CHILD_CODE = "import ctypes; ctypes.CDLL = lambda *a, **k: object()\\n" + parse._CHILD_CODE
parse.extract_text("slow.pdf", open(sys.argv[2], "rb").read(), timeout_s=600)
"""


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (whoever adopted it may not reap it at once)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the reader process")
@pytest.mark.parametrize("how", ["prctl", "polling"])
def test_a_reader_dies_with_its_parent_even_when_the_parent_is_killed(tmp_path, how):
    document = tmp_path / "slow.pdf"
    document.write_bytes(slow_pdf())
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, parse.__file__, str(document), how])
    child = None
    try:
        deadline = time.monotonic() + 30
        while child is None:
            assert parent.poll() is None and time.monotonic() < deadline, "the reader child never started"
            child = next(iter(_children_of(parent.pid)), None)
            time.sleep(0.05)
        time.sleep(1.0)  # the reader is well into the document now (it needs over ten seconds)
        assert _running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child), f"reader {child} kept running after its parent was killed"
    finally:
        parent.kill()
        parent.wait()
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)
