"""Vector stores: background indexing, file statuses and errors, batches, expiry, search, embeddings."""

from __future__ import annotations

import io
import threading
import zipfile

import pytest
from openai.types import FileDeleted, VectorStore, VectorStoreDeleted, VectorStoreSearchResponse
from openai.types.vector_stores import VectorStoreFile, VectorStoreFileBatch, VectorStoreFileDeleted

import assistants.vector_stores as vs_module
from assistants.config import Backend
from assistants.errors import BadRequest, NotFound
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from assistants.store import open_store
from tests.conftest import make_settings
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.provider import ScriptedProvider
from tests.tools.documents import docx_with


PARIS = b"The capital of France is Paris. It sits on the Seine and is famous for the Eiffel Tower."
BANANAS = b"Bananas are yellow when ripe. They grow in tropical climates and are rich in potassium."


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF whose text pypdf can extract."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def zip_bomb() -> bytes:
    """A .docx whose one entry inflates 1000-fold (20 MB of zeros in ~20 KB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (20 * 1024 * 1024))
    return buf.getvalue()


def chunk_count(rt, vs_id: str, file_id: str | None = None) -> int:
    sql, args = "SELECT COUNT(*) FROM fs_chunks WHERE vector_store_id = ?", [vs_id]
    if file_id:
        sql, args = sql + " AND file_id = ?", [*args, file_id]
    if not hasattr(rt.store, "conn"):  # PostgreSQL
        return rt.store._rows(sql.replace("?", "%s"), args)[0][0]
    return rt.store.conn().execute(sql, args).fetchone()[0]


def upload(rt, name: str, data: bytes) -> str:
    return rt.files.create(name, data, "assistants")["id"]


def test_create_indexes_in_background_and_validates_against_openai_types(rt):
    a, b = upload(rt, "paris.txt", PARIS), upload(rt, "bananas.md", BANANAS)
    vs = rt.vector_stores.create(name="Docs", file_ids=[a, b], metadata={"team": "x"})
    VectorStore.model_validate(vs)
    assert vs["id"].startswith("vs_") and vs["name"] == "Docs" and vs["metadata"] == {"team": "x"}
    assert vs["file_counts"]["total"] == 2
    assert rt.vector_stores.wait_idle(30)
    vs = rt.vector_stores.get(vs["id"])
    VectorStore.model_validate(vs)
    assert vs["status"] == "completed" and vs["usage_bytes"] > 0
    assert vs["file_counts"] == {"in_progress": 0, "completed": 2, "failed": 0, "cancelled": 0, "total": 2}
    files = rt.vector_stores.list_files(vs["id"])["data"]
    for f in files:
        VectorStoreFile.model_validate(f)
        assert f["status"] == "completed" and f["last_error"] is None and f["usage_bytes"] > 0
        assert f["chunking_strategy"] == {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
    assert sum(f["usage_bytes"] for f in files) == vs["usage_bytes"]
    page = rt.vector_stores.search(vs["id"], "What is the capital of France?")
    assert page["object"] == "vector_store.search_results.page" and page["search_query"] == ["What is the capital of France?"]
    top = page["data"][0]
    VectorStoreSearchResponse.model_validate(top)
    assert top["file_id"] == a and top["filename"] == "paris.txt" and 0 < top["score"] <= 1
    assert "Paris" in top["content"][0]["text"]
    assert all(r["file_id"] != b for r in page["data"])  # nothing about bananas matches


def test_bad_files_fail_with_a_reason_and_the_rest_of_the_batch_completes(rt):
    good = {
        "paris.txt": PARIS,
        "latin1.txt": "Café naïve — déjà vu in Besançon".encode("cp1252"),
        "report.pdf": make_pdf("Quarterly revenue grew by twelve percent"),
        "memo.docx": docx_with("The offsite is planned for October in Lisbon."),
        "data.csv": b"city,country\nLisbon,Portugal\nOslo,Norway\n",
        "page.html": b"<html><script>var x = 1;</script><body><p>Visible heron text</p></body></html>",
    }
    bad = {
        "blob.bin": bytes(range(256)) * 64,
        "empty.txt": b"",
        "blank.md": b"   \n\n  ",
        "broken.pdf": b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog",
        "bomb.docx": zip_bomb(),
        "fake.docx": b"this is not a zip archive at all",
    }
    ids = {name: upload(rt, name, data) for name, data in {**good, **bad}.items()}
    vs = rt.vector_stores.create(name="mixed")
    batch = rt.vector_stores.create_batch(vs["id"], file_ids=list(ids.values()))
    VectorStoreFileBatch.model_validate(batch)
    assert batch["id"].startswith("vsfb_") and batch["status"] == "in_progress" and batch["file_counts"]["total"] == 12
    assert rt.vector_stores.wait_idle(60)
    batch = rt.vector_stores.get_batch(vs["id"], batch["id"])
    VectorStoreFileBatch.model_validate(batch)
    assert batch["status"] == "completed"
    assert batch["file_counts"] == {"in_progress": 0, "completed": 6, "failed": 6, "cancelled": 0, "total": 12}
    by_name = {name: rt.vector_stores.get_file(vs["id"], fid) for name, fid in ids.items()}
    for name in good:
        assert by_name[name]["status"] == "completed", (name, by_name[name]["last_error"])
    expect = {"blob.bin": ("unsupported_file", "binary"), "empty.txt": ("invalid_file", "empty"),
              "blank.md": ("invalid_file", "empty"), "broken.pdf": ("invalid_file", "corrupt PDF"),
              "bomb.docx": ("invalid_file", "zip bomb"), "fake.docx": ("invalid_file", "corrupt DOCX")}
    for name, (code, words) in expect.items():
        f = by_name[name]
        VectorStoreFile.model_validate(f)
        assert f["status"] == "failed" and f["last_error"]["code"] == code, (name, f["last_error"])
        assert words in f["last_error"]["message"] and name in f["last_error"]["message"]
        assert chunk_count(rt, vs["id"], ids[name]) == 0
    failed = rt.vector_stores.list_batch_files(vs["id"], batch["id"], filter="failed")["data"]
    assert {f["id"] for f in failed} == {ids[n] for n in bad}
    vs = rt.vector_stores.get(vs["id"])
    assert vs["status"] == "completed" and vs["file_counts"]["failed"] == 6
    for query, name in (("revenue twelve percent", "report.pdf"), ("offsite Lisbon", "memo.docx"),
                        ("Besançon", "latin1.txt"), ("heron", "page.html"), ("Norway", "data.csv")):
        hits = rt.vector_stores.search(vs["id"], query)["data"]
        assert hits and hits[0]["filename"] == name, (query, hits)
    assert rt.vector_stores.search(vs["id"], "var x")["data"] == []  # script text is not indexed


def test_static_chunking_is_validated_and_applied(rt):
    fid = upload(rt, "long.txt", (" ".join(f"Sentence number {i} talks about topic {i}." for i in range(400))).encode())
    vs = rt.vector_stores.create()
    for bad in ({"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 0}},
                {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 150}},
                {"type": "static", "static": {"max_chunk_size_tokens": 5000, "chunk_overlap_tokens": 0}},
                {"type": "static", "static": {"max_chunk_size_tokens": 200}},
                {"type": "static"}, {"type": "semantic"}, "auto"):
        with pytest.raises(BadRequest, match="chunking_strategy"):
            rt.vector_stores.add_file(vs["id"], fid, chunking_strategy=bad)
    static = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    f = rt.vector_stores.add_file(vs["id"], fid, chunking_strategy=static)
    assert f["chunking_strategy"] == static
    rt.vector_stores.wait_idle(30)
    small = chunk_count(rt, vs["id"], fid)
    other = rt.vector_stores.create(file_ids=[fid], chunking_strategy={"type": "auto"})
    rt.vector_stores.wait_idle(30)
    assert small > 4 * chunk_count(rt, other["id"], fid) > 0


def test_cancel_batch_stops_files_not_yet_indexed(rt, monkeypatch):
    gate = threading.Event()
    real = vs_module.extract_text

    def slow_extract(name, data, **kwargs):
        if name.startswith("slow"):
            gate.wait(30)
        return real(name, data, **kwargs)

    monkeypatch.setattr(vs_module, "extract_text", slow_extract)
    ids = [upload(rt, f"slow{i}.txt", PARIS) for i in range(5)]
    vs = rt.vector_stores.create()
    batch = rt.vector_stores.create_batch(vs["id"], file_ids=ids)
    cancelled = rt.vector_stores.cancel_batch(vs["id"], batch["id"])
    VectorStoreFileBatch.model_validate(cancelled)
    assert cancelled["status"] == "cancelled" and cancelled["file_counts"]["cancelled"] == 5
    gate.set()
    assert rt.vector_stores.wait_idle(30)
    assert rt.vector_stores.get_batch(vs["id"], batch["id"])["status"] == "cancelled"
    assert {f["status"] for f in rt.vector_stores.list_files(vs["id"])["data"]} == {"cancelled"}
    assert chunk_count(rt, vs["id"]) == 0  # the files mid-indexing were discarded
    with pytest.raises(BadRequest, match="cancelled"):
        rt.vector_stores.cancel_batch(vs["id"], batch["id"])
    fid = upload(rt, "again.txt", PARIS)
    done = rt.vector_stores.create_batch(vs["id"], file_ids=[fid])
    rt.vector_stores.wait_idle(30)
    assert rt.vector_stores.get_batch(vs["id"], done["id"])["status"] == "completed"
    with pytest.raises(BadRequest):
        rt.vector_stores.cancel_batch(vs["id"], done["id"])


def test_batch_with_per_file_attributes_and_search_filters(rt):
    a, b = upload(rt, "a.txt", PARIS), upload(rt, "b.txt", PARIS.replace(b"France", b"the French Republic"))
    vs = rt.vector_stores.create()
    rt.vector_stores.create_batch(vs["id"], files=[{"file_id": a, "attributes": {"year": 2023, "lang": "en"}},
                                                   {"file_id": b, "attributes": {"year": 2025, "lang": "en"}}])
    rt.vector_stores.wait_idle(30)
    both = rt.vector_stores.search(vs["id"], "Paris Seine")["data"]
    assert {r["file_id"] for r in both} == {a, b}
    recent = rt.vector_stores.search(vs["id"], "Paris Seine", filters={"type": "gte", "key": "year", "value": 2024})
    assert [(r["file_id"], r["attributes"]["year"]) for r in recent["data"]] == [(b, 2025)]
    compound = {"type": "and", "filters": [{"type": "eq", "key": "lang", "value": "en"},
                                           {"type": "in", "key": "year", "value": [2023]}]}
    assert [r["file_id"] for r in rt.vector_stores.search(vs["id"], "Paris", filters=compound)["data"]] == [a]
    rt.vector_stores.update_file(vs["id"], a, attributes={"year": 2030})
    assert {r["file_id"] for r in rt.vector_stores.search(
        vs["id"], "Paris", filters={"type": "gt", "key": "year", "value": 2024})["data"]} == {a, b}
    for bad in ({"type": "like", "key": "x", "value": 1}, {"type": "in", "key": "x", "value": 1}, "year"):
        with pytest.raises(BadRequest):
            rt.vector_stores.search(vs["id"], "Paris", filters=bad)
    with pytest.raises(BadRequest, match="file_ids or files"):
        rt.vector_stores.create_batch(vs["id"], file_ids=[a], files=[{"file_id": a}])
    with pytest.raises(BadRequest, match="at least one"):
        rt.vector_stores.create_batch(vs["id"], file_ids=[])


def test_search_parameters_are_checked(rt):
    vs = rt.vector_stores.create(file_ids=[upload(rt, "p.txt", PARIS)])
    rt.vector_stores.wait_idle(30)
    for kwargs in ({"query": ""}, {"query": "x", "max_num_results": 0}, {"query": "x", "max_num_results": 51},
                   {"query": "x", "ranking_options": {"score_threshold": 2}},
                   {"query": "x", "ranking_options": {"ranker": "best"}}):
        with pytest.raises(BadRequest):
            rt.vector_stores.search(vs["id"], **kwargs)
    assert rt.vector_stores.search(vs["id"], "Paris", ranking_options={"score_threshold": 0.99})["data"] == []
    page = rt.vector_stores.search(vs["id"], ["Eiffel", "Seine"])
    assert page["search_query"] == ["Eiffel", "Seine"] and page["data"]
    with pytest.raises(NotFound):
        rt.vector_stores.search("vs_missing", "x")


def test_update_expiry_and_expired_status(rt):
    vs = rt.vector_stores.create(name="old", expires_after={"anchor": "last_active_at", "days": 1})
    assert vs["expires_at"] == vs["last_active_at"] + 86_400
    for bad in ({"anchor": "created_at", "days": 1}, {"anchor": "last_active_at", "days": 0},
                {"anchor": "last_active_at", "days": 366}):
        with pytest.raises(BadRequest, match="expires_after"):
            rt.vector_stores.update(vs["id"], expires_after=bad)
    stored = rt.store.get("vector_stores", vs["id"])
    stored.update(last_active_at=stored["last_active_at"] - 2 * 86_400, expires_at=stored["expires_at"] - 2 * 86_400)
    rt.store.put("vector_stores", stored)
    expired = rt.vector_stores.get(vs["id"])
    VectorStore.model_validate(expired)
    assert expired["status"] == "expired"
    with pytest.raises(BadRequest, match="expired"):
        rt.vector_stores.search(vs["id"], "anything")
    revived = rt.vector_stores.update(vs["id"], name="new", expires_after={"anchor": "last_active_at", "days": 3},
                                      metadata={"k": "v"})
    assert revived["status"] == "completed" and revived["name"] == "new" and revived["metadata"] == {"k": "v"}
    assert revived["expires_at"] == revived["last_active_at"] + 3 * 86_400
    cleared = rt.vector_stores.update(vs["id"], expires_after=None)
    assert cleared["expires_after"] is None and cleared["expires_at"] is None and cleared["name"] == "new"


def test_delete_file_everywhere_and_delete_store(rt):
    a, b = upload(rt, "paris.txt", PARIS), upload(rt, "bananas.txt", BANANAS)
    one = rt.vector_stores.create(file_ids=[a, b])
    two = rt.vector_stores.create(file_ids=[a])
    rt.vector_stores.wait_idle(30)
    assert chunk_count(rt, one["id"], a) and chunk_count(rt, two["id"], a)
    FileDeleted.model_validate(rt.files.delete(a))
    for vs in (one, two):
        assert chunk_count(rt, vs["id"], a) == 0
        with pytest.raises(NotFound):
            rt.vector_stores.get_file(vs["id"], a)
        assert rt.vector_stores.search(vs["id"], "Paris")["data"] == []
    assert rt.vector_stores.get(one["id"])["file_counts"]["total"] == 1
    assert rt.vector_stores.get(two["id"])["file_counts"]["total"] == 0 and rt.vector_stores.get(two["id"])["usage_bytes"] == 0
    VectorStoreFileDeleted.model_validate(rt.vector_stores.delete_file(one["id"], b))
    assert chunk_count(rt, one["id"]) == 0 and rt.files.get(b)["id"] == b  # the file itself stays
    with pytest.raises(NotFound):
        rt.vector_stores.delete_file(one["id"], b)
    rt.vector_stores.add_file(one["id"], b)
    rt.vector_stores.wait_idle(30)
    VectorStoreDeleted.model_validate(rt.vector_stores.delete(one["id"]))
    assert chunk_count(rt, one["id"]) == 0 and rt.store.count("vector_store_files", vector_store_id=one["id"]) == 0
    with pytest.raises(NotFound):
        rt.vector_stores.get(one["id"])
    with pytest.raises(BadRequest, match="No such file"):
        rt.vector_stores.create(file_ids=["file-nope"])


def test_adding_the_same_file_twice_is_a_no_op(rt):
    fid = upload(rt, "p.txt", PARIS)
    vs = rt.vector_stores.create()
    first = rt.vector_stores.add_file(vs["id"], fid)
    rt.vector_stores.wait_idle(30)
    again = rt.vector_stores.add_file(vs["id"], fid)
    assert again["status"] == "completed" and again["created_at"] == first["created_at"]
    assert rt.vector_stores.get(vs["id"])["file_counts"]["total"] == 1


def test_list_paging(rt):
    stores = [rt.vector_stores.create(name=f"s{i}") for i in range(5)]
    page = rt.vector_stores.list(limit=2)
    assert [s["name"] for s in page["data"]] == ["s4", "s3"] and page["has_more"]
    nxt = rt.vector_stores.list(limit=2, after=page["last_id"])
    assert [s["name"] for s in nxt["data"]] == ["s2", "s1"]
    back = rt.vector_stores.list(limit=2, before=nxt["first_id"])
    assert [s["name"] for s in back["data"]] == ["s4", "s3"]
    ids = [upload(rt, f"f{i}.txt", PARIS) for i in range(3)]
    vs = stores[0]["id"]
    for fid in ids:
        rt.vector_stores.add_file(vs, fid)
    rt.vector_stores.wait_idle(30)
    files = rt.vector_stores.list_files(vs, limit=2, order="asc")
    assert [f["id"] for f in files["data"]] == ids[:2] and files["has_more"]
    assert [f["id"] for f in rt.vector_stores.list_files(vs, after=files["last_id"], order="asc")["data"]] == ids[2:]
    assert rt.vector_stores.list_files(vs, filter="failed")["data"] == []
    with pytest.raises(BadRequest, match="filter"):
        rt.vector_stores.list_files(vs, filter="done")


def test_message_attachments_go_into_the_threads_vector_store(rt):
    a, b = upload(rt, "paris.txt", PARIS), upload(rt, "bananas.txt", BANANAS)
    c = upload(rt, "code.py", b"print('not for search')")
    t = rt.create_thread(messages=[{"role": "user", "content": "read this", "attachments": [
        {"file_id": a, "tools": [{"type": "file_search"}]}, {"file_id": c, "tools": [{"type": "code_interpreter"}]}]}])
    thread = rt.get_thread(t["id"])
    (vs_id,) = thread["tool_resources"]["file_search"]["vector_store_ids"]
    rt.create_message(t["id"], role="user", content="and this", attachments=[
        {"file_id": b, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}])
    assert rt.get_thread(t["id"])["tool_resources"]["file_search"]["vector_store_ids"] == [vs_id]
    rt.vector_stores.wait_idle(30)
    vs = rt.vector_stores.get(vs_id)
    assert vs["expires_after"] == {"anchor": "last_active_at", "days": 7} and vs["metadata"] == {"thread_id": t["id"]}
    assert {f["id"] for f in rt.vector_stores.list_files(vs_id)["data"]} == {a, b}
    assert vs["file_counts"]["completed"] == 2


def test_inline_vector_stores_in_thread_tool_resources(rt):
    fid = upload(rt, "paris.txt", PARIS)
    t = rt.create_thread(tool_resources={"file_search": {"vector_stores": [{"file_ids": [fid]}]}})
    (vs_id,) = t["tool_resources"]["file_search"]["vector_store_ids"]
    rt.vector_stores.wait_idle(30)
    assert rt.vector_stores.get(vs_id)["file_counts"]["completed"] == 1


def test_files_left_in_progress_by_a_dead_process_are_indexed_at_start(tmp_path):
    router = ModelRouter([ScriptedProvider()], default_model="fake-model")
    first = Runtime(make_settings(tmp_path), router=router)
    fid = upload(first, "paris.txt", PARIS)
    vs = first.vector_stores.create()
    first.store.insert("vector_store_files", {
        "id": fid, "object": "vector_store.file", "created_at": 1, "vector_store_id": vs["id"], "status": "in_progress",
        "last_error": None, "usage_bytes": 0, "attributes": {}, "_owner": "999999999:0", "_job": "job_old",
        "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}})
    first.close()
    second = Runtime(make_settings(tmp_path), router=router)
    try:
        assert second.vector_stores.wait_idle(30)
        assert second.vector_stores.get_file(vs["id"], fid)["status"] == "completed"
        assert second.vector_stores.search(vs["id"], "Paris")["data"]
    finally:
        second.close()


def test_closing_releases_queued_files_for_the_next_start(tmp_path, monkeypatch):
    gate, started = threading.Event(), threading.Semaphore(0)
    real = vs_module.extract_text

    def held(name, data, **kwargs):
        started.release()
        gate.wait(30)
        return real(name, data, **kwargs)

    monkeypatch.setattr(vs_module, "extract_text", held)
    router = ModelRouter([ScriptedProvider()], default_model="fake-model")
    first = Runtime(make_settings(tmp_path), router=router)
    ids = [upload(first, f"f{i}.txt", PARIS) for i in range(6)]
    vs = first.vector_stores.create(file_ids=ids)
    for _ in range(vs_module.INDEX_WORKERS):
        assert started.acquire(timeout=10)
    threading.Timer(0.2, gate.set).start()
    first.close()  # the files being indexed finish; the queued ones are released
    monkeypatch.setattr(vs_module, "extract_text", real)
    reader = open_store(first.settings)
    rows = reader.all("vector_store_files", status="in_progress")
    reader.close()
    assert len(rows) == 6 - vs_module.INDEX_WORKERS and all(r["_owner"] is None for r in rows)
    second = Runtime(make_settings(tmp_path), router=router)
    try:
        assert second.vector_stores.wait_idle(30)
        assert second.vector_stores.get(vs["id"])["file_counts"]["completed"] == 6
    finally:
        second.close()


def test_embeddings_are_stored_and_fused_into_search(tmp_path):
    with FakeOpenAIServer() as srv:
        settings = make_settings(tmp_path, backends=(Backend("fake", srv.base_url),), embedding_model="fake-embed")
        rt = Runtime(settings, router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
        try:
            a, b = upload(rt, "paris.txt", PARIS), upload(rt, "bananas.txt", BANANAS)
            vs = rt.vector_stores.create(file_ids=[a, b])
            rt.vector_stores.wait_idle(30)
            sql = "SELECT COUNT(*) FROM fs_chunks WHERE embedding IS NOT NULL"
            embedded = (rt.store.conn().execute(sql).fetchone() if hasattr(rt.store, "conn") else rt.store._rows(sql)[0])[0]
            assert embedded == 2
            calls = len(srv.headers)
            hits = rt.vector_stores.search(vs["id"], "capital of France Paris")["data"]
            assert len(srv.headers) == calls + 1  # the query was embedded too
            # Ranked first by keywords and by vectors: the fused score is the maximum.
            assert hits[0]["file_id"] == a and hits[0]["score"] == 1.0
            assert rt.vector_stores.get(vs["id"])["usage_bytes"] > len(PARIS) + len(BANANAS)  # vectors count too
        finally:
            rt.close()


def test_a_failing_embedding_backend_does_not_fail_indexing(tmp_path):
    settings = make_settings(tmp_path, backends=(Backend("down", "http://127.0.0.1:9/v1"),), embedding_model="fake-embed")
    rt = Runtime(settings, router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
    try:
        a = upload(rt, "paris.txt", PARIS)
        vs = rt.vector_stores.create(file_ids=[a])
        rt.vector_stores.wait_idle(30)
        assert rt.vector_stores.get_file(vs["id"], a)["status"] == "completed"
        row = rt.store.get("vector_store_files", a, vector_store_id=vs["id"])
        assert "keyword search only" in row["_note"] and "down" in row["_note"]
        hits = rt.vector_stores.search(vs["id"], "Paris")["data"]
        assert hits and hits[0]["file_id"] == a and hits[0]["score"] < 1.0
    finally:
        rt.close()
