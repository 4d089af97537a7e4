"""`distill train`, `eval`, `export`, `install` and `run` (registered on the main group)."""

from __future__ import annotations

import json

import click

from distill.cli import _config_arg, _load, _overrides, cli


@cli.command()
@_config_arg
@_overrides
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint after a kill.")
@click.option("--json-progress", is_flag=True, help="One JSON line per step on stdout instead of a progress bar.")
def train(config, overrides, resume, json_progress):
    """Fine-tune the student (LoRA or full; optional token-level KD) on the prepared data.

    Example usage:

        distill train configs/summarize.toml train.max_steps=300
        distill train configs/summarize.toml --resume
        torchrun --nproc_per_node 2 -m distill.cli train configs/summarize.toml
    """
    from distill import train as stage

    cfg = _load(config, overrides)
    click.echo(str(stage.run(cfg, resume=resume, json_progress=json_progress)), err=json_progress)
