"""A student as one GGUF: its LoRA adapter folded into the base, quantized, built once and cached.

    path = merged(base_gguf, adapter_gguf, "Q8_0")   # first call: a few seconds; then a cache hit

llama.cpp applies a LoRA adapter as extra matrix products on every layer, which costs prompt
speed (measured on the 135M: 179 prompt tok/s with the adapter, 243 on the bare Q4_1 base,
284 on Q8_0). Folding W + (alpha / r) * B @ A into the weights removes that cost. This runs in
numpy on the `gguf` package (no torch: the runtime loads it only for the index): dequantize the base,
add the low-rank update, write an F16 GGUF with the base's metadata (tokenizer, chat template),
quantize it with llama.cpp's own quantizer, and keep only the result. The adapter's tensors are
already in llama.cpp's layout (the exporter permuted q/k), so no permutation happens here.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np

from assistant import AssistantError, paths

QUANT_TYPES = {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q4_K_M": 15}


def copy_metadata(reader, writer, skip: tuple[str, ...] = ("general.architecture", "general.file_type")) -> None:
    """Every key of a GGUFReader into a GGUFWriter (tokenizer, chat template, hyperparameters)."""
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in skip:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)


def write_gguf(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize(src: Path, dest: Path, kind: str) -> Path:
    import llama_cpp

    from assistant.engine.models import quiet_llama

    quiet_llama()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[kind]
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dest).encode(), params)
    if rc != 0:
        raise AssistantError(f"{src}: quantizing to {kind} failed (llama.cpp code {rc})")
    return dest


def fold_adapter(base: Path, adapter: Path, out: Path) -> Path:
    """base GGUF + LoRA adapter GGUF → one F16 GGUF (1-D tensors stay F32)."""
    import gguf

    base_r, lora_r = gguf.GGUFReader(str(base)), gguf.GGUFReader(str(adapter))
    field = lora_r.fields.get("adapter.lora.alpha")
    lora = {t.name: t for t in lora_r.tensors}
    writer = gguf.GGUFWriter(str(out), base_r.fields["general.architecture"].contents())
    copy_metadata(base_r, writer)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    folded = 0
    for t in base_r.tensors:
        w = _matrix(t)
        a, b = lora.get(t.name + ".lora_a"), lora.get(t.name + ".lora_b")
        if a is not None and b is not None:
            a, b = _matrix(a), _matrix(b)  # (r, in), (out, r)
            if b.shape[0] != w.shape[0] or a.shape[1] != w.shape[1]:
                raise AssistantError(f"{adapter}: {t.name} is {w.shape} in the base, the adapter makes {(b.shape[0], a.shape[1])}")
            scale = float(field.contents()) / a.shape[0] if field else 1.0  # as llama.cpp: no alpha, scale 1
            w = w + scale * (b @ a)
            folded += 1
        writer.add_tensor(t.name, w.astype(np.float16) if w.ndim == 2 else w)
    if folded != len(lora) // 2:
        raise AssistantError(f"{adapter}: {len(lora) // 2 - folded} adapter tensors match nothing in {base.name}")
    write_gguf(writer)
    return out


def _matrix(t) -> np.ndarray:
    from gguf.quants import dequantize

    return dequantize(t.data, t.tensor_type).astype(np.float32).reshape(tuple(reversed([int(n) for n in t.shape])))


def _digest(base: Path, adapter: Path) -> str:
    """A key for the merged build from the files' contents, not their paths: two checkouts of the same
    student share one build instead of deleting each other's. The adapter (about 10 MB) is hashed
    whole; the base (a packaged GGUF that never changes in place) by its size and first and last MiB."""
    h = hashlib.sha256()
    with open(base, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode() + f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        h.update(f.read())
    with open(adapter, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()[:16]


def merged(base: Path, adapter: Path, kind: str = "Q8_0", name: str | None = None) -> Path:
    """The cached merged GGUF for (base, adapter, kind), built on first use (atomically)."""
    if kind not in QUANT_TYPES:
        raise AssistantError(f"merge type must be one of {', '.join(QUANT_TYPES)}, not {kind!r}")
    folder = paths.cache_dir() / "merged"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", name or adapter.stem)
    out = folder / f"{stem}-{_digest(base, adapter)}-{kind}.gguf"
    if out.exists():
        return out
    f16 = out.with_name(out.stem + f".{os.getpid()}.f16.tmp")
    part = out.with_name(out.stem + f".{os.getpid()}.part")
    try:
        fold_adapter(base, adapter, f16)
        if kind == "F16":
            os.replace(f16, part)
        else:
            quantize(f16, part, kind)
        os.replace(part, out)  # a kill leaves only a .tmp/.part, never a half-written model
    finally:
        for p in (f16, part):
            p.unlink(missing_ok=True)
    for old in folder.glob(f"{stem}-*-{kind}.gguf"):  # the same student's earlier builds (retrained, reinstalled)
        if old != out and re.fullmatch(rf"{re.escape(stem)}-[0-9a-f]{{16}}-{kind}\.gguf", old.name):
            old.unlink(missing_ok=True)
    return out


def run_files(base: Path, adapter: Path | None, kind: str | None, name: str) -> tuple[Path, Path | None]:
    """(model, adapter) llama.cpp should load: the cached merged GGUF, or base + adapter when merging is off
    or fails (applying the adapter at run time always works)."""
    if adapter is None or kind is None:
        return base, adapter
    try:
        return merged(base, adapter, kind, name), None
    except Exception as e:
        import sys

        print(f"note: {name} runs with its adapter applied at run time ({e})", file=sys.stderr)
        return base, adapter
