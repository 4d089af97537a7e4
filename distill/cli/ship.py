"""`distill export`, `distill install` and `distill run`: ship the trained student, or do every stage at once."""

from __future__ import annotations

from pathlib import Path

import click

from distill.cli.base import cli, config_arg, load, overrides_arg


@cli.command()
@config_arg
@overrides_arg
def export(config, overrides):
    """Write the trained student as GGUF (LoRA adapter, or merged + quantized) and verify it.

    Example usage:

    \b
        distill export configs/summarize.toml
        distill export configs/summarize.toml export.kind=merged export.quant=Q8_0
    """
    from distill import export as stage

    cfg = load(config, overrides)
    out = stage.run(cfg)
    click.echo((out / "export.json").read_text())


@cli.command()
@config_arg
@overrides_arg
@click.option("--default", "make_default", is_flag=True,
              help="Make it the default for its task, unless the current default scores better on the same report card.")
@click.option("--force", is_flag=True, help="With --default: replace the current default even when it scores better.")
@click.option("--to", "dest", type=click.Path(file_okay=False), help="Install into this folder (e.g. assets/NAME to ship it).")
def install(config, overrides, make_default, force, dest):
    """Register the exported student with the assistant (manifest written last).

    Example usage:

    \b
        distill install configs/summarize.toml --default
        distill install configs/summarize.toml --to assets/summarize-smollm2-135m-v4
    """
    from distill import install as stage

    cfg = load(config, overrides)
    out = stage.run(cfg, Path(dest) if dest else None, make_default, force)
    click.echo(f"installed {cfg.name} → {out}")


@cli.command("run")
@config_arg
@overrides_arg
@click.option("--json-progress", is_flag=True, help="JSON lines of progress on stdout (for `assistant retrain`).")
@click.option("--default", "make_default", is_flag=True,
              help="Make the result the default for its task, unless the current default scores better on the same report card.")
@click.option("--force", is_flag=True, help="With --default: replace the current default even when it scores better.")
@click.option("--skip-eval", is_flag=True, help="Do not build the report card.")
def run_all(config, overrides, json_progress, make_default, force, skip_eval):
    """Every stage from one config, each skipped when its output is up to date.

    data → teach → train → export → eval → install. Re-running after a kill resumes.

    Example usage:

    \b
        distill run configs/summarize.toml
        distill run my-data.toml train.max_steps=100 --default
    """
    from distill import pipeline

    cfg = load(config, overrides)
    pipeline.run(cfg, json_progress=json_progress, make_default=make_default, skip_eval=skip_eval, force=force)
