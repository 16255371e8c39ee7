"""Get code: Python (`openai` SDK) that makes the current assistant, thread and last run again on the API server,
through the Assistants API or the Responses API."""

from __future__ import annotations

import pprint

from assistants.responses.prompts import VARIABLE

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


# -- the Responses API version ---------------------------------------------------------------------------------
HEADER = [
    "# Made by the Assistants Playground's Get code (Responses API). Start the API server first:",
    "#   python -m assistants.server",
    "from openai import OpenAI",
    "",
]
PRINT_OUTPUT = [
    "print(response.status)",
    "for item in response.output:",
    "    if item.type == \"function_call\":  # functions: run them yourself, then send a function_call_output",
    "        print(\"call\", item.name, item.arguments)",
    "print(response.output_text)",
]


def prompt_variables(assistant: dict) -> dict:
    """`{{name}}` placeholders in the instructions, each with a value to replace."""
    names = dict.fromkeys(VARIABLE.findall(assistant.get("instructions") or ""))
    return {name: f"<{name}>" for name in names}


def _last_user_text(messages: list[dict]) -> str:
    for msg in reversed(messages):
        if msg["role"] == "user" and _message_content(msg):
            return _message_content(msg)
    return "Hello!"


def responses_tools(assistant: dict) -> tuple[list[dict], list[str]]:
    """The assistant's tools as /v1/responses takes them, and comments for what cannot be said there."""
    resources = assistant.get("tool_resources") or {}
    tools, notes = [], []
    for tool in assistant.get("tools") or []:
        if tool["type"] == "function":
            fn = tool["function"]
            entry = {"type": "function", "name": fn["name"]}
            for key in ("description", "parameters", "strict"):
                if fn.get(key) is not None:
                    entry[key] = fn[key]
            tools.append(entry)
        elif tool["type"] == "file_search":
            ids = (resources.get("file_search") or {}).get("vector_store_ids") or []
            if not ids:
                notes.append("# file_search is left out: it needs a vector store (attach one in the Playground).")
                continue
            entry = {"type": "file_search", "vector_store_ids": list(ids)}
            entry.update({k: v for k, v in (tool.get("file_search") or {}).items() if v is not None})
            tools.append(entry)
        else:
            ids = (resources.get("code_interpreter") or {}).get("file_ids") or []
            tools.append({"type": "code_interpreter", "container": {"type": "auto", "file_ids": list(ids)}})
    return tools, notes


def _text_format(response_format) -> dict | None:
    """An Assistants response_format as the Responses `text` parameter (None for plain text)."""
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return None
    if response_format["type"] == "json_schema":
        schema = response_format.get("json_schema") or {}
        return {"format": {"type": "json_schema", **{k: schema[k] for k in ("name", "description", "schema", "strict")
                                                     if schema.get(k) is not None}}}
    return {"format": {"type": response_format["type"]}}


def generate_responses_prompt(assistant: dict, messages: list[dict], thread_id: str | None,
                              base_url: str = DEFAULT_BASE_URL) -> str:
    """The assistant used as a reusable prompt of this server; with a thread, continuing it as the conversation."""
    prompt: dict = {"id": assistant["id"]}
    variables = prompt_variables(assistant)
    if variables:
        prompt["variables"] = variables
    fields: dict = {"prompt": prompt}
    if thread_id:
        fields["conversation"] = thread_id
    fields["input"] = _last_user_text(messages)
    lines = [
        *HEADER,
        f"client = OpenAI(base_url={base_url!r}, api_key=\"anything-when-no-keys-are-set\")",
        "",
        "# The prompt is this Playground assistant: its model, instructions and tools, as saved on this server."
        + (" Fill in the {{variables}} of its instructions." if variables else ""),
    ]
    if thread_id:
        lines.append("# conversation= continues this Playground thread (it shows up there); leave it out to start afresh.")
    lines += [*_call("response = client.responses.create", fields), *PRINT_OUTPUT]
    return "\n".join(lines) + "\n"


def generate_responses(assistant: dict, messages: list[dict], run: dict | None,
                       base_url: str = DEFAULT_BASE_URL) -> str:
    """Everything spelled out (model, instructions, tools, the conversation as input): runs on any Responses server."""
    kept = [m for m in messages if not (run and m.get("run_id") == run["id"])]
    history = [{"role": m["role"], "content": _message_content(m)} for m in kept if _message_content(m)]
    tools, notes = responses_tools(assistant)
    run_body = _run_body(run, assistant)
    fields: dict = {"model": run_body.get("model") or assistant["model"]}
    instructions = run_body.get("instructions", assistant.get("instructions"))
    extra = run_body.get("additional_instructions")
    if instructions or extra:
        fields["instructions"] = "\n\n".join(p for p in (instructions, extra) if p)
    if tools:
        fields["tools"] = tools
    for key in ("temperature", "top_p"):
        value = run_body.get(key, assistant.get(key))
        if value is not None and value != 1.0:
            fields[key] = value
    if run_body.get("max_completion_tokens"):
        fields["max_output_tokens"] = run_body["max_completion_tokens"]
    if run_body.get("tool_choice") not in (None, "auto"):
        choice = run_body["tool_choice"]
        fields["tool_choice"] = ({"type": "function", "name": choice["function"]["name"]}
                                 if isinstance(choice, dict) and choice.get("type") == "function" else choice)
    if run_body.get("parallel_tool_calls") is False:
        fields["parallel_tool_calls"] = False
    text = _text_format(assistant.get("response_format"))
    if text:
        fields["text"] = text
    fields["input"] = history or "Hello!"
    lines = [
        *HEADER,
        f"client = OpenAI(base_url={base_url!r}, api_key=\"anything-when-no-keys-are-set\")",
        "",
        "# This assistant's settings and the conversation before its last run, spelled out: any Responses API",
        "# server takes them (change base_url and api_key).",
        *notes,
        *_call("response = client.responses.create", fields),
        *PRINT_OUTPUT,
    ]
    return "\n".join(lines) + "\n"
