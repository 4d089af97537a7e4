"""`assistant models`: list, add, remove, prepare and choose the models each task uses."""

from __future__ import annotations

import json

import click

from assistant.cli.base import cli




@cli.group()
def models():
    """List, add, remove models and choose each task's default."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json):
    """Installed models: the built-in base, shipped students, and yours."""
    from assistant.engine import registry

    defaults = {t: registry.default_for(t) for t in registry.TASKS}
    for e in registry.all_models().values():
        tasks = [t for t, n in defaults.items() if n == e.name]
        if as_json:
            click.echo(json.dumps({"name": e.name, "path": e.path, "lora_path": e.lora_path, "task": e.task,
                                   "source": e.source, "size": e.size_bytes(), "default_for": tasks}))
        else:
            mark = f"  [default: {', '.join(tasks)}]" if tasks else ""
            if not registry.prompt_current(e):
                mark += "  [trained on an older prompt: not used by default]"
            click.echo(f"{e.name:32} {e.source:8} {e.size_bytes() / 1e6:7.1f} MB{mark}")


@models.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name to use with --model.")
@click.option("--lora", type=click.Path(dir_okay=False), help="A LoRA adapter GGUF to apply on PATH.")
@click.option("--task", type=click.Choice(["chat", "summarize", "reply"]))
def models_add(path, name, lora, task):
    """Register a GGUF model (optionally base + LoRA adapter). The file is checked first."""
    from assistant.engine import registry

    e = registry.add_model(path, name, lora, task)
    click.echo(f"added {e.name} ({e.size_bytes() / 1e6:.1f} MB)")


@models.command("remove")
@click.argument("name")
def models_remove(name):
    """Forget a model you added (the file stays)."""
    from assistant.engine import registry

    registry.remove_model(name)
    click.echo(f"removed {name}")


@models.command("prepare")
def models_prepare():
    """Build each student's merged GGUF now (otherwise built on first use, a few seconds each).

    A student ships as a small LoRA adapter; it runs fastest folded into its base and quantized
    (Q8_0 by default; `[runtime] merge = "none"` in config.toml keeps the adapter separate).
    """
    from pathlib import Path

    from assistant.engine import registry
    from assistant.engine.gguf_tools import merged

    kind = registry.merge_kind()
    if kind is None:
        click.echo("runtime merge is off (config [runtime] merge = \"none\"): nothing to build")
        return
    for e in registry.all_models().values():
        if e.mergeable:
            click.echo(f"{e.name}: {merged(Path(e.path), Path(e.lora_path), kind, e.name)}")


@models.command("default")
@click.argument("task", type=click.Choice(["chat", "summarize", "reply"]))
@click.argument("name")
def models_default(task, name):
    """Use NAME for TASK from now on (also how to roll back after a retrain)."""
    from assistant.engine import registry

    registry.set_default(task, name)
    click.echo(f"{task}: {name}")
