"""A `POST /v1/responses` body checked and translated into what the runtime takes (messages, run settings, resources).

Every check happens here, before anything is stored, so a bad request leaves nothing behind. Each failure is a
400 naming the parameter as OpenAI does (`input[2].content[0].image_url`, `tools[1].type`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistants import validation as v
from assistants.errors import APIError, BadRequest, NotFound, Unsupported
from assistants.messages import image_detail
from assistants.responses import containers, files, filters, prompts
from assistants.responses.output import LOGPROBS
from assistants.runs.extras import RunExtras

FIELDS = {"model", "input", "instructions", "previous_response_id", "conversation", "tools", "tool_choice",
          "parallel_tool_calls", "temperature", "top_p", "max_output_tokens", "text", "truncation", "include",
          "store", "metadata", "stream", "background", "user", "prompt_cache_key", "safety_identifier",
          "service_tier", "reasoning", "max_tool_calls", "top_logprobs", "stream_options", "prompt"}
# Accepted and repeated back, but they change nothing here (no reasoning models, caches or service tiers);
# stream_options is ignored. max_tool_calls and top_logprobs reach the engine as RunExtras.
ECHOED = ("user", "prompt_cache_key", "safety_identifier", "service_tier", "reasoning")
INCLUDES = {"file_search_call.results", "code_interpreter_call.outputs", "message.output_text.logprobs",
            "reasoning.encrypted_content", "message.input_image.image_url", "computer_call_output.output.image_url",
            "web_search_call.action.sources", "web_search_call.results"}
TEXT_PARTS = ("input_text", "output_text", "text", "refusal")
RESULT_FIELDS = ("file_id", "filename", "score", "text", "attributes")  # of a replayed file_search_call's results
SYSTEM_ROLE = "role"  # metadata of a conversation's system/developer message (the prompt builder reads it)
MAX_VECTOR_STORES = 10


@dataclass
class Item:
    """One input item, normalised: a message (thread message + its echo), a function call or its output."""

    type: str  # "message" | "function_call" | "function_call_output" | "file_search_call" | "code_interpreter_call"
    echo: dict
    message: dict | None = None  # {"role", "content"} for the runtime (user/assistant)


@dataclass
class Request:
    """What a create call asks for, checked."""

    model: str
    items: list[Item]
    instructions: str | None
    run: dict  # create_run keywords, except assistant_id and stream
    resources: dict  # the thread's tool_resources for this response
    echo: dict  # request fields the response object repeats
    include: list[str]
    store: bool
    background: bool
    stream: bool
    previous_response_id: str | None
    conversation: str | None
    outputs: dict[str, str] = field(default_factory=dict)  # function_call_output: call_id -> output
    assistant_id: str | None = None  # a prompt's assistant; None: the shared Responses API assistant
    fork_from: dict | None = None  # the earlier response a branch starts from (set when planning)
    container: str | None = None  # code_interpreter's named container (cntr_…): its session and files are used
    tools_given: bool = False  # the request named its tools (function outputs: they replace the waiting run's)
    extras: RunExtras = field(default_factory=RunExtras)  # max_tool_calls, logprobs: applied by the engine


def parse(body: dict, rt: Any) -> Request:
    """The checked request; raises BadRequest naming the first wrong parameter."""
    for key in body:
        if key not in FIELDS:
            raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
    prompt = prompts.resolve(body.get("prompt"), rt)
    model = v.string(body.get("model"), "model", 256, required=prompt is None)
    if model is None:
        model = prompt.assistant["model"]
    if not model:
        raise BadRequest("model must not be empty.", param="model")
    try:
        provider = rt.router.resolve(model)[0]
    except APIError as exc:
        raise BadRequest(exc.message, param="model", code="model_not_found") from None
    previous = v.string(body.get("previous_response_id"), "previous_response_id", 128)
    conversation = _conversation(body.get("conversation"))
    if previous and conversation:
        raise BadRequest("Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' "
                         "or 'conversation'.", param="conversation", code="mutually_exclusive_parameters")
    instructions = v.string(body.get("instructions"), "instructions", 256_000)
    if instructions is None and prompt is not None:
        instructions = prompt.instructions
    items = _items(body.get("input"), rt)
    system = []
    for item in items:
        if item.type == "message" and item.echo["role"] in ("system", "developer"):
            if conversation:  # kept in the conversation, where later responses read it too (runs/prompt.py)
                item.message = {"role": "user", "content": _text_of(item.echo) or "(empty)",
                                "metadata": {SYSTEM_ROLE: item.echo["role"]}}
            else:
                system.append(_text_of(item.echo))
    run_tools, resources, echo_tools, container = _tools(body.get("tools"), rt)
    if prompt is not None and body.get("tools") is None:  # the assistant's tools, with its own resources
        run_tools, echo_tools = list(prompt.assistant.get("tools") or []), prompts.echo_tools(prompt.assistant)
    choice, echo_choice = _tool_choice(body.get("tool_choice"))
    if isinstance(choice, dict):
        wanted = choice["function"]["name"] if choice["type"] == "function" else choice["type"]
        if wanted not in {t["function"]["name"] if t["type"] == "function" else t["type"] for t in run_tools}:
            raise BadRequest(f"tool_choice names '{wanted}', which is not one of the tools.", param="tool_choice")
    fmt, echo_text = _text(body.get("text"))
    include = _include(body.get("include"))
    max_out = v.positive_int(body.get("max_output_tokens"), "max_output_tokens", 16)
    truncation = body.get("truncation") or "disabled"
    if truncation not in ("auto", "disabled"):
        raise BadRequest("truncation must be 'auto' or 'disabled'.", param="truncation")
    temperature = v.number(body.get("temperature"), "temperature", 0, 2)
    top_p = v.number(body.get("top_p"), "top_p", 0, 1)
    parallel = v.flag(body.get("parallel_tool_calls"), "parallel_tool_calls", True)
    metadata = v.metadata(body.get("metadata"))
    run = {"model": model, "tools": run_tools, "temperature": temperature, "top_p": top_p,
           "max_completion_tokens": max_out, "response_format": fmt, "parallel_tool_calls": parallel,
           "metadata": metadata, "instructions": "\n\n".join([s for s in [instructions, *system] if s]) or None}
    if choice is not None:
        run["tool_choice"] = choice
    echo = {"model": model, "instructions": instructions, "tools": echo_tools, "tool_choice": echo_choice,
            "text": echo_text, "temperature": 1.0 if temperature is None else temperature,
            "top_p": 1.0 if top_p is None else top_p, "max_output_tokens": max_out, "parallel_tool_calls": parallel,
            "metadata": metadata, "truncation": truncation, "previous_response_id": previous,
            "background": v.flag(body.get("background"), "background", False)}
    if prompt is not None:
        echo["prompt"] = prompt.echo
        if temperature is None:
            echo["temperature"] = prompt.assistant.get("temperature", 1.0)
        if top_p is None:
            echo["top_p"] = prompt.assistant.get("top_p", 1.0)
    for key in ECHOED:
        if body.get(key) is not None:
            echo[key] = _echoed(key, body[key])
    if body.get("max_tool_calls") is not None:
        echo["max_tool_calls"] = v.positive_int(body["max_tool_calls"], "max_tool_calls", 1)
    if body.get("top_logprobs") is not None:
        top = body["top_logprobs"]
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 20:
            raise BadRequest("top_logprobs must be an integer from 0 to 20.", param="top_logprobs")
        echo["top_logprobs"] = top
    logprobs = LOGPROBS in include or bool(echo.get("top_logprobs"))
    if logprobs and not getattr(provider, "logprobs", False):
        raise Unsupported(f"Model '{model}' runs on a backend that gives no log probabilities (only OpenAI-compatible "
                          "servers do); leave out include 'message.output_text.logprobs' and top_logprobs, or use "
                          "a model served by one.", param="include" if LOGPROBS in include else "top_logprobs",
                          code="unsupported_parameter")
    extras = RunExtras(echo.get("max_tool_calls"), echo.get("top_logprobs", 0) if logprobs else None)
    outputs = {i.echo["call_id"]: i.echo["output"] for i in items if i.type == "function_call_output"}
    return Request(model, items, instructions, run, resources, echo, include, v.flag(body.get("store"), "store", True),
                   echo["background"], v.flag(body.get("stream"), "stream", False), previous, conversation, outputs,
                   prompt.assistant["id"] if prompt else None, container=container,
                   tools_given=body.get("tools") is not None, extras=extras)


def _echoed(key: str, value: Any) -> Any:
    """A parameter repeated in the response, checked so the response still parses in the SDK."""
    if key == "reasoning":
        if not isinstance(value, dict):
            raise BadRequest("reasoning must be an object.", param="reasoning")
        return value
    if key == "service_tier" and value not in ("auto", "default", "flex", "scale", "priority"):
        raise BadRequest("service_tier must be auto, default, flex, scale or priority.", param="service_tier")
    return v.string(value, key, 512)


def _conversation(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise BadRequest("conversation must be a conversation id or an object with its id.", param="conversation")
    return value


# -- input items -----------------------------------------------------------------------------------
def _items(value: Any, rt: Any) -> list[Item]:
    if value is None:
        return []
    if isinstance(value, str):
        if not value:
            raise BadRequest("input must not be empty.", param="input")
        return [_message({"role": "user", "content": value}, "input", rt)]
    if not isinstance(value, list):
        raise BadRequest("input must be a string or a list of input items.", param="input")
    items: list[Item] = []
    for i, raw in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"{where} must be an object.", param=where)
        kind = raw.get("type", "message" if "role" in raw else None)
        if kind == "message":
            items.append(_message(raw, where, rt))
        elif kind == "function_call":
            items.append(_function_call(raw, where))
        elif kind == "function_call_output":
            call_id = v.string(raw.get("call_id"), f"{where}.call_id", 128, required=True)
            output = raw.get("output")
            if isinstance(output, list):  # content parts: their text is what a chat model can read
                output = "\n".join(str(p.get("text", "")) for p in output if isinstance(p, dict))
            if not isinstance(output, str):
                raise BadRequest(f"{where}.output must be a string.", param=f"{where}.output")
            items.append(Item("function_call_output", {"type": "function_call_output", "call_id": call_id,
                                                       "output": output, "status": "completed"}))
        elif kind in ("file_search_call", "code_interpreter_call"):
            items.append(_builtin_call(raw, kind, where))
        elif kind == "reasoning":
            continue  # no reasoning models here: an earlier reasoning item replayed carries nothing to use
        else:
            raise BadRequest(f"{where}.type '{kind}' is not supported here; use message, function_call or "
                             "function_call_output items.", param=f"{where}.type", code="invalid_value")
    return items


def _builtin_call(raw: dict, kind: str, where: str) -> Item:
    """An earlier file_search_call / code_interpreter_call replayed: kept as it was, read by the model as text."""
    item_id = v.string(raw.get("id"), f"{where}.id", 128, required=True)
    if kind == "file_search_call":
        queries = raw.get("queries") or []
        if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
            raise BadRequest(f"{where}.queries must be a list of strings.", param=f"{where}.queries")
        results = [{k: r[k] for k in RESULT_FIELDS if k in r} for r in raw.get("results") or [] if isinstance(r, dict)] \
            if isinstance(raw.get("results"), list) else None
        texts = [str(r.get("text", ""))[:2000] for r in results or []]
        echo = {"type": kind, "id": item_id, "queries": queries, "status": "completed", "results": results}
        text = f"[searched files for {', '.join(queries) or '(no query)'}]" + "".join(f"\n{t}" for t in texts)
    else:
        code = v.string(raw.get("code"), f"{where}.code", 1_000_000) or ""
        outputs = [o for o in raw.get("outputs") or [] if isinstance(o, dict)
                   and (o.get("type"), type(o.get("logs", o.get("url")))) in (("logs", str), ("image", str))] \
            if isinstance(raw.get("outputs"), list) else None
        logs = [o["logs"] for o in outputs or [] if o["type"] == "logs"]
        echo = {"type": kind, "id": item_id, "code": code, "status": "completed", "outputs": outputs,
                "container_id": str(raw.get("container_id") or "")}
        text = f"[ran code_interpreter]\n{code}" + (f"\n[output]\n{''.join(logs)}" if logs else "")
    return Item(kind, echo, {"role": "assistant", "content": text})


def _function_call(raw: dict, where: str) -> Item:
    call_id = v.string(raw.get("call_id"), f"{where}.call_id", 128, required=True)
    name = v.string(raw.get("name"), f"{where}.name", 64, required=True)
    arguments = v.string(raw.get("arguments"), f"{where}.arguments", 1_000_000) or ""
    return Item("function_call", {"type": "function_call", "id": raw.get("id") or f"fc_{call_id}", "call_id": call_id,
                                  "name": name, "arguments": arguments, "status": "completed"})


def _message(raw: dict, where: str, rt: Any) -> Item:
    role = raw.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise BadRequest(f"{where}.role must be 'user', 'assistant', 'system' or 'developer'.", param=f"{where}.role")
    content = raw.get("content")
    if isinstance(content, str):
        content = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
    if not isinstance(content, list) or not content:
        raise BadRequest(f"{where}.content must be a non-empty string or list of content parts.", param=f"{where}.content")
    echo_parts, blocks = [], []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS:
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise BadRequest(f"{here}.text must be a string.", param=f"{here}.text")
            if role == "assistant":
                echo_parts.append({"type": "output_text", "text": text, "annotations": []})
            else:
                echo_parts.append({"type": "input_text", "text": text})
            if text.strip():
                blocks.append({"type": "text", "text": text})
        elif kind == "input_image" and role == "user":
            echo, block = _image(part, here, rt)
            echo_parts.append(echo)
            blocks.append(block)
        elif kind == "input_file" and role in ("user", "system", "developer"):
            echo, text = files.read(part, here, rt)
            echo_parts.append(echo)
            blocks.append({"type": "text", "text": text})
        elif kind in ("input_image", "input_file"):
            raise Unsupported(f"{here}: {kind} parts go in user messages.", param=f"{here}.type",
                              code="unsupported_parameter")
        else:
            raise BadRequest(f"{here}.type must be input_text, output_text or input_image.", param=f"{here}.type")
    echo = {"type": "message", "role": role, "content": echo_parts, "status": "completed"}
    message = None
    if role in ("user", "assistant") and blocks:
        message = {"role": role, "content": blocks}
    return Item("message", echo, message)


def _image(part: dict, where: str, rt: Any) -> tuple[dict, dict]:
    detail = image_detail(part.get("detail"), f"{where}.detail")
    url, file_id = part.get("image_url"), part.get("file_id")
    if url is not None:
        if not isinstance(url, str) or not (url.startswith("data:image/") or url.startswith("https://")):
            raise BadRequest(f"{where}.image_url must be a data:image/... URL or an https:// URL.",
                             param=f"{where}.image_url", code="invalid_image_url")
        return ({"type": "input_image", "detail": detail, "image_url": url, "file_id": None},
                {"type": "image_url", "image_url": {"url": url, "detail": detail}})
    if not isinstance(file_id, str):
        raise BadRequest(f"{where} needs image_url or file_id.", param=f"{where}.image_url")
    if not _exists(rt.files, file_id):
        raise BadRequest(f"The image file '{file_id}' does not exist; upload it first (purpose 'vision').",
                         param=f"{where}.file_id")
    return ({"type": "input_image", "detail": detail, "file_id": file_id, "image_url": None},
            {"type": "image_file", "image_file": {"file_id": file_id, "detail": detail}})


def _exists(service: Any, obj_id: str) -> bool:
    """Whether the files / vector stores service knows the id (False when the service is not installed)."""
    if service is None:
        return False
    try:
        service.get(obj_id)
    except NotFound:
        return False
    return True


def _text_of(echo: dict) -> str:
    return "\n".join(p.get("text", "") for p in echo["content"] if "text" in p)


# -- tools, tool_choice, text.format, include -------------------------------------------------------
def _tools(value: Any, rt: Any) -> tuple[list[dict], dict, list[dict], str | None]:
    """(tools for the run, tool_resources for the thread, tools as the response echoes them, named container)."""
    if value is None:
        return [], {}, [], None
    if not isinstance(value, list):
        raise BadRequest("tools must be an array of tool objects.", param="tools")
    run_tools, echo, resources, container = [], [], {}, None
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            fn = {"name": tool.get("name"), "description": tool.get("description"), "parameters": tool.get("parameters")}
            if tool.get("strict") is not None:
                fn["strict"] = tool["strict"]
            checked = v.tools([{"type": "function", "function": fn}], where)[0]  # names, schema, built-in clash
            run_tools.append(checked)
            echo.append({"type": "function", "name": checked["function"]["name"], "description": fn["description"],
                         "parameters": checked["function"]["parameters"],
                         "strict": True if tool.get("strict") is None else bool(tool["strict"])})
        elif kind == "file_search":
            if any(t["type"] == "file_search" for t in run_tools):
                raise BadRequest("Only one file_search tool is allowed; name several vector stores in it.",
                                 param=f"{where}.type")
            entry, ids = _file_search(tool, where, rt)
            run_tools.append(entry)
            # A thread holds one vector store; the others reach the search through filters.install.
            resources["file_search"] = {"vector_store_ids": ids[:1]}
            echo.append({k: tool.get(k) for k in ("type", "vector_store_ids", "filters", "max_num_results",
                                                    "ranking_options") if tool.get(k) is not None})
        elif kind == "code_interpreter":
            if any(t["type"] == "code_interpreter" for t in run_tools):
                raise BadRequest("Only one code_interpreter tool is allowed.", param=f"{where}.type")
            ids, container = _container(tool.get("container"), f"{where}.container", rt)
            if container is None:
                resources["code_interpreter"] = {"file_ids": ids}
            run_tools.append({"type": "code_interpreter"})
            echo.append({"type": "code_interpreter", "container": tool.get("container")})
        else:
            raise BadRequest(f"Unsupported tool type '{kind}'. This server supports function, file_search and "
                             "code_interpreter tools.", param=f"{where}.type", code="invalid_value")
    names = [t["function"]["name"] for t in run_tools if t["type"] == "function"]
    if len(names) != len(set(names)):
        raise BadRequest("Two functions have the same name; function names must be unique.", param="tools")
    return run_tools, resources, echo, container


def _file_search(tool: dict, where: str, rt: Any) -> tuple[dict, list[str]]:
    ids = tool.get("vector_store_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise BadRequest(f"{where}.vector_store_ids must be a non-empty list of vector store ids.",
                         param=f"{where}.vector_store_ids")
    if len(ids) > MAX_VECTOR_STORES:
        raise BadRequest(f"{where}.vector_store_ids can name at most {MAX_VECTOR_STORES} vector stores.",
                         param=f"{where}.vector_store_ids")
    for vs_id in ids:
        if not _exists(rt.vector_stores, vs_id):
            raise BadRequest(f"Vector store '{vs_id}' does not exist (or was deleted).",
                             param=f"{where}.vector_store_ids", code="vector_store_not_found")
    if tool.get("filters") is not None:
        filters.check(tool["filters"], f"{where}.filters")
    ranking = tool.get("ranking_options")
    if ranking is not None and not isinstance(ranking, dict):  # validation.tools would trip over it
        raise BadRequest(f"{where}.ranking_options must be an object.", param=f"{where}.ranking_options")
    inner = {k: tool[k] for k in ("max_num_results", "ranking_options") if tool.get(k) is not None}
    checked = v.tools([{"type": "file_search", "file_search": inner}], where)[0]
    return checked, list(dict.fromkeys(ids))


def _container(value: Any, where: str, rt: Any) -> tuple[list[str], str | None]:
    """(files for the thread's own session, or the named container whose session is used instead)."""
    if value is None or value == "auto":
        return [], None
    if isinstance(value, str):
        try:
            containers.live_thread_of(rt, value, param=where)  # an expired one: 400 container_expired
        except NotFound:
            raise BadRequest(f"Container '{value}' does not exist (or was deleted).", param=where,
                             code="invalid_value") from None
        return [], value
    if not isinstance(value, dict) or value.get("type") != "auto":
        raise BadRequest(f"{where} must be 'auto' or {{\"type\": \"auto\", \"file_ids\": [...]}}.", param=where)
    containers.memory_limit(value.get("memory_limit"), f"{where}.memory_limit")  # the session's budget (container_sessions)
    ids = value.get("file_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > 20:
        raise BadRequest(f"{where}.file_ids must be a list of at most 20 file ids.", param=f"{where}.file_ids")
    for file_id in ids:
        if not _exists(rt.files, file_id):
            raise BadRequest(f"File '{file_id}' does not exist.", param=f"{where}.file_ids")
    return list(ids), None


def _tool_choice(value: Any) -> tuple[Any, Any]:
    """(tool_choice for the run, as the response echoes it)."""
    if value is None:
        return None, "auto"
    if value in ("none", "auto", "required"):
        return value, value
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        return {"type": "function", "function": {"name": value["name"]}}, {"type": "function", "name": value["name"]}
    if isinstance(value, dict) and value.get("type") in ("file_search", "code_interpreter"):
        return {"type": value["type"]}, {"type": value["type"]}
    raise BadRequest("tool_choice must be 'none', 'auto', 'required', {\"type\": \"function\", \"name\": ...} or a "
                     "built-in tool type.", param="tool_choice")


def _text(value: Any) -> tuple[Any, dict]:
    """(response_format for the run, the `text` config the response echoes)."""
    if value is None:
        return None, {"format": {"type": "text"}}
    if not isinstance(value, dict):
        raise BadRequest("text must be an object with a format.", param="text")
    fmt = value.get("format") or {"type": "text"}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    echo = {"format": fmt}
    if value.get("verbosity") is not None:
        echo["verbosity"] = value["verbosity"]
    if kind == "text":
        return None, echo
    if kind == "json_object":
        return {"type": "json_object"}, echo
    if kind == "json_schema":
        name = fmt.get("name")
        if not isinstance(name, str) or not v.NAME.match(name):
            raise BadRequest("text.format.name must be 1-64 letters, digits, '_' or '-'.", param="text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            raise BadRequest("text.format.schema must be a JSON Schema object.", param="text.format.schema")
        inner = {k: fmt[k] for k in ("name", "description", "schema", "strict") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": inner}, echo
    raise BadRequest("text.format.type must be 'text', 'json_object' or 'json_schema'.", param="text.format.type")


def _include(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise BadRequest("include must be a list of strings.", param="include")
    for i, name in enumerate(value):
        if name not in INCLUDES:
            raise BadRequest(f"include[{i}] '{name}' is not a supported value.", param=f"include[{i}]")
    return list(value)
