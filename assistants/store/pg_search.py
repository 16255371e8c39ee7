"""File search on PostgreSQL: a tsvector per chunk (GIN), ranked by ts_rank_cd, fused with embeddings like SQLite.

Indexed text is the same as SQLite's (store/search_schema.search_text: NFKC, CJK runs as overlapping pairs of
characters), with diacritics removed as FTS5's `remove_diacritics 2` does, under a configuration that stems like
FTS5's porter tokenizer and keeps stopwords (queries drop them, see chunk_index.query_terms).

Scores (0..1). ts_rank_cd is not BM25: it has no inverse document frequency (a common term weighs as much as a
rare one) and no length normalisation. Each occurrence of a query term in a chunk adds 0.1 to its raw rank, so the
score shown is r / (r + 0.1 * terms): every query term matched once scores 0.5, as with SQLite's BM25 mapping,
one term of three matched once scores 0.25, every term twice about 0.67. `score_threshold` therefore means about the
same on both databases ("the share of the query matched"), but the order of results can differ: SQLite ranks a
chunk holding the rarest term first, PostgreSQL the chunk holding the most occurrences. With a query embedding the
two rankings are fused by reciprocal rank exactly as on SQLite (chunk_index._fuse), so fused scores compare directly.
"""

from __future__ import annotations

import unicodedata

import numpy as np

from assistants.store.chunk_index import (
    SearchResult,
    _embedding_blob,
    _fuse,
    _lone_cjk,
    _size,
    plan_search,
)
from assistants.store.pg_schema import TS_CONFIG
from assistants.store.search_schema import search_text

RANK_PER_HIT = 0.1  # ts_rank_cd's weight of a plain (D-weight) lexeme occurrence


def indexed_text(text: str) -> str:
    """What the tsvector is built from: SQLite's indexed form, then without diacritics (café finds cafe)."""
    return _without_diacritics(search_text(text) or text)


def _without_diacritics(text: str) -> str:
    """Latin letters lose their accents; other scripts keep their marks (で must not become て)."""
    if text.isascii():
        return text
    out, base = [], ""
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) and base < "\u0250":  # a mark on a Latin letter (Latin-1 and Extended-A/B)
            continue
        out.append(ch)
        if not unicodedata.combining(ch):
            base = ch
    return unicodedata.normalize("NFC", "".join(out))


def index_chunks(c, vector_store_id: str, file_id: str, filename: str, chunks: list[str],
                 embeddings: list[list[float]] | None = None) -> int:
    """Store a file's chunks in a store, replacing earlier ones; inside the caller's write."""
    if embeddings is not None and len(embeddings) != len(chunks):
        raise ValueError(f"got {len(embeddings)} embeddings for {len(chunks)} chunks")
    delete_chunks(c, vector_store_id, file_id)
    blobs = [None] * len(chunks) if embeddings is None else [_embedding_blob(e) for e in embeddings]
    # NUL cannot be stored in PostgreSQL text; a parser that leaves one in a chunk must not fail the file.
    rows = [(vector_store_id, file_id, i, filename, _size(text, blob), text.replace("\x00", ""), blob,
             indexed_text(text.replace("\x00", ""))) for i, (text, blob) in enumerate(zip(chunks, blobs, strict=True))]
    with c.cursor() as cur:
        cur.executemany("INSERT INTO fs_chunks (vector_store_id, file_id, chunk_index, filename, bytes, text, "
                        f"embedding, tsv) VALUES (%s, %s, %s, %s, %s, %s, %s, to_tsvector('{TS_CONFIG}', %s))", rows)
    return len(chunks)


def delete_chunks(c, vector_store_id: str, file_id: str | None = None) -> None:
    if file_id is None:
        c.execute("DELETE FROM fs_chunks WHERE vector_store_id = %s", (vector_store_id,))
    else:
        c.execute("DELETE FROM fs_chunks WHERE vector_store_id = %s AND file_id = %s", (vector_store_id, file_id))


def _tsquery(terms: list[str]) -> str:
    # Terms hold only letters and digits (query_terms), so quoting makes each a plain lexeme: no operator typed
    # by a user reaches to_tsquery. A lone CJK character is a prefix of the pairs indexed, as on SQLite.
    return " | ".join(f"'{_without_diacritics(t)}':*" if _lone_cjk(t) else f"'{_without_diacritics(t)}'" for t in terms)


def search(c, vector_store_ids: list[str], query: str, *, max_num_results: int = 20, score_threshold: float = 0.0,
           query_embedding: list[float] | None = None) -> list[SearchResult]:
    """Best chunks of the stores for a query (scores 0..1, see the module docstring)."""
    plan = plan_search(vector_store_ids, query, max_num_results, score_threshold, query_embedding)
    if plan is None:
        return []
    store_ids, terms, vector, wanted, max_num_results = plan
    text_ranked = _text_ranking(c, store_ids, terms, wanted) if terms else []
    dense = _cosine_ranking(c, store_ids, vector, wanted) if vector is not None else []
    if dense:
        scored = _fuse(text_ranked, dense)
    else:
        scale = RANK_PER_HIT * max(len(terms), 1)
        scored = [(chunk_id, raw / (raw + scale)) for chunk_id, raw in text_ranked]
    kept = [(cid, score) for cid, score in scored if score >= score_threshold]
    return _results(c, kept[:max_num_results])


def _text_ranking(c, store_ids: list[str], terms: list[str], limit: int) -> list[tuple[int, float]]:
    """(chunk id, ts_rank_cd) of the best matches for any of the terms, best first (GIN finds the matches)."""
    rows = c.execute(
        f"SELECT id, ts_rank_cd(tsv, q) AS r FROM fs_chunks, to_tsquery('{TS_CONFIG}', %s) AS q "
        "WHERE vector_store_id = ANY(%s) AND tsv @@ q ORDER BY r DESC, id LIMIT %s",
        (_tsquery(terms), store_ids, limit)).fetchall()
    return [(int(chunk_id), float(raw)) for chunk_id, raw in rows]


def _cosine_ranking(c, store_ids: list[str], vector: np.ndarray, limit: int) -> list[tuple[int, float]]:
    """(chunk id, cosine) of the nearest embedded chunks of the stores, best first (numpy, as on SQLite)."""
    rows = c.execute("SELECT id, embedding FROM fs_chunks WHERE vector_store_id = ANY(%s) "
                     "AND octet_length(embedding) = %s", (store_ids, vector.nbytes)).fetchall()
    if not rows:
        return []
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype="<f4")
    similarity = matrix.reshape(len(rows), -1) @ vector
    top = np.argsort(-similarity, kind="stable")[:limit]
    return [(int(ids[i]), float(similarity[i])) for i in top]


def _results(c, scored: list[tuple[int, float]]) -> list[SearchResult]:
    if not scored:
        return []
    rows = {r[0]: r[1:] for r in c.execute(
        "SELECT id, file_id, filename, text, chunk_index, vector_store_id FROM fs_chunks WHERE id = ANY(%s)",
        ([chunk_id for chunk_id, _ in scored],))}
    return [SearchResult(file_id=row[0], filename=row[1], score=round(score, 6), text=row[2], chunk_index=row[3],
                         vector_store_id=row[4])
            for chunk_id, score in scored if (row := rows.get(chunk_id)) is not None]
