"""The small actions under a message: Copy and Regenerate with its versions on a reply, Edit and resend on yours."""

from __future__ import annotations

import html
from collections.abc import Callable

import streamlit as st

# One click, no rerun: the browser's clipboard API from a plain button. The text sits escaped in an attribute,
# so it is never markup. Streamlit strips inline handlers, so one listener on the document (added once per tab,
# by SETUP's script) serves every Copy button.
_COPY = ('<button class="pg-copy" type="button" title="Copy the reply" data-copy="{text}">'
         '<span class="pg-icon">content_copy</span><span class="pg-label">Copy</span></button>')
_SCRIPT = """<script>
if (!window.__pgCopy) {
  window.__pgCopy = true;
  document.addEventListener('click', e => {
    const b = e.target.closest && e.target.closest('.pg-copy');
    if (!b) return;
    navigator.clipboard.writeText(b.dataset.copy).then(() => {
      b.dataset.done = '1';
      setTimeout(() => delete b.dataset.done, 1500);
    });
  });
}
</script>"""
SETUP = _SCRIPT + """<style>
.pg-copy{display:inline-flex;align-items:center;gap:0.3rem;border:0;background:none;color:inherit;cursor:pointer;
 font:inherit;font-size:0.875rem;padding:0.25rem 0.4rem;border-radius:0.5rem;opacity:0.8}
.pg-copy:hover{opacity:1}
.pg-copy .pg-icon{font-family:'Material Symbols Rounded';font-size:1.1rem;line-height:1}
.pg-copy[data-done] .pg-label{visibility:hidden}
.pg-copy[data-done]::after{content:'Copied';margin-left:-2.6rem}
[data-testid='stChatMessage']:has(> * [class*='_editrow']){position:relative}
[data-testid='stChatMessage']:has([class*='_editrow']) [data-testid='stChatMessageContent']{padding-right:2.75rem}
[data-testid='stChatMessage']:has([class*='_editrow'] [class*='_switch']) [data-testid='stChatMessageContent']{padding-right:8rem}
[data-testid='stChatMessage'] :has(> [class*='_editrow']){position:absolute;top:0.25rem;right:0.25rem;width:auto !important}
</style>"""


def setup() -> None:
    """The Copy buttons' style and their one click listener, and Edit in the corner of your message (not a row of
    its own): once per page run, before the messages."""
    st.html(SETUP, unsafe_allow_javascript=True)


def copy_button(text: str) -> None:
    """A Copy button that puts `text` on the clipboard."""
    st.html(_COPY.format(text=html.escape(text, quote=True)), width="content")


BUSY = "Wait for the run to finish (or cancel it) first"


def _pager(key: str, shown: int, count: int, on_step: Callable, args: tuple, busy: bool, what: str) -> None:
    """‹ shown / count ›: the arrows call on_step(*args, shown - 1 or shown + 1) (numbers from 1)."""
    with st.container(horizontal=True, vertical_alignment="center", gap=None, width="content", key=key):
        st.button("", icon=":material/chevron_left:", key=key + "_prev", type="tertiary", on_click=on_step,
                  args=(*args, shown - 1), disabled=busy or shown <= 1,
                  help=f"{BUSY} to switch {what}" if busy else f"Earlier {what.removesuffix('s')}")
        st.caption(f"{shown} / {count}", width="content")
        st.button("", icon=":material/chevron_right:", key=key + "_next", type="tertiary", on_click=on_step,
                  args=(*args, shown + 1), disabled=busy or shown >= count,
                  help=f"{BUSY} to switch {what}" if busy else f"Later {what.removesuffix('s')}")


def version_pager(count: int, key: str) -> int:
    """‹ n / N › over the text of a reply's earlier versions kept by older Playgrounds (run metadata) and the reply
    itself; returns the index shown (count = the reply)."""
    ss = st.session_state
    shown = min(ss.get(key, count), count)
    _pager(key + "_pager", shown + 1, count + 1, lambda n: ss.update({key: max(0, min(count, n - 1))}), (), False,
           "texts")
    return shown


def version_switch(key: str, switch: tuple, busy: bool) -> None:
    """‹ n / N › over the versions of what follows a point: flipping swaps them in the thread."""
    on_flip, args, current, total, _after = switch
    _pager(key, current, total, on_flip, args, busy, "versions")


def regenerate_button(key: str, on_regenerate: Callable, args: tuple, busy: bool) -> None:
    """Ask again from the same point; this reply and what follows are kept as a version."""
    st.button("", icon=":material/refresh:", key=key, type="tertiary", on_click=on_regenerate, args=args,
              disabled=busy, help=f"{BUSY} to regenerate" if busy else
              "Regenerate: a new reply from this point (this one, and what follows it, is kept: flip back with ‹ ›)")


def edit_button(text: str, key: str, on_send: Callable, args: tuple, later: int, busy: bool) -> None:
    """Edit and resend a message of yours: the box opens with its text; what came after it is kept as a version."""
    box = st.popover("", icon=":material/edit:", type="tertiary", key=key, on_change="rerun", disabled=busy,
                     help=f"{BUSY} to edit and resend" if busy else "Edit and resend")
    if box.open:  # built only when opened: a long thread has many messages
        with box:
            field = key + "_text"
            st.session_state.setdefault(field, text)
            st.text_area("Edit your message", key=field, height=120)
            after = "The message after it is" if later == 1 else f"The {later} messages after it are"
            st.caption("Sent in its place, with its images and attachments, and answered again"
                       + (f". {after} kept as a version: flip back with ‹ ›." if later else "."))
            st.button("Send", icon=":material/send:", type="primary", key=key + "_send", on_click=on_send,
                      args=(*args, field))
