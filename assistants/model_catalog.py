"""A short catalog of instruct GGUF models that call tools well and fit a laptop, and this machine's RAM."""

from __future__ import annotations

import os
from dataclasses import dataclass

GB = 1000**3


@dataclass(frozen=True)
class CatalogModel:
    """One downloadable model: where it lives on the Hugging Face hub and what it needs."""

    name: str
    repo: str
    filename: str
    size_bytes: int      # on disk, as the hub lists it (the hub's exact size is checked again before downloading)
    ram_bytes: int       # the machine's RAM it wants: the weights, a 4k context and llama.cpp's buffers, plus ~2 GB
                         # left for the OS, the browser and the Playground
    licence: str
    good_at: str

    @property
    def model_id(self) -> str:
        """The id the model gets in the picker: its file name without .gguf."""
        return model_id_for(self.filename)


# Q4_K_M everywhere: the usual size/quality balance for CPU inference. Sizes are the hub's listings.
# The 7B comes from bartowski's repo because Qwen's own 7B Q4_K_M is split into two files, and one model is one
# file in the models folder.
CATALOG: tuple[CatalogModel, ...] = (
    CatalogModel(
        name="Qwen2.5 1.5B Instruct", repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        filename="qwen2.5-1.5b-instruct-q4_k_m.gguf", size_bytes=int(1.12 * GB), ram_bytes=4 * GB,
        licence="Apache-2.0",
        good_at="Fast on any laptop; follows instructions and calls functions reliably for its size. Short answers."),
    CatalogModel(
        name="Qwen2.5 3B Instruct", repo="Qwen/Qwen2.5-3B-Instruct-GGUF",
        filename="qwen2.5-3b-instruct-q4_k_m.gguf", size_bytes=int(2.10 * GB), ram_bytes=6 * GB,
        licence="Qwen Research (non-commercial)",
        good_at="The best all-rounder for 8 GB machines: tool calls, JSON output, code, 29 languages."),
    CatalogModel(
        name="Llama 3.2 3B Instruct", repo="bartowski/Llama-3.2-3B-Instruct-GGUF",
        filename="Llama-3.2-3B-Instruct-Q4_K_M.gguf", size_bytes=int(2.02 * GB), ram_bytes=6 * GB,
        licence="Llama 3.2 Community",
        good_at="Natural English chat and summaries; trained for function calling. Commercial use allowed on Meta's terms."),
    CatalogModel(
        name="Qwen2.5 7B Instruct", repo="bartowski/Qwen2.5-7B-Instruct-GGUF",
        filename="Qwen2.5-7B-Instruct-Q4_K_M.gguf", size_bytes=int(4.68 * GB), ram_bytes=10 * GB,
        licence="Apache-2.0",
        good_at="Noticeably smarter: multi-step tool use, Code Interpreter maths, longer answers; slower on CPU."),
)


def model_id_for(filename: str) -> str:
    """A GGUF file name (possibly under a folder of its repo) -> the model id it gets in the picker."""
    base = filename.rsplit("/", 1)[-1]
    return base[:-5] if base.lower().endswith(".gguf") else base


def machine_ram_bytes() -> int | None:
    """Total physical memory of this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def fits(model: CatalogModel, ram_bytes: int | None) -> bool | None:
    """Whether the model runs here with room left for the OS and the browser (None: RAM unknown)."""
    if not ram_bytes:
        return None
    # Half a GB of slack: a "4 GB" machine shows the OS a little less than 4 GiB.
    return model.ram_bytes / GB <= ram_gb(ram_bytes) + 0.5


def ram_gb(ram_bytes: int) -> float:
    """Memory in the GB that machines are sold by (GiB): 17179869184 bytes -> 16.0."""
    return ram_bytes / 2**30


def suggest(ram_bytes: int | None) -> CatalogModel | None:
    """The largest catalog model that fits this machine (on a tie, the one listed first)."""
    fitting = [m for m in CATALOG if fits(m, ram_bytes)]
    return max(fitting, key=lambda m: m.ram_bytes, default=None)
