"""Files and vector stores through the SDK, over the runtime's services."""

from __future__ import annotations

import io

import openai
import pytest

from tests.server.conftest import running_api


def upload(client, name: str, text: str, purpose: str = "assistants"):
    return client.files.create(file=(name, io.BytesIO(text.encode()), "text/plain"), purpose=purpose)


def test_file_upload_list_retrieve_content_delete(client):
    created = upload(client, "notes.txt", "hello file")
    assert created.id.startswith("file-") and created.filename == "notes.txt" and created.bytes == 10
    assert created.purpose == "assistants" and created.object == "file"
    assert client.files.retrieve(created.id) == created
    assert client.files.content(created.id).read() == b"hello file"
    assert created.id in [f.id for f in client.files.list()]
    assert created.id in [f.id for f in client.files.list(purpose="assistants")]
    assert created.id not in [f.id for f in client.files.list(purpose="vision")]
    assert client.files.delete(created.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(created.id)


def test_file_upload_bad_input(api, client):
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, "x.txt", "x", purpose="nonsense")
    assert err.value.body["param"] == "purpose"
    with pytest.raises(openai.BadRequestError, match="expires_after"):
        client.files.create(file=("x.txt", b"x"), purpose="assistants",
                            expires_after={"anchor": "created_at", "seconds": 3600})
    import httpx2

    response = httpx2.post(f"{api.base_url}/files", headers={"Authorization": f"Bearer {api.key}"},
                           json={"purpose": "assistants"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"
    response = httpx2.post(f"{api.base_url}/files", headers={"Authorization": f"Bearer {api.key}"},
                           files={"file": ("a.txt", b"a")})
    assert response.status_code == 400 and response.json()["error"]["param"] == "purpose"


def test_vector_store_crud_and_search(client):
    a = upload(client, "cats.txt", "cats purr and cats sleep")
    b = upload(client, "dogs.txt", "dogs bark")
    vs = client.vector_stores.create(name="pets", file_ids=[a.id], metadata={"kind": "pets"})
    assert vs.id.startswith("vs_") and vs.name == "pets" and vs.file_counts.total == 1
    vs_file = client.vector_stores.files.create_and_poll(file_id=b.id, vector_store_id=vs.id)
    assert vs_file.status == "completed" and vs_file.vector_store_id == vs.id
    assert client.vector_stores.files.retrieve(b.id, vector_store_id=vs.id).status == "completed"
    assert {f.id for f in client.vector_stores.files.list(vector_store_id=vs.id)} == {a.id, b.id}
    assert {f.id for f in client.vector_stores.files.list(vector_store_id=vs.id, filter="completed")} <= {a.id, b.id}

    raw = client.vector_stores.with_raw_response.retrieve(vs.id)
    assert raw.headers["openai-poll-after-ms"] == "25" and raw.parse().id == vs.id
    assert client.vector_stores.update(vs.id, name="animals").name == "animals"
    assert vs.id in [v.id for v in client.vector_stores.list()]

    hits = client.vector_stores.search(vs.id, query="cats")
    assert hits.data[0].filename == "cats.txt" and hits.data[0].content[0].text.startswith("cats")

    assert client.vector_stores.files.delete(b.id, vector_store_id=vs.id).deleted
    assert client.vector_stores.files.update(a.id, vector_store_id=vs.id, attributes={"x": "y"}).attributes == {"x": "y"}
    assert [p.text for p in client.vector_stores.files.content(a.id, vector_store_id=vs.id)] == ["cats purr and cats sleep"]
    assert client.vector_stores.delete(vs.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(vs.id)


def test_file_batches_upload_and_poll(client):
    vs = client.vector_stores.create(name="batch")
    files = [("a.txt", io.BytesIO(b"alpha")), ("b.txt", io.BytesIO(b"beta")), ("c.txt", io.BytesIO(b"gamma"))]
    batch = client.vector_stores.file_batches.upload_and_poll(vector_store_id=vs.id, files=files)
    assert batch.status == "completed" and batch.file_counts.completed == 3 and batch.file_counts.total == 3
    assert client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=vs.id).id == batch.id
    listed = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=vs.id)
    assert len(listed.data) == 3

    extra = upload(client, "d.txt", "delta")
    second = client.vector_stores.file_batches.create(vector_store_id=vs.id, files=[{"file_id": extra.id}])
    try:
        assert client.vector_stores.file_batches.cancel(second.id, vector_store_id=vs.id).status == "cancelled"
    except openai.BadRequestError as exc:  # indexing one small file may finish before the cancel arrives
        assert "Cannot cancel" in exc.message
    with pytest.raises(openai.BadRequestError) as err:
        client.vector_stores.file_batches.create(vector_store_id=vs.id, file_ids=[])
    assert err.value.body["param"] == "file_ids"


def test_assistant_tool_resources_reference_vector_store(client):
    vs = client.vector_stores.create(name="kb")
    assistant = client.beta.assistants.create(model="gpt-4o-mini", tools=[{"type": "file_search"}],
                                              tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    assert assistant.tool_resources.file_search.vector_store_ids == [vs.id]
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.assistants.create(model="gpt-4o-mini",
                                      tool_resources={"file_search": {"vector_store_ids": ["vs_missing"]}})
    assert err.value.body["param"] == "tool_resources.file_search.vector_store_ids"


def test_thread_inline_vector_store_and_file_search_attachments(api, client):
    doc = upload(client, "faq.txt", "refunds take five days")
    thread = client.beta.threads.create(tool_resources={"file_search": {"vector_stores": [{"file_ids": [doc.id]}]}})
    (vs_id,) = thread.tool_resources.file_search.vector_store_ids
    assert client.vector_stores.retrieve(vs_id).file_counts.total == 1

    other = client.beta.threads.create()
    client.beta.threads.messages.create(thread_id=other.id, role="user", content="see file",
                                        attachments=[{"file_id": doc.id, "tools": [{"type": "file_search"}]}])
    assert client.beta.threads.retrieve(other.id).tool_resources.file_search.vector_store_ids
    with pytest.raises(openai.BadRequestError) as err:
        client.beta.threads.messages.create(thread_id=other.id, role="user", content="x",
                                            attachments=[{"file_id": "file-missing", "tools": [{"type": "file_search"}]}])
    assert err.value.body["param"] == "attachments"


def test_not_installed_services_answer_400(tmp_path):
    with running_api(tmp_path) as api:
        api.rt.files = api.rt.vector_stores = None
        client = api.client()
        with pytest.raises(openai.BadRequestError, match="not installed") as err:
            client.files.list()
        assert err.value.status_code == 400 and err.value.body["code"] == "feature_not_installed"
        with pytest.raises(openai.BadRequestError, match="not installed"):
            upload(client, "a.txt", "a")
        with pytest.raises(openai.BadRequestError, match="Vector stores are not installed"):
            client.vector_stores.create(name="x")
        with pytest.raises(openai.BadRequestError, match="not installed"):
            client.vector_stores.file_batches.retrieve("vsfb_1", vector_store_id="vs_1")
