"""Stage 5, `distill export`: the trained student as GGUF for llama.cpp, verified against torch.

    distill export configs/summarize.toml                      # LoRA adapter GGUF (runs on the Q4_1 base)
    distill export configs/summarize.toml export.kind=merged export.quant=Q8_0

Written on the `gguf` package. A LoRA adapter is stored as pairs `blk.N.<tensor>.weight.lora_a/.lora_b`
with `adapter.lora.alpha`; a merged model copies the source GGUF's metadata (tokenizer, chat
template) and writes new tensors, then llama-cpp-python's quantizer makes Q8_0 or Q4_K_M.
llama's q/k projections are stored in GGUF with rows permuted for its rotary layout
(transformers un-permutes them on load), so they are permuted back here; for an adapter the
permutation applies to lora_b, whose rows are the output rows.
The export is checked: top-1 next-token agreement of the GGUF (llama.cpp) with the torch
model on held-out prompts must reach `export.min_agreement`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from assistant.engine.gguf_tools import copy_metadata, quantize, write_gguf
from distill.config import Config


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


def top1_agreement(torch_model, gguf_path: Path, lora_path: Path | None, token_lists: list[list[int]]) -> float:
    """Share of positions where llama.cpp and torch pick the same next token."""
    import llama_cpp
    import torch

    from assistant.engine.models import quiet_llama, physical_cores

    quiet_llama()
    llm = llama_cpp.Llama(str(gguf_path), lora_path=str(lora_path) if lora_path else None, n_ctx=2048,
                          n_threads=physical_cores(), logits_all=True, verbose=False)
    same = total = 0
    torch_model.eval()
    for toks in token_lists:
        with torch.no_grad():
            ref = torch_model(input_ids=torch.tensor([toks])).logits[0].argmax(-1).numpy()
        llm.reset()
        llm.eval(toks)
        got = np.asarray(llm.scores[: len(toks)]).argmax(-1)
        same += int((ref == got).sum())
        total += len(toks)
    llm.close()
    return same / max(1, total)


def export_dir(cfg: Config) -> Path:
    return cfg.run_dir / "export"


def run(cfg: Config) -> Path:
    from assistant.engine.models import render_chat
    from distill.data import examples_path, read_examples
    from distill.student import chat_template, load_model, load_tokenizer, resolve_base

    out = export_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    from distill.train import weights_dir

    weights = weights_dir(cfg)
    base_gguf = resolve_base(cfg.train.base)
    model = load_model(cfg.train.base)
    tok, template = load_tokenizer(cfg.train.base), chat_template(cfg.train.base)
    rows = read_examples(examples_path(cfg))
    held = ([e for e in rows if e["split"] == "val"] or rows)[:8]  # held-out prompts, else training ones
    token_lists = [tok(render_chat(template, e["messages"]), add_special_tokens=False)["input_ids"][:384] for e in held]
    ex = cfg.export
    if cfg.train.method == "lora":
        from peft import PeftModel

        student = PeftModel.from_pretrained(model, str(weights))
    else:
        from transformers import AutoModelForCausalLM

        student = AutoModelForCausalLM.from_pretrained(str(weights))
    result = {"kind": ex.kind, "weights": weights.name}
    if ex.kind == "adapter":
        if cfg.train.method != "lora":
            raise ValueError("export.kind=adapter needs train.method=lora; use export.kind=merged")
        artifact = write_adapter(weights, model.config, out / "adapter.gguf")
        result.update(file="adapter.gguf", agreement=top1_agreement(student, base_gguf, artifact, token_lists))
    else:
        merged = student.merge_and_unload() if cfg.train.method == "lora" else student
        f16 = write_merged(merged, base_gguf, out / "model-f16.gguf")
        artifact = f16 if ex.quant == "F16" else quantize(f16, out / f"model-{ex.quant}.gguf", ex.quant)
        result.update(file=artifact.name, quant=ex.quant, agreement=top1_agreement(merged, artifact, None, token_lists))
    result["agreement"] = round(result["agreement"], 4)
    (out / "export.json").write_text(json.dumps(result, indent=2))
    if result["agreement"] < ex.min_agreement:
        raise ValueError(f"export check failed: top-1 agreement {result['agreement']:.3f} < {ex.min_agreement} "
                         f"({artifact.name}); the GGUF does not behave like the trained model")
    return out
