"""A small scripted OpenAI-compatible HTTP server (models, chat completions with streaming, embeddings)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as srv:`; `srv.base_url` ends in /v1; script turns with `srv.add(...)`.

    A turn: {"text": str (or "chunks": [str]), "tool_calls": [(name, arguments)], "status": int (error status),
    "delay": s, "chunk_delay": s, "finish": str}. Empty script: `responder(request body)`'s turn, if one is given
    (a reply that depends on the request, for many clients at once), else "echo: <last user message>".
    """

    def __init__(self, models: tuple[str, ...] = ("fake-model",), api_key: str | None = None,
                 responder: Callable[[dict], dict] | None = None):
        self.models = list(models)
        self.api_key = api_key
        self.responder = responder
        self.script: deque = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                with server._lock:
                    server.headers.append(dict(self.headers))
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                                               "code": "invalid_api_key"}})
                    return False
                return True

            def do_GET(self):
                if not self._authorised():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in server.models]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorised():
                    return
                if self.path.endswith("/embeddings"):
                    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    self._send(200, {"object": "list", "model": body.get("model"), "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                     "data": [{"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                                              for i, t in enumerate(inputs)]})
                    return
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.requests.append(body)
                    turn = server.script.popleft() if server.script else None
                if turn is None and server.responder is not None:
                    turn = server.responder(body)
                if turn is None:
                    last = next((m.get("content") for m in reversed(body["messages"]) if m["role"] == "user"), "")
                    turn = {"text": f"echo: {last}"}
                time.sleep(turn.get("delay", 0))
                if turn.get("status"):
                    self._send(turn["status"], {"error": {"message": turn.get("message", "scripted failure"),
                                                          "type": "server_error", "code": None}})
                    return
                self._reply(body, turn)

            def _reply(self, body: dict, turn: dict) -> None:
                text = "".join(turn["chunks"]) if turn.get("chunks") else turn.get("text", "")
                calls = [{"index": i, "id": f"call_{i}_{len(server.requests)}", "type": "function",
                          "function": {"name": c[0], "arguments": c[1]}} for i, c in enumerate(turn.get("tool_calls", []))]
                finish = turn.get("finish") or ("tool_calls" if calls else "stop")
                usage = {"prompt_tokens": 11, "completion_tokens": max(1, len(text.split())), "total_tokens": 0}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                if not body.get("stream"):
                    msg = {"role": "assistant", "content": text or None}
                    if calls:
                        msg["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
                    self._send(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": body["model"],
                                     "choices": [{"index": 0, "message": msg, "finish_reason": finish}], "usage": usage})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

                def emit(obj) -> None:
                    data = f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n".encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()

                def chunk(delta: dict, finish_reason=None, use=None, logprobs=None) -> dict:
                    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
                    if logprobs is not None:
                        choice["logprobs"] = logprobs
                    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                            "choices": [] if use else [choice], "usage": use}

                emit(chunk({"role": "assistant", "content": ""}))
                for i, word in enumerate(turn.get("chunks") or _pieces(text)):
                    time.sleep(turn.get("chunk_delay", 0))
                    emit(chunk({"content": word}, logprobs=_logprobs(word, i, body) if body.get("logprobs") else None))
                for c in calls:
                    emit(chunk({"tool_calls": [c]}))
                emit(chunk({}, finish))
                emit(chunk({}, use=usage))
                emit("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, *turns: dict) -> FakeOpenAIServer:
        with self._lock:
            self.script.extend(turns)
        return self

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # clients hanging up mid-stream are expected in tests
        pass


def _pieces(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


def _logprobs(token: str, i: int, body: dict) -> dict:
    """Made-up log probabilities for one streamed piece: -0.1 * (its index + 1), alternatives lower still."""
    def entry(tok: str, lp: float) -> dict:
        return {"token": tok, "logprob": lp, "bytes": list(tok.encode())}
    top = [entry(f"alt{k}", -1.0 - k) for k in range(body.get("top_logprobs") or 0)]
    return {"content": [{**entry(token, -0.1 * (i + 1)), "top_logprobs": top}]}


def fake_embedding(text: str, dims: int = 16) -> list[float]:
    """Deterministic bag-of-words vector, so similar texts get similar embeddings."""
    vec = [0.0] * dims
    for word in text.lower().split():
        h = hashlib.sha1(word.encode()).digest()
        vec[h[0] % dims] += 1.0
    return vec


if __name__ == "__main__":  # handy for manual UI checks: python -m tests.fakes.openai_server
    with FakeOpenAIServer() as srv:
        print(srv.base_url, flush=True)
        threading.Event().wait()
