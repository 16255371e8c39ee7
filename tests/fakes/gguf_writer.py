"""Write small GGUF files for tests: a header with metadata and F32 tensors (whole, truncated or lying about sizes)."""

from __future__ import annotations

import struct
from pathlib import Path


def _string(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def _value(v) -> bytes:
    if isinstance(v, bool):
        return struct.pack("<I?", 7, v)
    if isinstance(v, int):
        return struct.pack("<IQ", 10, v)
    if isinstance(v, float):
        return struct.pack("<Id", 12, v)
    if isinstance(v, str):
        return struct.pack("<I", 8) + _string(v)
    if isinstance(v, list):  # of strings
        return struct.pack("<IIQ", 9, 8, len(v)) + b"".join(_string(x) for x in v)
    raise TypeError(v)


def write_gguf(path: Path, metadata: dict, tensors: dict[str, int] | None = None, *, cut: int = 0) -> Path:
    """A GGUF v3 file with `metadata` and F32 tensors {name: values}; `cut` drops that many bytes from the end."""
    tensors = tensors if tensors is not None else {"token_embd.weight": 64}
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for key, value in metadata.items():
        out += _string(key) + _value(value)
    offset = 0
    for name, count in tensors.items():
        out += _string(name) + struct.pack("<IQ", 1, count) + struct.pack("<IQ", 0, offset)
        offset += -(-count * 4 // 32) * 32
    out += b"\0" * (-len(out) % 32)
    out += b"\0" * offset
    path.write_bytes(out[:len(out) - cut] if cut else out)
    return path


def llama_metadata(name: str = "Tiny Test", context: int = 2048, layers: int = 2, embd: int = 64, heads: int = 4) -> dict:
    """Metadata of a (pretend) llama-architecture chat model."""
    return {"general.architecture": "llama", "general.name": name, "llama.context_length": context,
            "llama.block_count": layers, "llama.embedding_length": embd, "llama.attention.head_count": heads,
            "llama.attention.head_count_kv": heads,
            "tokenizer.chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
            "tokenizer.ggml.tokens": [f"t{i}" for i in range(100)]}
