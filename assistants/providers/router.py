"""Routes a model id (or an alias) to the backend that serves it; never substitutes silently."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from assistants.config import EMBEDDED_MODEL_ID, Settings
from assistants.errors import BadRequest
from assistants.providers.base import Provider, ProviderError
from assistants.providers.ollama import OLLAMA_URL


@dataclass
class BackendStatus:
    """What one backend reported the last time its models were listed."""

    name: str
    base_url: str
    ok: bool
    models: list[str] = field(default_factory=list)
    error: str = ""
    checked_at: float = 0.0
    details: dict[str, dict] = field(default_factory=dict)  # per model: size_bytes, context_length, usable, ...


class ModelRouter:
    """Keeps every backend's model list (cached for `cache_s`) and resolves model ids to providers."""

    def __init__(self, providers: list[Provider], *, aliases: dict[str, str] | None = None,
                 default_model: str = EMBEDDED_MODEL_ID, cache_s: float = 60.0):
        self.providers = list(providers)
        self.aliases = dict(aliases or {})
        self.default_model = default_model
        self.cache_s = cache_s
        self._status: dict[str, BackendStatus] = {}
        self._renewing: set[str] = set()  # backends being re-checked in the background
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, http_client=None, ollama_url: str = OLLAMA_URL) -> ModelRouter:
        from assistants.providers.embedded import EmbeddedProvider
        from assistants.providers.local import LocalModelsProvider
        from assistants.providers.ollama import autodetected
        from assistants.providers.openai_compat import OpenAICompatProvider

        providers: list[Provider] = []
        if settings.embedded_enabled:
            providers.append(EmbeddedProvider(settings.embedded_context, settings.embedded_threads))
        folder = LocalModelsProvider(settings.models_dir, settings.embedded_threads)
        if any(b.name == folder.name for b in settings.all_backends()):
            folder.name += "-gguf"  # names tell backends apart; the user's server keeps its own
        providers.append(folder)
        for backend in settings.all_backends():
            providers.append(OpenAICompatProvider(backend, timeout=settings.model_timeout_s, http_client=http_client))
        if settings.ollama_autodetect:
            ollama = autodetected(settings.all_backends(), url=ollama_url, timeout=settings.model_timeout_s,
                                  http_client=http_client)
            if ollama is not None:
                providers.append(ollama)
        default = settings.default_model
        if default == EMBEDDED_MODEL_ID and not settings.embedded_enabled and len(providers) > 0:
            default = ""
        return cls(providers, aliases=settings.aliases, default_model=default, cache_s=settings.models_cache_s)

    def catalog(self, refresh: bool = False) -> list[BackendStatus]:
        """Every backend with its models or the reason it could not list them (a down backend is not fatal).

        Backends never asked (or all of them, with `refresh`) are asked now, in parallel, so the wait is the
        slowest one's, not their sum. A cached answer past `cache_s` is returned as it is while a background
        check renews it: a page never waits on a backend that went quiet.
        """
        now = time.monotonic()
        with self._lock:
            cached = {p.name: self._status.get(p.name) for p in self.providers}
        ask = [p for p in self.providers if refresh or cached[p.name] is None]
        stale = [p for p in self.providers if p not in ask and now - cached[p.name].checked_at >= self.cache_s]
        workers = [threading.Thread(target=self._check, args=(p,), daemon=True) for p in ask]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        for provider in stale:
            with self._lock:
                if provider.name in self._renewing:
                    continue
                self._renewing.add(provider.name)
            threading.Thread(target=self._check, args=(provider,), daemon=True, name=f"models-{provider.name}").start()
        with self._lock:
            statuses = [self._status[p.name] for p in self.providers]
        # A found-if-present source (the models folder, Ollama at its usual address) with nothing to offer is not
        # a backend the user configured: it stays out of the list instead of showing as empty or unreachable.
        return [s for p, s in zip(self.providers, statuses, strict=True)
                if s.models or not getattr(p, "hidden_when_empty", False)]

    def _check(self, provider: Provider) -> None:
        """Ask one backend for its models and remember the answer (or why there is none)."""
        url = getattr(getattr(provider, "backend", None), "base_url", None) or str(getattr(provider, "models_dir", "worker process"))
        try:
            status = BackendStatus(provider.name, url, True, provider.list_models(), checked_at=time.monotonic())
            describe = getattr(provider, "model_details", None)
            if describe is not None:
                status.details = describe()
        except ProviderError as exc:
            status = BackendStatus(provider.name, url, False, error=exc.message, checked_at=time.monotonic())
        except Exception as exc:  # a broken backend must never take the app down
            status = BackendStatus(provider.name, url, False, error=f"{type(exc).__name__}: {exc}",
                                   checked_at=time.monotonic())
        with self._lock:
            self._status[provider.name] = status
            self._renewing.discard(provider.name)

    def available_models(self, refresh: bool = False) -> list[str]:
        """Model ids from every reachable backend, then the aliases."""
        models = []
        for status in self.catalog(refresh):
            models.extend(m for m in status.models if m not in models)
        models.extend(a for a in self.aliases if a not in models)
        return models

    def resolve(self, model: str) -> tuple[Provider, str]:
        """The provider and the backend's own model id for `model`; BadRequest naming what exists otherwise."""
        if not model:
            raise BadRequest("No model given and no default model is configured.", param="model")
        target = self.aliases.get(model, model)
        for refresh in (False, True):
            catalog = self.catalog(refresh)
            # A backend that really serves the name wins over an alias: the alias is for running offline,
            # so with an OpenAI key configured, gpt-4o-mini is OpenAI's again.
            for wanted in dict.fromkeys((model, target)):
                for status in catalog:
                    if status.ok and wanted in status.models:
                        return self._provider(status.name), wanted
        down = [f"{s.name} ({s.error})" for s in catalog if not s.ok]
        known = self.available_models()
        msg = f"The model '{model}'"
        if target != model:
            msg += f" (alias of '{target}')"
        msg += " is not served by any configured backend. Available: " + (", ".join(known) or "none") + "."
        if down:
            msg += " Unreachable backends: " + "; ".join(down) + "."
        msg += " Pick one of the available models, add an alias (PLAYGROUND_MODEL_ALIASES), or configure its backend."
        raise BadRequest(msg, param="model", code="model_not_found")

    def _provider(self, name: str) -> Provider:
        return next(p for p in self.providers if p.name == name)
