"""Real documents built in memory for the parser and indexing tests."""

from __future__ import annotations

import io

import docx


def docx_with(text: str) -> bytes:
    """A one-paragraph DOCX file holding `text`."""
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
