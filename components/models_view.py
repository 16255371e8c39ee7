"""The Models page's pieces: the catalog cards, the downloads with their progress, the downloaded models."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from assistants.model_catalog import GB, CatalogModel, fits, ram_gb
from assistants.model_downloads import Download, InstalledModel, human_bytes
from components import plain_error
from components.safe_text import code_text, plain

# Download state -> (material icon, words for people).
STATES = {
    "checking": (":material/travel_explore:", "Asking the hub"),
    "downloading": (":material/downloading:", "Downloading"),
    "verifying": (":material/verified:", "Checking the sha256"),
    "done": (":material/check_circle:", "Ready"),
    "failed": (":material/error:", "Stopped"),
    "cancelled": (":material/block:", "Cancelled"),
}


def time_left(seconds: float | None) -> str:
    """12 s left, 4 min left, 1 h 5 min left (or '' when it cannot be told)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"{round(seconds / 60)} min left"
    return f"{int(seconds // 3600)} h {round(seconds % 3600 / 60)} min left"


def progress_text(d: Download) -> str:
    """'1.23 GB of 4.68 GB · 12.3 MB/s · 4 min left' (what the progress bar says)."""
    if d.state == "checking":
        return f"Asking the hub about {d.filename}…"
    if d.state == "verifying":
        return f"Checking the sha256 of {human_bytes(d.total_bytes)}…"
    parts = [f"{human_bytes(d.done_bytes)} of {human_bytes(d.total_bytes)}"]
    if d.speed > 0:
        parts.append(f"{human_bytes(d.speed)}/s")
    if left := time_left(d.eta_seconds):
        parts.append(left)
    return " · ".join(parts)


def machine_summary(ram_bytes: int | None, free_bytes: int, installed: list[InstalledModel], folder: str) -> None:
    """This machine's RAM, the free disk and what is downloaded, as three tiles."""
    c1, c2, c3 = st.columns(3)
    c1.metric("RAM", f"{ram_gb(ram_bytes):.0f} GB" if ram_bytes else "unknown", border=True,
              help="Memory of the machine the Playground runs on. Each model says how much a machine needs for it.")
    c2.metric("Free disk", human_bytes(free_bytes), border=True, help=f"Free space in {folder}")
    total = human_bytes(sum(m.size_bytes for m in installed))
    c3.metric("Downloaded models", f"{len(installed)} · {total}" if installed else "None yet",
              border=True, help=f"The .gguf files in {folder}")


def downloads_panel(downloads: list[Download], key: str) -> tuple[str, str] | None:
    """Every download with its progress bar; returns (action, model id) for Cancel, Resume or Dismiss."""
    action = None
    for d in downloads:
        icon, words = STATES.get(d.state, (":material/help:", d.state))
        with st.container(border=True, key=f"{key}_{_slug(d.model_id)}"):
            row = st.container(horizontal=True, vertical_alignment="center", gap="small")
            row.markdown(f"{icon} **{d.model_id}** · {words}", width="stretch")
            if d.active:
                if row.button("Cancel", icon=":material/close:", key=f"{key}_cancel_{_slug(d.model_id)}", width="content",
                              disabled=d.state == "verifying" and d.fraction > 0.95):
                    action = ("cancel", d.model_id)
            else:
                if d.state == "failed" and d.resumable and row.button(
                        "Resume", type="primary", icon=":material/play_arrow:", key=f"{key}_resume_{_slug(d.model_id)}",
                        width="content"):
                    action = ("resume", d.model_id)
                label = "Discard" if d.state == "failed" and d.resumable else "Dismiss"
                if row.button(label, key=f"{key}_dismiss_{_slug(d.model_id)}", width="content",
                              help="Remove the partial file" if label == "Discard" else None):
                    action = ("dismiss", d.model_id)
            if d.active:
                st.progress(d.fraction, text=progress_text(d))
            elif d.state == "done":
                st.success(f"{code_text(d.model_id)} is in the models folder: pick it in the Playground's model picker.",
                           icon=":material/check_circle:")
            elif d.state == "failed":
                st.error(plain_error(d.error or "The download failed."), icon=":material/error:")
            elif d.state == "cancelled":
                st.caption("Cancelled; the partial file was removed.")
            st.caption(plain(f"{d.repo} · {d.filename}"))
    return action


def catalog_cards(catalog: tuple[CatalogModel, ...], *, ram_bytes: int | None, suggested: str | None,
                  installed: set[str], busy: set[str], key: str,
                  unusable: frozenset[str] | set[str] = frozenset()) -> CatalogModel | None:
    """The curated models as cards, two a row; returns the one whose Download was pressed.

    `unusable`: the installed ones whose file cannot run (truncated, too big): said on the card, not "Downloaded".
    """
    chosen = None
    for start in range(0, len(catalog), 2):
        cols = st.columns(2, gap="medium")
        for col, m in zip(cols, catalog[start:start + 2], strict=False):
            # Text on top, the button at the bottom: the buttons of a row line up whatever the text's length.
            with col, st.container(border=True, height="stretch", vertical_alignment="distribute",
                                   key=f"{key}_{_slug(m.model_id)}"):
                with st.container(gap="small"):
                    head = st.container(horizontal=True, vertical_alignment="center", gap="small")
                    head.markdown(f"#### {m.name}", width="content")
                    fit = fits(m, ram_bytes)
                    if m.model_id == suggested:
                        head.badge("Best fit for this machine", icon=":material/star:", color="blue")
                    elif fit:
                        head.badge("Fits this machine", icon=":material/check:", color="green")
                    elif fit is False:
                        head.badge(f"Needs {m.ram_bytes / GB:.0f} GB RAM", icon=":material/memory:", color="orange")
                    st.markdown(f"**{human_bytes(m.size_bytes)}** download · needs **{m.ram_bytes / GB:.0f} GB** "
                                f"RAM · {m.licence}")
                    st.markdown(m.good_at)
                    st.caption(f"{m.repo} · {m.filename}")
                slug = _slug(m.model_id)
                if m.model_id in unusable:
                    st.button("Downloaded, cannot run", icon=":material/error:", disabled=True, key=f"{key}_have_{slug}",
                              help="The file in the models folder cannot be used (the reason is under Downloaded): "
                                   "delete it there, then download it again.")
                elif m.model_id in installed:
                    st.button("Downloaded", icon=":material/check:", disabled=True, key=f"{key}_have_{slug}")
                elif m.model_id in busy:
                    st.button("Downloading…", icon=":material/downloading:", disabled=True, key=f"{key}_busy_{slug}")
                elif st.button("Download", icon=":material/download:", key=f"{key}_get_{slug}",
                               type="primary" if m.model_id == suggested else "secondary"):
                    chosen = m
    return chosen


def custom_download(key: str) -> tuple[str, str] | None:
    """'Any Hugging Face repo + file': returns (repo, file) when Download is pressed."""
    with st.form(key, border=True, enter_to_submit=True):
        c1, c2 = st.columns(2)
        repo = c1.text_input("Repository", key=f"{key}_repo", placeholder="owner/name, e.g. bartowski/Qwen2.5-7B-Instruct-GGUF")
        filename = c2.text_input("File", key=f"{key}_file", placeholder="a .gguf file in it, e.g. Qwen2.5-7B-Instruct-Q4_K_M.gguf")
        st.caption("A GGUF instruct model that calls tools well (Qwen2.5, Llama 3.x, Mistral …); Q4_K_M is the usual "
                   "size/quality balance. Gated or private repos need HF_TOKEN.")
        if st.form_submit_button("Download", icon=":material/download:"):
            return repo, filename
    return None


def context_words(tokens: int | None) -> str:
    """32768 -> '32k context' (what the model was trained for), '' when its header does not say."""
    if not tokens:
        return ""
    return f"{tokens // 1024}k context" if tokens >= 1024 else f"{tokens} context"


def installed_list(installed: list[InstalledModel], key: str) -> str | None:
    """The downloaded models with size, context and whether they can run; returns the model id whose Delete was pressed."""
    pressed = None
    for m in installed:
        with st.container(border=True, key=f"{key}_{_slug(m.model_id)}"):
            row = st.container(horizontal=True, vertical_alignment="center", gap="small")
            when = datetime.fromtimestamp(m.modified).strftime("%Y-%m-%d %H:%M")
            facts = [human_bytes(m.size_bytes), context_words(m.context_length), when]
            icon = ":material/deployed_code:" if m.usable else ":material/error:"
            row.markdown(f"{icon} **{plain(m.model_id)}** · " + " · ".join(f for f in facts if f), width="stretch")
            if m.usable:
                row.badge("Ready", icon=":material/check:", color="green", width="content")
            else:
                row.badge("Cannot run", icon=":material/block:", color="red", width="content")
            if row.button("Delete", icon=":material/delete:", key=f"{key}_delete_{_slug(m.model_id)}", width="content"):
                pressed = m.model_id
            if not m.usable:
                st.error(plain(m.error or "This file cannot be loaded."), icon=":material/error:")
            elif m.memory_bytes:
                st.caption(f"Needs about {m.memory_bytes / 2**30:.1f} GB of memory while it runs.")  # as the refusal counts
    return pressed


def _slug(model_id: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in model_id)
