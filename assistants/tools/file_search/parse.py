"""Turn uploaded file bytes into plain text for indexing, refusing what cannot be read."""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import PurePosixPath


class ParseError(Exception):
    """A file cannot be turned into text; the message is the reason a person reads."""


# Extensions read as plain text: prose, markup and source code of common languages.
_TEXT_EXTENSION_LIST = """
    .txt .text .md .markdown .mdx .rst .adoc .asciidoc .org .tex .log .nfo .py .pyi .pyw
    .ipynb .c .h .cc .cpp .cxx .hh .hpp .hxx .cs .java .kt .kts .scala .groovy .go .rs
    .swift .m .mm .rb .php .pl .pm .lua .r .jl .dart .ex .exs .erl .hrl .hs .elm .clj .cljs
    .edn .fs .fsx .ml .mli .nim .zig .v .vhd .vhdl .f .f90 .f95 .pas .sol .js .mjs .cjs
    .jsx .ts .tsx .vue .svelte .css .scss .sass .less .sh .bash .zsh .fish .ps1 .bat .cmd
    .sql .graphql .gql .proto .yaml .yml .toml .ini .cfg .conf .properties .env .xml .xsd
    .svg .rss .gradle .cmake .mk .dockerfile .tf .hcl .nix .diff .patch .srt .vtt
"""
TEXT_EXTENSIONS = frozenset(_TEXT_EXTENSION_LIST.split())
JSON_EXTENSIONS = frozenset({".json", ".jsonl", ".ndjson", ".geojson"})
CSV_EXTENSIONS = frozenset({".csv", ".tsv"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})

# Zip-bomb guards for DOCX, checked against the archive's declared sizes before anything is
# inflated (zipfile stops at the declared size, so a lying header cannot inflate further).
MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_UNCOMPRESSED = 256 * 1024 * 1024
MAX_ZIP_RATIO = 100
ZIP_RATIO_MIN_BYTES = 16 * 1024 * 1024  # small archives may compress well without harm

# PDF and DOCX are read in a child process killed after this long: a pathological file can
# keep pypdf busy for hours, and a worker thread cannot be stopped from outside.
PARSE_TIMEOUT_S = 60.0
# Address space for the PDF/DOCX reader process: a hostile file fails with a reason, not the host.
PARSE_MEMORY_MB = 2048

_SNIFF_BYTES = 65_536
# csv.Sniffer's quote-guessing regexes take time quadratic in the sample on some inputs
# (12 s for 64 KiB of ',"'): a few KiB of rows is as good a sample and costs 0.2 s at worst.
_CSV_SNIFF_CHARS = 8_192
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def extract_text(
    filename: str,
    data: bytes,
    *,
    max_chars: int = 20_000_000,
    timeout_s: float | None = PARSE_TIMEOUT_S,
) -> str:
    """Return the readable text of a file, or raise ParseError with the reason.

    PDF and DOCX are read in a child process given timeout_s seconds of wall-clock time
    (None reads them in this process, without a limit); the other formats are read here,
    in time linear in their size.
    """
    ext = _extension(filename)
    if not data.strip():
        raise ParseError("empty file")
    is_pdf = ext == ".pdf" or (not ext and data.startswith(b"%PDF-"))
    if timeout_s is not None and (is_pdf or ext == ".docx"):
        if not is_pdf:
            _check_zip(data)  # reads only the zip directory: a bomb is refused without a process
        return _extract_in_child(".pdf" if is_pdf else ".docx", data, max_chars, timeout_s)
    if is_pdf:
        text = _pdf_text(data, max_chars)
        what = "PDF (scanned images only?)"
    elif ext == ".docx":
        text = _docx_text(data, max_chars)
        what = "DOCX"
    else:
        if len(data) > 4 * max_chars:  # no encoding packs more than 4 bytes per character
            raise ParseError(_too_long(len(data) // 4, max_chars))
        decoded = _decode(data)
        if decoded is None:
            known = ext in TEXT_EXTENSIONS | JSON_EXTENSIONS | CSV_EXTENSIONS | HTML_EXTENSIONS
            if known:
                raise ParseError(f"file looks binary, not text ({ext})")
            raise ParseError(f"unsupported file type {ext or '(no extension)'} (binary)")
        if ext in JSON_EXTENSIONS:
            text, what = _json_text(decoded), "JSON"
        elif ext in CSV_EXTENSIONS:
            text, what = _csv_text(decoded, tab=ext == ".tsv"), "CSV"
        elif ext in HTML_EXTENSIONS:
            text, what = _html_text(decoded), "HTML (visible text)"
        else:
            text, what = decoded, "file"
    text = text.replace("\x00", "")
    if not text.strip():
        raise ParseError("empty file" if what == "file" else f"no text found in {what}")
    if len(text) > max_chars:
        raise ParseError(_too_long(len(text), max_chars))
    return text


def _extension(filename: str) -> str:
    """Lower-case extension of the last path component ('' when none)."""
    name = PurePosixPath(filename.replace("\\", "/")).name.lower()
    if name in {"dockerfile", "makefile"}:
        return ".dockerfile" if name == "dockerfile" else ".mk"
    return PurePosixPath(name).suffix


# The child loads this file by path rather than importing the package, so it starts in a
# tenth of a second (no numpy) and nothing from the working directory is imported first.
_CHILD_CODE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_file_search_parse", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module._child_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
"""


def _extract_in_child(ext: str, data: bytes, max_chars: int, timeout_s: float) -> str:
    """extract_text in a fresh Python process, killed once timeout_s seconds have passed."""
    what = ext[1:].upper()
    command = [sys.executable, "-P", "-c", _CHILD_CODE, __file__, f"document{ext}", str(max_chars), str(PARSE_MEMORY_MB),
               str(os.getpid())]
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # no Ctrl-C meant for the server; killed by us only
        )
    except (OSError, ValueError) as exc:
        raise ParseError(f"could not start a process to read the {what} ({_reason(exc)})") from exc
    try:
        out, err = child.communicate(data, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(child)
        child.communicate()
        raise ParseError(f"took longer than {timeout_s:g} s to read (a {what} too complex or malformed?)") from None
    except BaseException:
        _kill(child)
        child.wait()
        raise
    status, _, body = out.partition(b"\n")
    if child.returncode == 0 and status in (b"text", b"error"):
        message = body.decode("utf-8", "surrogatepass")
        if status == b"error":
            raise ParseError(message)
        return message
    last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
    code = child.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    raise ParseError(f"the {what} reader {how} ({last[0][:200]})")


def _kill(child: subprocess.Popen) -> None:
    """Kill the child and anything it started (its own session and process group)."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:  # gone already, or the group is not ours to signal
        child.kill()


def _child_main(filename: str, max_chars: int, memory_mb: int = PARSE_MEMORY_MB, parent: int | None = None) -> None:
    """The child's side: the file on stdin, "text" or "error" and a newline, then the text or reason on stdout."""
    import resource

    if parent is not None:
        _die_with(parent)
    logging.disable(logging.WARNING)  # pypdf's warnings about damaged files would only fill a pipe
    data = sys.stdin.buffer.read()
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        status, body = b"text", extract_text(filename, data, max_chars=max_chars, timeout_s=None)
    except ParseError as exc:
        status, body = b"error", str(exc)
    except MemoryError:
        status, body = b"error", f"needs more than {memory_mb} MB of memory to read (too complex or malformed?)"
    sys.stdout.buffer.write(status + b"\n" + body.encode("utf-8", "surrogatepass"))
    sys.stdout.buffer.flush()


PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5


def _die_with(parent: int) -> None:
    """End this reader when the process that started it dies (even by SIGKILL), instead of parsing on for nobody.

    Linux kills it the moment the parent goes (PR_SET_PDEATHSIG; "parent" is the thread that started it, which
    waits on it until it ends); elsewhere a thread notices within PARENT_POLL_S that it was re-parented.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no prctl: not Linux
        armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if armed:
        return
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _too_long(n: int, max_chars: int) -> str:
    return f"text too long: {n:,} characters (limit {max_chars:,})"


def _decode(data: bytes) -> str | None:
    """Decode text sensibly (BOMs, UTF-8, UTF-16 without BOM, cp1252, latin-1); None if binary."""
    # UTF-32 LE before UTF-16 LE: its BOM starts with the same two bytes.
    for bom, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            try:
                return _normalise_newlines(data[len(bom) :].decode(codec))
            except UnicodeDecodeError:
                return None
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        codec = _utf16_without_bom(sample)
        if codec is None:
            return None
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            return None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _legacy_or_damaged_utf8(data)
    head = text[:_SNIFF_BYTES]
    if len(_CONTROL_CHARS.findall(head)) > 0.05 * len(head):
        return None
    return _normalise_newlines(text)


def _legacy_or_damaged_utf8(data: bytes) -> str:
    """UTF-8 with a few bad bytes stays UTF-8; otherwise it is a legacy 8-bit encoding."""
    text = data.decode("utf-8", errors="replace")
    damaged = text.count("\ufffd")
    if len(_UTF8_MULTIBYTE.findall(data)) >= 4 * damaged:
        return text
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # cp1252 leaves five bytes undefined; latin-1 takes all
        return data.decode("latin-1")


def _utf16_without_bom(sample: bytes) -> str | None:
    """Recognise BOM-less UTF-16 of mostly-Latin text by NULs in every other byte."""
    even, odd = sample[0::2], sample[1::2]
    if not odd:
        return None
    nul_even, nul_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if nul_odd > 0.3 and nul_even < 0.05:
        return "utf-16-le"
    if nul_even > 0.3 and nul_odd < 0.05:
        return "utf-16-be"
    return None


def _normalise_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _pdf_text(data: bytes, max_chars: int) -> str:
    """Text of every page of a PDF with pypdf."""
    from pypdf import PdfReader  # imported late: only PDF uploads pay for it

    with _damaged_as_parse_error("PDF"):  # pypdf raises many types on damaged files
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs carry only an owner password; those open with an empty user password.
            try:
                opened = reader.decrypt("")
            except Exception as exc:
                raise ParseError(f"encrypted PDF cannot be opened: {exc}") from exc
            if not opened:
                raise ParseError("encrypted PDF (password required)")
        return _join_within(max_chars, "\n\n", (page.extract_text() or "" for page in reader.pages))


def _check_zip(data: bytes) -> None:
    """Refuse archives whose declared contents would expand beyond sane limits."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ParseError(f"corrupt DOCX: not a valid zip archive ({_reason(exc)})") from exc
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ParseError(f"archive has too many entries ({len(infos):,}; zip bomb?)")
    total = sum(info.file_size for info in infos)
    packed = sum(info.compress_size for info in infos)
    biggest = max(
        (info.file_size / max(info.compress_size, 1) for info in infos if info.file_size >= ZIP_RATIO_MIN_BYTES),
        default=0,
    )
    too_dense = total >= ZIP_RATIO_MIN_BYTES and total > MAX_ZIP_RATIO * max(packed, 1)
    if total > MAX_ZIP_UNCOMPRESSED or too_dense or biggest > MAX_ZIP_RATIO:
        raise ParseError("archive expands beyond limit (zip bomb?)")


def _docx_text(data: bytes, max_chars: int) -> str:
    """Paragraphs and tables of a DOCX body, in document order, with python-docx."""
    _check_zip(data)
    import docx  # imported late: only DOCX uploads pay for it
    from docx.table import Table

    def text_of(block) -> str:
        if isinstance(block, Table):
            return "\n".join(" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows)
        return block.text

    with _damaged_as_parse_error("DOCX"):  # python-docx raises many types on damaged packages
        document = docx.Document(io.BytesIO(data))
        return _join_within(max_chars, "\n", (text_of(block) for block in document.iter_inner_content()))


def _join_within(max_chars: int, sep: str, texts: Iterable[str]) -> str:
    """The texts joined by `sep`; a ParseError as soon as they pass max_chars (a piece counts with its separator)."""
    parts, total = [], 0
    for text in texts:
        total += len(text) + len(sep)
        if total > max_chars:
            raise ParseError(_too_long(total, max_chars))
        parts.append(text)
    return sep.join(parts)


@contextmanager
def _damaged_as_parse_error(kind: str) -> Iterator[None]:
    """A parser's own exceptions become ParseError("corrupt <kind>: ..."); a ParseError passes as it is."""
    try:
        yield
    except ParseError:
        raise
    except Exception as exc:
        raise ParseError(f"corrupt {kind}: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _json_text(text: str) -> str:
    """Pretty-printed JSON (or JSON Lines); text that is not JSON is indexed as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        pass
    try:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError):
        return text
    return "\n\n".join(json.dumps(record, indent=2, ensure_ascii=False) for record in records)


def _csv_text(text: str, *, tab: bool) -> str:
    """One line per row; cells labelled with their column when the first row is a header."""
    if tab:
        dialect: type[csv.Dialect] | csv.Dialect = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:_CSV_SNIFF_CHARS], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(cell.strip() for cell in row)]
    except csv.Error:
        return text
    if not rows:
        return ""
    header = [cell.strip() for cell in rows[0]]
    if len(rows) > 1 and _looks_like_header(header):
        lines = [", ".join(header)]
        for row in rows[1:]:
            cells = (f"{name}: {value.strip()}" for name, value in zip(header, row, strict=False) if value.strip())
            extra = (value.strip() for value in row[len(header) :] if value.strip())
            lines.append(", ".join([*cells, *extra]))
        return "\n".join(lines)
    return "\n".join(", ".join(cell.strip() for cell in row) for row in rows)


def _looks_like_header(cells: list[str]) -> bool:
    """Non-empty, distinct, non-numeric cells: a column header rather than data."""
    if not cells or len(set(cells)) != len(cells):
        return False
    for cell in cells:
        if not cell:
            return False
        try:
            float(cell.replace(",", ""))
        except ValueError:
            continue
        return False
    return True


_HTML_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "canvas", "iframe", "object"})
_HTML_BLOCK_WORDS = """
    address article aside blockquote body br dd details div dl dt fieldset figcaption
    figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary
    table td th title tr ul
"""
_HTML_BLOCK = frozenset(_HTML_BLOCK_WORDS.split())


class _VisibleText(HTMLParser):
    """Collects text a browser would show, dropping scripts, styles and comments."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self.skipping += 1
        elif tag in _HTML_BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_BLOCK:  # <br/>, <hr/>; a self-closed skip tag has no content to skip
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _HTML_BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def _html_text(html: str) -> str:
    """Visible text of an HTML page, one block per line."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
