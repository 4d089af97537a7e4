"""`distill train`, `answers`, `eval`, `export`, `install` and `run` (registered on the main group)."""

from __future__ import annotations

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

    \b
        distill train configs/summarize.toml train.max_steps=300
        distill train configs/summarize.toml --resume
        torchrun --nproc_per_node 2 -m distill.cli train configs/summarize.toml
    """
    from distill import train as stage

    cfg = _load(config, overrides)
    click.echo(str(stage.run(cfg, resume=resume, json_progress=json_progress)), err=json_progress)


@cli.command("eval")
@_config_arg
@_overrides
@click.option("--against", multiple=True, help="Also compare with an installed model (name), e.g. the current default.")
@click.option("--adapter", "with_adapter", is_flag=True,
              help="Also score the student as base + LoRA adapter applied at run time (the student row is the "
                   "merged GGUF the assistant runs, eval.merge).")
def eval_(config, overrides, against, with_adapter):
    """Report card: student vs teacher vs untrained base on the held-out split.

    Writes report.md, report.json and PNG plots in <run>/eval/.

    Example usage:

    \b
        distill eval configs/summarize.toml
        distill eval configs/support.toml eval.judge=true eval.judge_examples=30
        distill eval configs/summarize.toml --adapter
    """
    from distill import evaluate as stage

    cfg = _load(config, overrides)
    extra = {}
    if with_adapter:
        base, lora = stage.student_files(cfg) or (None, None)
        if not lora:
            raise click.ClickException("--adapter needs an exported LoRA adapter (export.kind=adapter)")
        extra["student-adapter"] = (base, lora)
    for name in against:  # as the assistant runs it, like the student row
        extra[name] = stage.installed(name)
    out = stage.run(cfg, extra)
    click.echo((out / "report.md").read_text())


@cli.command()
@_config_arg
@_overrides
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
    import json
    from pathlib import Path

    from distill import answers as stage

    cfg = _load(config, overrides)
    res = stage.run(cfg, model, Path(out), lora, tasks)
    click.echo(json.dumps(res) if as_json else
               f"{res['answers']} answers by {res['model']} → {res['out']} ({res['failed']} failed; {res['decode_tok_s']} tok/s)")


@cli.command()
@_config_arg
@_overrides
def export(config, overrides):
    """Write the trained student as GGUF (LoRA adapter, or merged + quantized) and verify it.

    Example usage:

    \b
        distill export configs/summarize.toml
        distill export configs/summarize.toml export.kind=merged export.quant=Q8_0
    """
    from distill import export as stage

    cfg = _load(config, overrides)
    out = stage.run(cfg)
    click.echo((out / "export.json").read_text())


@cli.command()
@_config_arg
@_overrides
@click.option("--default", "make_default", is_flag=True, help="Make it the default model for its task.")
@click.option("--to", "dest", type=click.Path(file_okay=False), help="Install into this folder (e.g. assets/NAME to ship it).")
def install(config, overrides, make_default, dest):
    """Register the exported student with the assistant (manifest written last)."""
    from pathlib import Path

    from distill import install as stage

    cfg = _load(config, overrides)
    out = stage.run(cfg, Path(dest) if dest else None, make_default)
    click.echo(f"installed {cfg.name} → {out}")


@cli.command("run")
@_config_arg
@_overrides
@click.option("--json-progress", is_flag=True, help="JSON lines of progress on stdout (for `assistant retrain`).")
@click.option("--default", "make_default", is_flag=True, help="Make the result the default for its task.")
@click.option("--skip-eval", is_flag=True, help="Do not build the report card.")
def run_all(config, overrides, json_progress, make_default, skip_eval):
    """Every stage from one config, each skipped when its output is up to date.

    data → teach → train → export → eval → install. Re-running after a kill resumes.

    Example usage:

    \b
        distill run configs/summarize.toml
        distill run my-data.toml train.max_steps=100 --default
    """
    from distill import pipeline

    cfg = _load(config, overrides)
    pipeline.run(cfg, json_progress=json_progress, make_default=make_default, skip_eval=skip_eval)
