"""The SQLite chunk index behind Store: FTS5 (BM25) plus optional embeddings, fused by RRF.

A PostgreSQL store brings its own (tsvector, pgvector) behind the same Store methods.
"""

from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# The schema and the indexed form of text are what the migrations create and re-index.
from assistants.store.search_schema import _CJK_RUN, _CJK_SPLIT, search_text
from assistants.store.search_schema import SCHEMA as SCHEMA
from assistants.store.search_schema import renormalize as renormalize
from assistants.store.search_schema import upgrade_schema as upgrade_schema

RRF_K = 60
MAX_RESULTS = 50
MAX_QUERY_TERMS = 32
FUSION_CANDIDATES = 100  # chunks each ranking brings to the fusion
# A BM25 score b is shown as b / (b + 0.5 * terms * idf_max), idf_max being the idf of a
# term found in one chunk: matching every query term once, each half as rare as it could
# be, scores 0.5. Tying the scale to idf_max keeps scores comparable between a store of a
# few chunks and one of thousands, since FTS5's idf grows with the number of chunks.
BM25_HALF_SCORE_IDF = 0.5
# FTS5 spends about a microsecond per matching chunk on BM25, so a query whose terms
# match more than this many chunks in all is planned rather than run as one big OR.
PLAIN_QUERY_ROWS = 5_000
# Terms in more than this share of all chunks are "common" (idf below ~2.2): as in
# Elasticsearch's common-terms query they only add to the score of chunks that a rarer
# term matched, instead of each dragging tens of thousands of chunks into the ranking.
COMMON_TERM_SHARE = 0.1

# Words that match most chunks: they cost time and say little, so queries drop them unless
# nothing else is left.
_STOPWORD_LIST = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves
"""
_STOPWORDS = frozenset(_STOPWORD_LIST.split())
_TERM = re.compile(r"[^\W_]+")  # the characters FTS5's unicode61 tokenizer keeps
@dataclass
class SearchResult:
    """One retrieved chunk with its normalised relevance (0..1, higher is better)."""

    file_id: str
    filename: str
    score: float
    text: str
    chunk_index: int
    vector_store_id: str


def index_chunks(
    conn: sqlite3.Connection,
    vector_store_id: str,
    file_id: str,
    filename: str,
    chunks: list[str],
    embeddings: list[list[float]] | None = None,
) -> int:
    """Store a file's chunks in a store, replacing earlier ones; the caller commits."""
    if embeddings is not None and len(embeddings) != len(chunks):
        raise ValueError(f"got {len(embeddings)} embeddings for {len(chunks)} chunks")
    delete_chunks(conn, vector_store_id, file_id)
    blobs = [None] * len(chunks) if embeddings is None else [_embedding_blob(e) for e in embeddings]
    conn.executemany(
        "INSERT INTO fs_chunks (vector_store_id, file_id, chunk_index, filename, bytes, text, embedding, fts_text)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (vector_store_id, file_id, i, filename, _size(text, blob), text, blob, search_text(text))
            for i, (text, blob) in enumerate(zip(chunks, blobs, strict=True))
        ),
    )
    return len(chunks)


def delete_chunks(conn: sqlite3.Connection, vector_store_id: str, file_id: str | None = None) -> None:
    """Remove a file's chunks from a store, or all the store's chunks if file_id is None."""
    if file_id is None:
        conn.execute("DELETE FROM fs_chunks WHERE vector_store_id = ?", (vector_store_id,))
    else:
        conn.execute(
            "DELETE FROM fs_chunks WHERE vector_store_id = ? AND file_id = ?",
            (vector_store_id, file_id),
        )


def usage_bytes(conn: sqlite3.Connection, vector_store_id: str) -> int:
    """Bytes of chunk text (UTF-8) and embeddings stored for a vector store."""
    row = conn.execute(
        "SELECT SUM(bytes) FROM fs_chunks WHERE vector_store_id = ?",
        (vector_store_id,),
    ).fetchone()
    return int(row[0] or 0)


def query_terms(query: str) -> list[str]:
    """Distinct lower-case terms of free text; stopwords go unless nothing else is left.

    A run of CJK characters becomes its overlapping pairs ("東京都" gives 東京 and 京都), as
    indexed: written without spaces, a query is often a whole sentence, and BM25 ranks
    first the chunks holding most of its pairs, the rarest above all. A lone character is
    a term of its own, dropped like a stopword unless nothing else is left.
    """
    terms: list[str] = []
    for word in _TERM.findall(unicodedata.normalize("NFKC", query).lower()):
        if _CJK_RUN.search(word) is None:
            terms.append(word)
            continue
        for i, part in enumerate(_CJK_SPLIT.split(word)):
            if i % 2 == 0 or len(part) == 1:  # letters or digits next to the run, or a lone character
                terms.extend([part] if part else [])
            else:
                terms.extend(map(str.__add__, part, part[1:]))
    terms = list(dict.fromkeys(terms))
    meaningful = [term for term in terms if term not in _STOPWORDS and not _lone_cjk(term)]
    return (meaningful or terms)[:MAX_QUERY_TERMS]


def _lone_cjk(term: str) -> bool:
    # A lone CJK character is mostly a particle or a very common word (の, 的, 년): like a
    # stopword it is searched only when nothing else is left. It is also the costly kind of
    # term, a prefix query over every pair it starts.
    return len(term) == 1 and _CJK_RUN.match(term) is not None


class SearchPlan(NamedTuple):
    """What a search asks for, checked: the stores, the query terms, the unit query vector, how many to rank."""

    store_ids: list[str]
    terms: list[str]
    vector: np.ndarray | None
    wanted: int  # candidates each ranking returns (more than max_num_results when the two are fused)
    max_num_results: int


def plan_search(vector_store_ids: list[str], query: str, max_num_results: float, score_threshold: float,
                query_embedding: list[float] | None) -> SearchPlan | None:
    """The checked arguments of a search (SQLite's and PostgreSQL's alike); None if there is nothing to search.

    Raises ValueError for a max_num_results or score_threshold out of range.
    """
    if max_num_results != int(max_num_results) or not 1 <= max_num_results <= MAX_RESULTS:
        raise ValueError(f"max_num_results must be between 1 and {MAX_RESULTS}, got {max_num_results}")
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must be between 0 and 1, got {score_threshold}")
    max_num_results = int(max_num_results)
    store_ids = list(dict.fromkeys(vector_store_ids))
    if not store_ids or not query.strip():
        return None
    vector = _unit_vector(query_embedding)
    wanted = max(max_num_results, FUSION_CANDIDATES) if vector is not None else max_num_results
    return SearchPlan(store_ids, query_terms(query), vector, wanted, max_num_results)


def search(
    conn: sqlite3.Connection,
    vector_store_ids: list[str],
    query: str,
    *,
    max_num_results: int = 20,
    score_threshold: float = 0.0,
    query_embedding: list[float] | None = None,
) -> list[SearchResult]:
    """Best chunks of the stores for a query: BM25, fused with cosine ranking if embedded.

    Scores are 0..1. BM25 alone: b / (b + terms * idf_max / 2) for b = -bm25, so 0.5
    means about every query term matched once at half the weight of the rarest possible
    term. Fused: the reciprocal-rank-fusion score over its maximum, so 1.0 means ranked
    first by both rankings, and a chunk only one ranking found scores 0.5 at most.
    """
    plan = plan_search(vector_store_ids, query, max_num_results, score_threshold, query_embedding)
    if plan is None:
        return []
    store_ids, terms, vector, wanted, max_num_results = plan
    (chunks,) = conn.execute("SELECT count(*) FROM fs_chunks").fetchone()
    bm25 = _bm25_ranking(conn, store_ids, terms, wanted, chunks) if terms else []
    dense = _cosine_ranking(conn, store_ids, vector, wanted) if vector is not None else []
    if dense:
        scored = _fuse(bm25, dense)
    else:  # no query vector, or no chunk embedded in the same space
        scale = BM25_HALF_SCORE_IDF * max(len(terms), 1) * _max_idf(chunks)
        scored = [(chunk_id, raw / (raw + scale)) for chunk_id, raw in bm25]
    kept = [(cid, score) for cid, score in scored if score >= score_threshold]
    return _results(conn, kept[:max_num_results])


def _bm25_ranking(
    conn: sqlite3.Connection,
    store_ids: list[str],
    terms: list[str],
    limit: int,
    chunks: int,
) -> list[tuple[int, float]]:
    """(chunk id, -bm25) of the best matches for any of the terms, best first."""
    if len(terms) == 1:
        return _ranked(conn, store_ids, _any(terms), limit)
    found = {term: _chunks_with(conn, term) for term in terms}
    terms = [term for term in terms if found[term]]
    if sum(found.values()) <= PLAIN_QUERY_ROWS or len(terms) < 2:
        return _ranked(conn, store_ids, _any(terms), limit) if terms else []
    rare = [term for term in terms if found[term] <= COMMON_TERM_SHARE * chunks]
    common = [term for term in terms if term not in rare]
    if not common:
        return _ranked(conn, store_ids, _any(rare), limit)
    if rare:
        # Exact top `limit` among chunks holding a rare term: a chunk without common terms
        # keeps its rare-only score, one with both is scored on all terms by the AND query.
        scores = dict(_ranked(conn, store_ids, _any(rare), limit))
        both = f"({_any(rare)}) AND ({_any(common)})"
        scores.update(_ranked(conn, store_ids, both, limit))
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    # Only common terms: chunks holding all of them first, if there are enough.
    every = _ranked(conn, store_ids, " AND ".join(map(_quoted, terms)), limit)
    return every if len(every) >= limit else _ranked(conn, store_ids, _any(terms), limit)


def _quoted(term: str) -> str:
    # Terms hold only letters and digits, so quoting makes each a plain string: operators,
    # column filters and prefix stars in the user's text never reach FTS5's parser. A lone
    # CJK character is looked up as the start of the pairs indexed (see search_text).
    return f'"{term}"*' if _lone_cjk(term) else f'"{term}"'


def _any(terms: list[str]) -> str:
    return " OR ".join(map(_quoted, terms))


def _chunks_with(conn: sqlite3.Connection, term: str) -> int:
    """Number of chunks (of all stores, as FTS5's idf counts them) containing a term."""
    rows = _fts(conn, "SELECT count(*) FROM fs_chunks_fts WHERE fs_chunks_fts MATCH ?", (_quoted(term),))
    return rows[0][0] if rows else 0


def _ranked(conn: sqlite3.Connection, store_ids: list[str], match: str, limit: int) -> list[tuple[int, float]]:
    """(chunk id, -bm25) of the best chunks of the stores for an FTS5 expression."""
    marks = ",".join("?" * len(store_ids))
    rows = _fts(
        conn,
        "SELECT f.rowid, -f.rank FROM fs_chunks_fts AS f"
        " JOIN fs_chunks AS c ON c.id = f.rowid"
        f" WHERE f.fs_chunks_fts MATCH ? AND c.vector_store_id IN ({marks})"
        " ORDER BY f.rank, f.rowid LIMIT ?",
        (match, *store_ids, limit),
    )
    return [(chunk_id, max(raw, 0.0)) for chunk_id, raw in rows]


def _fts(conn: sqlite3.Connection, sql: str, params: tuple) -> list[tuple]:
    """Run an FTS5 query; a malformed expression yields no rows instead of an error."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        # Quoting already rules malformed expressions out; this is the last line of
        # defence so that a user's query can never turn into a failed run.
        if "fts5" in str(exc).lower():
            return []
        raise


def _fuse(*rankings: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Reciprocal rank fusion, divided by its maximum so that scores stay in 0..1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
    best = len(rankings) / (RRF_K + 1)
    return sorted(
        ((chunk_id, value / best) for chunk_id, value in fused.items()),
        key=lambda item: (-item[1], item[0]),
    )


def _max_idf(chunks: int) -> float:
    """FTS5's BM25 idf of a term found in a single chunk out of all chunks."""
    return max(math.log((chunks - 0.5) / 1.5), 1e-6) if chunks else 1e-6  # FTS5 clamps too


def _cosine_ranking(conn: sqlite3.Connection, store_ids: list[str], vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the nearest embedded chunks of the stores, best first."""
    marks = ",".join("?" * len(store_ids))
    # Only vectors of the query's size: a store embedded with another model is skipped.
    rows = conn.execute(
        f"SELECT id, embedding FROM fs_chunks WHERE vector_store_id IN ({marks}) AND length(embedding) = ?",
        (*store_ids, vector.nbytes),
    ).fetchall()
    if not rows:
        return []
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4")
    similarity = matrix.reshape(len(rows), -1) @ vector  # unit vectors: dot is cosine
    top = np.argsort(-similarity, kind="stable")[:limit]
    return [(int(ids[i]), float(similarity[i])) for i in top]


def _results(conn: sqlite3.Connection, scored: list[tuple[int, float]]) -> list[SearchResult]:
    """Load the chunks for scored ids, keeping the given order."""
    if not scored:
        return []
    marks = ",".join("?" * len(scored))
    rows = {
        row[0]: row[1:]
        for row in conn.execute(
            f"SELECT id, file_id, filename, text, chunk_index, vector_store_id FROM fs_chunks WHERE id IN ({marks})",
            [chunk_id for chunk_id, _ in scored],
        )
    }
    return [
        SearchResult(
            file_id=row[0],
            filename=row[1],
            score=round(score, 6),
            text=row[2],
            chunk_index=row[3],
            vector_store_id=row[4],
        )
        for chunk_id, score in scored
        if (row := rows.get(chunk_id)) is not None
    ]


def _unit_vector(values: list[float] | None) -> np.ndarray | None:
    """The query embedding scaled to unit length as float32; None if absent or all zeros."""
    if values is None or len(values) == 0:
        return None
    vector = np.asarray(values, dtype="<f4").ravel()
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return vector / np.float32(norm)


def _size(text: str, blob: bytes | None) -> int:
    return len(text.encode()) + (len(blob) if blob else 0)


def _embedding_blob(values: list[float]) -> bytes | None:
    """A chunk embedding as unit-length little-endian float32 bytes (None if unusable)."""
    vector = _unit_vector(values)
    return None if vector is None else vector.astype("<f4").tobytes()
