"""Any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM, LM Studio, llama.cpp server)."""

from __future__ import annotations

import json
import threading
import time

import openai

from assistants.config import Backend
from assistants.providers.base import Cancelled, ChatResult, OnText, ProviderError, ToolCall, raw_response

# Sent when a backend has no key: an explicit value stops the SDK from falling back to
# OPENAI_API_KEY, so the OpenAI key never reaches another server.
NO_KEY = "sk-no-key-configured"


def describe_error(backend: Backend, exc: Exception, timeout: float) -> ProviderError:
    """Turn an SDK exception into a message a person can act on."""
    where = f"backend '{backend.name}' at {backend.base_url}"
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(f"The model server ({where}) did not answer within {timeout:.0f} s. "
                             "It may be overloaded or loading a model; try again, or raise PLAYGROUND_MODEL_TIMEOUT.")
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"Could not connect to {where} ({exc.__cause__ or exc}). "
                             "Is the server running? Check its base URL in Settings or .env.")
    if isinstance(exc, openai.AuthenticationError):
        return ProviderError(f"The {where} rejected the API key (401). "
                             "Set the right key in Settings or .env.")
    if isinstance(exc, openai.PermissionDeniedError):
        return ProviderError(f"The {where} refused access (403): {_detail(exc)}. Check the key's permissions.")
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(f"The {where} is rate limiting requests (429): {_detail(exc)}. "
                             "Wait a moment and run again, or check your plan's quota.", code="rate_limit_exceeded")
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(f"The {where} answered 404: {_detail(exc)}. The model may not exist there, "
                             "or the base URL is missing '/v1'.")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return ProviderError(f"The {where} failed with HTTP {exc.status_code}: {_detail(exc)}. "
                                 "Try again; if it keeps failing, look at that server's logs.")
        return ProviderError(f"The {where} rejected the request (HTTP {exc.status_code}): {_detail(exc)}.",
                             code="invalid_prompt")
    return ProviderError(f"The call to {where} failed: {type(exc).__name__}: {exc}")


def _detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
    return str(exc.message)[:300]


def token_logprobs(content) -> list[dict]:
    """A chunk's `logprobs.content` as plain dicts: token, logprob, bytes and the top alternatives."""
    out = []
    for t in content or []:
        top = [{"token": a.token, "logprob": a.logprob, "bytes": list(a.bytes or t.token.encode())}
               for a in t.top_logprobs or []]
        out.append({"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes or t.token.encode()),
                    "top_logprobs": top})
    return out


class OpenAICompatProvider:
    """Chat and model listing against one configured base URL, with that backend's own key only."""

    logprobs = True  # passes `logprobs`/`top_logprobs` through (a server that ignores them sends none)

    def __init__(self, backend: Backend, *, timeout: float = 120.0, http_client=None):
        self.name = backend.name
        self.backend = backend
        self.timeout = timeout
        self.client = openai.OpenAI(
            api_key=backend.api_key or NO_KEY,
            base_url=backend.base_url,
            timeout=timeout,
            max_retries=0,
            http_client=http_client,
        )

    def list_models(self) -> list[str]:
        try:
            return sorted(m.id for m in self.client.models.list(timeout=min(self.timeout, 10.0)))
        except openai.OpenAIError as exc:
            raise describe_error(self.backend, exc, min(self.timeout, 10.0)) from None

    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult:
        body = {k: v for k, v in request.items() if v is not None}
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        text_parts: list[str] = []
        calls: dict[int, dict] = {}
        finish, usage, chunk_count = "stop", None, 0
        logprobs: list[dict] | None = [] if body.get("logprobs") else None
        started = time.monotonic()
        try:
            stream = self.client.chat.completions.create(**body)
            try:
                for chunk in stream:
                    if cancel.is_set():
                        raise Cancelled()
                    chunk_count += 1
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        delta = choice.delta
                        piece_logprobs = None
                        if logprobs is not None and choice.logprobs is not None:
                            piece_logprobs = token_logprobs(choice.logprobs.content)
                            logprobs.extend(piece_logprobs)
                        if delta is not None and delta.content:
                            text_parts.append(delta.content)
                            if piece_logprobs is None:
                                on_text(delta.content)
                            else:
                                on_text(delta.content, piece_logprobs)
                        for tc in (delta.tool_calls or []) if delta is not None else []:
                            slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                            if tc.id:
                                slot["id"] = tc.id
                            if tc.function is not None:
                                slot["name"] += tc.function.name or ""
                                slot["arguments"] += tc.function.arguments or ""
                        if choice.finish_reason:
                            finish = choice.finish_reason
            finally:
                stream.close()
        except Cancelled:
            raise
        except openai.OpenAIError as exc:
            raise describe_error(self.backend, exc, self.timeout) from None
        text = "".join(text_parts)
        tool_calls = [ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(calls.items())]
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        raw = raw_response(self.name, text, tool_calls, finish, json.loads(usage.model_dump_json()) if usage else None,
                           streamed_chunks=chunk_count, seconds=round(time.monotonic() - started, 3))
        if logprobs is not None:  # asked for: a backend that sends none gives an empty list
            raw["choices"][0]["logprobs"] = {"content": logprobs}
        return ChatResult(text, tool_calls, finish, prompt_tokens, completion_tokens, raw)
