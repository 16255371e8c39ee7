"""Chat on a loaded llama.cpp model: chat template, grammar-constrained tool calls and JSON (runs in the model worker)."""

from __future__ import annotations

import json
import threading

from llama_cpp import llama_grammar
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from assistants.ids import new_id
from assistants.providers.base import Cancelled, ChatResult, OnText, ProviderError, ToolCall, raw_response

# A reply length cap when the run sets none: the 135M model can ramble until the context is full. 512 cut ordinary
# "detailed analysis" answers short (the run then ends `incomplete`, and the seed notes' client code, which polls
# until "completed", would poll forever); RepeatGuard ends a looping reply long before 2048.
DEFAULT_MAX_TOKENS = 2048
# Small models loop ("Paris is the capital. Paris is the capital. …") until the cap. A mild penalty on tokens
# already used makes that rarer (llama.cpp's default is 1.0, off); RepeatGuard ends the reply when it happens anyway.
REPEAT_PENALTY = 1.12
REPEAT_NGRAM = 6   # words
REPEAT_TIMES = 3


class RepeatGuard:
    """Fed a reply piece by piece: says when an n-gram of its words (REPEAT_NGRAM) has occurred REPEAT_TIMES times."""

    def __init__(self) -> None:
        self.tail = ""  # the word being written: counted once a space ends it
        self.words: list[str] = []
        self.counts: dict[tuple[str, ...], int] = {}

    def feed(self, piece: str) -> bool:
        """Add a piece; True once the reply loops. Counted word by word, so a long reply costs no more per token."""
        text = self.tail + piece
        if not any(c.isspace() for c in piece):
            self.tail = text
            return False
        words = text.split()
        self.tail = "" if text[-1].isspace() else words.pop()
        for word in words:
            self.words.append(word)
            if len(self.words) >= REPEAT_NGRAM:
                gram = tuple(self.words[-REPEAT_NGRAM:])
                self.counts[gram] = self.counts.get(gram, 0) + 1
                if self.counts[gram] >= REPEAT_TIMES:
                    return True
        return False


def plain_messages(messages: list[dict]) -> list[dict]:
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


class LlamaChat:
    """One loaded `llama_cpp.Llama` answering Chat Completions requests; one request at a time."""

    def __init__(self, llama, n_ctx: int):
        self.llama = llama
        self.n_ctx = n_ctx
        self._formatter = None

    def chat(self, request: dict, on_text: OnText, cancel: threading.Event) -> ChatResult:
        """Generate one reply; a too-long conversation becomes a ProviderError the user can act on."""
        try:
            return self._generate(request, on_text, cancel)
        except ValueError as exc:
            if "context window" not in str(exc):
                raise
            raise ProviderError(f"The conversation is longer than this model's {self.n_ctx}-token context window. "
                                "Start a new thread, or set a truncation strategy such as the last 10 messages.",
                                code="invalid_prompt") from None

    def _sampling(self, request: dict) -> dict:
        max_tokens = request.get("max_completion_tokens") or request.get("max_tokens") or DEFAULT_MAX_TOKENS
        temperature = request.get("temperature")
        return {
            "temperature": 0.7 if temperature is None else float(temperature),
            "top_p": 1.0 if request.get("top_p") is None else float(request["top_p"]),
            "max_tokens": max_tokens,
            "seed": request.get("seed", 0),
            "repeat_penalty": REPEAT_PENALTY,
        }

    def _generate(self, request: dict, on_text: OnText, cancel: threading.Event) -> ChatResult:
        tools = [t for t in (request.get("tools") or []) if t.get("type") == "function"]
        choice = request.get("tool_choice") or "auto"
        messages = plain_messages(request["messages"])
        sampling = self._sampling(request)
        fmt = request.get("response_format") or {"type": "text"}
        if tools and choice == "none" and fmt.get("type", "text") == "text":
            # Answer in words, with the tools still described: through the plain chat template the model
            # sees its earlier calls folded into text ("functions.x: {...}") and would imitate them.
            return self._tool_turn(messages, tools, choice, sampling, on_text, cancel)
        if not tools or choice == "none":
            grammar = None
            if fmt.get("type") == "json_object":
                grammar = llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)
            elif fmt.get("type") == "json_schema":
                schema = (fmt.get("json_schema") or {}).get("schema") or {}
                grammar = _schema_grammar(schema)
            return self._stream_chat(messages, sampling, grammar, on_text, cancel)
        return self._tool_turn(messages, tools, choice, sampling, on_text, cancel)

    def _stream_chat(self, messages, sampling, grammar, on_text, cancel) -> ChatResult:
        """Plain chat through the model's own chat template (the same call a direct user would make)."""
        llama = self.llama
        parts, finish = [], "stop"
        guard = RepeatGuard() if grammar is None else None  # JSON under a grammar repeats keys on purpose
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
                if guard is not None and guard.feed(piece):
                    stream.close()  # looping: the reply is over, and it is a whole one ("stop", not "length")
                    finish = "stop"
                    break
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        text = "".join(parts)
        prompt_tokens = self._count(self._render(messages))
        completion_tokens = self._count(text)
        if finish == "length":
            completion_tokens = max(completion_tokens, sampling["max_tokens"])
        return _result(text, [], finish, prompt_tokens, completion_tokens)

    def _count(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode(), add_bos=False, special=True)) if text else 0

    def _render(self, messages) -> str:
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
        if self._formatter is None:  # compiled once: a Jinja compile per request costs milliseconds
            self._formatter = Jinja2ChatFormatter(template=template, eos_token=self._token_text("eos", "<|im_end|>"),
                                                  bos_token=self._token_text("bos", "<|im_start|>"), add_generation_prompt=True)
        return self._formatter(messages=messages).prompt

    def _token_text(self, which: str, fallback: str) -> str:
        """The model's own BOS/EOS text (templates print them); the ChatML ones when the model has none."""
        token = self.llama.token_eos() if which == "eos" else self.llama.token_bos()
        if token < 0:
            return fallback
        try:
            return self.llama.detokenize([token], special=True).decode("utf-8", "ignore") or fallback
        except TypeError:  # older bindings without `special`: the ChatML text is right for SmolLM2 and Qwen
            return fallback

    def _stop_words(self) -> list[str]:
        """Where a reply ends in the raw completion path: the model's EOS text and the common end-of-turn marks."""
        return list(dict.fromkeys([self._token_text("eos", "<|im_end|>"), "<|im_end|>", "<|eot_id|>", "<|end|>"]))

    def _tool_turn(self, messages, tools, choice, sampling, on_text, cancel) -> ChatResult:
        """Decide between a message and a function call, then write the arguments under a JSON-schema grammar."""
        llama = self.llama
        msgs = [dict(m) for m in messages]
        if msgs and msgs[0]["role"] == "system":
            msgs[0]["content"] += _tools_prompt(tools)
        else:
            msgs.insert(0, {"role": "system", "content": _tools_prompt(tools).strip()})
        prompt = self._render(msgs)
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
        prompt_tokens = self._count(prompt)
        stop = self._stop_words()
        if head.startswith("message"):
            text, finish = self._stream_completion(prompt + "message:\n", None, stop, sampling, on_text, cancel)
            return _result(text, [], finish, prompt_tokens, self._count(text))
        name = head.removeprefix("functions.").rstrip(":")
        tool = next(t for t in tools if t["function"]["name"] == name)
        grammar = _schema_grammar(tool["function"].get("parameters") or {"type": "object"})
        # Streamed (not shown) only so a cancel can stop long arguments, e.g. code, between tokens. No repeat penalty:
        # arguments repeat quotes, keys and code on purpose.
        text, finish = self._stream_completion(prompt + f"functions.{name}:\n", grammar, stop,
                                               {**sampling, "repeat_penalty": 1.0}, None, cancel)
        arguments = _strict_json(text.strip())
        completion_tokens = self._count(text)
        if finish == "length":
            return _result("", [], "length", prompt_tokens, max(completion_tokens, sampling["max_tokens"]))
        call = ToolCall(new_id("call"), name, arguments)
        return _result("", [call], "tool_calls", prompt_tokens, completion_tokens)

    def _stream_completion(self, prompt, grammar, stop, sampling, on_text, cancel) -> tuple[str, str]:
        parts, finish = [], "stop"
        guard = RepeatGuard() if on_text is not None else None  # only a reply in words ends on a loop
        stream = self.llama.create_completion(prompt=prompt, stream=True, grammar=grammar, stop=stop, **sampling)
        for chunk in stream:
            if cancel.is_set():
                stream.close()
                raise Cancelled()
            piece = chunk["choices"][0]["text"]
            if piece:
                parts.append(piece)
                if on_text is not None:
                    on_text(piece)
                if guard is not None and guard.feed(piece):
                    stream.close()
                    return "".join(parts), "stop"
            finish = chunk["choices"][0].get("finish_reason") or finish
        return "".join(parts), finish


def _strict_json(text: str) -> str:
    """llama.cpp's JSON grammar lets raw control characters into strings; clients parse strictly, so re-encode."""
    try:
        return json.dumps(json.loads(text, strict=False), ensure_ascii=False)
    except ValueError:
        return text  # cut short (finish "length"): left as it is, and the engine reports it


def _schema_grammar(schema: dict):
    """A grammar for a JSON schema; plain JSON when llama.cpp cannot compile that schema."""
    try:
        return llama_grammar.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception:  # the converter rejects some schema features; valid JSON is still guaranteed
        return llama_grammar.LlamaGrammar.from_string(llama_grammar.JSON_GBNF, verbose=False)


def _result(text: str, calls: list[ToolCall], finish: str, prompt_tokens: int, completion_tokens: int) -> ChatResult:
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    return ChatResult(text, calls, finish, prompt_tokens, completion_tokens, raw_response("embedded", text, calls, finish, usage))
