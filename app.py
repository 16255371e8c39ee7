"""Assistants Playground: the router. Page config, session defaults, and the pages."""

from __future__ import annotations

import streamlit as st

from assistants.config import load_settings
from components import PLAYGROUND_DEFAULTS, login
from session import init_state

# 340 px: the assistant config sidebar fits an assistant id and the New/Clone/Delete row on one line.
st.set_page_config(page_title="Assistants Playground", page_icon=":material/smart_toy:", layout="wide",
                   initial_sidebar_state=340)
# The only CSS the app adds (a style-only st.html takes no room on the page):
# - Streamlit's default page padding (8 rem on top under the navigation bar) would push the Playground's message
#   box below the fold on a laptop screen; narrower windows get narrower side margins too.
# - The Playground's thread list, thread and run log sit side by side while its main area is wider than 760 px;
#   narrower (a 1024 px laptop with the sidebar open) the run log goes under the thread instead of becoming a 220 px
#   sliver, and the thread list stays beside the thread, 11 rem wide, down to 520 px (a phone stacks everything).
#   Container queries, so opening or closing the sidebar counts too. Its run log follows the window's height.
# - The function and JSON schema editors use the code font, so JSON lines up.
# - While the Playground streams a reply it draws its sidebar, thread list, thread title and toolbar again only after
#   the reply's first words (app_pages/playground.py): until then they are the previous redraw's, unchanged, and are
#   not greyed out as Streamlit greys what a running script has not drawn yet.
CSS = """
[data-testid='stMainBlockContainer']{padding:4.75rem 3rem 2rem 3rem}
@media (max-width:1180px){[data-testid='stMainBlockContainer']{padding:4.75rem 1.5rem 2rem 1.5rem}}
.st-key-playground_main{container-type:inline-size}
@container (max-width:760px){
 .st-key-playground_main [data-testid='stHorizontalBlock']:has(> [data-testid='stColumn']){flex-wrap:wrap;row-gap:2rem}
 .st-key-playground_main [data-testid='stColumn']{flex:1 1 100% !important;width:100% !important;min-width:100% !important}
}
@container (min-width:520px) and (max-width:760px){
 .st-key-playground_main [data-testid='stColumn']:has(.st-key-playground_threads_box){flex:0 0 11rem !important;
  width:11rem !important;min-width:11rem !important}
 .st-key-playground_main [data-testid='stColumn']:has(.st-key-playground_thread){flex:1 1 0 !important;
  width:auto !important;min-width:0 !important}
}
[data-testid='stLayoutWrapper']:has(> .st-key-playground_log_box){height:max(360px,calc(100vh - 180px)) !important;
 flex-basis:max(360px,calc(100vh - 180px)) !important}
[data-testid='stSidebar'] [data-stale='true'],
.st-key-playground_main [data-testid='stColumn']:has(.st-key-playground_threads_box) [data-stale='true'],
.st-key-playground_head [data-stale='true'],.st-key-playground_bar [data-stale='true'],.st-key-playground_typing [data-stale='true']{
 opacity:1 !important;transition:none !important}
[class*='st-key-playground_cfg_fn_'] textarea,.st-key-playground_cfg_schema textarea{
 font-family:'Source Code Pro',ui-monospace,monospace;font-size:0.8rem}
"""
st.html(f"<style>{CSS}</style>")
init_state()
for key, value in PLAYGROUND_DEFAULTS.items():
    # Copy mutable defaults: each browser session gets its own dict/list.
    st.session_state.setdefault(key, type(value)(value) if isinstance(value, (dict, list)) else value)

# The page files live in app_pages/, not pages/: a pages/ folder makes Streamlit run its files on their own (no
# session defaults, an auto-generated menu) until some session has run this file since the server started.
# The default page lives at "/"; "/playground" (a bookmark, an old link) leads there instead of "Page not found".
# A page's id is its url_path, so the default one takes another ("home") to leave "playground" to the redirect.
PLAYGROUND = st.Page("app_pages/playground.py", title="Playground", icon=":material/forum:", default=True,
                     url_path="home")
pages = [
    PLAYGROUND,
    st.Page("app_pages/assistants.py", title="Assistants", icon=":material/smart_toy:"),
    st.Page("app_pages/threads.py", title="Threads", icon=":material/chat:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/download:"),
    st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:"),
    st.Page(lambda: st.switch_page(PLAYGROUND), title="Playground", url_path="playground", visibility="hidden"),
]
# Before any page: nothing of the Playground is drawn for a browser that has not logged in where a login is set,
# and nothing at all when it listens beyond this machine without one. The pages are registered either way (hidden
# until then), so a page's own URL never runs it without this file.
password = load_settings().playground_password
gate = login.needed(password)
page = st.navigation(pages, position="hidden" if gate else "top")
if gate and not login.allowed(password):
    st.stop()
page.run()
