"""Bad input gets a clear 4xx naming the field (never a 500); auth; binding rules; 20 clients at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx2
import openai
import pytest

from assistants.config import load_settings
from assistants.server.app import bind_problem, main
from tests.server.conftest import free_port, running_api, wait_until_serving

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_api(tmp_path_factory.mktemp("abuse"), max_upload_mb=1) as running:
        yield running


@pytest.fixture(scope="module")
def raw(api):
    """A plain HTTP client with the key, for bodies the SDK would never send."""
    with httpx2.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {api.key}"}, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def assistant(client):
    return client.beta.assistants.create(model="gpt-4o-mini")


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def test_second_run_on_an_active_thread_is_400(client, assistant, fake):
    fake.add({"text": "slow", "delay": 1})
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    with pytest.raises(openai.BadRequestError, match="already has an active run") as err:
        client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert err.value.code == "run_active"
    with pytest.raises(openai.BadRequestError, match="while a run"):
        client.beta.threads.messages.create(thread_id=thread.id, role="user", content="more")
    client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
    assert client.beta.threads.runs.poll(run.id, thread_id=thread.id).status == "cancelled"


@pytest.mark.parametrize("body", [b"{", b'{"model": "x",}', b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_malformed_or_non_object_json_is_400(raw, body):
    response = raw.post("/assistants", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_too_large_body_is_413(raw):
    big = json.dumps({"model": "gpt-4o-mini", "instructions": "x" * (9 * 1024 * 1024)})
    response = raw.post("/assistants", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b" " * (1024 * 1024)

    response = raw.post("/assistants", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"


def test_too_large_upload_is_413_naming_file(client):
    with pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("big.txt", b"x" * (3 * 1024 * 1024)), purpose="assistants")
    assert err.value.status_code == 413 and err.value.body["param"] == "file"
    assert "upload limit is 1 MB" in err.value.message and "Nothing was stored" in err.value.message


@pytest.mark.parametrize(("call", "param"), [
    (lambda c, a, t: c.beta.assistants.create(model="gpt-4o-mini", name=123), "name"),
    (lambda c, a, t: c.beta.assistants.create(model="gpt-4o-mini", temperature="hot"), "temperature"),
    (lambda c, a, t: c.beta.assistants.create(model="gpt-4o-mini", metadata=["a"]), "metadata"),
    (lambda c, a, t: c.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "nope"}]), "tools[0].type"),
    (lambda c, a, t: c.beta.assistants.create(model=42), "model"),
    (lambda c, a, t: c.beta.assistants.create(model="gpt-4o-mini", extra_body={"colour": "red"}), "colour"),
    (lambda c, a, t: c.beta.assistants.update(a.id, top_p=7), "top_p"),
    (lambda c, a, t: c.beta.threads.create(messages="hello"), "messages"),
    (lambda c, a, t: c.beta.threads.create(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
    (lambda c, a, t: c.beta.threads.create(extra_body={"title": "x"}), "title"),
    (lambda c, a, t: c.beta.threads.messages.create(thread_id=t.id, role="user", content=5), "content"),
    (lambda c, a, t: c.beta.threads.messages.create(thread_id=t.id, role="user", content="x", attachments="f"),
     "attachments"),
    (lambda c, a, t: c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, extra_body={"stream": "yes"}),
     "stream"),
    (lambda c, a, t: c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, max_completion_tokens="many"),
     "max_completion_tokens"),
    (lambda c, a, t: c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, model="no-such-model"), "model"),
    (lambda c, a, t: c.beta.threads.runs.create(thread_id=t.id, assistant_id=None), "assistant_id"),
    (lambda c, a, t: c.beta.threads.create_and_run(assistant_id=a.id, thread=["x"]), "thread"),
    (lambda c, a, t: c.beta.threads.create_and_run(assistant_id=a.id, extra_body={"additional_instructions": "x"}),
     "additional_instructions"),
    (lambda c, a, t: c.beta.assistants.list(limit="many"), "limit"),
    (lambda c, a, t: c.beta.assistants.list(limit=1000), "limit"),
    (lambda c, a, t: c.beta.assistants.list(order="sideways"), "order"),
    (lambda c, a, t: c.beta.assistants.list(after="asst_nope"), "after"),
    (lambda c, a, t: c.vector_stores.create(name=5), "name"),
    (lambda c, a, t: c.vector_stores.create(extra_body={"colour": "red"}), "colour"),
])
def test_wrong_types_and_unknown_params_are_400_naming_the_field(client, assistant, call, param):
    thread = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        call(client, assistant, thread)
    assert err.value.status_code == 400 and err.value.body["param"] == param, err.value.body


@pytest.mark.parametrize("path", [
    "/assistants/asst_nope", "/threads/thread_nope", "/threads/thread_nope/messages", "/threads/{t}/messages/msg_nope",
    "/threads/thread_nope/runs", "/threads/{t}/runs/run_nope", "/threads/{t}/runs/run_nope/steps",
    "/threads/{t}/runs/run_nope/steps/step_nope", "/files/file-nope", "/files/file-nope/content",
    "/vector_stores/vs_nope", "/vector_stores/vs_nope/files", "/vector_stores/vs_nope/files/file-nope",
    "/vector_stores/vs_nope/file_batches/vsfb_nope", "/models/no-such-model",
])
def test_unknown_ids_are_404(client, raw, path):
    thread = client.beta.threads.create()
    response = raw.get(path.replace("{t}", thread.id))
    assert response.status_code == 404, response.text
    assert error_of(response)["type"] == "invalid_request_error"


def test_unknown_ids_raise_not_found_in_the_sdk(client):
    thread = client.beta.threads.create()
    for call in (lambda: client.beta.assistants.update("asst_nope", name="x"),
                 lambda: client.beta.assistants.delete("asst_nope"),
                 lambda: client.beta.threads.messages.create(thread_id="thread_nope", role="user", content="x"),
                 lambda: client.beta.threads.runs.cancel("run_nope", thread_id=thread.id),
                 lambda: client.beta.threads.runs.submit_tool_outputs("run_nope", thread_id=thread.id, tool_outputs=[]),
                 lambda: client.files.delete("file-nope"),
                 lambda: client.vector_stores.delete("vs_nope")):
        with pytest.raises(openai.NotFoundError):
            call()


def test_unknown_routes_and_methods(raw):
    response = raw.post("/chat/completions", json={})
    assert response.status_code == 404 and "Assistants API" in error_of(response)["message"]
    response = raw.put("/assistants", json={})
    assert response.status_code == 405 and error_of(response)["code"] == "method_not_allowed"


# Every JSON type, and a few values that break naive code, for every parameter of every creating route.
ODD_VALUES = [None, True, -1, 1e308, "x", "", [], [None], {}, {"type": None}, {"": ""}, [{"type": "function"}]]


def test_odd_values_never_cause_a_500(raw, client):
    assistant = client.beta.assistants.create(model="gpt-4o-mini")  # its own: the loop may change it
    thread = client.beta.threads.create()
    routes = {
        "/assistants": ["model", "name", "tools", "tool_resources", "metadata", "temperature", "response_format"],
        f"/assistants/{assistant.id}": ["model", "tools", "tool_resources", "top_p"],
        "/threads": ["messages", "tool_resources", "metadata"],
        f"/threads/{thread.id}": ["metadata", "tool_resources"],
        f"/threads/{thread.id}/messages": ["role", "content", "attachments", "metadata"],
        f"/threads/{thread.id}/runs": ["assistant_id", "tools", "additional_messages", "tool_choice", "response_format",
                                       "truncation_strategy", "stream", "max_prompt_tokens", "parallel_tool_calls"],
        "/threads/runs": ["assistant_id", "thread", "tool_resources", "stream"],
        "/vector_stores": ["name", "file_ids", "expires_after", "chunking_strategy", "metadata"],
    }
    seen = set()
    for path, fields in routes.items():
        for field in fields:
            for value in ODD_VALUES:
                body = {field: value}
                if "/runs" in path and field != "assistant_id":
                    body["assistant_id"] = "asst_missing"  # never starts a run, but gets past the first check
                response = raw.post(path, json=body)
                seen.add(response.status_code)
                assert response.status_code in (200, 400, 404), (path, body, response.text)
                if response.status_code != 200:
                    error_of(response)
    assert 400 in seen


def test_wrong_or_missing_key_is_401(api):
    with pytest.raises(openai.AuthenticationError) as err:
        api.client(api_key="sk-wrong").beta.assistants.list()
    assert err.value.code == "invalid_api_key" and "sk-wrong" not in err.value.message
    response = httpx2.get(f"{api.base_url}/assistants")
    assert response.status_code == 401 and error_of(response)["code"] == "missing_api_key"


def test_without_keys_only_localhost_hosts_are_answered(tmp_path):
    with running_api(tmp_path, api_keys=()) as api:
        assert api.client(api_key="anything").beta.assistants.list().data == []
        response = httpx2.get(f"{api.base_url}/assistants", headers={"Host": "evil.example:80"})
        assert response.status_code == 403 and error_of(response)["code"] == "host_not_allowed"
        assert httpx2.get(f"{api.base_url}/assistants", headers={"Host": "localhost:1"}).status_code == 200


def test_refuses_to_bind_elsewhere_without_keys(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PLAYGROUND_API_KEYS", "")
    settings = load_settings(dotenv=False)
    assert bind_problem("127.0.0.1", settings) is None and bind_problem("localhost", settings) is None
    assert bind_problem("::1", settings) is None
    assert "PLAYGROUND_API_KEYS" in bind_problem("0.0.0.0", settings)
    assert main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "Refusing to listen on 0.0.0.0 without API keys" in capsys.readouterr().err
    monkeypatch.setenv("PLAYGROUND_API_KEYS", "k1,k2")
    assert bind_problem("0.0.0.0", load_settings(dotenv=False)) is None


def test_python_m_assistants_server_serves(tmp_path):
    port = free_port()
    env = {**os.environ, "PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_EMBEDDED_MODEL": "0", "PLAYGROUND_API_KEYS": "",
           "PLAYGROUND_BACKENDS": "", "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    proc = subprocess.Popen([sys.executable, "-m", "assistants.server", "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        response = wait_until_serving(proc, f"http://127.0.0.1:{port}/v1/assistants", 20)
        assert response.status_code == 200 and response.json()["object"] == "list"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    refused = subprocess.run([sys.executable, "-m", "assistants.server", "--host", "0.0.0.0"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "without API keys" in refused.stderr


def test_twenty_concurrent_clients_on_twenty_threads(api, assistant):
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            client = api.client()
            thread = client.beta.threads.create()
            client.beta.threads.messages.create(thread_id=thread.id, role="user", content=f"client {i}")
            run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
            texts = [m.content[0].text.value for m in client.beta.threads.messages.list(thread_id=thread.id, order="asc")]
            results[i] = (run.status, texts)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors, errors
    assert len(results) == 20
    for i, (status, texts) in results.items():
        assert status == "completed" and texts == [f"client {i}", f"echo: client {i}"]


def test_validation_and_unexpected_errors_keep_the_openai_shape():
    import asyncio

    from fastapi.exceptions import RequestValidationError

    from assistants.server.errors import unexpected_error, validation_error

    invalid = RequestValidationError([{"loc": ("query", "limit"), "msg": "Input should be a valid integer",
                                       "type": "int_parsing"}])
    response = asyncio.run(validation_error(None, invalid))
    assert response.status_code == 400
    assert json.loads(response.body)["error"]["param"] == "limit"

    class Req:
        method, url = "GET", type("U", (), {"path": "/v1/x"})()

    response = asyncio.run(unexpected_error(Req(), ValueError("bug")))
    body = json.loads(response.body)["error"]
    assert response.status_code == 500 and body["type"] == "server_error"
    assert response.headers["x-should-retry"] == "false"
