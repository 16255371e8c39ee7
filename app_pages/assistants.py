"""Assistants: every assistant in a searchable table; open, clone, export, import and delete them."""

from __future__ import annotations

import streamlit as st

from assistants import export
from assistants.errors import APIError
from components.safe_text import code_text, plain
from components.tables import assistants_frame, assistants_table, confirm_delete
from session import get_runtime

rt = get_runtime()
state = st.session_state
state.setdefault("assistants_table_n", 0)    # bumped to clear the table's row selection
state.setdefault("assistants_upload_n", 0)   # bumped to empty the file uploader after an import
state.setdefault("assistants_confirm", None)  # ids waiting for "Yes, delete"


def _open(assistant_id: str) -> None:
    """Open the assistant in the Playground on its newest thread, as picking it there does."""
    state["assistant_id"] = assistant_id
    state["thread_id"] = export.latest_thread(rt.store, assistant_id)
    st.switch_page("app_pages/playground.py")


def _reset_selection() -> None:
    state["assistants_table_n"] += 1


assistants = export.all_assistants(rt)
by_id = {a["id"]: a for a in assistants}

st.title("Assistants")
flash = state.pop("assistants_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

search_col, new_col, export_col = st.columns([6, 2, 2], vertical_alignment="bottom")
query = search_col.text_input("Search assistants", key="assistants_search", type="search", live=True,
                              placeholder="Search by name, model, tool, instructions or id",
                              label_visibility="collapsed", persist_state="session")
if new_col.button("New assistant", icon=":material/add:", width="stretch"):
    try:
        created = rt.create_assistant(model=rt.router.default_model or rt.settings.default_model,
                                      name="New assistant")
    except APIError as exc:
        st.error(f"Could not create an assistant: {exc.message}")
    else:
        _open(created["id"])
export_col.download_button(
    "Export all", data=lambda: export.export_assistants(export.all_assistants(rt)),
    file_name=export.export_filename(assistants), mime="application/json", icon=":material/download:",
    on_click="ignore", disabled=not assistants, width="stretch", key="assistants_export_all",
    help="Download every assistant (instructions, tools, functions, response format) as one JSON file.")

df = assistants_frame(assistants, query or "")
# Between the toolbar and the table, so the table's hover toolbar never covers a button.
if assistants:
    st.caption(f"{len(df)} of {len(assistants)} assistants" if query else
               f"{len(assistants)} assistant{'s' if len(assistants) != 1 else ''} in this Playground. "
               "Select rows to open, clone, export or delete them.")
selected: list[str] = []
if not assistants:
    st.info("No assistants yet. Create one here or in the Playground, or import a file exported from "
            "another Playground (or from OpenAI's API).", icon=":material/smart_toy:")
elif df.empty:
    st.info(f"No assistant matches {code_text(query)}.", icon=":material/search_off:")
else:
    selected = assistants_table(df, key=f"assistants_table_{state['assistants_table_n']}")

if selected:
    chosen = [by_id[i] for i in selected if i in by_id]
    one = chosen[0] if len(chosen) == 1 else None
    with st.container(border=True):
        label = f"**{plain(one.get('name') or 'Untitled')}**" if one else f"**{len(chosen)} assistants**"
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown(f"{label} selected", width="content")
            if one:
                st.code(one["id"], language=None, width="content")
        bar = st.container(horizontal=True, gap="small")
        if bar.button("Open in Playground", type="primary", icon=":material/play_arrow:", disabled=one is None,
                      key="assistants_open", help=None if one else "Select a single assistant to open it."):
            _open(one["id"])
        if bar.button("Clone", icon=":material/content_copy:", disabled=one is None, key="assistants_clone",
                      help=None if one else "Select a single assistant to clone it."):
            try:
                copy = rt.create_assistant(**export.clone_body(one))
            except APIError as exc:
                st.error("Could not clone: " + plain(exc.message))
            else:
                state["assistants_flash"] = f"Cloned as {code_text(copy['name'])}."
                _reset_selection()
                st.rerun()
        bar.download_button("Export", data=export.export_assistants(chosen), file_name=export.export_filename(chosen),
                            mime="application/json", icon=":material/download:", on_click="ignore",
                            key="assistants_export_selected")
        if bar.button("Delete", icon=":material/delete:", key="assistants_delete"):
            state["assistants_confirm"] = [a["id"] for a in chosen]

pending = [i for i in (state["assistants_confirm"] or []) if i in by_id]
if pending:
    names = ", ".join(code_text(by_id[i].get('name') or 'Untitled') for i in pending[:3]) + (" …" if len(pending) > 3 else "")
    what = f"{len(pending)} assistants ({names})" if len(pending) > 1 else f"the assistant {names}"
    answer = confirm_delete(what, key="assistants_confirm",
                            note="Their threads are kept under Threads." if len(pending) > 1
                            else "Its threads are kept under Threads.")
    if answer is not None:
        state["assistants_confirm"] = None
        if answer:
            for assistant_id in pending:
                rt.delete_assistant(assistant_id)
                if state.get("assistant_id") == assistant_id:
                    state["assistant_id"] = None
            state["assistants_flash"] = f"Deleted {what}."
            _reset_selection()
        st.rerun()

st.divider()
st.subheader("Import", anchor=False)
st.caption("Bring assistants in from a JSON file: an export from this page, or assistant objects from OpenAI's API. "
           "Nothing is imported unless every assistant in the file is valid.")
upload = st.file_uploader("Assistants JSON file", type=["json"], key=f"assistants_upload_{state['assistants_upload_n']}",
                          max_upload_size=export.MAX_IMPORT_BYTES // 1_000_000 or 1)
if upload is not None:
    raw = upload.getvalue()
    try:
        bodies = export.parse_import(raw)
    except export.ImportProblem as exc:
        st.error(f"{code_text(upload.name)} can't be imported. " + plain(str(exc)), icon=":material/error:")
    else:
        names = ", ".join(code_text(b.get("name") or "Untitled") for b in bodies[:5]) + (" …" if len(bodies) > 5 else "")
        st.markdown(f"Ready to import **{len(bodies)}** assistant{'s' if len(bodies) != 1 else ''}: {names}")
        if st.button(f"Import {len(bodies)} assistant{'s' if len(bodies) != 1 else ''}", type="primary",
                     icon=":material/upload:", key="assistants_import"):
            try:
                created, notes = export.import_assistants(rt, raw)
            except export.ImportProblem as exc:
                st.error(plain(str(exc)), icon=":material/error:")
            else:
                message = f"Imported {len(created)} assistant{'s' if len(created) != 1 else ''}."
                state["assistants_flash"] = " ".join([message, *map(plain, notes)])
                state["assistants_upload_n"] += 1
                _reset_selection()
                st.rerun()
