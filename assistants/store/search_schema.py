"""The file-search chunk index's schema and the indexed form of text: what migrations need, in the store."""

from __future__ import annotations

import re
import sqlite3
import unicodedata

SCHEMA = [
    # vector_store_id comes first so the search filter reads it without touching the text.
    # fts_text is what FTS5 indexes when it differs from text (CJK split into overlapping
    # pairs of characters, see search_text); NULL otherwise, so English is not stored twice.
    """CREATE TABLE IF NOT EXISTS fs_chunks (
        id INTEGER PRIMARY KEY,
        vector_store_id TEXT NOT NULL,
        file_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        filename TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        text TEXT NOT NULL,
        embedding BLOB,
        fts_text TEXT
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS fs_chunks_store_file
        ON fs_chunks (vector_store_id, file_id, chunk_index)""",
    # What the index holds for each chunk: FTS5 reads it here for 'rebuild' and integrity checks.
    """CREATE VIEW IF NOT EXISTS fs_chunks_fts_source AS
        SELECT id, coalesce(fts_text, text) AS text FROM fs_chunks""",
    # External content: the text is stored once, in fs_chunks; triggers keep the index in step.
    """CREATE VIRTUAL TABLE IF NOT EXISTS fs_chunks_fts USING fts5(
        text, content='fs_chunks_fts_source', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_ai AFTER INSERT ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (rowid, text) VALUES (new.id, coalesce(new.fts_text, new.text));
    END""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_ad AFTER DELETE ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (fs_chunks_fts, rowid, text)
            VALUES ('delete', old.id, coalesce(old.fts_text, old.text));
    END""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_au AFTER UPDATE OF text, fts_text ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (fs_chunks_fts, rowid, text)
            VALUES ('delete', old.id, coalesce(old.fts_text, old.text));
        INSERT INTO fs_chunks_fts (rowid, text) VALUES (new.id, coalesce(new.fts_text, new.text));
    END""",
]

# Scripts written without spaces between words: unicode61 would keep a whole run of them
# (often a whole sentence) as one token, so such runs are indexed as the overlapping pairs
# of characters they hold, the usual way to search CJK without a dictionary (see
# search_text and query_terms). Han (with the iteration marks 々〆〇 and Hangzhou
# numerals), kana (full- and half-width), Hangul and bopomofo letters. Korean does put
# spaces between words, but particles are glued to them (서울은).
_CJK_CHARS = (
    "\u1100-\u11ff\u3005-\u3007\u3021-\u3029\u303b\u3041-\u3096\u309d-\u309f\u30a1-\u30fa"
    "\u30fc-\u30ff\u3105-\u312f\u3131-\u318e\u31a0-\u31bf\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_CJK_RUN = re.compile(f"[{_CJK_CHARS}]+")
_CJK_SPLIT = re.compile(f"([{_CJK_CHARS}]+)")  # split() then puts the CJK runs at odd indexes


def search_text(text: str) -> str | None:
    """What FTS5 should index for a chunk, if not its text: CJK runs as pairs of characters.

    A run becomes its overlapping two-character tokens and then its last character alone
    (東京は日本 gives 東京 京は は日 日本 本), so a query's pair is one token to look up, and
    a single character is a prefix query ("本"*) that finds it wherever it stands: every
    character starts a token. None for text without CJK, which is indexed as it is.
    """
    if text.isascii():  # a quick way out for most English: ASCII is already in NFKC form
        return None
    # NFKC first: pypdf's ligatures (ﬁ), full-width Latin and half-width katakana match their plain forms.
    normal = unicodedata.normalize("NFKC", text)
    indexed = _CJK_RUN.sub(_pairs, normal) if _CJK_RUN.search(normal) else normal
    return None if indexed == text else indexed


def _pairs(run: re.Match) -> str:
    chars = run.group()
    return f" {' '.join(map(str.__add__, chars, chars[1:]))} {chars[-1]} "


def upgrade_schema(conn: sqlite3.Connection) -> bool:
    """Bring a chunk index made before CJK support to SCHEMA, re-indexing every chunk.

    Adds fs_chunks.fts_text, fills it for chunks with CJK text, replaces the FTS5 table
    (now fed from fs_chunks_fts_source) and its triggers, and rebuilds the index from the
    chunks. Creates the schema where there is none. Returns whether an old index was
    upgraded; the caller owns the transaction.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(fs_chunks)")}
    old = bool(columns) and "fts_text" not in columns
    if old:
        for trigger in ("fs_chunks_ai", "fs_chunks_ad", "fs_chunks_au"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        conn.execute("DROP TABLE IF EXISTS fs_chunks_fts")
        conn.execute("ALTER TABLE fs_chunks ADD COLUMN fts_text TEXT")
        _fill_search_text(conn)
    for statement in SCHEMA:
        conn.execute(statement)
    if old:
        conn.execute("INSERT INTO fs_chunks_fts (fs_chunks_fts) VALUES ('rebuild')")
    return old


def renormalize(conn: sqlite3.Connection) -> None:
    """Re-derive every chunk's indexed text (after search_text changed) and rebuild the FTS5 index."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'fs_chunks'").fetchone() is None:
        return
    _fill_search_text(conn)
    conn.execute("INSERT INTO fs_chunks_fts (fs_chunks_fts) VALUES ('rebuild')")


def _fill_search_text(conn: sqlite3.Connection) -> None:
    """fts_text for every chunk, in batches (text without anything to change keeps NULL)."""
    last = -1
    while rows := conn.execute("SELECT id, text FROM fs_chunks WHERE id > ? ORDER BY id LIMIT 1000", (last,)).fetchall():
        last = rows[-1][0]
        conn.executemany("UPDATE fs_chunks SET fts_text = ? WHERE id = ?",
                         ((search_text(text), chunk_id) for chunk_id, text in rows if not text.isascii()))
