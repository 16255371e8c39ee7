"""File Search benchmarks: query latency over 50,000 chunks (FTS5 only) and ingest throughput."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from itertools import accumulate
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistants.tools.file_search import (
    SCHEMA,
    chunk_text,
    extract_text,
    index_chunks,
    search,
)

SEARCH_CHUNKS = 50_000
# Made-up text over a Zipf-ranked vocabulary: common function words, then invented words.
_FUNCTION_WORD_LIST = """
    the of and to a in is that for it as was with be by on not he this are or his from at
    which but have an they you were her she there been one all we their has would when if
    so no will more what can who its out up into than them only some could these other
"""
_SYLLABLE_LIST = """
    ka ro mi tel an ver sa dun pol re qui lo ster ban ex tor ma ni grav el ca pen lu sor fin
    dra mo ul ti vec ar plen sy ob hal ze cor mun gi pat ra
"""
_FUNCTION_WORDS = _FUNCTION_WORD_LIST.split()
_SYLLABLES = _SYLLABLE_LIST.split()


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    """Function words first, then made-up content words: a Zipf-ranked vocabulary."""
    words: dict[str, None] = dict.fromkeys(_FUNCTION_WORDS)
    while len(words) < size:
        word = "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 2, 3, 3, 4))))
        words.setdefault(word, None)
    return list(words)


class _Prose:
    """Generates English-like text: Zipf word frequencies, sentences, paragraphs."""

    def __init__(self, seed: int, vocabulary_size: int = 30_000) -> None:
        self.rng = random.Random(seed)
        self.vocab = _vocabulary(self.rng, vocabulary_size)
        self.cum_weights = list(accumulate(1.0 / rank for rank in range(1, len(self.vocab) + 1)))
        self.sentences: list[str] = []

    def sentence(self) -> str:
        """8-20 words drawn by Zipf frequency."""
        words = self.rng.choices(self.vocab, cum_weights=self.cum_weights, k=self.rng.randint(8, 20))
        return " ".join(words).capitalize() + "."

    def text(self, n_words: int) -> str:
        """Fresh sentences up to n_words, in paragraphs of 3-7 sentences."""
        return self._paragraphs(n_words, self.sentence)

    def recombined(self, n_words: int) -> str:
        """Like text(), from a reused pool of sentences: word statistics alike, much faster."""
        if not self.sentences:
            self.sentences = [self.sentence() for _ in range(40_000)]
        return self._paragraphs(n_words, lambda: self.rng.choice(self.sentences))

    def _paragraphs(self, n_words: int, make_sentence) -> str:
        out: list[str] = []
        count = in_paragraph = 0
        while count < n_words:
            sentence = make_sentence()
            count += sentence.count(" ") + 1
            out.append(sentence)
            in_paragraph += 1
            if in_paragraph >= self.rng.randint(3, 7):
                out.append("\n\n")
                in_paragraph = 0
            else:
                out.append(" ")
        return "".join(out)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # explicit transactions, like the store
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for statement in SCHEMA:
        conn.execute(statement)
    return conn


def _queries(prose: _Prose, n: int) -> list[str]:
    """Varied queries: 1-4 content words of log-uniform rarity, as keywords, questions or junk syntax."""
    rng = random.Random(7)
    content = prose.vocab[len(_FUNCTION_WORDS) :]
    queries = []
    for i in range(n):
        terms = [content[int(math.exp(rng.uniform(0, math.log(5_000))))] for _ in range(rng.randint(1, 4))]
        if i % 3 == 0:
            queries.append(f"what does the {' '.join(terms)} say about it?")
        elif i % 3 == 1:
            queries.append(" ".join(terms))
        else:
            queries.append(f'"{terms[0]}" AND ({" ".join(terms[1:])}* NEAR/')
    return queries


def bench_query(workdir: Path, quick: bool) -> float:
    """Median milliseconds of search() over 50,000 chunks with FTS5 only."""
    prose = _Prose(seed=1)
    conn = _connect(workdir / "search.db")
    conn.execute("BEGIN IMMEDIATE")
    files = 500
    for f in range(files):
        # ~480 words of this prose count as ~800 tokens: full-size default chunks.
        chunks = [prose.recombined(480) for _ in range(SEARCH_CHUNKS // files)]
        index_chunks(conn, "vs_bench", f"file-{f}", f"doc-{f}.txt", chunks)
    conn.execute("COMMIT")
    queries = _queries(prose, 60 if quick else 300)
    for query in queries[:10]:  # warm the page cache
        search(conn, ["vs_bench"], query)
    timings = []
    for query in queries:
        # Best of three per query, as timeit does: the query's cost without scheduler noise.
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            search(conn, ["vs_bench"], query, max_num_results=20)
            runs.append((time.perf_counter() - start) * 1000)
        timings.append(min(runs))
    conn.close()
    return statistics.median(timings)


def bench_ingest(workdir: Path, quick: bool) -> float:
    """MB/s of extract + chunk + index for plain-text files into a file-backed db, one transaction."""
    prose = _Prose(seed=2)
    files = [prose.text(140_000).encode() for _ in range(2 if quick else 8)]  # ~1 MB each
    conn = _connect(workdir / "ingest.db")
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for i, data in enumerate(files):
        text = extract_text(f"doc-{i}.txt", data)
        index_chunks(conn, "vs_ingest", f"file-{i}", f"doc-{i}.txt", chunk_text(text))
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return sum(map(len, files)) / 1e6 / elapsed


def bench(quick: bool) -> dict:
    """Run both File Search benchmarks and return their numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        return {
            "file_search_query_ms": round(bench_query(workdir, quick), 2),
            "ingest_mb_per_s": round(bench_ingest(workdir, quick), 2),
        }


if __name__ == "__main__":
    print(json.dumps(bench(quick="--quick" in sys.argv[1:])))
