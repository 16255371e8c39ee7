"""`input_file` parts: an uploaded file or inline file data, read to text the model can take in its context."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from assistants.errors import BadRequest, NotFound
from assistants.tools.file_search.parse import ParseError, extract_text

MAX_FILE_BYTES = 32 * 1024 * 1024  # OpenAI's limit for a file given in the input
MAX_FILE_CHARS = 400_000  # about 100k tokens: more would not fit a context anyway


def read(part: dict, where: str, rt: Any) -> tuple[dict, str]:
    """(the part as input items echo it, its text for the model); 400 naming the field when it cannot be read."""
    file_id, data_url, name = part.get("file_id"), part.get("file_data"), part.get("filename")
    if part.get("file_url") is not None:
        raise BadRequest(f"{where}.file_url: this server does not fetch URLs; upload the file or send file_data.",
                         param=f"{where}.file_url", code="unsupported_parameter")
    if isinstance(file_id, str):
        try:
            meta = rt.files.get(file_id)
        except (NotFound, AttributeError):
            raise BadRequest(f"File '{file_id}' does not exist.", param=f"{where}.file_id") from None
        if meta.get("bytes", 0) > MAX_FILE_BYTES:
            raise BadRequest(f"File '{file_id}' is larger than {MAX_FILE_BYTES // 2**20} MB.", param=f"{where}.file_id")
        name, data = meta["filename"], rt.files.content(file_id)
    elif isinstance(data_url, str):
        if not isinstance(name, str) or not name:
            raise BadRequest(f"{where}.filename is required with file_data.", param=f"{where}.filename")
        data = _decode(data_url, f"{where}.file_data")
    else:
        raise BadRequest(f"{where} needs a file_id or file_data.", param=f"{where}.file_id")
    try:
        text = extract_text(name, data, max_chars=MAX_FILE_CHARS)
    except ParseError as exc:
        raise BadRequest(f"{where}: the file '{name}' cannot be read ({exc}).", param=f"{where}.file_id"
                         if file_id else f"{where}.file_data", code="invalid_file") from None
    echo = {"type": "input_file", "file_id": file_id if isinstance(file_id, str) else None, "filename": name}
    return echo, f"[file {name}]\n{text}"


def _decode(value: str, param: str) -> bytes:
    payload = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    if len(payload) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise BadRequest(f"{param} is larger than {MAX_FILE_BYTES // 2**20} MB.", param=param)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{param} must be base64 (optionally a data: URL).", param=param) from None
