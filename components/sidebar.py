"""The assistant config sidebar: picker, create/clone/delete, every setting, and an unsaved-changes marker."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

from assistants import jsonsafe, validation
from assistants.errors import BadRequest
from assistants.pricing import FILE_SEARCH_FREE_GB, file_search_storage_cost, format_usd
from components import plain_error
from components.safe_text import code_text, plain

K = "playground_cfg_"  # prefix of the draft's widget keys
SIMPLE_FIELDS = ("name", "instructions", "model", "code_interpreter", "file_search", "format", "schema",
                 "temperature", "top_p")
FORMATS = {"text": "Text", "json_object": "JSON object", "json_schema": "JSON schema"}
FUNCTION_KEYS = {"name", "description", "parameters", "strict"}

EXAMPLE_FUNCTION = {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
EXAMPLE_SCHEMA = {
    "name": "answer",
    "strict": True,
    "schema": {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "description": "The reply"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["answer", "confidence"],
        "additionalProperties": False,
    },
}


# -- the draft: the settings as the widgets hold them ----------------------------------------------------
def assistant_label(a: dict) -> str:
    """How an assistant is named in pickers."""
    return a.get("name") or "Untitled assistant"


def draft_from_assistant(a: dict) -> dict:
    """The editable settings of a stored assistant."""
    tools = a.get("tools") or []
    fmt = a.get("response_format") or "auto"
    kind = fmt.get("type", "text") if isinstance(fmt, dict) else "text"
    resources = a.get("tool_resources") or {}
    return {
        "name": a.get("name") or "",
        "instructions": a.get("instructions") or "",
        "model": a.get("model") or "",
        "code_interpreter": any(t["type"] == "code_interpreter" for t in tools),
        "file_search": any(t["type"] == "file_search" for t in tools),
        # jsonsafe: a NaN stored before the API refused them shows as null, which saves, not as NaN, which would not.
        "functions": [jsonsafe.dumps(t["function"], indent=2, ensure_ascii=False) for t in tools if t["type"] == "function"],
        "format": kind,
        "schema": jsonsafe.dumps(fmt["json_schema"], indent=2, ensure_ascii=False) if kind == "json_schema" else "",
        "temperature": float(a["temperature"] if a.get("temperature") is not None else 1.0),
        "top_p": float(a["top_p"] if a.get("top_p") is not None else 1.0),
        "vector_store_ids": list((resources.get("file_search") or {}).get("vector_store_ids") or []),
        "code_file_ids": list((resources.get("code_interpreter") or {}).get("file_ids") or []),
    }


def _new_function_key(text: str) -> str:
    seq = st.session_state.get(K + "fn_seq", 0) + 1
    st.session_state[K + "fn_seq"] = seq
    st.session_state[K + f"fn_{seq}"] = text
    return str(seq)


def load_draft(draft: dict) -> None:
    """Put a draft into the widgets' keys (call before the widgets are drawn, or from a callback)."""
    ss = st.session_state
    for field in SIMPLE_FIELDS:
        ss[K + field] = draft[field]
    ss[K + "fn_ids"] = [_new_function_key(text) for text in draft["functions"]]
    ss[K + "vector_store_ids"] = list(draft.get("vector_store_ids") or [])
    ss[K + "code_file_ids"] = list(draft.get("code_file_ids") or [])
    ss[K + "fn_open"] = None


def draft_loaded() -> bool:
    """Whether the widgets' keys still hold a draft (Streamlit drops them after a visit to another page)."""
    ss = st.session_state
    return all(K + f in ss for f in SIMPLE_FIELDS) and all(K + f"fn_{u}" in ss for u in ss.get(K + "fn_ids", []))


def read_draft() -> dict:
    """The settings as the widgets hold them now."""
    ss = st.session_state
    draft = {field: ss.get(K + field) for field in SIMPLE_FIELDS}
    draft["functions"] = [ss.get(K + f"fn_{uid}", "") for uid in ss.get(K + "fn_ids", [])]
    draft["vector_store_ids"] = list(ss.get(K + "vector_store_ids") or [])
    draft["code_file_ids"] = list(ss.get(K + "code_file_ids") or [])
    return draft


# -- checking what was typed ------------------------------------------------------------------------------
def _schema_problem(schema: Any, where: str) -> str | None:
    """Why `schema` is not a valid JSON Schema, or None."""
    try:
        from jsonschema import SchemaError, validators
    except ImportError:  # the check is a courtesy; the runtime still validates the shape
        return None
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.path)
        return f"{where} is not a valid JSON Schema: {exc.message}" + (f" (at {path})" if path else "")
    return None


_JSON_HINTS = {
    "Expecting ',' delimiter": "a comma or a closing } or ] is missing",
    "Expecting property name enclosed in double quotes": "a name in double quotes is expected (no trailing comma, "
                                                         "no single quotes)",
    "Expecting ':' delimiter": "a colon is missing after a name",
    "Expecting value": "a value is missing or is not valid JSON (true/false/null are lowercase; text needs "
                       "double quotes)",
    "Unterminated string starting at": "a text value is missing its closing double quote",
    "Extra data": "there is something after the end of the JSON object",
    "Invalid control character at": "a line break inside a text value (write it as \\n)",
}


def _json_problem(exc: json.JSONDecodeError) -> str:
    """Where the JSON broke, in words."""
    why = _JSON_HINTS.get(exc.msg, exc.msg[:1].lower() + exc.msg[1:])
    return f"Not valid JSON: {why} (line {exc.lineno}, column {exc.colno})."


def _load_json(text: str, empty: str) -> tuple[object, str | None]:
    """The value of a JSON editor's text, or the reason there is none (`empty` when it is blank)."""
    if not (text or "").strip():
        return None, empty
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, _json_problem(exc)


def check_function(text: str, taken: set[str] = frozenset()) -> tuple[dict | None, str | None]:
    """A function definition from its JSON text, or the reason it is not one."""
    value, problem = _load_json(text, "Empty: paste a function definition, or remove it.")
    if problem:
        return None, problem
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("function"), dict):
        value = value["function"]  # pasted as a whole tool: {"type": "function", "function": {...}}
    if not isinstance(value, dict):
        return None, "A function must be a JSON object with a name, a description and parameters."
    unknown = sorted(set(value) - FUNCTION_KEYS)
    if unknown:
        return None, f"Unknown field {', '.join(map(repr, unknown))}: a function has name, description, parameters, strict."
    name = value.get("name")
    if not isinstance(name, str) or not validation.NAME.match(name):
        return None, "\"name\" must be 1–64 letters, digits, _ or - (no spaces)."
    if name in validation.BUILTIN_TOOLS:
        return None, f"\"{name}\" is a built-in tool's name; pick another."
    if name in taken:
        return None, f"Another function is already named \"{name}\"."
    if "description" in value and not isinstance(value["description"], str):
        return None, "\"description\" must be text."
    params = value.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(params, dict) or params.get("type", "object") != "object":
        return None, "\"parameters\" must be a JSON Schema object: {\"type\": \"object\", \"properties\": {…}}."
    problem = _schema_problem(params, "\"parameters\"")
    if problem:
        return None, problem
    if "strict" in value and not isinstance(value["strict"], bool):
        return None, "\"strict\" must be true or false."
    return value, None


def check_schema(text: str) -> tuple[dict | None, str | None]:
    """A response_format json_schema object ({name, schema, strict}) from its JSON text, or the reason it is not."""
    value, problem = _load_json(text, "Empty: write the JSON schema the reply must follow (start from the example).")
    if problem:
        return None, problem
    if not isinstance(value, dict):
        return None, "Must be a JSON object: {\"name\": …, \"schema\": {…}}."
    if "schema" not in value and ("type" in value or "properties" in value):
        value = {"name": "response", "schema": value}  # a bare schema: wrap it rather than refuse
    unknown = sorted(set(value) - {"name", "description", "schema", "strict"})
    if unknown:
        return None, f"Unknown field {', '.join(map(repr, unknown))}: use name, description, schema, strict."
    if not isinstance(value.get("name"), str) or not validation.NAME.match(value["name"]):
        return None, "\"name\" must be 1–64 letters, digits, _ or -."
    if not isinstance(value.get("schema"), dict):
        return None, "\"schema\" must be a JSON Schema object."
    problem = _schema_problem(value["schema"], "\"schema\"")
    if problem:
        return None, problem
    if "strict" in value and not isinstance(value["strict"], bool):
        return None, "\"strict\" must be true or false."
    return value, None


def build_body(draft: dict, original: dict, *, resources: bool) -> tuple[dict, list[str]]:
    """The update_assistant body for a draft, and what is wrong with it (nothing may be saved then)."""
    errors: list[str] = []
    tools: list[dict] = []
    if draft["code_interpreter"]:
        tools.append({"type": "code_interpreter"})
    if draft["file_search"]:
        kept = next((t for t in original.get("tools") or [] if t["type"] == "file_search"), None)
        tools.append(kept or {"type": "file_search"})  # keeps max_num_results etc. set through the API
    taken: set[str] = set()
    for i, text in enumerate(draft["functions"], 1):
        fn, problem = check_function(text, taken)
        if problem:
            errors.append(f"Function {i}: {problem}")
        else:
            taken.add(fn["name"])
            tools.append({"type": "function", "function": fn})
    fmt: Any
    if draft["format"] == "json_schema":
        schema, problem = check_schema(draft["schema"])
        if problem:
            errors.append(f"Response format: {problem}")
        fmt = {"type": "json_schema", "json_schema": schema} if schema else "auto"
    elif draft["format"] == "json_object":
        fmt = {"type": "json_object"}
    else:
        fmt = "auto" if original.get("response_format") in (None, "auto") else {"type": "text"}
    if not draft["model"]:
        errors.append("Pick a model.")
    body: dict = {
        "name": draft["name"].strip() or None,
        "instructions": draft["instructions"],
        "model": draft["model"],
        "tools": tools,
        "response_format": fmt,
        "temperature": round(float(draft["temperature"]), 2),
        "top_p": round(float(draft["top_p"]), 2),
    }
    if resources:
        body["tool_resources"] = {"code_interpreter": {"file_ids": draft["code_file_ids"]},
                                  "file_search": {"vector_store_ids": draft["vector_store_ids"][:1]}}
    if not errors:
        try:
            body["tools"] = validation.tools(tools)
        except BadRequest as exc:
            errors.append(exc.message)
    return body, errors


def _comparable(obj: dict, resources: bool) -> dict:
    fmt = obj.get("response_format") or "auto"
    if fmt == "auto" or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        fmt = "text"
    try:
        tools = validation.tools(obj.get("tools"))
    except BadRequest:
        tools = obj.get("tools")
    out = {"name": obj.get("name") or "", "instructions": obj.get("instructions") or "", "model": obj.get("model"),
           "tools": tools, "response_format": fmt,
           "temperature": round(float(obj.get("temperature") if obj.get("temperature") is not None else 1.0), 2),
           "top_p": round(float(obj.get("top_p") if obj.get("top_p") is not None else 1.0), 2)}
    if resources:
        res = obj.get("tool_resources") or {}
        out["files"] = list((res.get("code_interpreter") or {}).get("file_ids") or [])
        out["stores"] = list((res.get("file_search") or {}).get("vector_store_ids") or [])
    return out


def is_dirty(draft: dict, assistant: dict, *, resources: bool) -> bool:
    """Whether the draft differs from what is stored."""
    body, errors = build_body(draft, assistant, resources=resources)
    if errors:
        return draft != draft_from_assistant(assistant)
    return _comparable(body, resources) != _comparable(assistant, resources)


# -- callbacks that only touch the draft -----------------------------------------------------------------
def _add_function() -> None:
    names = set()
    for uid in st.session_state.get(K + "fn_ids", []):
        fn, _ = check_function(st.session_state.get(K + f"fn_{uid}", ""))
        if fn:
            names.add(fn["name"])
    example = dict(EXAMPLE_FUNCTION)
    n = 2
    while example["name"] in names:
        example["name"] = f"{EXAMPLE_FUNCTION['name']}_{n}"
        n += 1
    uid = _new_function_key(json.dumps(example, indent=2))
    st.session_state[K + "fn_ids"] = [*st.session_state.get(K + "fn_ids", []), uid]
    st.session_state[K + "fn_open"] = uid


def _remove_function(uid: str) -> None:
    st.session_state[K + "fn_ids"] = [u for u in st.session_state.get(K + "fn_ids", []) if u != uid]


def _format_changed() -> None:
    if st.session_state.get(K + "format") == "json_schema" and not (st.session_state.get(K + "schema") or "").strip():
        st.session_state[K + "schema"] = json.dumps(EXAMPLE_SCHEMA, indent=2)


def _insert_example_schema() -> None:
    st.session_state[K + "schema"] = json.dumps(EXAMPLE_SCHEMA, indent=2)


# -- drawing ----------------------------------------------------------------------------------------------
def render_picker(assistants: list[dict], current: dict | None, *, on_pick: Callable, on_create: Callable,
                  on_clone: Callable, on_delete: Callable) -> None:
    """The searchable assistant picker with New / Clone / Delete, and the copyable id."""
    by_id = {a["id"]: a for a in assistants}
    seen: dict[str, int] = {}
    for a in assistants:
        seen[assistant_label(a)] = seen.get(assistant_label(a), 0) + 1

    def label(i: str) -> str:
        name = assistant_label(by_id[i])
        return f"{name} ({i[-4:]})" if seen[name] > 1 else name  # tell same-named clones apart

    if assistants:
        st.selectbox("Assistant", list(by_id), key="playground_pick", on_change=on_pick, format_func=label,
                     placeholder="Search assistants…", help="Type to search by name.")
    if not assistants:
        st.caption("No assistants yet.")
    with st.container(horizontal=True, gap="small"):
        st.button("New", icon=":material/add:", on_click=on_create, key="playground_new",
                  type="tertiary" if assistants else "primary", help="Create an assistant with the default model")
        if current is not None:
            st.button("Clone", icon=":material/content_copy:", on_click=on_clone, key="playground_clone",
                      type="tertiary", help="Create a copy of this assistant's saved settings")
            # Keyed by assistant: after a delete the next assistant's popover starts closed, one click from nothing.
            with st.popover("Delete", icon=":material/delete:", help="Delete this assistant", type="tertiary",
                            key=f"playground_delete_{current['id']}"):
                st.markdown(f"Delete **{plain(assistant_label(current))}**? This cannot be undone. "
                            "Its threads are kept and stay under Threads.")
                # Not primary: the green of Save would make the irreversible click look like the expected one.
                st.button("Delete assistant", type="secondary", icon=":material/delete_forever:", on_click=on_delete,
                          key="playground_delete_confirm")
    if current is not None:  # small: people read the name; developers still find (and copy) the id
        st.caption(f"Id `{current['id']}`")


def model_facts(details: dict | None) -> str:
    """A local model's size and context for its picker label ("  ·  1.1 GB  ·  32k ctx"), or why it cannot run."""
    if not details:
        return ""
    if details.get("usable") is False:
        return "  ·  unusable"
    parts = []
    if details.get("size_bytes"):
        size = details["size_bytes"]
        parts.append(f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.0f} MB")
    if details.get("context_length"):
        parts.append(f"{details['context_length'] // 1024}k ctx" if details["context_length"] >= 1024
                     else f"{details['context_length']} ctx")
    return "".join(f"  ·  {p}" for p in parts)


def _model_picker(models: list[tuple[str, str]], backends: list, current_model: str, on_refresh: Callable) -> None:
    owner = {}
    for model, backend in models:
        owner.setdefault(model, backend)
    options = list(owner)
    if current_model and current_model not in owner:
        options.insert(0, current_model)  # keep what is saved visible instead of silently switching

    details = {m: d for b in backends if b.ok for m, d in getattr(b, "details", {}).items()}

    def label(m: str) -> str:
        return f"{m}  ·  {owner[m]}{model_facts(details.get(m))}" if m in owner else f"{m}  ·  not available now"

    st.selectbox("Model", options, key=K + "model", format_func=label, placeholder="No model available",
                 help="Models listed live from every configured backend, grouped by backend.")
    chosen = details.get(st.session_state.get(K + "model") or "")
    if chosen and chosen.get("usable") is False:
        st.caption(f":red[{plain(chosen.get('error') or 'This model cannot be used.')}]")
    lines = []
    for b in backends:
        if b.ok:
            lines.append(f":green[●]\u00a0**{b.name}**\u00a0{len(b.models)}\u00a0model{'s' if len(b.models) != 1 else ''}")
        else:
            lines.append(f":red[●]\u00a0**{b.name}**\u00a0unreachable")  # no-break spaces: wrap between backends only
    with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute", gap=None):
        st.caption(" &nbsp; ".join(lines) or "No backends configured.", width="content")
        st.button("Refresh", icon=":material/refresh:", key="playground_refresh_models", on_click=on_refresh,
                  type="tertiary", help="List the backends' models again")
    for b in backends:
        if not b.ok:
            st.caption(f":red[{plain(b.name)}]: " + plain(plain_error(b.error)))


def _functions() -> None:
    ss = st.session_state
    with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute"):
        st.markdown("**Functions**")
        st.button("Add", icon=":material/add:", key="playground_add_function", on_click=_add_function,
                  type="tertiary", help="Add a function definition (starts from an example)")
    uids = ss.get(K + "fn_ids", [])
    if not uids:
        st.caption("Functions let the assistant ask you to run code of your own: you get the call "
                   "with its arguments and paste back the result.")
    taken: set[str] = set()
    for i, uid in enumerate(uids, 1):
        fn, problem = check_function(ss.get(K + f"fn_{uid}", ""), taken)
        if fn:
            taken.add(fn["name"])
        title = fn["name"] if fn else f"Function {i}"
        icon = ":material/function:" if fn else ":material/error:"
        with st.expander(title, icon=icon, expanded=bool(problem) or ss.get(K + "fn_open") == uid):
            st.text_area("Definition (JSON)", key=K + f"fn_{uid}", height=240, label_visibility="collapsed",
                         help="Press Ctrl+Enter or click outside the box to check it.")
            if problem:
                st.error(problem, icon=":material/error:")
            else:
                st.caption(":green[:material/check:] Valid function definition")
            st.button("Remove", icon=":material/delete:", key=f"playground_rm_fn_{uid}", type="tertiary",
                      on_click=_remove_function, args=(uid,))


def _keep_known(key: str, known: dict) -> None:
    """Drop selected ids that no longer exist (deleted elsewhere): a multiselect refuses unknown values."""
    chosen = st.session_state.get(key) or []
    if any(i not in known for i in chosen):
        st.session_state[key] = [i for i in chosen if i in known]


def _unavailable(items: list[dict] | None, note: str) -> bool:
    """True (after saying why) when the files service is missing, so there is nothing to pick."""
    if items is None:
        st.caption(f":material/info: {note}")
    return items is None


def upload_key(base: str) -> str:
    """The current key of uploader `base`; it changes after its files are stored, which empties it."""
    return f"{base}_{st.session_state.get('playground_upload_n', 0)}"


def clear_uploads() -> None:
    """Callback helper: empty the sidebar's uploaders (their files were stored), so a second click stores nothing twice."""
    st.session_state["playground_upload_n"] = st.session_state.get("playground_upload_n", 0) + 1


def _upload_box(label: str, base: str, button: str, on_upload: Callable | None) -> None:
    """An uploader and the button that stores what it holds."""
    key = upload_key(base)
    st.file_uploader(label, accept_multiple_files=True, key=key)
    st.button(button, icon=":material/upload:", key=f"{base}_go", on_click=on_upload,
              disabled=not st.session_state.get(key))


def fmt_bytes(n: int) -> str:
    """340 bytes, 2.8 KB, 1.4 MB, 2.05 GB."""
    if n < 1000:
        return f"{n} byte{'s' if n != 1 else ''}"
    for unit, size in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9)):
        if n < size * 1000 or unit == "GB":
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    return f"{n} bytes"  # pragma: no cover


def store_status(store: dict) -> str:
    """How far a vector store's indexing is, in words: '2 files ready', 'Indexing 1 of 3 files…', '1 failed'."""
    counts = store.get("file_counts") or {}
    total, done = int(counts.get("total") or 0), int(counts.get("completed") or 0)
    busy, failed = int(counts.get("in_progress") or 0), int(counts.get("failed") or 0)
    if not total:
        return "No files yet"
    parts = [f":orange[:material/progress_activity: Indexing {done + failed + 1} of {total} files…]" if busy
             else f":green[:material/check_circle:] {done} file{'s' if done != 1 else ''} ready"]
    if failed:
        parts.append(f":red[:material/error: {failed} could not be read]")
    return " · ".join(parts)


def _file_search(stores: list[dict] | None, on_upload: Callable | None,
                 failed_files: Callable[[str], list[tuple[str, str]]] | None = None) -> None:
    if _unavailable(stores, "Picking a vector store needs the files service; the tool still searches files "
                            "attached to messages."):
        return
    by_id = {s["id"]: s for s in stores}
    _keep_known(K + "vector_store_ids", by_id)

    def label(i: str) -> str:
        if i not in by_id:
            return i
        total = (by_id[i].get("file_counts") or {}).get("total", 0)
        return f"{by_id[i].get('name') or i} ({total} file{'s' if total != 1 else ''})"

    st.multiselect("Vector store", list(by_id), key=K + "vector_store_ids", max_selections=1, format_func=label,
                   placeholder="None", help="The files this assistant searches.")
    chosen = [by_id[i] for i in st.session_state.get(K + "vector_store_ids") or [] if i in by_id]
    for store in chosen:
        used = int(store.get("usage_bytes") or 0)
        cost = file_search_storage_cost(used)
        st.caption(store_status(store) + f" · {fmt_bytes(used)} · "
                   + (f"{format_usd(cost)} a day" if cost else f"free up to {FILE_SEARCH_FREE_GB:g} GB"))
        if (store.get("file_counts") or {}).get("failed") and failed_files is not None:
            for name, why in failed_files(store["id"]):
                st.caption(f":red[:material/error:] {code_text(name)}: " + plain(why))
    _upload_box("Upload files into a new vector store", "playground_fs_upload", "Create vector store from these files",
                on_upload)


def _code_files(files: list[dict] | None, on_upload: Callable | None) -> None:
    if _unavailable(files, "Giving it files needs the files service; code still runs."):
        return
    by_id = {f["id"]: f for f in files}
    _keep_known(K + "code_file_ids", by_id)
    st.multiselect("Files for Code Interpreter", list(by_id), key=K + "code_file_ids", max_selections=20,
                   format_func=lambda i: by_id[i]["filename"] if i in by_id else i, placeholder="None")
    _upload_box("Upload files", "playground_ci_upload", "Add uploaded files", on_upload)


def render_config(assistant: dict, *, models: list[tuple[str, str]], backends: list, files: list[dict] | None,
                  stores: list[dict] | None, on_save: Callable, on_refresh: Callable,
                  on_upload_files: Callable | None = None, on_upload_store: Callable | None = None,
                  failed_files: Callable[[str], list[tuple[str, str]]] | None = None) -> dict:
    """Every setting of the assistant; returns {"draft", "errors", "dirty"} for what the widgets hold now."""
    ss = st.session_state
    resources = files is not None or stores is not None
    draft = read_draft()
    _body, errors = build_body(draft, assistant, resources=resources)
    dirty = is_dirty(draft, assistant, resources=resources)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if dirty:
            st.badge("Unsaved changes", icon=":material/edit:", color="orange")
            st.button("Save", type="primary", key="playground_save_top", on_click=on_save, disabled=bool(errors))
            st.button("Discard", type="tertiary", key="playground_discard", on_click=discard, args=(assistant,))
        else:
            st.badge("Saved", icon=":material/check:", color="green")

    st.text_input("Name", key=K + "name", max_chars=256, placeholder="e.g. Investing Bot")
    st.text_area("Instructions", key=K + "instructions", height=180,
                 placeholder="You are an expert in calculating investments…",
                 help="Like a system message: the assistant's role, persona and rules.")
    _model_picker(models, backends, ss.get(K + "model") or "", on_refresh)

    st.markdown("##### Tools")
    st.toggle("File Search", key=K + "file_search", help="Search the files you give it and cite them")
    if ss.get(K + "file_search"):
        _file_search(stores, on_upload_store, failed_files)
    st.toggle("Code Interpreter", key=K + "code_interpreter", help="Write and run Python in a sandbox")
    if ss.get(K + "code_interpreter"):
        _code_files(files, on_upload_files)
    _functions()

    st.markdown("##### Model configuration")
    st.segmented_control("Response format", list(FORMATS), key=K + "format", format_func=FORMATS.get, required=True,
                         on_change=_format_changed, help="JSON object: any valid JSON. JSON schema: JSON that "
                         "follows your schema.")
    if ss.get(K + "format") == "json_schema":
        _schema, problem = check_schema(ss.get(K + "schema") or "")
        st.text_area("JSON schema", key=K + "schema", height=240,
                     help="{\"name\": …, \"schema\": {…}, \"strict\": true}. Ctrl+Enter to check it.")
        if problem:
            st.error(problem, icon=":material/error:")
            st.button("Start from the example", key="playground_schema_example", type="tertiary",
                      on_click=_insert_example_schema)
        else:
            st.caption(":green[:material/check:] Valid JSON schema")
    elif ss.get(K + "format") == "json_object":
        st.caption("Tip: say “reply in JSON” in the instructions; some models insist on it.")
    st.slider("Temperature", 0.0, 2.0, step=0.01, key=K + "temperature",
              help="Lower is more focused and repeatable, higher more varied.")
    st.slider("Top P", 0.0, 1.0, step=0.01, key=K + "top_p",
              help="Sample only from the most likely tokens whose probabilities add up to P.")
    if errors:
        st.error("Not saved — fix first:\n\n" + "\n".join(f"- {e}" for e in errors), icon=":material/block:")
    st.button("Save", type="primary", key="playground_save", on_click=on_save, disabled=not dirty or bool(errors),
              width="stretch", icon=":material/save:")
    return {"draft": draft, "errors": errors, "dirty": dirty}


def discard(assistant: dict) -> None:
    """Callback: put the stored settings back into the widgets and forget the unsaved draft."""
    st.session_state.get("playground_drafts", {}).pop(assistant["id"], None)
    load_draft(draft_from_assistant(assistant))
