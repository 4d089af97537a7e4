"""Torch weights ↔ GGUF tensors: tensor names, q/k row order, LoRA adapters both ways, merged models.

    write_adapter(peft_dir, model.config, Path("adapter.gguf"))          # what `distill export` ships
    state, alpha, r = read_adapter(Path("adapter.gguf"), model, LORA_TARGETS)   # `train.init` from a student
    write_merged(merged_model, base_gguf, Path("model-f16.gguf"))

Written on the `gguf` package. A LoRA adapter is stored as pairs `blk.N.<tensor>.weight.lora_a/.lora_b`
with `adapter.lora.alpha`; a merged model copies the source GGUF's metadata (tokenizer, chat
template) and writes new tensors. llama's q/k projections are stored in GGUF with rows permuted
for its rotary layout (transformers un-permutes them on load), so they are permuted back here;
for an adapter the permutation applies to lora_b, whose rows are the output rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from assistant.engine.gguf_tools import copy_metadata, write_gguf


def permute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotary layout → GGUF (llama.cpp) layout for q/k rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """GGUF (llama.cpp) layout → HF rotary layout for q/k rows: the inverse of `permute_rows`."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _gguf_name(hf_name: str, config) -> str:
    import gguf

    arch = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}.get(getattr(config, "model_type", "llama"))
    if arch is None:
        raise ValueError(f"export supports llama and qwen2 students, not {config.model_type}")
    name = gguf.get_tensor_name_map(arch, config.num_hidden_layers).get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if name is None:
        raise ValueError(f"no GGUF name for tensor {hf_name}")
    return name


def _heads(config, hf_name: str) -> int | None:
    """Heads to permute q/k rows by: llama only (qwen2's GGUF keeps transformers' row order)."""
    if getattr(config, "model_type", "llama") != "llama":
        return None
    if "q_proj" in hf_name:
        return config.num_attention_heads
    if "k_proj" in hf_name:
        return config.num_key_value_heads
    return None


def write_adapter(peft_dir: Path, base_config, out: Path) -> Path:
    """A peft LoRA folder → a GGUF LoRA adapter that llama.cpp applies on the base (`lora_path`)."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((peft_dir / "adapter_config.json").read_text())
    tensors = load_file(str(peft_dir / "adapter_model.safetensors"))
    writer = gguf.GGUFWriter(str(out), getattr(base_config, "model_type", "llama"))  # llama.cpp checks the arch
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(cfg["lora_alpha"]))
    for key in sorted(tensors):
        if ".lora_A." not in key:
            continue
        a = tensors[key].astype(np.float32)
        b = tensors[key.replace(".lora_A.", ".lora_B.")].astype(np.float32)
        hf = key.replace("base_model.model.", "").replace(".lora_A.weight", ".weight")
        heads = _heads(base_config, hf)
        if heads:
            b = permute_rows(b, heads)
        name = _gguf_name(hf, base_config)
        # f16 halves the file (about 10 MB for r=16 on the 135M); llama.cpp applies it in f32
        writer.add_tensor(name + ".lora_a", a.astype(np.float16))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b).astype(np.float16))
    write_gguf(writer)
    return out


def read_adapter(path: Path, model, targets: list[str]) -> tuple[dict, float, int]:
    """A GGUF LoRA adapter (e.g. a shipped student's) → (tensors named as peft saves them, alpha, rank)
    for the `targets` modules of `model`, to start training from it: the inverse of `write_adapter`."""
    import gguf
    import torch

    reader = gguf.GGUFReader(str(path))
    field = reader.fields.get("adapter.lora.alpha")
    if reader.fields.get("adapter.type") is None or field is None:
        raise ValueError(f"{path}: not a LoRA adapter GGUF (no adapter.type / adapter.lora.alpha)")
    stored = {t.name: np.asarray(t.data, dtype=np.float32).reshape(tuple(reversed([int(n) for n in t.shape])))
              for t in reader.tensors}
    config = model.config
    out, rank = {}, 0
    for module, _ in model.named_modules():
        if module.rpartition(".")[2] not in targets:
            continue
        key = _gguf_name(module + ".weight", config)
        if key + ".lora_a" not in stored or key + ".lora_b" not in stored:
            raise ValueError(f"{path}: no {key}.lora_a/.lora_b for {module}")
        a, b = stored.pop(key + ".lora_a"), stored.pop(key + ".lora_b")
        heads = _heads(config, module)
        if heads:
            b = unpermute_rows(b, heads)
        out[f"base_model.model.{module}.lora_A.weight"] = torch.from_numpy(np.ascontiguousarray(a))
        out[f"base_model.model.{module}.lora_B.weight"] = torch.from_numpy(np.ascontiguousarray(b))
        rank = a.shape[0]
    if stored:
        raise ValueError(f"{path}: {len(stored)} adapter tensors match no LoRA module of the student (e.g. {next(iter(stored))})")
    return out, float(field.contents()), rank


def write_merged(model, source_gguf: Path, out: Path) -> Path:
    """A merged torch model → an F16 GGUF with the source GGUF's metadata (tokenizer, template)."""
    import gguf

    reader = gguf.GGUFReader(str(source_gguf))
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(str(out), arch)
    copy_metadata(reader, writer)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    config = model.config
    state = model.state_dict()
    for hf, t in state.items():
        if hf == "lm_head.weight" and getattr(config, "tie_word_embeddings", False):
            continue
        w = t.detach().float().numpy()
        heads = _heads(config, hf)
        if heads:
            w = permute_rows(w, heads)
        name = _gguf_name(hf, config)
        writer.add_tensor(name, w.astype(np.float16) if w.ndim == 2 else w.astype(np.float32))
    write_gguf(writer)
    return out
