"""Read a GGUF file's header, metadata and tensor table in pure Python (never loading the model), and check it is whole."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
# Metadata value types: struct format of the fixed-size ones.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
# ggml tensor types: (bytes per block, values per block), to tell a whole file from a truncated one.
_TYPE_SIZES = {
    0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32), 9: (36, 32),
    10: (84, 256), 11: (110, 256), 12: (144, 256), 13: (176, 256), 14: (210, 256), 15: (292, 256),
    16: (66, 256), 17: (74, 256), 18: (98, 256), 19: (50, 256), 20: (18, 32), 21: (110, 256), 22: (82, 256),
    23: (136, 256), 24: (1, 1), 25: (2, 1), 26: (4, 1), 27: (8, 1), 28: (8, 1), 29: (56, 256), 30: (2, 1),
    34: (54, 256), 35: (66, 256), 39: (17, 32),
}
# Arrays longer than this (token lists, merges) are skipped, not kept: listing a model must stay cheap.
_KEEP_ARRAY_ITEMS = 64


class GGUFError(ValueError):
    """The file is not a readable GGUF; the message says why in words."""


@dataclass
class GGUFInfo:
    """What the header says about a model."""

    version: int
    metadata: dict = field(default_factory=dict)
    tensor_count: int = 0
    parameters: int = 0
    data_end: int = 0  # where the last tensor's data ends: a shorter file is truncated

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, key: str, default=None):
        return self.metadata.get(f"{self.architecture}.{key}", default)


class _Reader:
    """Reads over a memory-mapped file that raise GGUFError (not struct.error) when the file ends early."""

    def __init__(self, buf, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def _need(self, n: int) -> int:
        start = self.pos
        if start + n > self.size:
            raise GGUFError(f"the file ends early (at byte {self.size:,}, inside its header): it looks truncated — "
                            "an interrupted download?")
        self.pos += n
        return start

    def read(self, n: int) -> bytes:
        start = self._need(n)
        return bytes(self.buf[start:start + n])

    def scalar(self, fmt: str):
        return struct.unpack_from(fmt, self.buf, self._need(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        if n > self.size:
            raise GGUFError(f"a string of {n:,} bytes in a {self.size:,}-byte file: the header is corrupt")
        return self.read(n).decode("utf-8", "replace")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):  # token lists: 150,000 strings in some models, so no decoding
            n = self.scalar("<Q")
            if n > self.size:
                raise GGUFError(f"a string of {n:,} bytes in a {self.size:,}-byte file: the header is corrupt")
            self._need(n)

    def value(self, vtype: int):
        if vtype in _SCALARS:
            return self.scalar(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item_type, count = self.scalar("<I"), self.scalar("<Q")
            if count > self.size:
                raise GGUFError(f"an array of {count:,} items in a {self.size:,}-byte file: the header is corrupt")
            if count > _KEEP_ARRAY_ITEMS and item_type in _SCALARS:
                self._need(struct.calcsize(_SCALARS[item_type]) * count)
                return count
            if count > _KEEP_ARRAY_ITEMS and item_type == _STRING:
                self.skip_strings(count)
                return count
            return [self.value(item_type) for _ in range(count)]
        raise GGUFError(f"unknown metadata value type {vtype}: the header is corrupt (or from a newer GGUF version)")


def read_gguf(path: Path) -> GGUFInfo:
    """Parse the header, metadata and tensor table; GGUFError saying what is wrong with a corrupt or truncated file."""
    path = Path(path)
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"the file is only {size} bytes: it is truncated or not a model")
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        r = _Reader(buf, size)
        if r.read(4) != MAGIC:
            raise GGUFError("not a GGUF file (it does not start with 'GGUF')")
        version = r.scalar("<I")
        if version not in (2, 3):
            raise GGUFError(f"GGUF version {version} is not supported (2 and 3 are)")
        tensor_count, kv_count = r.scalar("<Q"), r.scalar("<Q")
        if tensor_count > size or kv_count > size:
            raise GGUFError("the header's counts are impossible for the file's size: the header is corrupt")
        info = GGUFInfo(version, tensor_count=tensor_count)
        for _ in range(kv_count):
            key = r.string()
            info.metadata[key] = r.value(r.scalar("<I"))
        last_end, params = 0, 0
        for _ in range(tensor_count):
            r.string()
            dims = [r.scalar("<Q") for _ in range(r.scalar("<I"))]
            ttype, offset = r.scalar("<I"), r.scalar("<Q")
            count = 1
            for d in dims:
                count *= d
            params += count
            block_bytes, block_values = _TYPE_SIZES.get(ttype, (0, 1))
            last_end = max(last_end, offset + count * block_bytes // block_values)
        alignment = int(info.metadata.get("general.alignment", 32)) or 32
        data_start = -(-r.pos // alignment) * alignment
    info.parameters = params
    info.data_end = data_start + last_end
    if info.data_end > size:
        raise GGUFError(f"the file is {size:,} bytes but its tensors need {info.data_end:,}: it is truncated — "
                        "an interrupted download? Download it again.")
    return info
