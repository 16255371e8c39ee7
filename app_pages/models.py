"""Models: download an open model from the Hugging Face hub into the models folder, watch it, delete it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from assistants.config import load_settings
from assistants.model_catalog import CATALOG, machine_ram_bytes, suggest
from assistants.model_downloads import DownloadError, DownloadManager
from components.models_view import catalog_cards, custom_download, downloads_panel, installed_list, machine_summary
from components.tables import confirm_delete
from session import get_runtime

state = st.session_state
state.setdefault("models_confirm", None)   # model id waiting for "Yes, delete"
state.setdefault("models_seen", None)      # the download manager's version this page last drew


@st.cache_resource(show_spinner=False)
def _manager(models_dir: str) -> DownloadManager:
    # One per models folder for the whole process: every tab sees (and can cancel) the same downloads.
    return DownloadManager(Path(models_dir))


folder = load_settings().models_dir
manager = _manager(str(folder))


def _act(action: str, model_id: str) -> None:
    d = manager.get(model_id)
    try:
        if action == "cancel":
            manager.cancel(model_id)
        elif action == "resume" and d is not None:
            manager.start(d.repo, d.filename, d.revision)
        elif action == "dismiss":
            manager.discard(model_id)
    except DownloadError as exc:
        state["models_flash"] = ("error", str(exc))


def _start(repo: str, filename: str, error_key: str = "models_flash") -> None:
    try:
        manager.start(repo, filename)
    except DownloadError as exc:
        state[error_key] = ("error", str(exc))


st.title("Models")
st.caption(f"Download an open model that runs on this machine with no key and no network, then pick it in the "
           f"Playground. Models are kept in `{folder}`.")

flash = state.pop("models_flash", None)
if flash:
    (st.error if flash[0] == "error" else st.success)(flash[1], icon=":material/info:")

ram = machine_ram_bytes()
installed = manager.installed()
machine_summary(ram, manager.free_bytes(), installed, str(folder))

active = manager.any_active()
have = {m.model_id for m in installed}


# While a download works the panel redraws itself every second; when idle it only checks every few seconds
# whether this or another tab started or finished something, and then redraws the whole page.
@st.fragment(run_every=1.0 if active else 3.0)
def live_downloads() -> None:
    downloads = manager.downloads()
    if downloads:
        st.subheader("Downloads")
        # Drawn before anything can rerun the page, so a click on Cancel or Resume is never lost to a redraw.
        action = downloads_panel(downloads, key="models_dl")
        if action:
            _act(*action)
            st.rerun()
    if manager.version != state["models_seen"]:
        if {m.model_id for m in manager.installed()} != have:
            get_runtime().list_models(refresh=True)  # a model arrived: the model picker lists it at once
        st.rerun()


state["models_seen"] = manager.version  # what this draw shows; the fragment redraws the page when it changes
live_downloads()

st.subheader("Recommended models")
suggested = suggest(ram)
st.caption("Instruct models that call tools well and fit a laptop, as Q4_K_M GGUF files from the Hugging Face hub."
           + (f" For this machine: **{next(m.name for m in CATALOG if m.model_id == suggested.model_id)}**."
              if suggested else ""))
chosen = catalog_cards(CATALOG, ram_bytes=ram, suggested=suggested.model_id if suggested else None,
                       installed=have, unusable={m.model_id for m in installed if not m.usable},
                       busy={d.model_id for d in manager.downloads() if d.active}, key="models_card")
if chosen is not None:
    _start(chosen.repo, chosen.filename)
    st.rerun()

st.subheader("Any Hugging Face model")
asked = custom_download("models_custom")
if asked is not None:
    _start(*asked, error_key="models_custom_error")  # shown under the form, where the user is looking
    st.rerun()
if custom_error := state.pop("models_custom_error", None):
    st.error(custom_error[1], icon=":material/error:")

st.subheader("Downloaded")
if not installed:
    st.info("No models downloaded yet. The embedded SmolLM2-135M model is always there; download one above for "
            "real answers.", icon=":material/download:")
pressed = installed_list(installed, key="models_have")
if pressed:
    state["models_confirm"] = pressed
pending = state["models_confirm"]
if pending and any(m.model_id == pending for m in installed):
    answer = confirm_delete(f"the model {pending}", key="models_confirm",
                            note="Assistants that use it will fail until you pick another model.")
    if answer is not None:
        state["models_confirm"] = None
        if answer:
            try:
                manager.delete(pending)
                get_runtime().list_models(refresh=True)
                state["models_flash"] = ("ok", f"Deleted {pending}.")
            except DownloadError as exc:
                state["models_flash"] = ("error", str(exc))
        st.rerun()
st.caption("Downloads come from huggingface.co, or from the mirror HF_ENDPOINT names; gated and private repos need "
           "HF_TOKEN (a Hugging Face access token) in the environment or in .env.")
