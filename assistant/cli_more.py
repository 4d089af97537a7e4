"""`assistant models`, `mail`, `serve` and `feedback` commands."""

from __future__ import annotations

import json
import sys

import click

from assistant import AssistantError
from assistant.cli import cli


@cli.group()
def models():
    """List, add, remove models and choose each task's default."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
def models_list(as_json):
    """Installed models: the built-in base, shipped students, and yours."""
    from assistant import registry

    defaults = {t: registry.default_for(t) for t in registry.TASKS}
    for e in registry.all_models().values():
        tasks = [t for t, n in defaults.items() if n == e.name]
        if as_json:
            click.echo(json.dumps({"name": e.name, "path": e.path, "lora_path": e.lora_path, "task": e.task,
                                   "source": e.source, "size": e.size_bytes(), "default_for": tasks}))
        else:
            mark = f"  [default: {', '.join(tasks)}]" if tasks else ""
            click.echo(f"{e.name:32} {e.source:8} {e.size_bytes() / 1e6:7.1f} MB{mark}")


@models.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Name to use with --model.")
@click.option("--lora", type=click.Path(dir_okay=False), help="A LoRA adapter GGUF to apply on PATH.")
@click.option("--task", type=click.Choice(["chat", "summarize", "reply"]))
def models_add(path, name, lora, task):
    """Register a GGUF model (optionally base + LoRA adapter). The file is checked first."""
    from assistant import registry

    e = registry.add_model(path, name, lora, task)
    click.echo(f"added {e.name} ({e.size_bytes() / 1e6:.1f} MB)")


@models.command("remove")
@click.argument("name")
def models_remove(name):
    """Forget a model you added (the file stays)."""
    from assistant import registry

    registry.remove_model(name)
    click.echo(f"removed {name}")


@models.command("default")
@click.argument("task", type=click.Choice(["chat", "summarize", "reply"]))
@click.argument("name")
def models_default(task, name):
    """Use NAME for TASK from now on (also how to roll back after a retrain)."""
    from assistant import registry

    registry.set_default(task, name)
    click.echo(f"{task}: {name}")


@cli.group()
def mail():
    """Read mail files as the assistant sees them."""


@mail.command("show")
@click.argument("paths", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message (the default output is also JSON lines).")
def mail_show(paths, as_json):  # noqa: ARG001  JSON lines either way: this command is for inspection and scripts
    """Parse .eml, mbox, Maildir or folders: one JSON line per message, with thread ids.

    A file that cannot be read gives one {"path", "error"} line and the rest goes on.
    """
    from assistant.mail import MailError, assign_threads, read_mail

    items = list(read_mail(*paths))
    assign_threads([m for m in items if not isinstance(m, MailError)])
    for m in items:
        click.echo(json.dumps(m.to_json(), ensure_ascii=False))


@cli.command()
@click.option("--port", default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default: your mail stays here.")
def serve(port, host):
    """Serve the installed models as an OpenAI-compatible API (llama-cpp-python's server).

    Example usage:

        assistant serve --port 8080
        curl localhost:8080/v1/models
    """
    from assistant.server import serve as run

    run(host, port)


@cli.group()
def feedback():
    """Drafts you accepted or edited: the data `assistant retrain` learns from."""


@feedback.command("list")
@click.option("--task", type=click.Choice(["reply", "summarize"]))
@click.option("--json", "as_json", is_flag=True)
def feedback_list(task, as_json):
    from assistant import store

    for r in store.list_feedback(store.connect(), task):
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            state = "accepted" if r["accepted"] else "edited"
            click.echo(f"{r['id']:5} {r['task']:9} {state:8} {r['input'][:60]!r}")


@feedback.command("export")
@click.option("--task", type=click.Choice(["reply", "summarize"]), default="reply")
@click.argument("out", type=click.File("w"), default="-")
def feedback_export(task, out):
    """Write feedback as JSONL (input, draft, final) for `distill data --feedback`."""
    from assistant import store

    for r in store.list_feedback(store.connect(), task):
        out.write(json.dumps({k: r[k] for k in ("id", "task", "model", "input", "draft", "final")}, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(cli())
