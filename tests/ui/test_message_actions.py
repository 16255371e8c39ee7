"""Copy and Regenerate on every reply, Edit and resend on every message of yours, ‹ n / N › between versions (AppTest)."""

from __future__ import annotations

import json

from playground import versions
from tests.conftest import wait_run
from tests.ui.test_playground import bubbles, data_dir, fake, rt, run, send, start  # noqa: F401  (fixtures)


def key_of(at, role: str, n: int = -1) -> str:
    """The widget key prefix of the n-th message of `role` in the thread as the page drew it."""
    ids = [m["id"] for m in rt().list_messages(at.session_state["thread_id"], order="asc")["data"] if m["role"] == role]
    return f"playground_msg_{ids[n]}"


def texts(at) -> list[str]:
    return [t for _, t in bubbles(at)]


def stored(at) -> list[str]:
    """The thread as the SDK lists it (what the next run reads): each message's text, oldest first."""
    listed = rt().list_messages(at.session_state["thread_id"], order="asc")["data"]
    return [m["content"][0]["text"]["value"] for m in listed]


def flip(at, switcher: str, way: str) -> None:
    """Click ‹ (`prev`) or › (`next`) of a version switcher (its widget key prefix) and let the page rerun."""
    at.button(key=f"{switcher}_{way}").click()
    run(at)


def test_regenerate_an_older_reply_then_flip_back_and_the_later_turns_return(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Poet")
    fake.add({"text": "First answer."}, {"text": "Reply to more."}, {"text": "Second answer."})
    at = send(send(start(), "Write a line"), "more")
    assert texts(at) == ["Write a line", "First answer.", "more", "Reply to more."]
    assert any("pg-copy" in h.proto.body and "First answer." in h.proto.body for h in at.main.get("html"))
    first, last = key_of(at, "assistant", 0), key_of(at, "assistant", 1)
    assert at.button(key=last + "_regen") and at.button(key=first + "_regen")  # on every reply, not only the latest
    at.button(key=first + "_regen").click()
    run(at)
    # The thread holds the conversation the model sees: the old reply and the later turns are a version.
    assert texts(at) == stored(at) == ["Write a line", "Second answer."]
    key = key_of(at, "assistant", 0)
    assert "2 / 2" in [c.value for c in at.main.caption]
    flip(at, key + "_switch0", "prev")
    assert texts(at) == stored(at) == ["Write a line", "First answer.", "more", "Reply to more."]
    assert key_of(at, "assistant", 0) == first  # the same messages, ids kept
    assert "1 / 2" in [c.value for c in at.main.caption]
    flip(at, first + "_switch0", "next")
    assert texts(at) == stored(at) == ["Write a line", "Second answer."]
    assert len(rt().list_runs(at.session_state["thread_id"])["data"]) == 3  # every run stays in the log


def test_edit_an_older_message_and_resend_then_flip_back(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(send(start(), "one"), "two")
    assert texts(at) == ["one", "echo: one", "two", "echo: two"]
    original = key_of(at, "user", 0)
    key = original + "_edit"
    at.session_state[key] = True  # the Edit popover opened
    run(at)
    assert any("The 3 messages after it are kept as a version" in c.value for c in at.main.caption)
    at.text_area(key=key + "_text").set_value("uno")
    at.button(key=key + "_send").click()
    run(at)
    assert texts(at) == stored(at) == ["uno", "echo: uno"]
    edited = key_of(at, "user", 0)
    assert "2 / 2" in [c.value for c in at.main.caption]
    flip(at, edited + "_switch0", "prev")
    assert texts(at) == stored(at) == ["one", "echo: one", "two", "echo: two"]
    assert key_of(at, "user", 0) == original
    flip(at, original + "_switch0", "next")
    assert texts(at) == ["uno", "echo: uno"]


def test_actions_are_disabled_while_a_run_works_and_a_run_from_another_tab_is_explained(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(start(), "one")
    thread_id = at.session_state["thread_id"]
    reply = key_of(at, "assistant")
    # Another tab (here: the API) starts a run after this page was drawn, so the buttons here are still enabled.
    fake.add({"text": "slow", "delay": 5})
    other = rt().create_run(thread_id, assistant_id=rt().list_assistants()["data"][0]["id"])
    at.button(key=reply + "_regen").click()
    run(at)
    assert any("This thread is busy" in i.value for i in at.info)  # plain words, nothing changed
    assert stored(at)[:2] == ["one", "echo: one"]
    regen = at.button(key=reply + "_regen")
    assert regen.disabled and "Wait for the run to finish" in regen.help
    rt().cancel_run(thread_id, other["id"])
    wait_run(rt(), thread_id, other["id"])


def test_versions_kept_in_run_metadata_by_older_playgrounds_still_show(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(start(), "one")
    thread_id = at.session_state["thread_id"]
    newest = rt().list_runs(thread_id)["data"][0]
    old = json.dumps(["An older reply " + "x" * 600], ensure_ascii=False)
    rt().update_run(thread_id, newest["id"], metadata={"playground_v00": old[:512], "playground_v01": old[512:]})
    assert versions.unpack(rt().get_run(thread_id, newest["id"])["metadata"]) == ["An older reply " + "x" * 600]
    run(at)
    key = key_of(at, "assistant") + "_ver"
    assert "2 / 2" in [c.value for c in at.main.caption]
    flip(at, key + "_pager", "prev")
    assert bubbles(at)[-1][1].startswith("An older reply") and "1 / 2" in [c.value for c in at.main.caption]
    assert versions.unpack({}) == [] and versions.unpack({"playground_v00": "[broken"}) == []


def test_a_regenerate_that_fails_can_flip_back_to_the_reply_it_replaced(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Echo")
    fake.add({"text": "Good answer."}, {"status": 400, "message": "the backend said no"})
    at = send(start(), "one")
    reply = key_of(at, "assistant")
    at.button(key=reply + "_regen").click()
    run(at)
    assert stored(at) == ["one"] and any("The run failed" in e.value for e in at.error)
    # Nothing after the message any more: the switcher sits under it.
    assert any("What followed this message is kept as versions" in c.value for c in at.main.caption)
    flip(at, key_of(at, "user") + "_after", "prev")
    assert texts(at) == stored(at) == ["one", "Good answer."]
    assert not any("The run failed" in e.value for e in at.error)  # the failure belongs to the other version
    flip(at, reply + "_switch0", "next")
    assert stored(at) == ["one"] and any("The run failed" in e.value for e in at.error)
