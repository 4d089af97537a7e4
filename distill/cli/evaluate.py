"""`distill eval`: the report card, student vs teacher vs untrained base (and installed models)."""

from __future__ import annotations

import click

from distill.cli.base import cli, config_arg, load, overrides_arg


@cli.command("eval")
@config_arg
@overrides_arg
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
    from distill import systems

    cfg = load(config, overrides)
    extra = {}
    if with_adapter:
        base, lora = systems.student_files(cfg) or (None, None)
        if not lora:
            raise click.ClickException("--adapter needs an exported LoRA adapter (export.kind=adapter)")
        extra["student-adapter"] = (base, lora)
    for name in against:  # as the assistant runs it, like the student row
        extra[name] = systems.installed(name)
    out = stage.run(cfg, extra)
    click.echo((out / "report.md").read_text())
