"""The Responses and Conversations APIs as a translation layer over the runtime's public API."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from assistants.responses.service import ResponsesService

_services: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def service(rt: Any) -> ResponsesService:
    """The runtime's ResponsesService (one per runtime, made on first use)."""
    with _lock:
        svc = _services.get(rt)
        if svc is None:
            svc = _services[rt] = ResponsesService(rt)
        return svc


__all__ = ["ResponsesService", "service"]
