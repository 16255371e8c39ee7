"""multipart/form-data uploads streamed straight into file storage, and file bytes streamed back out.

Starlette's form parser spools a file part into a temp file, which FileService then copied to its own storage:
every upload was written twice. Here the file part's bytes go from the socket into the `Upload` (a folder's temp
file, or PostgreSQL chunks) as they arrive, counted against the limit, and the other fields are kept in memory.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import StreamingResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from assistants.errors import APIError, BadRequest
from assistants.files import Upload
from assistants.server.deps import limited_body

MAX_FIELD_BYTES = 64 * 1024  # a text field (purpose, file_id): never big


@dataclass
class UploadForm:
    """A multipart form of at most one file: its text fields, and the file (streamed into storage, not yet a file)."""

    fields: dict[str, str] = field(default_factory=dict)
    upload: Upload | None = None
    file_field: str | None = None  # the file part's field name

    def keys(self) -> list[str]:
        return [*self.fields, *([self.file_field] if self.file_field else [])]

    async def close(self) -> None:
        """Forget the file's bytes unless `upload.finish` made them a file."""
        if self.upload is not None and not self.upload.done:
            await run_in_threadpool(self.upload.abort)


def _bad(message: str) -> BadRequest:
    return BadRequest(f"The multipart body could not be read: {message}", param="file")


class _Parts:
    """python-multipart callbacks collecting what one network read produced; the caller acts on it between reads."""

    def __init__(self, charset: str, max_fields: int):
        self.charset, self.max_fields = charset, max_fields
        self.headers: dict[bytes, bytes] = {}
        self._name, self._value = b"", b""
        self.field: tuple[str, bytearray] | None = None  # the text part being read
        self.in_file = False
        self.file_started: str | None = None  # filename of a file part that began in this read
        self.file_data: list[bytes] = []
        self.fields: list[tuple[str, str]] = []
        self.files = 0
        self.file_field: str | None = None
        self.ended = False

    def decode(self, raw: bytes) -> str:
        try:
            return raw.decode(self.charset)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")

    def callbacks(self) -> dict:
        return {"on_part_begin": self.on_part_begin, "on_part_data": self.on_part_data, "on_part_end": self.on_part_end,
                "on_header_field": self.on_header_field, "on_header_value": self.on_header_value,
                "on_header_end": self.on_header_end, "on_headers_finished": self.on_headers_finished,
                "on_end": self.on_end}

    def on_part_begin(self) -> None:
        self.headers, self.field, self.in_file = {}, None, False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise _bad('The Content-Disposition header field "name" must be provided.')
        name = self.decode(options[b"name"])
        if b"filename" in options:
            self.files += 1
            if self.files > 1:
                raise _bad("Too many files. Maximum number of files is 1.")
            self.in_file = True
            self.file_started = self.decode(options[b"filename"])
            self.file_field = name
        else:
            if len(self.fields) >= self.max_fields:
                raise _bad(f"Too many fields. Maximum number of fields is {self.max_fields}.")
            self.field = (name, bytearray())

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.file_data.append(data[start:end])
        elif self.field is not None:
            if len(self.field[1]) + end - start > MAX_FIELD_BYTES:
                raise _bad(f"Part exceeded maximum size of {MAX_FIELD_BYTES // 1024}KB.")
            self.field[1].extend(data[start:end])

    def on_part_end(self) -> None:
        if self.field is not None:
            self.fields.append((self.field[0], self.decode(bytes(self.field[1]))))
        self.field, self.in_file = None, False

    def on_end(self) -> None:
        self.ended = True


async def receive_upload(request: Request, begin: Callable[[str], Upload], limit: int,
                         too_large: Callable[[int, int], APIError], *, max_fields: int) -> UploadForm:
    """Parse the request's multipart body as it arrives (at most `limit` bytes), the file part into `begin(filename)`.

    Any error leaves nothing stored; on success the caller finishes the upload (or closes the form to drop it).
    """
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise _bad("Missing boundary in multipart.")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        charset = "latin-1"
    parts = _Parts(charset, max_fields)
    form = UploadForm()
    try:
        parser = MultipartParser(boundary, parts.callbacks())
        async for chunk in limited_body(request, limit, too_large):
            try:
                parser.write(chunk)
            except FormParserError:
                raise _bad("Invalid multipart data.") from None
            if parts.file_started is not None:
                filename, parts.file_started = parts.file_started, None
                form.file_field = parts.file_field
                form.upload = await run_in_threadpool(begin, filename)
            if parts.file_data:
                data, parts.file_data = b"".join(parts.file_data), []
                await run_in_threadpool(form.upload.write, data)
        try:
            parser.finalize()
        except FormParserError:
            raise _bad("Invalid multipart data.") from None
        if not parts.ended:
            raise _bad("the body ended before its closing boundary (was the upload cut short?).")
        form.fields = dict(parts.fields)
        return form
    except BaseException:
        if form.upload is not None:  # here, not in a thread: a cancelled request must not keep its transaction
            form.upload.abort()
        raise


def download(blocks: Iterator[bytes], size: int, filename: str) -> StreamingResponse:
    """A file's bytes streamed as they are read (a block at a time), with its length and name."""
    quoted = quote(filename)
    disposition = (f'attachment; filename="{filename}"' if quoted == filename
                   else f"attachment; filename*=utf-8''{quoted}")
    return StreamingResponse(blocks, media_type="application/octet-stream",
                             headers={"content-length": str(size), "content-disposition": disposition})
