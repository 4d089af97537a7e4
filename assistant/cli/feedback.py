"""`assistant feedback` and `assistant retrain`: the drafts you kept, and a student trained on them."""

from __future__ import annotations

import json

import click

from assistant.cli.base import cli




@cli.group()
def feedback():
    """Drafts you accepted or edited: the data `assistant retrain` learns from."""


@feedback.command("list")
@click.option("--task", type=click.Choice(["reply", "summarize"]), help="Only the drafts of this task.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per draft (input, draft, final text).")
def feedback_list(task, as_json):
    """The drafts you kept: accepted as written, or edited (the final text is what retraining learns).

    Example usage:

    \b
        assistant feedback list --task reply
        assistant feedback list --json | jq .final
    """
    from assistant.services import store

    for r in store.list_feedback(store.connect(), task):
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            state = "accepted" if r["accepted"] else "edited"
            click.echo(f"{r['id']:5} {r['task']:9} {state:8} {r['input'][:60]!r}")


@feedback.command("export")
@click.option("--task", type=click.Choice(["reply", "summarize"]), default="reply", show_default=True,
              help="Which task's drafts.")
@click.argument("out", type=click.File("w"), default="-")
def feedback_export(task, out):
    """Write the kept drafts as JSONL (input, draft, final) to OUT (- for stdout): a distill source
    (`kind = "feedback"` in a config)."""
    from assistant.services import store

    for r in store.list_feedback(store.connect(), task):
        out.write(json.dumps({k: r[k] for k in ("id", "task", "model", "input", "draft", "final")}, ensure_ascii=False) + "\n")



@cli.command()
@click.argument("task", type=click.Choice(["reply", "summarize"]))
@click.option("--steps", default=60, show_default=True, type=click.IntRange(1, 10_000), help="Training steps (about 8 s each on 2 cores).")
@click.option("--replay", type=click.Path(exists=True, dir_okay=False),
              help="A CSV/JSONL of original examples mixed in, so the student keeps its general skill.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before starting.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines of progress and the result.")
def retrain(task, steps, replay, yes, as_json):
    """Retrain a student on your accepted and edited drafts; keep it only if it wins.

    Runs `distill run` in a subprocess, then compares the new student with the current
    default on your held-out drafts. Roll back any time with `assistant models default`.
    """
    from assistant.services import retrain as rt

    p = rt.plan(task, steps, replay)
    click.echo(f"will train {p.name} from {p.start} on {p.drafts} draft(s)" + (f" + {p.replay} replay examples" if p.replay else "")
               + f", {p.steps} steps: about {p.minutes} min and {p.ram_gb} GB RAM", err=True)
    if not yes and not as_json and not click.confirm("start?", default=True, err=True):
        rt.discard(p)  # nothing started: leave no run folder behind
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
        verdict = "now the default" if result["switched"] else f"kept {result['previous']} (the new one was discarded)"
        click.echo(f"\n{result['new']}: makes {result['new_edit_score']}% of your edits vs {result['previous_edit_score']}% "
                   f"for {result['previous']} on {result['items']} held-out drafts: {verdict}")
