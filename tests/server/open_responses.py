"""Checks a response and its stream events as the Open Responses compliance suite does, without its schema file.

The suite (github.com/openresponses/openresponses, `src/lib/compliance-tests.ts`) validates each answer against
`ResponseResource` and each event against the streaming-event union of its OpenAPI document. That document is not
vendored (the repository has no licence file), so this checks what it requires by name — the required fields of
`ResponseResource` in the 2026-04-24 release and their JSON types — and validates everything strictly against
openai-python's own types: no field, at any depth, that the type does not declare.
"""

from __future__ import annotations

import pydantic
from openai import BaseModel
from openai.types.responses import Response, ResponseStreamEvent

# ResponseResource.required in the Open Responses spec, with the JSON types of the ones that may not be null.
REQUIRED = ("id", "object", "created_at", "completed_at", "status", "incomplete_details", "model",
            "previous_response_id", "instructions", "output", "error", "tools", "tool_choice", "truncation",
            "parallel_tool_calls", "text", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs",
            "temperature", "reasoning", "user", "usage", "max_output_tokens", "max_tool_calls", "store", "background",
            "service_tier", "metadata", "safety_identifier", "prompt_cache_key")
NOT_NULL = {"id": str, "object": str, "created_at": int, "status": str, "model": str, "output": list, "tools": list,
            "truncation": str, "parallel_tool_calls": bool, "text": dict, "top_p": (int, float),
            "presence_penalty": (int, float), "frequency_penalty": (int, float), "top_logprobs": int,
            "temperature": (int, float), "store": bool, "background": bool, "service_tier": str, "metadata": dict}
# Sent by OpenAI's own API and required above, but not declared by openai-python's Response.
UNDECLARED_BY_SDK = {"presence_penalty", "frequency_penalty", "store"}
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


def extras(model: object, where: str = "") -> list[str]:
    """Every field, at any depth, that a parsed openai model received but does not declare."""
    found = []
    if isinstance(model, BaseModel):
        for key in model.model_extra or {}:
            found.append(f"{where}.{key}" if where else key)
        for name in type(model).model_fields:
            found += extras(getattr(model, name), f"{where}.{name}" if where else name)
    elif isinstance(model, (list, tuple)):
        for i, item in enumerate(model):
            found += extras(item, f"{where}[{i}]")
    elif isinstance(model, dict):
        for key, item in model.items():
            found += extras(item, f"{where}.{key}")
    return found


def check_response(obj: dict) -> Response:
    """A response as the compliance suite checks it: the spec's required fields, then openai's type, strictly."""
    missing = [k for k in REQUIRED if k not in obj]
    assert not missing, f"required by Open Responses, missing: {missing}"
    for key, kind in NOT_NULL.items():
        assert isinstance(obj[key], kind) and not (kind is int and isinstance(obj[key], bool)), (key, obj[key])
    assert obj["object"] == "response"
    parsed = Response.model_validate(obj)
    unknown = [f for f in extras(parsed) if f not in UNDECLARED_BY_SDK]
    assert not unknown, f"fields openai's Response does not declare: {unknown}"
    return parsed


def check_event(obj: dict) -> object:
    """One stream event: openai's event union, strictly; responses inside it as check_response."""
    assert isinstance(obj.get("sequence_number"), int), obj
    parsed = EVENT.validate_python(obj)
    assert parsed.type == obj["type"]
    if "response" in obj:
        check_response(obj["response"])
    unknown = [f for f in extras(parsed) if f.split(".", 1)[-1] not in UNDECLARED_BY_SDK or
               not f.startswith("response.")]
    assert not unknown, f"{obj['type']}: fields openai's event type does not declare: {unknown}"
    return parsed
