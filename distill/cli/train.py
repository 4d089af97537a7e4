"""`distill train` and `distill answers`: fine-tune the student, and collect a model's own answers for self-play."""

from __future__ import annotations

import json
from pathlib import Path

import click

from distill.cli.base import cli, config_arg, load, overrides_arg


@cli.command()
@config_arg
@overrides_arg
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint after a kill.")
@click.option("--json-progress", is_flag=True, help="One JSON line per step on stdout instead of a progress bar.")
def train(config, overrides, resume, json_progress):
    """Fine-tune the student (LoRA or full; optional token-level KD) on the prepared data.

    Example usage:

    \b
        distill train configs/summarize.toml train.max_steps=300
        distill train configs/summarize.toml --resume
        torchrun --nproc_per_node 2 -m distill.cli train configs/summarize.toml
    """
    from distill import train as stage

    cfg = load(config, overrides)
    click.echo(str(stage.run(cfg, resume=resume, json_progress=json_progress)), err=json_progress)


@cli.command()
@config_arg
@overrides_arg
@click.option("--model", required=True, help="An installed model (name, run as the assistant runs it) or a .gguf file.")
@click.option("--lora", type=click.Path(exists=True, dir_okay=False), help="A LoRA adapter GGUF for a --model file.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write {id, output} lines (.jsonl.gz).")
@click.option("--task", "tasks", multiple=True, help="Only these tasks (e.g. summarize-short); default: every teacher task.")
@click.option("--json", "as_json", is_flag=True)
def answers(config, overrides, model, lora, out, tasks, as_json):
    """A model's own answers to the training prompts the teacher answered (for self-play DPO).

    Point `train.rejected` at the output and `train.init` at the model's adapter: the next
    student learns to prefer the teacher's answer over its own.

    Example usage:

    \b
        distill answers configs/summarize.toml --model summarize-smollm2-135m-v4 --task summarize-short \\
            --task summarize-long --out data/summarize-student-v4.jsonl.gz
    """
    from distill import answers as stage

    cfg = load(config, overrides)
    res = stage.run(cfg, model, Path(out), lora, tasks)
    click.echo(json.dumps(res) if as_json else
               f"{res['answers']} answers by {res['model']} → {res['out']} ({res['failed']} failed; {res['decode_tok_s']} tok/s)")
