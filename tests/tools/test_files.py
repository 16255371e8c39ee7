"""Files: upload, list, read and delete; names never become paths; the size limit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openai.types import FileObject

from assistants.errors import BadRequest, NotFound
from assistants.providers.router import ModelRouter
from assistants.runtime import Runtime
from tests.conftest import make_settings
from tests.file_bytes import stored
from tests.fakes.provider import ScriptedProvider


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def rt(data_dir):
    runtime = Runtime(make_settings(data_dir, max_upload_mb=1),
                      router=ModelRouter([ScriptedProvider()], default_model="fake-model"))
    yield runtime
    runtime.close()


def test_upload_get_content_list_delete(rt, data_dir):
    f = rt.files.create("notes.txt", b"hello world", "assistants")
    FileObject.model_validate(f)
    assert f["id"].startswith("file-") and f["bytes"] == 11 and f["filename"] == "notes.txt"
    assert f["status"] == "processed" and f["purpose"] == "assistants"
    assert rt.files.get(f["id"]) == f
    assert rt.files.content(f["id"]) == b"hello world"
    with rt.files.local_path(f["id"]) as path:
        assert path.read_bytes() == b"hello world"
        if not rt.settings.database_url:
            assert path == (data_dir / "files" / f["id"]).resolve()
    assert stored(rt) == [f["id"]]
    listed = rt.files.list()
    assert listed["object"] == "list" and [x["id"] for x in listed["data"]] == [f["id"]] and not listed["has_more"]
    assert rt.files.delete(f["id"]) == {"id": f["id"], "object": "file", "deleted": True}
    assert stored(rt) == []
    for call in (rt.files.get, rt.files.content, rt.files.chunks, rt.files.delete):
        with pytest.raises(NotFound):
            call(f["id"])
    with pytest.raises(NotFound), rt.files.local_path(f["id"]):
        pass


def test_list_by_purpose_order_and_paging_past_100(rt):
    made = [rt.files.create(f"f{i}.txt", b"x", "vision" if i % 2 else "assistants") for i in range(130)]
    everything = rt.files.list()
    assert len(everything["data"]) == 130 and everything["data"][0]["id"] == made[-1]["id"]  # newest first
    vision = rt.files.list(purpose="vision", order="asc")
    assert [x["id"] for x in vision["data"]] == [m["id"] for m in made if m["purpose"] == "vision"]
    page = rt.files.list(limit=120, order="asc")
    assert len(page["data"]) == 120 and page["has_more"] and page["last_id"] == made[119]["id"]
    rest = rt.files.list(limit=120, order="asc", after=page["last_id"])
    assert [x["id"] for x in rest["data"]] == [m["id"] for m in made[120:]] and not rest["has_more"]
    with pytest.raises(BadRequest):
        rt.files.list(limit=0)


def test_purpose_is_checked(rt):
    with pytest.raises(BadRequest, match="purpose"):
        rt.files.create("a.txt", b"x", "fine-tune")
    assert rt.files.list()["data"] == []


@pytest.mark.parametrize("name", [
    "../../x", "../../../../../../tmp/escaped-by-name.txt", "/etc/passwd", "/tmp/escaped-by-name.txt",
    "..\\..\\x.txt", "C:\\Windows\\x.txt", "a\x00b.txt", "..", ".", "", "\x00", "dir/\n\r\tname.md",
])
def test_hostile_filenames_never_leave_the_data_dir(rt, data_dir, tmp_path, name):
    before = set(Path("/tmp").iterdir())
    f = rt.files.create(name, b"payload", "assistants")
    with rt.files.local_path(f["id"]) as path:
        assert path.name.startswith(f["id"]) and path.read_bytes() == b"payload"
    assert stored(rt) == [f["id"]] and rt.files.content(f["id"]) == b"payload"
    # The only thing in the test dir is the data dir; nothing landed next to it or in /tmp.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert not (data_dir / "x").exists() and not (tmp_path / "x").exists()
    assert {p for p in Path("/tmp").iterdir() if p.name.startswith("escaped-by-name")} <= before
    shown = f["filename"]
    assert shown and "/" not in shown and "\\" not in shown and "\x00" not in shown and "\n" not in shown
    assert shown not in (".", "..")
    FileObject.model_validate(f)


def test_very_long_name_is_cut_but_keeps_its_extension(rt, data_dir):
    f = rt.files.create("a" * 10_000 + ".pdf", b"%PDF-1.4", "assistants")
    assert len(f["filename"]) <= 255 and f["filename"].endswith(".pdf")
    assert stored(rt) == [f["id"]]
    for bad in ("file-../../etc/passwd", "file-x/../../y", "../file-x", "file-x\x00", "file-" + "a" * 200):
        with pytest.raises(NotFound):  # an id that is really a path is never looked up on disk
            rt.files.content(bad)
        with pytest.raises(NotFound), rt.files.local_path(bad):
            pass


def test_size_limit_names_the_limit_and_stores_nothing(rt, data_dir):
    ok = rt.files.create("ok.bin", b"\0" * (1024 * 1024), "assistants")
    assert ok["bytes"] == 1024 * 1024
    with pytest.raises(BadRequest, match="1 MB") as err:
        rt.files.create("big.bin", b"\0" * (1024 * 1024 + 1), "assistants")
    assert err.value.code == "file_too_large" and err.value.status == 400
    with pytest.raises(BadRequest, match="1 MB"):  # a stream is cut off at the limit, not read to the end
        rt.files.create("big.bin", io.BytesIO(b"\0" * (3 * 1024 * 1024)), "assistants")
    assert [f["id"] for f in rt.files.list()["data"]] == [ok["id"]]
    assert stored(rt) == [ok["id"]]  # no partial files (or chunks) left behind


def test_stream_upload(rt):
    f = rt.files.create("s.txt", io.BytesIO(b"streamed"), "user_data")
    assert f["bytes"] == 8 and rt.files.content(f["id"]) == b"streamed"


def test_empty_file_is_accepted(rt):
    f = rt.files.create("empty.txt", b"", "assistants")
    assert f["bytes"] == 0 and rt.files.content(f["id"]) == b""


def test_attachments_and_tool_resources_must_name_existing_files(rt):
    with pytest.raises(BadRequest, match="does not exist"):
        rt.create_thread(messages=[{"role": "user", "content": "hi", "attachments": [
            {"file_id": "file-missing", "tools": [{"type": "file_search"}]}]}])
    with pytest.raises(BadRequest, match="does not exist"):
        rt.create_assistant(model="fake-model", tool_resources={"code_interpreter": {"file_ids": ["file-missing"]}})
