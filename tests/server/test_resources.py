"""Assistants, threads, messages and models through the real openai SDK: CRUD, pagination, order, metadata."""

from __future__ import annotations

import openai
import pytest


def test_assistant_crud(client):
    created = client.beta.assistants.create(
        model="gpt-4o-mini", name="Investing Bot", instructions="You are an expert in calculating investments.",
        tools=[{"type": "code_interpreter"}, {"type": "function", "function": {"name": "lookup", "parameters": {
            "type": "object", "properties": {"q": {"type": "string"}}}}}],
        metadata={"team": "a"}, temperature=0.2, top_p=0.9, response_format={"type": "json_object"})
    assert created.id.startswith("asst_") and created.object == "assistant"
    assert [t.type for t in created.tools] == ["code_interpreter", "function"]
    assert created.temperature == 0.2 and created.response_format.type == "json_object"

    got = client.beta.assistants.retrieve(created.id)
    assert got == created

    changed = client.beta.assistants.update(created.id, name="Renamed", metadata={"team": "b"})
    assert changed.name == "Renamed" and changed.metadata == {"team": "b"}
    assert changed.instructions == created.instructions  # untouched fields stay

    deleted = client.beta.assistants.delete(created.id)
    assert deleted.deleted and deleted.id == created.id and deleted.object == "assistant.deleted"
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.retrieve(created.id)


def test_assistant_pagination_and_order(client):
    ids = [client.beta.assistants.create(model="gpt-4o-mini", name=f"page-{i}").id for i in range(5)]
    desc = client.beta.assistants.list(limit=100)
    mine = [a.id for a in desc.data if a.id in ids]
    assert mine == ids[::-1]  # newest first by default

    asc = client.beta.assistants.list(order="asc", limit=2, after=ids[0])
    assert [a.id for a in asc.data] == ids[1:3] and asc.has_more
    assert asc.first_id == ids[1] and asc.last_id == ids[2]

    before = client.beta.assistants.list(order="asc", limit=2, before=ids[4])
    assert [a.id for a in before.data] == ids[2:4]

    # The SDK's auto-pagination follows `after` cursors to the end.
    walked = [a.id for a in client.beta.assistants.list(order="asc", limit=2, after=ids[0])]
    assert walked[:4] == ids[1:]


def test_thread_with_messages_and_metadata(client):
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "first"},
                  {"role": "assistant", "content": [{"type": "text", "text": "second"}], "metadata": {"k": "v"}}],
        metadata={"user": "42"})
    assert thread.id.startswith("thread_") and thread.metadata == {"user": "42"}
    listed = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
    assert [m.content[0].text.value for m in listed.data] == ["first", "second"]
    assert listed.data[1].metadata == {"k": "v"} and listed.data[1].role == "assistant"

    assert client.beta.threads.update(thread.id, metadata={"user": "43"}).metadata == {"user": "43"}
    assert client.beta.threads.retrieve(thread.id).metadata == {"user": "43"}
    assert client.beta.threads.delete(thread.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)


def test_message_crud(client):
    thread = client.beta.threads.create()
    msg = client.beta.threads.messages.create(thread_id=thread.id, role="user", content="hello", metadata={"a": "1"})
    assert msg.id.startswith("msg_") and msg.thread_id == thread.id and msg.status == "completed"
    assert client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id) == msg
    # Modify without metadata keeps it; with metadata replaces it.
    assert client.beta.threads.messages.update(msg.id, thread_id=thread.id).metadata == {"a": "1"}
    assert client.beta.threads.messages.update(msg.id, thread_id=thread.id, metadata={"b": "2"}).metadata == {"b": "2"}
    assert client.beta.threads.messages.delete(msg.id, thread_id=thread.id).deleted
    assert client.beta.threads.messages.list(thread_id=thread.id).data == []
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)


def test_messages_list_filters_by_run(client, fake):
    assistant = client.beta.assistants.create(model="gpt-4o-mini")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "one"}])
    run1 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="two")
    run2 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    only1 = client.beta.threads.messages.list(thread_id=thread.id, run_id=run1.id)
    only2 = client.beta.threads.messages.list(thread_id=thread.id, run_id=run2.id)
    assert [m.content[0].text.value for m in only1.data] == ["echo: one"]
    assert [m.content[0].text.value for m in only2.data] == ["echo: two"]
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 4


def test_models_list_has_backends_and_aliases(client):
    models = {m.id: m for m in client.models.list()}
    assert "fake-model" in models and models["fake-model"].owned_by == "fake"
    assert models["gpt-4o-mini"].owned_by == "alias of fake-model"
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    with pytest.raises(openai.BadRequestError, match="not supported"):
        client.models.delete("fake-model")
