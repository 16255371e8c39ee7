"""Contract: every /v1/responses and /v1/conversations route answers in its openai.types model."""

from __future__ import annotations

import io
import json

import httpx2
import openai
import pydantic
import pytest
from openai.types import ContainerCreateResponse, ContainerListResponse, ContainerRetrieveResponse
from openai.types.containers import FileCreateResponse, FileListResponse, FileRetrieveResponse
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItem
from openai.types.responses import Response, ResponseItem
from openai.types.shared import ErrorObject

from tests.server.conftest import route_of
from tests.server.open_responses import UNDECLARED_BY_SDK

ID = r"[^/]+"
# (method, path under /v1, type of the answer, is it a list page); test_contract.py checks the app has no other route.
RESPONSES_ROUTES = [
    ("POST", "/responses", Response, False), ("GET", f"/responses/{ID}", Response, False),
    ("DELETE", f"/responses/{ID}", None, False), ("POST", f"/responses/{ID}/cancel", Response, False),
    ("GET", f"/responses/{ID}/input_items", ResponseItem, True),
    ("POST", "/conversations", Conversation, False), ("GET", f"/conversations/{ID}", Conversation, False),
    ("POST", f"/conversations/{ID}", Conversation, False),
    ("DELETE", f"/conversations/{ID}", ConversationDeletedResource, False),
    ("POST", f"/conversations/{ID}/items", ConversationItem, True),
    ("GET", f"/conversations/{ID}/items", ConversationItem, True),
    ("GET", f"/conversations/{ID}/items/{ID}", ConversationItem, False),
    ("DELETE", f"/conversations/{ID}/items/{ID}", Conversation, False),
    ("POST", "/containers", ContainerCreateResponse, False), ("GET", "/containers", ContainerListResponse, True),
    ("GET", f"/containers/{ID}", ContainerRetrieveResponse, False), ("DELETE", f"/containers/{ID}", None, False),
    ("POST", f"/containers/{ID}/files", FileCreateResponse, False),
    ("DELETE", f"/containers/{ID}/files/{ID}", None, False),
    ("GET", f"/containers/{ID}/files", FileListResponse, True),
    ("GET", f"/containers/{ID}/files/{ID}", FileRetrieveResponse, False),
    ("GET", f"/containers/{ID}/files/{ID}/content", None, False),
]
WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def check(model, obj: dict) -> None:
    """Validate (unions through a TypeAdapter), and fail on top-level fields the type does not declare."""
    parsed = pydantic.TypeAdapter(model).validate_python(obj)
    extra = set(obj) - set(type(parsed).model_fields) - (UNDECLARED_BY_SDK if isinstance(parsed, Response) else set())
    assert not extra, f"{type(parsed).__name__} has undeclared fields {extra}"


def container_of(api, response_id: str) -> str:
    """The container (code session) of a response's thread."""
    from assistants.responses import records
    from assistants.responses.output import container_id

    return container_id(records.get(api.rt.store, response_id)["thread_id"])


def test_every_responses_route_answers_in_its_openai_type(api, fake):
    seen: list = []

    def record(response: httpx2.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return
        response.read()
        seen.append((route_of(RESPONSES_ROUTES, response.request.method, response.request.url.path), response.status_code,
                     response.content))

    client = api.client(http_client=httpx2.Client(event_hooks={"response": [record]}))
    fake.add({"tool_calls": [("get_weather", "{}")]}, {"text": "done"}, {"text": "slow", "delay": 2})
    r = client.responses.create(model="gpt-4o-mini", input="hi", tools=[WEATHER], metadata={"a": "b"})
    call = r.output[0]
    follow = client.responses.create(model="gpt-4o-mini", previous_response_id=r.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}])
    client.responses.retrieve(follow.id)
    client.responses.input_items.list(r.id)
    client.responses.input_items.list(follow.id)
    slow = client.responses.create(model="gpt-4o-mini", input="slow", background=True)
    client.responses.cancel(slow.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{"type": "computer_use_preview"}])
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)

    conv = client.conversations.create(items=[{"type": "message", "role": "user", "content": "hello"}])
    client.conversations.retrieve(conv.id)
    client.conversations.update(conv.id, metadata={"x": "y"})
    client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="more")
    made = client.conversations.items.create(conv.id, items=[{"type": "message", "role": "user", "content": "again"}])
    client.conversations.items.list(conv.id)
    client.conversations.items.retrieve(made.data[0].id, conversation_id=conv.id)
    client.conversations.items.delete(made.data[0].id, conversation_id=conv.id)
    client.conversations.delete(conv.id)

    data = api.client().files.create(file=("d.csv", io.BytesIO(b"x\n1\n"), "text/plain"), purpose="assistants")
    fake.add({"text": "no code needed"})
    ci = client.responses.create(model="gpt-4o-mini", input="hi", tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}])
    cid = container_of(api, ci.id)
    client.containers.retrieve(cid)
    listed = client.containers.files.list(cid)
    assert [f.path for f in listed.data] == ["/mnt/data/d.csv"] and listed.data[0].source == "user"
    client.containers.files.retrieve(data.id, container_id=cid)
    assert client.containers.files.content.retrieve(data.id, container_id=cid).read() == b"x\n1\n"
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve("cntr_missing")
    own = client.containers.create(name="own", file_ids=[data.id])
    client.containers.list()
    added = client.containers.files.create(own.id, file=("n.txt", io.BytesIO(b"n"), "text/plain"))
    client.containers.files.delete(added.id, container_id=own.id)
    client.containers.delete(own.id)

    for route, status, body in seen:
        _, _, model, is_page = route
        if status == 200 and model is None:
            continue  # file content, or the delete answer the SDK does not parse
        payload = json.loads(body)
        if status >= 400:
            assert set(payload) == {"error"}
            ErrorObject.model_validate(payload["error"])
            assert set(payload["error"]) == {"message", "type", "param", "code"}
            continue
        assert status == 200
        if model is None:
            continue
        if is_page:
            assert payload["object"] == "list" and "has_more" in payload
            for item in payload["data"]:
                check(model, item)
        else:
            check(model, payload)
    missing = {(r[0], r[1]) for r in RESPONSES_ROUTES} - {(r[0][0], r[0][1]) for r in seen}
    assert not missing, f"routes never exercised: {missing}"
