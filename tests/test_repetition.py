"""The embedded model stops when it loops: a repeat penalty in its sampling, and a reply that repeats ends "stop"."""

from __future__ import annotations

import threading
import typing

import pytest

from assistants.providers.llama_chat import REPEAT_NGRAM, REPEAT_PENALTY, LlamaChat, RepeatGuard

pytestmark = pytest.mark.no_database  # no store: runs once, not per database


def test_the_guard_sees_a_loop_and_nothing_else():
    guard = RepeatGuard()
    words = ("The capital of France is Paris. " * 4).split(" ")
    stopped = next(i for i, w in enumerate(words) if guard.feed(" " + w))
    assert stopped == 3 * 6  # the third time round, as soon as its last word is complete
    guard = RepeatGuard()
    assert not any(guard.feed(f" word{i}") for i in range(500))  # no loop, however long
    guard = RepeatGuard()
    assert not any(guard.feed(p) for p in ["no", ", no", ", no", ".\n"])  # a short repeat is language, not a loop
    assert 1.1 <= REPEAT_PENALTY <= 1.15 and REPEAT_NGRAM >= 5


class _Looping:
    """A llama that would say the same sentence forever (until max_tokens)."""

    def create_chat_completion(self, **kwargs):
        assert kwargs["repeat_penalty"] == REPEAT_PENALTY
        for i in range(kwargs["max_tokens"]):
            yield {"choices": [{"delta": {"content": " " + "I like trains .".split()[i % 4]}, "finish_reason": None}]}

    def tokenize(self, data, add_bos=False, special=True):
        return data.split()

    metadata: typing.ClassVar[dict] = {"tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}

    def token_eos(self):
        return -1

    token_bos = token_eos


def test_a_looping_reply_ends_stop_long_before_the_cap():
    pieces: list[str] = []
    result = LlamaChat(_Looping(), 2048).chat({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 400},
                                              pieces.append, threading.Event())
    assert result.finish_reason == "stop" and len(pieces) < 40 and result.text.count("I like trains") <= 4


def test_the_real_model_stops_its_loop():
    """SmolLM2 at temperature 0 continuing a chant: it loops, and the reply ends there with finish "stop"."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from assistants.providers.embedded import model_path

    chat = LlamaChat(llama_cpp.Llama(str(model_path()), n_ctx=512, verbose=False), 512)
    sampling = chat._sampling({"temperature": 0, "max_tokens": 96})
    assert sampling["repeat_penalty"] == REPEAT_PENALTY
    pieces: list[str] = []
    _text, finish = chat._stream_completion("Song lyrics:\nla la la la la la la la la la la la la la la la", None,
                                           chat._stop_words(), sampling, pieces.append, threading.Event())
    assert finish == "stop" and len(pieces) < 96
    guard = RepeatGuard()
    assert any(guard.feed(p) for p in [*pieces, " "])  # it was the loop that ended it, not the model's end of turn
