"""The models folder: every `*.gguf` in it is a model (its id the file name), listed from its header, run in a worker."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from assistants.providers.base import ChatResult, OnText, ProviderError
from assistants.providers.gguf import GGUFError, GGUFInfo, read_gguf
from assistants.providers.worker_client import live_workers, worker_for

# The context a folder model is loaded with: its own if smaller. Larger contexts cost memory most users lack.
LOCAL_CONTEXT = 8192
# llama.cpp's compute buffers and the worker's own Python, on top of the weights and the KV cache.
OVERHEAD_BYTES = 300 * 2**20
GB = 2**30


@dataclass
class LocalModelInfo:
    """One GGUF file as the model picker and the download page see it."""

    name: str
    path: Path
    size_bytes: int
    context_length: int | None = None
    title: str = ""
    architecture: str = ""
    parameters: int = 0
    chat_template: bool = False
    memory_bytes: int = 0  # what loading it needs, estimated (weights + KV cache + buffers)
    usable: bool = True
    error: str = ""

    def details(self) -> dict:
        """The extra fields of this model's entry in a model list."""
        out = {k: v for k, v in asdict(self).items() if k not in ("name", "path")}
        return out


_CACHE: dict[str, tuple[tuple[int, int], LocalModelInfo]] = {}
_CACHE_LOCK = threading.Lock()


def scan_models(models_dir: Path) -> list[LocalModelInfo]:
    """Every `*.gguf` in the folder, sorted by name; cheap (headers are read once per file version, then cached)."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return []
    return [inspect(p) for p in sorted(folder.glob("*.gguf")) if p.is_file()]


def inspect(path: Path) -> LocalModelInfo:
    """One file's model info; a corrupt or truncated file comes back `usable=False` with the reason."""
    path = Path(path)
    stat = path.stat()
    version = (stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        hit = _CACHE.get(str(path))
    if hit is not None and hit[0] == version:
        return hit[1]
    try:
        gguf = read_gguf(path)
    except (GGUFError, OSError) as exc:
        info = LocalModelInfo(path.stem, path, stat.st_size, usable=False, error=f"Unusable: {exc}")
    else:
        info = _from_header(path, stat.st_size, gguf)
    with _CACHE_LOCK:
        _CACHE[str(path)] = (version, info)
    return info


def _from_header(path: Path, size: int, gguf: GGUFInfo) -> LocalModelInfo:
    trained = gguf.arch_value("context_length")
    info = LocalModelInfo(path.stem, path, size, context_length=int(trained) if trained else None,
                          title=str(gguf.metadata.get("general.name", "")), architecture=gguf.architecture,
                          parameters=gguf.parameters, chat_template=bool(gguf.metadata.get("tokenizer.chat_template")))
    info.memory_bytes = size + kv_cache_bytes(gguf, context_for(info)) + OVERHEAD_BYTES
    total = mem_total()
    if total and info.memory_bytes > total:
        info.usable = False
        info.error = (f"Too big for this machine: it needs about {info.memory_bytes / GB:.1f} GB of memory "
                      f"and the machine has {total / GB:.1f} GB in all. Pick a smaller model or a smaller quantization.")
    return info


def context_for(info: LocalModelInfo) -> int:
    """The context length the worker loads this model with."""
    return min(info.context_length or LOCAL_CONTEXT, LOCAL_CONTEXT)


def kv_cache_bytes(gguf: GGUFInfo, n_ctx: int) -> int:
    """Keys and values in f16 for every layer and position (what llama.cpp allocates for the context)."""
    layers = int(gguf.arch_value("block_count", 0) or 0)
    embd = int(gguf.arch_value("embedding_length", 0) or 0)
    heads = int(gguf.arch_value("attention.head_count", 0) or 0) or 1
    kv_heads = int(gguf.arch_value("attention.head_count_kv", heads) or heads)
    head_dim = int(gguf.arch_value("attention.key_length", 0) or 0) or embd // heads
    return 2 * layers * n_ctx * kv_heads * head_dim * 2


def _meminfo(field: str) -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0  # unknown (not Linux): no refusal on a guess


def mem_total() -> int:
    return _meminfo("MemTotal")


def mem_available() -> int:
    return _meminfo("MemAvailable")


def describe(path: Path) -> dict:
    """Size on disk and trained context length of one GGUF, for a model list entry."""
    info = inspect(path)
    return {"size_bytes": info.size_bytes, "context_length": info.context_length}


class LocalModelsProvider:
    """Chat with the GGUF files of the models folder, each in its own worker process, tools under grammars."""

    name = "models-folder"  # not "local": people name their own servers that
    hidden_when_empty = True  # no folder models: no line for it among the picker's backends
    context_window = LOCAL_CONTEXT  # the engine trims history to this; a smaller model's own limit is its error

    def __init__(self, models_dir: Path, n_threads: int = 0, *, worker_command: list[str] | None = None):
        self.models_dir = Path(models_dir)
        self.n_threads = n_threads
        self.worker_command = worker_command

    def list_models(self) -> list[str]:
        self.stop_orphans()
        return [m.name for m in scan_models(self.models_dir)]

    def stop_orphans(self) -> None:
        """Stop idle workers of this folder whose file is gone (deleted by another process): they hold its memory."""
        folder = self.models_dir.resolve()
        for worker in live_workers():
            if worker.path.parent.resolve() == folder and not worker.path.exists() and not worker.busy:
                worker.close()

    def model_details(self) -> dict[str, dict]:
        return {m.name: m.details() for m in scan_models(self.models_dir)}

    def _model(self, name: str) -> LocalModelInfo:
        path = self.models_dir / f"{name}.gguf"
        if not path.is_file():
            raise ProviderError(f"The model file {path} is gone (deleted or renamed). Refresh the model list.")
        return inspect(path)

    def chat(self, request: dict, *, on_text: OnText, cancel: threading.Event) -> ChatResult:
        model = self._model(request["model"])
        if not model.usable:
            raise ProviderError(f"The local model '{model.name}' cannot be used. {model.error}", code="invalid_prompt")
        worker = worker_for(model.path, context_for(model), self.n_threads, label=model.name, command=self.worker_command)
        if worker not in live_workers():
            try:
                check_memory(model)
            except ProviderError:
                # Other models' idle workers hold memory this one needs: let them go (they restart on demand).
                idle = [w for w in live_workers() if w is not worker and not w.busy]
                if not idle:
                    raise
                for other in idle:
                    other.close()
                check_memory(model)
        started = time.monotonic()
        result = worker.chat(request, on_text=on_text, cancel=cancel)
        result.raw["backend"] = self.name
        result.raw.setdefault("seconds", round(time.monotonic() - started, 3))
        return result


def check_memory(model: LocalModelInfo) -> None:
    """Refuse before loading a model that does not fit in the memory free now, saying how much it needs."""
    available = mem_available()
    if available and model.memory_bytes > available:
        raise ProviderError(f"Not enough free memory to load '{model.name}': it needs about {model.memory_bytes / GB:.1f} GB "
                            f"(file {model.size_bytes / GB:.1f} GB plus its {context_for(model)}-token context) and "
                            f"{available / GB:.1f} GB is free. Close other programs or pick a smaller model.")
