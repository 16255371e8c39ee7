"""Contract: every route answers in its openai.types model, every stream event parses as AssistantStreamEvent."""

from __future__ import annotations

import io
import json
import re

import httpx2
import openai
import pydantic
import pytest
from openai.types import FileDeleted, FileObject, Model, VectorStore, VectorStoreDeleted, VectorStoreSearchResponse
from openai.types.beta import Assistant, AssistantDeleted, AssistantStreamEvent, Thread, ThreadDeleted
from openai.types.beta.threads import Message, MessageDeleted, Run
from openai.types.beta.threads.runs import RunStep
from openai.types.shared import ErrorObject
from openai.types.vector_stores import FileContentResponse, VectorStoreFile, VectorStoreFileBatch, VectorStoreFileDeleted

from tests.server.conftest import route_of


STREAM_EVENT = pydantic.TypeAdapter(AssistantStreamEvent)
ID = r"[^/]+"
VS = f"/vector_stores/{ID}"  # one vector store
INCLUDE = ["step_details.tool_calls[*].file_search.results[*].content"]

# (method, path under /v1, type of the answer, is it a list page)
ROUTES = [
    ("POST", "/threads/runs", Run, False),  # first: /threads/{id} would match it too
    ("POST", "/assistants", Assistant, False), ("GET", "/assistants", Assistant, True),
    ("GET", f"/assistants/{ID}", Assistant, False), ("POST", f"/assistants/{ID}", Assistant, False),
    ("DELETE", f"/assistants/{ID}", AssistantDeleted, False),
    ("POST", "/threads", Thread, False), ("GET", f"/threads/{ID}", Thread, False),
    ("POST", f"/threads/{ID}", Thread, False), ("DELETE", f"/threads/{ID}", ThreadDeleted, False),
    ("POST", f"/threads/{ID}/messages", Message, False), ("GET", f"/threads/{ID}/messages", Message, True),
    ("GET", f"/threads/{ID}/messages/{ID}", Message, False), ("POST", f"/threads/{ID}/messages/{ID}", Message, False),
    ("DELETE", f"/threads/{ID}/messages/{ID}", MessageDeleted, False),
    ("POST", f"/threads/{ID}/runs", Run, False),
    ("GET", f"/threads/{ID}/runs", Run, True), ("GET", f"/threads/{ID}/runs/{ID}", Run, False),
    ("POST", f"/threads/{ID}/runs/{ID}", Run, False), ("POST", f"/threads/{ID}/runs/{ID}/cancel", Run, False),
    ("POST", f"/threads/{ID}/runs/{ID}/submit_tool_outputs", Run, False),
    ("GET", f"/threads/{ID}/runs/{ID}/steps", RunStep, True), ("GET", f"/threads/{ID}/runs/{ID}/steps/{ID}", RunStep, False),
    ("POST", "/files", FileObject, False), ("GET", "/files", FileObject, True),
    ("GET", f"/files/{ID}", FileObject, False), ("GET", f"/files/{ID}/content", None, False),
    ("DELETE", f"/files/{ID}", FileDeleted, False),
    ("POST", "/vector_stores", VectorStore, False), ("GET", "/vector_stores", VectorStore, True),
    ("GET", VS, VectorStore, False), ("POST", VS, VectorStore, False), ("DELETE", VS, VectorStoreDeleted, False),
    ("POST", f"{VS}/search", VectorStoreSearchResponse, True),
    ("POST", f"{VS}/files", VectorStoreFile, False), ("GET", f"{VS}/files", VectorStoreFile, True),
    ("GET", f"{VS}/files/{ID}", VectorStoreFile, False), ("POST", f"{VS}/files/{ID}", VectorStoreFile, False),
    ("DELETE", f"{VS}/files/{ID}", VectorStoreFileDeleted, False),
    ("GET", f"{VS}/files/{ID}/content", FileContentResponse, True),
    ("POST", f"{VS}/file_batches", VectorStoreFileBatch, False), ("GET", f"{VS}/file_batches/{ID}", VectorStoreFileBatch, False),
    ("POST", f"{VS}/file_batches/{ID}/cancel", VectorStoreFileBatch, False),
    ("GET", f"{VS}/file_batches/{ID}/files", VectorStoreFile, True),
    ("GET", "/models", Model, True), ("GET", "/models/.+", Model, False),
    ("DELETE", "/models/.+", None, False),  # unsupported: always an error body
]


def strict(model, obj: dict) -> None:
    """Validate, and fail on top-level fields the type does not declare."""
    model.model_validate(obj)
    extra = set(obj) - set(model.model_fields)
    assert not extra, f"{model.__name__} has undeclared fields {extra}"


class Recorder:
    """An httpx2 response hook keeping every (route, status, body) the SDK received."""

    def __init__(self):
        self.seen: list[tuple[tuple, int, bytes]] = []

    def __call__(self, response: httpx2.Response) -> None:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return
        response.read()
        self.seen.append((route_of(ROUTES, response.request.method, response.request.url.path), response.status_code,
                          response.content))


def sse(api, path: str, body: dict, query: str = "") -> list[tuple[str, str]]:
    with httpx2.stream("POST", f"{api.base_url}{path}{query}", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {api.key}"}) as response:
        assert response.status_code == 200, response.read()
        text = response.read().decode()
    frames = []
    for block in text.split("\n\n"):
        if not block or block.startswith(":"):
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        frames.append((lines["event"], lines["data"]))
    return frames


def check_events(frames: list[tuple[str, str]]) -> list[str]:
    assert frames[-1] == ("done", "[DONE]")
    names = []
    for name, data in frames[:-1]:
        payload = json.loads(data)
        if name == "error":
            ErrorObject.model_validate(payload["error"])
        else:
            event = STREAM_EVENT.validate_python({"event": name, "data": payload})
            if not name.endswith(".delta"):
                strict(type(event.data), payload)
        names.append(name)
    return names


@pytest.fixture(scope="module")
def recorded(api):
    recorder = Recorder()
    client = api.client(http_client=httpx2.Client(event_hooks={"response": [recorder]}))
    return client, recorder


def test_every_route_answers_in_its_openai_type(api, recorded, fake):
    client, recorder = recorded
    fn = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    a = client.beta.assistants.create(model="gpt-4o-mini", tools=[fn, {"type": "file_search"}], metadata={"k": "v"})
    client.beta.assistants.retrieve(a.id)
    client.beta.assistants.update(a.id, name="x")
    client.beta.assistants.list()
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    client.beta.threads.retrieve(t.id)
    client.beta.threads.update(t.id, metadata={"a": "b"})
    m = client.beta.threads.messages.create(thread_id=t.id, role="user", content="more")
    client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    client.beta.threads.messages.update(m.id, thread_id=t.id, metadata={"c": "d"})
    client.beta.threads.messages.delete(m.id, thread_id=t.id)

    fake.add({"tool_calls": [("lookup", "{}")]}, {"text": "answer"}, {"text": "slow", "delay": 2})
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    client.beta.threads.runs.submit_tool_outputs_and_poll(run_id=run.id, thread_id=t.id,
                                                          tool_outputs=[{"tool_call_id": call.id, "output": "1"}])
    client.beta.threads.runs.update(run.id, thread_id=t.id, metadata={"e": "f"})
    client.beta.threads.runs.list(thread_id=t.id)
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=t.id, include=INCLUDE)
    client.beta.threads.runs.steps.retrieve(steps.data[0].id, thread_id=t.id, run_id=run.id)
    client.beta.threads.messages.list(thread_id=t.id, run_id=run.id)
    slow = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    client.beta.threads.runs.cancel(slow.id, thread_id=t.id)
    client.beta.threads.runs.poll(slow.id, thread_id=t.id)
    made = client.beta.threads.create_and_run_poll(assistant_id=a.id, thread={"messages": [{"role": "user", "content": "x"}]})
    client.beta.threads.delete(made.thread_id)

    f = client.files.create(file=("notes.txt", io.BytesIO(b"the sky is blue"), "text/plain"), purpose="assistants")
    g = client.files.create(file=("more.txt", io.BytesIO(b"grass is green"), "text/plain"), purpose="assistants")
    client.files.retrieve(f.id)
    client.files.list()
    client.files.content(f.id).read()
    vs = client.vector_stores.create(name="kb", file_ids=[f.id])
    client.vector_stores.retrieve(vs.id)
    client.vector_stores.update(vs.id, metadata={"g": "h"})
    client.vector_stores.list()
    client.vector_stores.files.create_and_poll(file_id=g.id, vector_store_id=vs.id)
    client.vector_stores.files.list(vector_store_id=vs.id)
    client.vector_stores.files.update(g.id, vector_store_id=vs.id, attributes={"n": 1})
    client.vector_stores.search(vs.id, query="sky")
    assert "".join(p.text for p in client.vector_stores.files.content(g.id, vector_store_id=vs.id)) == "grass is green"
    batch = client.vector_stores.file_batches.create_and_poll(vector_store_id=vs.id, file_ids=[f.id, g.id])
    client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id)
    with pytest.raises(openai.BadRequestError):
        client.vector_stores.file_batches.cancel(batch.id, vector_store_id=vs.id)
    client.vector_stores.files.delete(g.id, vector_store_id=vs.id)
    client.vector_stores.delete(vs.id)
    client.files.delete(g.id)
    client.models.list()
    client.models.retrieve("fake-model")
    with pytest.raises(openai.BadRequestError):
        client.models.delete("fake-model")
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve("asst_missing")
    client.beta.assistants.delete(a.id)

    for route, status, body in recorder.seen:
        _, _, model, is_page = route
        if status >= 400:
            payload = json.loads(body)
            assert set(payload) == {"error"}
            strict(ErrorObject, payload["error"])
            continue
        assert status == 200
        if model is None:
            continue
        payload = json.loads(body)
        if is_page:
            assert payload["object"] in ("list", "vector_store.search_results.page", "vector_store.file_content.page")
            assert model is Model or "has_more" in payload  # OpenAI's model list is the one without cursors
            for item in payload["data"]:
                strict(model, item)
        else:
            strict(model, payload)
    missing = {(r[0], r[1]) for r in ROUTES} - {(r[0][0], r[0][1]) for r in recorder.seen}
    assert not missing, f"routes never exercised: {missing}"


def test_the_contract_table_covers_every_route_of_the_app():
    from assistants.server import create_app
    from tests.server.test_responses_contract import RESPONSES_ROUTES

    table = {(method, path) for method, path, _, _ in ROUTES + RESPONSES_ROUTES}
    paths = create_app().openapi()["paths"]
    assert len(paths) > 20
    for template, methods in paths.items():
        path = re.sub(r"\{\w+\}", ID, template.replace("{model}", ".+")).removeprefix("/v1")
        for method in methods:
            assert (method.upper(), path) in table, f"{method} {template} has no contract entry"


def test_stream_events_are_assistant_stream_events(api, client, fake):
    def search(arguments, ctx):
        from assistants.tools import BuiltinOutcome

        return BuiltinOutcome("found", {"ranking_options": {"ranker": "auto", "score_threshold": 0.0}, "results": [
            {"file_id": "file-x", "file_name": "x.txt", "score": 0.5, "content": [{"type": "text", "text": "chunk"}]}]})

    fn = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    previous = api.rt.toolbox.handlers.get("file_search")
    api.rt.toolbox.register("file_search", search)
    try:
        a = client.beta.assistants.create(model="gpt-4o-mini", tools=[fn, {"type": "file_search"}])
        t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        fake.add({"tool_calls": [("file_search", '{"query": "q"}')]}, {"tool_calls": [("lookup", "{}")]})
        first = sse(api, f"/threads/{t.id}/runs", {"assistant_id": a.id, "stream": True}, "?include[]=" + INCLUDE[0])
        names = check_events(first)
        assert names[-1] == "thread.run.requires_action" and "thread.run.step.delta" in names
        run = json.loads(next(d for n, d in first if n == "thread.run.requires_action"))
        call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]
        fake.add({"text": "final words"})
        second = sse(api, f"/threads/{t.id}/runs/{run['id']}/submit_tool_outputs",
                     {"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}], "stream": True})
        names = check_events(second)
        assert names[-1] == "thread.run.completed" and "thread.message.delta" in names

        fake.add({"status": 500})
        names = check_events(sse(api, "/threads/runs", {"assistant_id": a.id, "stream": True,
                                                        "thread": {"messages": [{"role": "user", "content": "x"}]}}))
        assert names[0] == "thread.created" and names[-1] == "thread.run.failed"
    finally:
        if previous is not None:
            api.rt.toolbox.register("file_search", previous)
