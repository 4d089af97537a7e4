"""`distill export`: a LoRA adapter GGUF that llama.cpp runs as torch does."""

import json

import pytest

from distill import data as data_stage
from distill.config import load_config
from tests.distill.helpers import write_config


@pytest.mark.slow
def test_lora_export_runs_in_llama_cpp(tmp_path, shared):
    """Two LoRA steps on the real 135M, exported as a GGUF adapter, checked against torch."""
    from distill import export, train

    c = write_config(tmp_path, shared, extra="").read_text().replace("max_steps = 6", "max_steps = 2")
    (tmp_path / "c.toml").write_text(c)
    cfg = load_config(tmp_path / "c.toml")
    data_stage.run(cfg)
    train.run(cfg)
    out = export.run(cfg)
    info = json.loads((out / "export.json").read_text())
    assert info["kind"] == "adapter" and info["agreement"] >= 0.9
    # the same weights folded into one quantized GGUF: llama.cpp's top-1 tokens still match torch's
    merged = load_config(tmp_path / "c.toml", ["export.kind=merged", "export.quant=Q8_0"])
    info = json.loads((export.run(merged) / "export.json").read_text())
    assert info["kind"] == "merged" and info["quant"] == "Q8_0" and info["agreement"] >= 0.9
    assert (out / info["file"]).stat().st_size > 100e6  # a whole 135M model in Q8_0, not an adapter
