"""Stage 5, `distill export`: the trained student as GGUF for llama.cpp, verified against torch.

    distill export configs/summarize.toml                      # LoRA adapter GGUF (runs on the Q4_1 base)
    distill export configs/summarize.toml export.kind=merged export.quant=Q8_0

The tensors are written by `distill.convert`; for a merged model llama-cpp-python's quantizer
then makes Q8_0 or Q4_K_M. The export is checked: top-1 next-token agreement of the GGUF
(llama.cpp) with the torch model on held-out prompts must reach `export.min_agreement`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from assistant.engine.gguf_tools import quantize
from distill.config import Config
from distill.convert import write_adapter, write_merged
from distill.data import read_examples
from distill.layout import examples_path, export_dir, require, weights_dir


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


def held_out_tokens(cfg: Config, tok, template: str, n: int = 8) -> list[list[int]]:
    """Prompt tokens of `n` held-out examples (else training ones), at most 384 each."""
    from assistant.engine.models import render_chat

    rows = read_examples(require(examples_path(cfg), "data"))
    held = ([e for e in rows if e["split"] == "val"] or rows)[:n]
    return [tok(render_chat(template, e["messages"]), add_special_tokens=False)["input_ids"][:384] for e in held]


def trained_model(cfg: Config, model, weights: Path):
    """The trained student in torch: base + LoRA from `weights`, or the fully fine-tuned model there."""
    if cfg.train.method == "lora":
        import warnings

        from peft import PeftModel

        with warnings.catch_warnings():  # as in student.lora_model: peft's use of a deprecated transformers name
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return PeftModel.from_pretrained(model, str(weights))
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(weights))


def run(cfg: Config) -> Path:
    from distill.student import chat_template, load_model, load_tokenizer, resolve_base

    ex = cfg.export
    if ex.kind == "adapter" and cfg.train.method != "lora":
        raise ValueError("export.kind=adapter needs train.method=lora; use export.kind=merged")
    weights = require(weights_dir(cfg), "train")
    out = export_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    base_gguf = resolve_base(cfg.train.base)
    model = load_model(cfg.train.base)
    token_lists = held_out_tokens(cfg, load_tokenizer(cfg.train.base), chat_template(cfg.train.base))
    student = trained_model(cfg, model, weights)
    result = {"kind": ex.kind, "weights": weights.name}
    if ex.kind == "adapter":
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
