"""File Search pieces: parsers, token chunking and the index (SQLite's FTS5, PostgreSQL's tsvector) + embeddings."""

from __future__ import annotations

import io
import itertools
import json
import re
import sqlite3
import zipfile

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from assistants.store import chunk_index as fs_index
from assistants.tools.file_search.chunk import chunk_text, count_tokens, validate_chunking
from assistants.tools.file_search.index import SCHEMA, index_chunks, search
from assistants.tools.file_search.parse import ParseError, extract_text

pytestmark = pytest.mark.no_database  # parsers and chunking; the index tests are marked BOTH or SQLITE_INDEX
SQLITE_INDEX = pytest.mark.sqlite_only(reason="the SQLite FTS5 index on a raw connection: its transactions, schema "
                                              "and query planning")
BOTH = pytest.mark.both_databases  # the index through the store: on SQLite and on PostgreSQL


# -- builders ----------------------------------------------------------------------------------
def make_pdf(lines: list[str]) -> bytes:
    """A minimal valid one-page PDF whose content stream shows the lines in Helvetica."""
    shown = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    content = f"BT /F1 12 Tf 72 720 Td {shown} ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def encrypt_pdf(data: bytes, user_password: str, owner_password: str) -> bytes:
    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(data)).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew in the northern region.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "Revenue"
    table.cell(1, 0).text = "North"
    table.cell(1, 1).text = "42"
    document.add_paragraph("Closing remarks after the table.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def add_to_zip(data: bytes, name: str, payload: bytes) -> bytes:
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, payload)
    return out.getvalue()


# -- parsers -----------------------------------------------------------------------------------
def test_plain_text_markdown_and_code_keep_their_text():
    assert extract_text("notes.txt", b"hello\r\nworld\r\n") == "hello\nworld\n"
    assert "# Title" in extract_text("README.md", b"# Title\n\nSome *markdown*.")
    code = b"def add(a, b):\n    return a + b\n"
    assert extract_text("src/add.py", code) == code.decode()
    assert "fn main" in extract_text("main.rs", b"fn main() {}\n")


def test_text_without_a_known_extension_is_accepted():
    assert extract_text("Makefile", b"all:\n\techo hi\n").startswith("all:")
    assert extract_text("notes.unknownext", b"just some words") == "just some words"


def test_utf8_with_bom_loses_the_bom():
    assert extract_text("a.txt", "café".encode("utf-8-sig")) == "café"


def test_cp1252_text_is_decoded():
    original = "Café – naïve “quotes” cost 5€"
    assert extract_text("legacy.txt", original.encode("cp1252")) == original


def test_utf16_with_and_without_bom_is_decoded():
    original = "Grüße aus Köln\nzweite Zeile"
    assert extract_text("wide.txt", original.encode("utf-16")) == original
    assert extract_text("wide.txt", original.encode("utf-16-le")) == original
    assert extract_text("wide.txt", original.encode("utf-16-be")) == original


def test_utf8_with_a_stray_byte_stays_utf8():
    data = "naïve café résumé ".encode() * 10 + b"\xff end"
    assert extract_text("mostly.txt", data) == "naïve café résumé " * 10 + "\ufffd end"


def test_bytes_undefined_in_cp1252_fall_back_to_latin1():
    assert extract_text("odd.txt", b"abc \x81 def") == "abc \x81 def"


def test_empty_and_whitespace_files_are_refused():
    for data in (b"", b"   \n\t  \r\n"):
        with pytest.raises(ParseError, match="empty file"):
            extract_text("empty.txt", data)
    with pytest.raises(ParseError, match="empty file"):
        extract_text("bom.txt", "   ".encode("utf-16"))


def test_binary_content_is_refused_with_a_reason():
    binary = bytes(range(256)) * 40
    with pytest.raises(ParseError, match=r"unsupported file type \.exe \(binary\)"):
        extract_text("setup.exe", binary)
    with pytest.raises(ParseError, match=r"unsupported file type \(no extension\) \(binary\)"):
        extract_text("blob", binary)
    with pytest.raises(ParseError, match="binary"):
        extract_text("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    with pytest.raises(ParseError, match=r"looks binary.*\.txt"):
        extract_text("renamed.txt", binary)


def test_mostly_control_characters_count_as_binary():
    with pytest.raises(ParseError, match="binary"):
        extract_text("weird.dat", b"\x01\x02\x03\x04\x05abc\x06\x07\x08" * 100)


def test_html_keeps_only_visible_text():
    html = b"""<!doctype html><html><head><title>Shop FAQ</title>
    <style>body { color: red }</style><script>var secret = "do not index";</script></head>
    <body><h1>Returns</h1><p>Items can be returned within&nbsp;30 days &amp; refunded.</p>
    <!-- hidden comment --><noscript>enable js</noscript><ul><li>One</li><li>Two</li></ul></body></html>"""
    text = extract_text("faq.html", html)
    assert "Returns" in text and "Items can be returned within 30 days & refunded." in text
    assert "Shop FAQ" in text and "One" in text and "Two" in text
    for hidden in ("secret", "color", "hidden comment", "enable js", "<p>"):
        assert hidden not in text
    with pytest.raises(ParseError, match="no text found in HTML"):
        extract_text("blank.htm", b"<html><script>x()</script></html>")


def test_json_is_pretty_printed_and_jsonl_and_invalid_json_still_index():
    text = extract_text("data.json", b'{"name":"Ada","tags":["math","code"]}')
    assert json.loads(text) == {"name": "Ada", "tags": ["math", "code"]}
    assert '\n  "name": "Ada"' in text
    lines = extract_text("rows.jsonl", b'{"a": 1}\n{"b": "zwei"}\n')
    assert '"a": 1' in lines and '"b": "zwei"' in lines
    assert extract_text("broken.json", b'{"unclosed": ') == '{"unclosed": '


def test_csv_rows_become_labelled_lines():
    text = extract_text("people.csv", b"name,city,age\nAda,London,36\nAlan,Wilmslow,41\n")
    assert text.splitlines() == ["name, city, age", "name: Ada, city: London, age: 36", "name: Alan, city: Wilmslow, age: 41"]
    semicolons = extract_text("eu.csv", "Produkt;Preis\nKäse;3,50\nBrot;2,10\n".encode("cp1252"))
    assert "Produkt: Käse, Preis: 3,50" in semicolons
    numbers = extract_text("numbers.csv", b"1,2,3\n4,5,6\n")
    assert numbers.splitlines() == ["1, 2, 3", "4, 5, 6"]
    assert "a: 1, b: 2" in extract_text("tabs.tsv", b"a\tb\n1\t2\n")


def test_pdf_text_is_extracted():
    text = extract_text("report.pdf", make_pdf(["Hello PDF world", "Second line here"]))
    assert "Hello PDF world" in text and "Second line here" in text
    assert "Hello PDF world" in extract_text("no-extension", make_pdf(["Hello PDF world"]))


def test_corrupt_pdfs_are_refused():
    with pytest.raises(ParseError, match="corrupt PDF"):
        extract_text("bad.pdf", b"%PDF-1.4\nthis is not really a pdf at all\n")
    with pytest.raises(ParseError, match=r"corrupt PDF|no text found in PDF"):
        extract_text("cut.pdf", make_pdf(["Hello PDF world"])[:120])
    with pytest.raises(ParseError, match="corrupt PDF"):
        extract_text("random.pdf", bytes(range(256)) * 8)


def test_pdf_without_text_is_refused():
    with pytest.raises(ParseError, match="no text found in PDF"):
        extract_text("scan.pdf", make_pdf([]))


def test_encrypted_pdfs():
    plain = make_pdf(["Confidential numbers"])
    with pytest.raises(ParseError, match="encrypted PDF"):
        extract_text("locked.pdf", encrypt_pdf(plain, user_password="secret", owner_password="owner"))
    # An owner password alone (restrictions, no open password) must not stop indexing.
    assert "Confidential numbers" in extract_text("restricted.pdf", encrypt_pdf(plain, user_password="", owner_password="owner"))


def test_docx_paragraphs_and_tables_in_order():
    text = extract_text("report.docx", make_docx())
    assert text.index("Quarterly report") < text.index("Revenue grew") < text.index("North | 42") < text.index("Closing remarks")
    assert "Region | Revenue" in text


def test_docx_zip_bomb_is_refused_before_inflating():
    bomb = add_to_zip(make_docx(), "word/media/bomb.bin", bytes(20 * 1024 * 1024))
    assert len(bomb) < 200_000  # 20 MiB of zeros packs into a few dozen KiB
    with pytest.raises(ParseError, match=r"archive expands beyond limit \(zip bomb\?\)"):
        extract_text("bomb.docx", bomb)


def test_docx_with_too_many_entries_is_refused(monkeypatch):
    monkeypatch.setattr("assistants.tools.file_search.parse.MAX_ZIP_ENTRIES", 5)
    with pytest.raises(ParseError, match="too many entries"):
        extract_text("many.docx", make_docx())


def test_corrupt_docx_is_refused():
    with pytest.raises(ParseError, match="corrupt DOCX"):
        extract_text("bad.docx", b"PK\x03\x04 definitely not a zip")
    not_word = io.BytesIO()
    with zipfile.ZipFile(not_word, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(ParseError, match="corrupt DOCX"):
        extract_text("other.docx", not_word.getvalue())


def test_text_beyond_max_chars_is_refused():
    with pytest.raises(ParseError, match="text too long"):
        extract_text("big.txt", b"word " * 1000, max_chars=100)
    with pytest.raises(ParseError, match="text too long"):
        extract_text("big.pdf", make_pdf(["a fairly long line of text"] * 5), max_chars=20)


# -- tokens and chunks -------------------------------------------------------------------------
def test_count_tokens_approximation():
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("12345678") == 3  # digits group by three
    assert count_tokens("internationalization") == 5  # a long word splits per ~4 characters
    assert count_tokens("日本語") == 3
    prose = "The quick brown fox jumps over the lazy dog. " * 50
    assert 450 <= count_tokens(prose) <= 600  # ~10 tokens per sentence, like cl100k
    assert count_tokens(prose) == count_tokens(prose)


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (99, 0, "max_chunk_size_tokens must be between 100 and 4096"),
        (4097, 0, "max_chunk_size_tokens must be between 100 and 4096"),
        (800, 401, r"chunk_overlap_tokens must be between 0 and half of max_chunk_size_tokens \(400\)"),
        (800, -1, "chunk_overlap_tokens must be between 0"),
        (800.5, 0, "must be a whole number"),
    ],
)
def test_chunking_limits_are_validated(size, overlap, message):
    with pytest.raises(ValueError, match=message):
        validate_chunking(size, overlap)
    with pytest.raises(ValueError, match=message):
        chunk_text("some text", size, overlap)


def test_chunking_limits_at_the_edges_are_accepted():
    for size, overlap in ((100, 0), (100, 50), (4096, 2048)):
        assert chunk_text("a short text", size, overlap) == ["a short text"]


def test_short_and_blank_texts():
    assert chunk_text("  one small paragraph \n") == ["one small paragraph"]
    assert chunk_text(" \n\t ") == []
    assert chunk_text("") == []


def numbered_sentences(n: int) -> tuple[str, list[str]]:
    """Sentences of distinct words, in paragraphs of five sentences."""
    words = [f"w{i:05d}" for i in range(n * 8)]
    sentences = [" ".join(words[i : i + 8]).capitalize() + "." for i in range(0, len(words), 8)]
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs), words


@pytest.mark.parametrize(("size", "overlap"), [(800, 400), (100, 0), (100, 50), (300, 100), (4096, 2048)])
def test_chunks_respect_size_and_overlap_and_cover_everything(size, overlap):
    text, words = numbered_sentences(3000)
    chunks = chunk_text(text, size, overlap)
    assert len(chunks) > 1
    assert all(count_tokens(chunk) <= size for chunk in chunks)
    seen = [re.findall(r"w\d{5}", chunk.lower()) for chunk in chunks]
    assert sorted({w for ws in seen for w in ws}) == words  # nothing lost
    for before, after in itertools.pairwise(seen):
        shared = set(before) & set(after)
        if overlap == 0:
            assert not shared
            assert int(after[0][1:]) == int(before[-1][1:]) + 1  # picks up right where the last ended
        else:
            assert shared, "consecutive chunks overlap"
            assert after[0] in before and after[-1] not in before
            overlap_text = " ".join(w for w in after if w in shared)
            assert count_tokens(overlap_text) <= overlap + 16
    # Chunks move on by at least a quarter of their size, so there are not too many.
    assert len(chunks) <= count_tokens(text) / ((size - overlap) / 2) + 2


def test_chunks_prefer_paragraph_then_sentence_boundaries():
    text, _ = numbered_sentences(400)
    for chunk in chunk_text(text, 300, 0):
        assert chunk.endswith(".")  # never cut mid-sentence when sentences are short
    paragraph_ends = {p.strip()[-7:] for p in text.split("\n\n")}
    ends = [chunk[-7:] for chunk in chunk_text(text, 300, 0)[:-1]]
    assert all(end in paragraph_ends for end in ends)


def test_text_without_spaces_is_still_chunked():
    text = "x" * 20_000
    chunks = chunk_text(text, 100, 20)
    assert all(count_tokens(chunk) <= 100 for chunk in chunks)
    assert "".join(chunks).count("x") >= len(text)
    cjk = "日本語のテキストです。" * 300
    chunks = chunk_text(cjk, 100, 0)
    assert all(count_tokens(chunk) <= 100 for chunk in chunks)
    assert "".join(chunks) == cjk
    assert all(chunk.endswith("。") for chunk in chunks)


# -- index and search --------------------------------------------------------------------------
def add_sample_files(store) -> None:
    store.index_chunks(
        "vs_a",
        "file-refunds",
        "refunds.md",
        ["Our refund policy: damaged items can be returned within 30 days for a full refund.", "Refunds go to the original card."],
    )
    store.index_chunks("vs_a", "file-shipping", "shipping.md", ["Shipping takes five business days within the country."])
    store.index_chunks("vs_a", "file-office", "office.md", ["Our office is in Berlin, next to the river.", "Visitors sign in at the desk."])
    store.index_chunks("vs_b", "file-other", "other.md", ["A refund policy in another store entirely."])


@BOTH
def test_the_file_containing_the_terms_ranks_first(store):
    add_sample_files(store)
    results = store.search_chunks(["vs_a"], "What is the refund policy for damaged items?")
    assert results[0].file_id == "file-refunds" and results[0].chunk_index == 0
    assert results[0].filename == "refunds.md" and results[0].vector_store_id == "vs_a"
    assert "damaged items" in results[0].text
    assert all(r.vector_store_id == "vs_a" for r in results)  # other stores stay out
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)
    assert all(0.0 <= r.score <= 1.0 for r in results)
    berlin = store.search_chunks(["vs_a"], "berlin office")
    assert [r.file_id for r in berlin] == ["file-office"]


@BOTH
def test_stemming_and_several_stores(store):
    add_sample_files(store)
    assert store.search_chunks(["vs_a"], "refunding")[0].file_id == "file-refunds"  # porter stemming
    both = {r.vector_store_id for r in store.search_chunks(["vs_a", "vs_b"], "refund policy")}
    assert both == {"vs_a", "vs_b"}
    assert store.search_chunks(["vs_missing"], "refund") == []
    assert store.search_chunks([], "refund") == []


@pytest.mark.parametrize(
    "query",
    [
        '"(AND*',
        "NEAR(",
        'refund"',
        "text:refund",
        "refund*",
        "^refund",
        "AND OR NOT",
        "(",
        ")",
        "*",
        '"',
        "'",
        "-refund",
        "+",
        "{x}",
        "\x00",
    ],
)
@BOTH
def test_fts_syntax_in_queries_never_raises(store, query):
    add_sample_files(store)
    results = store.search_chunks(["vs_a"], query)
    assert isinstance(results, list)
    if "refund" in query:
        assert results and results[0].file_id == "file-refunds"


@BOTH
def test_empty_and_huge_queries(store):
    add_sample_files(store)
    assert store.search_chunks(["vs_a"], "") == []
    assert store.search_chunks(["vs_a"], "   \n") == []
    assert store.search_chunks(["vs_a"], "?!*") == []
    assert store.search_chunks(["vs_a"], "refund " + "zzz " * 5000)[0].file_id == "file-refunds"
    assert store.search_chunks(["vs_a"], "the")  # only stopwords: they are searched after all


@BOTH
def test_max_num_results_and_threshold(store):
    store.index_chunks("vs_a", "file-1", "many.txt", [f"apple number {i} " + "filler " * (i % 7) for i in range(60)])
    assert len(store.search_chunks(["vs_a"], "apple")) == 20
    assert len(store.search_chunks(["vs_a"], "apple", max_num_results=50)) == 50
    assert len(store.search_chunks(["vs_a"], "apple", max_num_results=3)) == 3
    for bad in (0, 51, -1):
        with pytest.raises(ValueError, match="max_num_results must be between 1 and 50"):
            store.search_chunks(["vs_a"], "apple", max_num_results=bad)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="score_threshold must be between 0 and 1"):
            store.search_chunks(["vs_a"], "apple", score_threshold=bad)


@BOTH
def test_threshold_filters_weak_matches(store):
    add_sample_files(store)
    query = "refund policy damaged berlin"
    everything = store.search_chunks(["vs_a"], query)
    scores = [r.score for r in everything]
    assert len(everything) >= 3 and scores[0] > scores[-1]
    cut = (scores[0] + scores[-1]) / 2
    strong = store.search_chunks(["vs_a"], query, score_threshold=cut)
    assert strong and all(r.score >= cut for r in strong) and len(strong) < len(everything)
    assert store.search_chunks(["vs_a"], query, score_threshold=1.0) == []


@BOTH
def test_scores_do_not_collapse_in_a_small_store(store):
    store.index_chunks("vs_a", "file-1", "one.txt", ["The warranty covers parts and labour for two years."])
    (hit,) = store.search_chunks(["vs_a"], "warranty labour")
    assert 0.3 <= hit.score <= 1.0


@BOTH
def test_embeddings_are_fused_by_reciprocal_rank(store):
    chunks = ["cats purr softly", "dogs bark loudly at cats", "the stock market fell", "a recipe for bread"]
    vectors = [[1, 0, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    store.index_chunks("vs_a", "file-1", "mixed.txt", chunks, embeddings=vectors)
    # BM25 alone ranks the bread chunk nowhere: it has no query term.
    assert [r.chunk_index for r in store.search_chunks(["vs_a"], "cats")] in ([0, 1], [1, 0])
    fused = store.search_chunks(["vs_a"], "cats", query_embedding=[0.1, 0, 0, 2])
    assert fused[0].chunk_index in (0, 1, 3)
    assert 3 in [r.chunk_index for r in fused]  # found by the vectors only
    assert all(0.0 <= r.score <= 1.0 for r in fused)
    best = store.search_chunks(["vs_a"], "purr", query_embedding=[1, 0, 0, 0])
    assert best[0].chunk_index == 0 and best[0].score == pytest.approx(1.0)  # first in both rankings
    vector_only = {r.chunk_index: r.score for r in best[1:]}
    assert all(score <= 0.5 for score in vector_only.values())
    assert store.search_chunks(["vs_a"], "purr", query_embedding=[1, 0, 0, 0], score_threshold=0.6)[0].chunk_index == 0
    assert len(store.search_chunks(["vs_a"], "purr", query_embedding=[1, 0, 0, 0], score_threshold=0.6)) == 1


@BOTH
def test_fusion_moves_a_semantically_close_chunk_up(store):
    # BM25 orders chunks 0..9 by how often they say "revenue"; the vectors order them the
    # other way round, and an 11th chunk without the word sits last by vector only.
    chunks = [("revenue " * (10 - i)) + ("padding " * i) for i in range(10)] + ["unrelated words"]
    vectors = [[i / 10, 1.0] for i in range(10)] + [[0.05, 1.0]]
    vectors[9] = [1.0, 0.0]
    store.index_chunks("vs_a", "file-1", "r.txt", chunks, embeddings=vectors)
    plain = [r.chunk_index for r in store.search_chunks(["vs_a"], "revenue")]
    assert plain == list(range(10))
    fused = [r.chunk_index for r in store.search_chunks(["vs_a"], "revenue", query_embedding=[1.0, 0.0])]
    assert fused[0] == 9 and 10 in fused


@BOTH
def test_embeddings_of_another_size_or_missing_fall_back_to_bm25(store):
    store.index_chunks("vs_a", "file-1", "a.txt", ["alpha beta"], embeddings=[[1.0, 0.0, 0.0]])
    store.index_chunks("vs_a", "file-2", "b.txt", ["alpha gamma"])
    plain = store.search_chunks(["vs_a"], "alpha")
    assert store.search_chunks(["vs_a"], "alpha", query_embedding=[1.0, 0.0]) == plain  # 2 dims vs 3 stored
    assert store.search_chunks(["vs_a"], "alpha", query_embedding=[0.0, 0.0, 0.0]) == plain
    with pytest.raises(ValueError, match="2 embeddings for 1 chunks"):
        store.index_chunks("vs_a", "file-3", "c.txt", ["x"], embeddings=[[1.0], [2.0]])


@BOTH
def test_reindexing_a_file_replaces_its_chunks(store):
    assert store.index_chunks("vs_a", "file-1", "a.txt", ["old words here", "more old words"]) == 2
    assert store.index_chunks("vs_a", "file-1", "a.txt", ["new content only"]) == 1
    assert store.search_chunks(["vs_a"], "old") == []
    assert [r.text for r in store.search_chunks(["vs_a"], "content")] == ["new content only"]


@BOTH
def test_delete_file_and_whole_store(store):
    add_sample_files(store)
    store.delete_chunks("vs_a", "file-refunds")
    assert all(r.file_id != "file-refunds" for r in store.search_chunks(["vs_a"], "refund"))
    assert store.search_chunks(["vs_b"], "refund")  # the same words in another store stay
    store.delete_chunks("vs_a")
    assert store.search_chunks(["vs_a"], "shipping office berlin") == []
    assert store.chunk_usage_bytes("vs_a") == 0
    if hasattr(store, "conn"):  # SQLite's own check: the FTS5 index is in step with its table
        store.conn().execute("INSERT INTO fs_chunks_fts (fs_chunks_fts) VALUES ('integrity-check')")


@BOTH
def test_usage_bytes(store):
    assert store.chunk_usage_bytes("vs_a") == 0
    store.index_chunks("vs_a", "file-1", "a.txt", ["héllo", "world"])
    assert store.chunk_usage_bytes("vs_a") == len("héllo".encode()) + len(b"world")
    store.index_chunks("vs_a", "file-2", "b.txt", ["abc"], embeddings=[[0.1, 0.2, 0.3, 0.4]])
    assert store.chunk_usage_bytes("vs_a") == 6 + 5 + 3 + 4 * 4  # float32 per dimension
    store.delete_chunks("vs_a", "file-1")
    assert store.chunk_usage_bytes("vs_a") == 3 + 16
    assert store.chunk_usage_bytes("vs_other") == 0


@SQLITE_INDEX
def test_index_chunks_leaves_the_transaction_to_the_caller(tmp_path):
    path = tmp_path / "store.db"
    writer = sqlite3.connect(path)
    for statement in SCHEMA:
        writer.execute(statement)
    writer.commit()
    index_chunks(writer, "vs_a", "file-1", "a.txt", ["pending words"])
    assert writer.in_transaction
    reader = sqlite3.connect(path)
    assert search(reader, ["vs_a"], "pending") == []
    writer.rollback()
    assert search(writer, ["vs_a"], "pending") == []


@SQLITE_INDEX
def test_schema_can_run_twice(conn):
    for statement in SCHEMA:
        conn.execute(statement)


# -- query planning for large indexes ----------------------------------------------------------
@pytest.fixture
def big(conn, monkeypatch):
    """300 chunks with 'common' in all and 'rare' in 30, planned as if the index were large."""
    monkeypatch.setattr(fs_index, "PLAIN_QUERY_ROWS", 10)
    monkeypatch.setattr(fs_index, "COMMON_TERM_SHARE", 0.5)
    chunks = [("common " * (1 + i % 3)) + ("rare " * (1 + i % 3) if i % 10 == 0 else "") + f"filler{i % 17} words" for i in range(300)]
    index_chunks(conn, "vs_a", "file-1", "big.txt", chunks)
    return conn


def exact(conn, monkeypatch, query, n):
    monkeypatch.setattr(fs_index, "PLAIN_QUERY_ROWS", 10**9)
    return [(r.chunk_index, r.score) for r in search(conn, ["vs_a"], query, max_num_results=n)]


@SQLITE_INDEX
def test_rare_and_common_terms_give_the_exact_bm25_top(big, monkeypatch):
    planned = [(r.chunk_index, r.score) for r in search(big, ["vs_a"], "rare common", max_num_results=20)]
    assert planned == exact(big, monkeypatch, "rare common", 20)
    assert all(index % 10 == 0 for index, _ in planned[:20])


@SQLITE_INDEX
def test_only_common_terms_prefer_chunks_with_all_of_them(big, monkeypatch):
    planned = [(r.chunk_index, r.score) for r in search(big, ["vs_a"], "common words", max_num_results=10)]
    assert planned == exact(big, monkeypatch, "common words", 10)


@SQLITE_INDEX
def test_common_terms_only_rank_chunks_a_rarer_term_found(big, monkeypatch):
    planned = [(r.chunk_index, r.score) for r in search(big, ["vs_a"], "common filler3", max_num_results=50)]
    with_rare = [i for i in range(300) if i % 17 == 3]
    assert sorted(index for index, _ in planned) == with_rare  # not padded with chunks holding only "common"
    assert planned == exact(big, monkeypatch, "common filler3", 50)[: len(with_rare)]
