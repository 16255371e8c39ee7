"""Conversations are threads: `conv_X` and `thread_X` name the same thread, so no mapping needs storing."""

from __future__ import annotations

from typing import Any

from assistants.errors import BadRequest, NotFound
from assistants.responses.output import message_item


def conversation_id(thread_id: str) -> str:
    return "conv_" + thread_id.removeprefix("thread_")


def thread_id_of(conv_id: str) -> str:
    """`conv_X` -> `thread_X`; a thread id is accepted as it is (a team moves one script at a time)."""
    return conv_id if conv_id.startswith("thread_") else "thread_" + conv_id.removeprefix("conv_")


def thread_of(rt: Any, conv_id: str, param: str = "conversation_id") -> str:
    """The thread behind a conversation id; 404 (or 400 when it is a request parameter) if there is none."""
    thread_id = thread_id_of(conv_id)
    try:
        rt.get_thread(thread_id)
    except NotFound:
        if param == "conversation":
            raise BadRequest(f"Conversation with id '{conv_id}' not found.", param=param, code="not_found") from None
        raise NotFound(f"Conversation with id '{conv_id}' not found.", param=param, code="not_found") from None
    return thread_id


def view(thread: dict) -> dict:
    return {"id": conversation_id(thread["id"]), "object": "conversation", "created_at": thread["created_at"],
            "metadata": thread.get("metadata") or {}}


def create(rt: Any, *, items: Any = None, metadata: Any = None) -> dict:
    """A new conversation, optionally with its first items (messages only)."""
    messages = [_message(item, f"items[{i}]") for i, item in enumerate(_list(items, "items"))]
    return view(rt.create_thread(messages=messages, metadata=metadata))


def retrieve(rt: Any, conv_id: str) -> dict:
    return view(rt.get_thread(thread_of(rt, conv_id)))


def update(rt: Any, conv_id: str, *, metadata: Any) -> dict:
    return view(rt.update_thread(thread_of(rt, conv_id), metadata=metadata or {}))


def delete(rt: Any, conv_id: str) -> dict:
    rt.delete_thread(thread_of(rt, conv_id))
    return {"id": conv_id, "object": "conversation.deleted", "deleted": True}


# -- items ----------------------------------------------------------------------------------------------
def item_view(msg: dict) -> dict:
    """A thread message as a conversation item (user text and images as input parts, replies as output_text)."""
    if msg["role"] == "assistant":
        return message_item(msg)
    parts = []
    for block in msg.get("content") or []:
        if block["type"] == "text":
            parts.append({"type": "input_text", "text": block["text"]["value"]})
        elif block["type"] == "image_url":
            parts.append({"type": "input_image", "image_url": block["image_url"]["url"], "file_id": None,
                          "detail": block["image_url"].get("detail", "auto")})
        elif block["type"] == "image_file":
            parts.append({"type": "input_image", "file_id": block["image_file"]["file_id"], "image_url": None,
                          "detail": block["image_file"].get("detail", "auto")})
    return {"id": msg["id"], "type": "message", "role": "user", "status": "completed", "content": parts}


def create_items(rt: Any, conv_id: str, *, items: Any) -> dict:
    thread_id = thread_of(rt, conv_id)
    messages = [_message(item, f"items[{i}]") for i, item in enumerate(_list(items, "items", required=True))]
    made = [rt.create_message(thread_id, **m) for m in messages]
    views = [item_view(m) for m in made]
    return {"object": "list", "data": views, "first_id": views[0]["id"] if views else None,
            "last_id": views[-1]["id"] if views else None, "has_more": False}


def list_items(rt: Any, conv_id: str, **page: Any) -> dict:
    result = rt.list_messages(thread_of(rt, conv_id), **page)
    result["data"] = [item_view(m) for m in result["data"]]
    return result


def retrieve_item(rt: Any, conv_id: str, item_id: str) -> dict:
    thread_id = thread_of(rt, conv_id)
    try:
        return item_view(rt.get_message(thread_id, item_id))
    except NotFound:
        raise NotFound(f"Item with id '{item_id}' not found.", param="item_id", code="not_found") from None


def delete_item(rt: Any, conv_id: str, item_id: str) -> dict:
    """Removes the item; answers with the conversation, as OpenAI does."""
    thread_id = thread_of(rt, conv_id)
    try:
        rt.delete_message(thread_id, item_id)
    except NotFound:
        raise NotFound(f"Item with id '{item_id}' not found.", param="item_id", code="not_found") from None
    return view(rt.get_thread(thread_id))


def _list(value: Any, param: str, required: bool = False) -> list:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise BadRequest(f"{param} must be a{' non-empty' if required else ''} list of items.", param=param)
    if len(value) > 20:
        raise BadRequest(f"{param} can hold at most 20 items at a time.", param=param)
    return value


def _message(item: Any, where: str) -> dict:
    """A message item for the thread: user or assistant text (and user images)."""
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        raise BadRequest(f"{where} must be a message item; other item types cannot be added yet.", param=f"{where}.type")
    role = item.get("role")
    if role not in ("user", "assistant"):
        raise BadRequest(f"{where}.role must be 'user' or 'assistant' here (system and developer messages belong in "
                         "a response's instructions).", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{where}.content must be a non-empty string or list of parts.", param=f"{where}.content")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            url = part["image_url"]
            if not (url.startswith("data:image/") or url.startswith("https://")):
                raise BadRequest(f"{where}.content[{j}].image_url must be a data:image/... or https:// URL.",
                                 param=f"{where}.content[{j}].image_url", code="invalid_image_url")
            blocks.append({"type": "image_url", "image_url": {"url": url, "detail": part.get("detail") or "auto"}})
        else:
            raise BadRequest(f"{where}.content[{j}] must be an input_text, output_text or input_image (URL) part.",
                             param=f"{where}.content[{j}].type")
    return {"role": role, "content": blocks}

