"""Turning request content into message content blocks, and messages into plain text."""

from __future__ import annotations

from typing import Any

from assistants.errors import BadRequest

IMAGE_DETAILS = ("auto", "low", "high")


def content_blocks(content: Any, param: str = "content") -> list[dict]:
    """A string or a list of parts -> the Message `content` array OpenAI returns."""
    if isinstance(content, str):
        if not content.strip():
            raise BadRequest(f"{param} must not be empty.", param=param)
        return [text_block(content)]
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{param} must be a non-empty string or a list of content parts.", param=param)
    blocks = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append(text_block(part["text"]))
        elif kind == "image_file" and isinstance(part.get("image_file"), dict) and isinstance(part["image_file"].get("file_id"), str):
            blocks.append({"type": "image_file", "image_file": {
                "file_id": part["image_file"]["file_id"],
                "detail": image_detail(part["image_file"].get("detail"), f"{where}.image_file.detail")}})
        elif kind == "image_url" and isinstance(part.get("image_url"), dict) and isinstance(part["image_url"].get("url"), str):
            blocks.append({"type": "image_url", "image_url": {
                "url": part["image_url"]["url"],
                "detail": image_detail(part["image_url"].get("detail"), f"{where}.image_url.detail")}})
        else:
            raise BadRequest(f"{where} must be a text, image_file or image_url part.", param=where)
    return blocks


def image_detail(value: Any, param: str) -> str:
    """An image part's detail: auto (the default), low or high; anything else is a 400 naming `param`."""
    if value is None:
        return "auto"
    if value not in IMAGE_DETAILS:
        raise BadRequest(f"{param} must be 'auto', 'low' or 'high' (got {str(value)[:40]!r}).", param=param,
                         code="invalid_value")
    return value


def text_block(value: str, annotations: list | None = None) -> dict:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def message_text(message: dict) -> str:
    """The text of a message, image parts noted in brackets."""
    parts = []
    for block in message.get("content", []):
        if block["type"] == "text":
            parts.append(block["text"]["value"])
        elif block["type"] == "image_file":
            parts.append(f"[image {block['image_file']['file_id']}]")
        elif block["type"] == "image_url":
            parts.append(f"[image {block['image_url']['url'][:80]}]")
    return "\n".join(parts)


def attachments(value: Any, param: str = "attachments") -> list[dict] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise BadRequest(f"{param} must be a list of {{file_id, tools}}.", param=param)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("file_id"), str):
            raise BadRequest(f"{param}[{i}].file_id must be a file id.", param=f"{param}[{i}].file_id")
        tools = item.get("tools") or []
        for tool in tools:
            if not isinstance(tool, dict) or tool.get("type") not in ("code_interpreter", "file_search"):
                raise BadRequest(f"{param}[{i}].tools entries must have type 'code_interpreter' or 'file_search'.",
                                 param=f"{param}[{i}].tools")
        out.append({"file_id": item["file_id"], "tools": [{"type": t["type"]} for t in tools]})
    return out
