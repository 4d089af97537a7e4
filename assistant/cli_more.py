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


@models.command("prepare")
def models_prepare():
    """Build each student's merged GGUF now (otherwise built on first use, a few seconds each).

    A student ships as a small LoRA adapter; it runs fastest folded into its base and quantized
    (Q8_0 by default; `[runtime] merge = "none"` in config.toml keeps the adapter separate).
    """
    from pathlib import Path

    from assistant import registry
    from assistant.merge import merged

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

    \b
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


@cli.command()
@click.argument("task", type=click.Choice(["reply", "summarize"]))
@click.option("--steps", default=60, show_default=True, help="Training steps (about 5 s each on 2 cores).")
@click.option("--replay", type=click.Path(exists=True, dir_okay=False),
              help="A CSV/JSONL of original examples mixed in, so the student keeps its general skill.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before starting.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines of progress and the result.")
def retrain(task, steps, replay, yes, as_json):
    """Retrain a student on your accepted and edited drafts; keep it only if it wins.

    Runs `distill run` in a subprocess, then compares the new student with the current
    default on your held-out drafts. Roll back any time with `assistant models default`.
    """
    from assistant import retrain as rt

    p = rt.plan(task, steps, replay)
    click.echo(f"will train {p.name} from {p.start} on {p.drafts} draft(s)" + (f" + {p.replay} replay examples" if p.replay else "")
               + f", {p.steps} steps: about {p.minutes} min and {p.ram_gb} GB RAM", err=True)
    if not yes and not as_json and not click.confirm("start?", default=True, err=True):
        return

    def show(e):
        if as_json:
            click.echo(json.dumps(e))
        elif e.get("event") == "step":
            click.echo(f"\rstep {e['step']}/{e['max_steps']} loss {e['loss']:.3f} {e['tok_s']:.0f} tok/s", nl=False, err=True)
        elif "stage" in e:
            click.echo(f"\n[{e['stage']}] {e.get('status', '')}", err=True)

    result = rt.run(p, show)
    if as_json:
        click.echo(json.dumps({"event": "result", **result}))
    else:
        verdict = "now the default" if result["switched"] else f"kept {result['previous']} (it scored higher)"
        click.echo(f"\n{result['new']}: ROUGE-L {result['new_rougeL']} vs {result['previous_rougeL']} on "
                   f"{result['items']} held-out drafts: {verdict}")
