"""Offline token counting and token-bounded chunking with OpenAI's chunking rules.

Token counts approximate OpenAI's BPE tokenizers (cl100k/o200k) without their vocabularies,
which tiktoken would have to download. Text is cut into pieces and each piece costs:

- a run of letters: 1 token up to 6 letters (common words are single tokens), else 1 per
  started 4 letters (rare and long words split into sub-words);
- a run of digits: 1 per started 3 digits (the tokenizers group at most 3 digits);
- a CJK, kana or hangul character: 1;
- a run of punctuation or symbols: 1 per started 2 characters;
- whitespace: a single space is free (it merges into the next word), any other run costs 1.

It is an estimate, not a tokenizer: English prose and Markdown come out at about 3.5
characters per token where cl100k averages about 4, so counts err high and chunks end up
somewhat under their limit rather than over it. Code, numbers and non-Latin scripts vary
more. Deterministic and offline, which is what chunk sizes and usage figures need.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right

MIN_CHUNK_TOKENS = 100
MAX_CHUNK_TOKENS = 4096

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# Every character falls in exactly one group; run lengths are capped so that no piece costs
# more than 32 tokens, which keeps every chunk at least one piece long. A lone space rides
# along with the token after it (as in the BPE vocabularies), halving the pieces to visit.
_PIECES = re.compile(rf" ?(?:([{_CJK}])|(\d{{1,96}})|([^\W\d_{_CJK}]{{1,128}})|([^\w\s]{{1,64}}|_{{1,64}}))|(\s{{1,64}})")
_CJK_CHAR, _DIGITS, _LETTERS, _PUNCT, _WS = 1, 2, 3, 4, 5
_SENTENCE_END = frozenset(".!?。！？")
_CJK_STOPS = frozenset("。！？")
_CLOSERS = frozenset("\"')]»”’")

_ALIGN_SLACK_TOKENS = 16  # how much overlap we give up to start it at a word

# Boundary kinds, best first: where a chunk would rather end.
_PARAGRAPH, _SENTENCE, _LINE, _WORD = range(4)


def count_tokens(text: str) -> int:
    """Approximate number of OpenAI tokens in text (see the module docstring)."""
    total = 0
    for match in _PIECES.finditer(text):
        kind = match.lastindex
        a, b = match.span()
        n = b - a - (text[a] == " " and kind != _WS)
        if kind == _LETTERS:
            total += 1 if n <= 6 else (n + 3) >> 2
        elif kind == _WS:
            total += n != 1 or text[a] != " "
        elif kind == _DIGITS:
            total += (n + 2) // 3
        elif kind == _PUNCT:
            total += (n + 1) >> 1
        else:
            total += 1
    return total


def validate_chunking(max_chunk_size_tokens: int, chunk_overlap_tokens: int) -> None:
    """Raise ValueError unless the sizes follow OpenAI's static chunking rules."""
    for name, value in (
        ("max_chunk_size_tokens", max_chunk_size_tokens),
        ("chunk_overlap_tokens", chunk_overlap_tokens),
    ):
        if value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not MIN_CHUNK_TOKENS <= max_chunk_size_tokens <= MAX_CHUNK_TOKENS:
        raise ValueError(f"max_chunk_size_tokens must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, got {max_chunk_size_tokens}")
    if not 0 <= chunk_overlap_tokens <= max_chunk_size_tokens // 2:
        raise ValueError(
            "chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens"
            f" ({max_chunk_size_tokens // 2}), got {chunk_overlap_tokens}"
        )


def chunk_text(text: str, max_chunk_size_tokens: int = 800, chunk_overlap_tokens: int = 400) -> list[str]:
    """Split text into chunks of at most max tokens, consecutive chunks sharing up to overlap tokens."""
    validate_chunking(max_chunk_size_tokens, chunk_overlap_tokens)
    starts, cum, breaks = _pieces(text)
    n = len(starts) - 1  # starts[n] == len(text), cum[n] == total tokens
    if cum[n] <= max_chunk_size_tokens:
        stripped = text.strip()
        return [stripped] if stripped else []
    # A chunk may end early at a good boundary, but never so early that the next chunk
    # (starting `overlap` tokens before this end) would fail to move on by half a step.
    min_tokens = chunk_overlap_tokens + (max_chunk_size_tokens - chunk_overlap_tokens) // 2
    chunks: list[str] = []
    begin = 0
    while True:
        end = bisect_right(cum, cum[begin] + max_chunk_size_tokens) - 1  # last piece edge that fits
        if end >= n:
            end = n
        else:
            lowest = bisect_left(cum, cum[begin] + min_tokens)
            end = _best_break(breaks, lowest, end)
        piece = text[starts[begin] : starts[end]].strip()
        if piece:
            chunks.append(piece)
        if end >= n:
            return chunks
        if not chunk_overlap_tokens:
            begin = end
            continue
        nxt = bisect_left(cum, cum[end] - chunk_overlap_tokens, begin + 1, end)
        begin = max(_next_word_start(breaks, nxt, end, cum), begin + 1)


def _next_word_start(breaks: list[array], index: int, end: int, cum: array) -> int:
    """Move an overlap start forward to the next word start if one is near, so it is not mid-word."""
    candidates = []
    for edges in breaks:
        i = bisect_left(edges, index)
        if i < len(edges) and edges[i] < end and cum[edges[i]] <= cum[index] + _ALIGN_SLACK_TOKENS:
            candidates.append(edges[i])
    return min(candidates, default=index)


def _best_break(breaks: list[array], lowest: int, highest: int) -> int:
    """Latest boundary in [lowest, highest] of the best kind present, else highest."""
    for edges in breaks:
        i = bisect_right(edges, highest) - 1
        if i >= 0 and edges[i] >= lowest:
            return edges[i]
    return highest


def _pieces(text: str) -> tuple[array, array, list[array]]:
    """Piece start offsets, cumulative token counts at each start, and boundary indexes by kind.

    Computed once so that chunking is a series of binary searches rather than re-counting.
    """
    starts, cum = array("q"), array("q")
    breaks = [array("q") for _ in range(4)]
    paragraph, sentence, line, word = (edges.append for edges in breaks)
    add_start, add_cum = starts.append, cum.append
    total = index = newlines = 0
    after_space = after_sentence = after_cjk_stop = False
    for match in _PIECES.finditer(text):
        kind = match.lastindex
        a, b = match.span()
        add_start(a)
        add_cum(total)
        if kind == _WS:
            total += b - a != 1 or text[a] != " "
            newlines += text.count("\n", a, b)
            after_space = True
            index += 1
            continue
        n = b - a
        if text[a] == " ":
            after_space = True
            n -= 1
        # Classify the edge before this piece by what precedes it.
        if after_space:
            if newlines >= 2:
                paragraph(index)
            elif after_sentence:
                sentence(index)
            elif newlines:
                line(index)
            else:
                word(index)
            after_space, newlines = False, 0
        elif after_cjk_stop:
            sentence(index)  # CJK sentences end without a following space
        if kind == _LETTERS:
            total += 1 if n <= 6 else (n + 3) >> 2
            after_sentence = after_cjk_stop = False
        elif kind == _PUNCT:
            total += (n + 1) >> 1
            last = text[b - 1]
            if n > 1 and last in _CLOSERS:
                last = text[b - 2]
            after_sentence = last in _SENTENCE_END
            after_cjk_stop = last in _CJK_STOPS
        else:
            total += (n + 2) // 3 if kind == _DIGITS else 1
            after_sentence = after_cjk_stop = False
        index += 1
    add_start(len(text))
    add_cum(total)
    return starts, cum, breaks
