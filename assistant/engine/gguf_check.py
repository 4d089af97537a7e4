"""Validate a GGUF file before llama.cpp sees it.

llama.cpp aborts or prints pages of log on a bad file; this reads the header with the
`gguf` package's layout rules in mind but in plain Python, so it costs milliseconds and
gives one clear line: magic, version, metadata, tensor infos, and every tensor's data
range against the file size.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from assistant import AssistantError

GGUF_MAGIC = b"GGUF"
# value type id -> struct format (fixed-size scalars); 8 = string, 9 = array
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
# ggml type id -> (block size, bytes per block); the common ones, enough to size tensors
_TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}


class InvalidModelFile(AssistantError):
    """A file llama.cpp must not see; the message is one line whatever the file name or its contents hold."""

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


@dataclass
class GGUFInfo:
    path: Path
    version: int
    tensor_count: int
    architecture: str
    metadata: dict


class _Reader:
    def __init__(self, data: bytes, path: Path, size: int) -> None:
        self.data, self.pos, self.path, self.size = data, 0, path, size

    def need(self, n: int) -> None:
        """Fail with the reason if fewer than n bytes are left."""
        if self.pos + n > len(self.data):
            if len(self.data) < self.size:
                raise InvalidModelFile(f"{self.path}: GGUF header larger than {len(self.data) >> 20} MB")
            raise InvalidModelFile(f"{self.path}: truncated: file ends at byte {self.size}")

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        self.need(size)
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.take("Q")
        if n > 1 << 24:
            raise InvalidModelFile(f"{self.path}: corrupt GGUF string (length {n})")
        self.need(n)
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def value(self, vtype: int, depth: int = 0):
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == 8:
            return self.string()
        if vtype == 9 and depth == 0:
            itype, n = self.take("I"), self.take("Q")
            if n > 1 << 28:
                raise InvalidModelFile(f"{self.path}: corrupt GGUF array (length {n})")
            item = struct.calcsize("<" + _SCALARS[itype]) if itype in _SCALARS else 8
            self.need(n * item)  # before looping: a huge count in a short file fails at once
            items = [self.value(itype, depth + 1) for _ in range(n)]
            return items if n <= 64 else f"<array of {n}>"
        raise InvalidModelFile(f"{self.path}: unknown GGUF value type {vtype}")


def read_header(path: str | Path, max_header: int = 64 << 20) -> GGUFInfo:
    """Parse and check a GGUF header; raise InvalidModelFile with a one-line reason."""
    path = Path(path)
    data, size = _read_start(path, max_header)
    if data[:4] != GGUF_MAGIC:
        if not data:
            raise InvalidModelFile(f"{path}: not a GGUF file (empty)")
        if GGUF_MAGIC.startswith(data):
            raise InvalidModelFile(f"{path}: truncated: file ends at byte {size}")
        raise InvalidModelFile(f"{path}: not a GGUF file (bad magic {data[:4]!r})")
    r = _Reader(data, path, size)
    r.pos = 4
    version = r.take("I")
    if version not in (2, 3):
        raise InvalidModelFile(f"{path}: unsupported GGUF version {version}")
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    if n_tensors > 1 << 20 or n_kv > 1 << 20:
        raise InvalidModelFile(f"{path}: corrupt GGUF counts ({n_tensors} tensors, {n_kv} keys)")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("I"))
    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InvalidModelFile(f"{path}: GGUF has no general.architecture key")
    alignment = meta.get("general.alignment", 32)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise InvalidModelFile(f"{path}: bad general.alignment {repr(alignment)[:40]} (must be a power of two)")
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("I")
        if n_dims > 8:
            raise InvalidModelFile(f"{path}: corrupt tensor info for {name[:80]}")
        dims = [r.take("Q") for _ in range(n_dims)]
        ttype, offset = r.take("I"), r.take("Q")
        tensors.append((name, dims, ttype, offset))
    data_start = (r.pos + alignment - 1) // alignment * alignment
    for name, dims, ttype, offset in tensors:
        count = 1
        for d in dims:
            count *= d
        block, nbytes = _TYPE_SIZES.get(ttype, (1, 0))
        end = data_start + offset + count // block * nbytes
        if data_start + offset > size or end > size:
            raise InvalidModelFile(f"{path}: truncated: file ends at byte {size} (tensor {name[:80]} ends at byte {end})")
    return GGUFInfo(path, version, n_tensors, arch, meta)


def _read_start(path: Path, max_header: int) -> tuple[bytes, int]:
    """The first max_header bytes and the size of a regular file (a FIFO or a device would block or never end)."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise InvalidModelFile(f"{path}: cannot read ({kind})")
        with open(path, "rb") as f:
            return f.read(min(st.st_size, max_header)), st.st_size
    except OSError as e:
        raise InvalidModelFile(f"{path}: cannot read ({e.strerror or e})") from None
