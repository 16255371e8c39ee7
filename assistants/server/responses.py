"""The JSON response every route answers with: OpenAI's compact JSON, and never a token a client cannot parse."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSON

from assistants import jsonsafe


class JSONResponse(_StarletteJSON):
    """A NaN or Infinity stored before the API refused them goes out as null, so a list that shows it still works."""

    def render(self, content: Any) -> bytes:
        return jsonsafe.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
