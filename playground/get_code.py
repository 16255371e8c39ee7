"""Get code: Python (`openai` SDK) that makes the current assistant, thread and last run again on the API server."""

from __future__ import annotations

import pprint

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"  # `python -m assistants.server` without arguments
ASSISTANT_FIELDS = ("name", "description", "instructions", "model", "tools", "tool_resources", "temperature", "top_p",
                    "response_format", "metadata")
RUN_FIELDS = ("model", "instructions", "additional_instructions", "max_prompt_tokens", "max_completion_tokens",
              "temperature", "top_p", "truncation_strategy", "tool_choice", "parallel_tool_calls")


def _py(value, indent: int) -> str:
    """A Python literal of JSON-like data, continued lines indented to sit inside a call."""
    text = pprint.pformat(value, width=max(40, 110 - indent), sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def _call(head: str, fields: dict) -> list[str]:
    """`head(` then one `name=value,` line per field, then `)`."""
    return [f"{head}("] + [f"    {k}={_py(v, 5 + len(k))}," for k, v in fields.items()] + [")"]


def _message_content(msg: dict) -> str | None:
    """A message's text (images and files live on this server only; they are left out)."""
    parts = [b["text"]["value"] for b in msg.get("content") or [] if b.get("type") == "text"]
    return "\n\n".join(parts) if parts else None


def _assistant_body(assistant: dict) -> dict:
    body = {k: assistant.get(k) for k in ASSISTANT_FIELDS if assistant.get(k) not in (None, "", {}, [])}
    if body.get("response_format") == "auto":
        body.pop("response_format")
    resources = body.get("tool_resources") or {}
    if not any((v or {}).get("file_ids") or (v or {}).get("vector_store_ids") for v in resources.values()):
        body.pop("tool_resources", None)  # empty lists only: nothing to say
    return body


def _run_body(run: dict | None, assistant: dict) -> dict:
    """What the last run asked for beyond the assistant's own settings."""
    if not run:
        return {}
    body = {}
    for key in RUN_FIELDS:
        value = run.get(key)
        if value is None or value == assistant.get(key):
            continue
        if key == "instructions" and value == assistant.get("instructions"):
            continue
        if key == "truncation_strategy" and value == {"type": "auto", "last_messages": None}:
            continue
        if key in ("tool_choice",) and value == "auto":
            continue
        if key == "parallel_tool_calls" and value is True:
            continue
        body[key] = value
    if "instructions" in body:  # the run's instructions are the assistant's plus what was added for this run
        extra = body.pop("instructions")
        base = assistant.get("instructions") or ""
        if extra.startswith(base) and extra != base:
            body["additional_instructions"] = extra[len(base):].strip()
        else:
            body["instructions"] = extra
    return body


def generate(assistant: dict, messages: list[dict], run: dict | None, base_url: str = DEFAULT_BASE_URL) -> str:
    """The script: create the assistant, a thread with the conversation before the last run, and run it.

    `messages` oldest first; those the last run wrote are left out, since running again writes them anew.
    """
    kept = [m for m in messages if not (run and m.get("run_id") == run["id"])]
    thread_messages = [{"role": m["role"], "content": _message_content(m)} for m in kept if _message_content(m)]
    lines = [
        "# Made by the Assistants Playground's Get code. Start the API server first:",
        "#   python -m assistants.server",
        "from openai import OpenAI",
        "",
        f"client = OpenAI(base_url={base_url!r}, api_key=\"anything-when-no-keys-are-set\")",
        "",
        *_call("assistant = client.beta.assistants.create", _assistant_body(assistant)),
        *_call("thread = client.beta.threads.create", {"messages": thread_messages} if thread_messages else {}),
        *_call("run = client.beta.threads.runs.create_and_poll",
               {"thread_id": _Raw("thread.id"), "assistant_id": _Raw("assistant.id"), **_run_body(run, assistant)}),
        "print(run.status)",
        "if run.status == \"requires_action\":  # functions: run them yourself, then submit_tool_outputs",
        "    for call in run.required_action.submit_tool_outputs.tool_calls:",
        "        print(\"call\", call.function.name, call.function.arguments)",
        "for message in client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id, order=\"asc\"):",
        "    for block in message.content:",
        "        if block.type == \"text\":",
        "            print(block.text.value)",
    ]
    return "\n".join(lines) + "\n"


class _Raw(str):
    """A name written as it is (thread.id), not as a string literal."""

    def __repr__(self) -> str:
        return str(self)
