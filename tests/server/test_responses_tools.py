"""Built-in tools through /v1/responses: file_search and code_interpreter output items, images in the input."""

from __future__ import annotations

import base64
import io
import json
import shutil

import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

STREAM_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def test_file_search_call_with_results_and_citation(client, fake):
    f = client.files.create(file=("notes.txt", io.BytesIO(b"The sky over the harbour is blue."), "text/plain"),
                            purpose="assistants")
    vs = client.vector_stores.create(name="kb")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    fake.add({"tool_calls": [("file_search", '{"query": "sky colour"}')]}, {"text": "It is blue 【0†notes.txt】."})
    tool = {"type": "file_search", "vector_store_ids": [vs.id], "max_num_results": 3}
    r = client.responses.create(model="gpt-4o-mini", input="What colour is the sky?", tools=[tool],
                                include=["file_search_call.results"])
    assert [o.type for o in r.output] == ["file_search_call", "message"]
    call = r.output[0]
    assert call.status == "completed" and call.queries == ["sky colour"]
    assert call.results[0].filename == "notes.txt" and "blue" in call.results[0].text
    note = r.output[1].content[0].annotations[0]
    assert note.type == "file_citation" and note.file_id == f.id and note.filename == "notes.txt"
    assert "blue" in next(m for m in fake.requests[-1]["messages"] if m["role"] == "tool")["content"]
    fake.add({"tool_calls": [("file_search", '{"query": "harbour"}')]}, {"text": "Blue."})
    plain = client.responses.create(model="gpt-4o-mini", input="again", tools=[tool])
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None  # not included
    later = client.responses.retrieve(plain.id, include=["file_search_call.results"])
    assert later.output[0].results[0].filename == "notes.txt"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_code_interpreter_call_streams_code_and_outputs(api, client, fake):
    data = client.files.create(file=("data.csv", io.BytesIO(b"x\n1\n2\n3\n"), "text/plain"), purpose="assistants")
    code = "import pandas as pd\nprint(pd.read_csv('/mnt/data/data.csv').x.sum())"
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]}, {"text": "The sum is 6."})
    tool = {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [data.id]}}
    events = []
    with client.responses.stream(model="gpt-4o-mini", input="Sum x", tools=[tool],
                                 include=["code_interpreter_call.outputs"]) as stream:
        for event in stream:
            events.append(event)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    for name in ("response.code_interpreter_call.in_progress", "response.code_interpreter_call_code.delta",
                 "response.code_interpreter_call_code.done", "response.code_interpreter_call.interpreting",
                 "response.code_interpreter_call.completed"):
        assert name in kinds
    call = final.output[0]
    assert call.type == "code_interpreter_call" and call.code == code and call.status == "completed"
    assert call.outputs[0].type == "logs" and call.outputs[0].logs.strip() == "6"
    assert call.container_id.startswith("cntr_") and final.output_text == "The sum is 6."
    for event in events:
        STREAM_EVENT.validate_python(event.model_dump(mode="json", exclude_unset=True, warnings=False))
    Response.model_validate(client.get(f"/responses/{final.id}", cast_to=object))


def test_image_input_reaches_the_model(client, fake):
    image = {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "low"}
    r = client.responses.create(model="gpt-4o-mini", input=[
        {"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, image]}])
    assert r.status == "completed"
    parts = fake.requests[-1]["messages"][-1]["content"]
    assert parts[0]["text"].startswith("What is this?")
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")
    items = client.responses.input_items.list(r.id).data
    assert items[0].content[1].type == "input_image"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_a_file_the_code_wrote_is_a_container_file_citation(client, fake):
    code = "open('/mnt/data/out.csv', 'w').write('a,b\\n1,2\\n')\nprint('written')"
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": code}))]},
             {"text": "Download [out.csv](sandbox:/mnt/data/out.csv)."})
    r = client.responses.create(model="gpt-4o-mini", input="write a csv", tools=[{"type": "code_interpreter"}])
    note = r.output[-1].content[0].annotations[0]
    assert note.type == "container_file_citation" and note.filename == "out.csv"
    assert note.container_id == r.output[0].container_id
    assert r.output_text[note.start_index:note.end_index] == "sandbox:/mnt/data/out.csv"
    assert client.files.content(note.file_id).read() == b"a,b\n1,2\n"
    files = client.containers.files.list(note.container_id).data
    assert [(f.path, f.source) for f in files] == [("/mnt/data/out.csv", "assistant")]
    got = client.containers.files.content.retrieve(note.file_id, container_id=note.container_id).read()
    assert got == b"a,b\n1,2\n"


def test_file_search_filters_keep_matching_files(client, fake):
    vs = client.vector_stores.create(name="teams")
    for team in ("red", "blue"):
        f = client.files.create(file=(f"{team}.txt", io.BytesIO(f"The {team} team meets on Mondays.".encode()),
                                      "text/plain"), purpose="assistants")
        client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id, attributes={"team": team})
    tool = {"type": "file_search", "vector_store_ids": [vs.id], "filters": {"type": "eq", "key": "team", "value": "blue"}}
    fake.add({"tool_calls": [("file_search", '{"query": "team meets Mondays"}')]}, {"text": "Mondays."})
    r = client.responses.create(model="gpt-4o-mini", input="When?", tools=[tool], include=["file_search_call.results"])
    assert [x.filename for x in r.output[0].results] == ["blue.txt"]
    assert "red" not in next(m for m in fake.requests[-1]["messages"] if m["role"] == "tool")["content"]
    assert r.tools[0].filters.value == "blue"
    fake.add({"tool_calls": [("file_search", '{"query": "team meets Mondays"}')]}, {"text": "Mondays."})
    plain = client.responses.create(model="gpt-4o-mini", input="When?", include=["file_search_call.results"],
                                    tools=[{"type": "file_search", "vector_store_ids": [vs.id]}])
    assert sorted(x.filename for x in plain.output[0].results) == ["blue.txt", "red.txt"]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input="x", tools=[{**tool, "filters": {"type": "like", "key": "t"}}])
    assert err.value.body["param"] == "tools[0].filters"


def test_input_file_parts_reach_the_model_as_text(client, fake):
    f = client.files.create(file=("menu.md", io.BytesIO(b"# Menu\nSoup of the day: tomato."), "text/plain"),
                            purpose="user_data")
    inline = base64.b64encode(b"Opening hours: 9 to 5.").decode()
    r = client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Summarise."}, {"type": "input_file", "file_id": f.id},
        {"type": "input_file", "filename": "hours.txt", "file_data": f"data:text/plain;base64,{inline}"}]}])
    assert r.status == "completed"
    sent = fake.requests[-1]["messages"][-1]["content"]
    assert "Soup of the day: tomato." in sent and "Opening hours: 9 to 5." in sent
    echoed = client.responses.input_items.list(r.id).data[0].content
    assert [p.type for p in echoed] == ["input_text", "input_file", "input_file"] and echoed[1].filename == "menu.md"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="gpt-4o-mini", input=[{"role": "user", "content": [
            {"type": "input_file", "file_url": "https://example.com/a.pdf"}]}])
    assert err.value.body["param"] == "input[0].content[0].file_url"


def test_file_search_streams_its_call_events(client, fake):
    f = client.files.create(file=("a.txt", io.BytesIO(b"Ferries leave at noon."), "text/plain"), purpose="assistants")
    vs = client.vector_stores.create(name="ferries")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    fake.add({"tool_calls": [("file_search", '{"query": "ferries"}')]}, {"text": "At noon."})
    with client.responses.stream(model="gpt-4o-mini", input="When?", include=["file_search_call.results"],
                                 tools=[{"type": "file_search", "vector_store_ids": [vs.id]}]) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    order = ["response.output_item.added", "response.file_search_call.in_progress", "response.file_search_call.searching",
             "response.file_search_call.completed", "response.output_item.done"]
    assert kinds[2:7] == order
    done = events[6].item
    assert done.type == "file_search_call" and done.queries == ["ferries"] and done.results[0].filename == "a.txt"
    assert kinds[-1] == "response.completed" and events[-1].response.output[0].id == done.id
    for event in events:
        STREAM_EVENT.validate_python(event.model_dump(mode="json", exclude_unset=True, warnings=False))
