"""Versions of a conversation (assistants/branches.py, store/versions.py): archive a tail, flip back, whole messages."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from assistants import branches
from assistants.errors import APIError, NotFound
from assistants.ids import new_id
from assistants.runtime import list_every
from tests.conftest import wait_run

pytestmark = pytest.mark.both_databases


def _reply(rt, thread_id: str, content, run_id: str | None = None) -> dict:
    """An assistant message as a run writes it (the store's own insert: any content a run can produce)."""
    msg = {"id": new_id("msg"), "object": "thread.message", "created_at": int(time.time()), "thread_id": thread_id,
           "role": "assistant", "content": content, "assistant_id": "asst_x", "run_id": run_id or new_id("run"),
           "attachments": [], "metadata": {}, "status": "completed"}
    rt.store.insert("messages", msg)
    return msg


def _text(value: str, annotations: list | None = None) -> dict:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def _ids(rt, thread_id: str) -> list[str]:
    return [m["id"] for m in list_every(rt.list_messages, thread_id=thread_id)][::-1]


def _conversation(rt):
    """A thread: you, a reply, you, a reply (ids in order)."""
    thread = rt.create_thread()
    u1 = rt.create_message(thread["id"], role="user", content="first question")
    a1 = _reply(rt, thread["id"], [_text("first answer")])
    u2 = rt.create_message(thread["id"], role="user", content="second question")
    a2 = _reply(rt, thread["id"], [_text("second answer")])
    return thread["id"], [u1, a1, u2, a2]


def test_regenerating_an_older_reply_archives_the_later_turns_and_flipping_brings_them_back(rt):
    thread_id, (u1, a1, u2, a2) = _conversation(rt)
    point, number = branches.archive_from(rt, thread_id, a1["id"])
    assert (point, number) == (u1["id"], 1)
    # The thread is what the model sees: the archived tail is not listed, not counted, not in the thread list.
    assert _ids(rt, thread_id) == [u1["id"]]
    summary = next(s for s in rt.store.thread_summaries() if s["id"] == thread_id)
    assert summary["messages"] == 1
    found = branches.versions_of(rt, thread_id)
    assert found.points == {u1["id"]: (2, 2)}
    assert {a1["run_id"], a2["run_id"]} <= found.archived_runs

    new = _reply(rt, thread_id, [_text("another first answer")])
    assert branches.flip(rt, thread_id, u1["id"], 1)
    # Back as they were: same ids, same order, the later turns too; the new reply is archived as version 2.
    assert _ids(rt, thread_id) == [u1["id"], a1["id"], u2["id"], a2["id"]]
    assert rt.get_message(thread_id, a2["id"]) == a2
    assert branches.versions_of(rt, thread_id).points == {u1["id"]: (1, 2)}
    assert branches.versions_of(rt, thread_id).archived_runs == {new["run_id"]}
    assert not branches.flip(rt, thread_id, u1["id"], 1)  # already shown (another tab flipped first): nothing moves
    assert _ids(rt, thread_id) == [u1["id"], a1["id"], u2["id"], a2["id"]]

    assert branches.flip(rt, thread_id, u1["id"], 2)
    assert _ids(rt, thread_id) == [u1["id"], new["id"]]
    # New messages go after the restored ones, whatever their ids.
    later = rt.create_message(thread_id, role="user", content="and then?")
    assert _ids(rt, thread_id) == [u1["id"], new["id"], later["id"]]


def test_editing_the_first_message_archives_the_whole_thread_and_versions_nest(rt):
    thread_id, (u1, a1, u2, a2) = _conversation(rt)
    branches.archive_from(rt, thread_id, a2["id"])  # regenerate the last reply: a version at u2
    b2 = _reply(rt, thread_id, [_text("second answer, again")])
    assert branches.archive_from(rt, thread_id, u1["id"]) == ("", 1)  # edit the first message: all of it archived
    assert _ids(rt, thread_id) == []
    edited = rt.create_message(thread_id, role="user", content="first question, edited")
    assert branches.versions_of(rt, thread_id).points == {"": (2, 2), u2["id"]: (2, 2)}
    assert branches.flip(rt, thread_id, "", 1)
    assert _ids(rt, thread_id) == [u1["id"], a1["id"], u2["id"], b2["id"]]
    assert branches.flip(rt, thread_id, u2["id"], 1)  # the version inside the restored tail still flips
    assert _ids(rt, thread_id) == [u1["id"], a1["id"], u2["id"], a2["id"]]
    assert branches.flip(rt, thread_id, "", 2)
    assert _ids(rt, thread_id) == [edited["id"]]


def test_long_replies_images_attachments_and_conversation_items_are_kept_whole(rt):
    thread = rt.create_thread()
    image = rt.files.create("plot.png", b"\x89PNG\r\n\x1a\n" + b"0" * 64, "vision")
    doc = rt.files.create("notes.txt", b"notes", "assistants")
    u1 = rt.create_message(thread["id"], role="user", content=[{"type": "text", "text": "draw it"},
                                                                {"type": "image_file", "image_file": {"file_id": image["id"]}}],
                           attachments=[{"file_id": doc["id"], "tools": [{"type": "file_search"}]}])
    long_text = "".join(f"line {i}: {'é' * 40}\n" for i in range(1500))  # ~75k characters
    cite = {"type": "file_citation", "text": "【4:0†notes.txt】", "start_index": 5, "end_index": 20,
            "file_citation": {"file_id": doc["id"]}}
    a1 = _reply(rt, thread["id"], [_text(long_text, [cite]), {"type": "image_file", "image_file": {"file_id": image["id"]}}])
    item = {"id": "msg_item_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]}
    rt.store.save_conversation_item(thread["id"], a1["id"], item)

    branches.archive_from(rt, thread["id"], u1["id"])
    assert rt.store.conversation_items(thread["id"]) == {}
    archived = rt.store.archived_tail(thread["id"], "", 1)
    assert archived == [u1, a1]
    rt.create_message(thread["id"], role="user", content="something else")
    assert branches.flip(rt, thread["id"], "", 1)
    assert rt.get_message(thread["id"], u1["id"]) == u1
    assert rt.get_message(thread["id"], a1["id"]) == a1
    assert len(a1["content"][0]["text"]["value"]) == len(long_text) > 70_000
    assert rt.store.conversation_items(thread["id"]) == {a1["id"]: item}


def test_versions_go_with_their_thread(rt):
    thread_id, (u1, a1, _u2, _a2) = _conversation(rt)
    branches.archive_from(rt, thread_id, a1["id"])
    assert rt.store.message_versions(thread_id)
    rt.delete_thread(thread_id)
    assert rt.store.message_versions(thread_id) == []
    assert rt.store.archived_tail(thread_id, u1["id"], 1) is None


def test_no_versions_while_a_run_works_and_unknown_messages_are_404(rt, provider):
    thread_id, (u1, a1, _u2, _a2) = _conversation(rt)
    with pytest.raises(NotFound):
        branches.archive_from(rt, thread_id, "msg_nope")
    branches.archive_from(rt, thread_id, a1["id"])
    provider.add({"text": "slow", "delay": 30})
    assistant = rt.create_assistant(model="fake-model")
    run = rt.create_run(thread_id, assistant_id=assistant["id"])
    for attempt in (lambda: branches.archive_from(rt, thread_id, u1["id"]),
                    lambda: branches.flip(rt, thread_id, u1["id"], 1)):
        with pytest.raises(APIError) as refused:
            attempt()
        assert refused.value.code == "run_active" and "Wait for it to finish" in refused.value.message
    assert _ids(rt, thread_id) == [u1["id"]]  # nothing moved
    rt.cancel_run(thread_id, run["id"])
    wait_run(rt, thread_id, run["id"])
    assert branches.flip(rt, thread_id, u1["id"], 1)


def _flip_often(data_dir: str, thread_id: str, point: str, rounds: int) -> None:
    from assistants.providers.router import ModelRouter
    from assistants.runtime import Runtime
    from tests.conftest import make_settings
    from tests.fakes.provider import ScriptedProvider

    rt = Runtime(make_settings(data_dir), router=ModelRouter([ScriptedProvider()]))
    try:
        for _ in range(rounds):
            current, total = branches.versions_of(rt, thread_id).points[point]
            branches.flip(rt, thread_id, point, current % total + 1)  # may find another process flipped first
    finally:
        rt.close()


def test_two_processes_flipping_at_once_lose_no_tail(rt, tmp_path):
    thread_id, (u1, a1, u2, a2) = _conversation(rt)
    branches.archive_from(rt, thread_id, a1["id"])
    b1 = _reply(rt, thread_id, [_text("other answer")])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_flip_often, args=(str(tmp_path), thread_id, u1["id"], 25)) for _ in range(2)]
    [p.start() for p in procs]
    [p.join(120) for p in procs]
    assert all(p.exitcode == 0 for p in procs)
    tails = {tuple(_ids(rt, thread_id)[1:])}
    current, total = branches.versions_of(rt, thread_id).points[u1["id"]]
    assert total == 2 and len(rt.store.message_versions(thread_id)) == 1
    tails.add(tuple(m["id"] for m in rt.store.archived_tail(thread_id, u1["id"], 3 - current)))
    assert tails == {(a1["id"], u2["id"], a2["id"]), (b1["id"],)}  # both tails whole, one shown, one archived


def test_a_message_or_point_of_another_thread_moves_nothing(rt):
    mine, (u1, a1, u2, a2) = _conversation(rt)
    theirs, (t1, ta1, _t2, _ta2) = _conversation(rt)
    with pytest.raises(NotFound):
        branches.archive_from(rt, mine, ta1["id"])
    branches.archive_from(rt, theirs, ta1["id"])
    assert not branches.flip(rt, mine, t1["id"], 1)  # their point and version, asked through my thread
    assert _ids(rt, mine) == [u1["id"], a1["id"], u2["id"], a2["id"]] and _ids(rt, theirs) == [t1["id"]]
    with pytest.raises(NotFound):
        branches.flip(rt, "thread_nope", t1["id"], 1)
