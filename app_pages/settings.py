"""Settings: model backends with "test connection", keys (masked), model aliases; saved in the database."""

from __future__ import annotations

import os

import streamlit as st

from assistants.config import EMBEDDED_MODEL_ID, Backend, parse_aliases
from assistants.providers.base import ProviderError
from assistants.providers.openai_compat import OpenAICompatProvider
from components import settings_form as form
from components.safe_text import code_text
from session import get_runtime

TEST_TIMEOUT_S = 10.0

rt = get_runtime()
state = st.session_state

ENV = os.environ  # OPENAI_API_KEY / OPENAI_BASE_URL as the runtime read them (.env loaded by load_settings)
WATCH_S = 3  # how often an open Settings page looks whether someone saved the settings elsewhere


def _read() -> tuple[dict, str | None]:
    """The saved settings, and why they could not be read (then {})."""
    try:
        return get_runtime().saved_settings(), None
    except ValueError as exc:
        return {}, str(exc)


# A key typed and left with Tab must count. Streamlit commits a text input on blur, except when focus moves inside
# the widget, and Tab from a password field goes to its own show/hide button, so the key was never committed (a
# click elsewhere, Enter, or a second Tab did not help either). Without that button, Tab leaves the field and commits.
st.html("<style>[class*='st-key-settings_'][class*='_key'] [data-testid='stTextInputRootElement'] button"
        "{display:none}</style>")

saved, unreadable = _read()
form.seed(state, saved)


def _test(name: str, url: str, key: str) -> dict:
    """Ask the server for its models; the answer (never the key) goes to the page."""
    try:
        models = OpenAICompatProvider(Backend(name, url, key), timeout=TEST_TIMEOUT_S).list_models()
    except ProviderError as exc:
        return {"url": url, "ok": False, "models": [], "error": exc.message}
    except Exception as exc:  # a malformed answer must become a message, not a crash
        return {"url": url, "ok": False, "models": [], "error": f"The server at {url} answered something unexpected: "
                f"{type(exc).__name__}: {exc}"}
    return {"url": url, "ok": True, "models": models, "error": ""}


def _save() -> None:
    """Callback: refuse invalid input, else save the settings (every instance sharing the database applies them)."""
    d = form.draft(state)
    errors = form.problems(d)
    state[form.SAVE_TRIED] = True
    if errors:
        state["settings_result"] = ("error", f"Nothing was saved: fix the {len(errors)} problem"
                                    f"{'s' if len(errors) > 1 else ''} marked in red.")
        return
    current, _ = _read()  # unreadable: the user was told, and saving replaces it
    base = state.get(form.BASE, current)
    mine = form.to_values(d, base, ENV.get("OPENAI_BASE_URL", ""))
    # Saved elsewhere (another tab, another person) since this form was filled: keep their changes where this
    # form left a setting alone, instead of silently writing the old values back over them.
    values, notes = form.merge(base, mine, form.comparable(current))
    try:
        get_runtime().save_settings(values)
    except (OSError, ValueError) as exc:
        state["settings_result"] = ("error", f"Could not save the settings: {exc}")
        return
    form.seed(state, values, force=True)
    message = "Saved. Every page and the API server use these settings from now on."
    if notes["kept"]:
        message += f" Changes saved elsewhere meanwhile were kept: {_listing(notes['kept'])}."
    if notes["replaced"]:
        message += f" Where both changed the same setting, yours was saved: {_listing(notes['replaced'])}."
    state["settings_result"] = ("ok", message)


def _listing(items: list[str]) -> str:
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1] if items else ""


def _load_latest() -> None:
    """Callback: drop the edits and show the settings as they are saved now."""
    form.seed(state, _read()[0], force=True)
    state["settings_result"] = ("ok", "Showing the settings as they are saved now.")


def _discard() -> None:
    """Callback: forget the edits and show the saved settings again."""
    form.seed(state, _read()[0], force=True)
    state["settings_result"] = ("ok", "Changes discarded.")


def _dirty() -> bool:
    """Whether the form holds edits that are not saved (measured against what it was filled from)."""
    d = form.draft(state)
    base = state.get(form.BASE, {})
    return form.comparable(form.to_values(d, base, ENV.get("OPENAI_BASE_URL", ""))) != base or bool(d["openai_key"]) or any(
        b["key"] for b in d["backends"])


if not unreadable and form.comparable(saved) != state.get(form.BASE) and not _dirty():
    # Saved elsewhere and nothing is edited here: show the new settings (nothing typed is lost).
    form.seed(state, saved, force=True)
    # A banner under the heading, not a toast: a toast lay over the Save button.
    state["settings_result"] = ("info", "These settings were just saved elsewhere (another tab or person): "
                                        "showing them.")
d = form.draft(state)
errors = form.problems(d)
shown = form.shown_errors(errors, state)
dirty = _dirty()
base = state.get(form.BASE, {})

head, actions = st.columns([3, 2], vertical_alignment="bottom")
head.title("Settings")
with actions:
    bar = st.container(horizontal=True, horizontal_alignment="right", vertical_alignment="center")
    if dirty:
        bar.badge("Unsaved changes", icon=":material/edit:", color="orange")
    bar.button("Discard", key="settings_discard_top", on_click=_discard, disabled=not dirty)
    bar.button("Save", key="settings_save_top", type="primary", icon=":material/save:", on_click=_save)
st.caption("Saved in the database and used by every page and the API server — every instance sharing the database "
           "— for everyone using this Playground.")

if unreadable:
    st.error(f"The saved settings could not be read: {unreadable}. Saving here replaces them.")


def _watch() -> None:
    """Say so as soon as someone saves the settings elsewhere while this form holds edits (checked every few s)."""
    now, problem = _read()
    if problem or form.comparable(now) == state.get(form.BASE):
        return
    if not _dirty():
        st.rerun()  # nothing edited here: simply show the new settings
    what = form.changes(state.get(form.BASE, {}), form.comparable(now))
    with st.container(horizontal=True, vertical_alignment="center"):
        st.warning("Someone saved these settings elsewhere (another tab or person) while you were editing"
                   + (f": {_listing(what)} changed" if what else "") + ". **Save** keeps their changes where you "
                   "left a setting alone and yours where you edited one; or drop your edits and load theirs.",
                   icon=":material/sync_problem:")
        st.button("Load theirs", key="settings_load_latest", icon=":material/sync:", on_click=_load_latest,
                  help="Forget your edits and show the settings as saved now.")


st.fragment(_watch, run_every=WATCH_S)()
result = state.pop("settings_result", None)
if result:
    show, icon = {"ok": (st.success, ":material/check_circle:"), "info": (st.info, ":material/sync:")}.get(
        result[0], (st.error, ":material/error:"))
    show(result[1], icon=icon)

# -- OpenAI ------------------------------------------------------------------------------------
with st.container(border=True):
    if form.openai_section(state, shown, *form.openai_hint(d, base, ENV)):
        url = form.openai_url(d, ENV.get("OPENAI_BASE_URL", ""))
        # Only a key that belongs to this URL: the typed one, or the saved / environment one entered with it.
        state[form.TESTS]["openai"] = _test("openai", url, form.openai_key(d, base, ENV))
    form.test_result(state[form.TESTS].get("openai"), form.openai_url(d, ENV.get("OPENAI_BASE_URL", "")))

# -- named servers -------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Local and other servers", anchor=False)
    st.caption("Any server that speaks OpenAI's Chat Completions API: Ollama, LM Studio, vLLM, llama.cpp's server… "
               "Their models appear in the Playground's model list, grouped by server name.")
    for row, b in zip(state[form.ROWS], d["backends"], strict=True):
        if form.backend_row(state, row, errors, shown) == "test":
            state[form.TESTS][row["uid"]] = _test(b["name"] or "server", b["url"], form.backend_key(b))
            st.rerun()  # show the answer under the row it belongs to
    if not state[form.ROWS]:
        st.info("No servers yet. Add Ollama or LM Studio running on this machine, or any other server.",
                icon=":material/dns:")
    form.add_buttons(state)
    env_only = [b for b in rt.settings.backends if b.name not in {x["name"] for x in d["backends"]}
                and b.name not in {x.get("name") for x in base.get("backends", [])}]
    if env_only:
        st.caption("Also configured in the environment (PLAYGROUND_BACKENDS): "
                   + ", ".join(f"{code_text(b.name)} at {code_text(b.base_url)}" for b in env_only))

# -- aliases and default model -------------------------------------------------------------------
with st.container(border=True):
    try:
        env_aliases = parse_aliases(os.environ.get("PLAYGROUND_MODEL_ALIASES", ""))
    except ValueError:
        env_aliases = {}
    form.aliases_section(state, shown, env_aliases)

with st.container(border=True):
    st.subheader("Default model", anchor=False)
    left, right = st.columns(2)
    with left:
        st.text_input("Model for new assistants", key=form.DEFAULT_MODEL, persist_state="session",
                      placeholder=rt.settings.default_model or EMBEDDED_MODEL_ID,
                      help="Leave empty to keep the environment's choice (PLAYGROUND_DEFAULT_MODEL) or the embedded model.")
        form.inline_error(shown, form.DEFAULT_MODEL)
    with right:
        if rt.settings.embedded_enabled:
            st.markdown(f":green-badge[:material/memory: Embedded model on] `{EMBEDDED_MODEL_ID}` runs inside the "
                        "Playground: no key, no network. It is tiny — good for trying things out, not for hard questions.")
        else:
            st.markdown(":gray-badge[Embedded model off] Turned off with PLAYGROUND_EMBEDDED_MODEL=0.")

bottom = st.container(horizontal=True, vertical_alignment="center")
bottom.button("Save settings", key="settings_save", type="primary", icon=":material/save:", on_click=_save)
bottom.button("Discard changes", key="settings_discard", on_click=_discard, disabled=not dirty)
if dirty:
    bottom.badge("Unsaved changes", icon=":material/edit:", color="orange")
