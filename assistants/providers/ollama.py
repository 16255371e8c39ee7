"""Ollama found without configuration: if something answers at localhost:11434, its models are offered."""

from __future__ import annotations

from urllib.parse import urlparse

import openai

from assistants.config import Backend
from assistants.providers.openai_compat import OpenAICompatProvider

OLLAMA_URL = "http://localhost:11434/v1"
# Nothing listening on loopback is refused at once; this bounds a port that accepts and then says nothing.
PROBE_TIMEOUT_S = 0.5
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def same_server(a: str, b: str) -> bool:
    """Whether two base URLs reach the same server (localhost and 127.0.0.1 alike; path and slash ignored)."""
    pa, pb = urlparse(a), urlparse(b)

    def host(p):
        name = (p.hostname or "").lower()
        return "loopback" if name in _LOOPBACK else name

    def port(p):
        return p.port or (443 if p.scheme == "https" else 80)

    return host(pa) == host(pb) and port(pa) == port(pb)


class OllamaAutodetect(OpenAICompatProvider):
    """An OpenAI-compatible backend at Ollama's usual address that stays out of sight while nothing answers there."""

    hidden_when_empty = True

    def list_models(self) -> list[str]:
        try:
            return sorted(m.id for m in self.client.models.list(timeout=PROBE_TIMEOUT_S))
        except openai.OpenAIError:
            return []  # no Ollama here: not an error the user should see, since they never configured one


def autodetected(backends: list[Backend], *, url: str = OLLAMA_URL, timeout: float = 120.0,
                 http_client=None) -> OllamaAutodetect | None:
    """The Ollama probe, unless a configured backend already points at that address."""
    if any(same_server(b.base_url, url) for b in backends):
        return None
    name = "ollama" if all(b.name != "ollama" for b in backends) else "ollama-local"
    return OllamaAutodetect(Backend(name, url), timeout=timeout, http_client=http_client)
