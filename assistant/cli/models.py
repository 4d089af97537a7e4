"""`assistant models`: list, add, remove, prepare and choose the models each task uses."""

from __future__ import annotations

import json

import click

from assistant.cli.base import cli
from assistant.tasks import RUNTIME_TASKS


@cli.group()
def models():
    """List, add, remove models and choose each task's default."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json):
    """Installed models: the built-in base, shipped students, and yours."""
    from assistant.services import models as service

    rows = service.listing()
    width = max((len(r["name"]) for r in rows), default=0) + 2  # a long name never pushes its row out of line
    for row in rows:
        if as_json:
            click.echo(json.dumps({k: v for k, v in row.items() if k != "prompt_current"}))
        else:
            mark = f"  [default: {', '.join(row['default_for'])}]" if row["default_for"] else ""
            if not row["prompt_current"]:
                mark += "  [trained on an older prompt: not used by default]"
            click.echo(f"{row['name']:{width}} {row['source']:8} {row['size'] / 1e6:7.1f} MB{mark}")


@models.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name to use with --model: a plain word (no ':', '/' or spaces around it).")
@click.option("--lora", type=click.Path(dir_okay=False), help="A LoRA adapter GGUF to apply on PATH.")
@click.option("--task", type=click.Choice(RUNTIME_TASKS),
              help="What the model is for: chat, summarize, reply or ask (`assistant models default TASK NAME` "
                   "makes it that task's default).")
def models_add(path, name, lora, task):
    """Register a GGUF model (optionally base + LoRA adapter). The file is checked first.

    Example usage:

    \b
        assistant models add my.gguf --name mine --task reply
        assistant reply ticket.eml --model mine
    """
    from assistant.services import models as service

    e = service.add_model(path, name, lora, task)
    click.echo(f"added {e.name} ({e.size_bytes() / 1e6:.1f} MB)")


@models.command("remove")
@click.argument("name")
def models_remove(name):
    """Forget a model you added (the file stays)."""
    from assistant.services import models as service

    service.remove_model(name)
    click.echo(f"removed {name}")


@models.command("prepare")
def models_prepare():
    """Build each student's merged GGUF now (otherwise built on first use, a few seconds each).

    A student ships as a small LoRA adapter; it runs fastest folded into its base and quantized
    (Q8_0 by default; `[runtime] merge = "none"` in config.toml keeps the adapter separate).
    """
    from assistant.services import models as service

    if service.merge_kind() is None:
        click.echo("runtime merge is off (config [runtime] merge = \"none\"): nothing to build")
        return
    for name, path in service.prepare():
        click.echo(f"{name}: {path}")


@models.command("default")
@click.argument("task", type=click.Choice(RUNTIME_TASKS))
@click.argument("name")
def models_default(task, name):
    """Use NAME for TASK from now on (also how to roll back after a retrain)."""
    from assistant.services import models as service

    service.set_default(task, name)
    click.echo(f"{task}: {name}")
