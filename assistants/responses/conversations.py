"""Conversations are threads: `conv_X` and `thread_X` name the same thread, so no mapping needs storing."""

from __future__ import annotations

from typing import Any

from assistants import validation as v
from assistants.errors import BadRequest, NotFound
from assistants.ids import new_id
from assistants.messages import image_detail
from assistants.responses import records
from assistants.responses.output import call_items, message_item, run_steps
from assistants.responses.paging import page
from assistants.runtime import list_every


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
    """A new conversation, optionally with its first items."""
    prepared = [_prepare(item, f"items[{i}]") for i, item in enumerate(_list(items, "items"))]
    thread = rt.create_thread(messages=[m for m, _ in prepared], metadata=metadata, conversation=True)
    if any(extra for _, extra in prepared):
        made = list_every(rt.list_messages, thread_id=thread["id"])[::-1]
        for msg, (_, extra) in zip(made, prepared, strict=False):
            if extra and extra["id"] is None:
                extra["id"] = msg["id"]
            if extra:
                records.save_item(rt.store, thread["id"], msg["id"], extra)
    return view(thread)


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
    prepared = [_prepare(item, f"items[{i}]") for i, item in enumerate(_list(items, "items", required=True))]
    views = []
    for message, extra in prepared:
        made = rt.create_message(thread_id, **message)
        if extra and extra["id"] is None:
            extra["id"] = made["id"]
        if extra:
            records.save_item(rt.store, thread_id, made["id"], extra)
        views.append(extra or item_view(made))
    return {"object": "list", "data": views, "first_id": views[0]["id"] if views else None,
            "last_id": views[-1]["id"] if views else None, "has_more": False}


def all_items(rt: Any, thread_id: str) -> list[dict]:
    """The thread as conversation items, oldest first: messages, and each run's tool calls before its reply.

    Function calls and their outputs come from the run steps; a run's calls are placed before the reply they
    led to, and the calls of a run that never replied come last.
    """
    messages = list_every(rt.list_messages, thread_id=thread_id)[::-1]
    runs = list_every(rt.list_runs, thread_id=thread_id)[::-1]
    pending = {run["id"]: run_steps(rt, thread_id, run["id"]) for run in runs}
    items: list[dict] = []

    def calls_before(run_id: str, message_id: str | None) -> None:
        steps = pending.get(run_id) or []
        while steps:
            step = steps.pop(0)
            details = step["step_details"]
            if details["type"] == "message_creation":
                if details["message_creation"]["message_id"] == message_id:
                    return
                continue
            items.extend(_tool_items(step, thread_id))

    added = records.items_of(rt.store, thread_id)
    for msg in messages:
        if msg["role"] == "assistant" and msg.get("run_id"):
            calls_before(msg["run_id"], msg["id"])
        items.append(added.get(msg["id"]) or item_view(msg))
    for run_id in pending:
        calls_before(run_id, None)
    return items


def _tool_items(step: dict, thread_id: str) -> list[dict]:
    """A tool_calls step as items: built-in calls, function calls and the outputs they were given."""
    out = []
    for call in step["step_details"]["tool_calls"]:
        if call["type"] != "function":
            out.extend(call_items({"status": "completed", "step_details": {"tool_calls": [call]}}, thread_id, []))
            continue
        fn = call["function"]
        out.append({"type": "function_call", "id": "fc_" + call["id"], "call_id": call["id"], "name": fn["name"],
                    "arguments": fn.get("arguments") or "", "status": "completed"})
        if fn.get("output") is not None:
            out.append({"type": "function_call_output", "id": "fco_" + call["id"], "call_id": call["id"],
                        "output": fn["output"], "status": "completed"})
    return out


def list_items(rt: Any, conv_id: str, *, limit: int = 20, order: str = "desc", after: str | None = None,
               before: str | None = None) -> dict:
    return page(all_items(rt, thread_of(rt, conv_id)), limit=limit, order=order, after=after, before=before)


def retrieve_item(rt: Any, conv_id: str, item_id: str) -> dict:
    found = next((i for i in all_items(rt, thread_of(rt, conv_id)) if i["id"] == item_id), None)
    if found is None:
        raise NotFound(f"Item with id '{item_id}' not found.", param="item_id", code="not_found")
    return found


def delete_item(rt: Any, conv_id: str, item_id: str) -> dict:
    """Removes an item; answers with the conversation, as OpenAI does. A run's own tool calls stay with their run."""
    thread_id = thread_of(rt, conv_id)
    added = {item["id"]: msg_id for msg_id, item in records.items_of(rt.store, thread_id).items()}
    message_id = added.get(item_id, item_id)
    if not message_id.startswith("msg_"):
        raise BadRequest(f"Item '{item_id}' is a tool call of a run; only items added to the conversation can be "
                         "deleted.", param="item_id")
    try:
        rt.delete_message(thread_id, message_id)
    except NotFound:
        raise NotFound(f"Item with id '{item_id}' not found.", param="item_id", code="not_found") from None
    records.delete_item(rt.store, message_id)
    return view(rt.get_thread(thread_id))


def _list(value: Any, param: str, required: bool = False) -> list:
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise BadRequest(f"{param} must be a{' non-empty' if required else ''} list of items.", param=param)
    if len(value) > 20:
        raise BadRequest(f"{param} can hold at most 20 items at a time.", param=param)
    return value


def _prepare(item: Any, where: str) -> tuple[dict, dict | None]:
    """(the thread message for an item, the item itself when the message only stands for it)."""
    kind = item.get("type", "message") if isinstance(item, dict) else None
    if kind == "message":
        message = _message(item, where)
        if message["role"] in ("user", "assistant"):
            return message, None
        # A system/developer message: a thread message the prompt builder reads as system text (runs/prompt.py).
        blocks = message["content"] if isinstance(message["content"], list) else [{"type": "text", "text": message["content"]}]
        if any(b["type"] != "text" for b in blocks):
            raise BadRequest(f"{where}.content: a {message['role']} message holds text only.", param=f"{where}.content")
        text = "\n".join(b["text"] for b in blocks)
        extra = {"type": "message", "id": None, "role": message["role"], "status": "completed",
                 "content": [{"type": "input_text", "text": b["text"]} for b in blocks]}
        return {"role": "user", "content": text or "(empty)", "metadata": {"role": message["role"]}}, extra
    if kind == "function_call":
        call_id = v.string(item.get("call_id"), f"{where}.call_id", 128, required=True)
        name = v.string(item.get("name"), f"{where}.name", 64, required=True)
        arguments = v.string(item.get("arguments"), f"{where}.arguments", 1_000_000) or ""
        extra = {"type": "function_call", "id": _item_id(item, "fc", call_id), "call_id": call_id, "name": name,
                 "arguments": arguments, "status": "completed"}
        return {"role": "assistant", "content": f"[called function {name}({arguments}), call id {call_id}]"}, extra
    if kind == "function_call_output":
        call_id = v.string(item.get("call_id"), f"{where}.call_id", 128, required=True)
        output = item.get("output")
        if isinstance(output, list):
            output = "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
        if not isinstance(output, str):
            raise BadRequest(f"{where}.output must be a string.", param=f"{where}.output")
        extra = {"type": "function_call_output", "id": _item_id(item, "fco", call_id), "call_id": call_id,
                 "output": output, "status": "completed"}
        return {"role": "user", "content": f"[output of function call {call_id}]\n{output or '(empty)'}"}, extra
    raise BadRequest(f"{where}.type must be message, function_call or function_call_output.", param=f"{where}.type")


def _item_id(item: dict, prefix: str, call_id: str) -> str:
    given = item.get("id")
    return given if isinstance(given, str) and given else f"{prefix}_{call_id.removeprefix('call_')}_{new_id('x')[2:10]}"


def _message(item: Any, where: str) -> dict:
    """A message item for the thread: user or assistant text (and user images)."""
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise BadRequest(f"{where}.role must be 'user', 'assistant', 'system' or 'developer'.", param=f"{where}.role")
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
            blocks.append({"type": "image_url", "image_url": {
                "url": url, "detail": image_detail(part.get("detail"), f"{where}.content[{j}].detail")}})
        else:
            raise BadRequest(f"{where}.content[{j}] must be an input_text, output_text or input_image (URL) part.",
                             param=f"{where}.content[{j}].type")
    return {"role": role, "content": blocks}

