"""Names, file names, model names and message text someone else chose never reach the page as markup (AppTest)."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.ui.test_other_pages import APP, app_rt, select  # noqa: F401  (app_rt: the fixture)
from tests.ui.test_safe_text import unescaped_image

HOSTILE = "![x](http://127.0.0.1:9/beacon) <img src=http://127.0.0.1:9/img>"


def markdown_bodies(at: AppTest) -> list[str]:
    """Every markdown string the page sent (markdown, captions, alerts), with labels of buttons and expanders."""
    found = []

    def walk(node):
        proto = getattr(node, "proto", None)
        for field in ("body", "label"):
            value = getattr(proto, field, None) if proto is not None else None
            if isinstance(value, str) and value:
                found.append(value)
        for child in getattr(node, "children", {}).values():
            walk(child)
    walk(at._tree)
    return found


def assert_inert(at: AppTest, seen: str = "beacon") -> None:
    """No image syntax and no HTML tag start survives in anything drawn as markdown (code spans are literal)."""
    bodies = markdown_bodies(at)
    assert any(seen in b for b in bodies), f"{seen!r} is not on the page at all"
    for body in (b for b in bodies if "127.0.0.1:9" in b):  # what the hostile text reached (not our own CSS)
        body = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", body)  # inline code spans show their text as written
        assert not unescaped_image(body), body
        assert not re.search(r"(?<!\\)<(?=[A-Za-z/!?])", body), body


def run_page(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_hostile_names_are_text_on_every_page(app_rt):  # noqa: F811
    rt = app_rt
    assistant = rt.create_assistant(model=HOSTILE, name=HOSTILE)
    thread = rt.create_thread(metadata={"assistant_id": assistant["id"]})
    rt.create_message(thread["id"], role="user", content=HOSTILE)

    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["assistant_id"] = assistant["id"]
    at.session_state["thread_id"] = thread["id"]
    run_page(at)  # the Playground: the model banner, the delete confirmation, the thread and its list
    assert_inert(at)

    at.switch_page("app_pages/threads.py")
    run_page(at)
    select(at, f"threads_table_{at.session_state['threads_table_n']}", [0])
    at.button(key="threads_delete").click()
    run_page(at)  # the preview of the first message and the delete confirmation quoting it
    assert_inert(at)

    at.switch_page("app_pages/assistants.py")
    run_page(at)
    select(at, f"assistants_table_{at.session_state['assistants_table_n']}", [0])
    at.button(key="assistants_delete").click()
    run_page(at)  # the selected name and the delete confirmation
    assert_inert(at)


def test_import_preview_shows_names_as_text(app_rt):  # noqa: F811
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/assistants.py")
    run_page(at)
    body = '[{"model": "m", "name": "%s"}, {"model": "m", "name": "`tick` ![y](http://127.0.0.1:9/two)"}]'
    at.file_uploader[0].set_value((HOSTILE + ".json", (body % HOSTILE.replace('"', '\\"')).encode(), "application/json"))
    run_page(at)
    assert any(b.label.startswith("Import 2") for b in at.button)
    assert_inert(at, "two")
    at.file_uploader[0].set_value((HOSTILE + ".json", b"not json", "application/json"))
    run_page(at)  # the error names the file
    assert_inert(at)
