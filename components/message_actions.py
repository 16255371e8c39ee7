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
[data-testid='stChatMessage'] :has(> [class*='_editrow']){position:absolute;top:0.25rem;right:0.25rem;width:auto !important}
</style>"""


def setup() -> None:
    """The Copy buttons' style and their one click listener, and Edit in the corner of your message (not a row of
    its own): once per page run, before the messages."""
    st.html(SETUP, unsafe_allow_javascript=True)


def copy_button(text: str) -> None:
    """A Copy button that puts `text` on the clipboard."""
    st.html(_COPY.format(text=html.escape(text, quote=True)), width="content")


def version_pager(count: int, key: str) -> int:
    """‹ n / N › over a reply's earlier versions and the current one; returns the index shown (count = current)."""
    ss = st.session_state
    shown = min(ss.get(key, count), count)

    def step(by: int) -> None:
        ss[key] = max(0, min(count, ss.get(key, count) + by))

    with st.container(horizontal=True, vertical_alignment="center", gap=None, width="content"):
        st.button("", icon=":material/chevron_left:", key=key + "_prev", type="tertiary", on_click=step, args=(-1,),
                  disabled=shown == 0, help="Earlier version")
        st.caption(f"{shown + 1} / {count + 1}", width="content")
        st.button("", icon=":material/chevron_right:", key=key + "_next", type="tertiary", on_click=step, args=(1,),
                  disabled=shown == count, help="Later version")
    return shown


def regenerate_button(key: str, on_regenerate: Callable, args: tuple, busy: bool) -> None:
    """Ask again from the same point; the reply shown now is kept as a version."""
    st.button("", icon=":material/refresh:", key=key, type="tertiary", on_click=on_regenerate, args=args,
              disabled=busy, help="Regenerate: a new reply from the same point (this one is kept: flip back with ‹ ›)")


def edit_button(text: str, key: str, on_send: Callable, args: tuple, later: int, busy: bool) -> None:
    """Edit and resend a message of yours: the box opens with its text; what came after it leaves the thread."""
    box = st.popover("", icon=":material/edit:", type="tertiary", key=key, on_change="rerun", disabled=busy,
                     help="Edit and resend")
    if box.open:  # built only when opened: a long thread has many messages
        with box:
            field = key + "_text"
            st.session_state.setdefault(field, text)
            st.text_area("Edit your message", key=field, height=120)
            if later:
                st.caption(f"The {later} message{'s' if later != 1 else ''} after it leave the thread; the answer "
                           "starts again from here.")
            st.button("Send", icon=":material/send:", type="primary", key=key + "_send", on_click=on_send,
                      args=(*args, field))
