"""The `distill` command: one sub-command per stage, each reading the same TOML config.

    distill run configs/summarize.toml            # every stage, skipping those already up to date
    distill data configs/summarize.toml --stats   # what would be used, and how long it would take
    distill teach configs/summarize.toml          # resumable: kill it any time and run it again
    python -m distill.cli train CONFIG            # the same, as a module (torchrun runs it this way)

`base` holds the click group; `data` (data, teach, teacher), `train` (train, answers), `evaluate`
(eval) and `ship` (export, install, run) each register their commands on it when imported here.
"""

from __future__ import annotations

from distill.cli import data, evaluate, ship, train  # noqa: F401  each registers its commands on `cli`
from distill.cli.base import cli


def main() -> None:
    cli(prog_name="distill")
