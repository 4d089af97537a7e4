"""`distill run`: the whole chain from one config, each stage skipped when its output is up to date.

A stage is up to date when its output exists and is newer than its inputs (and, for
training, when the final step was reached). Every stage is itself resumable, so a killed
`distill run` picks up where it stopped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distill import checkpoint, data, evaluate, export, install, teach, train
from distill.config import Config
from distill.layout import checkpoint_path, eval_dir, examples_path, export_dir, weights_dir


def _newer(out: Path, *inputs: Path) -> bool:
    return out.exists() and all(not i.exists() or out.stat().st_mtime >= i.stat().st_mtime for i in inputs)


def _say(json_progress: bool, **event) -> None:
    if json_progress:
        print(json.dumps(event), flush=True)
    else:
        print(f"[{event['stage']}] {event.get('status', '')} {event.get('detail', '')}".rstrip(), file=sys.stderr)


def train_done(cfg: Config) -> bool:
    ckpt = checkpoint_path(cfg)
    if not ckpt.exists() or not weights_dir(cfg).exists():
        return False
    return checkpoint.read(ckpt)["step"] >= cfg.train.max_steps


def run(cfg: Config, json_progress: bool = False, make_default: bool = False, skip_eval: bool = False,
        force: bool = False) -> Path:
    examples = examples_path(cfg)
    if not examples.exists():
        _say(json_progress, stage="data", status="building")
        data.run(cfg)
    _say(json_progress, stage="data", status="ready", detail=str(examples))

    needs_teacher = any(s.target == "teacher" for s in cfg.data.sources)
    if needs_teacher:
        _say(json_progress, stage="teach", status="running")
        teach.run(cfg, (lambda r: _say(json_progress, stage="teach", status="example", detail=r["id"])) if json_progress else None)
    if not train_done(cfg):
        _say(json_progress, stage="train", status="running")
        train.run(cfg, resume=checkpoint_path(cfg).exists(), json_progress=json_progress)
    _say(json_progress, stage="train", status="done")

    exp = export_dir(cfg) / "export.json"
    weights = weights_dir(cfg)
    if not _newer(exp, weights / "adapter_model.safetensors") or json.loads(exp.read_text()).get("weights", "best") != weights.name:
        _say(json_progress, stage="export", status="running")
        export.run(cfg)
    _say(json_progress, stage="export", status="done", detail=json.dumps(json.loads(exp.read_text())))

    if not skip_eval and not _newer(eval_dir(cfg) / "report.json", exp):
        _say(json_progress, stage="eval", status="running")
        evaluate.run(cfg)
    out = install.run(cfg, make_default=make_default, force=force)
    _say(json_progress, stage="install", status="done", detail=str(out))
    return out
