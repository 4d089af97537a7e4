"""A shipped student folded into its base (numpy, no torch) behaves like adapter-on-base in llama.cpp."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant import paths
from assistant.engine import registry


def _argmax(model_path: Path, lora: Path | None, prompts: list[str]) -> np.ndarray:
    import llama_cpp

    llm = llama_cpp.Llama(str(model_path), lora_path=str(lora) if lora else None, n_ctx=1024, logits_all=True,
                          verbose=False)
    out = []
    for p in prompts:
        toks = llm.tokenize(p.encode(), special=True)[:300]
        llm.reset()
        llm.eval(toks)
        out.append(np.asarray(llm.scores[: len(toks)]).argmax(-1))
    llm.close()
    return np.concatenate(out)


@pytest.mark.slow
def test_merged_student_matches_adapter_on_base(tmp_path):
    from assistant.engine.gguf_tools import merged
    from assistant.engine.models import render_chat
    from assistant.tasks import summarize

    student = next(e for e in registry.shipped_students().values() if e.task == "summarize")
    base, adapter = Path(student.path), Path(student.lora_path)
    out = merged(base, adapter, "Q8_0", student.name)
    assert out.parent == paths.cache_dir() / "merged" and out.stat().st_size > 50e6
    stamp = out.stat().st_mtime_ns
    assert merged(base, adapter, "Q8_0", student.name) == out and out.stat().st_mtime_ns == stamp  # cached
    copy = tmp_path / "elsewhere" / adapter.name  # another checkout of the same student: the same build
    copy.parent.mkdir()
    shutil.copyfile(adapter, copy)
    assert merged(base, copy, "Q8_0", student.name) == out and out.stat().st_mtime_ns == stamp

    from assistant.engine.gguf_check import read_header

    template = read_header(base).metadata["tokenizer.chat_template"]
    emails = sorted((paths.assets_dir() / "demo" / "mailbox").glob("*.eml"))[:4]
    prompts = [render_chat(template, summarize.build_messages(e.read_text(errors="replace")[:1200], "line")[0])
               for e in emails]
    ref = _argmax(base, adapter, prompts)
    agree = float((_argmax(out, None, prompts) == ref).mean())
    control = float((_argmax(base, None, prompts) == ref).mean())  # the base without the student's update
    print(f"agreement {agree:.3f}, control {control:.3f}")
    assert agree >= 0.9, agree
    assert agree - control >= 0.05, (agree, control)
