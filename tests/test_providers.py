"""Model backends: the OpenAI-compatible client (fake HTTP backends), routing, aliases, key isolation."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx2
import pytest

from assistants.config import Backend, Settings, load_settings, parse_aliases, parse_backends
from assistants.errors import BadRequest
from assistants.providers.base import ProviderError
from assistants.providers.openai_compat import OpenAICompatProvider
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import database_url_for, wait_run
from tests.fakes.openai_server import FakeOpenAIServer

pytestmark = pytest.mark.no_database  # providers and the router need no store; the tests that run them do


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def chat(provider, **request):
    pieces = []
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], **request}
    result = provider.chat(body, on_text=pieces.append, cancel=threading.Event())
    return result, pieces


def test_streams_text_and_usage_from_a_compatible_server():
    with FakeOpenAIServer() as srv:
        srv.add({"text": "one two three"})
        result, pieces = chat(OpenAICompatProvider(Backend("fake", srv.base_url)))
    assert pieces == ["one", " two", " three"] and result.text == "one two three"
    assert (result.prompt_tokens, result.completion_tokens, result.finish_reason) == (11, 3, "stop")
    assert srv.requests[0]["stream"] is True


def test_tool_call_deltas_are_assembled():
    with FakeOpenAIServer() as srv:
        srv.add({"tool_calls": [("a", '{"x": 1}'), ("b", "{}")]})
        result, _ = chat(OpenAICompatProvider(Backend("fake", srv.base_url)))
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("a", '{"x": 1}'), ("b", "{}")]
    assert result.finish_reason == "tool_calls"


@pytest.mark.parametrize("status,code,words", [(401, "server_error", "rejected the API key"),
                                               (429, "rate_limit_exceeded", "rate limiting"),
                                               (503, "server_error", "HTTP 503")])
def test_http_failures_become_actionable_errors(status, code, words):
    with FakeOpenAIServer() as srv:
        srv.add({"status": status})
        with pytest.raises(ProviderError) as info:
            chat(OpenAICompatProvider(Backend("fake", srv.base_url)))
    assert info.value.code == code and words in info.value.message and "fake" in info.value.message


def test_connection_refused_and_timeout_are_explained():
    down = OpenAICompatProvider(Backend("ollama", f"http://127.0.0.1:{closed_port()}/v1"))
    with pytest.raises(ProviderError, match=r"Could not connect to backend 'ollama'.*Is the server running"):
        chat(down)
    with FakeOpenAIServer() as srv:
        srv.add({"text": "late", "delay": 2})
        with pytest.raises(ProviderError, match="did not answer within"):
            chat(OpenAICompatProvider(Backend("slow", srv.base_url), timeout=0.5))


def test_mock_transport_sees_only_its_own_key():
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx2.Response(200, json={"object": "list", "data": [{"id": "m1", "object": "model", "created": 0,
                                                                     "owned_by": "x"}]})

    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    keyed = OpenAICompatProvider(Backend("openai", "https://gateway.example/v1", "sk-secret"), http_client=client)
    keyless = OpenAICompatProvider(Backend("ollama", "http://ollama.local/v1"), http_client=client)
    assert keyed.list_models() == keyless.list_models() == ["m1"]
    assert seen[0] == ("https://gateway.example/v1/models", "Bearer sk-secret")
    assert seen[1][0] == "http://ollama.local/v1/models" and "sk-secret" not in (seen[1][1] or "")


def test_openai_key_never_reaches_other_backends(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    with FakeOpenAIServer(models=("a",), api_key="sk-env-secret") as openai_srv, FakeOpenAIServer(models=("b",)) as other:
        settings = Settings(data_dir=tmp_path, openai_api_key="sk-env-secret", openai_base_url=openai_srv.base_url,
                            backends=(Backend("local", other.base_url),), embedded_enabled=False)
        router = ModelRouter.from_settings(settings)
        assert sorted(router.available_models()) == ["a", "b"]
        for provider, model in (router.resolve("a"), router.resolve("b")):
            provider.chat({"model": model, "messages": [{"role": "user", "content": "x"}]},
                          on_text=lambda _: None, cancel=threading.Event())
    assert openai_srv.headers and all("sk-env-secret" in json.dumps(h) for h in openai_srv.headers)
    assert not any("sk-env-secret" in json.dumps(h) for h in other.headers)


def test_router_reports_down_backends_and_never_substitutes(tmp_path):
    with FakeOpenAIServer(models=("up-model",)) as srv:
        settings = Settings(data_dir=tmp_path, embedded_enabled=False, aliases={"gpt-4o-mini": "up-model"},
                            backends=(Backend("up", srv.base_url), Backend("down", f"http://127.0.0.1:{closed_port()}/v1")))
        router = ModelRouter.from_settings(settings)
        status = {s.name: s for s in router.catalog()}
        assert status["up"].ok and status["up"].models == ["up-model"]
        assert not status["down"].ok and "Could not connect" in status["down"].error
        assert router.resolve("gpt-4o-mini")[1] == "up-model"
        with pytest.raises(BadRequest) as info:
            router.resolve("llama3")
    msg = info.value.message
    assert "'llama3'" in msg and "up-model" in msg and "down" in msg and info.value.param == "model"


class SlowLister:
    """A backend whose model list takes `delay` seconds (a server that went quiet)."""

    def __init__(self, name: str, delay: float, models: list[str]):
        self.name, self.delay, self.models = name, delay, models

    def list_models(self) -> list[str]:
        time.sleep(self.delay)
        return list(self.models)


def test_backends_are_asked_in_parallel_and_a_stale_list_never_blocks():
    one, two = SlowLister("one", 0.5, ["a"]), SlowLister("two", 0.5, ["b"])
    router = ModelRouter([one, two], cache_s=0.05)
    started = time.monotonic()
    assert [s.models for s in router.catalog()] == [["a"], ["b"]]
    assert time.monotonic() - started < 0.9  # not 0.5 + 0.5
    time.sleep(0.1)  # the lists are stale now
    one.models, one.delay = ["a", "a2"], 1.0
    started = time.monotonic()
    assert [s.models for s in router.catalog()] == [["a"], ["b"]]  # the old answer at once...
    assert time.monotonic() - started < 0.2
    deadline = time.monotonic() + 5
    while router.catalog()[0].models != ["a", "a2"]:  # ...and the new one once the backend answers
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert router.catalog(refresh=True)[0].models == ["a", "a2"]


def test_a_backend_serving_the_real_model_wins_over_its_alias(tmp_path):
    with FakeOpenAIServer(models=("local-model",)) as local, FakeOpenAIServer(models=("gpt-4o-mini",)) as cloud:
        settings = Settings(data_dir=tmp_path, embedded_enabled=False, aliases={"gpt-4o-mini": "local-model"},
                            backends=(Backend("local", local.base_url),))
        assert ModelRouter.from_settings(settings).resolve("gpt-4o-mini")[1] == "local-model"  # offline: the alias
        settings = Settings(data_dir=tmp_path, embedded_enabled=False, aliases={"gpt-4o-mini": "local-model"},
                            backends=(Backend("local", local.base_url), Backend("cloud", cloud.base_url)))
        provider, model = ModelRouter.from_settings(settings).resolve("gpt-4o-mini")
        assert model == "gpt-4o-mini" and provider.name == "cloud"


@pytest.mark.both_databases
def test_a_run_through_a_compatible_server_and_a_failing_one(tmp_path):
    with FakeOpenAIServer() as srv:
        srv.add({"text": "hello from http"}, {"status": 500})
        rt = Runtime(Settings(data_dir=tmp_path, embedded_enabled=False, backends=(Backend("fake", srv.base_url),),
                              database_url=database_url_for(tmp_path)))
        try:
            a = rt.create_assistant(model="fake-model")
            t = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
            run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
            assert run["status"] == "completed" and run["usage"]["prompt_tokens"] == 11
            rt.create_message(t["id"], role="user", content="again")
            run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
            assert run["status"] == "failed" and "HTTP 500" in run["last_error"]["message"]
            assert [m["role"] for m in rt.list_messages(t["id"], order="asc")["data"]] == ["user", "assistant", "user"]
        finally:
            rt.close()


def test_settings_parsing_and_files(tmp_path):
    assert parse_aliases("gpt-4o-mini=smollm2-135m-instruct, a=b") == {"gpt-4o-mini": "smollm2-135m-instruct", "a": "b"}
    with pytest.raises(ValueError, match="alias=model"):
        parse_aliases("oops")
    assert parse_backends("ollama=http://localhost:11434/v1,lm=http://x/v1|k") == [
        Backend("ollama", "http://localhost:11434/v1"), Backend("lm", "http://x/v1", "k")]
    (tmp_path / "settings.json").write_text(json.dumps({"aliases": {"x": "y"}, "backends": [
        {"name": "ui", "base_url": "http://ui/v1"}]}))
    s = load_settings({"PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_MODEL_ALIASES": "a=b",
                       "PLAYGROUND_BACKENDS": "env=http://env/v1"})
    assert s.aliases == {"a": "b", "x": "y"} and [b.name for b in s.backends] == ["ui", "env"]
    assert s.default_model == "smollm2-135m-instruct" and s.db_path == tmp_path / "playground.db"
    with pytest.raises(ValueError, match="PLAYGROUND_RUN_WORKERS"):
        load_settings({"PLAYGROUND_DATA_DIR": str(tmp_path), "PLAYGROUND_RUN_WORKERS": "many"})


def _ollama_router(tmp_path, url: str, **settings) -> ModelRouter:
    base = dict(data_dir=tmp_path, embedded_enabled=False, default_model="", ollama_autodetect=True)
    return ModelRouter.from_settings(Settings(**{**base, **settings}), ollama_url=url)


@pytest.mark.both_databases
def test_ollama_is_found_without_configuration(tmp_path):
    with FakeOpenAIServer(models=("llama3.2", "qwen2.5")) as srv:
        router = _ollama_router(tmp_path, srv.base_url)
        rt = Runtime(Settings(data_dir=tmp_path, embedded_enabled=False, database_url=database_url_for(tmp_path)), router=router)
        try:
            entries = [m for m in rt.list_models() if m["owned_by"] == "ollama"]
            assert sorted(m["id"] for m in entries) == ["llama3.2", "qwen2.5"]
            srv.add({"text": "hi from ollama"})
            a = rt.create_assistant(model="llama3.2")
            t = rt.create_thread(messages=[{"role": "user", "content": "hi"}])
            run = wait_run(rt, t["id"], rt.create_run(t["id"], assistant_id=a["id"])["id"])
            assert run["status"] == "completed"
        finally:
            rt.close()


def test_ollama_autodetect_can_be_turned_off_and_never_doubles_a_configured_backend(tmp_path):
    with FakeOpenAIServer(models=("llama3.2",)) as srv:
        off = _ollama_router(tmp_path, srv.base_url, ollama_autodetect=False)
        assert [s.name for s in off.catalog()] == []
        # Configured as "mine" at the same address (localhost vs 127.0.0.1 alike): listed once, under the user's name.
        url = srv.base_url.replace("127.0.0.1", "localhost")
        configured = _ollama_router(tmp_path, url, backends=(Backend("mine", srv.base_url),))
        assert [(s.name, s.models) for s in configured.catalog()] == [("mine", ["llama3.2"])]


def test_no_ollama_running_costs_nothing_and_shows_nothing(tmp_path):
    router = _ollama_router(tmp_path, f"http://127.0.0.1:{closed_port()}/v1")
    started = time.monotonic()
    assert router.catalog() == [] and router.available_models() == []
    assert time.monotonic() - started < 1.0
    with pytest.raises(BadRequest, match="not served by any configured backend"):
        router.resolve("llama3.2")


def test_a_silent_port_does_not_hold_a_page_for_long(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts connections and never answers
    try:
        router = _ollama_router(tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}/v1")
        started = time.monotonic()
        assert router.catalog() == []
        assert time.monotonic() - started < 2.0
    finally:
        silent.close()
