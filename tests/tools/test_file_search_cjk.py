"""File Search in Chinese, Japanese and Korean, and the upgrade of indexes made before it worked."""

from __future__ import annotations

import sqlite3

import pytest

import assistants.store.search_schema as search_schema
from assistants.store import Store
from assistants.store.migrations import MIGRATIONS, applied_version, migrate
from assistants.tools.file_search.index import (
    SCHEMA,
    delete_chunks,
    index_chunks,
    query_terms,
    renormalize,
    search,
    search_text,
    upgrade_schema,
)

SQLITE_INDEX = pytest.mark.sqlite_only(reason="the SQLite FTS5 index's own tables and upgrades")

JAPANESE = "東京は日本の首都です。人口は約千四百万人で、東京都庁は新宿にあります。"
CHINESE = "北京是中国的首都，也是全国的政治和文化中心。"
KOREAN = "서울은 한국의 수도입니다. 한강이 도시를 가로지릅니다."
MIXED = "新款iPhone的价格很高，但是销量仍然很好。"
ENGLISH = "Tokyo is the capital of Japan; its metropolitan government sits in Shinjuku."


def add_cjk_files(store) -> None:
    for file_id, text in (("ja", JAPANESE), ("zh", CHINESE), ("ko", KOREAN), ("mixed", MIXED), ("en", ENGLISH)):
        store.index_chunks("vs_a", file_id, f"{file_id}.txt", [text])


def found(store, query: str, **kwargs) -> list[str]:
    return [r.file_id for r in store.search_chunks(["vs_a"], query, **kwargs)]


def check_index(conn) -> None:
    """FTS5's full check, comparing the index with what fs_chunks_fts_source says it should hold."""
    conn.execute("INSERT INTO fs_chunks_fts (fs_chunks_fts, rank) VALUES ('integrity-check', 1)")


def test_a_cjk_word_is_found_inside_a_run_of_characters(store):
    add_cjk_files(store)
    assert found(store, "東京") == ["ja"]  # unicode61 alone keeps 東京は日本の首都です as one token
    assert found(store, "新宿") == ["ja"]
    assert sorted(found(store, "首都")) == ["ja", "zh"]
    assert found(store, "政治") == ["zh"]
    assert found(store, "서울") == ["ko"]  # Korean particles are glued to the word: 서울은
    assert found(store, "한강") == ["ko"]
    assert found(store, "价格") == ["mixed"]
    assert found(store, "iPhone") == ["mixed"]
    assert found(store, "猫") == []
    assert found(store, "京東") == []  # the characters must stand together, in order
    assert found(store, "Tokyo") == ["en"]
    hit = store.search_chunks(["vs_a"], "東京")[0]
    assert hit.text == JAPANESE and 0.0 < hit.score <= 1.0  # results carry the text as written


def test_a_sentence_query_ranks_the_chunk_sharing_most_of_it_first(store):
    add_cjk_files(store)
    assert found(store, "中国的首都是哪里？")[0] == "zh"
    assert found(store, "日本の首都はどこですか")[0] == "ja"
    assert found(store, "한국의 수도는?")[0] == "ko"
    assert found(store, "iPhone价格")[0] == "mixed"


def test_a_single_character_is_found_wherever_it_stands(store):
    chunks = ["猫が好き", "我喜欢猫。", "猫", "The 2024年 report", "大熊猫和小猫", "狗"]
    store.index_chunks("vs_a", "cats", "cats.txt", chunks)
    assert sorted(r.chunk_index for r in store.search_chunks(["vs_a"], "猫")) == [0, 1, 2, 4]  # first, last, alone, inside
    assert [r.chunk_index for r in store.search_chunks(["vs_a"], "年")] == [3]
    assert [r.chunk_index for r in store.search_chunks(["vs_a"], "2024")] == [3]
    assert [r.chunk_index for r in store.search_chunks(["vs_a"], "熊猫")] == [4]
    assert store.search_chunks(["vs_a"], "鳥") == []


@pytest.mark.no_database
def test_query_terms_split_cjk_runs_into_overlapping_pairs():
    assert query_terms("東京") == ["東京"]
    assert query_terms("東京都") == ["東京", "京都"]
    assert query_terms("猫") == ["猫"]
    assert query_terms("iPhone的价格 2024年") == ["iphone", "的价", "价格", "2024"]
    assert query_terms("東京 の 人口") == ["東京", "人口"]  # lone characters go, as stopwords do
    assert query_terms("の は") == ["の", "は"]  # unless nothing else is left
    assert query_terms("what is the refund policy") == ["refund", "policy"]  # English as before
    assert len(query_terms("".join(chr(0x4E00 + i) for i in range(40)))) == 32  # 39 pairs, capped


def test_ligatures_full_width_and_half_width_forms_match_their_plain_forms(store):
    store.index_chunks("vs_a", "pdf", "report.pdf", ["The ﬁnance team's ﬂoor plan"])  # pypdf keeps ligatures
    store.index_chunks("vs_a", "wide", "wide.txt", ["Ｔｏｋｙｏ ２０２４ ｶﾀｶﾅ"])
    assert found(store, "finance") == ["pdf"] and found(store, "floor") == ["pdf"]
    assert found(store, "tokyo 2024") == ["wide"] and found(store, "カタカナ") == ["wide"]
    assert found(store, "ｶﾀｶﾅ") == ["wide"] and found(store, "Ｆｉｎａｎｃｅ") == ["pdf"]  # queries are normalised too
    assert store.search_chunks(["vs_a"], "finance")[0].text == "The ﬁnance team's ﬂoor plan"  # shown as written


@SQLITE_INDEX
def test_renormalizing_an_index_made_before_nfkc(store):
    conn = store.conn()
    index_chunks(conn, "vs_a", "pdf", "report.pdf", ["The ﬁnance team"])
    conn.execute("UPDATE fs_chunks SET fts_text = NULL")  # as indexed before migration 6
    conn.execute("INSERT INTO fs_chunks_fts (fs_chunks_fts) VALUES ('rebuild')")
    assert found(store, "finance") == []
    renormalize(conn)
    assert found(store, "finance") == ["pdf"]
    check_index(conn)


@SQLITE_INDEX
def test_only_cjk_text_is_stored_a_second_time(store):
    conn = store.conn()
    assert search_text(ENGLISH) is None and search_text("Café naïve") is None
    assert search_text("東京は Tokyo, 猫") == " 東京 京は は  Tokyo,   猫 "
    add_cjk_files(store)
    rows = dict(conn.execute("SELECT file_id, fts_text FROM fs_chunks").fetchall())
    assert rows["en"] is None and rows["ja"].startswith(" 東京 京は は日 日本 本の の首 首都 都で です す 。")
    assert all(rows[f] is not None for f in ("ja", "zh", "ko", "mixed"))
    texts = dict(conn.execute("SELECT file_id, text FROM fs_chunks").fetchall())
    assert texts["ja"] == JAPANESE  # what results and usage_bytes show is untouched


@pytest.mark.parametrize("query", ['"東京', "東京*", "東京 AND (", "NEAR(東京", "text:東京", "東京\x00", "「東京」"])
def test_fts_syntax_around_cjk_never_raises(store, query):
    add_cjk_files(store)
    assert found(store, query)[0] == "ja"


@SQLITE_INDEX
def test_deleting_and_reindexing_cjk_chunks_keeps_the_index_consistent(store):
    conn = store.conn()
    add_cjk_files(store)
    check_index(conn)
    index_chunks(conn, "vs_a", "ja", "ja.txt", ["大阪は関西の中心です。"])  # replaces the Tokyo chunk
    assert found(store, "東京") == [] and found(store, "大阪") == ["ja"]
    conn.execute("UPDATE fs_chunks SET text = ?, fts_text = ? WHERE file_id = 'zh'", ("上海", search_text("上海")))
    assert found(store, "上海") == ["zh"] and found(store, "北京") == []
    delete_chunks(conn, "vs_a", "ko")
    assert found(store, "서울") == []
    check_index(conn)
    delete_chunks(conn, "vs_a")
    check_index(conn)
    assert conn.execute("SELECT count(*) FROM fs_chunks_fts WHERE fs_chunks_fts MATCH '大'").fetchone() == (0,)


# -- upgrading an index made before CJK support ------------------------------------------------
# The file-search schema as migration 3 created it until migration 5 (copied, not imported:
# it is history).
OLD_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS fs_chunks (
        id INTEGER PRIMARY KEY,
        vector_store_id TEXT NOT NULL,
        file_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        filename TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        text TEXT NOT NULL,
        embedding BLOB
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS fs_chunks_store_file
        ON fs_chunks (vector_store_id, file_id, chunk_index)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS fs_chunks_fts USING fts5(
        text, content='fs_chunks', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_ai AFTER INSERT ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (rowid, text) VALUES (new.id, new.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_ad AFTER DELETE ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (fs_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END""",
    """CREATE TRIGGER IF NOT EXISTS fs_chunks_au AFTER UPDATE OF text ON fs_chunks BEGIN
        INSERT INTO fs_chunks_fts (fs_chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO fs_chunks_fts (rowid, text) VALUES (new.id, new.text);
    END""",
]

CHUNKS = [
    ("vs_a", "ja", ["東京は日本の首都です。", "富士山は日本で一番高い山です。"]),
    ("vs_a", "en", ["Our refund policy: damaged items can be returned within 30 days.", "Refunds go to the original card."]),
    ("vs_a", "zh", [CHINESE]),
    ("vs_b", "ko", [KOREAN]),
    ("vs_b", "en2", ["Shipping takes five business days within the country."]),
    # Enough chunks for the upgrade to work through them in several batches.
    ("vs_b", "many", [f"資料 {i}: 東西南北の{chr(0x4E00 + i)}{chr(0x4E01 + i)}" for i in range(2500)]),
]
QUERIES = ["東京", "日本の山", "首都", "서울", "refunding policy", "damaged items", "shipping days", "Tokyo"]


def old_index_chunks(conn, chunks: list[tuple[str, str, list[str]]]) -> None:
    """Chunks stored as the old index_chunks stored them (there was no fts_text)."""
    for store_id, file_id, texts in chunks:
        conn.executemany(
            "INSERT INTO fs_chunks (vector_store_id, file_id, chunk_index, filename, bytes, text, embedding) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(store_id, file_id, i, f"{file_id}.txt", len(t.encode()), t, None) for i, t in enumerate(texts)],
        )


def old_database(path, monkeypatch) -> None:
    """A store database as the previous release left it: migrations 1-4, m003 with OLD_SCHEMA, chunks indexed."""
    conn = sqlite3.connect(path, isolation_level=None)
    with monkeypatch.context() as patch:
        patch.setattr(search_schema, "SCHEMA", OLD_SCHEMA)  # what m003 read then
        assert migrate(conn, upto=4) == 4
    assert "fts_text" not in {row[1] for row in conn.execute("PRAGMA table_info(fs_chunks)")}
    conn.execute("BEGIN")
    old_index_chunks(conn, CHUNKS)
    conn.execute("COMMIT")
    assert search(conn, ["vs_a"], "東京") == []  # the weakness the upgrade fixes
    assert search(conn, ["vs_a"], "refund")[0].file_id == "en"
    conn.close()


def results(conn) -> dict[str, list[tuple]]:
    return {
        query: [(r.vector_store_id, r.file_id, r.chunk_index, r.score, r.text) for r in search(conn, ["vs_a", "vs_b"], query)]
        for query in QUERIES
    }


@SQLITE_INDEX
def test_migrating_an_old_database_reindexes_its_chunks(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    old_database(path, monkeypatch)
    before = sqlite3.connect(path).execute("SELECT id, vector_store_id, file_id, chunk_index, bytes, text FROM fs_chunks").fetchall()

    store = Store(path)  # opening the store applies the pending migrations
    conn = store.conn()
    assert applied_version(conn) == len(MIGRATIONS)
    names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]
    assert names[4:6] == ["m005_search_index_cjk", "m006_search_index_nfkc"]
    assert conn.execute("SELECT id, vector_store_id, file_id, chunk_index, bytes, text FROM fs_chunks").fetchall() == before
    check_index(conn)

    assert [r.file_id for r in search(conn, ["vs_a"], "東京")] == ["ja"]
    assert [r.file_id for r in search(conn, ["vs_b"], "서울")] == ["ko"]
    assert sorted(r.file_id for r in search(conn, ["vs_a", "vs_b"], "首都")) == ["ja", "zh"]
    assert search(conn, ["vs_a"], "refunding")[0].file_id == "en"  # stemming still there
    (late,) = search(conn, ["vs_b"], chr(0x4E00 + 2400) + chr(0x4E01 + 2400))
    assert (late.file_id, late.chunk_index) == ("many", 2400)

    # The same chunks indexed afresh give exactly the same results, scores included.
    fresh = sqlite3.connect(":memory:")
    for statement in SCHEMA:
        fresh.execute(statement)
    for store_id, file_id, texts in CHUNKS:
        index_chunks(fresh, store_id, file_id, f"{file_id}.txt", texts)
    assert results(conn) == results(fresh)

    # New writes go through the new triggers and keep the index consistent.
    with store.write() as c:
        index_chunks(c, "vs_a", "ja", "ja.txt", ["大阪は関西の中心です。"])
        delete_chunks(c, "vs_a", "zh")
    assert [r.file_id for r in search(conn, ["vs_a"], "大阪")] == ["ja"]
    assert search(conn, ["vs_a"], "東京") == [] and search(conn, ["vs_a"], "北京") == []
    check_index(conn)
    with store.write() as c:
        assert upgrade_schema(c) is False  # already current: nothing to do
    store.close()


@SQLITE_INDEX
def test_a_new_database_gets_the_current_schema_and_the_upgrade_does_nothing(tmp_path):
    store = Store(tmp_path / "new.db")
    conn = store.conn()
    assert applied_version(conn) == len(MIGRATIONS)
    assert "fts_text" in {row[1] for row in conn.execute("PRAGMA table_info(fs_chunks)")}
    fts_sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'fs_chunks_fts'").fetchone()[0]
    assert "fs_chunks_fts_source" in fts_sql
    with store.write() as c:
        index_chunks(c, "vs_a", "ja", "ja.txt", [JAPANESE])
        assert upgrade_schema(c) is False
    assert [r.file_id for r in search(conn, ["vs_a"], "東京")] == ["ja"]
    check_index(conn)
    store.close()


@SQLITE_INDEX
def test_upgrading_an_empty_old_index_and_a_database_without_one(tmp_path, monkeypatch):
    conn = sqlite3.connect(tmp_path / "empty.db", isolation_level=None)
    for statement in OLD_SCHEMA:
        conn.execute(statement)
    assert upgrade_schema(conn) is True
    assert upgrade_schema(conn) is False
    check_index(conn)
    bare = sqlite3.connect(":memory:")
    assert upgrade_schema(bare) is False  # no index at all: created as it is now
    index_chunks(bare, "vs_a", "ja", "ja.txt", [JAPANESE])
    assert [r.file_id for r in search(bare, ["vs_a"], "首都")] == ["ja"]


@SQLITE_INDEX
def test_english_results_are_the_same_before_and_after_the_upgrade():
    conn = sqlite3.connect(":memory:")
    for statement in OLD_SCHEMA:
        conn.execute(statement)
    english = [(s, f, texts) for s, f, texts in CHUNKS if f.startswith("en")]
    english.append(
        ("vs_a", "notes", [f"Note {i}: the refund desk moved to floor {i % 7}; shipping labels print there." for i in range(200)])
    )
    old_index_chunks(conn, english)
    queries = ["refund policy", "refunds to the card", "shipping days", "floor 3 shipping labels", "damaged", "the"]

    def everything():
        return [[(r.file_id, r.chunk_index, r.score) for r in search(conn, ["vs_a", "vs_b"], q, max_num_results=50)] for q in queries]

    before = everything()
    assert all(before)
    assert upgrade_schema(conn) is True
    assert everything() == before  # scores included
    assert conn.execute("SELECT count(*) FROM fs_chunks WHERE fts_text IS NOT NULL").fetchone() == (0,)
