"""Every test gets empty user dirs (ASSISTANT_HOME in a tmp folder), as on a fresh install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def user_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("ASSISTANT_HOME", str(home))
    return home


@pytest.fixture
def shared():
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside the project")
    return SHARED


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(pytest.mark.timeout(600)) if config.pluginmanager.hasplugin("timeout") else None


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A 2-layer llama with SmolLM2's tokenizer: trains in seconds, no hub needed."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from distill.student import load_tokenizer

    out = tmp_path_factory.mktemp("tiny")
    tok = load_tokenizer("smollm2-135m")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out
