"""The run folder: where each stage writes, and the check that a stage's input is there.

    <run>/data/examples.jsonl    distill data
    <run>/teach/teacher.jsonl    distill teach
    <run>/train/                 distill train (ckpt.pt, log.jsonl, meta.json, best/, final/)
    <run>/export/                distill export (export.json, the GGUF)
    <run>/eval/                  distill eval (report.json, report.md, plots)

`require(path, "data")` raises `MissingInput`, which the CLI shows as one line:
`<path> does not exist: run `distill data CONFIG` first`.
"""

from __future__ import annotations

from pathlib import Path

from distill.config import Config


def examples_path(cfg: Config) -> Path:
    return cfg.run_dir / "data" / "examples.jsonl"


def teacher_file(cfg: Config) -> Path:
    return cfg.run_dir / "teach" / "teacher.jsonl"


def train_dir(cfg: Config) -> Path:
    return cfg.run_dir / "train"


def checkpoint_path(cfg: Config) -> Path:
    return train_dir(cfg) / "ckpt.pt"


def weights_dir(cfg: Config) -> Path:
    """The trained weights that get exported: `best/` (lowest held-out loss) or `final/` (train.keep)."""
    return train_dir(cfg) / ("final" if cfg.train.keep == "last" else "best")


def export_dir(cfg: Config) -> Path:
    return cfg.run_dir / "export"


def eval_dir(cfg: Config) -> Path:
    return cfg.run_dir / "eval"


class MissingInput(ValueError):
    """A stage's input is not there yet: the stage named `command` makes it."""

    def __init__(self, path: Path, command: str):
        self.path, self.command = path, command
        super().__init__(self.message("CONFIG"))

    def message(self, config: str) -> str:
        return f"{self.path} does not exist: run `distill {self.command} {config}` first"


def require(path: Path, command: str) -> Path:
    """`path`, or a `MissingInput` naming the command that writes it."""
    if not path.exists():
        raise MissingInput(path, command)
    return path
