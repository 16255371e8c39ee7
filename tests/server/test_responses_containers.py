"""Containers through the SDK: create, list, retrieve, delete; their files; a response naming one in code_interpreter."""

from __future__ import annotations

import io
import json
import shutil
import time

import openai
import pytest
from openai.types import ContainerCreateResponse, ContainerListResponse
from openai.types.containers import FileCreateResponse

from tests.server.test_responses_contract import check


def _file(client, name: str = "d.csv", data: bytes = b"x\n1\n2\n"):
    return client.files.create(file=(name, io.BytesIO(data), "text/plain"), purpose="assistants")


def test_container_life_cycle_and_files(api, client):
    data = _file(client)
    c = client.containers.create(name="scratch", file_ids=[data.id], expires_after={"anchor": "last_active_at",
                                                                                    "minutes": 20})
    check(ContainerCreateResponse, client.get(f"/containers/{c.id}", cast_to=object))
    assert c.id.startswith("cntr_") and c.name == "scratch" and c.expires_after.minutes == 20
    listed = [x.id for x in client.containers.list()]
    assert c.id in listed
    for item in client.get("/containers", cast_to=object)["data"]:
        check(ContainerListResponse, item)
    assert [f.path for f in client.containers.files.list(c.id)] == ["/mnt/data/d.csv"]
    made = client.containers.files.create(c.id, file=("notes.txt", io.BytesIO(b"hello"), "text/plain"))
    check(FileCreateResponse, made.model_dump(mode="json"))
    assert made.path == "/mnt/data/notes.txt" and made.source == "user" and made.bytes == 5
    other = _file(client, "more.txt", b"more")
    client.containers.files.create(c.id, file_id=other.id)
    paths = sorted(f.path for f in client.containers.files.list(c.id))
    assert paths == ["/mnt/data/d.csv", "/mnt/data/more.txt", "/mnt/data/notes.txt"]
    assert client.containers.files.content.retrieve(made.id, container_id=c.id).read() == b"hello"
    client.containers.files.delete(other.id, container_id=c.id)
    assert client.files.retrieve(other.id).id == other.id  # a given file leaves the container, not the server
    with pytest.raises(openai.NotFoundError):
        client.containers.files.retrieve(other.id, container_id=c.id)
    client.containers.delete(c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(c.id)
    assert c.id not in [x.id for x in client.containers.list()]


def test_bad_container_parameters_are_400s_and_store_nothing(api, client):
    before = len(api.rt.store.all("threads"))
    data = _file(client)
    bad = [({"name": 5}, "name"), ({}, "name"), ({"name": "x", "file_ids": ["file-nope"]}, "file_ids"),
           ({"name": "x", "file_ids": "file-1"}, "file_ids"), ({"name": "x", "bogus": 1}, "bogus"),
           ({"name": "x", "expires_after": {"anchor": "created_at", "minutes": 5}}, "expires_after"),
           ({"name": "x", "expires_after": {"anchor": "last_active_at", "minutes": 0}}, "expires_after.minutes"),
           ({"name": "x", "memory_limit": "2g"}, "memory_limit"),
           ({"name": "x", "network_policy": {"type": "allowlist", "allowed_domains": ["a.b"]}}, "network_policy"),
           ({"name": "x", "skills": [{"type": "skill_reference", "skill_id": "s"}]}, "skills")]
    for body, param in bad:
        with pytest.raises(openai.BadRequestError) as err:
            client.post("/containers", body=body, cast_to=object)
        assert err.value.body["param"] == param, body
    assert len(api.rt.store.all("threads")) == before
    c = client.containers.create(name="ok")
    files_before = len(client.files.list().data)
    for kwargs in ({"file_id": "file-nope"}, {}):
        with pytest.raises(openai.BadRequestError) as err:
            client.containers.files.create(c.id, **kwargs)
        assert err.value.body["param"] == "file_id"
    with pytest.raises(openai.NotFoundError):
        client.containers.files.create("cntr_nope", file=("a.txt", io.BytesIO(b"a"), "text/plain"))
    with pytest.raises(openai.NotFoundError):
        client.containers.files.create("cntr_nope", file_id=data.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.files.delete("file-nope", container_id=c.id)
    with pytest.raises(openai.NotFoundError):
        client.containers.delete("cntr_nope")
    assert len(client.files.list().data) == files_before
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x",
                                tools=[{"type": "code_interpreter", "container": "cntr_nope"}])
    assert err.value.body["param"] == "tools[0].container"
    client.containers.delete(c.id)


def test_a_threads_session_is_emptied_not_deleted(api, client, fake):
    data = _file(client)
    fake.add({"text": "ok"})
    r = client.responses.create(model="gpt-4o-mini", input="hi", tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}])
    from tests.server.test_responses_contract import container_of

    cid = container_of(api, r.id)
    assert [f.id for f in client.containers.files.list(cid)] == [data.id]
    assert cid not in [x.id for x in client.containers.list()]  # a thread's session is not listed
    client.containers.delete(cid)
    assert client.containers.files.list(cid).data == []
    assert client.responses.retrieve(r.id).status == "completed"  # the conversation stays


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_responses_naming_a_container_share_its_session_and_files(api, client, fake):
    data = _file(client)
    c = client.containers.create(name="shared", file_ids=[data.id])
    tool = {"type": "code_interpreter", "container": c.id}
    first = "import pandas as pd\ntotal = int(pd.read_csv('/mnt/data/d.csv').x.sum())\n" \
            "open('/mnt/data/total.txt', 'w').write(str(total))\nprint(total)"
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": first}))]},
             {"text": "Saved [total](sandbox:/mnt/data/total.txt)."})
    r1 = client.responses.create(model="gpt-4o-mini", input="sum", tools=[tool], include=["code_interpreter_call.outputs"])
    assert r1.output[0].container_id == c.id and r1.output[0].outputs[0].logs.strip() == "3"
    note = r1.output[-1].content[0].annotations[0]
    assert note.type == "container_file_citation" and note.container_id == c.id
    assert r1.tools[0].container == c.id
    # A second, unrelated response (its own thread) sees the variable and the written file: one session.
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(total, open('/mnt/data/total.txt').read())"}))]},
             {"text": "still 3"})
    r2 = client.responses.create(model="gpt-4o-mini", input="again", tools=[tool], include=["code_interpreter_call.outputs"])
    assert r2.output[0].outputs[0].logs.strip() == "3 3"
    files = {f.path: f.source for f in client.containers.files.list(c.id)}
    assert files == {"/mnt/data/d.csv": "user", "/mnt/data/total.txt": "assistant"}
    assert client.containers.retrieve(c.id).last_active_at >= c.created_at
    client.containers.delete(c.id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(note.file_id)  # what its code wrote goes with it


def _idle_for(api, cntr_id: str, seconds: int) -> None:
    """Move a container's last activity back in time (what waiting that long would leave in the store)."""
    thread = api.rt.get_thread("thread_" + cntr_id.removeprefix("cntr_"))
    meta = {**thread["metadata"], "last_active_at": str(int(time.time()) - seconds)}
    api.rt.update_thread(thread["id"], metadata=meta)


def test_an_idle_container_expires_and_is_refused(api, client, fake):
    data = _file(client)
    c = client.containers.create(name="brief", file_ids=[data.id],
                                 expires_after={"anchor": "last_active_at", "minutes": 1})
    made = client.containers.files.create(c.id, file=("notes.txt", io.BytesIO(b"hello"), "text/plain"))
    _idle_for(api, c.id, 30)
    assert client.containers.retrieve(c.id).status == "running"  # not idle long enough yet
    _idle_for(api, c.id, 61)
    got = client.containers.retrieve(c.id)
    assert got.status == "expired"
    assert next(x for x in client.containers.list() if x.id == c.id).status == "expired"
    thread = api.rt.get_thread("thread_" + c.id.removeprefix("cntr_"))
    assert thread["tool_resources"]["code_interpreter"]["file_ids"] == []  # its files are gone
    for call in (lambda: client.containers.files.list(c.id),
                 lambda: client.containers.files.retrieve(made.id, container_id=c.id),
                 lambda: client.containers.files.content.retrieve(made.id, container_id=c.id),
                 lambda: client.containers.files.create(c.id, file_id=data.id)):
        with pytest.raises(openai.BadRequestError) as err:
            call()
        assert err.value.code == "container_expired" and "Create a new container" in err.value.body["message"]
    threads, runs = api.rt.store.count("threads"), api.rt.store.count("runs")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{"type": "code_interpreter", "container": c.id}])
    assert err.value.body["param"] == "tools[0].container" and err.value.code == "container_expired"
    assert (api.rt.store.count("threads"), api.rt.store.count("runs")) == (threads, runs)
    client.containers.delete(c.id)  # an expired container can still be deleted
    with pytest.raises(openai.NotFoundError):
        client.containers.retrieve(c.id)


def test_a_container_without_expires_after_never_expires(api, client):
    c = client.containers.create(name="forever")
    _idle_for(api, c.id, 10 * 24 * 3600)
    assert client.containers.retrieve(c.id).status == "running"
    client.containers.delete(c.id)


def test_memory_limit_is_checked_where_a_container_is_named(api, client):
    threads = api.rt.store.count("threads")
    for limit in ("2g", 4, ""):
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model="gpt-4o-mini", input="x", tools=[
                {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": limit}}])
        assert err.value.body["param"] == "tools[0].container.memory_limit"
        assert "1g, 4g, 16g, 64g" in err.value.body["message"]
    assert api.rt.store.count("threads") == threads


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_memory_limit_is_the_sessions_memory_budget(api, client, fake):
    from tests.tools.test_code_interpreter_budget import cgroups_here, control

    if not cgroups_here():
        pytest.skip("needs a writable cgroup hierarchy (root)")
    c = client.containers.create(name="big", memory_limit="4g")
    assert c.memory_limit == "4g"
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(1)"}))]}, {"text": "1"})
    client.responses.create(model="gpt-4o-mini", input="one", tools=[{"type": "code_interpreter", "container": c.id}])
    group = api.rt.code_interpreter._sessions["thread_" + c.id.removeprefix("cntr_")].cgroup
    limit = "memory.max" if group.version == 2 else "memory.limit_in_bytes"
    assert int(control(group, "memory", limit)) == 4096 * 1024 * 1024
    # The auto container of a response: its memory_limit budgets that thread's session, capped by the operator
    # (PLAYGROUND_CODE_MEMORY_MAX_MB, 4096 by default): "16g" does not give one session 16 GB of this host.
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(2)"}))]}, {"text": "2"})
    r = client.responses.create(model="gpt-4o-mini", input="two", tools=[
        {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "16g"}}])
    group = api.rt.code_interpreter._sessions[api.rt.store.get_response(r.id)["thread_id"]].cgroup
    assert int(control(group, "memory", limit)) == api.rt.settings.code_memory_max_mb * 1024 * 1024 == 4096 * 1024 ** 2
    # Without one, the server's budget (PLAYGROUND_CODE_MEMORY_MB).
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(3)"}))]}, {"text": "3"})
    r = client.responses.create(model="gpt-4o-mini", input="three", tools=[{"type": "code_interpreter"}])
    group = api.rt.code_interpreter._sessions[api.rt.store.get_response(r.id)["thread_id"]].cgroup
    assert int(control(group, "memory", limit)) == api.rt.settings.code_memory_mb * 1024 * 1024
    client.containers.delete(c.id)
