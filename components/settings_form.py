"""The Settings form: backends, keys (always masked), model aliases; checks that need no Streamlit."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlparse

import streamlit as st

from assistants.config import EMBEDDED_MODEL_ID, OPENAI_DEFAULT_URL, openai_key_for, parse_aliases, same_url, saved_key_url
from components import plain_error
from components.safe_text import code_text, plain

# Presets people pick from; the URLs are the servers' documented OpenAI-compatible defaults.
PRESETS = {
    "Ollama": ("ollama", "http://localhost:11434/v1"),
    "LM Studio": ("lmstudio", "http://localhost:1234/v1"),
    "vLLM": ("vllm", "http://localhost:8000/v1"),
    "Other server": ("", ""),
}
RESERVED_NAMES = ("openai", "embedded")  # the OpenAI section and the in-process model own these
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")

OPENAI_KEY = "settings_openai_key"
OPENAI_KEY_CLEAR = "settings_openai_key_clear"
OPENAI_URL = "settings_openai_url"
ALIASES = "settings_aliases"
DEFAULT_MODEL = "settings_default_model"
ROWS = "settings_rows"      # [{"uid", "saved_key", "saved_url"}]: the server rows being edited, in order
TESTS = "settings_tests"    # {"openai" | uid: {"url", "ok", "models", "error"}}: last "Test connection" answers
BASE = "settings_base"      # the saved settings the form was filled from: what "changed elsewhere" is measured against
SAVE_TRIED = "settings_save_tried"  # Save was pressed: empty required fields are marked too (not before)


# -- checks and conversions (no Streamlit) ------------------------------------------------------
def mask(key: str) -> str:
    """A key shown safely: its first three and last four characters, e.g. sk-…abcd."""
    key = (key or "").strip()
    if not key:
        return ""
    if len(key) < 12:
        return "•" * 6
    return f"{key[:3]}…{key[-4:]}"


def check_url(url: str, *, required: bool) -> str | None:
    """Why `url` can't be a backend's base URL, or None."""
    url = (url or "").strip()
    if not url:
        return "Enter the server's base URL, e.g. http://localhost:11434/v1." if required else None
    if any(c.isspace() for c in url):
        return "A URL cannot contain spaces."
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        return "The URL must start with http:// or https:// (e.g. http://localhost:11434/v1)."
    try:
        port = parsed.port
    except ValueError:
        return "The port in this URL is not a number between 0 and 65535."
    if not parsed.hostname or (port is not None and port == 0):
        return "The URL needs a host name, e.g. http://localhost:11434/v1."
    if parsed.query or parsed.fragment:
        return "A base URL has no '?…' or '#…' part."
    return None


def url_hint(url: str) -> str | None:
    """A gentle note for a URL that is valid but probably not what the user meant."""
    path = urlparse((url or "").strip()).path.rstrip("/")
    if url and not check_url(url, required=False) and not path.endswith("/v1") and "/openai" not in path:
        return "Most OpenAI-compatible servers answer under /v1 (e.g. …:11434/v1). Test the connection to be sure."
    return None


def check_name(name: str, others: list[str]) -> str | None:
    """Why `name` can't name a server, or None."""
    name = (name or "").strip()
    if not name:
        return "Give this server a name (it shows in the model list)."
    if not _NAME.match(name):
        return "Use up to 40 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit."
    if name.lower() in RESERVED_NAMES:
        return f"'{name}' is reserved for the built-in {name.lower()} backend; pick another name."
    if name.lower() in (o.strip().lower() for o in others):
        return f"Another server is already named '{name}'."
    return None


def aliases_text(aliases: dict[str, str]) -> str:
    """Aliases as the editor shows them: one `alias = model` per line."""
    return "\n".join(f"{a} = {m}" for a, m in aliases.items())


def check_aliases(text: str) -> tuple[dict[str, str], str | None]:
    """Parse the aliases editor: ({alias: model}, None) or ({}, why it is wrong)."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip() and not ln.strip().startswith("#")]
    seen: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if "," in line:
            return {}, f"Line {n}: put one alias per line (no commas): {line!r}."
        try:
            pair = parse_aliases(line)
        except ValueError:
            return {}, f"Line {n}: {line!r} must look like 'alias = model', e.g. 'gpt-4o-mini = {EMBEDDED_MODEL_ID}'."
        (alias, model), = pair.items()
        if any(c.isspace() for c in alias + model):
            return {}, f"Line {n}: model names cannot contain spaces ({line!r})."
        if alias in seen:
            return {}, f"Line {n}: the alias '{alias}' is defined twice."
        if alias == model:
            return {}, f"Line {n}: '{alias}' points to itself."
        seen[alias] = model
    for alias, model in seen.items():
        if model in seen:
            return {}, f"'{alias}' points to '{model}', which is itself an alias; point it at a real model."
    return seen, None


def draft(state) -> dict:
    """What the form holds now."""
    return {
        "openai_key": (state.get(OPENAI_KEY) or "").strip(),
        "openai_key_clear": bool(state.get(OPENAI_KEY_CLEAR)),
        "openai_url": (state.get(OPENAI_URL) or "").strip(),
        "backends": [{"uid": r["uid"], "saved_key": r.get("saved_key", ""), "saved_url": r.get("saved_url", ""),
                      "name": (state.get(f"settings_b_{r['uid']}_name") or "").strip(),
                      "url": (state.get(f"settings_b_{r['uid']}_url") or "").strip(),
                      "key": (state.get(f"settings_b_{r['uid']}_key") or "").strip(),
                      "key_clear": bool(state.get(f"settings_b_{r['uid']}_key_clear"))}
                     for r in state.get(ROWS, [])],
        "aliases": state.get(ALIASES) or "",
        "default_model": (state.get(DEFAULT_MODEL) or "").strip(),
    }


def problems(d: dict) -> dict[str, str]:
    """Every field that is wrong, keyed by its widget key."""
    errors: dict[str, str] = {}
    if msg := check_url(d["openai_url"], required=False):
        errors[OPENAI_URL] = msg
    names = [b["name"] for b in d["backends"]]
    for i, b in enumerate(d["backends"]):
        if msg := check_name(b["name"], names[:i]):
            errors[f"settings_b_{b['uid']}_name"] = msg
        if msg := check_url(b["url"], required=True):
            errors[f"settings_b_{b['uid']}_url"] = msg
    _, msg = check_aliases(d["aliases"])
    if msg:
        errors[ALIASES] = msg
    if d["default_model"] and any(c.isspace() for c in d["default_model"]):
        errors[DEFAULT_MODEL] = "A model name cannot contain spaces."
    return errors


def backend_key(b: dict) -> str:
    """The key a server row will be saved (and tested) with: the typed one, else the saved one while its URL stays."""
    if b["key"]:
        return b["key"]
    return "" if b["key_clear"] or not same_url(b["url"], b.get("saved_url", "")) else b["saved_key"]


def backend_key_dropped(b: dict) -> bool:
    """Whether the row's saved key stops applying because its URL was changed (and no new key was typed)."""
    return bool(b["saved_key"] and not b["key"] and not b["key_clear"] and not same_url(b["url"], b.get("saved_url", "")))


def openai_url(d: dict, env_url: str) -> str:
    """The OpenAI base URL the form stands for: its own, else the environment's, else OpenAI's."""
    return d["openai_url"] or env_url or OPENAI_DEFAULT_URL


def openai_key(d: dict, saved: dict, env: dict) -> str:
    """The key Test connection and Save use for the form's URL: the typed one, else only one that belongs to it."""
    if d["openai_key"]:
        return d["openai_key"]
    kept = {} if d["openai_key_clear"] else {"openai_api_key": saved.get("openai_api_key", ""),
                                             "openai_api_key_url": saved_key_url(saved, env)}
    return openai_key_for(openai_url(d, env.get("OPENAI_BASE_URL", "")), kept, env)


def openai_saved_key_dropped(d: dict, saved: dict, env_url: str) -> str:
    """The URL the saved key belongs to when the form's URL is another one (it will not be used there), else ""."""
    key, bound = saved.get("openai_api_key"), saved_key_url(saved, {"OPENAI_BASE_URL": env_url})
    if key and not d["openai_key"] and not d["openai_key_clear"] and not same_url(bound, openai_url(d, env_url)):
        return bound
    return ""


def to_values(d: dict, saved: dict, env_url: str = "") -> dict:
    """The settings document for draft `d`, keeping keys of `saved` this form does not edit.

    A key is saved together with the URL it belongs to (`openai_api_key_url`); a saved key whose URL was changed
    is dropped, so it can never be sent to the new URL.
    """
    values = dict(saved)
    if d["openai_key"]:
        key, bound = d["openai_key"], openai_url(d, env_url)
    elif d["openai_key_clear"] or openai_saved_key_dropped(d, saved, env_url):
        key, bound = "", ""
    else:
        key = saved.get("openai_api_key", "")
        bound = saved.get("openai_api_key_url", "")  # older files: the key belongs to the URL saved beside it
    values["openai_api_key"] = key
    values["openai_api_key_url"] = bound
    values["openai_base_url"] = d["openai_url"]
    values["backends"] = [{"name": b["name"], "base_url": b["url"], "api_key": backend_key(b)} for b in d["backends"]]
    values["aliases"] = check_aliases(d["aliases"])[0]
    values["default_model"] = d["default_model"]
    # Empty values are left out, so the environment (.env) still applies where nothing was set here.
    return comparable(values)


def comparable(values: dict) -> dict:
    """Settings values with empty entries dropped."""
    return {k: v for k, v in values.items() if v not in ("", None, [], {})}


# -- saved elsewhere meanwhile: a three-way merge -------------------------------------------------
FIELD_NAMES = {"openai_api_key": "the OpenAI API key", "openai_api_key_url": "the URL of the OpenAI API key",
               "openai_base_url": "the OpenAI base URL",
               "default_model": "the default model"}


def _label(field: str, item: str | None = None) -> str:
    if field == "backends":
        return f"server '{item}'"
    if field == "aliases":
        return f"alias '{item}'"
    return FIELD_NAMES.get(field, f"'{field}'")


def _merge_items(base: dict, mine: dict, theirs: dict, field: str, notes: dict) -> dict:
    """Item by item (aliases by name, servers by name): an item I did not touch takes their version."""
    out: dict = {}
    for key in [*mine, *(k for k in theirs if k not in mine), *(k for k in base if k not in mine and k not in theirs)]:
        b, m, t = base.get(key), mine.get(key), theirs.get(key)
        if m == b:
            value = t
            if t != b:
                notes["kept"].append(_label(field, key))
        else:
            value = m
            if t != b and t != m:
                notes["replaced"].append(_label(field, key))
        if value is not None:
            out[key] = value
    return out


def merge(base: dict, mine: dict, theirs: dict) -> tuple[dict, dict[str, list[str]]]:
    """Settings to save when someone else saved `theirs` since this form loaded `base` and the form now holds `mine`.

    What I changed wins; what I left alone takes their newer value, field by field (servers and aliases one by
    one). Returns the values and {"kept": their changes kept, "replaced": their changes my edits replaced}.
    """
    notes: dict[str, list[str]] = {"kept": [], "replaced": []}
    out: dict = {}
    for field in [*mine, *(k for k in theirs if k not in mine), *(k for k in base if k not in mine and k not in theirs)]:
        b, m, t = base.get(field), mine.get(field), theirs.get(field)
        if field == "backends":
            def by_name(items):
                return {x.get("name", ""): x for x in items or []}
            merged = _merge_items(by_name(b), by_name(m), by_name(t), field, notes)
            out[field] = list(merged.values())
        elif field == "aliases":
            out[field] = _merge_items(b or {}, m or {}, t or {}, field, notes)
        elif m == b:
            out[field] = t
            if t != b:
                notes["kept"].append(_label(field))
        else:
            out[field] = m
            if t != b and t != m:
                notes["replaced"].append(_label(field))
    return comparable(out), notes


def changes(before: dict, after: dict) -> list[str]:
    """What differs between two saved settings, in words ("server 'ollama'", "the default model")."""
    return merge(before, before, after)[1]["kept"]


# -- state --------------------------------------------------------------------------------------
def seed(state, saved: dict, force: bool = False) -> None:
    """Fill the form from the saved settings, once per session (or again after Save / Discard)."""
    if ROWS in state and not force:
        return
    for key in [k for k in state if str(k).startswith("settings_b_")] + [OPENAI_KEY, OPENAI_KEY_CLEAR]:
        state.pop(key, None)
    state[BASE] = comparable(saved)
    state[OPENAI_URL] = saved.get("openai_base_url", "")
    state[ALIASES] = aliases_text(saved.get("aliases") or {})
    state[DEFAULT_MODEL] = saved.get("default_model", "")
    rows = []
    for b in saved.get("backends") or []:
        uid = secrets.token_hex(4)
        state[f"settings_b_{uid}_name"] = b.get("name", "")
        state[f"settings_b_{uid}_url"] = b.get("base_url", "")
        rows.append({"uid": uid, "saved_key": b.get("api_key", ""), "saved_url": b.get("base_url", "")})
    state[ROWS] = rows
    state[TESTS] = {}
    state[SAVE_TRIED] = False


def add_row(state, preset: str) -> None:
    """Callback: a new server row filled from a preset (a unique name if the preset's is taken)."""
    name, url = PRESETS[preset]
    taken = {(state.get(f"settings_b_{r['uid']}_name") or "").lower() for r in state.get(ROWS, [])}
    if name and name in taken:
        n = 2
        while f"{name}-{n}" in taken:
            n += 1
        name = f"{name}-{n}"
    uid = secrets.token_hex(4)
    state[f"settings_b_{uid}_name"] = name
    state[f"settings_b_{uid}_url"] = url
    state[ROWS] = [*state.get(ROWS, []), {"uid": uid, "saved_key": "", "saved_url": ""}]


def remove_row(state, uid: str) -> None:
    """Callback: drop a server row (saved only when the user presses Save)."""
    state[ROWS] = [r for r in state.get(ROWS, []) if r["uid"] != uid]
    for key in [k for k in state if str(k).startswith(f"settings_b_{uid}_")]:
        del state[key]
    state.get(TESTS, {}).pop(uid, None)


# -- rendering ----------------------------------------------------------------------------------
def shown_errors(errors: dict[str, str], state) -> dict[str, str]:
    """The problems to mark in red now: an empty required field only after Save was tried (a new row starts clean)."""
    if state.get(SAVE_TRIED):
        return errors
    return {k: v for k, v in errors.items() if (state.get(k) or "").strip()}


def inline_error(errors: dict[str, str], key: str) -> None:
    """The field's problem, in red, right under it."""
    if key in errors:
        st.markdown(f":red[:material/error: {errors[key]}]")


def test_result(result: dict | None, url: str) -> None:
    """The last "Test connection" answer, if it was for this URL."""
    if not result or result["url"] != url:
        return
    if result["ok"]:
        models = result["models"]
        # Names the server chose: text, never markdown.
        shown = ", ".join(code_text(m) for m in models[:12]) + (f" and {len(models) - 12} more" if len(models) > 12 else "")
        st.success(f"Connected: {len(models)} model{'s' if len(models) != 1 else ''}. {shown}", icon=":material/check_circle:")
    else:
        st.error(plain(plain_error(result["error"])), icon=":material/link_off:")


def openai_section(state, errors: dict, hint: str, dropped_from: str, env_note: str) -> bool:
    """The OpenAI key and base URL; returns True when "Test connection" was pressed.

    `hint`: what the key field says when empty; `dropped_from`: the URL the saved key belongs to when the form's URL
    is another one; `env_note`: why OPENAI_API_KEY is not used for this URL, if it is not.
    """
    st.subheader("OpenAI", anchor=False)
    st.caption("Your OpenAI API key, or the key and URL of a gateway that speaks OpenAI's API (Azure-style proxies, "
               "OpenRouter, …). Leave both empty to use local models only. A key is only ever sent to the URL it "
               "was entered with.")
    left, right = st.columns(2)
    with left:
        state.setdefault(OPENAI_KEY, "")
        st.text_input("API key", key=OPENAI_KEY, type="password", placeholder=hint, autocomplete="off",
                      persist_state="session", help="Stored in the Playground's database (as trusted as its data dir), never logged. "
                      "It is never shown again in full, and it is sent only to the base URL beside it.")
        if not dropped_from and state.get(BASE, {}).get("openai_api_key"):
            st.checkbox("Remove the saved key", key=OPENAI_KEY_CLEAR, persist_state="session")
        if env_note:
            st.caption(env_note)
    with right:
        st.text_input("Base URL", key=OPENAI_URL, placeholder=OPENAI_DEFAULT_URL, persist_state="session",
                      help="Leave empty for OpenAI itself. Changing it clears the saved key: a key belongs to its URL.")
        inline_error(errors, OPENAI_URL)
    if dropped_from and not state.get(OPENAI_KEY):
        st.warning(f"The base URL changed, so the saved key (it belongs to {code_text(dropped_from)}) will not be "
                   "sent to the new URL, and Save removes it. Type the key for the new URL.", icon=":material/key_off:")
    clicked = st.button("Test connection", key="settings_test_openai", icon=":material/network_check:",
                        disabled=OPENAI_URL in errors)
    return clicked


def openai_hint(d: dict, saved: dict, env: dict) -> tuple[str, str, str]:
    """(placeholder of the key field, URL a now unused saved key belongs to, note on the environment's key)."""
    env_url, env_key = env.get("OPENAI_BASE_URL", ""), env.get("OPENAI_API_KEY", "")
    dropped = openai_saved_key_dropped(d, saved, env_url)
    key = openai_key({**d, "openai_key": ""}, saved, env)
    if key and key == saved.get("openai_api_key"):
        hint = f"Saved key {mask(key)} — type a new key to replace it"
    elif key:
        hint = f"Using OPENAI_API_KEY from the environment ({mask(key)})"
    else:
        hint = "sk-…"
    note = ""
    if env_key and key != env_key:
        note = (f"OPENAI_API_KEY from the environment belongs to {code_text(env_url or OPENAI_DEFAULT_URL)} only; "
                "it is not sent to this URL.")
    return hint, dropped, note


def backend_row(state, row: dict, errors: dict, shown: dict) -> str | None:
    """One named server: name, URL, optional key; returns "test" when its test button was pressed.

    `errors` disable its test button; `shown` are the ones marked in red (not yet an empty field of a new row).
    """
    uid = row["uid"]
    with st.container(border=True):
        c_name, c_url, c_key = st.columns([2, 4, 3])
        with c_name:
            st.text_input("Name", key=f"settings_b_{uid}_name", persist_state="session", placeholder="e.g. ollama")
            inline_error(shown, f"settings_b_{uid}_name")
        with c_url:
            st.text_input("Base URL", key=f"settings_b_{uid}_url", persist_state="session",
                          placeholder="http://localhost:11434/v1")
            inline_error(shown, f"settings_b_{uid}_url")
            url = state.get(f"settings_b_{uid}_url") or ""
            if f"settings_b_{uid}_url" not in errors and (hint := url_hint(url)):
                st.caption(hint)
        with c_key:
            dropped = bool(row.get("saved_key")) and not same_url(url, row.get("saved_url", ""))
            hint = f"Saved key {mask(row['saved_key'])} — type to replace" if row.get("saved_key") and not dropped \
                else "Optional"
            state.setdefault(f"settings_b_{uid}_key", "")
            st.text_input("API key", key=f"settings_b_{uid}_key", type="password", placeholder=hint,
                          autocomplete="off", persist_state="session",
                          help="Only for servers that ask for one; Ollama and LM Studio don't. "
                          "It is sent only to the base URL beside it.")
            if row.get("saved_key") and not dropped:
                st.checkbox("Remove the saved key", key=f"settings_b_{uid}_key_clear", persist_state="session")
        if dropped and not state.get(f"settings_b_{uid}_key"):
            st.warning(f"The URL changed, so the saved key (it belongs to {code_text(row['saved_url'])}) will not be "
                       "sent to the new URL, and Save removes it. Type the key for the new URL.", icon=":material/key_off:")
        buttons = st.container(horizontal=True)
        pressed = buttons.button("Test connection", key=f"settings_b_{uid}_test", icon=":material/network_check:",
                                disabled=f"settings_b_{uid}_url" in errors)
        buttons.button("Remove", key=f"settings_b_{uid}_remove", icon=":material/delete:", on_click=remove_row,
                        args=(state, uid))
        test_result(state.get(TESTS, {}).get(uid), url.strip())
    return "test" if pressed else None


def add_buttons(state) -> None:
    """One button per preset, adding a filled-in row."""
    row = st.container(horizontal=True)
    for preset in PRESETS:
        row.button(f"Add {preset}" if preset != "Other server" else "Add another server", key=f"settings_add_{preset}",
                   icon=":material/add:", on_click=add_row, args=(state, preset))


def aliases_section(state, errors: dict, env_aliases: dict[str, str]) -> None:
    """The aliases editor with its parsed result."""
    st.subheader("Model aliases", anchor=False)
    st.caption("Let assistants and scripts written for one model name run on another: `alias = model`, one per line. "
               "For example, `gpt-4o-mini = smollm2-135m-instruct` runs old OpenAI code on the embedded model.")
    st.text_area("Aliases", key=ALIASES, height=120, persist_state="session", label_visibility="collapsed",
                 placeholder=f"No aliases yet. For example:  gpt-4o-mini = {EMBEDDED_MODEL_ID}")
    inline_error(errors, ALIASES)
    if env_aliases:
        st.caption("Also set in the environment (PLAYGROUND_MODEL_ALIASES; an alias here wins): "
                   + ", ".join(f"`{a}` → `{m}`" for a, m in env_aliases.items()))
