"""What the distill tests share: a small AESLC config, the `distill` command as a subprocess, the train log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def write_config(tmp_path: Path, shared: Path, base="smollm2-135m", extra: str = "") -> Path:
    """40 AESLC train emails and 8 dev ones for subject lines; six quick training steps."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
name = "t"
task = "summarize"
out_dir = "{tmp_path / 'run'}"
[data]
val_percent = 0.0
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / 'train.jsonl'}"
limit = 40
[[data.sources]]
kind = "aeslc"
path = "{shared / 'aeslc' / 'dev.jsonl'}"
split = "val"
limit = 8
[train]
base = "{base}"
max_steps = 6
eval_every = 3
save_every = 1
batch_tokens = 1024
eval_examples = 4
warmup_steps = 2
autocast = "none"
{extra}
""")
    return cfg


def distill(*args, **kwargs) -> subprocess.CompletedProcess:
    """`distill ARGS` as the user runs it (a fresh process), output captured as text."""
    return subprocess.run([sys.executable, "-m", "distill.cli", *map(str, args)], capture_output=True, text=True, **kwargs)


def train_cmd(cfg, *extra) -> list[str]:
    return [sys.executable, "-m", "distill.cli", "train", str(cfg), *extra]


def read_log(run_parent: Path) -> list[dict]:
    return [json.loads(l) for l in open(run_parent / "run" / "train" / "log.jsonl")]
