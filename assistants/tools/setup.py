"""Wires files, vector stores and the built-in tool handlers into a Runtime."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from assistants.files import FileService
from assistants.tools.file_search_tool import make_handler
from assistants.vector_stores import VectorStoreService

log = logging.getLogger(__name__)


def attach(rt: Any) -> None:
    """Give the runtime its file and vector store services, the file_search handler and the attachment hook."""
    files = FileService(rt.store, lambda: rt.settings)
    vector_stores = VectorStoreService(rt.store, files, lambda: rt.settings, lease_s=rt.settings.run_lease_s)
    rt.files = files
    rt.vector_stores = vector_stores
    rt.toolbox.register("file_search", make_handler(rt))
    rt._attachment_hook = vector_stores.attach_message
    rt._close_tools = vector_stores.close
    _register_code_interpreter(rt)
    theirs = rt._close_tools
    if theirs is not vector_stores.close:  # the code interpreter set its own closer: run both
        rt._close_tools = _chain(vector_stores.close, theirs)
    vector_stores.start()  # after wiring, so files a dead process left half-indexed finish here


def _register_code_interpreter(rt: Any) -> None:
    """The code interpreter handler, when its module imports; a broken import is logged, not fatal."""
    try:
        from assistants.tools.ci_handler import register as register_ci
    except ImportError as exc:
        if getattr(exc, "name", None) != "assistants.tools.ci_handler":
            log.warning("code interpreter not available: %s", exc, exc_info=True)
        return
    register_ci(rt)


def _chain(*closers: Callable[[], None]) -> Callable[[], None]:
    def close_all() -> None:
        for close in closers:
            close()

    return close_all
