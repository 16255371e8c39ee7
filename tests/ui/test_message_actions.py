"""Copy, Regenerate with its versions, and Edit and resend under the thread's messages (AppTest)."""

from __future__ import annotations

from playground import versions
from tests.ui.test_playground import bubbles, data_dir, fake, rt, run, send, start  # noqa: F401  (fixtures)


def key_of(at, role: str, n: int = -1) -> str:
    """The widget key prefix of the n-th message of `role` in the thread as the page drew it."""
    ids = [m["id"] for m in rt().list_messages(at.session_state["thread_id"], order="asc")["data"] if m["role"] == role]
    return f"playground_msg_{ids[n]}"


def test_regenerate_keeps_the_old_reply_as_a_version(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Poet")
    fake.add({"text": "First answer."}, {"text": "Second answer."}, {"text": "Third answer."})
    at = send(start(), "Write a line")
    assert bubbles(at)[-1] == ("assistant", "First answer.")
    assert any("pg-copy" in h.proto.body and "First answer." in h.proto.body for h in at.main.get("html"))
    at.button(key=key_of(at, "assistant") + "_regen").click()
    run(at)
    assert bubbles(at)[-1][1].startswith("Second answer.")
    # The thread (what the SDK lists, what the next run reads) holds only the current reply.
    thread_id = at.session_state["thread_id"]
    listed = rt().list_messages(thread_id, order="asc")["data"]
    assert [(m["role"], m["content"][0]["text"]["value"]) for m in listed] == \
        [("user", "Write a line"), ("assistant", "Second answer.")]
    newest = rt().list_runs(thread_id)["data"][0]
    assert versions.unpack(newest["metadata"]) == ["First answer."]
    at.button(key=key_of(at, "assistant") + "_regen").click()
    run(at)
    key = key_of(at, "assistant")
    assert bubbles(at)[-1][1].startswith("Third answer.")
    assert versions.unpack(rt().list_runs(thread_id)["data"][0]["metadata"]) == ["First answer.", "Second answer."]
    assert "3 / 3" in [c.value for c in at.main.caption]
    at.button(key=key + "_ver_prev").click()
    run(at)
    at.button(key=key + "_ver_prev").click()
    run(at)
    assert bubbles(at)[-1][1].startswith("First answer.") and "1 / 3" in [c.value for c in at.main.caption]
    assert any("earlier version" in c.value for c in at.main.caption)
    at.button(key=key + "_ver_next").click().run()
    at.button(key=key + "_ver_next").click().run()
    assert bubbles(at)[-1][1].startswith("Third answer.")
    assert len(rt().list_runs(thread_id)["data"]) == 3  # every run stays in the log


def test_edit_and_resend_replaces_the_message_and_what_followed(fake):  # noqa: F811
    rt().create_assistant(model="fake-model", name="Echo")
    at = send(send(start(), "one"), "two")
    assert [t for _, t in bubbles(at)] == ["one", "echo: one", "two", "echo: two"]
    key = key_of(at, "user", 0) + "_edit"
    at.session_state[key] = True  # the Edit popover opened
    run(at)
    at.text_area(key=key + "_text").set_value("uno")
    at.button(key=key + "_send").click()
    run(at)
    assert [t for _, t in bubbles(at)] == ["uno", "echo: uno"]
    listed = rt().list_messages(at.session_state["thread_id"], order="asc")["data"]
    assert [m["content"][0]["text"]["value"] for m in listed] == ["uno", "echo: uno"]


def test_versions_fit_the_metadata_limits():
    many = [f"version {i} " + "x" * 900 for i in range(20)]
    packed = versions.pack(many)
    assert len(packed) <= versions.KEYS and all(len(v) <= 512 for v in packed.values())
    kept = versions.unpack(packed)
    assert kept and kept[-1] == many[-1]  # the newest whole, the oldest dropped
    huge = versions.unpack(versions.pack(["y" * 20_000]))
    assert huge[0].startswith("yyy") and huge[0].endswith("(cut: too long to keep)")
    assert versions.unpack({}) == [] and versions.unpack({"playground_v00": "[broken"}) == []
